//! Runs the group coordinator state machine: keeps it behind a lock, appends the records it
//! returns to `__consumer_offsets` (under the same lock, so records of concurrent requests
//! stay in order), waits for them to be durable, then hands out the replies. Rebuilds the
//! groups from `__consumer_offsets` at start, and ticks the coordinator's clock.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::BytesMut;
use kafka_protocol::error::ResponseError;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use strand_coordinator::{partition_for, GroupCoordinator, GroupRecord, Outcome, Reply, RequestId};
use strand_metadata::controller::{self, ApiError, NewTopic};
use tokio::sync::oneshot;

use crate::broker::{now_ms, Broker};
use crate::partition::Partition;

pub const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// How often the coordinator's timeouts are checked.
pub const TICK_MS: u64 = 100;

pub struct Groups {
    coordinator: Mutex<GroupCoordinator>,
    waiters: Mutex<HashMap<RequestId, oneshot::Sender<Reply>>>,
    next_request: AtomicU64,
}

impl Groups {
    pub fn new(config: strand_coordinator::GroupConfig) -> Self {
        Self {
            coordinator: Mutex::new(GroupCoordinator::new(config)),
            waiters: Mutex::new(HashMap::new()),
            next_request: AtomicU64::new(1),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, GroupCoordinator> {
        self.coordinator
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A new id for a held request, with the receiver its reply will arrive on.
    pub fn hold(&self) -> (RequestId, oneshot::Receiver<Reply>) {
        let id = self.next_request.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.waiters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id, tx);
        (id, rx)
    }

    /// Drops a held request whose reply will never be wanted (its call failed).
    pub fn forget(&self, id: RequestId) {
        self.waiters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&id);
    }
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
    let cfg = broker.controller_config();
    match broker
        .commit(|img| controller::create_topic(img, &new, &cfg))
        .await
    {
        Ok(_) => {
            tracing::info!(partitions = new.num_partitions, "created {OFFSETS_TOPIC}");
            Ok(())
        }
        Err(e) if e.code == ResponseError::TopicAlreadyExists.code() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Runs `f` on the coordinator, appends the records it returns, and, once they are durable,
/// delivers the replies of held requests. Returns `f`'s own result, or an error code when
/// the records could not be written. Creates `__consumer_offsets` first if needed.
pub async fn run<T>(
    broker: &Broker,
    f: impl FnOnce(&mut GroupCoordinator, i64) -> (T, Outcome),
) -> Result<T, i16> {
    if broker.image().topic(OFFSETS_TOPIC).is_none() {
        if let Err(e) = ensure_offsets_topic(broker).await {
            tracing::error!(error = %e.message, "cannot create {OFFSETS_TOPIC}");
            return Err(ResponseError::CoordinatorNotAvailable.code());
        }
    }
    run_existing(broker, f).await
}

async fn run_existing<T>(
    broker: &Broker,
    f: impl FnOnce(&mut GroupCoordinator, i64) -> (T, Outcome),
) -> Result<T, i16> {
    let now = now_ms();
    let (result, replies, durable) = {
        let mut c = broker.groups.lock();
        let (result, outcome) = f(&mut c, now);
        let durable = append(broker, &outcome.records, now);
        (result, outcome.replies, durable)
    };
    let mut failed = None;
    match durable {
        Ok(waits) => {
            for (p, offset) in waits {
                if let Err(e) = broker.flusher.wait_durable(p, offset).await {
                    tracing::error!(error = %e, "{OFFSETS_TOPIC} write not durable");
                    failed = Some(ResponseError::CoordinatorNotAvailable.code());
                }
            }
        }
        Err(code) => failed = Some(code),
    }
    deliver(broker, replies);
    match failed {
        Some(code) => Err(code),
        None => Ok(result),
    }
}

fn deliver(broker: &Broker, replies: Vec<(RequestId, Reply)>) {
    let mut waiters = broker
        .groups
        .waiters
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for (id, reply) in replies {
        if let Some(tx) = waiters.remove(&id) {
            let _ = tx.send(reply);
        }
    }
}

/// Appends records to their `__consumer_offsets` partitions; returns what to wait on.
fn append(
    broker: &Broker,
    records: &[GroupRecord],
    now: i64,
) -> Result<Vec<(Arc<Partition>, i64)>, i16> {
    if records.is_empty() {
        return Ok(Vec::new());
    }
    let image = broker.image();
    let Some(topic) = image.topic(OFFSETS_TOPIC) else {
        return Err(ResponseError::CoordinatorNotAvailable.code());
    };
    let n = topic.partitions.len() as i32;
    let mut by_partition: BTreeMap<i32, Vec<&GroupRecord>> = BTreeMap::new();
    for r in records {
        by_partition
            .entry(partition_for(r.group(), n))
            .or_default()
            .push(r);
    }
    let mut waits = Vec::new();
    for (p, recs) in by_partition {
        let Some(partition) = broker.partition(OFFSETS_TOPIC, p) else {
            return Err(ResponseError::NotCoordinator.code());
        };
        let batch: Vec<Record> = recs
            .iter()
            .enumerate()
            .map(|(i, r)| Record {
                transactional: false,
                control: false,
                partition_leader_epoch: -1,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                sequence: -1,
                timestamp: now,
                key: Some(r.key()),
                value: r.value(),
                headers: Default::default(),
                delete_horizon: false,
            })
            .collect();
        let mut buf = BytesMut::new();
        if let Err(e) = RecordBatchEncoder::encode(
            &mut buf,
            &batch,
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        ) {
            tracing::error!(error = %e, "cannot encode {OFFSETS_TOPIC} records");
            return Err(ResponseError::UnknownServerError.code());
        }
        let mut log = partition.log();
        match log.append(&mut buf, partition.leader_epoch, now) {
            Ok(info) => {
                let end = log.log_end_offset();
                log.update_high_watermark(end);
                drop(log);
                waits.push((partition.clone(), info.last_offset + 1));
            }
            Err(e) => {
                tracing::error!(partition = %partition.tp, error = %e, "cannot append group records");
                return Err(crate::errors::log(&e).code());
            }
        }
    }
    Ok(waits)
}

/// Rebuilds every group from `__consumer_offsets` (at start).
pub fn load(broker: &Broker) {
    let now = now_ms();
    let mut c = broker.groups.lock();
    let mut partitions: Vec<Arc<Partition>> = broker
        .partitions()
        .into_iter()
        .filter(|p| p.tp.topic == OFFSETS_TOPIC)
        .collect();
    partitions.sort_by_key(|p| p.tp.partition);
    let mut records = 0usize;
    for p in partitions {
        let log = p.log();
        let mut offset = log.log_start_offset();
        let end = log.high_watermark();
        while offset < end {
            let slice = match log.read(offset, 1 << 20, end, true) {
                Ok(Some(s)) => s,
                Ok(None) => break,
                Err(e) => {
                    tracing::error!(partition = %p.tp, error = %e, "cannot read group records");
                    break;
                }
            };
            let mut bytes = match slice.read() {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(partition = %p.tp, error = %e, "cannot read group records");
                    break;
                }
            };
            let before = offset;
            while !bytes.is_empty() {
                let Ok(set) = RecordBatchDecoder::decode(&mut bytes) else {
                    break;
                };
                for r in set.records {
                    offset = r.offset + 1;
                    let Some(key) = r.key else { continue };
                    match GroupRecord::decode(&key, r.value.as_deref()) {
                        Ok(record) => {
                            c.replay(record, now);
                            records += 1;
                        }
                        Err(e) => {
                            tracing::warn!(partition = %p.tp, offset = r.offset, error = %e, "skipping unreadable group record")
                        }
                    }
                }
            }
            if offset == before {
                tracing::error!(partition = %p.tp, offset, "no progress reading group records; stopping");
                break;
            }
        }
    }
    c.finish_load();
    if records > 0 {
        tracing::info!(records, "groups loaded from {OFFSETS_TOPIC}");
    }
}

/// Fires the coordinator's timeouts every [`TICK_MS`] until the broker stops.
pub fn start_ticker(broker: &Arc<Broker>) {
    let weak = Arc::downgrade(broker);
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_millis(TICK_MS));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            let Some(broker) = weak.upgrade() else { return };
            // No groups exist before `__consumer_offsets` does, so ticking never creates it.
            let _ = run_existing(&broker, |c, now| ((), c.tick(now))).await;
        }
    });
}
