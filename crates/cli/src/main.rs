//! `strand`: the one binary. Subcommands are thin; the work lives in the library crates.

mod client_args;
mod common;
mod configs;
mod consume;
mod dump_log;
mod groups;
mod metadata_quorum;
mod offsets;
mod perf;
mod produce;
mod storage;
mod topics;
mod transactions;

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use strand_broker::{BrokerConfig, Server};

#[derive(Parser)]
#[command(
    name = "strand",
    version,
    about = "A Kafka-compatible event streaming platform"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a broker. With no options: 127.0.0.1:9092, data in ./strand-data.
    Broker {
        /// A server.properties file (Kafka's config names).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Set one config, overriding the file and STRAND_* environment variables.
        #[arg(long = "override", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
    },
    /// Print and check segment and index files (what Kafka's kafka-dump-log does).
    DumpLog(dump_log::Args),
    /// Create, list, describe, alter and delete topics (what kafka-topics does).
    Topics(topics::Args),
    /// Describe and alter topic and broker configs (what kafka-configs does).
    Configs(configs::Args),
    /// List, describe, reset the offsets of, and delete consumer groups
    /// (what kafka-consumer-groups does).
    Groups(groups::Args),
    /// Print partition offsets: earliest, latest, max timestamp or by time (GetOffsetShell).
    Offsets(offsets::Args),
    /// Send lines from standard input as records (what kafka-console-producer does).
    Produce(produce::Args),
    /// Print records of a topic (what kafka-console-consumer does).
    Consume(consume::Args),
    /// List, describe and abort transactions; describe producers; find hanging transactions
    /// (what kafka-transactions does).
    Transactions(transactions::Args),
    /// Measure produce or consume throughput and latency (kafka-*-perf-test).
    #[command(subcommand)]
    Perf(perf::Command),
    /// Describe the metadata quorum (what kafka-metadata-quorum does).
    MetadataQuorum(metadata_quorum::Args),
    /// Make cluster ids, format log dirs and show what they hold (what kafka-storage does).
    #[command(subcommand)]
    Storage(storage::Command),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // The broker reports what it does; client commands only what goes wrong.
    let default_filter = match cli.command {
        Command::Broker { .. } => "info",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STRAND_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none(),
        )
        .init();
    match cli.command {
        Command::Broker { config, overrides } => run_broker(config, overrides),
        Command::DumpLog(args) => std::process::exit(dump_log::run_cli(&args)),
        Command::Topics(args) => topics::run(args),
        Command::Configs(args) => configs::run(args),
        Command::Groups(args) => groups::run(args),
        Command::Offsets(args) => offsets::run(args),
        Command::Produce(args) => produce::run(args),
        Command::Consume(args) => consume::run(args),
        Command::Transactions(args) => transactions::run(args),
        Command::Perf(cmd) => perf::run(cmd),
        Command::Storage(cmd) => storage::run(cmd),
        Command::MetadataQuorum(args) => metadata_quorum::run(args),
    }
}

/// A node's settings: the file, then `STRAND_*` environment variables, then overrides.
fn broker_settings(
    file: Option<&std::path::Path>,
    overrides: &[String],
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut settings: BTreeMap<String, String> = match file {
        Some(path) => BrokerConfig::read_properties(path)?,
        None => BTreeMap::new(),
    };
    settings.extend(BrokerConfig::from_env(std::env::vars()));
    for o in overrides {
        let Some((k, v)) = o.split_once('=') else {
            bail!("--override takes KEY=VALUE, got {o:?}")
        };
        settings.insert(k.trim().to_string(), v.trim().to_string());
    }
    Ok(settings)
}

fn run_broker(file: Option<PathBuf>, overrides: Vec<String>) -> anyhow::Result<()> {
    let settings = broker_settings(file.as_deref(), &overrides)?;
    let config = BrokerConfig::from_map(settings)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(async move {
        let server = Server::bind(config).await?;
        for (listener, addr) in server.local_addrs()? {
            tracing::info!(%addr, %listener, node_id = server.broker().config.node_id, cluster_id = %server.broker().cluster_id, "strand broker listening");
        }
        server
            .run(async {
                wait_for_signal().await;
                tracing::info!("signal received: shutting down");
            })
            .await?;
        tracing::info!("stopped cleanly");
        anyhow::Ok(())
    })
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
