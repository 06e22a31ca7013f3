//! `strand consume`: the console consumer. Prints records from a topic, as a group member
//! (`--group`) or by assigning partitions itself.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use strand_client::consumer::TimestampType;
use strand_client::{Consumer, ConsumerRecord, TopicPartition};

use crate::client_args::{interrupted, runtime, ConnectArgs, Output};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Topic(s) to read (repeatable).
    #[arg(long, short = 't', required = true)]
    pub topic: Vec<String>,
    /// Consume as a member of this group (offsets committed automatically).
    #[arg(long, short = 'g')]
    pub group: Option<String>,
    /// Start at the earliest offset when there is no committed offset.
    #[arg(long = "from-beginning")]
    pub from_beginning: bool,
    /// Read only this partition (no group).
    #[arg(long, short = 'p')]
    pub partition: Option<i32>,
    /// Start offset with --partition: a number, `earliest` or `latest`.
    #[arg(long, short = 'o')]
    pub offset: Option<String>,
    /// Exit after this many records.
    #[arg(long = "max-messages", short = 'n')]
    pub max_messages: Option<u64>,
    /// Exit when no record arrives for this long (default: wait forever).
    #[arg(long = "timeout-ms")]
    pub timeout_ms: Option<u64>,
    #[arg(long = "print-key")]
    pub print_key: bool,
    #[arg(long = "print-headers")]
    pub print_headers: bool,
    #[arg(long = "print-timestamp")]
    pub print_timestamp: bool,
    #[arg(long = "print-offset")]
    pub print_offset: bool,
    #[arg(long = "print-partition")]
    pub print_partition: bool,
    /// `read_uncommitted` (Kafka's default) or `read_committed`: skip the records of aborted
    /// transactions and stop before open ones.
    #[arg(long = "isolation-level", value_name = "LEVEL")]
    pub isolation_level: Option<String>,
    /// Between the printed fields.
    #[arg(long = "separator", default_value = "\t")]
    pub separator: String,
    /// `text`: the value (and the fields asked for); `json`: one object per record.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

fn text(b: &Option<bytes::Bytes>) -> String {
    match b {
        None => "null".into(),
        Some(b) => String::from_utf8_lossy(b).into_owned(),
    }
}

fn format_record(args: &Args, r: &ConsumerRecord) -> String {
    match args.output {
        Output::Json => serde_json::json!({
            "topic": &*r.topic,
            "partition": r.partition,
            "offset": r.offset,
            "timestamp": r.timestamp,
            "timestamp_type": match r.timestamp_type { TimestampType::CreateTime => "CreateTime", TimestampType::LogAppendTime => "LogAppendTime" },
            "key": r.key.as_ref().map(|k| String::from_utf8_lossy(k).into_owned()),
            "value": r.value.as_ref().map(|v| String::from_utf8_lossy(v).into_owned()),
            "headers": r.headers.iter().map(|h| serde_json::json!([h.key, h.value.as_ref().map(|v| String::from_utf8_lossy(v).into_owned())])).collect::<Vec<_>>(),
        })
        .to_string(),
        Output::Text => {
            let mut fields: Vec<String> = Vec::new();
            if args.print_timestamp {
                let kind = match r.timestamp_type {
                    TimestampType::CreateTime => "CreateTime",
                    TimestampType::LogAppendTime => "LogAppendTime",
                };
                fields.push(format!("{kind}:{}", r.timestamp));
            }
            if args.print_partition {
                fields.push(format!("Partition:{}", r.partition));
            }
            if args.print_offset {
                fields.push(format!("Offset:{}", r.offset));
            }
            if args.print_headers {
                let hs: Vec<String> = r.headers.iter().map(|h| format!("{}:{}", h.key, text(&h.value))).collect();
                fields.push(if hs.is_empty() { "NO_HEADERS".into() } else { hs.join(",") });
            }
            if args.print_key {
                fields.push(text(&r.key));
            }
            fields.push(text(&r.value));
            fields.join(&args.separator)
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if args.group.is_some() && args.partition.is_some() {
        bail!("--partition and --group do not go together");
    }
    if args.offset.is_some() && args.partition.is_none() {
        bail!("--offset needs --partition");
    }
    let mut defaults = vec![(
        "auto.offset.reset",
        if args.from_beginning {
            "earliest"
        } else {
            "latest"
        }
        .to_string(),
    )];
    if let Some(level) = &args.isolation_level {
        if !["read_committed", "read_uncommitted"].contains(&level.as_str()) {
            bail!("--isolation-level {level}: use read_committed or read_uncommitted");
        }
        defaults.push(("isolation.level", level.clone()));
    }
    if let Some(g) = &args.group {
        defaults.push(("group.id", g.clone()));
        if args.max_messages.is_some() {
            // Commit exactly what was printed, not what was prefetched.
            defaults.push(("enable.auto.commit", "false".into()));
        }
    }
    let config = args.connect.config(&defaults)?;
    runtime()?.block_on(async move {
        let mut consumer = Consumer::new(config)?;
        if args.group.is_some() {
            let topics: Vec<&str> = args.topic.iter().map(String::as_str).collect();
            consumer.subscribe(&topics)?;
        } else {
            let admin = strand_client::Admin::new(args.connect.config(&[])?)?;
            let mut tps = Vec::new();
            for t in &args.topic {
                let infos = admin
                    .describe_topics(std::slice::from_ref(t))
                    .await
                    .with_context(|| format!("topic {t}"))?;
                let info = infos
                    .first()
                    .with_context(|| format!("topic {t} not found"))?;
                if info.error_code != 0 {
                    bail!("topic {t}: {}", strand_client::KafkaCode(info.error_code));
                }
                match args.partition {
                    Some(p) if p < 0 || p as usize >= info.partitions.len() => {
                        bail!("topic {t} has no partition {p}")
                    }
                    Some(p) => tps.push(TopicPartition::new(t.clone(), p)),
                    None => tps.extend(
                        (0..info.partitions.len() as i32)
                            .map(|p| TopicPartition::new(t.clone(), p)),
                    ),
                }
            }
            consumer.assign(&tps)?;
            match args.offset.as_deref() {
                None => {}
                Some("earliest" | "beginning") => consumer.seek_to_beginning(&tps).await?,
                Some("latest" | "end") => consumer.seek_to_end(&tps).await?,
                Some(n) => {
                    let o: i64 = n.parse().with_context(|| format!("--offset {n:?}"))?;
                    for tp in &tps {
                        consumer.seek(tp, o)?;
                    }
                }
            }
        }
        let mut seen = 0u64;
        let mut printed: std::collections::BTreeMap<TopicPartition, i64> = Default::default();
        let mut last_record = Instant::now();
        let stdout = std::io::stdout();
        let stop = interrupted();
        tokio::pin!(stop);
        'outer: loop {
            let batch = tokio::select! {
                r = consumer.poll(Duration::from_millis(200)) => r?,
                _ = &mut stop => break,
            };
            if batch.is_empty() {
                if args
                    .timeout_ms
                    .is_some_and(|t| last_record.elapsed() >= Duration::from_millis(t))
                {
                    break;
                }
                continue;
            }
            last_record = Instant::now();
            let mut out = stdout.lock();
            for r in &batch {
                writeln!(out, "{}", format_record(&args, r))?;
                seen += 1;
                printed.insert(
                    TopicPartition::new(r.topic.to_string(), r.partition),
                    r.offset + 1,
                );
                if args.max_messages.is_some_and(|m| seen >= m) {
                    out.flush()?;
                    break 'outer;
                }
            }
            out.flush()?;
        }
        eprintln!("strand consume: {seen} records");
        if args.group.is_some() && !printed.is_empty() {
            consumer
                .commit_offsets_sync(printed)
                .await
                .context("committing offsets")?;
        }
        consumer.close().await?;
        anyhow::Ok(())
    })
}
