//! The producer's requests to the transaction coordinator, and its transaction methods:
//! `init_transactions`, `begin_transaction`, `send_offsets_to_transaction`,
//! `commit_transaction`, `abort_transaction`, as the Java client's. Also the InitProducerId
//! of an idempotent producer that is not transactional, which the sender runs.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Request, StrBytes};

use super::accumulator::TopicPartition;
use super::{Producer, Shared};
use crate::cluster::Lane;
use crate::error::{Error, KafkaCode, Result};

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// The group a consumer belongs to, for `send_offsets_to_transaction` (the Java client's
/// `ConsumerGroupMetadata`): with a generation and member id the coordinator checks that the
/// committing member still owns its partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupMetadata {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
}

impl ConsumerGroupMetadata {
    /// Only the group id (no member checks, as the Java client's `send_offsets_to_transaction(offsets, groupId)`).
    pub fn new(group_id: impl Into<String>) -> Self {
        Self {
            group_id: group_id.into(),
            generation_id: -1,
            member_id: String::new(),
            group_instance_id: None,
        }
    }
}

/// What to do after a coordinator answered with `code`.
enum Next {
    Done,
    /// Ask again soon (CONCURRENT_TRANSACTIONS, loading).
    Retry,
    /// Find the coordinator again.
    Rediscover,
    Fail(Error),
}

fn next_for(code: i16, context: &str) -> Next {
    match code {
        0 => Next::Done,
        // COORDINATOR_LOAD_IN_PROGRESS, CONCURRENT_TRANSACTIONS
        14 | 51 => Next::Retry,
        // COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR
        15 | 16 => Next::Rediscover,
        c => Next::Fail(Error::kafka(c, context.to_string())),
    }
}

/// Whether `e` fences the producer for good (a newer instance took its transactional id).
fn is_fencing(e: &Error) -> bool {
    matches!(
        e.code(),
        Some(KafkaCode(47)) | Some(KafkaCode(90)) | Some(KafkaCode(52))
    )
}

impl Shared {
    fn txn_id(&self) -> Result<String> {
        self.txn_manager()
            .and_then(|m| m.transactional_id.clone())
            .ok_or_else(|| Error::Config("the producer has no transactional.id".into()))
    }

    fn txn_manager(&self) -> Option<std::sync::MutexGuard<'_, super::txn::TxnManager>> {
        self.txn
            .as_ref()
            .map(|m| m.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Sends a request to the coordinator of `key` (`key_type` 1: the transaction, 0: a
    /// group) until it is answered with no retriable error, or `max.block.ms` passes.
    async fn coordinator_call<R: Request>(
        &self,
        key: &str,
        key_type: i8,
        request: impl Fn(i16) -> R,
        code_of: impl Fn(&R::Response) -> i16,
        what: &str,
    ) -> Result<R::Response> {
        let deadline = Instant::now() + self.cfg.max_block;
        let mut coordinator = None;
        loop {
            let attempt = async {
                let node = match coordinator {
                    Some(n) => n,
                    None => self.cluster.find_coordinator(key, key_type).await?,
                };
                coordinator = Some(node);
                let conn = self.cluster.conn(node, Lane::Group).await?;
                let v = conn.version_for::<R>()?;
                let resp = conn.send_at(&request(v), v).await?;
                Ok::<_, Error>(resp)
            };
            let next = match attempt.await {
                Ok(resp) => match next_for(code_of(&resp), what) {
                    Next::Done => return Ok(resp),
                    n => n,
                },
                Err(e) if e.is_retriable() => Next::Rediscover,
                Err(e) => Next::Fail(e),
            };
            if let Next::Fail(e) = &next {
                tracing::debug!(%what, error = %e, "transaction request failed");
            }
            match next {
                Next::Done => {}
                Next::Fail(e) => return Err(e),
                Next::Retry => {}
                Next::Rediscover => coordinator = None,
            }
            let pause = self
                .cluster
                .backoff()
                .min(std::time::Duration::from_millis(20));
            if Instant::now() + pause >= deadline {
                return Err(Error::Timeout(format!("{what} within max.block.ms")));
            }
            tokio::time::sleep(pause).await;
        }
    }

    /// InitProducerId for the transactional id; `expected` bumps the epoch of the current
    /// producer id (after an abort that broke its sequences, KIP-360).
    async fn init_transactional(&self, expected: Option<(i64, i16)>) -> Result<(i64, i16)> {
        let id = self.txn_id()?;
        let timeout = self.txn_manager().map_or(60_000, |m| m.timeout_ms);
        let (pid, epoch) = expected.unwrap_or((-1, -1));
        let resp = self
            .coordinator_call(
                &id,
                1,
                |v| {
                    let mut r = InitProducerIdRequest::default()
                        .with_transactional_id(Some(TransactionalId(s(&id))))
                        .with_transaction_timeout_ms(timeout);
                    if v >= 3 {
                        r = r
                            .with_producer_id(ProducerId(pid))
                            .with_producer_epoch(epoch);
                    }
                    r
                },
                |r: &InitProducerIdResponse| r.error_code,
                "InitProducerId",
            )
            .await?;
        Ok((resp.producer_id.0, resp.producer_epoch))
    }

    /// AddPartitionsToTxn for partitions about to get their first batch of the transaction.
    pub(crate) async fn add_partitions(&self, tps: &[TopicPartition]) -> Result<()> {
        let id = self.txn_id()?;
        let Some((pid, epoch)) = self.txn_manager().and_then(|m| m.identity()) else {
            return Err(Error::Config("no producer id".into()));
        };
        let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for (t, p) in tps {
            topics.entry(t).or_default().push(*p);
        }
        let wire: Vec<AddPartitionsToTxnTopic> = topics
            .iter()
            .map(|(t, ps)| {
                AddPartitionsToTxnTopic::default()
                    .with_name(TopicName(s(t)))
                    .with_partitions(ps.clone())
            })
            .collect();
        self.coordinator_call(
            &id,
            1,
            |_| {
                AddPartitionsToTxnRequest::default()
                    .with_v3_and_below_transactional_id(TransactionalId(s(&id)))
                    .with_v3_and_below_producer_id(ProducerId(pid))
                    .with_v3_and_below_producer_epoch(epoch)
                    .with_v3_and_below_topics(wire.clone())
            },
            |r: &AddPartitionsToTxnResponse| {
                r.results_by_topic_v3_and_below
                    .iter()
                    .flat_map(|t| t.results_by_partition.iter())
                    .map(|p| p.partition_error_code)
                    .find(|c| *c != 0)
                    .unwrap_or(0)
            },
            "AddPartitionsToTxn",
        )
        .await
        .map(|_| ())
    }

    /// EndTxn; an epoch-bumping answer (v5+) moves the producer to its new epoch.
    async fn end_txn(&self, commit: bool) -> Result<()> {
        let id = self.txn_id()?;
        let Some((pid, epoch)) = self.txn_manager().and_then(|m| m.identity()) else {
            return Err(Error::Config("no producer id".into()));
        };
        let resp = self
            .coordinator_call(
                &id,
                1,
                |_| {
                    EndTxnRequest::default()
                        .with_transactional_id(TransactionalId(s(&id)))
                        .with_producer_id(ProducerId(pid))
                        .with_producer_epoch(epoch)
                        .with_committed(commit)
                },
                |r: &EndTxnResponse| r.error_code,
                if commit {
                    "EndTxn(commit)"
                } else {
                    "EndTxn(abort)"
                },
            )
            .await?;
        if resp.producer_epoch > epoch && resp.producer_id.0 >= 0 {
            if let Some(mut m) = self.txn_manager() {
                m.set_identity(resp.producer_id.0, resp.producer_epoch);
            }
        }
        Ok(())
    }
}

/// The sender's InitProducerId for an idempotent producer without a transactional id.
pub(crate) async fn init_idempotent(s: Arc<Shared>) {
    let _done = TaskDone { s: &s, add: false };
    loop {
        let attempt = async {
            let conn = s.cluster.any_conn().await?;
            let resp = conn
                .send(
                    &InitProducerIdRequest::default()
                        .with_transactional_id(None)
                        .with_transaction_timeout_ms(i32::MAX)
                        .with_producer_id(ProducerId(-1))
                        .with_producer_epoch(-1),
                )
                .await?;
            crate::error::check(resp.error_code, || "InitProducerId".to_string())?;
            Ok::<_, Error>((resp.producer_id.0, resp.producer_epoch))
        };
        match attempt.await {
            Ok((pid, epoch)) => {
                if let Some(mut m) = s.txn_manager() {
                    m.set_identity(pid, epoch);
                }
                return;
            }
            Err(e) if e.is_retriable() => tokio::time::sleep(s.cluster.backoff()).await,
            Err(e) => {
                tracing::error!(error = %e, "cannot get a producer id; enable.idempotence=false sends without one");
                if let Some(mut m) = s.txn_manager() {
                    m.set_fatal(e);
                }
                return;
            }
        }
    }
}

/// Clears the sender's "under way" flag and wakes it however its task ends (a panic too),
/// so the sender never waits for a task that is gone.
struct TaskDone<'a> {
    s: &'a Shared,
    add: bool,
}

impl Drop for TaskDone<'_> {
    fn drop(&mut self) {
        if let Some(mut m) = self.s.txn_manager() {
            if self.add {
                m.add_running = false;
            } else {
                m.init_running = false;
            }
        }
        self.s.wake.notify_one();
    }
}

/// The sender's AddPartitionsToTxn for partitions with batches waiting.
pub(crate) async fn add_partitions_task(s: Arc<Shared>, tps: Vec<TopicPartition>) {
    let _done = TaskDone { s: &s, add: true };
    let result = s.add_partitions(&tps).await;
    if let Some(mut m) = s.txn_manager() {
        match result {
            Ok(()) => m.added(tps),
            Err(e) if is_fencing(&e) => m.fenced(e),
            Err(e) => m.abortable(e),
        }
    }
}

impl Producer {
    fn manager(&self) -> Result<std::sync::MutexGuard<'_, super::txn::TxnManager>> {
        self.shared
            .txn_manager()
            .filter(|m| m.is_transactional())
            .ok_or_else(|| Error::Config("the producer has no transactional.id".into()))
    }

    /// Registers the transactional id with its coordinator and fences any earlier producer
    /// with the same id (its open transaction is aborted). Call once, before the first
    /// transaction.
    pub async fn init_transactions(&self) -> Result<()> {
        drop(self.manager()?);
        let (pid, epoch) = match self.shared.init_transactional(None).await {
            Ok(x) => x,
            Err(e) => {
                if is_fencing(&e) {
                    self.manager()?.set_fatal(e.clone());
                }
                return Err(e);
            }
        };
        let mut m = self.manager()?;
        m.set_identity(pid, epoch);
        m.initialized();
        Ok(())
    }

    /// Opens a transaction: what is sent from now until the commit or abort is part of it.
    pub fn begin_transaction(&self) -> Result<()> {
        self.manager()?.begin()
    }

    /// Commits `offsets` (`(topic, partition, next offset to read)`) for the consumer's group
    /// as part of the transaction: they count only if the transaction commits.
    pub async fn send_offsets_to_transaction(
        &self,
        offsets: &[(String, i32, i64)],
        group: &ConsumerGroupMetadata,
    ) -> Result<()> {
        let (id, pid, epoch) = {
            let m = self.manager()?;
            m.check_send()?;
            let (pid, epoch) = m
                .identity()
                .ok_or_else(|| Error::Config("init_transactions first".into()))?;
            (m.transactional_id.clone().unwrap_or_default(), pid, epoch)
        };
        let added = self
            .shared
            .coordinator_call(
                &id,
                1,
                |_| {
                    AddOffsetsToTxnRequest::default()
                        .with_transactional_id(TransactionalId(s(&id)))
                        .with_producer_id(ProducerId(pid))
                        .with_producer_epoch(epoch)
                        .with_group_id(GroupId(s(&group.group_id)))
                },
                |r: &AddOffsetsToTxnResponse| r.error_code,
                "AddOffsetsToTxn",
            )
            .await;
        if let Err(e) = added {
            self.record_failure(&e);
            return Err(e);
        }
        let mut by_topic: BTreeMap<&str, Vec<TxnOffsetCommitRequestPartition>> = BTreeMap::new();
        for (t, p, o) in offsets {
            by_topic.entry(t).or_default().push(
                TxnOffsetCommitRequestPartition::default()
                    .with_partition_index(*p)
                    .with_committed_offset(*o)
                    .with_committed_leader_epoch(-1),
            );
        }
        let topics: Vec<TxnOffsetCommitRequestTopic> = by_topic
            .into_iter()
            .map(|(t, ps)| {
                TxnOffsetCommitRequestTopic::default()
                    .with_name(TopicName(s(t)))
                    .with_partitions(ps)
            })
            .collect();
        let committed = self
            .shared
            .coordinator_call(
                &group.group_id,
                0,
                |_| {
                    TxnOffsetCommitRequest::default()
                        .with_transactional_id(TransactionalId(s(&id)))
                        .with_group_id(GroupId(s(&group.group_id)))
                        .with_producer_id(ProducerId(pid))
                        .with_producer_epoch(epoch)
                        .with_generation_id(group.generation_id)
                        .with_member_id(s(&group.member_id))
                        .with_group_instance_id(group.group_instance_id.as_deref().map(s))
                        .with_topics(topics.clone())
                },
                |r: &TxnOffsetCommitResponse| {
                    r.topics
                        .iter()
                        .flat_map(|t| t.partitions.iter())
                        .map(|p| p.error_code)
                        .find(|c| *c != 0)
                        .unwrap_or(0)
                },
                "TxnOffsetCommit",
            )
            .await;
        if let Err(e) = committed {
            self.record_failure(&e);
            return Err(e);
        }
        Ok(())
    }

    fn record_failure(&self, e: &Error) {
        if let Ok(mut m) = self.manager() {
            if is_fencing(e) {
                m.fenced(e.clone());
            } else {
                m.abortable(e.clone());
            }
        }
    }

    /// Sends everything of the transaction, then commits it. If a record of it failed, the
    /// transaction cannot commit: the error says so, and only `abort_transaction` is left.
    pub async fn commit_transaction(&self) -> Result<()> {
        {
            let m = self.manager()?;
            if let Some(e) = m.fatal_error() {
                return Err(e.clone());
            }
            if m.state() != super::txn::TxnState::InTransaction {
                return Err(Error::Config(
                    "commit_transaction with no open transaction".into(),
                ));
            }
        }
        let flushed = self.flush().await;
        {
            let m = self.manager()?;
            if let Some(e) = m.fatal_error() {
                return Err(e.clone());
            }
            if let Some(e) = m.abortable_error() {
                return Err(Error::TransactionAbortable(e.to_string()));
            }
        }
        flushed?;
        if let Err(e) = self.shared.end_txn(true).await {
            self.record_failure(&e);
            return Err(e);
        }
        self.manager()?.ended();
        Ok(())
    }

    /// Aborts the open transaction: what it wrote is never read by `read_committed`
    /// consumers. Records not yet answered are answered first.
    pub async fn abort_transaction(&self) -> Result<()> {
        {
            let m = self.manager()?;
            if let Some(e) = m.fatal_error() {
                return Err(e.clone());
            }
            if m.state() != super::txn::TxnState::InTransaction {
                return Err(Error::Config(
                    "abort_transaction with no open transaction".into(),
                ));
            }
        }
        // Batches already sent must be answered before the markers go out.
        let _ = self.flush().await;
        if let Err(e) = self.shared.end_txn(false).await {
            self.record_failure(&e);
            return Err(e);
        }
        let broken = {
            let mut m = self.manager()?;
            m.ended();
            m.needs_reset.then(|| m.identity()).flatten()
        };
        if let Some(current) = broken {
            // Sequences were broken inside the aborted transaction: a new epoch starts them over.
            let (pid, epoch) = self.shared.init_transactional(Some(current)).await?;
            self.manager()?.set_identity(pid, epoch);
        }
        Ok(())
    }
}
