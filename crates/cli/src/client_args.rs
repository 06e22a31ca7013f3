//! The connection options of every command that talks to a cluster, and its runtime.
//!
//! Precedence, lowest first, as in Kafka's tools: a command's own defaults (only where
//! nothing else sets the key), the `--command-config` file, `-X key=value`, and
//! `--bootstrap-server`. Without any of them the client goes to `127.0.0.1:9092`. The flags
//! are global: they may come before or after the subcommand.

use std::path::PathBuf;

use anyhow::Context;
use strand_client::{Admin, Config};

use crate::common::parse_kv;
pub use crate::dump_log::Output;

const DEFAULT_BOOTSTRAP: &str = "127.0.0.1:9092";

#[derive(clap::Args, Debug, Clone)]
#[command(next_help_heading = "Connection")]
pub struct ConnectArgs {
    /// Brokers to bootstrap from: HOST:PORT[,HOST:PORT...] (default 127.0.0.1:9092).
    #[arg(
        long = "bootstrap-server",
        short = 'b',
        value_name = "HOST:PORT",
        global = true
    )]
    pub bootstrap_server: Option<String>,
    /// A .properties file of client settings with Kafka's names.
    #[arg(long = "command-config", value_name = "FILE", global = true)]
    pub command_config: Option<PathBuf>,
    /// One client setting, e.g. `-X linger.ms=5` (repeatable; wins over the file).
    #[arg(
        short = 'X',
        long = "property",
        value_name = "KEY=VALUE",
        global = true
    )]
    pub properties: Vec<String>,
}

impl ConnectArgs {
    /// The client config, with `defaults` applied where the file and flags are silent.
    pub fn config(&self, defaults: &[(&str, String)]) -> anyhow::Result<Config> {
        let mut c = match &self.command_config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                Config::parse_properties(&text).with_context(|| path.display().to_string())?
            }
            None => Config::new(),
        };
        for p in &self.properties {
            let (k, v) = parse_kv(p).context("-X")?;
            c.insert(k, v);
        }
        for (k, v) in defaults {
            if c.get(k).is_none() {
                c.insert(*k, v);
            }
        }
        match &self.bootstrap_server {
            Some(b) => c.insert("bootstrap.servers", b),
            None if c.get("bootstrap.servers").is_none() => {
                c.insert("bootstrap.servers", DEFAULT_BOOTSTRAP)
            }
            None => {}
        }
        Ok(c)
    }
}

/// The admin commands' options: the connection and `--output`.
#[derive(clap::Args, Debug, Clone)]
pub struct AdminArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// `text` (tables for people) or `json` (one document, for scripts).
    #[arg(long, value_enum, default_value_t = Output::Text, global = true)]
    pub output: Output,
}

impl AdminArgs {
    pub fn admin(&self) -> anyhow::Result<Admin> {
        Ok(Admin::new(self.connect.config(&[])?)?)
    }

    pub fn json(&self) -> bool {
        self.output == Output::Json
    }
}

/// A runtime for one command.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the runtime")
}

/// Resolves on SIGINT or SIGTERM (never, if the handlers cannot be installed).
pub async fn interrupted() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use clap::Parser;

    /// Shaped like `strand topics [flags] list [flags]`.
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        client: AdminArgs,
        #[command(subcommand)]
        cmd: Sub,
    }

    #[derive(clap::Subcommand)]
    enum Sub {
        List,
    }

    fn parse(args: &[&str]) -> AdminArgs {
        let cli = Cli::parse_from(args);
        let Sub::List = cli.cmd;
        cli.client
    }

    #[test]
    fn flag_beats_x_beats_file_beats_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("client.properties");
        std::fs::write(&file, "bootstrap.servers=file:1\nlinger.ms=7\nacks=1\n").unwrap();
        let f = file.to_str().unwrap();
        let a = parse(&["strand", "list", "--command-config", f, "-X", "acks=0"]);
        let c = a
            .connect
            .config(&[("acks", "all".into()), ("batch.size", "9".into())])
            .unwrap();
        assert_eq!(c.get("bootstrap.servers"), Some("file:1"));
        assert_eq!(c.get("linger.ms"), Some("7"));
        assert_eq!(c.get("acks"), Some("0"));
        assert_eq!(c.get("batch.size"), Some("9"));
        let a = parse(&["strand", "-b", "flag:2", "list", "--command-config", f]);
        assert_eq!(
            a.connect.config(&[]).unwrap().get("bootstrap.servers"),
            Some("flag:2")
        );
        let a = parse(&["strand", "list"]);
        assert_eq!(
            a.connect.config(&[]).unwrap().get("bootstrap.servers"),
            Some(DEFAULT_BOOTSTRAP)
        );
    }

    #[test]
    fn flags_go_before_or_after_the_subcommand() {
        let a = parse(&["strand", "--output", "json", "list", "-X", "a=b"]);
        assert!(a.json());
        let b = parse(&["strand", "list", "--output", "json", "-b", "h:1"]);
        assert!(b.json());
        assert_eq!(b.connect.bootstrap_server.as_deref(), Some("h:1"));
    }
}
