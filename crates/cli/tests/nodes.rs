//! The test kit's process nodes: `strand broker` processes on addresses of their own, killed,
//! paused, stopped and restarted, with their data kept across restarts.

#![allow(clippy::unwrap_used)] // tests

use std::path::Path;
use std::time::Duration;

use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use strand_testkit::nodes::Nodes;
use strand_testkit::RawClient;

fn metadata(
    rt: &tokio::runtime::Runtime,
    addr: std::net::SocketAddr,
) -> anyhow::Result<MetadataResponse> {
    rt.block_on(async {
        let mut c = RawClient::connect(addr).await?;
        let req = MetadataRequest::default().with_topics(None);
        tokio::time::timeout(
            Duration::from_millis(1500),
            c.send(ApiKey::Metadata, 12, &req),
        )
        .await
        .map_err(|_| anyhow::anyhow!("no answer"))?
    })
}

#[test]
fn nodes_are_killed_paused_stopped_and_restarted_on_their_data() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_strand"));
    let mut nodes = Nodes::start(bin, 3, &[("num.partitions", "2")]).unwrap();
    for id in 1..=3 {
        let node = nodes.node(id);
        let md = metadata(&rt, node.addr()).unwrap();
        let me = &md.brokers[0];
        assert_eq!(me.node_id.0, id);
        assert_eq!(me.host.as_str(), node.ip.to_string());
    }
    // A topic on node 2 survives its kill -9, on the same address.
    let n2 = nodes.node(2);
    let addr = n2.addr();
    rt.block_on(async {
        let mut c = RawClient::connect(addr).await.unwrap();
        let req = CreateTopicsRequest::default()
            .with_timeout_ms(5000)
            .with_topics(vec![create_topics_request::CreatableTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("kept")))
                .with_num_partitions(-1)
                .with_replication_factor(-1)]);
        let r: CreateTopicsResponse = c.send(ApiKey::CreateTopics, 7, &req).await.unwrap();
        assert_eq!(r.topics[0].error_code, 0, "{r:?}");
    });
    n2.kill().unwrap();
    assert!(metadata(&rt, addr).is_err(), "a killed node answers");
    n2.restart().unwrap();
    assert_eq!(n2.addr(), addr);
    let md = metadata(&rt, addr).unwrap();
    let kept = md
        .topics
        .iter()
        .find(|t| t.name.as_ref().is_some_and(|n| n.as_str() == "kept"))
        .unwrap();
    assert_eq!(kept.partitions.len(), 2);
    // A paused node holds its socket and answers nothing until resumed.
    let n3 = nodes.node(3);
    n3.pause().unwrap();
    assert!(metadata(&rt, n3.addr()).is_err(), "a paused node answers");
    n3.resume().unwrap();
    assert!(metadata(&rt, n3.addr()).is_ok());
    // SIGTERM: a clean stop, which leaves Kafka's clean-shutdown marker.
    let n1 = nodes.node(1);
    let status = n1.stop(Duration::from_secs(30)).unwrap();
    assert!(status.success(), "{status}: {}", n1.log());
    assert!(n1.data_dir().join(".kafka_cleanshutdown").exists());
    assert!(!n1.is_running());
}

/// Creates topics `<prefix>-0`, `<prefix>-1`, ... on `addr` one at a time until the node goes
/// away; returns those the node acknowledged.
fn create_until_gone(addr: std::net::SocketAddr, prefix: &str) -> Vec<String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut acked = Vec::new();
        let Ok(mut c) = RawClient::connect(addr).await else {
            return acked;
        };
        for i in 0.. {
            let name = format!("{prefix}-{i}");
            let req = CreateTopicsRequest::default()
                .with_timeout_ms(5000)
                .with_topics(vec![create_topics_request::CreatableTopic::default()
                    .with_name(TopicName(StrBytes::from_string(name.clone())))
                    .with_num_partitions(1)
                    .with_replication_factor(1)]);
            let sent = tokio::time::timeout(
                Duration::from_secs(5),
                c.send::<_, CreateTopicsResponse>(ApiKey::CreateTopics, 7, &req),
            )
            .await;
            match sent {
                Ok(Ok(r)) if r.topics[0].error_code == 0 => acked.push(name),
                _ => return acked,
            }
        }
        acked
    })
}

#[test]
fn acknowledged_metadata_survives_kill_9_in_the_middle_of_writes() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_strand"));
    // Snapshots every 7 records, so kills land in snapshot writes too.
    let mut nodes = Nodes::start(bin, 1, &[("metadata.log.max.snapshot.records", "7")]).unwrap();
    let node = nodes.node(1);
    for (round, wait_ms) in [150u64, 400, 50].into_iter().enumerate() {
        let addr = node.addr();
        let creator = std::thread::spawn(move || create_until_gone(addr, &format!("r{round}")));
        std::thread::sleep(Duration::from_millis(wait_ms));
        node.kill().unwrap();
        let acked = creator.join().unwrap();
        node.start().unwrap();
        let md = metadata(&rt, node.addr()).unwrap();
        let known: std::collections::BTreeSet<String> = md
            .topics
            .iter()
            .filter_map(|t| t.name.as_ref().map(|n| n.to_string()))
            .collect();
        eprintln!(
            "round {round}: {} topics acknowledged before the kill",
            acked.len()
        );
        let lost: Vec<&String> = acked.iter().filter(|t| !known.contains(*t)).collect();
        assert!(
            lost.is_empty(),
            "round {round}: acknowledged and lost: {lost:?}"
        );
        assert!(
            !acked.is_empty() || round == 2,
            "round {round}: nothing was created"
        );
    }
}
