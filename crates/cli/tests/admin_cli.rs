//! `strand topics`, `configs`, `groups` and `offsets` against a real `strand broker` process.

#![allow(clippy::unwrap_used)] // tests

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use kafka_protocol::records::Compression;
use serde_json::Value;
use strand_protocol::testing::{encode, record};

/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600_000;

/// A `strand broker` child process on a free loopback port, killed when dropped.
struct Broker {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The child without the `STRAND_*` settings of whoever runs the tests.
fn command() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_strand"));
    for (k, _) in std::env::vars() {
        if k.starts_with("STRAND_") || k == "RUST_BACKTRACE" || k == "RUST_LIB_BACKTRACE" {
            c.env_remove(k);
        }
    }
    c.env("STRAND_LOG", "warn");
    c
}

impl Broker {
    fn start() -> Broker {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("broker.log")).unwrap();
        let data = dir.path().join("data");
        let child = command()
            .arg("broker")
            .args([
                "--override",
                &format!("listeners=PLAINTEXT://127.0.0.1:{port}"),
            ])
            .args(["--override", &format!("log.dirs={}", data.display())])
            .args(["--override", "group.initial.rebalance.delay.ms=0"])
            .args(["--override", "offsets.topic.num.partitions=2"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut b = Broker {
            child,
            port,
            _dir: dir,
        };
        b.wait_until_listening();
        b
    }

    fn wait_until_listening(&mut self) {
        let limit = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("the broker exited ({status}): {}", self.log());
            }
            assert!(
                Instant::now() < limit,
                "the broker never listened: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("broker.log")).unwrap_or_default()
    }

    fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Runs `strand <args> -b <this broker>`.
    fn run(&self, args: &[&str]) -> Run {
        let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        all.extend(["-b".to_string(), self.bootstrap()]);
        run(&all)
    }

    /// Like [`run`](Self::run), and it must succeed.
    fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert_eq!(r.code, 0, "strand {args:?}: {}\n{}", r.stderr, r.stdout);
        r.stdout
    }

    /// Like [`ok`](Self::ok) with `--output json`.
    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["--output", "json"]);
        let out = self.ok(&all);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    }

    /// Like [`run`](Self::run), and it must fail with a message containing `want`.
    fn fails(&self, args: &[&str], want: &str) -> Run {
        let r = self.run(args);
        assert_eq!(r.code, 1, "strand {args:?} should fail: {}", r.stdout);
        assert!(
            r.stderr.contains(want),
            "strand {args:?}: {want:?} not in {}",
            r.stderr
        );
        r
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Run {
    let out = command().args(args).output().unwrap();
    let r = Run {
        code: out.status.code().expect("strand was killed by a signal"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    };
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    r
}

/// Lines of a text table, split into cells, without the header.
fn rows(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect()
}

fn cells(row: &[&str]) -> Vec<String> {
    row.iter().map(|s| s.to_string()).collect()
}

/// One raw Kafka connection for what the CLI does not do (produce, join a group).
struct Raw {
    stream: TcpStream,
    correlation_id: i32,
}

impl Raw {
    fn connect(port: u16) -> Raw {
        Raw {
            stream: TcpStream::connect(("127.0.0.1", port)).unwrap(),
            correlation_id: 0,
        }
    }

    fn send<Req: Encodable, Resp: Decodable + HeaderVersion>(
        &mut self,
        key: ApiKey,
        version: i16,
        req: &Req,
    ) -> Resp {
        self.correlation_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("admin-cli-test")));
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        header
            .encode(&mut buf, key.request_header_version(version))
            .unwrap();
        req.encode(&mut buf, version).unwrap();
        let size = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&size.to_be_bytes());
        self.stream.write_all(&buf).unwrap();
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len).unwrap();
        let mut frame = vec![0u8; i32::from_be_bytes(len) as usize];
        self.stream.read_exact(&mut frame).unwrap();
        let mut body = Bytes::from(frame);
        let h = ResponseHeader::decode(&mut body, Resp::header_version(version)).unwrap();
        assert_eq!(h.correlation_id, self.correlation_id);
        Resp::decode(&mut body, version).unwrap()
    }

    /// `n` records with timestamps `T0`, `T0 + 1s`, ...
    fn produce(&mut self, topic: &str, partition: i32, n: usize) {
        let records: Vec<_> = (0..n)
            .map(|i| {
                record(
                    i as i64,
                    Some(format!("k{i}").into()),
                    Some(format!("v{i}").into()),
                    T0 + 1000 * i as i64,
                )
            })
            .collect();
        let req = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(10_000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(topic.into())))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(partition)
                    .with_records(Some(encode(&records, Compression::None).freeze()))])]);
        let resp: ProduceResponse = self.send(ApiKey::Produce, 9, &req);
        assert_eq!(
            resp.responses[0].partition_responses[0].error_code, 0,
            "{resp:?}"
        );
    }

    /// Joins `group` as its only member and stays (no SyncGroup): the group is not empty.
    fn join(&mut self, group: &str) {
        let mut member = StrBytes::default();
        for _ in 0..2 {
            let req = JoinGroupRequest::default()
                .with_group_id(GroupId(StrBytes::from_string(group.into())))
                .with_session_timeout_ms(30_000)
                .with_rebalance_timeout_ms(30_000)
                .with_member_id(member.clone())
                .with_protocol_type(StrBytes::from_static_str("consumer"))
                .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default(
                )
                .with_name(StrBytes::from_static_str("range"))
                .with_metadata(Bytes::from_static(b"m"))]);
            let r: JoinGroupResponse = self.send(ApiKey::JoinGroup, 9, &req);
            if r.error_code == 79 {
                member = r.member_id;
                continue; // MEMBER_ID_REQUIRED: join again with it
            }
            assert_eq!(r.error_code, 0, "{r:?}");
            return;
        }
        panic!("MEMBER_ID_REQUIRED twice");
    }
}

#[test]
fn topics_are_created_listed_described_altered_and_deleted() {
    let b = Broker::start();
    assert_eq!(
        b.ok(&[
            "topics",
            "create",
            "--topic",
            "orders",
            "--partitions",
            "3",
            "--replication-factor",
            "1",
            "--config",
            "retention.ms=60000",
        ]),
        "Created topic orders.\n"
    );
    let r = b.fails(
        &["topics", "create", "--topic", "orders"],
        "TOPIC_ALREADY_EXISTS (36): topic orders",
    );
    assert_eq!(r.stdout, "");
    assert_eq!(
        b.ok(&["topics", "create", "--topic", "orders", "--if-not-exists"]),
        "Topic orders already exists.\n"
    );
    let created = b.json(&["topics", "create", "--topic", "events"]);
    assert_eq!(
        created,
        serde_json::json!({"topic": "events", "created": true})
    );

    assert_eq!(b.ok(&["topics", "list"]), "events\norders\n");
    assert_eq!(
        b.json(&["topics", "list"]),
        serde_json::json!(["events", "orders"])
    );

    let text = b.ok(&["topics", "describe", "--topic", "orders"]);
    let first = text.lines().next().unwrap();
    assert!(first.starts_with("Topic: orders\tTopicId: "), "{text}");
    assert!(
        first.ends_with("\tPartitionCount: 3\tReplicationFactor: 1\tConfigs: retention.ms=60000"),
        "{text}"
    );
    let table: String = text.lines().skip(1).map(|l| format!("{l}\n")).collect();
    assert_eq!(
        table.lines().next().unwrap(),
        "PARTITION  LEADER  REPLICAS  ISR"
    );
    assert_eq!(
        rows(&table),
        (0..3)
            .map(|p| cells(&[&p.to_string(), "1", "1", "1"]))
            .collect::<Vec<_>>()
    );
    let d = b.json(&["topics", "describe", "--topic", "orders"]);
    assert_eq!(d[0]["name"], "orders");
    assert_eq!(d[0]["partition_count"], 3);
    assert_eq!(d[0]["replication_factor"], 1);
    assert_eq!(d[0]["internal"], false);
    assert_eq!(
        d[0]["configs"],
        serde_json::json!({"retention.ms": "60000"})
    );
    assert_eq!(d[0]["partitions"][2]["leader"], 1);
    assert_eq!(d[0]["partitions"][2]["isr"], serde_json::json!([1]));
    // Every topic when none is named.
    let all = b.json(&["topics", "describe"]);
    let names: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["events", "orders"]);
    b.fails(
        &["topics", "describe", "--topic", "nope"],
        "UNKNOWN_TOPIC_OR_PARTITION (3): topic nope",
    );

    assert_eq!(
        b.ok(&[
            "topics",
            "alter",
            "--topic",
            "orders",
            "--partitions",
            "5",
            "--config",
            "segment.ms=3600000",
            "--delete-config",
            "retention.ms",
        ]),
        "Increased the partition count of orders to 5.\nUpdated the configs of topic orders.\n"
    );
    let text = b.ok(&["topics", "describe", "--topic", "orders"]);
    assert!(
        text.lines()
            .next()
            .unwrap()
            .ends_with("\tPartitionCount: 5\tReplicationFactor: 1\tConfigs: segment.ms=3600000"),
        "{text}"
    );
    b.fails(
        &["topics", "alter", "--topic", "orders", "--partitions", "2"],
        "INVALID_PARTITIONS (37)",
    );
    b.fails(
        &["topics", "alter", "--topic", "orders"],
        "nothing to alter",
    );
    b.fails(
        &[
            "topics",
            "alter",
            "--topic",
            "nope",
            "--config",
            "retention.ms=1",
        ],
        "UNKNOWN_TOPIC_OR_PARTITION",
    );

    assert_eq!(
        b.ok(&["topics", "delete", "--topic", "events"]),
        "Deleted topic events.\n"
    );
    assert_eq!(b.ok(&["topics", "list"]), "orders\n");
    b.fails(
        &["topics", "delete", "--topic", "events"],
        "UNKNOWN_TOPIC_OR_PARTITION",
    );
    assert_eq!(
        b.ok(&["topics", "delete", "--topic", "events", "--if-exists"]),
        ""
    );
}

#[test]
fn configs_are_described_and_altered() {
    let b = Broker::start();
    b.ok(&["topics", "create", "--topic", "conf", "--partitions", "1"]);
    let topic = ["--entity-type", "topics", "--entity-name", "conf"];
    let with = |cmd: &[&str], extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = ["configs"]
            .iter()
            .chain(cmd)
            .map(|s| s.to_string())
            .collect();
        v.extend(topic.iter().map(|s| s.to_string()));
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let ok = |cmd: &[&str], extra: &[&str]| {
        let args = with(cmd, extra);
        b.ok(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    assert_eq!(
        ok(&["describe"], &[]),
        "Configs set for topic conf:\n(none)\n"
    );
    assert_eq!(
        ok(
            &["alter"],
            &[
                "--add-config",
                "retention.ms=1000,cleanup.policy=[compact,delete]"
            ]
        ),
        "Completed updating config for topic conf.\n"
    );
    let text = ok(&["describe"], &[]);
    assert!(
        text.starts_with("Configs set for topic conf:\nNAME "),
        "{text}"
    );
    assert_eq!(
        rows(&text[text.find('\n').unwrap() + 1..]),
        vec![
            cells(&[
                "cleanup.policy",
                "compact,delete",
                "DYNAMIC_TOPIC_CONFIG",
                "false"
            ]),
            cells(&["retention.ms", "1000", "DYNAMIC_TOPIC_CONFIG", "false"]),
        ]
    );
    let all = ok(&["describe"], &["--all"]);
    assert!(all.starts_with("All configs for topic conf:\n"), "{all}");
    assert!(
        all.lines().any(|l| {
            let c: Vec<&str> = l.split_whitespace().collect();
            c.len() == 4 && c[0] == "segment.bytes" && c[2] == "DEFAULT_CONFIG"
        }),
        "{all}"
    );

    let args = with(&["describe"], &["--output", "json"]);
    let d: Value =
        serde_json::from_str(&b.ok(&args.iter().map(String::as_str).collect::<Vec<_>>())).unwrap();
    assert_eq!(d[0]["entity_type"], "topics");
    assert_eq!(d[0]["entity_name"], "conf");
    let retention = d[0]["configs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "retention.ms")
        .unwrap()
        .clone();
    assert_eq!(
        retention,
        serde_json::json!({
            "name": "retention.ms", "value": "1000", "source": "DYNAMIC_TOPIC_CONFIG",
            "read_only": false, "is_default": false, "sensitive": false,
        })
    );

    ok(&["alter"], &["--delete-config", "retention.ms"]);
    let text = ok(&["describe"], &[]);
    assert!(!text.contains("retention.ms"), "{text}");
    assert!(text.contains("cleanup.policy"), "{text}");

    // Mistakes are refused before or by the broker.
    b.fails(
        &with(&["alter"], &["--add-config", "retention.ms=soon"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        "INVALID_CONFIG (40)",
    );
    b.fails(
        &with(
            &["alter"],
            &[
                "--add-config",
                "retention.ms=1",
                "--delete-config",
                "retention.ms",
            ],
        )
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>(),
        "both added and deleted",
    );
    b.fails(
        &[
            "configs",
            "alter",
            "--entity-type",
            "topics",
            "--add-config",
            "a=1",
        ],
        "--entity-name",
    );

    // Brokers: the static settings are read-only; a cluster-wide default reaches topics.
    let text = b.ok(&[
        "configs",
        "describe",
        "--entity-type",
        "brokers",
        "--entity-name",
        "1",
    ]);
    assert!(text.starts_with("Configs set for broker 1:\n"), "{text}");
    assert!(
        rows(&text[text.find('\n').unwrap() + 1..])
            .iter()
            .any(|r| r[0] == "log.dirs" && r[2] == "STATIC_BROKER_CONFIG" && r[3] == "true"),
        "{text}"
    );
    assert_eq!(
        b.ok(&[
            "configs",
            "alter",
            "--entity-type",
            "brokers",
            "--entity-default",
            "--add-config",
            "log.retention.ms=7200000",
        ]),
        "Completed updating default config for brokers in the cluster.\n"
    );
    let text = ok(&["describe"], &[]);
    assert!(
        rows(&text[text.find('\n').unwrap() + 1..]).contains(&cells(&[
            "retention.ms",
            "7200000",
            "DYNAMIC_DEFAULT_BROKER_CONFIG",
            "false"
        ])),
        "{text}"
    );
}

#[test]
fn offsets_are_listed_by_time() {
    let b = Broker::start();
    b.ok(&["topics", "create", "--topic", "ot", "--partitions", "2"]);
    let mut raw = Raw::connect(b.port);
    raw.produce("ot", 0, 5);
    raw.produce("ot", 1, 3);
    assert_eq!(b.ok(&["offsets", "--topic", "ot"]), "ot:0:5\not:1:3\n");
    assert_eq!(
        b.ok(&["offsets", "--topic", "ot", "--time", "earliest"]),
        "ot:0:0\not:1:0\n"
    );
    assert_eq!(
        b.ok(&[
            "offsets",
            "--topic",
            "ot",
            "--time",
            "-2",
            "--partitions",
            "1"
        ]),
        "ot:1:0\n"
    );
    assert_eq!(
        b.ok(&[
            "offsets",
            "--topic",
            "ot",
            "--time",
            "max",
            "--partitions",
            "0"
        ]),
        "ot:0:4\n"
    );
    let at = (T0 + 2000).to_string();
    assert_eq!(
        b.ok(&["offsets", "--topic", "ot", "--time", &at]),
        "ot:0:2\not:1:2\n"
    );
    assert_eq!(
        b.ok(&["offsets", "--topic", "ot", "--time", "2026-01-01T00:00:02Z"]),
        "ot:0:2\not:1:2\n"
    );
    // Every non-internal topic by default.
    assert_eq!(b.ok(&["offsets"]), "ot:0:5\not:1:3\n");
    let j = b.json(&["offsets", "--topic", "ot", "--time", "max"]);
    assert_eq!(
        j,
        serde_json::json!([
            {"topic": "ot", "partition": 0, "offset": 4, "timestamp": T0 + 4000},
            {"topic": "ot", "partition": 1, "offset": 2, "timestamp": T0 + 2000},
        ])
    );
    b.fails(
        &["offsets", "--topic", "ot", "--partitions", "7"],
        "has no partition 7",
    );
    b.fails(
        &["offsets", "--topic", "nope"],
        "UNKNOWN_TOPIC_OR_PARTITION",
    );
    b.fails(&["offsets", "--topic", "ot", "--time", "soon"], "date-time");
}

#[test]
fn groups_offsets_are_reset_described_and_deleted() {
    let b = Broker::start();
    b.ok(&["topics", "create", "--topic", "gt", "--partitions", "2"]);
    let mut raw = Raw::connect(b.port);
    raw.produce("gt", 0, 5);
    raw.produce("gt", 1, 3);

    // A dry run (the default) prints the plan and commits nothing.
    let r = b.run(&[
        "groups",
        "reset-offsets",
        "--group",
        "app",
        "--topic",
        "gt",
        "--to-earliest",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("dry run"), "{}", r.stderr);
    assert_eq!(
        r.stdout.lines().next().unwrap(),
        "GROUP  TOPIC  PARTITION  NEW-OFFSET"
    );
    assert_eq!(
        rows(&r.stdout),
        vec![
            cells(&["app", "gt", "0", "0"]),
            cells(&["app", "gt", "1", "0"])
        ]
    );
    assert!(!b.ok(&["groups", "list"]).contains("app"));
    b.fails(
        &["groups", "describe", "--group", "app"],
        "Consumer group 'app' does not exist.",
    );

    // --execute commits: by time on one partition, a clamped offset on the other.
    let out = b.ok(&[
        "groups",
        "reset-offsets",
        "--group",
        "app",
        "--topic",
        "gt:0",
        "--to-datetime",
        "2026-01-01T00:00:02Z",
        "--execute",
    ]);
    assert_eq!(rows(&out), vec![cells(&["app", "gt", "0", "2"])]);
    let j = b.json(&[
        "groups",
        "reset-offsets",
        "--group",
        "app",
        "--topic",
        "gt:1",
        "--to-offset",
        "99",
        "--execute",
    ]);
    assert_eq!(
        j,
        serde_json::json!({
            "group": "app", "executed": true,
            "offsets": [{"topic": "gt", "partition": 1, "new_offset": 3}],
        })
    );

    let list = b.ok(&["groups", "list"]);
    assert_eq!(
        list.lines().next().unwrap(),
        "GROUP  TYPE     PROTOCOL-TYPE  STATE"
    );
    assert!(
        rows(&list).contains(&cells(&["app", "classic", "-", "Empty"])),
        "{list}"
    );
    let j = b.json(&["groups", "list"]);
    let app = j
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group_id"] == "app")
        .unwrap();
    assert_eq!(app["state"], "Empty");
    assert_eq!(app["group_type"], "classic");

    let text = b.ok(&["groups", "describe", "--group", "app"]);
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "Consumer group 'app' has no active members."
    );
    let table: String = lines.map(|l| format!("{l}\n")).collect();
    assert!(table.starts_with("GROUP  TOPIC  PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG"));
    assert_eq!(
        rows(&table),
        vec![
            cells(&["app", "gt", "0", "2", "5", "3", "-", "-", "-"]),
            cells(&["app", "gt", "1", "3", "3", "0", "-", "-", "-"]),
        ]
    );
    let j = b.json(&["groups", "describe", "--group", "app"]);
    assert_eq!(j[0]["group"], "app");
    assert_eq!(j[0]["state"], "Empty");
    assert_eq!(j[0]["members"], serde_json::json!([]));
    assert_eq!(j[0]["offsets"][0]["current_offset"], 2);
    assert_eq!(j[0]["offsets"][0]["log_end_offset"], 5);
    assert_eq!(j[0]["offsets"][0]["lag"], 3);

    // Shift back from the committed offsets, for every topic the group has.
    let out = b.ok(&[
        "groups",
        "reset-offsets",
        "--group",
        "app",
        "--all-topics",
        "--shift-by",
        "-3",
        "--execute",
    ]);
    assert_eq!(
        rows(&out),
        vec![
            cells(&["app", "gt", "0", "0"]),
            cells(&["app", "gt", "1", "0"])
        ]
    );

    // A group with a member cannot be reset, nor deleted.
    raw.join("busy");
    b.fails(
        &[
            "groups",
            "reset-offsets",
            "--group",
            "busy",
            "--topic",
            "gt",
            "--to-latest",
        ],
        "Assignments can only be reset if the group 'busy' is inactive",
    );
    let r = b.run(&["groups", "delete", "--group", "busy"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stdout
            .contains("* Group 'busy' could not be deleted due to: NON_EMPTY_GROUP (68)"),
        "{}",
        r.stdout
    );

    assert_eq!(
        b.ok(&["groups", "delete", "--group", "app"]),
        "Deletion of requested consumer groups ('app') was successful.\n"
    );
    assert!(!b.ok(&["groups", "list"]).contains("app "));
    let r = b.run(&["groups", "delete", "--group", "app", "--output", "json"]);
    assert_eq!(r.code, 1);
    let j: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(j[0]["group"], "app");
    assert_eq!(j[0]["deleted"], false);
    assert!(j[0]["error"]
        .as_str()
        .unwrap()
        .contains("GROUP_ID_NOT_FOUND"));
}

#[test]
fn the_client_settings_come_from_flags_and_the_command_config() {
    let b = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let props = dir.path().join("client.properties");
    std::fs::write(
        &props,
        "# test\nclient.id=cli-test\nrequest.timeout.ms=20000\n",
    )
    .unwrap();
    let props = props.to_str().unwrap();
    // The long flag, and the file.
    let r = run(&[
        "topics",
        "create",
        "--topic",
        "viaflags",
        "--bootstrap-server",
        &b.bootstrap(),
        "--command-config",
        props,
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(b.ok(&["topics", "list"]), "viaflags\n");

    // Without --bootstrap-server the file's bootstrap.servers is used; with it, the flag wins
    // over the file, wherever it stands.
    let nobody = format!("127.0.0.1:{}", free_port());
    let here = dir.path().join("here.properties");
    std::fs::write(&here, format!("bootstrap.servers={}\n", b.bootstrap())).unwrap();
    let there = dir.path().join("there.properties");
    std::fs::write(
        &there,
        format!("bootstrap.servers={nobody}\nrequest.timeout.ms=500\n"),
    )
    .unwrap();
    let r = run(&["topics", "--command-config", here.to_str().unwrap(), "list"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "viaflags\n");
    let r = run(&[
        "topics",
        "-b",
        &b.bootstrap(),
        "list",
        "--command-config",
        there.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "viaflags\n");

    // A broken file is an error; so is a cluster that is not there (within the file's
    // request.timeout.ms).
    let bad = dir.path().join("bad.properties");
    std::fs::write(&bad, "no equals sign here\n").unwrap();
    let r = b.run(&["topics", "list", "--command-config", bad.to_str().unwrap()]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("line 1"), "{}", r.stderr);
    let short = dir.path().join("short.properties");
    std::fs::write(&short, "request.timeout.ms=500\nretry.backoff.ms=50\n").unwrap();
    let r = run(&[
        "topics",
        "list",
        "-b",
        &nobody,
        "--command-config",
        short.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains(&nobody), "{}", r.stderr);
}

#[test]
fn the_metadata_quorum_is_described() {
    let b = Broker::start();
    let out = b.ok(&["metadata-quorum", "describe", "--status"]);
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| panic!("no {name} in {out}"))
    };
    assert_eq!(field("LeaderId"), "1");
    assert!(field("LeaderEpoch").parse::<i32>().unwrap() >= 1);
    assert!(field("HighWatermark").parse::<i64>().unwrap() >= 1, "{out}");
    assert_eq!(field("MaxFollowerLag"), "0");
    assert_eq!(field("ClusterId").len(), 22);
    let voters = field("CurrentVoters");
    assert!(
        voters.starts_with("[{\"id\": 1, \"directoryId\": \""),
        "{voters}"
    );
    assert!(
        voters.contains("\"endpoints\": [\"PLAINTEXT://127.0.0.1:"),
        "{voters}"
    );
    assert_eq!(field("CurrentObservers"), "[]");
    let table = b.ok(&["metadata-quorum", "describe", "--replication"]);
    let rows = rows(&table);
    assert!(table.starts_with("NodeId"), "{table}");
    assert_eq!((rows[0][0].as_str(), rows[0][3].as_str()), ("1", "0"));
    assert_eq!(rows[0].last().map(String::as_str), Some("Leader"));
    assert_eq!(rows[0][1].len(), 22, "the directory id: {table}");
    assert_ne!(b.run(&["metadata-quorum", "describe"]).code, 0);
}
