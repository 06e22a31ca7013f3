//! `strand storage`: kafka-storage's jobs. `random-uuid` makes a cluster id, `format` writes
//! `meta.properties` (cluster id, node id, directory id) in every log dir of a config, and
//! `info` says what each log dir holds. The embedded default (`strand broker` with no config)
//! formats itself; `format` is how an operator chooses the cluster id, as with Kafka.

use std::path::PathBuf;

use anyhow::bail;
use clap::{Args as ClapArgs, Subcommand};
use strand_broker::meta_properties;
use strand_broker::BrokerConfig;

#[derive(Subcommand)]
pub enum Command {
    /// Print a new cluster id.
    RandomUuid,
    /// Format the log dirs of a config for a cluster.
    Format(FormatArgs),
    /// Print what each log dir of a config holds.
    Info(ConfigArgs),
}

#[derive(ClapArgs)]
pub struct ConfigArgs {
    /// The server.properties file the node runs with.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: PathBuf,
    /// Set one config, as `strand broker --override` does.
    #[arg(long = "override", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

#[derive(ClapArgs)]
pub struct FormatArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// The cluster id (`strand storage random-uuid`).
    #[arg(short = 't', long = "cluster-id")]
    cluster_id: String,
    /// Leave formatted dirs as they are instead of failing.
    #[arg(short = 'g', long = "ignore-formatted")]
    ignore_formatted: bool,
    /// KIP-853's single-voter quorum; not yet (the metadata quorum is this node alone).
    #[arg(short = 's', long)]
    standalone: bool,
    /// KIP-853's initial voters; not yet.
    #[arg(short = 'I', long = "initial-controllers")]
    initial_controllers: Option<String>,
}

fn config(args: &ConfigArgs) -> anyhow::Result<BrokerConfig> {
    let settings = crate::broker_settings(Some(&args.config), &args.overrides)?;
    Ok(BrokerConfig::from_map(settings)?)
}

pub fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::RandomUuid => println!("{}", meta_properties::random_uuid()),
        Command::Format(args) => format(&args)?,
        Command::Info(args) => {
            if !info(&config(&args)?) {
                std::process::exit(1);
            }
        }
    }
    Ok(())
}

fn format(args: &FormatArgs) -> anyhow::Result<()> {
    if args.standalone || args.initial_controllers.is_some() {
        bail!(
            "--standalone and --initial-controllers set up a replicated metadata quorum, which \
             Strand does not have yet; format without them"
        );
    }
    meta_properties::check_cluster_id(&args.cluster_id).map_err(anyhow::Error::msg)?;
    let config = config(&args.config)?;
    let mut todo = Vec::new();
    for dir in &config.log_dirs {
        match meta_properties::read(dir).map_err(anyhow::Error::msg)? {
            None => todo.push(dir.clone()),
            Some(_) if args.ignore_formatted => {}
            Some(_) => bail!(
                "Log directory {} is already formatted. Use --ignore-formatted to ignore this \
                 directory and format the others.",
                dir.display()
            ),
        }
    }
    if todo.is_empty() {
        println!("All of the log directories are already formatted.");
    }
    for dir in todo {
        meta_properties::write(&dir, &args.cluster_id, config.node_id)
            .map_err(anyhow::Error::msg)?;
        println!(
            "Formatting {} for cluster {} as node {}.",
            dir.display(),
            args.cluster_id,
            config.node_id
        );
    }
    Ok(())
}

/// Prints each log dir's state; false if any has a problem.
fn info(config: &BrokerConfig) -> bool {
    let mut ok = true;
    let mut cluster: Option<String> = None;
    for dir in &config.log_dirs {
        println!("Log directory {}:", dir.display());
        match meta_properties::read(dir) {
            Ok(Some(m)) => {
                println!(
                    "  cluster.id={} node.id={} directory.id={}",
                    m.cluster_id,
                    m.node_id,
                    m.directory_id.as_deref().unwrap_or("-")
                );
                if m.node_id != config.node_id {
                    ok = false;
                    println!(
                        "  problem: it belongs to node.id {}, the config says {}",
                        m.node_id, config.node_id
                    );
                }
                match &cluster {
                    Some(c) if *c != m.cluster_id => {
                        ok = false;
                        println!("  problem: other log dirs belong to cluster {c}");
                    }
                    _ => cluster = Some(m.cluster_id),
                }
            }
            Ok(None) => {
                ok = false;
                println!("  problem: not formatted (no meta.properties)");
            }
            Err(e) => {
                ok = false;
                println!("  problem: {e}");
            }
        }
    }
    ok
}
