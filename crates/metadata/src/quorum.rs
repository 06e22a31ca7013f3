//! The metadata quorum: where metadata records are proposed, made durable and committed, and
//! where the image of what is committed is published.
//!
//! [`Quorum`] is what the controller writes through and what every node's image follows.
//! [`LocalQuorum`] is a quorum of one voter (the combined node Strand starts by default): an
//! entry is committed once it is fsynced to this node's [`LogStore`], then applied by the
//! [`MetadataStateMachine`]. A replicated quorum keeps the same store and state machine and
//! commits once a majority has the entry.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::image::MetadataImage;
use crate::record::MetadataRecord;
use crate::state_machine::MetadataStateMachine;
use crate::store::{Entry, LogStore, OpenReport, StoreError, Vote};

#[derive(Debug, thiserror::Error)]
pub enum QuorumError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// This node cannot commit now (not the leader, no majority); the caller may retry.
    #[error("the metadata quorum is not available: {0}")]
    NotAvailable(String),
}

/// Records committed: the offset of the last one and the image after them.
#[derive(Debug, Clone)]
pub struct Committed {
    pub offset: i64,
    pub image: Arc<MetadataImage>,
}

/// One replica of the metadata log, as DescribeQuorum reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaDescription {
    pub replica_id: i32,
    /// The offset after its last entry.
    pub log_end_offset: i64,
    /// When the leader last heard from it (the leader: now).
    pub last_fetch_ms: i64,
    /// When it last had everything the leader had (the leader: now).
    pub last_caught_up_ms: i64,
}

/// The quorum as DescribeQuorum reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumDescription {
    pub leader_id: i32,
    pub leader_epoch: u64,
    /// The offset after the last committed entry.
    pub high_watermark: i64,
    pub voters: Vec<ReplicaDescription>,
    pub observers: Vec<ReplicaDescription>,
}

pub type ProposeFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Committed, QuorumError>> + Send + 'a>>;

pub trait Quorum: Send + Sync {
    /// Proposes `records` as the next entries of the log; resolves once they are committed and
    /// applied. Proposals are committed in the order they are made.
    fn propose(&self, records: Vec<MetadataRecord>) -> ProposeFuture<'_>;
    /// The image of the committed log, published after every commit.
    fn watch(&self) -> watch::Receiver<Arc<MetadataImage>>;
    /// Leader, epoch, high watermark and replicas, now.
    fn describe(&self, now_ms: i64) -> QuorumDescription;
    /// The image of the committed log now.
    fn image(&self) -> Arc<MetadataImage> {
        self.watch().borrow().clone()
    }
}

struct Local {
    node_id: i32,
    store: LogStore,
    state: MetadataStateMachine,
    term: u64,
    snapshot_after_entries: usize,
}

/// A quorum of one voter: this node.
pub struct LocalQuorum {
    local: Mutex<Local>,
    published: watch::Sender<Arc<MetadataImage>>,
}

impl LocalQuorum {
    /// Opens the store in `dir` and replays it; `node_id` votes for itself. A snapshot is taken
    /// once `snapshot_after_entries` entries follow the last one.
    pub fn open(
        dir: &Path,
        node_id: i32,
        snapshot_after_entries: usize,
    ) -> Result<(Self, OpenReport), QuorumError> {
        let (mut store, snapshot, report) = LogStore::open(dir)?;
        let mut state = MetadataStateMachine::new(snapshot.as_ref());
        // One voter: everything in its own log is committed.
        state.apply(store.entries_from(0));
        let last_term = store.last().map_or(0, |(t, _)| t);
        // A new term at each start, as an election won alone would give.
        let vote = Vote {
            term: store.vote().term.max(last_term) + 1,
            voted_for: Some(node_id),
        };
        store.save_vote(vote)?;
        let (published, _) = watch::channel(state.image().clone());
        let local = Local {
            node_id,
            store,
            state,
            term: vote.term,
            snapshot_after_entries: snapshot_after_entries.max(1),
        };
        Ok((
            Self {
                local: Mutex::new(local),
                published,
            },
            report,
        ))
    }

    fn commit(&self, records: Vec<MetadataRecord>) -> Result<Committed, QuorumError> {
        let mut l = self
            .local
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Local {
            store,
            state,
            term,
            snapshot_after_entries,
            ..
        } = &mut *l;
        let first = store.next_offset();
        let entries: Vec<Entry> = records
            .into_iter()
            .enumerate()
            .map(|(i, record)| Entry {
                term: *term,
                offset: first + i as i64,
                record,
            })
            .collect();
        store.append(entries)?;
        let image = state.apply(store.entries_from(first)).clone();
        if store.len() >= *snapshot_after_entries {
            store.save_snapshot(&state.snapshot())?;
        }
        self.published.send_replace(image.clone());
        Ok(Committed {
            offset: image.offset,
            image,
        })
    }
}

impl Quorum for LocalQuorum {
    fn propose(&self, records: Vec<MetadataRecord>) -> ProposeFuture<'_> {
        // The fsync happens here, on the caller's task, as the single node always did.
        let committed = self.commit(records);
        Box::pin(std::future::ready(committed))
    }

    fn watch(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.published.subscribe()
    }

    fn describe(&self, now_ms: i64) -> QuorumDescription {
        let l = self
            .local
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // One voter: its log end is committed.
        let end = l.store.next_offset();
        QuorumDescription {
            leader_id: l.node_id,
            leader_epoch: l.term,
            high_watermark: end,
            voters: vec![ReplicaDescription {
                replica_id: l.node_id,
                log_end_offset: end,
                last_fetch_ms: now_ms,
                last_caught_up_ms: now_ms,
            }],
            observers: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::tests::topic as create;
    use uuid::Uuid;

    fn block<T>(f: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn commits_are_published_replayed_and_snapshotted() {
        let dir = tempfile::tempdir().unwrap();
        let (q, _) = LocalQuorum::open(dir.path(), 1, 3).unwrap();
        let mut seen = q.watch();
        for i in 0..5u128 {
            let c = block(q.propose(vec![create(&format!("t{i}"), i + 1)])).unwrap();
            assert_eq!(c.offset, i as i64);
        }
        let deleted = block(q.propose(vec![MetadataRecord::DeleteTopic {
            topic_id: Uuid::from_u128(2),
        }]))
        .unwrap();
        assert!(seen.has_changed().unwrap());
        assert_eq!(seen.borrow_and_update().offset, 5);
        let before = q.image();
        drop(q);
        let (q, report) = LocalQuorum::open(dir.path(), 1, 3).unwrap();
        // Snapshots after offsets 2 and 5; nothing left in the log.
        assert_eq!(report.snapshot_offset, Some(5));
        assert_eq!(*q.image(), *before);
        assert_eq!(
            q.image().topics.keys().collect::<Vec<_>>(),
            vec!["t0", "t2", "t3", "t4"]
        );
        assert_eq!(deleted.offset, 5);
        // Appends go on after the snapshot, in a later term.
        let c = block(q.propose(vec![create("t9", 10)])).unwrap();
        assert_eq!(c.offset, 6);
        let d = q.describe(42);
        assert_eq!((d.leader_id, d.leader_epoch, d.high_watermark), (1, 2, 7));
        assert_eq!(d.voters[0].log_end_offset, 7);
    }
}
