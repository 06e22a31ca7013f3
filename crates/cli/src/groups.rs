//! `strand groups`: list, describe, reset the offsets of, and delete consumer groups (Kafka's
//! `kafka-consumer-groups`).
//!
//! Resetting follows Kafka: the group must have no active members; the new offsets are only
//! printed (`--dry-run`, the default) unless `--execute` is given; `--to-offset` and
//! `--shift-by` are kept within each partition's earliest and latest offsets.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{anyhow, bail, Context};
use serde_json::json;
use strand_client::{
    Admin, Error, GroupDescription, KafkaCode, MemberDescription, OffsetAndMetadata, OffsetSpec,
    TopicPartition,
};

use crate::client_args::{runtime, AdminArgs};
use crate::common::{self, parse_datetime_ms, Table};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub client: AdminArgs,
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Debug, clap::Subcommand)]
pub enum Cmd {
    /// List groups with their type, protocol type and state.
    List,
    /// Show each partition's committed offset, log end offset and lag, and its member.
    Describe {
        /// The group to describe; repeat for more.
        #[arg(
            long = "group",
            value_name = "GROUP",
            required_unless_present = "all_groups"
        )]
        groups: Vec<String>,
        /// Describe every group.
        #[arg(long, conflicts_with = "groups")]
        all_groups: bool,
    },
    /// Move a group's committed offsets (the group must have no active members).
    ResetOffsets(ResetArgs),
    /// Delete groups that have no active members, with their offsets.
    Delete {
        /// The group to delete; repeat for more.
        #[arg(long = "group", value_name = "GROUP", required = true)]
        groups: Vec<String>,
    },
}

#[derive(Debug, clap::Args)]
pub struct ResetArgs {
    #[arg(long)]
    group: String,
    /// A topic, or some of its partitions (orders:0,2); repeat for more.
    #[arg(
        long = "topic",
        value_name = "TOPIC[:P,P...]",
        required_unless_present = "all_topics"
    )]
    topics: Vec<String>,
    /// Every topic the group has committed offsets for.
    #[arg(long, conflicts_with = "topics")]
    all_topics: bool,
    #[command(flatten)]
    to: ResetTo,
    /// Only print the new offsets (the default).
    #[arg(long, conflicts_with = "execute")]
    dry_run: bool,
    /// Commit the new offsets.
    #[arg(long)]
    execute: bool,
}

#[derive(Debug, Clone, clap::Args)]
#[group(required = true, multiple = false)]
struct ResetTo {
    /// To each partition's log start offset.
    #[arg(long)]
    to_earliest: bool,
    /// To each partition's log end offset.
    #[arg(long)]
    to_latest: bool,
    /// To the first offset at or after a time: YYYY-MM-DDTHH:MM:SS[.sss], in UTC unless it
    /// ends in Z or ±HH:MM.
    #[arg(long, value_name = "DATETIME")]
    to_datetime: Option<String>,
    /// To this offset.
    #[arg(long, value_name = "N")]
    to_offset: Option<i64>,
    /// By this many records from the committed offset (negative: back).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    shift_by: Option<i64>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let admin = args.client.admin()?;
    let json = args.client.json();
    let out = runtime()?.block_on(execute(&admin, args.command, json))?;
    common::print(&out)
}

async fn execute(admin: &Admin, cmd: Cmd, json: bool) -> anyhow::Result<String> {
    match cmd {
        Cmd::List => {
            let groups = admin.list_groups().await?;
            if json {
                return Ok(common::json(&json!(groups
                    .iter()
                    .map(|g| json!({
                        "group_id": g.group_id,
                        "group_type": g.group_type,
                        "protocol_type": g.protocol_type,
                        "state": g.state,
                    }))
                    .collect::<Vec<_>>())));
            }
            let mut t = Table::new(&["GROUP", "TYPE", "PROTOCOL-TYPE", "STATE"]);
            for g in &groups {
                t.row(vec![
                    g.group_id.clone(),
                    g.group_type.clone().unwrap_or_else(|| "-".into()),
                    dash(&g.protocol_type),
                    g.state.clone().unwrap_or_else(|| "-".into()),
                ]);
            }
            Ok(t.render())
        }
        Cmd::Describe { groups, all_groups } => {
            let groups = if all_groups {
                admin
                    .list_groups()
                    .await?
                    .into_iter()
                    .map(|g| g.group_id)
                    .collect()
            } else {
                groups
            };
            let mut views = Vec::new();
            for g in &groups {
                views.push(describe(admin, g).await?);
            }
            Ok(if json {
                common::json(&json!(views
                    .iter()
                    .map(GroupView::to_json)
                    .collect::<Vec<_>>()))
            } else {
                views
                    .iter()
                    .map(GroupView::to_text)
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        Cmd::ResetOffsets(args) => reset(admin, args, json).await,
        Cmd::Delete { groups } => delete(admin, &groups, json).await,
    }
}

/// Deletes the groups; prints what was deleted, and fails if anything could not be.
async fn delete(admin: &Admin, groups: &[String], json: bool) -> anyhow::Result<String> {
    let results = admin.delete_groups(groups).await?;
    let deleted: Vec<&str> = results
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(g, _)| g.as_str())
        .collect();
    let failed: Vec<(&str, &Error)> = results
        .iter()
        .filter_map(|(g, r)| r.as_ref().err().map(|e| (g.as_str(), e)))
        .collect();
    let out = if json {
        common::json(&json!(results
            .iter()
            .map(|(g, r)| json!({
                "group": g,
                "deleted": r.is_ok(),
                "error": r.as_ref().err().map(|e| e.to_string()),
            }))
            .collect::<Vec<_>>()))
    } else {
        let mut text = String::new();
        if !deleted.is_empty() {
            let names: Vec<String> = deleted.iter().map(|g| format!("'{g}'")).collect();
            text += &format!(
                "Deletion of requested consumer groups ({}) was successful.\n",
                names.join(", ")
            );
        }
        if !failed.is_empty() {
            text += "Deletion of some consumer groups failed:\n";
            for (g, e) in &failed {
                text += &format!("* Group '{g}' could not be deleted due to: {e}\n");
            }
        }
        text
    };
    if !failed.is_empty() {
        common::print(&out)?;
        bail!(
            "{} of {} groups could not be deleted",
            failed.len(),
            results.len()
        );
    }
    Ok(out)
}

fn dash(s: &str) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s.to_string()
    }
}

/// A group's description, its committed offsets and the log end offsets of its partitions.
struct GroupView {
    group: GroupDescription,
    rows: Vec<Row>,
}

struct Row {
    tp: TopicPartition,
    current: Option<i64>,
    log_end: Option<i64>,
    member: Option<MemberDescription>,
}

impl Row {
    fn lag(&self) -> Option<i64> {
        Some(self.log_end? - self.current?)
    }
}

async fn describe(admin: &Admin, group: &str) -> anyhow::Result<GroupView> {
    let described = match admin.describe_groups(&[group.to_string()]).await {
        Err(e) if e.code() == Some(KafkaCode::GROUP_ID_NOT_FOUND) => {
            bail!("Consumer group '{group}' does not exist.")
        }
        r => r?,
    };
    let group_desc = described
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("no description of group {group}"))?;
    let committed = admin.list_group_offsets(group).await?;
    let mut owner: BTreeMap<TopicPartition, &MemberDescription> = BTreeMap::new();
    for m in &group_desc.members {
        for tp in &m.assignment {
            owner.insert(tp.clone(), m);
        }
    }
    let partitions: BTreeSet<TopicPartition> =
        committed.keys().chain(owner.keys()).cloned().collect();
    let log_end = log_end_offsets(admin, &partitions).await;
    let mut rows: Vec<Row> = partitions
        .into_iter()
        .map(|tp| Row {
            current: committed.get(&tp).map(|o| o.offset),
            log_end: log_end.get(&tp).copied(),
            member: owner.get(&tp).map(|m| (*m).clone()),
            tp,
        })
        .collect();
    // Members without partitions still get a line, as in Kafka's output.
    for m in &group_desc.members {
        if m.assignment.is_empty() {
            rows.push(Row {
                tp: TopicPartition::new("", -1),
                current: None,
                log_end: None,
                member: Some(m.clone()),
            });
        }
    }
    Ok(GroupView {
        group: group_desc,
        rows,
    })
}

/// Log end offsets, topic by topic, so that one deleted topic only blanks its own lines.
async fn log_end_offsets(
    admin: &Admin,
    partitions: &BTreeSet<TopicPartition>,
) -> BTreeMap<TopicPartition, i64> {
    let mut by_topic: BTreeMap<&str, Vec<(TopicPartition, OffsetSpec)>> = BTreeMap::new();
    for tp in partitions {
        by_topic
            .entry(&tp.topic)
            .or_default()
            .push((tp.clone(), OffsetSpec::Latest));
    }
    let mut out = BTreeMap::new();
    for (topic, wanted) in by_topic {
        match admin.list_offsets(wanted).await {
            Ok(found) => out.extend(found.into_iter().map(|(tp, o)| (tp, o.offset))),
            Err(e) => tracing::warn!(%topic, error = %e, "no log end offsets"),
        }
    }
    out
}

fn opt(v: Option<i64>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

impl GroupView {
    fn to_text(&self) -> String {
        let g = &self.group;
        let mut out = String::new();
        if g.members.is_empty() {
            out += &format!("Consumer group '{}' has no active members.\n", g.group_id);
        }
        let mut t = Table::new(&[
            "GROUP",
            "TOPIC",
            "PARTITION",
            "CURRENT-OFFSET",
            "LOG-END-OFFSET",
            "LAG",
            "CONSUMER-ID",
            "HOST",
            "CLIENT-ID",
        ]);
        for r in &self.rows {
            let (topic, partition) = if r.tp.partition < 0 {
                ("-".to_string(), "-".to_string())
            } else {
                (r.tp.topic.clone(), r.tp.partition.to_string())
            };
            let m = r.member.as_ref();
            t.row(vec![
                g.group_id.clone(),
                topic,
                partition,
                opt(r.current),
                opt(r.log_end),
                opt(r.lag()),
                m.map_or_else(|| "-".into(), |m| m.member_id.clone()),
                m.map_or_else(|| "-".into(), |m| dash(&m.host)),
                m.map_or_else(|| "-".into(), |m| dash(&m.client_id)),
            ]);
        }
        out += &t.render();
        out
    }

    fn to_json(&self) -> serde_json::Value {
        let g = &self.group;
        json!({
            "group": g.group_id,
            "state": g.state,
            "group_type": g.group_type,
            "protocol_type": g.protocol_type,
            "protocol": g.protocol,
            "members": g.members.iter().map(|m| json!({
                "member_id": m.member_id,
                "group_instance_id": m.group_instance_id,
                "client_id": m.client_id,
                "host": m.host,
                "assignment": m.assignment.iter()
                    .map(|tp| json!({"topic": tp.topic, "partition": tp.partition}))
                    .collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "offsets": self.rows.iter().filter(|r| r.tp.partition >= 0).map(|r| json!({
                "topic": r.tp.topic,
                "partition": r.tp.partition,
                "current_offset": r.current,
                "log_end_offset": r.log_end,
                "lag": r.lag(),
                "consumer_id": r.member.as_ref().map(|m| &m.member_id),
                "host": r.member.as_ref().map(|m| &m.host),
                "client_id": r.member.as_ref().map(|m| &m.client_id),
            })).collect::<Vec<_>>(),
        })
    }
}

/// `orders` or `orders:0,2`.
fn parse_topic_spec(s: &str) -> anyhow::Result<(String, Option<Vec<i32>>)> {
    match s.split_once(':') {
        None if !s.is_empty() => Ok((s.to_string(), None)),
        Some((t, ps)) if !t.is_empty() => {
            let parts = ps
                .split(',')
                .map(|p| {
                    p.trim()
                        .parse::<i32>()
                        .ok()
                        .filter(|p| *p >= 0)
                        .ok_or_else(|| anyhow!("--topic {s:?}: {p:?} is not a partition"))
                })
                .collect::<anyhow::Result<Vec<i32>>>()?;
            Ok((t.to_string(), Some(parts)))
        }
        _ => bail!("--topic {s:?}: expected TOPIC or TOPIC:P,P..."),
    }
}

/// The group's state if it exists; resetting needs it inactive.
async fn check_inactive(admin: &Admin, group: &str) -> anyhow::Result<()> {
    match admin.describe_groups(&[group.to_string()]).await {
        Ok(d) => {
            let state = d.first().map_or("Dead", |g| g.state.as_str());
            if state == "Empty" || state == "Dead" {
                Ok(())
            } else {
                bail!("Assignments can only be reset if the group '{group}' is inactive, but the current state is {state}.")
            }
        }
        Err(e) if e.code() == Some(KafkaCode::GROUP_ID_NOT_FOUND) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

async fn reset_partitions(
    admin: &Admin,
    args: &ResetArgs,
    committed: &BTreeMap<TopicPartition, OffsetAndMetadata>,
) -> anyhow::Result<Vec<TopicPartition>> {
    if args.all_topics {
        return Ok(committed.keys().cloned().collect());
    }
    let mut out = BTreeSet::new();
    for spec in &args.topics {
        let (topic, parts) = parse_topic_spec(spec)?;
        let info = admin
            .describe_topics(std::slice::from_ref(&topic))
            .await?
            .remove(0);
        let count = info.partitions.len() as i32;
        match parts {
            None => out.extend((0..count).map(|p| TopicPartition::new(&topic, p))),
            Some(ps) => {
                for p in ps {
                    if p >= count {
                        bail!("topic {topic} has no partition {p} ({count} partitions)");
                    }
                    out.insert(TopicPartition::new(&topic, p));
                }
            }
        }
    }
    Ok(out.into_iter().collect())
}

async fn offsets_of(
    admin: &Admin,
    partitions: &[TopicPartition],
    spec: OffsetSpec,
) -> anyhow::Result<BTreeMap<TopicPartition, i64>> {
    let found = admin
        .list_offsets(partitions.iter().map(|tp| (tp.clone(), spec)).collect())
        .await?;
    Ok(found.into_iter().map(|(tp, o)| (tp, o.offset)).collect())
}

async fn reset(admin: &Admin, args: ResetArgs, json: bool) -> anyhow::Result<String> {
    let group = args.group.as_str();
    check_inactive(admin, group).await?;
    let committed = admin.list_group_offsets(group).await?;
    let partitions = reset_partitions(admin, &args, &committed).await?;
    if partitions.is_empty() {
        bail!("no partitions to reset");
    }
    let earliest = offsets_of(admin, &partitions, OffsetSpec::Earliest).await?;
    let latest = offsets_of(admin, &partitions, OffsetSpec::Latest).await?;
    let to = &args.to;
    let by_time = match &to.to_datetime {
        Some(dt) => {
            let ms = parse_datetime_ms(dt).context("--to-datetime")?;
            Some(offsets_of(admin, &partitions, OffsetSpec::Timestamp(ms)).await?)
        }
        None => None,
    };
    let mut plan: BTreeMap<TopicPartition, i64> = BTreeMap::new();
    for tp in &partitions {
        let (low, high) = (earliest[tp], latest[tp]);
        let target = if to.to_earliest {
            low
        } else if to.to_latest {
            high
        } else if let Some(found) = &by_time {
            // No record at or after the time: the end of the log, as Kafka does.
            found.get(tp).copied().filter(|o| *o >= 0).unwrap_or(high)
        } else if let Some(n) = to.to_offset {
            n.clamp(low, high)
        } else if let Some(n) = to.shift_by {
            let current = committed.get(tp).map(|o| o.offset).ok_or_else(|| {
                anyhow!("cannot shift {tp}: the group has no committed offset for it")
            })?;
            current.saturating_add(n).clamp(low, high)
        } else {
            bail!("give one of --to-earliest, --to-latest, --to-datetime, --to-offset, --shift-by")
        };
        plan.insert(tp.clone(), target);
    }
    if args.execute {
        admin.alter_group_offsets(group, plan.clone()).await?;
    } else if !args.dry_run {
        eprintln!("No offsets were committed: this is a dry run. Add --execute to reset them.");
    }
    Ok(if json {
        common::json(&json!({
            "group": group,
            "executed": args.execute,
            "offsets": plan.iter().map(|(tp, o)| json!({
                "topic": tp.topic, "partition": tp.partition, "new_offset": o,
            })).collect::<Vec<_>>(),
        }))
    } else {
        let mut t = Table::new(&["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"]);
        for (tp, o) in &plan {
            t.row(vec![
                group.to_string(),
                tp.topic.clone(),
                tp.partition.to_string(),
                o.to_string(),
            ]);
        }
        t.render()
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn topic_specs_name_partitions() {
        assert_eq!(parse_topic_spec("t").unwrap(), ("t".into(), None));
        assert_eq!(
            parse_topic_spec("t:0,2").unwrap(),
            ("t".into(), Some(vec![0, 2]))
        );
        for bad in ["", ":1", "t:", "t:x", "t:-1"] {
            assert!(parse_topic_spec(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn describe_lines_show_lag_and_members() {
        let member = MemberDescription {
            member_id: "m-1".into(),
            group_instance_id: None,
            client_id: "app".into(),
            host: "/127.0.0.1".into(),
            assignment: vec![TopicPartition::new("t", 0)],
        };
        let view = GroupView {
            group: GroupDescription {
                group_id: "g".into(),
                state: "Stable".into(),
                protocol_type: "consumer".into(),
                protocol: "range".into(),
                group_type: "classic".into(),
                members: vec![member.clone()],
            },
            rows: vec![
                Row {
                    tp: TopicPartition::new("t", 0),
                    current: Some(3),
                    log_end: Some(10),
                    member: Some(member),
                },
                Row {
                    tp: TopicPartition::new("t", 1),
                    current: None,
                    log_end: Some(4),
                    member: None,
                },
            ],
        };
        assert_eq!(
            view.to_text(),
            "GROUP  TOPIC  PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG  CONSUMER-ID  HOST        CLIENT-ID\n\
             g      t      0          3               10              7    m-1          /127.0.0.1  app\n\
             g      t      1          -               4               -    -            -           -\n"
        );
        let j = view.to_json();
        assert_eq!(j["offsets"][0]["lag"], json!(7));
        assert_eq!(j["offsets"][1]["lag"], json!(null));
        assert_eq!(j["members"][0]["assignment"][0]["topic"], json!("t"));
    }
}
