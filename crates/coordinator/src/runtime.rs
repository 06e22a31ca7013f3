//! The coordinator runtime: what every coordinator (groups, transactions) needs to keep its
//! state in a partition of an internal topic, without doing IO itself.
//!
//! A coordinator's state is split into one [`Shard`] per partition of its topic
//! (`__consumer_offsets`, `__transaction_state`); a shard is loaded by replaying its partition
//! and dropped when the broker stops leading it. A [`ShardRuntime`] drives one shard:
//!
//! 1. [`ShardRuntime::write`] opens a write on the shard, lets the handler change it and return
//!    an [`Outcome`] (records, held replies), and has a [`PartitionWriter`] append the records.
//!    If the append fails, the shard is reverted to what it was before the handler ran, and the
//!    caller fails the replies: nothing the client never saw durable is ever kept.
//! 2. Replies are held until the records of their write, and of every write before it, are
//!    durable; [`ShardRuntime::durable`] releases them and gives each record to
//!    [`Shard::on_durable`] (where a coordinator that stages its changes completes them).
//! 3. Reads ([`ShardRuntime::read`]) are answered once everything written before them is
//!    durable, so no reply ever shows state that a crash could take back.
//!
//! If making records durable fails, the caller drops the runtime ([`ShardRuntime::fail`]) and
//! loads the shard again from what the partition holds.
//!
//! Timeouts are the shard's own business: the host calls a handler with the current time
//! (`tick`) often enough, as a write like any other.

use std::collections::VecDeque;

use crate::group::RequestId;

/// How a write's records go into the partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BatchKind {
    /// An ordinary batch (no producer id).
    #[default]
    Plain,
    /// A transactional batch of a client's producer (TxnOffsetCommit), visible once the
    /// transaction commits.
    Transactional {
        producer_id: i64,
        producer_epoch: i16,
    },
    /// A transaction marker: a control batch that ends `producer_id`'s transaction in this
    /// partition. The write carries no records.
    Marker {
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        coordinator_epoch: i32,
    },
}

/// What a handler produced: the records to append, as one batch of `kind`, and replies to
/// held requests (sent once the records are durable).
#[derive(Debug)]
pub struct Outcome<R, P> {
    pub records: Vec<R>,
    pub replies: Vec<(RequestId, P)>,
    pub kind: BatchKind,
}

impl<R, P> Default for Outcome<R, P> {
    fn default() -> Self {
        Self {
            records: Vec::new(),
            replies: Vec::new(),
            kind: BatchKind::Plain,
        }
    }
}

impl<R, P> Outcome<R, P> {
    pub fn is_empty(&self) -> bool {
        self.records.is_empty() && self.replies.is_empty() && self.kind == BatchKind::Plain
    }

    fn appends(&self) -> bool {
        !self.records.is_empty() || matches!(self.kind, BatchKind::Marker { .. })
    }
}

/// One entry read back from the partition when a shard loads.
#[derive(Debug)]
pub enum Replayed<'a, R> {
    /// A record; `producer_id` is set when it came in a transactional batch.
    Record {
        record: &'a R,
        producer_id: Option<i64>,
    },
    /// A transaction marker.
    Marker { producer_id: i64, commit: bool },
}

/// A coordinator's state for one partition of its internal topic.
pub trait Shard {
    type Record;
    type Reply;

    /// Applies what was read back from the partition (at load, in log order).
    fn replay(&mut self, entry: Replayed<'_, Self::Record>, now: i64);

    /// Everything was replayed: drop what replay left half-built.
    fn finish_load(&mut self) {}

    /// A write's records are durable. Shards that change their state while handling (and
    /// rely on [`Shard::revert`]) need not do anything here.
    fn on_durable(&mut self, _records: &[Self::Record], _kind: BatchKind, _now: i64) {}

    /// A write opens: from here on, changes must be revertible.
    fn begin(&mut self);
    /// The write's records were appended: keep its changes.
    fn commit(&mut self);
    /// The write's records could not be appended: undo its changes.
    fn revert(&mut self);
}

/// A record of a coordinator's internal topic, as a key and a value (`None`: a tombstone).
pub trait CoordinatorRecord: Sized {
    fn key(&self) -> bytes::Bytes;
    fn value(&self) -> Option<bytes::Bytes>;
    /// Reads a record back from the partition; records of an unknown version are an error.
    fn decode(key: &[u8], value: Option<&[u8]>) -> Result<Self, String>;
}

/// Why records could not be appended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// This broker no longer leads the partition.
    #[error("not the coordinator: {0}")]
    NotCoordinator(String),
    /// The partition could not take the records (storage error, encoding error).
    #[error("coordinator not available: {0}")]
    NotAvailable(String),
}

/// Appends a shard's records to its partition.
pub trait PartitionWriter<R> {
    /// Appends `records` as one batch of `kind` (a marker carries none) and returns the
    /// offset after it: the offset that must be durable before the write counts.
    fn append(&mut self, records: &[R], kind: BatchKind, now: i64) -> Result<i64, WriteError>;
}

/// A write that went through, and the offset to wait for before its replies are released.
#[derive(Debug)]
pub struct Written<T> {
    pub value: T,
    pub wait_for: i64,
}

/// A write that did not: the error and the held requests whose replies will never come.
#[derive(Debug)]
pub struct Failed {
    pub error: WriteError,
    pub requests: Vec<RequestId>,
}

struct Held<R, P> {
    /// Released once everything below this offset is durable.
    end: i64,
    records: Vec<R>,
    kind: BatchKind,
    replies: Vec<(RequestId, P)>,
}

/// One loaded shard and the writes not yet durable.
pub struct ShardRuntime<S: Shard> {
    state: S,
    /// The offset after the last record appended.
    written: i64,
    /// Everything below this offset is durable.
    durable: i64,
    held: VecDeque<Held<S::Record, S::Reply>>,
}

impl<S: Shard> std::fmt::Debug for ShardRuntime<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardRuntime")
            .field("written", &self.written)
            .field("durable", &self.durable)
            .field("held", &self.held.len())
            .finish()
    }
}

impl<S: Shard> ShardRuntime<S> {
    /// A shard loaded from its partition, whose log (all durable) ends at `end_offset`.
    pub fn new(state: S, end_offset: i64) -> Self {
        Self {
            state,
            written: end_offset,
            durable: end_offset,
            held: VecDeque::new(),
        }
    }

    /// The shard, to read. Prefer [`Self::read`], which says how long to wait.
    pub fn state(&self) -> &S {
        &self.state
    }

    pub fn written_offset(&self) -> i64 {
        self.written
    }

    pub fn durable_offset(&self) -> i64 {
        self.durable
    }

    /// Runs `handle` as a write (see the module docs). On success, wait until `wait_for` is
    /// durable, then call [`Self::durable`].
    pub fn write<T, W: PartitionWriter<S::Record>>(
        &mut self,
        writer: &mut W,
        now: i64,
        handle: impl FnOnce(&mut S, i64) -> (T, Outcome<S::Record, S::Reply>),
    ) -> Result<Written<T>, Failed> {
        self.state.begin();
        let (value, outcome) = handle(&mut self.state, now);
        if outcome.appends() {
            match writer.append(&outcome.records, outcome.kind, now) {
                Ok(end) => self.written = self.written.max(end),
                Err(error) => {
                    self.state.revert();
                    return Err(Failed {
                        error,
                        requests: outcome.replies.into_iter().map(|(id, _)| id).collect(),
                    });
                }
            }
        }
        self.state.commit();
        if outcome.appends() || !outcome.replies.is_empty() {
            self.held.push_back(Held {
                end: self.written,
                records: outcome.records,
                kind: outcome.kind,
                replies: outcome.replies,
            });
        }
        Ok(Written {
            value,
            wait_for: self.written,
        })
    }

    /// Runs `change`, which appends nothing (a heartbeat's new session deadline): no record,
    /// so nothing to revert and no journal to keep. Its answer, like a read's, may be sent once
    /// `wait_for` is durable.
    pub fn update<T>(&mut self, now: i64, change: impl FnOnce(&mut S, i64) -> T) -> Written<T> {
        Written {
            value: change(&mut self.state, now),
            wait_for: self.written,
        }
    }

    /// Reads the shard; the answer may be sent once `wait_for` is durable.
    pub fn read<T>(&self, f: impl FnOnce(&S) -> T) -> Written<T> {
        Written {
            value: f(&self.state),
            wait_for: self.written,
        }
    }

    /// Everything below `offset` is durable: completes the writes it covers and returns their
    /// replies, in write order.
    pub fn durable(&mut self, offset: i64, now: i64) -> Vec<(RequestId, S::Reply)> {
        self.durable = self.durable.max(offset.min(self.written));
        let mut replies = Vec::new();
        while self.held.front().is_some_and(|h| h.end <= self.durable) {
            let Some(h) = self.held.pop_front() else {
                break;
            };
            self.state.on_durable(&h.records, h.kind, now);
            replies.extend(h.replies);
        }
        replies
    }

    /// The records could not be made durable: the shard is dropped. Returns every held
    /// request, whose replies must be failed.
    pub fn fail(self) -> Vec<RequestId> {
        self.held
            .into_iter()
            .flat_map(|h| h.replies.into_iter().map(|(id, _)| id))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::JournaledMap;

    /// A counter per key; `on_durable` counts completed writes.
    #[derive(Default)]
    struct Counts {
        map: JournaledMap<&'static str, i32>,
        completed: usize,
    }

    impl Shard for Counts {
        type Record = &'static str;
        type Reply = i32;
        fn replay(&mut self, entry: Replayed<'_, &'static str>, _now: i64) {
            if let Replayed::Record { record, .. } = entry {
                *self.map.get_or_insert_with(record, || 0) += 1;
            }
        }
        fn on_durable(&mut self, _records: &[&'static str], _kind: BatchKind, _now: i64) {
            self.completed += 1;
        }
        fn begin(&mut self) {
            self.map.begin();
        }
        fn commit(&mut self) {
            self.map.commit();
        }
        fn revert(&mut self) {
            self.map.revert();
        }
    }

    struct Log {
        end: i64,
        fail: bool,
    }

    impl PartitionWriter<&'static str> for Log {
        fn append(&mut self, r: &[&'static str], _: BatchKind, _: i64) -> Result<i64, WriteError> {
            if self.fail {
                return Err(WriteError::NotAvailable("disk full".into()));
            }
            self.end += r.len() as i64;
            Ok(self.end)
        }
    }

    fn bump(
        key: &'static str,
        request: RequestId,
    ) -> impl FnOnce(&mut Counts, i64) -> ((), Outcome<&'static str, i32>) {
        move |s, _| {
            let n = s.map.get_or_insert_with(key, || 0);
            *n += 1;
            let reply = *n;
            let out = Outcome {
                records: vec![key],
                replies: vec![(request, reply)],
                kind: BatchKind::Plain,
            };
            ((), out)
        }
    }

    #[test]
    fn replies_wait_until_their_records_are_durable() {
        let mut rt = ShardRuntime::new(Counts::default(), 0);
        let mut log = Log {
            end: 0,
            fail: false,
        };
        let w1 = rt.write(&mut log, 0, bump("a", 1)).unwrap();
        let w2 = rt.write(&mut log, 0, bump("a", 2)).unwrap();
        assert_eq!((w1.wait_for, w2.wait_for), (1, 2));
        assert_eq!(rt.durable(1, 0), vec![(1, 1)]);
        assert_eq!(rt.state().completed, 1);
        assert_eq!(rt.durable(2, 0), vec![(2, 2)]);
        // A read waits for what was written before it.
        let r = rt.read(|s| *s.map.get("a").unwrap());
        assert_eq!((r.value, r.wait_for), (2, 2));
    }

    #[test]
    fn a_failed_append_reverts_the_shard_and_fails_the_held_replies() {
        let mut rt = ShardRuntime::new(Counts::default(), 0);
        let mut log = Log {
            end: 0,
            fail: false,
        };
        rt.write(&mut log, 0, bump("a", 1)).unwrap();
        log.fail = true;
        let failed = rt.write(&mut log, 0, bump("a", 2)).unwrap_err();
        assert_eq!(failed.requests, vec![2]);
        assert!(matches!(failed.error, WriteError::NotAvailable(_)));
        assert_eq!(
            rt.state().map.get("a"),
            Some(&1),
            "state is as before the write"
        );
        assert_eq!(rt.written_offset(), 1);
        // The earlier write still completes.
        assert_eq!(rt.durable(1, 0), vec![(1, 1)]);
    }

    #[test]
    fn failing_durability_hands_back_every_held_request() {
        let mut rt = ShardRuntime::new(Counts::default(), 0);
        let mut log = Log {
            end: 0,
            fail: false,
        };
        rt.write(&mut log, 0, bump("a", 1)).unwrap();
        rt.write(&mut log, 0, bump("b", 2)).unwrap();
        assert_eq!(rt.fail(), vec![1, 2]);
    }
}
