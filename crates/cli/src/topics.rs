//! `strand topics`: create, list, describe, alter and delete topics (Kafka's `kafka-topics`).

use anyhow::{bail, Context};
use serde_json::json;
use strand_client::{
    Admin, AlterConfigOp, ConfigEntry, ConfigResource, KafkaCode, NewTopic, TopicInfo,
};

use crate::client_args::{runtime, AdminArgs};
use crate::common::{self, parse_kv, Table};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub client: AdminArgs,
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Debug, clap::Subcommand)]
pub enum Cmd {
    /// Create a topic.
    Create {
        #[arg(long)]
        topic: String,
        /// Partition count (default: the broker's num.partitions).
        #[arg(long, value_name = "N")]
        partitions: Option<i32>,
        /// Replicas per partition (default: the broker's default.replication.factor).
        #[arg(long, value_name = "N")]
        replication_factor: Option<i16>,
        /// A topic config; repeat for more.
        #[arg(long = "config", value_name = "KEY=VALUE")]
        configs: Vec<String>,
        /// Succeed when the topic exists already.
        #[arg(long)]
        if_not_exists: bool,
    },
    /// List topic names.
    List {
        /// Leave out internal topics (__consumer_offsets).
        #[arg(long)]
        exclude_internal: bool,
    },
    /// Show partitions, leaders, replicas, ISRs and the configs set on topics.
    Describe {
        /// The topic to describe; repeat for more (default: every topic).
        #[arg(long = "topic", value_name = "TOPIC")]
        topics: Vec<String>,
        /// Leave out internal topics when describing every topic.
        #[arg(long)]
        exclude_internal: bool,
    },
    /// Add partitions, and set or delete topic configs.
    Alter {
        #[arg(long)]
        topic: String,
        /// The new (larger) partition count.
        #[arg(long, value_name = "N")]
        partitions: Option<i32>,
        /// Set a topic config; repeat for more.
        #[arg(long = "config", value_name = "KEY=VALUE")]
        configs: Vec<String>,
        /// Remove a topic config (back to its default); repeat for more.
        #[arg(long = "delete-config", value_name = "KEY")]
        delete_configs: Vec<String>,
    },
    /// Delete topics.
    Delete {
        /// The topic to delete; repeat for more.
        #[arg(long = "topic", value_name = "TOPIC", required = true)]
        topics: Vec<String>,
        /// Succeed for topics that do not exist.
        #[arg(long)]
        if_exists: bool,
    },
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let admin = args.client.admin()?;
    let json = args.client.json();
    let out = runtime()?.block_on(execute(&admin, args.command, json))?;
    common::print(&out)
}

async fn execute(admin: &Admin, cmd: Cmd, json: bool) -> anyhow::Result<String> {
    match cmd {
        Cmd::Create {
            topic,
            partitions,
            replication_factor,
            configs,
            if_not_exists,
        } => {
            let mut new = NewTopic::new(
                &topic,
                partitions.unwrap_or(-1),
                replication_factor.unwrap_or(-1),
            );
            for c in &configs {
                let (k, v) = parse_kv(c).context("--config")?;
                new = new.config(k, v);
            }
            let created = match admin.create_topic(new).await {
                Ok(()) => true,
                Err(e) if if_not_exists && e.code() == Some(KafkaCode::TOPIC_ALREADY_EXISTS) => {
                    false
                }
                Err(e) => return Err(e.into()),
            };
            Ok(if json {
                common::json(&json!({"topic": topic, "created": created}))
            } else if created {
                format!("Created topic {topic}.\n")
            } else {
                format!("Topic {topic} already exists.\n")
            })
        }
        Cmd::List { exclude_internal } => {
            let names = admin.list_topics(!exclude_internal).await?;
            Ok(if json {
                common::json(&json!(names))
            } else {
                names.iter().map(|n| format!("{n}\n")).collect()
            })
        }
        Cmd::Describe {
            topics,
            exclude_internal,
        } => {
            let names = if topics.is_empty() {
                admin.list_topics(!exclude_internal).await?
            } else {
                topics
            };
            let described = admin.describe_topics(&names).await?;
            let mut with_configs = Vec::new();
            for t in described {
                let configs = admin
                    .describe_configs(ConfigResource::topic(&t.name))
                    .await?;
                with_configs.push((t, configs));
            }
            Ok(if json {
                common::json(&describe_json(&with_configs))
            } else {
                describe_text(&with_configs)
            })
        }
        Cmd::Alter {
            topic,
            partitions,
            configs,
            delete_configs,
        } => alter(admin, topic, partitions, configs, delete_configs, json).await,
        Cmd::Delete { topics, if_exists } => delete(admin, &topics, if_exists, json).await,
    }
}

/// Deletes the topics; prints what was deleted, and fails if anything could not be.
async fn delete(
    admin: &Admin,
    topics: &[String],
    if_exists: bool,
    json: bool,
) -> anyhow::Result<String> {
    let results = admin.delete_topics(topics).await?;
    let mut text = String::new();
    let mut report = Vec::new();
    let mut failures = Vec::new();
    for (topic, r) in results {
        match r {
            Ok(()) => {
                text += &format!("Deleted topic {topic}.\n");
                report.push(json!({"topic": topic, "deleted": true}));
            }
            Err(e) if if_exists && e.code() == Some(KafkaCode::UNKNOWN_TOPIC_OR_PARTITION) => {
                report.push(json!({"topic": topic, "deleted": false}));
            }
            Err(e) => failures.push(format!("topic {topic}: {e}")),
        }
    }
    let out = if json {
        common::json(&json!(report))
    } else {
        text
    };
    if !failures.is_empty() {
        common::print(&out)?;
        bail!("cannot delete {}", failures.join("; "));
    }
    Ok(out)
}

async fn alter(
    admin: &Admin,
    topic: String,
    partitions: Option<i32>,
    configs: Vec<String>,
    delete_configs: Vec<String>,
    json: bool,
) -> anyhow::Result<String> {
    if partitions.is_none() && configs.is_empty() && delete_configs.is_empty() {
        bail!("nothing to alter: give --partitions, --config or --delete-config");
    }
    let mut ops = Vec::new();
    let mut set = serde_json::Map::new();
    for c in &configs {
        let (k, v) = parse_kv(c).context("--config")?;
        set.insert(k.clone(), json!(v));
        ops.push(AlterConfigOp::set(k, v));
    }
    for k in &delete_configs {
        ops.push(AlterConfigOp::delete(k.trim()));
    }
    // Check the topic first, so that nothing is changed for a topic that is not there.
    admin.describe_topics(std::slice::from_ref(&topic)).await?;
    let mut text = String::new();
    if let Some(n) = partitions {
        admin.create_partitions(&topic, n).await?;
        text += &format!("Increased the partition count of {topic} to {n}.\n");
    }
    if !ops.is_empty() {
        admin
            .incremental_alter_configs(ConfigResource::topic(&topic), ops)
            .await?;
        text += &format!("Updated the configs of topic {topic}.\n");
    }
    Ok(if json {
        common::json(&json!({
            "topic": topic,
            "partitions": partitions,
            "set": set,
            "deleted": delete_configs,
        }))
    } else {
        text
    })
}

/// Configs worth showing with a topic: those set somewhere, not Kafka's defaults.
fn set_configs(configs: &[ConfigEntry]) -> Vec<&ConfigEntry> {
    configs.iter().filter(|c| !c.is_default).collect()
}

fn replication_factor(t: &TopicInfo) -> usize {
    t.partitions.first().map_or(0, |p| p.replicas.len())
}

fn list(ids: &[i32]) -> String {
    ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

/// Kafka's topic line, then a table of the partitions.
fn describe_text(topics: &[(TopicInfo, Vec<ConfigEntry>)]) -> String {
    let mut out = String::new();
    for (i, (t, configs)) in topics.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let configs: Vec<String> = set_configs(configs)
            .iter()
            .map(|c| format!("{}={}", c.name, c.value.as_deref().unwrap_or("null")))
            .collect();
        out += &format!(
            "Topic: {}\tTopicId: {}\tPartitionCount: {}\tReplicationFactor: {}\tConfigs: {}\n",
            t.name,
            t.id,
            t.partitions.len(),
            replication_factor(t),
            configs.join(",")
        );
        let mut table = Table::new(&["PARTITION", "LEADER", "REPLICAS", "ISR"]);
        for p in &t.partitions {
            table.row(vec![
                p.partition.to_string(),
                if p.leader >= 0 {
                    p.leader.to_string()
                } else {
                    "none".into()
                },
                list(&p.replicas),
                list(&p.isr),
            ]);
        }
        out += &table.render();
    }
    out
}

fn describe_json(topics: &[(TopicInfo, Vec<ConfigEntry>)]) -> serde_json::Value {
    json!(topics
        .iter()
        .map(|(t, configs)| {
            let configs: serde_json::Map<String, serde_json::Value> = set_configs(configs)
                .iter()
                .map(|c| (c.name.clone(), json!(c.value)))
                .collect();
            json!({
                "name": t.name,
                "id": t.id.to_string(),
                "internal": t.internal,
                "partition_count": t.partitions.len(),
                "replication_factor": replication_factor(t),
                "configs": configs,
                "partitions": t.partitions.iter().map(|p| json!({
                    "partition": p.partition,
                    "leader": p.leader,
                    "leader_epoch": p.leader_epoch,
                    "replicas": p.replicas,
                    "isr": p.isr,
                })).collect::<Vec<_>>(),
            })
        })
        .collect::<Vec<_>>())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use strand_client::PartitionInfo;

    fn topic() -> (TopicInfo, Vec<ConfigEntry>) {
        let p = |partition, leader| PartitionInfo {
            partition,
            leader,
            leader_epoch: 0,
            replicas: vec![1, 2],
            isr: vec![1],
            error_code: 0,
        };
        let entry = |name: &str, value: &str, is_default| ConfigEntry {
            name: name.into(),
            value: Some(value.into()),
            source: if is_default {
                "DEFAULT_CONFIG"
            } else {
                "DYNAMIC_TOPIC_CONFIG"
            }
            .into(),
            read_only: false,
            is_default,
            sensitive: false,
        };
        (
            TopicInfo {
                name: "orders".into(),
                error_code: 0,
                id: Default::default(),
                internal: false,
                partitions: vec![p(0, 1), p(1, -1)],
            },
            vec![
                entry("retention.ms", "1000", false),
                entry("segment.bytes", "1", true),
            ],
        )
    }

    #[test]
    fn describe_shows_partitions_and_configs_that_are_set() {
        let text = describe_text(&[topic()]);
        assert_eq!(
            text,
            "Topic: orders\tTopicId: 00000000-0000-0000-0000-000000000000\tPartitionCount: 2\tReplicationFactor: 2\tConfigs: retention.ms=1000\n\
             PARTITION  LEADER  REPLICAS  ISR\n\
             0          1       1,2       1\n\
             1          none    1,2       1\n"
        );
        let v = describe_json(&[topic()]);
        assert_eq!(v[0]["configs"], json!({"retention.ms": "1000"}));
        assert_eq!(v[0]["partitions"][1]["leader"], json!(-1));
        assert_eq!(v[0]["replication_factor"], json!(2));
    }
}
