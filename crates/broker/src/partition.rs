//! A partition this broker leads: its log behind a lock, and its identity.

use std::sync::{Mutex, MutexGuard};

use strand_storage::{AppendInfo, AppendOrigin, LogError, Marker, PartitionLog};
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

/// See [`Partition::txn_guard`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnGuard {
    /// The producer already has a transaction open here: nothing to verify.
    Ongoing,
    Verified {
        producer_id: i64,
        markers_seen: u64,
    },
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

    /// Appends batches from `origin` and moves the high watermark to the log end (a single
    /// node: every append is committed as soon as it is written).
    pub fn append(
        &self,
        records: &mut [u8],
        origin: AppendOrigin,
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        self.append_verified(records, origin, None, now_ms)
    }

    /// The producer's open transaction here, or the count of its markers so far: what a
    /// transactional produce checked against the coordinator must still find when it appends.
    pub fn txn_guard(&self, producer_id: i64) -> TxnGuard {
        let log = self.log();
        match log.producer(producer_id) {
            Some(e) if e.current_txn_first_offset.is_some() => TxnGuard::Ongoing,
            Some(e) => TxnGuard::Verified {
                producer_id,
                markers_seen: e.markers_seen,
            },
            None => TxnGuard::Verified {
                producer_id,
                markers_seen: 0,
            },
        }
    }

    /// [`Partition::append`], refusing a transactional batch verified with the coordinator if
    /// a marker for its producer came in since (KIP-890: the transaction it was verified in
    /// has ended, and this batch would open a transaction nobody will end).
    pub fn append_verified(
        &self,
        records: &mut [u8],
        origin: AppendOrigin,
        guard: Option<TxnGuard>,
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        let mut log = self.log();
        if let Some(TxnGuard::Verified {
            producer_id,
            markers_seen,
        }) = guard
        {
            let now = log.producer(producer_id);
            let ongoing = now.is_some_and(|e| e.current_txn_first_offset.is_some());
            if !ongoing && now.map_or(0, |e| e.markers_seen) != markers_seen {
                return Err(LogError::InvalidTxnState {
                    producer_id,
                    reason: "the transaction ended while the batch was being verified".into(),
                });
            }
        }
        let info = log.append_from(origin, records, self.leader_epoch, now_ms)?;
        let end = log.log_end_offset();
        log.update_high_watermark(end);
        Ok(info)
    }

    /// Appends a transaction marker for `producer_id` (see [`Partition::append`]).
    pub fn append_marker(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        coordinator_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        let mut log = self.log();
        let marker = Marker {
            commit,
            coordinator_epoch,
        };
        let info = log.append_marker(
            producer_id,
            producer_epoch,
            marker,
            self.leader_epoch,
            now_ms,
        )?;
        let end = log.log_end_offset();
        log.update_high_watermark(end);
        Ok(info)
    }

    /// Takes the log out (the partition is being deleted or the broker stops).
    pub fn into_log(self) -> PartitionLog {
        self.log
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
