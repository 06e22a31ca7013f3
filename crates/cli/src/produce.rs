//! `strand produce`: the console producer. Reads lines from standard input (or a file) and
//! sends one record per line.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::PathBuf;

use anyhow::{bail, Context};
use strand_client::{Producer, ProducerRecord};

use crate::client_args::{runtime, ConnectArgs, Output};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Topic to write to (created on first use if the broker auto-creates topics).
    #[arg(long, short = 't')]
    pub topic: String,
    /// Split each line at the first SEP into key and value (without it lines are values).
    #[arg(long = "key-separator", short = 'K', value_name = "SEP")]
    pub key_separator: Option<String>,
    /// Add this header to every record (repeatable).
    #[arg(long = "header", short = 'H', value_name = "KEY=VALUE")]
    pub headers: Vec<String>,
    /// Lines start with headers: `k1:v1,k2:v2<TAB>` before the key/value part.
    #[arg(long = "parse-headers")]
    pub parse_headers: bool,
    /// Write every record to this partition (default: the partitioner chooses).
    #[arg(long, short = 'p')]
    pub partition: Option<i32>,
    /// acks: 0, 1 or all.
    #[arg(long, default_value = "all")]
    pub acks: String,
    /// none, gzip, snappy, lz4 or zstd.
    #[arg(long = "compression", short = 'z', default_value = "none")]
    pub compression: String,
    /// Read lines from FILE instead of standard input.
    #[arg(long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Send the input as transactions of this transactional id: committed at the end (and
    /// every --transaction-size records), aborted if a record fails.
    #[arg(long = "transactional-id", value_name = "ID")]
    pub transactional_id: Option<String>,
    /// With --transactional-id: commit every N records (default: one transaction).
    #[arg(
        long = "transaction-size",
        value_name = "N",
        requires = "transactional_id"
    )]
    pub transaction_size: Option<u64>,
    /// Print each record's partition and offset as it is acknowledged.
    #[arg(long = "print-offsets")]
    pub print_offsets: bool,
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

fn parse_line(
    args: &Args,
    line: &str,
    fixed: &[(String, String)],
) -> anyhow::Result<ProducerRecord> {
    let mut rest = line;
    let mut rec = ProducerRecord::new(args.topic.clone());
    for (k, v) in fixed {
        rec = rec.header(k.clone(), Some(v.clone().into_bytes()));
    }
    if args.parse_headers {
        let Some((h, r)) = rest.split_once('\t') else {
            bail!("--parse-headers: no TAB after the headers in {line:?}")
        };
        for pair in h.split(',').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once(':').unwrap_or((pair, ""));
            rec = rec.header(k, Some(v.to_string().into_bytes()));
        }
        rest = r;
    }
    match &args.key_separator {
        Some(sep) => {
            let Some((k, v)) = rest.split_once(sep.as_str()) else {
                bail!("no key separator {sep:?} in {rest:?}")
            };
            rec = rec
                .key(k.to_string().into_bytes())
                .value(v.to_string().into_bytes());
        }
        None => rec = rec.value(rest.to_string().into_bytes()),
    }
    if let Some(p) = args.partition {
        rec = rec.partition(p);
    }
    Ok(rec)
}

/// Commits the open transaction, or aborts it if it cannot commit.
async fn end_transaction(producer: &Producer) -> anyhow::Result<()> {
    if let Err(e) = producer.commit_transaction().await {
        let _ = producer.abort_transaction().await;
        bail!("the transaction was aborted: {e}");
    }
    Ok(())
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let fixed: Vec<(String, String)> = args
        .headers
        .iter()
        .map(|h| {
            h.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .with_context(|| format!("--header takes KEY=VALUE, got {h:?}"))
        })
        .collect::<anyhow::Result<_>>()?;
    let mut defaults = vec![
        ("acks", args.acks.clone()),
        ("compression.type", args.compression.clone()),
        ("linger.ms", "5".into()),
    ];
    if let Some(id) = &args.transactional_id {
        defaults.push(("transactional.id", id.clone()));
    }
    let config = args.connect.config(&defaults)?;
    let input: Box<dyn BufRead + Send> = match &args.input {
        Some(p) => Box::new(std::io::BufReader::new(
            std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?,
        )),
        None => Box::new(std::io::BufReader::new(std::io::stdin())),
    };
    runtime()?.block_on(async move {
        let producer = Producer::new(config)?;
        let txn = args.transactional_id.is_some();
        if txn {
            producer.init_transactions().await.context("init_transactions")?;
            producer.begin_transaction()?;
        }
        let (tx, mut rx) = tokio::sync::mpsc::channel::<strand_client::DeliveryFuture>(100_000);
        let print = args.print_offsets && args.output == Output::Text;
        let collector = tokio::spawn(async move {
            let mut count = 0u64;
            let mut last: BTreeMap<i32, i64> = BTreeMap::new();
            let mut first_error: Option<strand_client::Error> = None;
            while let Some(d) = rx.recv().await {
                match d.await {
                    Ok(m) => {
                        count += 1;
                        last.insert(m.partition, m.offset);
                        if print {
                            println!("{}-{}@{}", m.topic, m.partition, m.offset);
                        }
                    }
                    Err(e) => {
                        eprintln!("strand produce: delivery failed: {e}");
                        first_error.get_or_insert(e);
                    }
                }
            }
            (count, last, first_error)
        });
        // Standard input is read on a blocking thread and handed over line by line.
        let (ltx, mut lrx) = tokio::sync::mpsc::channel::<std::io::Result<String>>(1024);
        std::thread::spawn(move || {
            for line in input.lines() {
                if ltx.blocking_send(line).is_err() {
                    break;
                }
            }
        });
        let mut sent = 0u64;
        while let Some(line) = lrx.recv().await {
            let line = line.context("reading input")?;
            let line = line.strip_suffix('\r').unwrap_or(&line);
            let rec = parse_line(&args, line, &fixed)?;
            let d = producer.send(rec).await.with_context(|| format!("sending record {}", sent + 1))?;
            sent += 1;
            if tx.send(d).await.is_err() {
                break;
            }
            if txn && args.transaction_size.is_some_and(|n| n > 0 && sent.is_multiple_of(n)) {
                end_transaction(&producer).await?;
                producer.begin_transaction()?;
            }
        }
        if txn {
            end_transaction(&producer).await?;
        }
        drop(tx);
        producer.close().await?;
        let (count, last, first_error) = collector.await?;
        match args.output {
            Output::Json => println!(
                "{}",
                serde_json::json!({"topic": args.topic, "records": count, "failed": sent - count,
                    "last_offsets": last.iter().map(|(p, o)| (p.to_string(), *o)).collect::<BTreeMap<_, _>>()})
            ),
            Output::Text => eprintln!("strand produce: {count} records to {}", args.topic),
        }
        if let Some(e) = first_error {
            bail!("{} of {sent} records failed; first error: {e}", sent - count);
        }
        anyhow::Ok(())
    })
}
