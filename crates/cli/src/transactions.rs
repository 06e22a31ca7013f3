//! `strand transactions`: list and describe transactions, describe a partition's producers,
//! find and abort hanging transactions (the jobs of Kafka's `kafka-transactions.sh`).
//!
//! A transaction *hangs* on a partition when the partition's log holds it open (it has a
//! first offset, which holds the last stable offset back) but its coordinator does not have
//! that partition in an open transaction of that producer: no marker will ever come, and
//! `read_committed` consumers are stuck. `abort` writes the missing ABORT marker.

use anyhow::{bail, Context};
use serde_json::json;
use strand_client::{AbortSpec, Admin, TopicPartition};

use crate::client_args::{runtime, AdminArgs};
use crate::common::{self, Table};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub client: AdminArgs,
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Debug, clap::Subcommand)]
pub enum Cmd {
    /// List transactional ids with their producer and state.
    List {
        /// Only these states (Ongoing, PrepareCommit, CompleteAbort, ...); repeatable.
        #[arg(long = "state", value_name = "STATE")]
        states: Vec<String>,
        /// Only this producer id; repeatable.
        #[arg(long = "producer-id", value_name = "ID")]
        producer_ids: Vec<i64>,
        /// Only transactions running longer than this many ms.
        #[arg(long = "duration-filter", value_name = "MS", default_value_t = -1, allow_hyphen_values = true)]
        duration_filter: i64,
    },
    /// The state, producer, timeout and partitions of one transactional id.
    Describe {
        #[arg(long = "transactional-id")]
        transactional_id: String,
    },
    /// The producers a partition's log knows, with their open transactions.
    DescribeProducers {
        #[arg(long)]
        topic: String,
        #[arg(long)]
        partition: i32,
    },
    /// Write the ABORT marker of a hanging transaction on a partition: give the transaction's
    /// first offset (`--start-offset`, from `find-hanging` or `describe-producers`), or the
    /// producer itself.
    Abort {
        #[arg(long)]
        topic: String,
        #[arg(long)]
        partition: i32,
        #[arg(long = "start-offset", conflicts_with_all = ["producer_id"])]
        start_offset: Option<i64>,
        #[arg(long = "producer-id", requires_all = ["producer_epoch", "coordinator_epoch"])]
        producer_id: Option<i64>,
        #[arg(long = "producer-epoch")]
        producer_epoch: Option<i16>,
        #[arg(long = "coordinator-epoch")]
        coordinator_epoch: Option<i32>,
    },
    /// Find transactions open on partitions whose coordinators do not know them.
    FindHanging {
        /// Only partitions this broker leads.
        #[arg(long = "broker-id")]
        broker_id: Option<i32>,
        /// Only transactions open longer than this many minutes (Kafka's default: the
        /// largest transaction timeout, 15).
        #[arg(
            long = "max-transaction-timeout",
            value_name = "MINUTES",
            default_value_t = 15
        )]
        max_transaction_timeout: i64,
    },
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let admin = args.client.admin()?;
    let json = args.client.json();
    let out = runtime()?.block_on(execute(&admin, args.command, json))?;
    common::print(&out)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

async fn execute(admin: &Admin, cmd: Cmd, json: bool) -> anyhow::Result<String> {
    match cmd {
        Cmd::List {
            states,
            producer_ids,
            duration_filter,
        } => {
            let listed = admin
                .list_transactions(&states, &producer_ids, duration_filter)
                .await?;
            if json {
                return Ok(common::json(&json!(listed
                    .iter()
                    .map(|t| json!({
                        "transactional_id": t.transactional_id,
                        "coordinator": t.coordinator,
                        "producer_id": t.producer_id,
                        "state": t.state,
                    }))
                    .collect::<Vec<_>>())));
            }
            let mut t = Table::new(&[
                "TransactionalId",
                "Coordinator",
                "ProducerId",
                "TransactionState",
            ]);
            for l in &listed {
                t.row(vec![
                    l.transactional_id.clone(),
                    l.coordinator.to_string(),
                    l.producer_id.to_string(),
                    l.state.clone(),
                ]);
            }
            Ok(t.render())
        }
        Cmd::Describe { transactional_id } => {
            let d = admin.describe_transaction(&transactional_id).await?;
            let duration = (d.start_time_ms >= 0).then(|| now_ms() - d.start_time_ms);
            let partitions: Vec<String> = d
                .partitions
                .iter()
                .map(|tp| format!("{}-{}", tp.topic, tp.partition))
                .collect();
            if json {
                return Ok(common::json(&json!({
                    "coordinator": d.coordinator,
                    "transactional_id": d.transactional_id,
                    "producer_id": d.producer_id,
                    "producer_epoch": d.producer_epoch,
                    "state": d.state,
                    "timeout_ms": d.timeout_ms,
                    "start_time_ms": d.start_time_ms,
                    "duration_ms": duration,
                    "partitions": partitions,
                })));
            }
            let mut t = Table::new(&[
                "CoordinatorId",
                "TransactionalId",
                "ProducerId",
                "ProducerEpoch",
                "TransactionState",
                "TransactionTimeoutMs",
                "CurrentTransactionStartTimeMs",
                "TransactionDurationMs",
                "TopicPartitions",
            ]);
            t.row(vec![
                d.coordinator.to_string(),
                d.transactional_id.clone(),
                d.producer_id.to_string(),
                d.producer_epoch.to_string(),
                d.state.clone(),
                d.timeout_ms.to_string(),
                if d.start_time_ms >= 0 {
                    d.start_time_ms.to_string()
                } else {
                    "None".into()
                },
                duration.map_or("None".into(), |x| x.to_string()),
                partitions.join(","),
            ]);
            Ok(t.render())
        }
        Cmd::DescribeProducers { topic, partition } => {
            let tp = TopicPartition::new(topic, partition);
            let producers = admin.describe_producers(&tp).await?;
            if json {
                return Ok(common::json(&json!(producers
                    .iter()
                    .map(|p| json!({
                        "producer_id": p.producer_id,
                        "producer_epoch": p.producer_epoch,
                        "latest_coordinator_epoch": p.coordinator_epoch,
                        "last_sequence": p.last_sequence,
                        "last_timestamp": p.last_timestamp,
                        "current_transaction_start_offset": p.current_txn_start_offset,
                    }))
                    .collect::<Vec<_>>())));
            }
            let mut t = Table::new(&[
                "ProducerId",
                "ProducerEpoch",
                "LatestCoordinatorEpoch",
                "LastSequence",
                "LastTimestamp",
                "CurrentTransactionStartOffset",
            ]);
            for p in &producers {
                t.row(vec![
                    p.producer_id.to_string(),
                    p.producer_epoch.to_string(),
                    p.coordinator_epoch.to_string(),
                    p.last_sequence.to_string(),
                    p.last_timestamp.to_string(),
                    if p.current_txn_start_offset >= 0 {
                        p.current_txn_start_offset.to_string()
                    } else {
                        "None".into()
                    },
                ]);
            }
            Ok(t.render())
        }
        Cmd::Abort {
            topic,
            partition,
            start_offset,
            producer_id,
            producer_epoch,
            coordinator_epoch,
        } => {
            let tp = TopicPartition::new(topic, partition);
            let spec = match (start_offset, producer_id, producer_epoch, coordinator_epoch) {
                (Some(offset), _, _, _) => {
                    let producers = admin.describe_producers(&tp).await?;
                    let p = producers
                        .iter()
                        .find(|p| p.current_txn_start_offset == offset)
                        .with_context(|| {
                            format!("no open transaction starts at offset {offset} on {}-{}", tp.topic, tp.partition)
                        })?;
                    AbortSpec {
                        partition: tp.clone(),
                        producer_id: p.producer_id,
                        producer_epoch: i16::try_from(p.producer_epoch).unwrap_or(i16::MAX),
                        coordinator_epoch: p.coordinator_epoch.max(0),
                    }
                }
                (None, Some(id), Some(epoch), Some(ce)) => AbortSpec {
                    partition: tp.clone(),
                    producer_id: id,
                    producer_epoch: epoch,
                    coordinator_epoch: ce,
                },
                _ => bail!("give --start-offset, or --producer-id, --producer-epoch and --coordinator-epoch"),
            };
            admin.abort_transaction(&spec).await?;
            Ok(format!(
                "aborted the transaction of producer {} on {}-{}\n",
                spec.producer_id, tp.topic, tp.partition
            ))
        }
        Cmd::FindHanging {
            broker_id,
            max_transaction_timeout,
        } => find_hanging(admin, broker_id, max_transaction_timeout, json).await,
    }
}

async fn find_hanging(
    admin: &Admin,
    broker_id: Option<i32>,
    max_timeout_min: i64,
    json: bool,
) -> anyhow::Result<String> {
    let now = now_ms();
    let min_age_ms = max_timeout_min.saturating_mul(60_000);
    let led = admin.partitions_led_by(broker_id).await?;
    // The coordinators' view: producer id -> partitions in its open transaction.
    let open = admin
        .list_transactions(
            &[
                "Ongoing".into(),
                "PrepareCommit".into(),
                "PrepareAbort".into(),
            ],
            &[],
            -1,
        )
        .await?;
    let mut known: std::collections::BTreeMap<i64, Vec<TopicPartition>> = Default::default();
    for l in &open {
        if let Ok(d) = admin.describe_transaction(&l.transactional_id).await {
            known.entry(d.producer_id).or_default().extend(d.partitions);
        }
    }
    let mut hanging = Vec::new();
    for (topic, partitions) in led {
        for p in partitions {
            let tp = TopicPartition::new(topic.clone(), p);
            let Ok(producers) = admin.describe_producers(&tp).await else {
                continue;
            };
            for s in producers {
                let open_here = s.current_txn_start_offset >= 0;
                let old = now - s.last_timestamp >= min_age_ms;
                let coordinator_has_it =
                    known.get(&s.producer_id).is_some_and(|ps| ps.contains(&tp));
                if open_here && old && !coordinator_has_it {
                    hanging.push((tp.clone(), s));
                }
            }
        }
    }
    if json {
        return Ok(common::json(&json!(hanging
            .iter()
            .map(|(tp, s)| json!({
                "topic": tp.topic,
                "partition": tp.partition,
                "producer_id": s.producer_id,
                "producer_epoch": s.producer_epoch,
                "coordinator_epoch": s.coordinator_epoch,
                "start_offset": s.current_txn_start_offset,
                "last_timestamp": s.last_timestamp,
                "duration_min": (now - s.last_timestamp) / 60_000,
            }))
            .collect::<Vec<_>>())));
    }
    let mut t = Table::new(&[
        "Topic",
        "Partition",
        "ProducerId",
        "ProducerEpoch",
        "CoordinatorEpoch",
        "StartOffset",
        "LastTimestamp",
        "Duration(min)",
    ]);
    for (tp, s) in &hanging {
        t.row(vec![
            tp.topic.clone(),
            tp.partition.to_string(),
            s.producer_id.to_string(),
            s.producer_epoch.to_string(),
            s.coordinator_epoch.to_string(),
            s.current_txn_start_offset.to_string(),
            s.last_timestamp.to_string(),
            ((now - s.last_timestamp) / 60_000).to_string(),
        ]);
    }
    Ok(t.render())
}
