//! `strand storage random-uuid | format | info`, and a broker that starts on formatted dirs
//! keeps their cluster id.

#![allow(clippy::unwrap_used)] // tests

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn strand(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_strand"))
        .args(args)
        .env_remove("STRAND_LOG_DIRS")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Starts `strand broker <args>`, returns the log line that says it listens (or the first
/// error), and kills it.
fn listening_line(args: &[&str]) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_strand"))
        .arg("broker")
        .args(args)
        .env("STRAND_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let line = stderr
        .lines()
        .map_while(Result::ok)
        .find(|l| l.contains("strand broker listening") || l.contains("Error"));
    child.kill().unwrap();
    child.wait().unwrap();
    line.unwrap_or_default()
}

#[test]
fn log_dirs_are_formatted_for_a_cluster_and_the_broker_keeps_its_id() {
    let (code, id, _) = strand(&["storage", "random-uuid"]);
    let id = id.trim().to_string();
    assert_eq!((code, id.len()), (0, 22), "{id}");
    let root = tempfile::tempdir().unwrap();
    let (a, b) = (root.path().join("a"), root.path().join("b"));
    let config = root.path().join("server.properties");
    std::fs::write(
        &config,
        format!("node.id=3\nlog.dirs={},{}\n", a.display(), b.display()),
    )
    .unwrap();
    let c = config.to_str().unwrap();
    // Not formatted yet.
    let (code, out, _) = strand(&["storage", "info", "-c", c]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("not formatted"), "{out}");
    assert_ne!(strand(&["storage", "format", "-t", "nope", "-c", c]).0, 0);
    let (code, out, err) = strand(&["storage", "format", "-t", &id, "-c", c]);
    assert_eq!(code, 0, "{out}{err}");
    for dir in [&a, &b] {
        let props = std::fs::read_to_string(dir.join("meta.properties")).unwrap();
        assert!(props.contains(&format!("cluster.id={id}")) && props.contains("node.id=3"));
        assert!(props.contains("directory.id="), "{props}");
    }
    let (code, _, err) = strand(&["storage", "format", "-t", &id, "-c", c]);
    assert_ne!(code, 0);
    assert!(err.contains("already formatted"), "{err}");
    assert_eq!(
        strand(&["storage", "format", "-g", "-t", &id, "-c", c]).0,
        0
    );
    let (code, out, _) = strand(&["storage", "info", "-c", c]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("cluster.id={id} node.id=3")), "{out}");
    // Another node id on these dirs is a problem.
    let (code, out, _) = strand(&["storage", "info", "-c", c, "--override", "node.id=4"]);
    assert_eq!(code, 1, "{out}");
    // The broker runs on them as cluster `id`.
    let line = listening_line(&[
        "--config",
        c,
        "--override",
        "listeners=PLAINTEXT://127.0.0.1:0",
    ]);
    assert!(line.contains(&format!("cluster_id={id}")), "{line}");
}

#[test]
fn kafkas_combined_mode_server_properties_start_a_node() {
    let root = tempfile::tempdir().unwrap();
    let config = root.path().join("server.properties");
    // Kafka 4's config/server.properties, with loopback ports chosen at start.
    std::fs::write(
        &config,
        format!(
            "process.roles=broker,controller\nnode.id=1\n\
             controller.quorum.bootstrap.servers=localhost:9093\n\
             listeners=PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:0\n\
             inter.broker.listener.name=PLAINTEXT\ncontroller.listener.names=CONTROLLER\n\
             listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL\n\
             num.network.threads=3\nnum.io.threads=8\nsocket.send.buffer.bytes=102400\n\
             socket.receive.buffer.bytes=102400\nsocket.request.max.bytes=104857600\n\
             log.dirs={}\nnum.partitions=1\nnum.recovery.threads.per.data.dir=1\n\
             offsets.topic.replication.factor=1\n\
             share.coordinator.state.topic.replication.factor=1\n\
             share.coordinator.state.topic.min.isr=1\n\
             transaction.state.log.replication.factor=1\ntransaction.state.log.min.isr=1\n\
             log.retention.hours=168\nlog.segment.bytes=1073741824\n\
             log.retention.check.interval.ms=300000\n",
            root.path().join("kraft-combined-logs").display()
        ),
    )
    .unwrap();
    let line = listening_line(&["--config", config.to_str().unwrap()]);
    assert!(line.contains("listener=PLAINTEXT"), "{line}");
}
