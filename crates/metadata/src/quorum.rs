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

pub type ProposeFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Committed, QuorumError>> + Send + 'a>>;

pub trait Quorum: Send + Sync {
    /// Proposes `records` as the next entries of the log; resolves once they are committed and
    /// applied. Proposals are committed in the order they are made.
    fn propose(&self, records: Vec<MetadataRecord>) -> ProposeFuture<'_>;
    /// The image of the committed log, published after every commit.
    fn watch(&self) -> watch::Receiver<Arc<MetadataImage>>;
    /// The image of the committed log now.
    fn image(&self) -> Arc<MetadataImage> {
        self.watch().borrow().clone()
    }
}

struct Local {
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
        let mut vote = store.vote();
        if vote.term < last_term.max(1) || vote.voted_for != Some(node_id) {
            // A new term at each start, as an election won alone would give.
            vote = Vote {
                term: vote.term.max(last_term) + 1,
                voted_for: Some(node_id),
            };
            store.save_vote(vote)?;
        }
        let (published, _) = watch::channel(state.image().clone());
        let local = Local {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::PartitionRecord;
    use uuid::Uuid;

    fn create(name: &str, n: u128) -> MetadataRecord {
        MetadataRecord::CreateTopic {
            name: name.into(),
            topic_id: Uuid::from_u128(n),
            partitions: vec![PartitionRecord {
                partition: 0,
                replicas: vec![1],
                isr: vec![1],
                leader: 1,
                leader_epoch: 0,
            }],
            configs: Default::default(),
        }
    }

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
    }
}
