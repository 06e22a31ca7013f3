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
    #[error("{0}")]
    Records(crate::validate::RecordErrors),
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
    #[error("out of order sequence number from producer {producer_id}: {reason}")]
    OutOfOrderSequence { producer_id: i64, reason: String },
    #[error("producer {producer_id} has epoch {epoch}, older than its current epoch {current}")]
    InvalidProducerEpoch {
        producer_id: i64,
        epoch: i16,
        current: i16,
    },
    #[error("invalid transaction state for producer {producer_id}: {reason}")]
    InvalidTxnState { producer_id: i64, reason: String },
    #[error(
        "marker for producer {producer_id} has coordinator epoch {epoch}, older than {current}"
    )]
    CoordinatorFenced {
        producer_id: i64,
        epoch: i32,
        current: i32,
    },
}

impl LogError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| LogError::Io { path, source }
    }
}

pub type Result<T, E = LogError> = std::result::Result<T, E>;
