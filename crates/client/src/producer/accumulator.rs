//! The record accumulator: per-partition queues of batches, filled by `send` and drained by
//! the sender. Plain data driven by method calls that take `now`; the async sender only moves
//! what it returns.
//!
//! A partition's queue holds at most one open batch (being filled) and any number of closed
//! ones in creation order. A batch closes when the next record would push it past
//! `batch.size`, when it has waited `linger.ms`, or when a flush asks for everything. Retried
//! batches go back to the front of their queue in creation order, so records leave in the
//! order they were sent. Memory is reserved per record against `buffer.memory` and released
//! when the batch is answered.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::watch;

use super::batch::{BatchBuilder, Compression, Header, ProducerStamp};
use crate::error::{Error, Result};

pub type TopicPartition = (Arc<str>, i32);

/// What a batch's records learn when it is answered.
#[derive(Debug, Clone, Copy)]
pub struct BatchAck {
    pub base_offset: i64,
    /// `-1` unless the topic uses LogAppendTime.
    pub log_append_time: i64,
}

pub type Completion = watch::Sender<Option<Result<BatchAck>>>;

/// Called once with the record's fate, from the sender task.
pub type Callback = Box<dyn FnOnce(Result<super::RecordMetadata>) + Send>;

/// The payload of a batch: still open for appends, or closed and encoded.
pub enum Payload {
    Open(BatchBuilder),
    Sealed(Bytes),
}

pub struct Batch {
    pub tp: TopicPartition,
    pub payload: Payload,
    pub record_count: i32,
    pub created: Instant,
    pub attempts: u32,
    pub retry_at: Option<Instant>,
    pub completion: Arc<Completion>,
    /// Bytes reserved from `buffer.memory`.
    pub reserved: usize,
    /// Creation order, to put retries back in place.
    pub seq: u64,
    /// Records sent with a callback: `(offset delta, timestamp, callback)`.
    pub callbacks: Vec<(i32, i64, Callback)>,
    /// Producer id, epoch and sequence, once an idempotent producer drained it.
    pub stamp: Option<ProducerStamp>,
}

impl Batch {
    /// Encodes (and compresses) the batch if it is not yet, with its stamp; done outside the
    /// accumulator lock. A sealed batch whose stamp changed is stamped again.
    pub fn seal(&mut self) -> Result<Bytes> {
        if let Payload::Open(_) = self.payload {
            let Payload::Open(mut b) =
                std::mem::replace(&mut self.payload, Payload::Sealed(Bytes::new()))
            else {
                unreachable!("checked above")
            };
            if let Some(stamp) = self.stamp {
                b.set_stamp(stamp);
            }
            self.payload = Payload::Sealed(b.build()?);
        } else if let (Payload::Sealed(bytes), Some(stamp)) = (&self.payload, self.stamp) {
            if bytes.len() >= 57 {
                let on_wire = (
                    i64::from_be_bytes(bytes[43..51].try_into().unwrap_or_default()),
                    i16::from_be_bytes(bytes[51..53].try_into().unwrap_or_default()),
                    i32::from_be_bytes(bytes[53..57].try_into().unwrap_or_default()),
                );
                if on_wire != (stamp.producer_id, stamp.epoch, stamp.base_sequence) {
                    self.payload = Payload::Sealed(super::batch::restamp(bytes, &stamp));
                }
            }
        }
        match &self.payload {
            Payload::Sealed(b) => Ok(b.clone()),
            Payload::Open(_) => Err(Error::protocol("batch not sealed")),
        }
    }

    pub fn fail(&mut self, e: Error) {
        for (delta, _, cb) in self.callbacks.drain(..) {
            cb(Err(e.for_record(delta)));
        }
        self.completion.send_replace(Some(Err(e)));
    }

    pub fn succeed(&mut self, ack: BatchAck) {
        for (delta, timestamp, cb) in self.callbacks.drain(..) {
            cb(Ok(super::RecordMetadata {
                topic: self.tp.0.clone(),
                partition: self.tp.1,
                offset: if ack.base_offset < 0 {
                    -1
                } else {
                    ack.base_offset + i64::from(delta)
                },
                timestamp: if ack.log_append_time >= 0 {
                    ack.log_append_time
                } else {
                    timestamp
                },
            }));
        }
        self.completion.send_replace(Some(Ok(ack)));
    }
}

struct Open {
    batch: Batch,
    builder_bytes: usize,
}

#[derive(Default)]
struct Queue {
    open: Option<Open>,
    closed: VecDeque<Batch>,
}

/// Where an appended record went.
pub struct Appended {
    pub topic: Arc<str>,
    /// `None` when the record came with a callback.
    pub completion: Option<watch::Receiver<Option<Result<BatchAck>>>>,
    pub offset_delta: i32,
    /// The append closed a full batch: the sender has work now.
    pub batch_full: bool,
}

pub struct AccumulatorConfig {
    pub batch_bytes: usize,
    pub linger: Duration,
    pub compression: Compression,
    pub buffer_bytes: usize,
    pub delivery_timeout: Duration,
}

pub struct Accumulator {
    cfg: AccumulatorConfig,
    /// Per topic, indexed by partition; keyed by `Arc<str>` so appends look topics up by
    /// `&str` without allocating.
    queues: HashMap<Arc<str>, Vec<Queue>>,
    buffer_used: usize,
    next_seq: u64,
    /// Batches created and not yet answered (open, closed, in flight).
    unfinished: usize,
    flushing: usize,
    closed: bool,
}

impl Accumulator {
    pub fn new(cfg: AccumulatorConfig) -> Self {
        Self {
            cfg,
            queues: HashMap::new(),
            buffer_used: 0,
            next_seq: 0,
            unfinished: 0,
            flushing: 0,
            closed: false,
        }
    }

    pub fn buffer_used(&self) -> usize {
        self.buffer_used
    }

    pub fn unfinished(&self) -> usize {
        self.unfinished
    }

    /// Appends a record of `estimate` bytes; `Err(None)` means `buffer.memory` is full (wait and
    /// try again), `Err(Some(e))` that the record can never be sent.
    #[allow(clippy::too_many_arguments)]
    pub fn append(
        &mut self,
        topic: &str,
        partition: i32,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
        estimate: usize,
        now: Instant,
        callback: Option<Callback>,
    ) -> std::result::Result<Appended, (Option<Error>, Option<Callback>)> {
        if self.closed {
            return Err((Some(Error::Closed), callback));
        }
        if estimate > self.cfg.buffer_bytes {
            return Err((
                Some(Error::InvalidRecord(format!(
                    "a record of {estimate} bytes is larger than buffer.memory ({})",
                    self.cfg.buffer_bytes
                ))),
                callback,
            ));
        }
        if self.buffer_used + estimate > self.cfg.buffer_bytes {
            return Err((None, callback));
        }
        let batch_bytes = self.cfg.batch_bytes;
        let Ok(index) = usize::try_from(partition) else {
            return Err((
                Some(Error::InvalidRecord(format!("partition {partition}"))),
                callback,
            ));
        };
        if !self.queues.contains_key(topic) {
            self.queues.insert(Arc::from(topic), Vec::new());
        }
        let name = self
            .queues
            .get_key_value(topic)
            .map(|(k, _)| k.clone())
            .expect("inserted above");
        let queues = self.queues.get_mut(topic).expect("inserted above");
        if queues.len() <= index {
            queues.resize_with(index + 1, Queue::default);
        }
        let tp: TopicPartition = (name.clone(), partition);
        let queue = &mut queues[index];
        let mut batch_full = false;
        if let Some(open) = &queue.open {
            let Payload::Open(b) = &open.batch.payload else {
                unreachable!("open batches are open")
            };
            let add = b.record_bytes(timestamp, key, value, headers);
            if b.size() + add > batch_bytes {
                let full = queue.open.take().map(|o| o.batch);
                queue.closed.extend(full);
                batch_full = true;
            }
        }
        if queue.open.is_none() {
            let (tx, _) = watch::channel(None);
            let capacity = batch_bytes.max(estimate + 64).min(4 << 20);
            queue.open = Some(Open {
                batch: Batch {
                    tp: tp.clone(),
                    payload: Payload::Open(BatchBuilder::new(self.cfg.compression, capacity)),
                    record_count: 0,
                    created: now,
                    attempts: 0,
                    retry_at: None,
                    completion: Arc::new(tx),
                    reserved: 0,
                    seq: self.next_seq,
                    callbacks: Vec::new(),
                    stamp: None,
                },
                builder_bytes: 0,
            });
            self.next_seq += 1;
            self.unfinished += 1;
        }
        let open = queue.open.as_mut().expect("just ensured");
        let Payload::Open(b) = &mut open.batch.payload else {
            unreachable!("open batches are open")
        };
        let offset_delta = b.append(timestamp, key, value, headers);
        open.builder_bytes = b.size();
        open.batch.record_count += 1;
        open.batch.reserved += estimate;
        self.buffer_used += estimate;
        let completion = match callback {
            Some(cb) => {
                open.batch.callbacks.push((offset_delta, timestamp, cb));
                None
            }
            None => Some(open.batch.completion.subscribe()),
        };
        if open.builder_bytes >= batch_bytes {
            let full = queue.open.take().map(|o| o.batch);
            queue.closed.extend(full);
            batch_full = true;
        }
        Ok(Appended {
            topic: tp.0,
            completion,
            offset_delta,
            batch_full,
        })
    }

    /// Partitions with a batch to send now, and when to look again if nothing changes.
    pub fn ready(&mut self, now: Instant) -> (Vec<TopicPartition>, Option<Instant>) {
        let drain_all = self.flushing > 0 || self.closed;
        let mut ready = Vec::new();
        let mut wake: Option<Instant> = None;
        let mut earliest = |t: Instant| wake = Some(wake.map_or(t, |w: Instant| w.min(t)));
        for (topic, queues) in &mut self.queues {
            for (p, q) in queues.iter_mut().enumerate() {
                if let Some(open) = &q.open {
                    let due = open.batch.created + self.cfg.linger;
                    if drain_all || due <= now {
                        let b = q.open.take().map(|o| o.batch);
                        q.closed.extend(b);
                    } else {
                        earliest(due);
                    }
                }
                if let Some(front) = q.closed.front() {
                    match front.retry_at {
                        Some(t) if t > now => earliest(t),
                        _ => ready.push((topic.clone(), p as i32)),
                    }
                }
            }
        }
        (ready, wake)
    }

    /// The next batch of `tp` to send, if one is due.
    pub fn drain(&mut self, tp: &TopicPartition, now: Instant) -> Option<Batch> {
        let q = self
            .queues
            .get_mut(&*tp.0)?
            .get_mut(usize::try_from(tp.1).ok()?)?;
        if q.closed.front()?.retry_at.is_some_and(|t| t > now) {
            return None;
        }
        q.closed.pop_front()
    }

    /// Puts a batch that failed with a retriable error back in its place, due after `backoff`.
    pub fn requeue(&mut self, mut batch: Batch, now: Instant, backoff: Duration) {
        batch.attempts += 1;
        batch.retry_at = Some(now + backoff);
        let index = usize::try_from(batch.tp.1).unwrap_or(0);
        let queues = self.queues.entry(batch.tp.0.clone()).or_default();
        if queues.len() <= index {
            queues.resize_with(index + 1, Queue::default);
        }
        let q = &mut queues[index];
        let at = q
            .closed
            .iter()
            .position(|b| b.seq > batch.seq)
            .unwrap_or(q.closed.len());
        q.closed.insert(at, batch);
    }

    /// A batch was answered (or failed for good): release its memory.
    pub fn finish(&mut self, batch: &Batch) {
        self.buffer_used = self.buffer_used.saturating_sub(batch.reserved);
        self.unfinished = self.unfinished.saturating_sub(1);
    }

    /// Batches that waited past `delivery.timeout.ms` without being sent; the caller fails them.
    pub fn expire(&mut self, now: Instant) -> Vec<Batch> {
        let limit = self.cfg.delivery_timeout;
        let mut out = Vec::new();
        for q in self.queues.values_mut().flatten() {
            while q
                .closed
                .front()
                .is_some_and(|b| now.duration_since(b.created) >= limit)
            {
                out.extend(q.closed.pop_front());
            }
            if q.open
                .as_ref()
                .is_some_and(|o| now.duration_since(o.batch.created) >= limit)
            {
                out.extend(q.open.take().map(|o| o.batch));
            }
        }
        for b in &out {
            self.buffer_used = self.buffer_used.saturating_sub(b.reserved);
            self.unfinished = self.unfinished.saturating_sub(1);
        }
        out
    }

    pub fn delivery_timeout(&self) -> Duration {
        self.cfg.delivery_timeout
    }

    pub fn begin_flush(&mut self) {
        self.flushing += 1;
    }

    pub fn end_flush(&mut self) {
        self.flushing = self.flushing.saturating_sub(1);
    }

    pub fn close(&mut self) {
        self.closed = true;
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acc(batch_bytes: usize, linger_ms: u64, buffer: usize) -> Accumulator {
        Accumulator::new(AccumulatorConfig {
            batch_bytes,
            linger: Duration::from_millis(linger_ms),
            compression: Compression::None,
            buffer_bytes: buffer,
            delivery_timeout: Duration::from_secs(120),
        })
    }

    fn tp(p: i32) -> TopicPartition {
        (Arc::from("t"), p)
    }

    #[test]
    fn batches_close_by_size_and_by_linger() {
        let mut a = acc(200, 10, 1 << 20);
        let t0 = Instant::now();
        let v = [7u8; 50];
        for _ in 0..2 {
            a.append("t", 0, 1, None, Some(&v), &[], 80, t0, None)
                .map_err(|_| ())
                .unwrap();
        }
        assert!(a.ready(t0).0.is_empty(), "lingering");
        // The third record does not fit in 200 bytes: the first batch closes.
        let third = a
            .append("t", 0, 1, None, Some(&v), &[], 80, t0, None)
            .map_err(|_| ())
            .unwrap();
        assert!(third.batch_full);
        assert_eq!(third.offset_delta, 0);
        let (ready, wake) = a.ready(t0);
        assert_eq!(ready, vec![tp(0)]);
        assert_eq!(wake, Some(t0 + Duration::from_millis(10)));
        let b = a.drain(&tp(0), t0).unwrap();
        assert_eq!(b.record_count, 2);
        assert!(a.drain(&tp(0), t0).is_none());
        let (ready, _) = a.ready(t0 + Duration::from_millis(10));
        assert_eq!(ready, vec![tp(0)]);
        assert_eq!(a.drain(&tp(0), t0).unwrap().record_count, 1);
    }

    #[test]
    fn buffer_memory_is_reserved_until_answered() {
        let mut a = acc(1000, 0, 200);
        let t0 = Instant::now();
        a.append("t", 0, 1, None, Some(b"x"), &[], 150, t0, None)
            .map_err(|_| ())
            .unwrap();
        assert!(matches!(
            a.append("t", 0, 1, None, Some(b"x"), &[], 100, t0, None),
            Err((None, _))
        ));
        assert!(matches!(
            a.append("t", 0, 1, None, Some(b"x"), &[], 300, t0, None),
            Err((Some(_), _))
        ));
        a.ready(t0);
        let b = a.drain(&tp(0), t0).unwrap();
        a.finish(&b);
        assert_eq!(a.buffer_used(), 0);
        assert!(a
            .append("t", 0, 1, None, Some(b"x"), &[], 100, t0, None)
            .is_ok());
    }

    #[test]
    fn retries_go_back_in_order() {
        let mut a = acc(100, 0, 1 << 20);
        let t0 = Instant::now();
        for _ in 0..3 {
            a.append("t", 0, 1, None, Some(&[1u8; 60]), &[], 90, t0, None)
                .map_err(|_| ())
                .unwrap();
        }
        a.ready(t0);
        let first = a.drain(&tp(0), t0).unwrap();
        let second = a.drain(&tp(0), t0).unwrap();
        a.requeue(second, t0, Duration::from_millis(5));
        a.requeue(first, t0, Duration::from_millis(5));
        assert!(a.drain(&tp(0), t0).is_none(), "backing off");
        let later = t0 + Duration::from_millis(5);
        let seqs: Vec<u64> = std::iter::from_fn(|| a.drain(&tp(0), later))
            .map(|b| b.seq)
            .collect();
        assert_eq!(seqs, vec![0, 1, 2]);
    }

    #[test]
    fn flush_closes_lingering_batches_and_expiry_fails_old_ones() {
        let mut a = acc(1000, 60_000, 1 << 20);
        let t0 = Instant::now();
        a.append("t", 1, 1, None, Some(b"x"), &[], 10, t0, None)
            .map_err(|_| ())
            .unwrap();
        assert!(a.ready(t0).0.is_empty());
        a.begin_flush();
        assert_eq!(a.ready(t0).0, vec![tp(1)]);
        a.end_flush();
        let expired = a.expire(t0 + Duration::from_secs(121));
        assert_eq!(expired.len(), 1);
        assert_eq!(a.unfinished(), 0);
    }
}
