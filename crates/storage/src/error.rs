use std::path::PathBuf;

use strand_protocol::batch::BatchError;

/// Errors of the storage layer, with the partition or file they concern.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid record batch: {0}")]
    InvalidBatch(#[from] BatchError),
    #[error("offset {offset} is out of range [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange {
        offset: i64,
        log_start_offset: i64,
        log_end_offset: i64,
    },
    #[error("corrupt {what} in {path} at byte {position}: {reason}")]
    Corrupt {
        what: &'static str,
        path: PathBuf,
        position: u64,
        reason: String,
    },
    #[error("the log for {0} is offline after an earlier I/O error")]
    Offline(String),
}

impl LogError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| LogError::Io { path, source }
    }

    /// The Kafka error code for this error, as a produce or fetch answer.
    pub fn kafka_error_code(&self) -> i16 {
        use kafka_protocol::error::ResponseError as E;
        match self {
            LogError::Io { .. } | LogError::Offline(_) => E::KafkaStorageError.code(),
            LogError::InvalidBatch(b) => b.kafka_error_code(),
            LogError::OffsetOutOfRange { .. } => E::OffsetOutOfRange.code(),
            LogError::Corrupt { .. } => E::CorruptMessage.code(),
        }
    }
}

pub type Result<T, E = LogError> = std::result::Result<T, E>;
