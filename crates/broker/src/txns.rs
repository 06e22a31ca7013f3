//! The transaction coordinator on this broker: one [`TxnCoordinator`] shard per partition of
//! `__transaction_state`, hosted like the group coordinator, and the IO the state machine
//! leaves to its host: writing a transaction's markers.
//!
//! Ending a transaction: the PrepareCommit/PrepareAbort record is made durable, then a COMMIT
//! or ABORT marker is appended to every partition of the transaction (through the group
//! coordinator for `__consumer_offsets`, so that its shard sees the marker in log order), each
//! made durable, and then the CompleteCommit/CompleteAbort record is written. A transaction
//! left in PrepareCommit/PrepareAbort (a crash, a failed marker write) is finished by the next
//! tick or after a restart. The marker's coordinator epoch is the leader epoch of the
//! transaction's `__transaction_state` partition.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use strand_metadata::ControllerRequest;

use kafka_protocol::error::ResponseError;
use strand_coordinator::txn::{Prepared, TxnConfig, TxnCoordinator};
use strand_coordinator::{partition_for, BatchKind, Outcome};
use strand_metadata::controller::{ApiError, NewTopic};
use strand_storage::LogError;

use crate::broker::Broker;
use crate::coordinator_host::CoordinatorHost;
use crate::groups::OFFSETS_TOPIC;

pub const TXN_TOPIC: &str = "__transaction_state";

pub struct Txns {
    pub host: CoordinatorHost<TxnCoordinator>,
    /// Transactions whose markers are being written, so that a tick does not start a second
    /// writer for them.
    finishing: Mutex<HashSet<String>>,
}

impl Txns {
    pub fn new(config: TxnConfig) -> Self {
        Self {
            host: CoordinatorHost::new(TXN_TOPIC, move |_| TxnCoordinator::new(config.clone())),
            finishing: Mutex::new(HashSet::new()),
        }
    }
}

/// Creates `__transaction_state` if it does not exist yet.
pub async fn ensure_txn_topic(broker: &Broker) -> Result<(), ApiError> {
    if broker.image().topic(TXN_TOPIC).is_some() {
        return Ok(());
    }
    let brokers = broker.image().brokers.len().max(1) as i16;
    let t = &broker.config.transactions;
    let new = NewTopic {
        name: TXN_TOPIC.to_string(),
        num_partitions: t.log_partitions,
        replication_factor: t.log_replication_factor.min(brokers),
        assignments: Vec::new(),
        configs: BTreeMap::from([
            ("cleanup.policy".to_string(), "compact".to_string()),
            ("compression.type".to_string(), "uncompressed".to_string()),
            ("segment.bytes".to_string(), t.log_segment_bytes.to_string()),
        ]),
    };
    let partitions = new.num_partitions;
    match broker.submit(ControllerRequest::CreateTopic(new)).await {
        Ok(_) => {
            tracing::info!(partitions, "created {TXN_TOPIC}");
            Ok(())
        }
        Err(e) if e.code == ResponseError::TopicAlreadyExists.code() => Ok(()),
        Err(e) => Err(e),
    }
}

/// The `__transaction_state` partition (and shard) of `transactional_id`.
pub fn shard_of(broker: &Broker, transactional_id: &str) -> i32 {
    let n = broker
        .image()
        .topic(TXN_TOPIC)
        .map_or(broker.config.transactions.log_partitions, |t| {
            t.partitions.len() as i32
        });
    partition_for(transactional_id, n)
}

/// Runs `f` as a write on the shard of `transactional_id` (creating the topic first).
pub async fn write<T>(
    broker: &Broker,
    transactional_id: &str,
    f: impl FnOnce(&mut TxnCoordinator, i64) -> (T, strand_coordinator::txn::TxnOutcome),
) -> Result<T, ResponseError> {
    if broker.image().topic(TXN_TOPIC).is_none() {
        if let Err(e) = ensure_txn_topic(broker).await {
            tracing::error!(error = %e.message, "cannot create {TXN_TOPIC}");
            return Err(ResponseError::CoordinatorNotAvailable);
        }
    }
    let shard = shard_of(broker, transactional_id);
    broker.txns.host.write(broker, shard, f).await
}

/// Reads the shard of `transactional_id`; before the topic exists no transaction does.
pub async fn read<T>(
    broker: &Broker,
    transactional_id: &str,
    f: impl FnOnce(&TxnCoordinator) -> T,
) -> Result<T, ResponseError> {
    if broker.image().topic(TXN_TOPIC).is_none() {
        return Ok(f(&TxnCoordinator::new(
            broker.config.transactions.coordinator.clone(),
        )));
    }
    let shard = shard_of(broker, transactional_id);
    broker.txns.host.read(broker, shard, f).await
}

/// Writes the markers of `prepared` and completes it. Markers that cannot be written now
/// leave the transaction prepared: a later tick tries again.
pub async fn finish(broker: &Arc<Broker>, prepared: Prepared) -> Result<(), ResponseError> {
    {
        let mut finishing = broker
            .txns
            .finishing
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if !finishing.insert(prepared.transactional_id.clone()) {
            return Ok(()); // someone is on it
        }
    }
    let result = write_markers_and_complete(broker, &prepared).await;
    broker
        .txns
        .finishing
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(&prepared.transactional_id);
    if let Err(e) = &result {
        tracing::warn!(transactional_id = %prepared.transactional_id, error = ?e, "transaction not completed yet; will retry");
    }
    result
}

async fn write_markers_and_complete(
    broker: &Arc<Broker>,
    prepared: &Prepared,
) -> Result<(), ResponseError> {
    let shard = shard_of(broker, &prepared.transactional_id);
    let coordinator_epoch = broker
        .partition(TXN_TOPIC, shard)
        .map_or(0, |p| p.leader_epoch);
    for (topic, partitions) in &prepared.partitions {
        for &partition in partitions {
            match write_marker(broker, topic, partition, prepared, coordinator_epoch).await {
                Ok(()) => {}
                // A newer producer or coordinator has written there since: this marker is moot.
                Err(
                    e @ (ResponseError::InvalidProducerEpoch
                    | ResponseError::TransactionCoordinatorFenced),
                ) => {
                    tracing::warn!(topic, partition, error = ?e, "transaction marker refused; skipping it");
                }
                Err(e) => return Err(e),
            }
        }
    }
    let completed = broker
        .txns
        .host
        .write(broker, shard, |c, now| c.complete(prepared, now))
        .await?;
    if let Err(e) = completed {
        // Its state moved on (it was completed by another writer, or fenced meanwhile).
        tracing::debug!(transactional_id = %prepared.transactional_id, error = ?e, "transaction already moved on");
    }
    Ok(())
}

/// Appends `prepared`'s marker to one partition and waits until it is durable (through the
/// group coordinator for `__consumer_offsets`). A partition that no longer exists needs none.
pub async fn write_marker(
    broker: &Arc<Broker>,
    topic: &str,
    partition: i32,
    prepared: &Prepared,
    coordinator_epoch: i32,
) -> Result<(), ResponseError> {
    let (producer_id, producer_epoch, commit) = (
        prepared.producer_id,
        prepared.producer_epoch,
        prepared.commit,
    );
    if topic == OFFSETS_TOPIC {
        let kind = BatchKind::Marker {
            producer_id,
            producer_epoch,
            commit,
            coordinator_epoch,
        };
        return broker
            .groups
            .write(broker, partition, |c, now| {
                c.complete_txn(producer_id, commit, now);
                let out = Outcome {
                    kind,
                    ..Outcome::default()
                };
                ((), out)
            })
            .await;
    }
    let Some(p) = broker.partition(topic, partition) else {
        // The topic was deleted: nothing is left to mark.
        tracing::debug!(
            topic,
            partition,
            "no such partition for a transaction marker"
        );
        return Ok(());
    };
    let now = crate::broker::now_ms();
    match p.append_marker(producer_id, producer_epoch, commit, coordinator_epoch, now) {
        Ok(info) => {
            broker.notify_appended();
            broker
                .flusher
                .wait_durable(p.clone(), info.last_offset + 1)
                .await
                .map_err(|e| {
                    tracing::error!(partition = %p.tp, error = %e, "transaction marker not durable");
                    ResponseError::KafkaStorageError
                })
        }
        Err(e @ (LogError::InvalidProducerEpoch { .. } | LogError::CoordinatorFenced { .. })) => {
            Err(crate::errors::log(&e))
        }
        Err(e) => {
            tracing::error!(partition = %p.tp, error = %e, "cannot write transaction marker");
            Err(crate::errors::log(&e))
        }
    }
}

/// Finishes every transaction left prepared in a loaded shard (after a restart).
fn finish_prepared(broker: &Arc<Broker>) {
    for shard in broker.txns.host.shard_ids() {
        let b = broker.clone();
        broker.background.spawn(async move {
            let prepared = b.txns.host.read(&b, shard, |c| c.prepared()).await;
            for p in prepared.unwrap_or_default() {
                let _ = finish(&b, p).await;
            }
        });
    }
}

/// Loads the shards of `__transaction_state` and starts the ticker: every
/// `transaction.abort.timed.out.transaction.cleanup.interval.ms` it aborts timed-out
/// transactions, removes expired ids, and finishes transactions left prepared.
pub fn start(broker: &Arc<Broker>) {
    broker.txns.host.load_all(broker);
    finish_prepared(broker);
    let weak = Arc::downgrade(broker);
    let every_ms = broker.config.transactions.abort_check_interval_ms;
    broker.background.spawn(async move {
        let mut every = tokio::time::interval(Duration::from_millis(every_ms));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        every.tick().await;
        loop {
            every.tick().await;
            let Some(broker) = weak.upgrade() else { return };
            for shard in broker.txns.host.shard_ids() {
                let aborts = broker
                    .txns
                    .host
                    .write(&broker, shard, |c, now| c.tick(now))
                    .await;
                for p in aborts.unwrap_or_default() {
                    tracing::info!(transactional_id = %p.transactional_id, producer_id = p.producer_id, "aborting a transaction past its timeout");
                    let b = broker.clone();
                    broker.background.spawn(async move {
                        let _ = finish(&b, p).await;
                    });
                }
            }
            finish_prepared(&broker);
        }
    });
}
