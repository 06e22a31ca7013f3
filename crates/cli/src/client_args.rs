//! Connection options shared by the client commands (`produce`, `consume`, `perf`).

use std::path::PathBuf;

use anyhow::{bail, Context};
use strand_client::Config;

#[derive(clap::Args, Debug, Clone)]
pub struct ConnectArgs {
    /// Broker(s) to bootstrap from, comma-separated.
    #[arg(long = "bootstrap-server", short = 'b', default_value = "127.0.0.1:9092", value_name = "HOST:PORT")]
    pub bootstrap_server: String,
    /// A properties file of client settings (Kafka's names).
    #[arg(long = "command-config", value_name = "FILE")]
    pub command_config: Option<PathBuf>,
    /// One client setting, e.g. `-X linger.ms=5` (repeatable; wins over the file).
    #[arg(short = 'X', long = "property", value_name = "KEY=VALUE")]
    pub properties: Vec<String>,
}

impl ConnectArgs {
    /// The client config: file, then `-X` settings, then the given defaults where unset.
    pub fn config(&self, defaults: &[(&str, String)]) -> anyhow::Result<Config> {
        let mut c = match &self.command_config {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
                Config::parse_properties(&text)?
            }
            None => Config::new(),
        };
        for (k, v) in defaults {
            if c.get(k).is_none() {
                c.insert(*k, v);
            }
        }
        for p in &self.properties {
            let Some((k, v)) = p.split_once('=') else {
                bail!("-X takes KEY=VALUE, got {p:?}")
            };
            c.insert(k.trim(), v.trim());
        }
        if c.get("bootstrap.servers").is_none() {
            c.insert("bootstrap.servers", &self.bootstrap_server);
        }
        Ok(c)
    }
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Output {
    #[default]
    Text,
    Json,
}

/// A runtime for one command.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the runtime")
}

/// Resolves on SIGINT or SIGTERM.
pub async fn interrupted() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
