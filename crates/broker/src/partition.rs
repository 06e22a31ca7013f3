//! A partition this broker leads: its log behind a lock, and its identity.

use std::sync::{Mutex, MutexGuard};

use strand_storage::PartitionLog;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

#[derive(Debug)]
pub struct Partition {
    pub tp: TopicPartition,
    pub topic_id: Uuid,
    pub leader_epoch: i32,
    log: Mutex<PartitionLog>,
}

impl Partition {
    pub fn new(tp: TopicPartition, topic_id: Uuid, leader_epoch: i32, log: PartitionLog) -> Self {
        Self {
            tp,
            topic_id,
            leader_epoch,
            log: Mutex::new(log),
        }
    }

    /// The log, for a short critical section (no fsync, no network IO under it). A panic in
    /// another holder does not make the log unusable: its state is only changed by whole
    /// operations that either complete or return an error first.
    pub fn log(&self) -> MutexGuard<'_, PartitionLog> {
        self.log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes the log out (the partition is being deleted or the broker stops).
    pub fn into_log(self) -> PartitionLog {
        self.log
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
