//! `strand_client::Admin` against a real broker: every method, its results and its errors.

use std::collections::BTreeMap;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as WireTp;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::Encodable;
use kafka_protocol::records::Compression;
use strand_client::{
    Admin, AlterConfigOp, Config, ConfigResource, KafkaCode, NewTopic, OffsetAndMetadata,
    OffsetSpec, TopicPartition,
};
use strand_testkit::TestBroker;
use strand_tests::*;

async fn start() -> anyhow::Result<(TestBroker, Admin)> {
    let broker = TestBroker::start(&[
        ("group.initial.rebalance.delay.ms", "0"),
        ("offsets.topic.num.partitions", "3"),
    ])
    .await?;
    let admin = Admin::new(Config::from([("bootstrap.servers", broker.bootstrap())]))?;
    Ok((broker, admin))
}

fn code<T: std::fmt::Debug>(r: &strand_client::Result<T>) -> Option<i16> {
    r.as_ref().err().and_then(|e| e.code()).map(|c| c.0)
}

fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition::new(topic, partition)
}

#[tokio::test]
async fn topics_are_created_described_grown_and_deleted() -> anyhow::Result<()> {
    let (_broker, admin) = start().await?;
    let created = admin
        .create_topics(
            vec![
                NewTopic::new("orders", 3, 1).config("retention.ms", "60000"),
                NewTopic::new("events", -1, -1),
                NewTopic::new("bad/name", 1, 1),
                NewTopic::new("orders", 9, 1), // a repeated name is sent once
            ],
            false,
        )
        .await?;
    let names: Vec<&str> = created.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["orders", "events", "bad/name"]);
    assert!(created[0].1.is_ok() && created[1].1.is_ok(), "{created:?}");
    assert_eq!(code(&created[2].1), Some(17), "INVALID_TOPIC_EXCEPTION");

    // Already there: a typed error with its code and the topic in the message.
    let again = admin.create_topic(NewTopic::new("orders", 3, 1)).await;
    assert_eq!(
        again.as_ref().unwrap_err().code(),
        Some(KafkaCode::TOPIC_ALREADY_EXISTS)
    );
    assert!(again.unwrap_err().to_string().contains("topic orders"));

    // validate_only checks without creating.
    let checked = admin
        .create_topics(vec![NewTopic::new("dry", 2, 1)], true)
        .await?;
    assert!(checked[0].1.is_ok());
    let bad = admin
        .create_topics(vec![NewTopic::new("dry", 0, 1)], true)
        .await?;
    assert_eq!(code(&bad[0].1), Some(37), "INVALID_PARTITIONS");
    assert_eq!(admin.list_topics(false).await?, ["events", "orders"]);

    let described = admin
        .describe_topics(&["orders".into(), "events".into()])
        .await?;
    assert_eq!(described[0].name, "orders");
    assert_eq!(described[0].partitions.len(), 3);
    assert!(!described[0].internal);
    assert_ne!(described[0].id, uuid::Uuid::nil());
    for (i, p) in described[0].partitions.iter().enumerate() {
        assert_eq!(p.partition, i as i32);
        assert_eq!(p.leader, 1);
        assert_eq!(p.replicas, [1]);
        assert_eq!(p.isr, [1]);
    }
    assert_eq!(described[1].partitions.len(), 1, "num.partitions default");
    let missing = admin.describe_topics(&["nope".into()]).await;
    assert_eq!(
        missing.unwrap_err().code(),
        Some(KafkaCode::UNKNOWN_TOPIC_OR_PARTITION)
    );

    // Growing works; shrinking and unknown topics do not.
    admin.create_partitions("orders", 5).await?;
    let grown = admin.describe_topics(&["orders".into()]).await?;
    assert_eq!(grown[0].partitions.len(), 5);
    assert_eq!(
        code(&admin.create_partitions("orders", 2).await),
        Some(37),
        "INVALID_PARTITIONS"
    );
    assert_eq!(code(&admin.create_partitions("nope", 2).await), Some(3));

    let deleted = admin
        .delete_topics(&["events".into(), "nope".into(), "events".into()])
        .await?;
    assert_eq!(deleted.len(), 2);
    assert_eq!(deleted[0].0, "events");
    assert!(deleted[0].1.is_ok(), "{deleted:?}");
    assert_eq!(
        (deleted[1].0.as_str(), code(&deleted[1].1)),
        ("nope", Some(3))
    );
    assert_eq!(admin.list_topics(true).await?, ["orders"]);
    Ok(())
}

#[tokio::test]
async fn configs_are_set_described_and_deleted() -> anyhow::Result<()> {
    let (broker, admin) = start().await?;
    admin.create_topic(NewTopic::new("conf", 1, 1)).await?;
    let topic = ConfigResource::topic("conf");
    let find = |entries: &[strand_client::ConfigEntry], name: &str| {
        entries
            .iter()
            .find(|e| e.name == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} is not described"))
    };

    let before = admin.describe_configs(topic.clone()).await?;
    let retention = find(&before, "retention.ms");
    assert_eq!(retention.source, "DEFAULT_CONFIG");
    assert!(retention.is_default && !retention.read_only && !retention.sensitive);
    assert_eq!(retention.value.as_deref(), Some("604800000"));

    admin
        .incremental_alter_configs(
            topic.clone(),
            vec![
                AlterConfigOp::set("retention.ms", "1000"),
                AlterConfigOp::append("cleanup.policy", "compact"),
            ],
        )
        .await?;
    let after = admin.describe_configs(topic.clone()).await?;
    let retention = find(&after, "retention.ms");
    assert_eq!(retention.value.as_deref(), Some("1000"));
    assert_eq!(retention.source, "DYNAMIC_TOPIC_CONFIG");
    assert!(!retention.is_default);
    assert_eq!(
        find(&after, "cleanup.policy").value.as_deref(),
        Some("delete,compact")
    );

    admin
        .incremental_alter_configs(
            topic.clone(),
            vec![
                AlterConfigOp::delete("retention.ms"),
                AlterConfigOp::subtract("cleanup.policy", "delete"),
            ],
        )
        .await?;
    let reverted = admin.describe_configs(topic.clone()).await?;
    assert_eq!(find(&reverted, "retention.ms").source, "DEFAULT_CONFIG");
    assert_eq!(
        find(&reverted, "cleanup.policy").value.as_deref(),
        Some("compact")
    );

    // Bad values, unknown names and unknown topics come back typed.
    let bad = admin
        .incremental_alter_configs(topic.clone(), vec![AlterConfigOp::set("retention.ms", "x")])
        .await;
    assert_eq!(code(&bad), Some(40), "INVALID_CONFIG");
    let unknown = admin.describe_configs(ConfigResource::topic("nope")).await;
    assert_eq!(code(&unknown), Some(3));
    let unknown = admin
        .incremental_alter_configs(
            ConfigResource::topic("nope"),
            vec![AlterConfigOp::set("retention.ms", "1")],
        )
        .await;
    assert_eq!(code(&unknown), Some(3));

    // The broker's own configs: static ones are read-only; a cluster-wide dynamic default
    // reaches topics that do not set the config themselves.
    let node = broker.broker.config.node_id;
    let configs = admin.describe_configs(ConfigResource::broker(node)).await?;
    let dirs = find(&configs, "log.dirs");
    assert_eq!(dirs.source, "STATIC_BROKER_CONFIG");
    assert!(dirs.read_only);
    assert_eq!(
        dirs.value.as_deref(),
        Some(broker.data_dir().display().to_string().as_str())
    );
    admin
        .incremental_alter_configs(
            ConfigResource::broker_default(),
            vec![AlterConfigOp::set("log.retention.ms", "7200000")],
        )
        .await?;
    let inherited = find(&admin.describe_configs(topic).await?, "retention.ms");
    assert_eq!(inherited.value.as_deref(), Some("7200000"));
    assert_eq!(inherited.source, "DYNAMIC_DEFAULT_BROKER_CONFIG");
    let wrong = admin
        .describe_configs(ConfigResource::broker(node + 7))
        .await;
    assert_eq!(code(&wrong), Some(42), "INVALID_REQUEST");
    Ok(())
}

#[tokio::test]
async fn the_cluster_is_described() -> anyhow::Result<()> {
    let (broker, admin) = start().await?;
    let c = admin.describe_cluster().await?;
    assert_eq!(c.cluster_id, broker.broker.cluster_id);
    assert_eq!(c.controller_id, broker.broker.config.node_id);
    assert_eq!(c.brokers.len(), 1);
    assert_eq!(c.brokers[0].node_id, broker.broker.config.node_id);
    assert_eq!(c.brokers[0].host, "127.0.0.1");
    assert_eq!(c.brokers[0].port, i32::from(broker.addr.port()));
    Ok(())
}

#[tokio::test]
async fn groups_made_of_committed_offsets_are_listed_described_and_deleted() -> anyhow::Result<()> {
    let (_broker, admin) = start().await?;
    admin.create_topic(NewTopic::new("gt", 3, 1)).await?;
    admin
        .alter_group_offsets("g1", BTreeMap::from([(tp("gt", 0), 5), (tp("gt", 2), 7)]))
        .await?;
    let offsets = admin.list_group_offsets("g1").await?;
    assert_eq!(
        offsets,
        BTreeMap::from([
            (tp("gt", 0), OffsetAndMetadata::new(5)),
            (tp("gt", 2), OffsetAndMetadata::new(7)),
        ])
    );
    assert!(admin.list_group_offsets("nobody").await?.is_empty());
    // Offsets of partitions that do not exist are refused, per partition.
    let bad = admin
        .alter_group_offsets("g1", BTreeMap::from([(tp("gt", 9), 1)]))
        .await;
    assert_eq!(code(&bad), Some(3));
    assert!(bad
        .unwrap_err()
        .to_string()
        .contains("topic gt partition 9"));

    let listed = admin.list_groups().await?;
    let g1 = listed.iter().find(|g| g.group_id == "g1").expect("listed");
    assert_eq!(g1.state.as_deref(), Some("Empty"));
    assert_eq!(g1.group_type.as_deref(), Some("classic"));
    assert_eq!(g1.protocol_type, "");

    let described = admin.describe_groups(&["g1".into()]).await?;
    assert_eq!(described[0].group_id, "g1");
    assert_eq!(described[0].state, "Empty");
    assert_eq!(described[0].group_type, "classic");
    assert!(described[0].members.is_empty());
    let unknown = admin.describe_groups(&["g1".into(), "nope".into()]).await;
    assert_eq!(
        unknown.unwrap_err().code(),
        Some(KafkaCode::GROUP_ID_NOT_FOUND)
    );

    admin.delete_group_offsets("g1", &[tp("gt", 2)]).await?;
    assert_eq!(
        admin
            .list_group_offsets("g1")
            .await?
            .keys()
            .collect::<Vec<_>>(),
        [&tp("gt", 0)]
    );
    let missing = admin.delete_group_offsets("nope", &[tp("gt", 0)]).await;
    assert_eq!(code(&missing), Some(69), "GROUP_ID_NOT_FOUND");

    let deleted = admin.delete_groups(&["g1".into(), "nope".into()]).await?;
    assert!(deleted[0].1.is_ok(), "{deleted:?}");
    assert_eq!(code(&deleted[1].1), Some(69));
    assert!(!admin
        .list_groups()
        .await?
        .iter()
        .any(|g| g.group_id == "g1"));
    assert!(admin.list_group_offsets("g1").await?.is_empty());
    // __consumer_offsets now exists, and is internal.
    assert_eq!(admin.list_topics(false).await?, ["gt"]);
    assert_eq!(admin.list_topics(true).await?, ["__consumer_offsets", "gt"]);
    Ok(())
}

/// An assignment as a classic consumer leader writes it in SyncGroup.
fn assignment_bytes(topic: &str, partitions: Vec<i32>) -> Bytes {
    let a = ConsumerProtocolAssignment::default().with_assigned_partitions(vec![WireTp::default()
        .with_topic(name(topic))
        .with_partitions(partitions)]);
    let mut buf = BytesMut::new();
    buf.put_i16(1);
    a.encode(&mut buf, 1).unwrap();
    buf.freeze()
}

#[tokio::test]
async fn active_classic_groups_show_members_and_refuse_admin_changes() -> anyhow::Result<()> {
    let (broker, admin) = start().await?;
    admin.create_topic(NewTopic::new("ct", 3, 1)).await?;
    let mut c = broker.client().await?;
    let (member, generation) = join_group(&mut c, "active", 9).await?;
    let assignment = assignment_bytes("ct", vec![2, 0]);
    sync_alone(&mut c, "active", &member, generation, assignment).await?;

    let d = admin.describe_groups(&["active".into()]).await?;
    let g = &d[0];
    assert_eq!(
        (
            g.state.as_str(),
            g.protocol_type.as_str(),
            g.protocol.as_str()
        ),
        ("Stable", "consumer", "range")
    );
    assert_eq!(g.members.len(), 1);
    let m = &g.members[0];
    assert_eq!(m.member_id, member);
    assert_eq!(m.client_id, "strand-testkit");
    assert!(m.host.contains("127.0.0.1"), "{}", m.host);
    assert_eq!(m.assignment, [tp("ct", 0), tp("ct", 2)]);
    let listed = admin.list_groups().await?;
    let l = listed
        .iter()
        .find(|l| l.group_id == "active")
        .expect("listed");
    assert_eq!(
        (l.protocol_type.as_str(), l.state.as_deref()),
        ("consumer", Some("Stable"))
    );

    // An admin cannot commit for, or delete, a group with members.
    let commit = admin
        .alter_group_offsets("active", BTreeMap::from([(tp("ct", 0), 1)]))
        .await;
    assert_eq!(
        commit.unwrap_err().code(),
        Some(KafkaCode::UNKNOWN_MEMBER_ID)
    );
    let deleted = admin.delete_groups(&["active".into()]).await?;
    assert_eq!(code(&deleted[0].1), Some(68), "NON_EMPTY_GROUP");
    Ok(())
}

#[tokio::test]
async fn consumer_groups_are_described_with_consumer_group_describe() -> anyhow::Result<()> {
    let (broker, admin) = start().await?;
    admin.create_topic(NewTopic::new("kt", 2, 1)).await?;
    let mut c = broker.client().await?;
    let member = uuid::Uuid::new_v4().simple().to_string();
    let hb = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(s("kg")))
        .with_member_id(s(&member))
        .with_member_epoch(0)
        .with_rebalance_timeout_ms(10_000)
        .with_subscribed_topic_names(Some(vec![name("kt")]));
    let r: ConsumerGroupHeartbeatResponse = c.send(ApiKey::ConsumerGroupHeartbeat, 1, &hb).await?;
    assert_eq!(r.error_code, 0, "{r:?}");

    let check = |d: &strand_client::GroupDescription| {
        assert_eq!(d.group_type, "consumer");
        assert_eq!(d.protocol_type, "consumer");
        assert_eq!(d.members.len(), 1);
        assert_eq!(d.members[0].member_id, member);
        assert_eq!(d.members[0].assignment, [tp("kt", 0), tp("kt", 1)]);
    };
    check(&admin.describe_groups(&["kg".into()]).await?[0]);

    // Once the member commits, DescribeGroups knows the id (as a group of offsets); the
    // description must still be the consumer group's.
    let mut commit = commit_request("kg", "kt", 1, 3);
    commit.generation_id_or_member_epoch = r.member_epoch;
    commit.member_id = s(&member);
    let cr: OffsetCommitResponse = c.send(ApiKey::OffsetCommit, 9, &commit).await?;
    assert_eq!(cr.topics[0].partitions[0].error_code, 0);
    check(&admin.describe_groups(&["kg".into()]).await?[0]);
    assert_eq!(
        admin.list_group_offsets("kg").await?,
        BTreeMap::from([(tp("kt", 1), OffsetAndMetadata::new(3))])
    );
    let listed = admin.list_groups().await?;
    let l = listed.iter().find(|l| l.group_id == "kg").expect("listed");
    assert_eq!(l.group_type.as_deref(), Some("consumer"));
    Ok(())
}

#[tokio::test]
async fn offsets_are_listed_and_records_deleted() -> anyhow::Result<()> {
    let (broker, admin) = start().await?;
    admin.create_topic(NewTopic::new("lo", 2, 1)).await?;
    let ts0 = 1_700_000_000_000;
    let mut c = broker.client().await?;
    let r = produce(&mut c, "lo", 0, -1, batch(0, 5, ts0, Compression::None)).await?;
    assert_eq!(r.error_code, 0);

    let specs = |spec: OffsetSpec| vec![(tp("lo", 0), spec), (tp("lo", 1), spec)];
    let latest = admin.list_offsets(specs(OffsetSpec::Latest)).await?;
    assert_eq!(latest[&tp("lo", 0)].offset, 5);
    assert_eq!(latest[&tp("lo", 1)].offset, 0);
    let earliest = admin.list_offsets(specs(OffsetSpec::Earliest)).await?;
    assert_eq!(earliest[&tp("lo", 0)].offset, 0);
    let max = admin
        .list_offsets(vec![(tp("lo", 0), OffsetSpec::MaxTimestamp)])
        .await?;
    assert_eq!(
        (max[&tp("lo", 0)].offset, max[&tp("lo", 0)].timestamp),
        (4, ts0 + 4)
    );
    let at = admin
        .list_offsets(vec![
            (tp("lo", 0), OffsetSpec::Timestamp(ts0 + 2)),
            (tp("lo", 1), OffsetSpec::Timestamp(ts0)),
        ])
        .await?;
    assert_eq!(
        (at[&tp("lo", 0)].offset, at[&tp("lo", 0)].timestamp),
        (2, ts0 + 2)
    );
    assert_eq!(at[&tp("lo", 1)].offset, -1, "an empty partition has none");
    let later = admin
        .list_offsets(vec![(tp("lo", 0), OffsetSpec::Timestamp(ts0 + 1_000))])
        .await?;
    assert_eq!(later[&tp("lo", 0)].offset, -1);

    for bad in [tp("nope", 0), tp("lo", 2), tp("lo", -1)] {
        let r = admin
            .list_offsets(vec![(bad.clone(), OffsetSpec::Latest)])
            .await;
        assert_eq!(code(&r), Some(3), "{bad}");
        assert!(r
            .unwrap_err()
            .to_string()
            .contains(&format!("topic {} partition {}", bad.topic, bad.partition)));
    }

    // DeleteRecords moves the log start offset; -1 means the high watermark.
    let low = admin
        .delete_records(BTreeMap::from([(tp("lo", 0), 3)]))
        .await?;
    assert_eq!(low, BTreeMap::from([(tp("lo", 0), 3)]));
    let earliest = admin.list_offsets(specs(OffsetSpec::Earliest)).await?;
    assert_eq!(earliest[&tp("lo", 0)].offset, 3);
    let low = admin
        .delete_records(BTreeMap::from([(tp("lo", 0), -1), (tp("lo", 1), -1)]))
        .await?;
    assert_eq!(low, BTreeMap::from([(tp("lo", 0), 5), (tp("lo", 1), 0)]));
    let past = admin
        .delete_records(BTreeMap::from([(tp("lo", 0), 99)]))
        .await;
    assert_eq!(
        past.unwrap_err().code(),
        Some(KafkaCode::OFFSET_OUT_OF_RANGE)
    );
    let unknown = admin
        .delete_records(BTreeMap::from([(tp("nope", 0), 1)]))
        .await;
    assert_eq!(code(&unknown), Some(3));
    Ok(())
}

#[tokio::test]
async fn the_admin_reconnects_after_a_broker_restart() -> anyhow::Result<()> {
    let (broker, admin) = start().await?;
    admin.create_topic(NewTopic::new("kept", 1, 1)).await?;
    admin
        .alter_group_offsets("rg", BTreeMap::from([(tp("kept", 0), 0)]))
        .await?;
    let _broker = broker.restart().await?;
    assert_eq!(admin.list_topics(false).await?, ["kept"]);
    assert_eq!(
        admin.list_group_offsets("rg").await?,
        BTreeMap::from([(tp("kept", 0), OffsetAndMetadata::new(0))])
    );
    Ok(())
}
