//! The producer: `send` a record, get a future of where it landed.
//!
//! ```no_run
//! # async fn f() -> strand_client::Result<()> {
//! use strand_client::{Config, Producer, ProducerRecord};
//! let producer = Producer::new(Config::from([("bootstrap.servers", "127.0.0.1:9092"), ("acks", "all")]))?;
//! let delivery = producer.send(ProducerRecord::new("orders").key("k1").value("hello")).await?;
//! let meta = delivery.await?;
//! println!("{}-{}@{}", meta.topic, meta.partition, meta.offset);
//! producer.close().await?;
//! # Ok(()) }
//! ```
//!
//! Inside: a [`partitioner`] picks the partition, the [`accumulator`] adds the record to that
//! partition's open batch, and the sender task drains closed batches to their leaders, at most
//! `max.in.flight.requests.per.connection` requests per broker, retrying retriable errors.

pub mod accumulator;
pub mod batch;
pub mod partitioner;
mod sender;
mod transactions;
pub mod txn;
mod wire;

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::{watch, Notify};

use crate::cluster::Cluster;
use crate::config::{ClientConfig, Config};
use crate::error::{Error, Result};
use accumulator::{Accumulator, AccumulatorConfig, BatchAck};
pub use batch::{Compression, Header};
use partitioner::{Partitioner, Strategy};
pub use transactions::ConsumerGroupMetadata;

/// Producer settings, read from Kafka's config names with Kafka's defaults.
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    pub client: ClientConfig,
    /// `acks`: 0, 1 or -1 (`all`).
    pub acks: i16,
    pub linger: Duration,
    pub batch_bytes: usize,
    pub buffer_bytes: usize,
    pub compression: Compression,
    pub retries: u32,
    pub delivery_timeout: Duration,
    pub max_in_flight: usize,
    pub max_block: Duration,
    pub request_bytes_max: usize,
    pub partitioner: Strategy,
    /// `enable.idempotence`: true by default when `acks=all` (as the Java client since 3.0).
    pub idempotence: bool,
    pub transactional_id: Option<String>,
    /// `transaction.timeout.ms`
    pub transaction_timeout_ms: i32,
}

impl ProducerConfig {
    pub fn from_config(c: &Config) -> Result<Self> {
        let acks = match c.get("acks").map(str::trim).unwrap_or("all") {
            "all" | "-1" => -1,
            "1" => 1,
            "0" => 0,
            other => return Err(Error::Config(format!("acks={other:?}: use 0, 1 or all"))),
        };
        let compression_name = c.string("compression.type", "none");
        let compression = Compression::parse(&compression_name).ok_or_else(|| {
            Error::Config(format!(
                "compression.type={compression_name:?}: use none, gzip, snappy, lz4 or zstd"
            ))
        })?;
        let partitioner_name = c
            .get("partitioner.class")
            .or_else(|| c.get("partitioner"))
            .unwrap_or("default")
            .to_string();
        let partitioner = Strategy::parse(&partitioner_name).ok_or_else(|| {
            Error::Config(format!(
                "partitioner.class={partitioner_name:?} is not known"
            ))
        })?;
        let cfg = Self {
            client: ClientConfig::from_config(c, 30_000)?,
            acks,
            linger: c.ms("linger.ms", 5)?,
            batch_bytes: c.parse("batch.size", 16_384usize)?.max(1),
            buffer_bytes: c.parse("buffer.memory", 33_554_432usize)?,
            compression,
            retries: c
                .parse::<i64>("retries", i32::MAX as i64)?
                .clamp(0, u32::MAX as i64) as u32,
            delivery_timeout: c.ms("delivery.timeout.ms", 120_000)?,
            max_in_flight: c
                .parse("max.in.flight.requests.per.connection", 5usize)?
                .max(1),
            max_block: c.ms("max.block.ms", 60_000)?,
            request_bytes_max: c.parse("max.request.size", 1_048_576usize)?,
            partitioner,
            idempotence: false,
            transactional_id: c
                .get("transactional.id")
                .filter(|t| !t.is_empty())
                .map(str::to_string),
            transaction_timeout_ms: c.parse("transaction.timeout.ms", 60_000i32)?,
        };
        Self::with_idempotence(cfg, c)
    }

    /// Kafka's rules: idempotence is on by default unless `acks`, `retries` or
    /// `max.in.flight.requests.per.connection` conflict with it; asked for explicitly with
    /// such a conflict, or off with a `transactional.id`, it is a config error.
    fn with_idempotence(mut cfg: Self, c: &Config) -> Result<Self> {
        let fits = cfg.acks == -1 && cfg.retries > 0 && cfg.max_in_flight <= 5;
        let explicit = c.get("enable.idempotence").is_some();
        cfg.idempotence = if explicit {
            c.bool("enable.idempotence", true)?
        } else {
            fits
        };
        if cfg.idempotence && !fits {
            return Err(Error::Config(
                "enable.idempotence=true needs acks=all, retries > 0 and max.in.flight.requests.per.connection <= 5".into(),
            ));
        }
        if cfg.transactional_id.is_some() && !cfg.idempotence {
            return Err(Error::Config(
                "a transactional.id needs enable.idempotence (and acks=all)".into(),
            ));
        }
        Ok(cfg)
    }
}

/// A record to send. Without a partition the partitioner chooses; without a timestamp the
/// producer stamps the current time.
#[derive(Debug, Clone, Default)]
pub struct ProducerRecord {
    pub topic: String,
    pub partition: Option<i32>,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub timestamp: Option<i64>,
    pub headers: Vec<Header>,
}

impl ProducerRecord {
    pub fn new(topic: impl Into<String>) -> Self {
        Self {
            topic: topic.into(),
            ..Default::default()
        }
    }
    pub fn key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }
    pub fn value(mut self, value: impl Into<Bytes>) -> Self {
        self.value = Some(value.into());
        self
    }
    pub fn partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }
    pub fn timestamp(mut self, ms: i64) -> Self {
        self.timestamp = Some(ms);
        self
    }
    pub fn header(mut self, key: impl Into<String>, value: Option<impl Into<Bytes>>) -> Self {
        self.headers.push(Header {
            key: key.into(),
            value: value.map(Into::into),
        });
        self
    }
}

/// Where a record landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    pub topic: Arc<str>,
    pub partition: i32,
    /// `-1` with `acks=0`.
    pub offset: i64,
    pub timestamp: i64,
}

/// Resolves when the record's batch is answered.
pub struct DeliveryFuture {
    rx: watch::Receiver<Option<Result<BatchAck>>>,
    topic: Arc<str>,
    partition: i32,
    offset_delta: i32,
    timestamp: i64,
}

impl DeliveryFuture {
    pub fn partition(&self) -> i32 {
        self.partition
    }

    pub async fn wait(mut self) -> Result<RecordMetadata> {
        let ack = {
            let r = self
                .rx
                .wait_for(Option::is_some)
                .await
                .map_err(|_| Error::Closed)?;
            match r.as_ref() {
                Some(Ok(ack)) => *ack,
                Some(Err(e)) => return Err(e.for_record(self.offset_delta)),
                None => return Err(Error::Closed),
            }
        };
        Ok(RecordMetadata {
            topic: self.topic,
            partition: self.partition,
            offset: if ack.base_offset < 0 {
                -1
            } else {
                ack.base_offset + self.offset_delta as i64
            },
            timestamp: if ack.log_append_time >= 0 {
                ack.log_append_time
            } else {
                self.timestamp
            },
        })
    }
}

impl IntoFuture for DeliveryFuture {
    type Output = Result<RecordMetadata>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<RecordMetadata>> + Send>>;
    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.wait())
    }
}

pub(crate) struct Shared {
    pub cluster: Arc<Cluster>,
    pub cfg: ProducerConfig,
    pub acc: Mutex<Accumulator>,
    partitioner: Mutex<Partitioner>,
    /// Wakes the sender: a batch is ready, a response arrived, a flush or close began.
    pub wake: Notify,
    /// `buffer.memory` was freed.
    pub space: Notify,
    /// Unfinished batches, for `flush`.
    pub unfinished: watch::Sender<usize>,
    /// Producer id, sequences and transaction state, for an idempotent producer.
    pub txn: Option<Mutex<txn::TxnManager>>,
}

impl Shared {
    pub fn lock(&self) -> std::sync::MutexGuard<'_, Accumulator> {
        self.acc.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// An async Kafka producer. Cheap to share behind an `Arc`; all methods take `&self`.
pub struct Producer {
    shared: Arc<Shared>,
    sender: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Producer {
    /// Creates a producer; must be called inside a Tokio runtime. Connects lazily.
    pub fn new(config: Config) -> Result<Self> {
        let cfg = ProducerConfig::from_config(&config)?;
        let cluster = Cluster::new(cfg.client.clone());
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        let shared = Arc::new(Shared {
            acc: Mutex::new(Accumulator::new(AccumulatorConfig {
                batch_bytes: cfg.batch_bytes,
                linger: cfg.linger,
                compression: cfg.compression,
                buffer_bytes: cfg.buffer_bytes,
                delivery_timeout: cfg.delivery_timeout,
            })),
            partitioner: Mutex::new(Partitioner::new(cfg.partitioner, cfg.batch_bytes, seed)),
            cluster,
            txn: cfg.idempotence.then(|| {
                Mutex::new(txn::TxnManager::new(
                    cfg.transactional_id.clone(),
                    cfg.transaction_timeout_ms,
                ))
            }),
            cfg,
            wake: Notify::new(),
            space: Notify::new(),
            unfinished: watch::channel(0).0,
        });
        let sender = tokio::spawn(sender::run(shared.clone()));
        Ok(Self {
            shared,
            sender: Mutex::new(Some(sender)),
        })
    }

    pub fn config(&self) -> &ProducerConfig {
        &self.shared.cfg
    }

    /// Adds the record to a batch. Waits (up to `max.block.ms`) for topic metadata and for
    /// room in `buffer.memory`; the returned future resolves when the broker answers.
    pub async fn send(&self, record: ProducerRecord) -> Result<DeliveryFuture> {
        let (a, partition, timestamp) = self.enqueue(record, None).await.map_err(|(e, _)| e)?;
        Ok(DeliveryFuture {
            rx: a.completion.ok_or(Error::Closed)?,
            topic: a.topic,
            partition,
            offset_delta: a.offset_delta,
            timestamp,
        })
    }

    /// Like [`send`](Self::send), but `callback` is called (on the sender task) with the
    /// record's metadata or error instead of a future being returned — the cheaper way to
    /// learn the fate of many records, as the Java client's `send(record, callback)`. If the
    /// record cannot be enqueued, the callback is not called and the error is returned.
    pub async fn send_with_callback<F>(&self, record: ProducerRecord, callback: F) -> Result<()>
    where
        F: FnOnce(Result<RecordMetadata>) + Send + 'static,
    {
        self.enqueue(record, Some(Box::new(callback)))
            .await
            .map(|_| ())
            .map_err(|(e, _)| e)
    }

    async fn enqueue(
        &self,
        record: ProducerRecord,
        mut callback: Option<accumulator::Callback>,
    ) -> std::result::Result<
        (accumulator::Appended, i32, i64),
        (Error, Option<accumulator::Callback>),
    > {
        let s = &self.shared;
        if let Some(m) = &s.txn {
            if let Err(e) = m.lock().unwrap_or_else(|p| p.into_inner()).check_send() {
                return Err((e, callback));
            }
        }
        let now = Instant::now();
        let deadline = now + s.cfg.max_block;
        let partitions = match s.cluster.view().partition_count(&record.topic) {
            Some(n) => n,
            None => {
                let wait = s.cluster.wait_topic(&record.topic, true, deadline);
                match tokio::time::timeout_at(deadline.into(), wait).await {
                    Ok(Ok(t)) => t.partitions.len(),
                    Ok(Err(e)) => return Err((e, callback)),
                    Err(_) => {
                        let e = Error::BufferExhausted(format!(
                            "no metadata for topic {} within max.block.ms",
                            record.topic
                        ));
                        return Err((e, callback));
                    }
                }
            }
        };
        let estimate = batch::estimate_record_bytes(
            record.key.as_deref(),
            record.value.as_deref(),
            &record.headers,
        );
        if estimate + batch::BATCH_HEADER_BYTES > s.cfg.request_bytes_max {
            let e = Error::InvalidRecord(format!(
                "RECORD_TOO_LARGE: {estimate} bytes is more than max.request.size ({})",
                s.cfg.request_bytes_max
            ));
            return Err((e, callback));
        }
        let partition = match record.partition {
            Some(p) if p >= 0 && (p as usize) < partitions => p,
            Some(p) => {
                let e = Error::InvalidRecord(format!(
                    "partition {p} of topic {} does not exist ({partitions} partitions)",
                    record.topic
                ));
                return Err((e, callback));
            }
            None => s
                .partitioner
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .partition(&record.topic, record.key.as_deref(), estimate, partitions),
        };
        let timestamp = record.timestamp.unwrap_or_else(now_ms);
        let mut now = now;
        loop {
            let space = s.space.notified();
            tokio::pin!(space);
            space.as_mut().enable();
            let appended = s.lock().append(
                &record.topic,
                partition,
                timestamp,
                record.key.as_deref(),
                record.value.as_deref(),
                &record.headers,
                estimate,
                now,
                callback.take(),
            );
            match appended {
                Ok(a) => {
                    if a.batch_full || a.offset_delta == 0 {
                        s.wake.notify_one();
                    }
                    return Ok((a, partition, timestamp));
                }
                Err((Some(e), cb)) => return Err((e, cb)),
                Err((None, cb)) => {
                    callback = cb;
                    if tokio::time::timeout_at(deadline.into(), space)
                        .await
                        .is_err()
                    {
                        let e = Error::BufferExhausted(format!(
                            "buffer.memory ({} bytes) stayed full for max.block.ms",
                            s.cfg.buffer_bytes
                        ));
                        return Err((e, callback));
                    }
                    now = Instant::now();
                }
            }
        }
    }

    /// Sends everything accumulated so far and waits until all of it is answered.
    pub async fn flush(&self) -> Result<()> {
        let s = &self.shared;
        let mut rx = s.unfinished.subscribe();
        s.lock().begin_flush();
        s.unfinished.send_replace(s.lock().unfinished());
        s.wake.notify_one();
        let r = rx
            .wait_for(|n| *n == 0)
            .await
            .map(|_| ())
            .map_err(|_| Error::Closed);
        s.lock().end_flush();
        r
    }

    /// Flushes, then stops the sender.
    pub async fn close(&self) -> Result<()> {
        self.flush().await?;
        self.shared.lock().close();
        self.shared.wake.notify_one();
        let task = self.sender.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = task {
            let _ = t.await;
        }
        Ok(())
    }

    /// Partition count of `topic` (fetching metadata if needed).
    pub async fn partitions_for(&self, topic: &str) -> Result<usize> {
        let deadline = Instant::now() + self.shared.cfg.max_block;
        Ok(self
            .shared
            .cluster
            .wait_topic(topic, true, deadline)
            .await?
            .partitions
            .len())
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        // The sender drains what is left and stops.
        self.shared.lock().close();
        self.shared.wake.notify_one();
    }
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
