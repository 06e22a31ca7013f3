//! Idempotence and transactions, as plain data: the producer id and epoch, the sequence
//! numbers per partition, and the transaction's state. The sender and the producer's
//! transaction methods drive it; nothing here does IO.
//!
//! Sequences: a batch gets its partition's next sequence when it is first drained, and keeps
//! it through retries, so the broker can drop a retry it already wrote (it answers with the
//! original offset). A batch refused as out of order while an earlier batch of its partition
//! is still unacknowledged is only behind that one and is retried; the partition's head batch
//! refused so (or lost for good) means the sequence is broken: an idempotent producer takes a
//! new producer id and numbers again from 0, a transactional one must abort the transaction.
//!
//! Errors, as the Java client classes them: *fatal* (the producer was fenced by a newer
//! instance, or is not authorised): every later call fails; *abortable* (a batch of the
//! transaction failed): the transaction can only be aborted, then the producer goes on.

use std::collections::{HashMap, HashSet};

use super::accumulator::TopicPartition;
use super::batch::ProducerStamp;
use crate::error::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnState {
    /// `init_transactions` has not run.
    Uninitialized,
    /// No transaction is open.
    Ready,
    /// Between `begin_transaction` and its commit or abort.
    InTransaction,
}

#[derive(Debug)]
pub struct TxnManager {
    pub transactional_id: Option<String>,
    /// `transaction.timeout.ms`
    pub timeout_ms: i32,
    identity: Option<(i64, i16)>,
    /// The sequence the next new batch of a partition gets.
    next_seq: HashMap<TopicPartition, i32>,
    /// The sequence after the last batch the broker acknowledged, per partition.
    acked: HashMap<TopicPartition, i32>,
    /// The sequences are broken: get a new producer id (idempotent) or bump the epoch after
    /// the abort (transactional) before sending more.
    pub needs_reset: bool,
    state: TxnState,
    /// Partitions added to the open transaction.
    added: HashSet<TopicPartition>,
    abortable: Option<Error>,
    fatal: Option<Error>,
    /// An InitProducerId or AddPartitionsToTxn of the sender is under way.
    pub init_running: bool,
    pub add_running: bool,
}

fn next_sequence(seq: i32, count: i32) -> i32 {
    // Sequences wrap at i32::MAX, as the broker expects.
    ((i64::from(seq) + i64::from(count)) % (i64::from(i32::MAX) + 1)) as i32
}

impl TxnManager {
    pub fn new(transactional_id: Option<String>, timeout_ms: i32) -> Self {
        let state = if transactional_id.is_some() {
            TxnState::Uninitialized
        } else {
            TxnState::Ready
        };
        Self {
            transactional_id,
            timeout_ms,
            identity: None,
            next_seq: HashMap::new(),
            acked: HashMap::new(),
            needs_reset: false,
            state,
            added: HashSet::new(),
            abortable: None,
            fatal: None,
            init_running: false,
            add_running: false,
        }
    }

    pub fn is_transactional(&self) -> bool {
        self.transactional_id.is_some()
    }

    pub fn identity(&self) -> Option<(i64, i16)> {
        self.identity
    }

    pub fn state(&self) -> TxnState {
        self.state
    }

    /// A producer id and epoch from InitProducerId (or an epoch-bumping EndTxn): sequences
    /// start over.
    pub fn set_identity(&mut self, producer_id: i64, epoch: i16) {
        self.identity = Some((producer_id, epoch));
        self.next_seq.clear();
        self.acked.clear();
        self.needs_reset = false;
    }

    /// Whether batches may be sent now (an identity is known and the sequences are sound).
    pub fn can_send(&self) -> bool {
        self.identity.is_some() && !self.needs_reset && self.fatal.is_none()
    }

    /// The stamp of a batch of `count` records for `tp`: its current one if it still
    /// matches the producer id and epoch, else the partition's next sequence.
    pub fn stamp(
        &mut self,
        tp: &TopicPartition,
        count: i32,
        current: Option<ProducerStamp>,
    ) -> Option<ProducerStamp> {
        let (producer_id, epoch) = self.identity?;
        if let Some(c) = current.filter(|c| c.producer_id == producer_id && c.epoch == epoch) {
            return Some(c);
        }
        let transactional = self.is_transactional();
        let seq = self.next_seq.entry(tp.clone()).or_insert(0);
        let stamp = ProducerStamp {
            producer_id,
            epoch,
            base_sequence: *seq,
            transactional,
        };
        *seq = next_sequence(*seq, count);
        Some(stamp)
    }

    /// The broker wrote (or had written) the batch.
    pub fn acknowledged(&mut self, tp: &TopicPartition, stamp: &ProducerStamp, count: i32) {
        if self.identity != Some((stamp.producer_id, stamp.epoch)) {
            return;
        }
        self.acked
            .insert(tp.clone(), next_sequence(stamp.base_sequence, count));
    }

    /// Whether `stamp` is the first unacknowledged batch of its partition.
    pub fn is_head(&self, tp: &TopicPartition, stamp: &ProducerStamp) -> bool {
        self.identity != Some((stamp.producer_id, stamp.epoch))
            || self.acked.get(tp).copied().unwrap_or(0) == stamp.base_sequence
    }

    /// A batch that carried a sequence failed for good: the sequence of its partition is
    /// broken.
    pub fn sequence_lost(&mut self, e: &Error) {
        if self.is_transactional() {
            // Only an abort ends it; the epoch is bumped after it.
            self.abortable(e.clone());
        }
        self.needs_reset = true;
    }

    /// The producer was fenced (a newer instance, or its epoch is too old).
    pub fn fenced(&mut self, e: Error) {
        if self.is_transactional() {
            self.fatal.get_or_insert(e);
        } else {
            self.needs_reset = true;
        }
    }

    pub fn abortable(&mut self, e: Error) {
        if self.state == TxnState::InTransaction {
            self.abortable.get_or_insert(e);
        }
    }

    pub fn fatal_error(&self) -> Option<&Error> {
        self.fatal.as_ref()
    }

    pub fn abortable_error(&self) -> Option<&Error> {
        self.abortable.as_ref()
    }

    pub fn set_fatal(&mut self, e: Error) {
        self.fatal.get_or_insert(e);
    }

    /// Partitions that must join the transaction before their batches go.
    pub fn needs_add(&self, tp: &TopicPartition) -> bool {
        self.is_transactional() && !self.added.contains(tp)
    }

    pub fn added(&mut self, tps: impl IntoIterator<Item = TopicPartition>) {
        self.added.extend(tps);
    }

    pub fn initialized(&mut self) {
        self.state = TxnState::Ready;
    }

    pub fn begin(&mut self) -> Result<(), Error> {
        if let Some(e) = &self.fatal {
            return Err(e.clone());
        }
        match self.state {
            TxnState::Ready => {
                self.state = TxnState::InTransaction;
                Ok(())
            }
            TxnState::Uninitialized => Err(Error::Config(
                "begin_transaction before init_transactions".into(),
            )),
            TxnState::InTransaction => Err(Error::Config(
                "begin_transaction while a transaction is open".into(),
            )),
        }
    }

    /// The open transaction ended (committed or aborted).
    pub fn ended(&mut self) {
        self.state = TxnState::Ready;
        self.added.clear();
        self.abortable = None;
    }

    /// Whether a record may be sent now (transactional producers need an open transaction).
    pub fn check_send(&self) -> Result<(), Error> {
        if let Some(e) = &self.fatal {
            return Err(e.clone());
        }
        if self.is_transactional() && self.state != TxnState::InTransaction {
            return Err(Error::Config(
                "a transactional producer sends only inside a transaction (begin_transaction)"
                    .into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn tp(p: i32) -> TopicPartition {
        (Arc::from("t"), p)
    }

    #[test]
    fn sequences_follow_batches_and_survive_retries() {
        let mut m = TxnManager::new(None, 60_000);
        assert!(m.stamp(&tp(0), 5, None).is_none(), "no producer id yet");
        m.set_identity(7, 0);
        let a = m.stamp(&tp(0), 5, None).unwrap();
        let b = m.stamp(&tp(0), 3, None).unwrap();
        let c = m.stamp(&tp(1), 1, None).unwrap();
        assert_eq!(
            (a.base_sequence, b.base_sequence, c.base_sequence),
            (0, 5, 0)
        );
        // A retry keeps its stamp; the head of the partition is the first unacknowledged.
        assert_eq!(m.stamp(&tp(0), 3, Some(b)), Some(b));
        assert!(m.is_head(&tp(0), &a) && !m.is_head(&tp(0), &b));
        m.acknowledged(&tp(0), &a, 5);
        assert!(m.is_head(&tp(0), &b));
        // A new producer id numbers again, and old stamps are replaced.
        m.set_identity(8, 0);
        let b2 = m.stamp(&tp(0), 3, Some(b)).unwrap();
        assert_eq!((b2.producer_id, b2.base_sequence), (8, 0));
        assert_eq!(next_sequence(i32::MAX, 2), 1);
    }

    #[test]
    fn transactional_errors_are_abortable_or_fatal() {
        let mut m = TxnManager::new(Some("tx".into()), 60_000);
        assert!(m.check_send().is_err() && m.begin().is_err());
        m.set_identity(7, 0);
        m.initialized();
        m.begin().unwrap();
        assert!(m.needs_add(&tp(0)));
        m.added([tp(0)]);
        assert!(!m.needs_add(&tp(0)));
        m.sequence_lost(&Error::Timeout("x".into()));
        assert!(m.abortable_error().is_some() && m.needs_reset);
        m.ended();
        assert!(m.abortable_error().is_none() && m.needs_add(&tp(0)));
        m.fenced(Error::kafka(90, "fenced"));
        assert!(m.begin().is_err() && m.check_send().is_err());
    }
}
