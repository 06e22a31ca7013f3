//! The transaction coordinator, as a pure state machine: the transactional ids of one
//! `__transaction_state` partition (a [`Shard`] of the coordinator runtime).
//!
//! Every change is a [`TxnRecord`] the handler returns; the state of an id changes only when
//! that record is durable ([`Shard::on_durable`]), and until then the id has a *pending*
//! transition: other requests for it get CONCURRENT_TRANSACTIONS, and if the append fails the
//! runtime reverts the pending mark, so nothing changed at all. This is Kafka's
//! `TransactionMetadata.prepareTransitionTo` / `completeTransitionTo`.
//!
//! States and their moves (Kafka's):
//!
//! | from | request | to |
//! |---|---|---|
//! | (none), Empty, CompleteCommit, CompleteAbort | InitProducerId | Empty, epoch + 1 (a new producer id once the epoch is spent) |
//! | Ongoing | InitProducerId | PrepareAbort at epoch + 1 (the old instance is fenced; the caller retries) |
//! | Empty, Ongoing, CompleteX | AddPartitionsToTxn, AddOffsetsToTxn | Ongoing |
//! | Ongoing | EndTxn | PrepareCommit / PrepareAbort (markers go out, then CompleteX) |
//! | Ongoing, timed out | tick | PrepareAbort at epoch + 1 |
//! | Empty, CompleteX, idle past `transactional.id.expiration.ms` | tick | (tombstone) |
//!
//! Writing the markers is the host's job (it is IO): after a PrepareX is durable, the host
//! appends a COMMIT or ABORT marker to every partition of the transaction, then calls
//! [`TxnCoordinator::complete`]. After a restart, [`TxnCoordinator::prepared`] lists the
//! transactions whose markers must be written again.

pub mod records;

use std::collections::BTreeSet;

use kafka_protocol::error::ResponseError as E;

use crate::journal::JournaledMap;
use crate::runtime::{self, BatchKind, Replayed, Shard};
pub use records::{TxnPartitions, TxnRecord, TxnState, TxnValue};

/// An epoch at or past this is spent: the next InitProducerId gets a new producer id.
pub const EPOCH_EXHAUSTED: i16 = i16::MAX - 1;

pub type TxnOutcome = runtime::Outcome<TxnRecord, ()>;

/// Settings under Kafka's broker config names.
#[derive(Debug, Clone)]
pub struct TxnConfig {
    /// `transaction.max.timeout.ms`
    pub max_timeout_ms: i32,
    /// `transactional.id.expiration.ms`
    pub id_expiration_ms: i64,
}

impl Default for TxnConfig {
    fn default() -> Self {
        Self {
            max_timeout_ms: 900_000,
            id_expiration_ms: 7 * 24 * 3600 * 1000,
        }
    }
}

/// One transactional id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMetadata {
    pub transactional_id: String,
    /// What is durable. A brand-new id has epoch -1 until its first record is.
    pub value: TxnValue,
    /// The epoch before the last bump (-1: none), to recognise a retried InitProducerId.
    pub last_epoch: i16,
    /// The transition being written, if any.
    pub pending: Option<Pending>,
    /// The last EndTxn bumped the epoch (KIP-890, EndTxn v5+): a retry may carry the old one.
    pub bumped_on_end: bool,
}

/// A transition whose record is not durable yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// `None`: the id is being removed (tombstone).
    pub value: Option<TxnValue>,
    pub last_epoch: i16,
    pub bumped_on_end: bool,
}

/// What InitProducerId decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitResult {
    /// The producer id and epoch to answer with once the record is durable.
    Ready {
        producer_id: i64,
        producer_epoch: i16,
    },
    /// The previous instance had an open transaction: it is being aborted (a PrepareAbort at
    /// a fenced epoch is being written); complete it, then answer CONCURRENT_TRANSACTIONS.
    Fencing(Prepared),
    Failed(E),
}

/// A transaction whose PrepareCommit or PrepareAbort is being written: its markers go to
/// `partitions` once it is durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    pub transactional_id: String,
    pub producer_id: i64,
    /// The epoch the markers carry.
    pub producer_epoch: i16,
    pub commit: bool,
    pub partitions: TxnPartitions,
}

/// What EndTxn decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndResult {
    /// Markers must be written, then [`TxnCoordinator::complete`].
    Prepared(Prepared),
    /// Already complete with this result (a retry): answer at once.
    Done {
        producer_id: i64,
        producer_epoch: i16,
    },
    Failed(E),
}

/// A listed transaction (ListTransactions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedTxn {
    pub transactional_id: String,
    pub producer_id: i64,
    pub state: TxnState,
}

#[derive(Debug, Default, Clone)]
pub struct TxnCoordinator {
    config: TxnConfig,
    txns: JournaledMap<String, TxnMetadata>,
}

fn new_value(producer_id: i64, timeout_ms: i32, now: i64) -> TxnValue {
    TxnValue {
        producer_id,
        producer_epoch: -1,
        timeout_ms,
        state: TxnState::Empty,
        partitions: TxnPartitions::new(),
        last_update_ms: now,
        start_ms: -1,
    }
}

impl TxnCoordinator {
    pub fn new(config: TxnConfig) -> Self {
        Self {
            config,
            txns: JournaledMap::new(),
        }
    }

    pub fn get(&self, transactional_id: &str) -> Option<&TxnMetadata> {
        self.txns.get(transactional_id)
    }

    /// Every id, for listing.
    pub fn all(&self) -> impl Iterator<Item = &TxnMetadata> {
        self.txns.values()
    }

    /// Marks `id` as changing to `value` and returns the record that carries the change.
    fn transition(&mut self, id: &str, pending: Pending, out: &mut TxnOutcome) {
        out.records.push(TxnRecord {
            transactional_id: id.to_string(),
            value: pending.value.clone(),
        });
        if let Some(m) = self.txns.get_mut(id) {
            m.pending = Some(pending);
        }
    }

    /// Aborts the ongoing transaction `v` of `id` at the next epoch, fencing the producer that
    /// holds the current one (a second instance of the id, or a transaction past its timeout).
    fn fence(&mut self, id: &str, v: TxnValue, now: i64, out: &mut TxnOutcome) -> Prepared {
        let epoch = v.producer_epoch.saturating_add(1);
        let prepared = Prepared {
            transactional_id: id.to_string(),
            producer_id: v.producer_id,
            producer_epoch: epoch,
            commit: false,
            partitions: v.partitions.clone(),
        };
        let pending = Pending {
            value: Some(TxnValue {
                producer_epoch: epoch,
                state: TxnState::PrepareAbort,
                last_update_ms: now,
                ..v
            }),
            last_epoch: -1,
            bumped_on_end: false,
        };
        self.transition(id, pending, out);
        prepared
    }

    /// InitProducerId for a transactional id. `fresh_producer_id` is a producer id the caller
    /// allocated, used if the id is new or its epoch is spent. `expected` is the producer id
    /// and epoch the client holds (KIP-360), if any.
    pub fn init_producer_id(
        &mut self,
        id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
        fresh_producer_id: i64,
        now: i64,
    ) -> (InitResult, TxnOutcome) {
        let mut out = TxnOutcome::default();
        if id.is_empty() {
            return (InitResult::Failed(E::InvalidRequest), out);
        }
        if timeout_ms <= 0 || timeout_ms > self.config.max_timeout_ms {
            return (InitResult::Failed(E::InvalidTransactionTimeout), out);
        }
        let m = self
            .txns
            .get_or_insert_with(id.to_string(), || TxnMetadata {
                transactional_id: id.to_string(),
                value: new_value(fresh_producer_id, timeout_ms, now),
                last_epoch: -1,
                pending: None,
                bumped_on_end: false,
            });
        if m.pending.is_some() {
            return (InitResult::Failed(E::ConcurrentTransactions), out);
        }
        let v = m.value.clone();
        if let Some((pid, _)) = expected {
            if v.producer_epoch != -1 && pid != v.producer_id {
                return (InitResult::Failed(E::ProducerFenced), out);
            }
        }
        let fresh = |epoch: i16, pid: i64, last_epoch: i16| Pending {
            value: Some(TxnValue {
                producer_id: pid,
                producer_epoch: epoch,
                timeout_ms,
                state: TxnState::Empty,
                partitions: TxnPartitions::new(),
                last_update_ms: now,
                start_ms: -1,
            }),
            last_epoch,
            bumped_on_end: false,
        };
        let pending = match v.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort => {
                return (InitResult::Failed(E::ConcurrentTransactions), out)
            }
            TxnState::Ongoing => {
                // Fence the previous instance: abort its transaction at a new epoch.
                let prepared = self.fence(id, v, now, &mut out);
                return (InitResult::Fencing(prepared), out);
            }
            TxnState::Dead | TxnState::PrepareEpochFence => {
                return (InitResult::Failed(E::ConcurrentTransactions), out)
            }
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => {
                let spent = v.producer_epoch >= EPOCH_EXHAUSTED;
                match expected {
                    _ if spent && expected.is_none_or(|(_, e)| e == v.producer_epoch) => {
                        fresh(0, fresh_producer_id, v.producer_epoch)
                    }
                    None => fresh(v.producer_epoch + 1, v.producer_id, -1),
                    Some((_, e)) if v.producer_epoch == -1 || e == v.producer_epoch => {
                        fresh(v.producer_epoch + 1, v.producer_id, v.producer_epoch)
                    }
                    // A retry of the InitProducerId that made the current epoch.
                    Some((_, e)) if e == m.last_epoch => {
                        fresh(v.producer_epoch, v.producer_id, m.last_epoch)
                    }
                    Some(_) => return (InitResult::Failed(E::ProducerFenced), out),
                }
            }
        };
        let Some(value) = pending.value.as_ref() else {
            return (InitResult::Failed(E::UnknownServerError), out);
        };
        let ready = InitResult::Ready {
            producer_id: value.producer_id,
            producer_epoch: value.producer_epoch,
        };
        self.transition(id, pending, &mut out);
        (ready, out)
    }

    /// The checks AddPartitionsToTxn, AddOffsetsToTxn and EndTxn share: the id is known, the
    /// producer id is its own, the epoch current, and nothing is being written for it.
    fn check_producer(&self, id: &str, producer_id: i64, epoch: i16) -> Result<&TxnMetadata, E> {
        if id.is_empty() {
            return Err(E::InvalidRequest);
        }
        let m = self.txns.get(id).ok_or(E::InvalidProducerIdMapping)?;
        if m.value.producer_id != producer_id || m.value.producer_epoch < 0 {
            return Err(E::InvalidProducerIdMapping);
        }
        if epoch != m.value.producer_epoch {
            return Err(E::ProducerFenced);
        }
        Ok(m)
    }

    /// AddPartitionsToTxn (and AddOffsetsToTxn, with the group's `__consumer_offsets`
    /// partition): the partitions join the ongoing transaction, which starts if none is.
    pub fn add_partitions(
        &mut self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &TxnPartitions,
        now: i64,
    ) -> (Result<(), E>, TxnOutcome) {
        let mut out = TxnOutcome::default();
        let m = match self.check_producer(id, producer_id, epoch) {
            Ok(m) => m,
            Err(e) => return (Err(e), out),
        };
        if m.pending.is_some() || m.value.state.is_prepare() {
            return (Err(E::ConcurrentTransactions), out);
        }
        let v = &m.value;
        let all_in = partitions
            .iter()
            .all(|(t, ps)| v.partitions.get(t).is_some_and(|have| ps.is_subset(have)));
        if v.state == TxnState::Ongoing && all_in {
            return (Ok(()), out);
        }
        let mut joined = if v.state == TxnState::Ongoing {
            v.partitions.clone()
        } else {
            TxnPartitions::new()
        };
        for (t, ps) in partitions {
            joined.entry(t.clone()).or_default().extend(ps);
        }
        let start_ms = if v.state == TxnState::Ongoing {
            v.start_ms
        } else {
            now
        };
        let pending = Pending {
            value: Some(TxnValue {
                state: TxnState::Ongoing,
                partitions: joined,
                last_update_ms: now,
                start_ms,
                ..v.clone()
            }),
            last_epoch: m.last_epoch,
            bumped_on_end: false,
        };
        self.transition(id, pending, &mut out);
        (Ok(()), out)
    }

    /// The broker-side check of KIP-890 (AddPartitionsToTxn v4+ `verify_only`, and Produce):
    /// per partition, `None` if it is in the ongoing transaction, else TRANSACTION_ABORTABLE.
    /// Reads only.
    pub fn verify_partitions(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &TxnPartitions,
    ) -> Result<Vec<(String, i32, Option<E>)>, E> {
        let m = self.check_producer(id, producer_id, epoch)?;
        if m.value.state.is_prepare() {
            return Err(E::ConcurrentTransactions);
        }
        let ongoing = m.value.state == TxnState::Ongoing;
        Ok(partitions
            .iter()
            .flat_map(|(t, ps)| {
                let have = m.value.partitions.get(t);
                ps.iter().map(move |p| {
                    let in_txn = ongoing && have.is_some_and(|h| h.contains(p));
                    (t.clone(), *p, (!in_txn).then_some(E::TransactionAbortable))
                })
            })
            .collect())
    }

    /// EndTxn. With `bump_epoch` (EndTxn v5+, KIP-890 part 2) the transaction ends at a new
    /// epoch, which the markers and the answer carry.
    pub fn end_txn(
        &mut self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        bump_epoch: bool,
        now: i64,
    ) -> (EndResult, TxnOutcome) {
        let mut out = TxnOutcome::default();
        if id.is_empty() {
            return (EndResult::Failed(E::InvalidRequest), out);
        }
        let Some(m) = self.txns.get(id) else {
            return (EndResult::Failed(E::InvalidProducerIdMapping), out);
        };
        let v = &m.value;
        if v.producer_id != producer_id || v.producer_epoch < 0 {
            return (EndResult::Failed(E::InvalidProducerIdMapping), out);
        }
        // After a bumping EndTxn the client may retry with the epoch it had.
        let retry_of_bump = m.bumped_on_end && epoch.checked_add(1) == Some(v.producer_epoch);
        let ending = v.state.is_prepare() || v.state.is_complete();
        if epoch != v.producer_epoch && !(ending && retry_of_bump) {
            return (EndResult::Failed(E::ProducerFenced), out);
        }
        if m.pending.is_some() {
            return (EndResult::Failed(E::ConcurrentTransactions), out);
        }
        let done = EndResult::Done {
            producer_id: v.producer_id,
            producer_epoch: v.producer_epoch,
        };
        match (v.state, commit) {
            (TxnState::Ongoing, _) => {}
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => {
                return (done, out)
            }
            (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
                return (EndResult::Failed(E::ConcurrentTransactions), out)
            }
            _ => return (EndResult::Failed(E::InvalidTxnState), out),
        }
        let marker_epoch = if bump_epoch {
            v.producer_epoch.saturating_add(1)
        } else {
            v.producer_epoch
        };
        let prepared = Prepared {
            transactional_id: id.to_string(),
            producer_id: v.producer_id,
            producer_epoch: marker_epoch,
            commit,
            partitions: v.partitions.clone(),
        };
        let pending = Pending {
            value: Some(TxnValue {
                producer_epoch: marker_epoch,
                state: if commit {
                    TxnState::PrepareCommit
                } else {
                    TxnState::PrepareAbort
                },
                last_update_ms: now,
                ..v.clone()
            }),
            last_epoch: if bump_epoch {
                v.producer_epoch
            } else {
                m.last_epoch
            },
            bumped_on_end: bump_epoch,
        };
        self.transition(id, pending, &mut out);
        (EndResult::Prepared(prepared), out)
    }

    /// The markers of `prepared` are written: the transaction completes. `Err` if it is no
    /// longer the transaction the markers were for (its state moved on).
    pub fn complete(&mut self, prepared: &Prepared, now: i64) -> (Result<(), E>, TxnOutcome) {
        let mut out = TxnOutcome::default();
        let Some(m) = self.txns.get(&prepared.transactional_id) else {
            return (Err(E::InvalidProducerIdMapping), out);
        };
        let v = &m.value;
        let expected = if prepared.commit {
            TxnState::PrepareCommit
        } else {
            TxnState::PrepareAbort
        };
        if v.state != expected
            || v.producer_id != prepared.producer_id
            || v.producer_epoch != prepared.producer_epoch
        {
            return (Err(E::InvalidTxnState), out);
        }
        if m.pending.is_some() {
            return (Err(E::ConcurrentTransactions), out);
        }
        let pending = Pending {
            value: Some(TxnValue {
                state: if prepared.commit {
                    TxnState::CompleteCommit
                } else {
                    TxnState::CompleteAbort
                },
                partitions: TxnPartitions::new(),
                last_update_ms: now,
                ..v.clone()
            }),
            last_epoch: m.last_epoch,
            bumped_on_end: m.bumped_on_end,
        };
        let id = prepared.transactional_id.clone();
        self.transition(&id, pending, &mut out);
        (Ok(()), out)
    }

    /// Transactions whose PrepareCommit or PrepareAbort is durable and whose markers are not
    /// known to be written (after a load): the host writes them and completes each.
    pub fn prepared(&self) -> Vec<Prepared> {
        self.txns
            .values()
            .filter(|m| m.pending.is_none() && m.value.state.is_prepare())
            .map(|m| Prepared {
                transactional_id: m.transactional_id.clone(),
                producer_id: m.value.producer_id,
                producer_epoch: m.value.producer_epoch,
                commit: m.value.state == TxnState::PrepareCommit,
                partitions: m.value.partitions.clone(),
            })
            .collect()
    }

    /// Aborts every ongoing transaction past its timeout, at a new epoch (the producer that
    /// let it lapse is fenced), and removes ids idle past `transactional.id.expiration.ms`.
    /// Returns the aborts whose markers the host must write.
    pub fn tick(&mut self, now: i64) -> (Vec<Prepared>, TxnOutcome) {
        let mut out = TxnOutcome::default();
        let timed_out: Vec<String> = self
            .txns
            .values()
            .filter(|m| {
                m.pending.is_none()
                    && m.value.state == TxnState::Ongoing
                    && m.value
                        .start_ms
                        .saturating_add(i64::from(m.value.timeout_ms))
                        < now
            })
            .map(|m| m.transactional_id.clone())
            .collect();
        let mut aborts = Vec::new();
        for id in timed_out {
            let Some(v) = self.txns.get(&id).map(|m| m.value.clone()) else {
                continue;
            };
            aborts.push(self.fence(&id, v, now, &mut out));
        }
        let expiry = self.config.id_expiration_ms;
        let expired: Vec<String> = self
            .txns
            .values()
            .filter(|m| {
                m.pending.is_none()
                    && matches!(
                        m.value.state,
                        TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
                    )
                    && m.value.last_update_ms.saturating_add(expiry) <= now
            })
            .map(|m| m.transactional_id.clone())
            .collect();
        for id in expired {
            let pending = Pending {
                value: None,
                last_epoch: -1,
                bumped_on_end: false,
            };
            self.transition(&id, pending, &mut out);
        }
        (aborts, out)
    }

    /// ListTransactions: ids in `states` (all if empty) with producer ids in `producer_ids`
    /// (all if empty), running longer than `min_duration_ms` (-1: any). Dead ids are never
    /// listed.
    pub fn list(
        &self,
        states: &BTreeSet<TxnState>,
        producer_ids: &BTreeSet<i64>,
        min_duration_ms: i64,
        now: i64,
    ) -> Vec<ListedTxn> {
        self.txns
            .values()
            .filter(|m| m.value.producer_epoch >= 0 && m.value.state != TxnState::Dead)
            .filter(|m| states.is_empty() || states.contains(&m.value.state))
            .filter(|m| producer_ids.is_empty() || producer_ids.contains(&m.value.producer_id))
            .filter(|m| min_duration_ms < 0 || now - m.value.start_ms > min_duration_ms)
            .map(|m| ListedTxn {
                transactional_id: m.transactional_id.clone(),
                producer_id: m.value.producer_id,
                state: m.value.state,
            })
            .collect()
    }
}

impl Shard for TxnCoordinator {
    type Record = TxnRecord;
    type Reply = ();

    fn replay(&mut self, entry: Replayed<'_, TxnRecord>, _now: i64) {
        let Replayed::Record { record, .. } = entry else {
            return;
        };
        match &record.value {
            Some(v) => {
                self.txns.insert(
                    record.transactional_id.clone(),
                    TxnMetadata {
                        transactional_id: record.transactional_id.clone(),
                        value: v.clone(),
                        last_epoch: -1,
                        pending: None,
                        bumped_on_end: false,
                    },
                );
            }
            None => {
                self.txns.remove(&record.transactional_id);
            }
        }
    }

    fn on_durable(&mut self, records: &[TxnRecord], _kind: BatchKind, _now: i64) {
        for r in records {
            let Some(m) = self.txns.get_mut(&r.transactional_id) else {
                continue;
            };
            let Some(p) = m.pending.take() else { continue };
            match p.value {
                Some(v) => {
                    m.value = v;
                    m.last_epoch = p.last_epoch;
                    m.bumped_on_end = p.bumped_on_end;
                }
                None => {
                    self.txns.remove(&r.transactional_id);
                }
            }
        }
    }

    fn begin(&mut self) {
        self.txns.begin();
    }
    fn commit(&mut self) {
        self.txns.commit();
    }
    fn revert(&mut self) {
        self.txns.revert();
    }
}
