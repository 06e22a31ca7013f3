//! Partition logs in Kafka's on-disk format.
//!
//! Layout of a log dir (`log.dirs`):
//!
//! ```text
//! <log.dir>/
//!   .kafka_cleanshutdown                  present only after a clean stop
//!   recovery-point-offset-checkpoint      per partition: offsets below are fsynced
//!   log-start-offset-checkpoint           per partition: the first readable offset
//!   orders-0/                             one directory per partition: <topic>-<partition>
//!     00000000000000000000.log            record batches, byte for byte as produced
//!     00000000000000000000.index          sparse offset index (relative offset, position)
//!     00000000000000000000.timeindex      sparse time index (max timestamp, relative offset)
//!     00000000000000000000.txnindex       aborted transactions whose ABORT marker is here
//!     00000000000000004096.snapshot       producer state as of offset 4096 (at each roll)
//!     00000000000000004096.log            next segment, named by its base offset
//!     leader-epoch-checkpoint             leader epoch -> first offset written under it
//! ```
//!
//! Modules, from the bottom up: [`validate`] (record-level checks of what a leader appends, as
//! Kafka's `LogValidator`), [`index`] (the two index files), [`segment`] (one `.log` file
//! with its indexes, append, scan, recovery), [`epoch`] (leader-epoch cache and Kafka's
//! checkpoint file format), [`producer_state`] (idempotent and transactional producers, open
//! transactions, snapshots), [`txn_index`] (aborted transactions), [`cleaner`] (log compaction), [`log`] (a partition's segments: append with offset assignment,
//! reads as file ranges, fsync bookkeeping, lookups by timestamp), [`manager`] (the log dirs).
//!
//! Nothing here is thread-safe on its own: the broker holds each [`PartitionLog`] behind a lock
//! and does the slow parts (fsync, sending file ranges) outside it, using the `Arc<File>`
//! handles the log gives out. Segment files are only ever appended to while open, so a range
//! read outside the lock stays valid.
//!
//! ```
//! # use strand_storage::{LogConfig, PartitionLog};
//! let dir = tempfile::tempdir().unwrap();
//! let (log, _report) = PartitionLog::open(dir.path(), LogConfig::default(), true, 0, 0).unwrap();
//! assert_eq!(log.log_end_offset(), 0);
//! ```

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod cleaner;
pub mod config;
pub mod epoch;
pub mod error;
pub mod index;
pub mod log;
pub mod manager;
pub mod producer_state;
pub mod segment;
pub mod txn_index;
pub mod validate;

pub use config::{LogConfig, TimestampType};
pub use error::{LogError, Result};
pub use log::{AppendInfo, FileSlice, OpenReport, PartitionLog, RetentionOutcome, SyncTarget};
pub use manager::{CheckpointEntry, FoundPartition, LogManager};
pub use producer_state::{AppendOrigin, Marker, ProducerEntry};
pub use txn_index::AbortedTxn;
pub use validate::{RecordError, RecordErrors};
