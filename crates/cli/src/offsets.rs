//! `strand offsets`: partition offsets by time, one `topic:partition:offset` line each (the
//! job of Kafka's `GetOffsetShell`).

use anyhow::{bail, Context};
use serde_json::json;
use strand_client::{OffsetSpec, TopicPartition};

use crate::client_args::{runtime, AdminArgs};
use crate::common::{self, parse_datetime_ms};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub client: AdminArgs,
    /// The topic (default: every topic but internal ones).
    #[arg(long)]
    pub topic: Option<String>,
    /// Only these partitions: P[,P...].
    #[arg(long, value_name = "P,...", value_delimiter = ',')]
    pub partitions: Vec<i32>,
    /// `earliest`, `latest`, `max` (the record with the largest timestamp), a time in ms
    /// since the epoch, or a date-time (2026-01-01T00:00:00Z). Kafka's -1 (latest), -2
    /// (earliest) and -3 (max) work too.
    #[arg(long, default_value = "latest", allow_hyphen_values = true)]
    pub time: String,
}

/// What `--time` asks for.
fn parse_time(s: &str) -> anyhow::Result<OffsetSpec> {
    Ok(match s.trim() {
        "earliest" | "-2" => OffsetSpec::Earliest,
        "latest" | "-1" => OffsetSpec::Latest,
        "max" | "max-timestamp" | "-3" => OffsetSpec::MaxTimestamp,
        t => match t.parse::<i64>() {
            Ok(ms) if ms >= 0 => OffsetSpec::Timestamp(ms),
            Ok(_) => bail!("--time {t}: use earliest, latest, max or a time"),
            Err(_) => OffsetSpec::Timestamp(parse_datetime_ms(t).context("--time")?),
        },
    })
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let spec = parse_time(&args.time)?;
    let admin = args.client.admin()?;
    let out = runtime()?.block_on(async {
        let topics = match &args.topic {
            Some(t) => vec![t.clone()],
            None => admin.list_topics(false).await?,
        };
        let mut wanted = Vec::new();
        for t in admin.describe_topics(&topics).await? {
            let count = t.partitions.len() as i32;
            for &p in &args.partitions {
                if !(0..count).contains(&p) {
                    bail!("topic {} has no partition {p} ({count} partitions)", t.name);
                }
            }
            wanted.extend(
                (0..count)
                    .filter(|p| args.partitions.is_empty() || args.partitions.contains(p))
                    .map(|p| (TopicPartition::new(&t.name, p), spec)),
            );
        }
        Ok::<_, anyhow::Error>(admin.list_offsets(wanted).await?)
    })?;
    let text = if args.client.json() {
        common::json(&json!(out
            .iter()
            .map(|(tp, o)| json!({
                "topic": tp.topic,
                "partition": tp.partition,
                "offset": o.offset,
                "timestamp": o.timestamp,
            }))
            .collect::<Vec<_>>()))
    } else {
        out.iter()
            .map(|(tp, o)| format!("{}:{}:{}\n", tp.topic, tp.partition, o.offset))
            .collect()
    };
    common::print(&text)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn times_name_offset_specs() {
        assert_eq!(parse_time("earliest").unwrap(), OffsetSpec::Earliest);
        assert_eq!(parse_time("-1").unwrap(), OffsetSpec::Latest);
        assert_eq!(parse_time("max").unwrap(), OffsetSpec::MaxTimestamp);
        assert_eq!(
            parse_time("1700000000000").unwrap(),
            OffsetSpec::Timestamp(1_700_000_000_000)
        );
        assert_eq!(
            parse_time("1970-01-01T00:00:01Z").unwrap(),
            OffsetSpec::Timestamp(1000)
        );
        assert!(parse_time("-7").is_err());
        assert!(parse_time("soon").is_err());
    }
}
