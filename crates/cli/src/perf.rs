//! `strand perf produce|consume`: the jobs of kafka-producer-perf-test and
//! kafka-consumer-perf-test, against any Kafka-protocol cluster.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use strand_client::admin::NewTopic;
use strand_client::{Admin, Consumer, Producer, ProducerRecord, TopicPartition};

use crate::client_args::{runtime, ConnectArgs, Output};

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Send records as fast as allowed and report throughput and latency.
    Produce(ProduceArgs),
    /// Read records from the beginning and report throughput.
    Consume(ConsumeArgs),
}

#[derive(clap::Args, Debug)]
pub struct ProduceArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[arg(long, short = 't')]
    pub topic: String,
    #[arg(long = "num-records", short = 'n', default_value_t = 1_000_000)]
    pub num_records: u64,
    /// Stop after this long even if fewer records were sent.
    #[arg(long = "duration-s")]
    pub duration_s: Option<u64>,
    #[arg(long = "record-size", short = 's', default_value_t = 1024)]
    pub record_size: usize,
    /// Records per second; -1 for as fast as possible.
    #[arg(long, default_value_t = -1)]
    pub throughput: i64,
    #[arg(long, default_value = "1")]
    pub acks: String,
    #[arg(long = "compression", default_value = "none")]
    pub compression: String,
    #[arg(long = "batch-size", default_value_t = 1_048_576)]
    pub batch_size: usize,
    #[arg(long = "linger-ms", default_value_t = 5)]
    pub linger_ms: u64,
    /// Create the topic with this many partitions if it does not exist.
    #[arg(long)]
    pub partitions: Option<i32>,
    /// Send in transactions of this transactional id (and report commits per second and
    /// commit latency).
    #[arg(long = "transactional-id", value_name = "ID")]
    pub transactional_id: Option<String>,
    /// Records per transaction, with --transactional-id.
    #[arg(
        long = "transaction-size",
        default_value_t = 100,
        requires = "transactional_id"
    )]
    pub transaction_size: u64,
    /// Seconds between progress lines (0: none).
    #[arg(long = "progress-s", default_value_t = 5)]
    pub progress_s: u64,
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[derive(clap::Args, Debug)]
pub struct ConsumeArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[arg(long, short = 't')]
    pub topic: String,
    #[arg(long = "messages", short = 'n', default_value_t = 1_000_000)]
    pub messages: u64,
    /// Consume as a group member instead of assigning every partition.
    #[arg(long, short = 'g')]
    pub group: Option<String>,
    /// Give up when no record arrives for this long.
    #[arg(long = "timeout-ms", default_value_t = 10_000)]
    pub timeout_ms: u64,
    /// read_uncommitted (default) or read_committed.
    #[arg(long = "isolation-level", default_value = "read_uncommitted")]
    pub isolation_level: String,
    #[arg(long = "progress-s", default_value_t = 5)]
    pub progress_s: u64,
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

pub fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Produce(a) => produce(a),
        Command::Consume(a) => consume(a),
    }
}

/// Latency percentiles over microsecond samples.
fn percentiles(samples: &mut [u32]) -> serde_json::Value {
    samples.sort_unstable();
    let at = |q: f64| -> f64 {
        if samples.is_empty() {
            return 0.0;
        }
        let i = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
        samples[i] as f64 / 1000.0
    };
    let mean = if samples.is_empty() {
        0.0
    } else {
        samples.iter().map(|&s| s as f64).sum::<f64>() / samples.len() as f64 / 1000.0
    };
    serde_json::json!({"mean": mean, "p50": at(0.5), "p95": at(0.95), "p99": at(0.99), "p999": at(0.999), "max": at(1.0), "count": samples.len()})
}

fn payload_pool(record_size: usize) -> Bytes {
    // Upper-case letters from a small generator, as Kafka's perf test uses: not trivially
    // compressible, not random noise either.
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let len = record_size + 65_536;
    let mut v = Vec::with_capacity(len);
    for _ in 0..len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.push(b'A' + (x % 26) as u8);
    }
    Bytes::from(v)
}

fn produce(a: ProduceArgs) -> anyhow::Result<()> {
    let mut defaults = vec![
        ("acks", a.acks.clone()),
        ("compression.type", a.compression.clone()),
        ("batch.size", a.batch_size.to_string()),
        ("linger.ms", a.linger_ms.to_string()),
        (
            "buffer.memory",
            (64usize << 20).max(a.batch_size * 4).to_string(),
        ),
        (
            "max.request.size",
            (a.batch_size + 4096).max(1_048_576).to_string(),
        ),
    ];
    if let Some(id) = &a.transactional_id {
        defaults.push(("transactional.id", id.clone()));
    }
    let config = a.connect.config(&defaults)?;
    let admin_config = a.connect.config(&[])?;
    runtime()?.block_on(async move {
        if let Some(p) = a.partitions {
            let admin = Admin::new(admin_config)?;
            match admin.create_topic(NewTopic::new(a.topic.clone(), p, -1)).await {
                Ok(()) => {}
                Err(e) if e.code() == Some(strand_client::KafkaCode::TOPIC_ALREADY_EXISTS) => {}
                Err(e) => return Err(e).context("creating the topic"),
            }
        }
        let producer = Producer::new(config)?;
        producer.partitions_for(&a.topic).await?;
        let txn = a.transactional_id.is_some();
        let mut commits: Vec<u32> = Vec::new();
        if txn {
            producer.init_transactions().await.context("init_transactions")?;
            producer.begin_transaction()?;
        }
        let pool = payload_pool(a.record_size);
        // Callbacks run on the sender task; they only push a number, so one lock suffices.
        static LATENCIES: Mutex<Vec<u32>> = Mutex::new(Vec::new());
        static ERRORS: AtomicU64 = AtomicU64::new(0);
        static FIRST_ERROR: Mutex<Option<String>> = Mutex::new(None);
        LATENCIES.lock().unwrap_or_else(|p| p.into_inner()).reserve(a.num_records.min(10_000_000) as usize);
        let topic = a.topic.clone();
        let start = Instant::now();
        let end = a.duration_s.map(|s| start + Duration::from_secs(s));
        let mut last_report = start;
        let mut reported = 0u64;
        let mut sent = 0u64;
        while sent < a.num_records {
            if end.is_some_and(|e| sent.is_multiple_of(1024) && Instant::now() >= e) {
                break;
            }
            if a.throughput > 0 && sent.is_multiple_of(64) {
                let due = start + Duration::from_secs_f64(sent as f64 / a.throughput as f64);
                let now = Instant::now();
                if due > now {
                    tokio::time::sleep(due - now).await;
                }
            }
            let off = (sent as usize * 7919) % 65_536;
            let value = pool.slice(off..off + a.record_size);
            let now = Instant::now();
            let record = ProducerRecord { topic: topic.clone(), value: Some(value), ..Default::default() };
            producer
                .send_with_callback(record, move |r| match r {
                    Ok(_) => {
                        let us = now.elapsed().as_micros().min(u32::MAX as u128) as u32;
                        LATENCIES.lock().unwrap_or_else(|p| p.into_inner()).push(us);
                    }
                    Err(e) => {
                        ERRORS.fetch_add(1, Ordering::Relaxed);
                        FIRST_ERROR.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e.to_string());
                    }
                })
                .await?;
            sent += 1;
            if txn && sent.is_multiple_of(a.transaction_size.max(1)) {
                let t = Instant::now();
                producer.commit_transaction().await.context("commit_transaction")?;
                commits.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
                if sent < a.num_records {
                    producer.begin_transaction()?;
                }
            }
            if a.progress_s > 0 && sent.is_multiple_of(4096) && last_report.elapsed() >= Duration::from_secs(a.progress_s) {
                let dt = last_report.elapsed().as_secs_f64();
                let n = sent - reported;
                eprintln!(
                    "{sent} records sent, {:.1} records/s ({:.2} MiB/s)",
                    n as f64 / dt,
                    n as f64 * a.record_size as f64 / dt / 1048576.0
                );
                last_report = Instant::now();
                reported = sent;
            }
        }
        if txn && !sent.is_multiple_of(a.transaction_size.max(1)) {
            let t = Instant::now();
            producer.commit_transaction().await.context("commit_transaction")?;
            commits.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
        }
        producer.flush().await?;
        let elapsed = start.elapsed().as_secs_f64();
        let commits_per_s = commits.len() as f64 / elapsed;
        let commit_latency = percentiles(&mut commits);
        producer.close().await?;
        let mut lat = std::mem::take(&mut *LATENCIES.lock().unwrap_or_else(|p| p.into_inner()));
        let errors = ERRORS.load(Ordering::Relaxed);
        let first_error = FIRST_ERROR.lock().unwrap_or_else(|p| p.into_inner()).take();
        let acked = lat.len() as u64;
        let rps = acked as f64 / elapsed;
        let mibs = rps * a.record_size as f64 / 1048576.0;
        let p = percentiles(&mut lat);
        match a.output {
            Output::Json => println!(
                "{}",
                serde_json::json!({"perf": "produce", "records": acked, "errors": errors, "seconds": elapsed,
                    "records_per_s": rps, "mib_per_s": mibs, "ack_latency_ms": p,
                    "commits_per_s": commits_per_s, "commit_latency_ms": commit_latency})
            ),
            Output::Text => {
                println!(
                    "{acked} records sent, {rps:.1} records/sec ({mibs:.2} MiB/sec), {:.2} ms avg latency, {:.2} ms max latency, {:.2} ms 50th, {:.2} ms 95th, {:.2} ms 99th, {:.2} ms 99.9th.",
                    p["mean"].as_f64().unwrap_or(0.0), p["max"].as_f64().unwrap_or(0.0), p["p50"].as_f64().unwrap_or(0.0),
                    p["p95"].as_f64().unwrap_or(0.0), p["p99"].as_f64().unwrap_or(0.0), p["p999"].as_f64().unwrap_or(0.0)
                );
                if txn {
                    println!(
                        "{} transactions committed, {commits_per_s:.1} commits/sec, commit latency {:.2} ms 50th, {:.2} ms 99th.",
                        commit_latency["count"], commit_latency["p50"].as_f64().unwrap_or(0.0),
                        commit_latency["p99"].as_f64().unwrap_or(0.0)
                    );
                }
            }
        }
        if let Some(e) = first_error {
            bail!("{errors} records failed; first error: {e}");
        }
        anyhow::Ok(())
    })
}

fn consume(a: ConsumeArgs) -> anyhow::Result<()> {
    let mut defaults = vec![
        ("auto.offset.reset", "earliest".to_string()),
        ("isolation.level", a.isolation_level.clone()),
    ];
    if let Some(g) = &a.group {
        defaults.push(("group.id", g.clone()));
    }
    let config = a.connect.config(&defaults)?;
    let admin_config = a.connect.config(&[])?;
    runtime()?.block_on(async move {
        let mut consumer = Consumer::new(config)?;
        if a.group.is_some() {
            consumer.subscribe(&[a.topic.as_str()])?;
        } else {
            let admin = Admin::new(admin_config)?;
            let info = admin.describe_topics(std::slice::from_ref(&a.topic)).await?;
            let n = info.first().map_or(0, |t| t.partitions.len());
            if n == 0 {
                bail!("topic {} not found", a.topic);
            }
            let tps: Vec<TopicPartition> = (0..n as i32).map(|p| TopicPartition::new(a.topic.clone(), p)).collect();
            consumer.assign(&tps)?;
            consumer.seek_to_beginning(&tps).await?;
        }
        let start = Instant::now();
        let mut first: Option<Instant> = None;
        let mut count = 0u64;
        let mut bytes = 0u64;
        let mut last_record = Instant::now();
        let mut last_report = Instant::now();
        let mut reported = 0u64;
        while count < a.messages {
            let batch = consumer.poll(Duration::from_millis(200)).await?;
            if batch.is_empty() {
                if last_record.elapsed() >= Duration::from_millis(a.timeout_ms) {
                    break;
                }
                continue;
            }
            first.get_or_insert_with(Instant::now);
            last_record = Instant::now();
            for r in &batch {
                bytes += r.value.as_ref().map_or(0, |v| v.len()) as u64 + r.key.as_ref().map_or(0, |k| k.len()) as u64;
            }
            count += batch.len() as u64;
            if a.progress_s > 0 && last_report.elapsed() >= Duration::from_secs(a.progress_s) {
                let dt = last_report.elapsed().as_secs_f64();
                eprintln!("{count} records read, {:.1} records/s", (count - reported) as f64 / dt);
                last_report = Instant::now();
                reported = count;
            }
        }
        let elapsed = start.elapsed().as_secs_f64();
        let fetch_elapsed = first.map_or(elapsed, |f| f.elapsed().as_secs_f64());
        consumer.close().await.ok();
        let rps = count as f64 / elapsed;
        let mibs = bytes as f64 / elapsed / 1048576.0;
        match a.output {
            Output::Json => println!(
                "{}",
                serde_json::json!({"perf": "consume", "records": count, "bytes": bytes, "seconds": elapsed,
                    "fetch_seconds": fetch_elapsed, "records_per_s": rps, "mib_per_s": mibs})
            ),
            Output::Text => println!("{count} records read, {:.2} MiB, {rps:.1} records/sec, {mibs:.2} MiB/sec, {elapsed:.3} s", bytes as f64 / 1048576.0),
        }
        if count < a.messages {
            bail!("read {count} of {} records before --timeout-ms", a.messages);
        }
        anyhow::Ok(())
    })
}
