//! `strand metadata-quorum describe --status | --replication`: the metadata quorum as
//! Kafka's `kafka-metadata-quorum` prints it (leader, epoch, high watermark, follower lag,
//! voters and observers).

use anyhow::bail;
use serde_json::json;
use strand_client::{QuorumInfo, QuorumReplica};

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
    /// Describe the metadata quorum.
    Describe {
        /// Leader, epoch, high watermark, lag, voters and observers.
        #[arg(long, conflicts_with = "replication")]
        status: bool,
        /// Each replica's log end offset, lag and fetch times.
        #[arg(long)]
        replication: bool,
        /// Times as "N ms ago" (with --replication).
        #[arg(long = "human-readable")]
        human_readable: bool,
    },
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let Cmd::Describe {
        status,
        replication,
        human_readable,
    } = args.command;
    if !status && !replication {
        bail!("describe needs --status or --replication");
    }
    let admin = args.client.admin()?;
    let json = args.client.json();
    let out = runtime()?.block_on(async {
        let quorum = admin.describe_quorum().await?;
        if status {
            let cluster = admin.describe_cluster().await?;
            anyhow::Ok(render_status(&cluster.cluster_id, &quorum, json))
        } else {
            anyhow::Ok(render_replication(&quorum, human_readable, json))
        }
    })?;
    common::print(&out)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn leader(q: &QuorumInfo) -> Option<&QuorumReplica> {
    q.voters.iter().find(|v| v.node_id == q.leader_id)
}

fn render_status(cluster_id: &str, q: &QuorumInfo, json: bool) -> String {
    let leader = leader(q);
    let leo = leader.map_or(q.high_watermark, |l| l.log_end_offset);
    let max_lag = q
        .voters
        .iter()
        .map(|v| leo - v.log_end_offset)
        .max()
        .unwrap_or(0);
    let max_lag_ms = leader
        .map(|l| {
            q.voters
                .iter()
                .filter(|v| v.last_caught_up_ms >= 0)
                .map(|v| l.last_caught_up_ms - v.last_caught_up_ms)
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0);
    let voters: Vec<serde_json::Value> = q
        .voters
        .iter()
        .map(|v| {
            let endpoints = q
                .endpoints
                .iter()
                .find(|(n, _)| *n == v.node_id)
                .map(|(_, e)| e.clone())
                .unwrap_or_default();
            json!({"id": v.node_id, "directoryId": v.directory_id, "endpoints": endpoints})
        })
        .collect();
    let observers: Vec<serde_json::Value> = q
        .observers
        .iter()
        .map(|o| json!({"id": o.node_id, "directoryId": o.directory_id}))
        .collect();
    if json {
        return common::json(&json!({
            "ClusterId": cluster_id,
            "LeaderId": q.leader_id,
            "LeaderEpoch": q.leader_epoch,
            "HighWatermark": q.high_watermark,
            "MaxFollowerLag": max_lag,
            "MaxFollowerLagTimeMs": max_lag_ms,
            "CurrentVoters": voters,
            "CurrentObservers": observers,
        }));
    }
    // Kafka's layout: `{"id": 1, "directoryId": "...", "endpoints": ["NAME://host:port"]}`.
    let list = |items: &[serde_json::Value]| {
        let inner: Vec<String> = items
            .iter()
            .map(|v| {
                let mut parts = vec![format!("\"id\": {}", v["id"])];
                parts.push(format!("\"directoryId\": {}", v["directoryId"]));
                if let Some(eps) = v.get("endpoints").and_then(|e| e.as_array()) {
                    let eps: Vec<String> = eps.iter().map(|e| e.to_string()).collect();
                    parts.push(format!("\"endpoints\": [{}]", eps.join(", ")));
                }
                format!("{{{}}}", parts.join(", "))
            })
            .collect();
        format!("[{}]", inner.join(", "))
    };
    [
        format!("ClusterId:              {cluster_id}"),
        format!("LeaderId:               {}", q.leader_id),
        format!("LeaderEpoch:            {}", q.leader_epoch),
        format!("HighWatermark:          {}", q.high_watermark),
        format!("MaxFollowerLag:         {max_lag}"),
        format!("MaxFollowerLagTimeMs:   {max_lag_ms}"),
        format!("CurrentVoters:          {}", list(&voters)),
        format!("CurrentObservers:       {}", list(&observers)),
    ]
    .join("\n")
}

fn render_replication(q: &QuorumInfo, human: bool, json: bool) -> String {
    let leo = leader(q).map_or(q.high_watermark, |l| l.log_end_offset);
    let now = now_ms();
    let time = |ms: i64| {
        if ms < 0 {
            "-1".to_string()
        } else if human {
            format!("{} ms ago", (now - ms).max(0))
        } else {
            ms.to_string()
        }
    };
    let rows: Vec<(&QuorumReplica, &str)> = q
        .voters
        .iter()
        .map(|v| {
            (
                v,
                if v.node_id == q.leader_id {
                    "Leader"
                } else {
                    "Follower"
                },
            )
        })
        .chain(q.observers.iter().map(|o| (o, "Observer")))
        .collect();
    if json {
        return common::json(&json!(rows
            .iter()
            .map(|(r, status)| json!({
                "NodeId": r.node_id,
                "DirectoryId": r.directory_id,
                "LogEndOffset": r.log_end_offset,
                "Lag": leo - r.log_end_offset,
                "LastFetchTimestamp": r.last_fetch_ms,
                "LastCaughtUpTimestamp": r.last_caught_up_ms,
                "Status": status,
            }))
            .collect::<Vec<_>>()));
    }
    let mut t = Table::new(&[
        "NodeId",
        "DirectoryId",
        "LogEndOffset",
        "Lag",
        "LastFetchTimestamp",
        "LastCaughtUpTimestamp",
        "Status",
    ]);
    for (r, status) in rows {
        t.row(vec![
            r.node_id.to_string(),
            r.directory_id.clone(),
            r.log_end_offset.to_string(),
            (leo - r.log_end_offset).to_string(),
            time(r.last_fetch_ms),
            time(r.last_caught_up_ms),
            status.to_string(),
        ]);
    }
    t.render()
}
