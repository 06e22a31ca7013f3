//! The group coordinator on this broker: one [`GroupCoordinator`] shard per partition of
//! `__consumer_offsets`, hosted by [`CoordinatorHost`] (records appended under the shard's
//! lock, replies once they are durable, state reverted if the append fails). A group lives in
//! the shard of `partition_for(group id)`, Kafka's rule, so the same topic reads the same in
//! Kafka's tools. A 100 ms tick drives session expiry, join deadlines and offset retention.

use std::collections::BTreeMap;
use std::sync::Arc;
use strand_metadata::ControllerRequest;

use kafka_protocol::error::ResponseError;
use strand_coordinator::{partition_for, GroupConfig, GroupCoordinator, Outcome};
use strand_metadata::controller::{ApiError, NewTopic};

use crate::broker::Broker;
use crate::coordinator_host::CoordinatorHost;

pub const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// How often the coordinator's timeouts are checked.
pub const TICK_MS: u64 = 100;

pub type Groups = CoordinatorHost<GroupCoordinator>;

pub fn new_groups(config: GroupConfig) -> Groups {
    CoordinatorHost::new(OFFSETS_TOPIC, move |_| {
        GroupCoordinator::new(config.clone())
    })
}

/// Creates `__consumer_offsets` if it does not exist yet.
pub async fn ensure_offsets_topic(broker: &Broker) -> Result<(), ApiError> {
    if broker.image().topic(OFFSETS_TOPIC).is_some() {
        return Ok(());
    }
    let brokers = broker.image().brokers.len().max(1) as i16;
    let new = NewTopic {
        name: OFFSETS_TOPIC.to_string(),
        num_partitions: broker.config.offsets_topic_partitions,
        replication_factor: broker.config.offsets_topic_replication_factor.min(brokers),
        assignments: Vec::new(),
        configs: BTreeMap::from([
            ("cleanup.policy".to_string(), "compact".to_string()),
            (
                "segment.bytes".to_string(),
                broker.config.offsets_topic_segment_bytes.to_string(),
            ),
        ]),
    };
    let partitions = new.num_partitions;
    match broker.submit(ControllerRequest::CreateTopic(new)).await {
        Ok(_) => {
            tracing::info!(partitions, "created {OFFSETS_TOPIC}");
            Ok(())
        }
        Err(e) if e.code == ResponseError::TopicAlreadyExists.code() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Creates `__consumer_offsets` if needed; a group request gets COORDINATOR_NOT_AVAILABLE
/// when that fails.
async fn offsets_topic_or_unavailable(broker: &Broker) -> Result<(), ResponseError> {
    if broker.image().topic(OFFSETS_TOPIC).is_some() {
        return Ok(());
    }
    ensure_offsets_topic(broker).await.map_err(|e| {
        tracing::error!(error = %e.message, "cannot create {OFFSETS_TOPIC}");
        ResponseError::CoordinatorNotAvailable
    })
}

/// The `__consumer_offsets` partition (and shard) of `group`.
pub fn shard_of(broker: &Broker, group: &str) -> i32 {
    let n = broker
        .image()
        .topic(OFFSETS_TOPIC)
        .map_or(broker.config.offsets_topic_partitions, |t| {
            t.partitions.len() as i32
        });
    partition_for(group, n)
}

/// Runs `f` as a write on `group`'s shard (creating `__consumer_offsets` first if needed);
/// returns its result once its records are durable.
pub async fn write<T>(
    broker: &Broker,
    group: &str,
    f: impl FnOnce(&mut GroupCoordinator, i64) -> (T, Outcome),
) -> Result<T, ResponseError> {
    offsets_topic_or_unavailable(broker).await?;
    broker
        .groups
        .write(broker, shard_of(broker, group), f)
        .await
}

/// Changes `group`'s shard in a way that writes no record (heartbeats): nothing is saved for a
/// revert, which matters for large groups, whose members heartbeat every few seconds.
pub async fn update<T>(
    broker: &Broker,
    group: &str,
    f: impl FnOnce(&mut GroupCoordinator, i64) -> T,
) -> Result<T, ResponseError> {
    offsets_topic_or_unavailable(broker).await?;
    broker
        .groups
        .update(broker, shard_of(broker, group), f)
        .await
}

/// Reads `group`'s shard. Before `__consumer_offsets` exists no group does: `f` sees an empty
/// coordinator.
pub async fn read<T>(
    broker: &Broker,
    group: &str,
    f: impl FnOnce(&GroupCoordinator) -> T,
) -> Result<T, ResponseError> {
    if broker.image().topic(OFFSETS_TOPIC).is_none() {
        return Ok(f(&GroupCoordinator::new(broker.config.groups.clone())));
    }
    broker.groups.read(broker, shard_of(broker, group), f).await
}

/// Reads every loaded shard, in partition order.
pub async fn read_all<T>(
    broker: &Broker,
    f: impl Fn(&GroupCoordinator) -> T,
) -> Result<Vec<T>, ResponseError> {
    let mut out = Vec::new();
    for shard in broker.groups.shard_ids() {
        out.push(broker.groups.read(broker, shard, &f).await?);
    }
    Ok(out)
}

/// Fires the coordinator's timeouts every [`TICK_MS`] until the broker stops.
pub fn start_ticker(broker: &Arc<Broker>) {
    let weak = Arc::downgrade(broker);
    broker.background.spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_millis(TICK_MS));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            let Some(broker) = weak.upgrade() else { return };
            for shard in broker.groups.shard_ids() {
                let ticked = broker
                    .groups
                    .write(&broker, shard, |c, now| ((), c.tick(now)))
                    .await;
                if let Err(e) = ticked {
                    tracing::debug!(shard, error = ?e, "group coordinator tick failed");
                }
            }
        }
    });
}
