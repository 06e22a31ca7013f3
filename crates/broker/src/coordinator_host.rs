//! Hosts a coordinator (`strand-coordinator`'s [`Shard`]s) on this broker: one shard per
//! partition of its internal topic that this broker leads, loaded by replaying the partition,
//! each behind its own lock.
//!
//! A request runs as a write or a read on one shard ([`CoordinatorHost::write`],
//! [`CoordinatorHost::read`]). A write's records are appended to the shard's partition under
//! the shard's lock, so records of concurrent requests stay in order; its answer, and those of
//! the held requests it completes, wait until the records are durable (fsync, through the
//! flusher). If the append fails, the shard is reverted and the held requests answered with
//! an error; if the fsync fails, the shard is dropped and loaded again on its next use from
//! what its partition holds.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use strand_coordinator::runtime::{Failed, Outcome};
use strand_coordinator::{
    BatchKind, CoordinatorRecord, PartitionWriter, Replayed, RequestId, Shard, ShardRuntime,
    WriteError,
};
use strand_storage::AppendOrigin;
use tokio::sync::oneshot;

use crate::broker::{now_ms, Broker};
use crate::partition::Partition;

type Slot<S> = Arc<Mutex<Option<ShardRuntime<S>>>>;
type Waiter<R> = oneshot::Sender<Result<R, ResponseError>>;

pub struct CoordinatorHost<S: Shard> {
    topic: &'static str,
    shards: RwLock<HashMap<i32, Slot<S>>>,
    waiters: Mutex<HashMap<RequestId, Waiter<S::Reply>>>,
    next_request: AtomicU64,
    new_shard: Box<dyn Fn(i32) -> S + Send + Sync>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<S> CoordinatorHost<S>
where
    S: Shard + Send + 'static,
    S::Record: CoordinatorRecord + Send,
    S::Reply: Send,
{
    /// A host for the coordinator of `topic`; `new_shard(partition)` makes an empty shard.
    pub fn new(topic: &'static str, new_shard: impl Fn(i32) -> S + Send + Sync + 'static) -> Self {
        Self {
            topic,
            shards: RwLock::new(HashMap::new()),
            waiters: Mutex::new(HashMap::new()),
            next_request: AtomicU64::new(1),
            new_shard: Box::new(new_shard),
        }
    }

    pub fn topic(&self) -> &'static str {
        self.topic
    }

    /// A new id for a held request, with the receiver its reply will arrive on.
    pub fn hold(
        &self,
    ) -> (
        RequestId,
        oneshot::Receiver<Result<S::Reply, ResponseError>>,
    ) {
        let id = self.next_request.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        lock(&self.waiters).insert(id, tx);
        (id, rx)
    }

    /// Drops a held request whose reply will never be wanted (its call failed).
    pub fn forget(&self, id: RequestId) {
        lock(&self.waiters).remove(&id);
    }

    fn deliver(&self, replies: Vec<(RequestId, S::Reply)>) {
        let mut waiters = lock(&self.waiters);
        for (id, reply) in replies {
            if let Some(tx) = waiters.remove(&id) {
                let _ = tx.send(Ok(reply));
            }
        }
    }

    fn fail_held(&self, ids: Vec<RequestId>, error: ResponseError) {
        let mut waiters = lock(&self.waiters);
        for id in ids {
            if let Some(tx) = waiters.remove(&id) {
                let _ = tx.send(Err(error));
            }
        }
    }

    /// The partitions whose shards are loaded.
    pub fn shard_ids(&self) -> Vec<i32> {
        let mut ids: Vec<i32> = self
            .shards
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .copied()
            .collect();
        ids.sort_unstable();
        ids
    }

    /// The shard of `partition`, loaded from its partition first if this broker leads it.
    fn slot(
        &self,
        broker: &Broker,
        partition: i32,
    ) -> Result<(Slot<S>, Arc<Partition>), ResponseError> {
        let Some(p) = broker.partition(self.topic, partition) else {
            return Err(ResponseError::NotCoordinator);
        };
        if let Some(slot) = self
            .shards
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&partition)
        {
            return Ok((slot.clone(), p));
        }
        let mut shards = self.shards.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = shards.get(&partition) {
            return Ok((slot.clone(), p));
        }
        let slot = Arc::new(Mutex::new(Some(self.replay(&p, partition))));
        shards.insert(partition, slot.clone());
        Ok((slot, p))
    }

    /// Loads the shards of every partition of the topic this broker leads (at start).
    pub fn load_all(&self, broker: &Broker) {
        let mut ids: Vec<i32> = broker
            .partitions()
            .into_iter()
            .filter(|p| p.tp.topic == self.topic)
            .map(|p| p.tp.partition)
            .collect();
        ids.sort_unstable();
        for id in ids {
            let _ = self.slot(broker, id);
        }
    }

    /// Drops the shard of `partition` (its partition is gone or led elsewhere); its held
    /// requests are told NOT_COORDINATOR.
    pub fn unload(&self, partition: i32) {
        let slot = self
            .shards
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&partition);
        if let Some(rt) = slot.and_then(|s| lock(&s).take()) {
            self.fail_held(rt.fail(), ResponseError::NotCoordinator);
        }
    }

    /// Builds a shard by replaying its partition up to the high watermark.
    fn replay(&self, p: &Partition, partition: i32) -> ShardRuntime<S> {
        let now = now_ms();
        let mut shard = (self.new_shard)(partition);
        let log = p.log();
        let end = log.high_watermark();
        let mut offset = log.log_start_offset();
        let mut records = 0usize;
        while offset < end {
            let slice = match log.read(offset, 1 << 20, end, true) {
                Ok(Some(s)) => s,
                Ok(None) => break,
                Err(e) => {
                    tracing::error!(partition = %p.tp, error = %e, "cannot read coordinator records");
                    break;
                }
            };
            let mut bytes = match slice.read() {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(partition = %p.tp, error = %e, "cannot read coordinator records");
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
                    if r.control {
                        if let Some(commit) = marker_type(r.key.as_ref()) {
                            shard.replay(
                                Replayed::Marker {
                                    producer_id: r.producer_id,
                                    commit,
                                },
                                now,
                            );
                        }
                        continue;
                    }
                    let Some(key) = r.key else { continue };
                    match S::Record::decode(&key, r.value.as_deref()) {
                        Ok(record) => {
                            let producer_id = r.transactional.then_some(r.producer_id);
                            shard.replay(
                                Replayed::Record {
                                    record: &record,
                                    producer_id,
                                },
                                now,
                            );
                            records += 1;
                        }
                        Err(e) => {
                            tracing::warn!(partition = %p.tp, offset = r.offset, error = %e, "skipping unreadable coordinator record")
                        }
                    }
                }
            }
            if offset == before {
                tracing::error!(partition = %p.tp, offset, "no progress reading coordinator records; stopping");
                break;
            }
        }
        drop(log);
        shard.finish_load();
        if records > 0 {
            tracing::info!(partition = %p.tp, records, "coordinator shard loaded");
        }
        ShardRuntime::new(shard, end)
    }

    /// Runs `handle` as a write on the shard of `partition`; returns its result once its
    /// records, and every record written before them, are durable.
    pub async fn write<T>(
        &self,
        broker: &Broker,
        partition: i32,
        handle: impl FnOnce(&mut S, i64) -> (T, Outcome<S::Record, S::Reply>),
    ) -> Result<T, ResponseError> {
        let (slot, p) = self.slot(broker, partition)?;
        let written = {
            let mut guard = lock(&slot);
            let Some(rt) = guard.as_mut() else {
                return Err(ResponseError::CoordinatorLoadInProgress);
            };
            let mut writer = LogWriter { partition: &p };
            let before = rt.written_offset();
            match rt.write(&mut writer, now_ms(), handle) {
                Ok(w) => (w, rt.written_offset() > before),
                Err(Failed { error, requests }) => {
                    tracing::error!(partition = %p.tp, %error, "coordinator write failed; state reverted");
                    let code = crate::errors::coordinator_write(&error);
                    self.fail_held(requests, code);
                    return Err(code);
                }
            }
        };
        let (written, appended) = written;
        if appended {
            broker.notify_appended();
        }
        self.settle(broker, &slot, &p, partition, written.wait_for)
            .await?;
        Ok(written.value)
    }

    /// Changes the shard of `partition` without writing anything (see
    /// [`ShardRuntime::update`]); answers once everything written before is durable.
    pub async fn update<T>(
        &self,
        broker: &Broker,
        partition: i32,
        change: impl FnOnce(&mut S, i64) -> T,
    ) -> Result<T, ResponseError> {
        let (slot, p) = self.slot(broker, partition)?;
        let done = {
            let mut guard = lock(&slot);
            let Some(rt) = guard.as_mut() else {
                return Err(ResponseError::CoordinatorLoadInProgress);
            };
            rt.update(now_ms(), change)
        };
        self.settle(broker, &slot, &p, partition, done.wait_for)
            .await?;
        Ok(done.value)
    }

    /// Reads the shard of `partition`; answers once everything written before is durable.
    pub async fn read<T>(
        &self,
        broker: &Broker,
        partition: i32,
        f: impl FnOnce(&S) -> T,
    ) -> Result<T, ResponseError> {
        let (slot, p) = self.slot(broker, partition)?;
        let read = {
            let guard = lock(&slot);
            let Some(rt) = guard.as_ref() else {
                return Err(ResponseError::CoordinatorLoadInProgress);
            };
            rt.read(f)
        };
        self.settle(broker, &slot, &p, partition, read.wait_for)
            .await?;
        Ok(read.value)
    }

    /// Looks at the shard of `partition` as it is, without waiting for earlier writes to be
    /// durable: for checks against state that changes only once durable (the transaction
    /// coordinator's), on paths that cannot wait.
    pub fn peek<T>(
        &self,
        broker: &Broker,
        partition: i32,
        f: impl FnOnce(&S) -> T,
    ) -> Result<T, ResponseError> {
        let (slot, _) = self.slot(broker, partition)?;
        let guard = lock(&slot);
        match guard.as_ref() {
            Some(rt) => Ok(f(rt.state())),
            None => Err(ResponseError::CoordinatorLoadInProgress),
        }
    }

    /// Waits until `offset` is durable, then releases every write it covers.
    async fn settle(
        &self,
        broker: &Broker,
        slot: &Slot<S>,
        p: &Arc<Partition>,
        partition: i32,
        offset: i64,
    ) -> Result<(), ResponseError> {
        let durable = {
            let guard = lock(slot);
            guard.as_ref().map_or(offset, |rt| rt.durable_offset())
        };
        if durable < offset {
            if let Err(e) = broker.flusher.wait_durable(p.clone(), offset).await {
                tracing::error!(partition = %p.tp, error = %e, "coordinator records not durable; reloading the shard");
                let taken = lock(slot).take();
                if let Some(rt) = taken {
                    self.fail_held(rt.fail(), ResponseError::CoordinatorNotAvailable);
                }
                self.shards
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&partition);
                return Err(ResponseError::CoordinatorNotAvailable);
            }
        }
        let replies = {
            let mut guard = lock(slot);
            match guard.as_mut() {
                Some(rt) => rt.durable(offset, now_ms()),
                None => return Err(ResponseError::CoordinatorNotAvailable),
            }
        };
        self.deliver(replies);
        Ok(())
    }
}

/// The type of a transaction marker from its control record key (version, type): 0 abort,
/// 1 commit. `None` for other control records.
pub fn marker_type(key: Option<&Bytes>) -> Option<bool> {
    let k = key?;
    if k.len() < 4 {
        return None;
    }
    match i16::from_be_bytes([k[2], k[3]]) {
        0 => Some(false),
        1 => Some(true),
        _ => None,
    }
}

/// Appends a shard's records to its partition as one batch.
struct LogWriter<'a> {
    partition: &'a Partition,
}

impl<R: CoordinatorRecord> PartitionWriter<R> for LogWriter<'_> {
    fn append(&mut self, records: &[R], kind: BatchKind, now: i64) -> Result<i64, WriteError> {
        let p = self.partition;
        let unavailable = |e: String| {
            tracing::error!(partition = %p.tp, error = %e, "cannot append coordinator records");
            WriteError::NotAvailable(e)
        };
        let (producer_id, producer_epoch, transactional) = match kind {
            BatchKind::Plain => (-1, -1, false),
            BatchKind::Transactional {
                producer_id,
                producer_epoch,
            } => (producer_id, producer_epoch, true),
            BatchKind::Marker {
                producer_id,
                producer_epoch,
                commit,
                coordinator_epoch,
            } => {
                return p
                    .append_marker(producer_id, producer_epoch, commit, coordinator_epoch, now)
                    .map(|info| info.last_offset + 1)
                    .map_err(|e| unavailable(e.to_string()));
            }
        };
        let batch: Vec<Record> = records
            .iter()
            .enumerate()
            .map(|(i, r)| Record {
                transactional,
                control: false,
                partition_leader_epoch: -1,
                producer_id,
                producer_epoch,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                sequence: if transactional { i as i32 } else { -1 },
                timestamp: now,
                key: Some(r.key()),
                value: r.value(),
                headers: Default::default(),
                delete_horizon: false,
            })
            .collect();
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            &batch,
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .map_err(|e| unavailable(e.to_string()))?;
        p.append(&mut buf, AppendOrigin::Coordinator, now)
            .map(|info| info.last_offset + 1)
            .map_err(|e| unavailable(e.to_string()))
    }
}
