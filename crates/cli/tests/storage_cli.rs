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
    let mut child = Command::new(env!("CARGO_BIN_EXE_strand"))
        .args([
            "broker",
            "--config",
            c,
            "--override",
            "listeners=PLAINTEXT://127.0.0.1:0",
        ])
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
        .find(|l| l.contains("strand broker listening"));
    child.kill().unwrap();
    child.wait().unwrap();
    let line = line.expect("the broker listened");
    assert!(line.contains(&format!("cluster_id={id}")), "{line}");
}
