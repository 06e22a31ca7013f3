//! The Strand consumer against a real broker: assignment, seeking, offsets, and groups that
//! rebalance on join, leave and crash without losing records.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use strand_client::consumer::{RebalanceListener, Revocation};
use strand_client::{
    Config, Consumer, ConsumerRecord, Error, Producer, ProducerRecord, TopicPartition,
};
use strand_testkit::TestBroker;
use tokio::sync::mpsc;

use strand_tests::create_topic;

const GROUP_BROKER: &[(&str, &str)] = &[
    ("group.initial.rebalance.delay.ms", "0"),
    ("group.min.session.timeout.ms", "1000"),
    ("group.consumer.heartbeat.interval.ms", "200"),
    ("group.consumer.session.timeout.ms", "2000"),
];

fn config(b: &TestBroker, extra: &[(&str, &str)]) -> Config {
    let mut c = Config::new().set("bootstrap.servers", b.bootstrap());
    for (k, v) in extra {
        c.insert(*k, v);
    }
    c
}

async fn produce(
    b: &TestBroker,
    topic: &str,
    partition: Option<i32>,
    range: std::ops::Range<usize>,
) {
    let p = Producer::new(config(b, &[("linger.ms", "2")])).unwrap();
    let mut ds = Vec::new();
    for n in range {
        let mut r = ProducerRecord::new(topic)
            .key(format!("k{n}"))
            .value(format!("v{n}"));
        if let Some(p) = partition {
            r = r.partition(p);
        }
        ds.push(p.send(r).await.unwrap());
    }
    for d in ds {
        d.await.unwrap();
    }
    p.close().await.unwrap();
}

async fn poll_until(c: &mut Consumer, n: usize, limit: Duration) -> Vec<ConsumerRecord> {
    let deadline = Instant::now() + limit;
    let mut out = Vec::new();
    while out.len() < n && Instant::now() < deadline {
        out.extend(c.poll(Duration::from_millis(100)).await.unwrap());
    }
    out
}

fn tp(t: &str, p: i32) -> TopicPartition {
    TopicPartition::new(t, p)
}

#[tokio::test]
async fn assign_seek_pause_and_max_poll_records() {
    let b = TestBroker::start(&[]).await.unwrap();
    produce(&b, "a", Some(0), 0..1000).await;
    let mut c = Consumer::new(config(
        &b,
        &[
            ("auto.offset.reset", "earliest"),
            ("max.poll.records", "64"),
        ],
    ))
    .unwrap();
    c.assign(&[tp("a", 0)]).unwrap();
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while got.len() < 1000 && Instant::now() < deadline {
        let batch = c.poll(Duration::from_millis(200)).await.unwrap();
        assert!(batch.len() <= 64, "max.poll.records: {}", batch.len());
        got.extend(batch);
    }
    let offsets: Vec<i64> = got.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, (0..1000).collect::<Vec<_>>());
    assert_eq!(got[7].key.as_deref(), Some(&b"k7"[..]));
    assert_eq!(c.position(&tp("a", 0)).await.unwrap(), 1000);
    c.seek(&tp("a", 0), 500).unwrap();
    let r = poll_until(&mut c, 1, Duration::from_secs(5)).await;
    assert_eq!(r[0].offset, 500);
    c.seek_to_beginning(&[tp("a", 0)]).await.unwrap();
    assert_eq!(
        poll_until(&mut c, 1, Duration::from_secs(5)).await[0].offset,
        0
    );
    c.seek_to_end(&[tp("a", 0)]).await.unwrap();
    assert_eq!(c.position(&tp("a", 0)).await.unwrap(), 1000);
    // Paused partitions return nothing until resumed.
    c.pause(&[tp("a", 0)]);
    produce(&b, "a", Some(0), 1000..1010).await;
    assert!(c.poll(Duration::from_millis(500)).await.unwrap().is_empty());
    assert_eq!(c.paused(), vec![tp("a", 0)]);
    c.resume(&[tp("a", 0)]);
    let r = poll_until(&mut c, 10, Duration::from_secs(5)).await;
    assert_eq!(
        r.iter().map(|r| r.offset).collect::<Vec<_>>(),
        (1000..1010).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn auto_offset_reset_latest_earliest_and_none() {
    let b = TestBroker::start(&[]).await.unwrap();
    produce(&b, "reset", Some(0), 0..10).await;
    let mut latest = Consumer::new(config(&b, &[("auto.offset.reset", "latest")])).unwrap();
    latest.assign(&[tp("reset", 0)]).unwrap();
    assert_eq!(latest.position(&tp("reset", 0)).await.unwrap(), 10);
    produce(&b, "reset", Some(0), 10..12).await;
    let r = poll_until(&mut latest, 2, Duration::from_secs(5)).await;
    assert_eq!(r.iter().map(|r| r.offset).collect::<Vec<_>>(), vec![10, 11]);
    let mut none = Consumer::new(config(
        &b,
        &[("auto.offset.reset", "none"), ("group.id", "g-none")],
    ))
    .unwrap();
    none.assign(&[tp("reset", 0)]).unwrap();
    let e = none.poll(Duration::from_millis(500)).await.unwrap_err();
    assert!(e.to_string().contains("auto.offset.reset=none"), "{e}");
    // An offset below the log start: OFFSET_OUT_OF_RANGE, then auto.offset.reset.
    let mut early = Consumer::new(config(&b, &[("auto.offset.reset", "earliest")])).unwrap();
    early.assign(&[tp("reset", 0)]).unwrap();
    early.seek(&tp("reset", 0), 1_000_000).unwrap();
    let r = poll_until(&mut early, 1, Duration::from_secs(5)).await;
    assert_eq!(
        r[0].offset, 0,
        "reset to earliest after an out-of-range offset"
    );
}

#[tokio::test]
async fn commits_survive_the_consumer_and_the_broker() {
    let b = TestBroker::start(GROUP_BROKER).await.unwrap();
    produce(&b, "c", Some(0), 0..100).await;
    let cfg = [
        ("group.id", "committers"),
        ("auto.offset.reset", "earliest"),
        ("enable.auto.commit", "false"),
    ];
    let mut c = Consumer::new(config(&b, &cfg)).unwrap();
    c.assign(&[tp("c", 0)]).unwrap();
    let got = poll_until(&mut c, 100, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 100);
    c.commit_offsets_sync(BTreeMap::from([(tp("c", 0), 40)]))
        .await
        .unwrap();
    assert_eq!(
        c.committed(&[tp("c", 0)]).await.unwrap()[&tp("c", 0)],
        Some(40)
    );
    let (tx, mut rx) = mpsc::unbounded_channel();
    c.seek(&tp("c", 0), 60).unwrap();
    c.commit_async(Some(Box::new(move |r| {
        let _ = tx.send(r.is_ok());
    })));
    assert_eq!(rx.recv().await, Some(true), "commit_async callback");
    assert_eq!(
        c.committed(&[tp("c", 0)]).await.unwrap()[&tp("c", 0)],
        Some(60)
    );
    c.close().await.unwrap();
    let b = b.restart().await.unwrap();
    let mut again = Consumer::new(config(&b, &cfg)).unwrap();
    again.assign(&[tp("c", 0)]).unwrap();
    let r = poll_until(&mut again, 40, Duration::from_secs(10)).await;
    assert_eq!(
        r.first().map(|r| r.offset),
        Some(60),
        "resumed from the committed offset"
    );
    assert_eq!(r.len(), 40);
}

#[tokio::test]
async fn auto_commit_commits_positions_on_its_interval() {
    let b = TestBroker::start(GROUP_BROKER).await.unwrap();
    produce(&b, "ac", Some(0), 0..20).await;
    let mut c = Consumer::new(config(
        &b,
        &[
            ("group.id", "auto"),
            ("auto.offset.reset", "earliest"),
            ("auto.commit.interval.ms", "100"),
        ],
    ))
    .unwrap();
    c.assign(&[tp("ac", 0)]).unwrap();
    assert_eq!(
        poll_until(&mut c, 20, Duration::from_secs(10)).await.len(),
        20
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        c.poll(Duration::from_millis(150)).await.unwrap();
        if c.committed(&[tp("ac", 0)]).await.unwrap()[&tp("ac", 0)] == Some(20) {
            break;
        }
        assert!(Instant::now() < deadline, "auto-commit never committed 20");
    }
}

/// What a group member saw: records and rebalance callbacks.
#[derive(Default)]
struct Seen {
    records: BTreeSet<(i32, i64)>,
    assigned: Vec<TopicPartition>,
    revoked: Vec<TopicPartition>,
}

struct Recorder(Arc<Mutex<Seen>>);

impl RebalanceListener for Recorder {
    fn on_partitions_revoked(&mut self, r: &mut Revocation<'_>) {
        r.commit_positions();
        self.0
            .lock()
            .unwrap()
            .revoked
            .extend(r.partitions.iter().cloned());
    }
    fn on_partitions_assigned(&mut self, partitions: &[TopicPartition]) {
        self.0
            .lock()
            .unwrap()
            .assigned
            .extend(partitions.iter().cloned());
    }
}

enum Stop {
    Close,
    Crash,
}

struct Member {
    seen: Arc<Mutex<Seen>>,
    assignment: Arc<Mutex<Vec<TopicPartition>>>,
    stop: mpsc::UnboundedSender<Stop>,
    task: tokio::task::JoinHandle<()>,
}

fn member(b: &TestBroker, group: &str, topic: &str, extra: &[(&str, &str)]) -> Member {
    let mut cfg = config(
        b,
        &[
            ("group.id", group),
            ("auto.offset.reset", "earliest"),
            ("session.timeout.ms", "2000"),
            ("heartbeat.interval.ms", "200"),
        ],
    );
    for (k, v) in extra {
        cfg.insert(*k, v);
    }
    let seen = Arc::new(Mutex::new(Seen::default()));
    let assignment = Arc::new(Mutex::new(Vec::new()));
    let (stop, mut stopped) = mpsc::unbounded_channel();
    let (seen2, assignment2, topic) = (seen.clone(), assignment.clone(), topic.to_string());
    let task = tokio::spawn(async move {
        let mut c = Consumer::new(cfg).unwrap();
        c.subscribe_with(&[topic.as_str()], Some(Box::new(Recorder(seen2.clone()))))
            .unwrap();
        loop {
            match stopped.try_recv() {
                Ok(Stop::Close) => {
                    c.close().await.unwrap();
                    return;
                }
                Ok(Stop::Crash) => {
                    drop(c); // no LeaveGroup, no commit: the session has to expire
                    return;
                }
                Err(_) => {}
            }
            let batch = match c.poll(Duration::from_millis(100)).await {
                Ok(b) => b,
                Err(Error::Rebalance(_)) => continue,
                Err(e) => panic!("poll: {e}"),
            };
            {
                let mut s = seen2.lock().unwrap();
                for r in &batch {
                    s.records.insert((r.partition, r.offset));
                }
            }
            *assignment2.lock().unwrap() = c.assignment();
        }
    });
    Member {
        seen,
        assignment,
        stop,
        task,
    }
}

async fn wait_for_split(members: &[&Member], want: &[usize], limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let mut sizes: Vec<usize> = members
            .iter()
            .map(|m| m.assignment.lock().unwrap().len())
            .collect();
        sizes.sort();
        let all: BTreeSet<TopicPartition> = members
            .iter()
            .flat_map(|m| m.assignment.lock().unwrap().clone())
            .collect();
        if sizes == want && all.len() == want.iter().sum::<usize>() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "assignment sizes {sizes:?}, wanted {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn group_churn(extra: &[(&str, &str)], group: &str) {
    let b = TestBroker::start(GROUP_BROKER).await.unwrap();
    let mut raw = b.client().await.unwrap();
    create_topic(&mut raw, group, 6, &[]).await.unwrap();
    let m1 = member(&b, group, group, extra);
    wait_for_split(&[&m1], &[6], Duration::from_secs(30)).await;
    let m2 = member(&b, group, group, extra);
    let m3 = member(&b, group, group, extra);
    wait_for_split(&[&m1, &m2, &m3], &[2, 2, 2], Duration::from_secs(30)).await;
    produce(&b, group, None, 0..3000).await;
    // One leaves cleanly: the other two take its partitions.
    m3.stop.send(Stop::Close).unwrap();
    m3.task.await.unwrap();
    produce(&b, group, None, 3000..6000).await;
    wait_for_split(&[&m1, &m2], &[3, 3], Duration::from_secs(30)).await;
    // One crashes: its partitions move after session.timeout.ms.
    m2.stop.send(Stop::Crash).unwrap();
    m2.task.await.unwrap();
    produce(&b, group, None, 6000..9000).await;
    wait_for_split(&[&m1], &[6], Duration::from_secs(30)).await;
    // Every record produced during the churn was consumed at least once.
    let mut raw = b.client().await.unwrap();
    let mut expected = BTreeSet::new();
    for p in 0..6 {
        let d = strand_tests::fetch(&mut raw, group, p, 0, 0, 1)
            .await
            .unwrap();
        for o in 0..d.high_watermark {
            expected.insert((p, o));
        }
    }
    assert_eq!(expected.len(), 9000);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let all: BTreeSet<(i32, i64)> = [&m1.seen, &m2.seen, &m3.seen]
            .iter()
            .flat_map(|s| s.lock().unwrap().records.clone())
            .collect();
        let missing = expected.difference(&all).count();
        if missing == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} records never consumed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    {
        let s1 = m1.seen.lock().unwrap();
        assert!(!s1.assigned.is_empty());
        // m1 was alone at first: it gave partitions up when the others joined, and its listener
        // committed its positions for them before they moved.
        assert!(!s1.revoked.is_empty(), "m1 never saw a revocation");
    }
    m1.stop.send(Stop::Close).unwrap();
    m1.task.await.unwrap();
    let admin = strand_client::Admin::new(config(&b, &[])).unwrap();
    let committed = admin.list_group_offsets(group).await.unwrap();
    assert_eq!(
        committed.len(),
        6,
        "offsets committed on revocation and close: {committed:?}"
    );
}

#[tokio::test]
async fn classic_group_rebalances_on_join_leave_and_crash() {
    group_churn(
        &[("partition.assignment.strategy", "range")],
        "classic-range",
    )
    .await;
}

#[tokio::test]
async fn round_robin_group_rebalances_on_join_leave_and_crash() {
    group_churn(
        &[("partition.assignment.strategy", "roundrobin")],
        "classic-rr",
    )
    .await;
}

#[tokio::test]
async fn cooperative_sticky_group_rebalances_incrementally() {
    group_churn(
        &[("partition.assignment.strategy", "cooperative-sticky")],
        "coop",
    )
    .await;
}

#[tokio::test]
async fn consumer_protocol_group_rebalances() {
    group_churn(&[("group.protocol", "consumer")], "kip848").await;
}

#[tokio::test]
async fn a_member_that_stops_polling_is_replaced() {
    let b = TestBroker::start(GROUP_BROKER).await.unwrap();
    let mut raw = b.client().await.unwrap();
    create_topic(&mut raw, "slow", 2, &[]).await.unwrap();
    let cfg = [
        ("group.id", "slowpoke"),
        ("max.poll.interval.ms", "1500"),
        ("session.timeout.ms", "6000"),
        ("heartbeat.interval.ms", "200"),
        ("partition.assignment.strategy", "range"),
    ];
    let mut slow = Consumer::new(config(&b, &cfg)).unwrap();
    slow.subscribe(&["slow"]).unwrap();
    let fast = member(&b, "slowpoke", "slow", &cfg[1..]);
    // Both joined: one partition each.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(slow.assignment().len() == 1 && fast.assignment.lock().unwrap().len() == 1) {
        slow.poll(Duration::from_millis(100)).await.unwrap();
        assert!(Instant::now() < deadline, "never split 1/1");
    }
    // `slow` stops polling: after max.poll.interval.ms it leaves and `fast` gets both.
    wait_for_split(&[&fast], &[2], Duration::from_secs(20)).await;
    drop(slow);
    fast.stop.send(Stop::Close).unwrap();
    fast.task.await.unwrap();
}
