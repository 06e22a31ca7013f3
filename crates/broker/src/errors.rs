//! The one place where the errors of Strand's own crates become Kafka error codes.
//!
//! Storage, protocol and the coordinators report what went wrong in their own terms (a CRC
//! mismatch, a sequence gap, a partition no longer led here); what a client is told is decided
//! here, at the broker's edge, so that every handler answers the same failure the same way.

use kafka_protocol::error::ResponseError;
use strand_coordinator::WriteError;
use strand_protocol::batch::BatchError;
use strand_storage::LogError;

/// The error a client gets when a batch is refused.
pub fn batch(e: &BatchError) -> ResponseError {
    match e {
        BatchError::TooLarge { .. } => ResponseError::MessageTooLarge,
        BatchError::UnsupportedMagic { .. } | BatchError::InvalidRecord { .. } => {
            ResponseError::InvalidRecord
        }
        BatchError::Truncated { .. }
        | BatchError::LengthTooSmall { .. }
        | BatchError::CrcMismatch { .. }
        | BatchError::Empty => ResponseError::CorruptMessage,
    }
}

/// The error a produce, fetch or offset lookup gets for a storage failure.
pub fn log(e: &LogError) -> ResponseError {
    match e {
        LogError::Io { .. } | LogError::Offline(_) => ResponseError::KafkaStorageError,
        LogError::InvalidBatch(b) => batch(b),
        LogError::Records(r) if r.invalid_timestamp => ResponseError::InvalidTimestamp,
        LogError::Records(_) => ResponseError::InvalidRecord,
        LogError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        LogError::Corrupt { .. } => ResponseError::CorruptMessage,
        LogError::OutOfOrderSequence { .. } => ResponseError::OutOfOrderSequenceNumber,
        LogError::InvalidProducerEpoch { .. } => ResponseError::InvalidProducerEpoch,
        LogError::InvalidTxnState { .. } => ResponseError::InvalidTxnState,
        LogError::CoordinatorFenced { .. } => ResponseError::TransactionCoordinatorFenced,
    }
}

/// The error a coordinator request gets when its records could not be written.
pub fn coordinator_write(e: &WriteError) -> ResponseError {
    match e {
        WriteError::NotCoordinator(_) => ResponseError::NotCoordinator,
        WriteError::NotAvailable(_) => ResponseError::CoordinatorNotAvailable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_errors_map_as_kafka_answers_them() {
        let crc = BatchError::CrcMismatch {
            position: 0,
            stored: 1,
            computed: 2,
        };
        assert_eq!(batch(&crc).code(), 2);
        let big = BatchError::TooLarge {
            position: 0,
            size: 2,
            max: 1,
        };
        assert_eq!(batch(&big).code(), 10);
        let invalid = BatchError::InvalidRecord {
            position: 0,
            reason: String::new(),
        };
        assert_eq!(log(&LogError::InvalidBatch(invalid)).code(), 87);
    }
}
