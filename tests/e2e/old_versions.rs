//! The request versions Kafka 4 removed (KIP-896) and Strand serves again, with the semantics
//! Kafka 3.9 gave them; and `strand.allow.old.protocol.versions=false`, which answers as Kafka 4.

use std::time::Duration;

use kafka_protocol::messages::*;
use kafka_protocol::records::Compression;
use strand_testkit::{RawClient, TestBroker};
use strand_tests::*;

async fn list_v0(c: &mut RawClient, topic: &str, timestamp: i64, max: i32) -> Vec<i64> {
    let req = ListOffsetsRequest::default()
        .with_replica_id((-1).into())
        .with_topics(vec![list_offsets_request::ListOffsetsTopic::default()
            .with_name(name(topic))
            .with_partitions(vec![
                list_offsets_request::ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_timestamp(timestamp)
                    .with_max_num_offsets(max),
            ])]);
    let r: ListOffsetsResponse = c.send(ApiKey::ListOffsets, 0, &req).await.unwrap();
    let p = &r.topics[0].partitions[0];
    assert_eq!(p.error_code, 0, "{p:?}");
    p.old_style_offsets.clone()
}

#[tokio::test]
async fn list_offsets_v0_answers_segment_offsets_newest_first() -> anyhow::Result<()> {
    let broker = TestBroker::start(&[]).await?;
    let mut c = broker.client().await?;
    // Small segments: each batch of ten records rolls a new one.
    create_topic(&mut c, "legacy", 1, &[("segment.bytes", "300")]).await?;
    for i in 0..3 {
        let r = produce(
            &mut c,
            "legacy",
            0,
            1,
            batch(i * 10, 10, 1_000, Compression::None),
        )
        .await?;
        assert_eq!(r.error_code, 0, "{r:?}");
    }
    // Latest: the log end, then each segment's first offset, as many as asked for.
    assert_eq!(list_v0(&mut c, "legacy", -1, 10).await, [30, 20, 10, 0]);
    assert_eq!(list_v0(&mut c, "legacy", -1, 2).await, [30, 20]);
    assert_eq!(list_v0(&mut c, "legacy", -1, 1).await, [30]);
    // Earliest: the log start alone.
    assert_eq!(list_v0(&mut c, "legacy", -2, 10).await, [0]);
    // A time before every segment was written: nothing.
    assert!(list_v0(&mut c, "legacy", 1, 10).await.is_empty());
    // v0 knows no -3 (max timestamp).
    let req = ListOffsetsRequest::default()
        .with_replica_id((-1).into())
        .with_topics(vec![list_offsets_request::ListOffsetsTopic::default()
            .with_name(name("legacy"))
            .with_partitions(vec![
                list_offsets_request::ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_timestamp(-3),
            ])]);
    let r: ListOffsetsResponse = c.send(ApiKey::ListOffsets, 0, &req).await?;
    assert_eq!(r.topics[0].partitions[0].error_code, 35); // UNSUPPORTED_VERSION
    Ok(())
}

fn fetch_v0(group: &str, topic: &str) -> OffsetFetchRequest {
    OffsetFetchRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_topics(Some(vec![
            offset_fetch_request::OffsetFetchRequestTopic::default()
                .with_name(name(topic))
                .with_partition_indexes(vec![0, 1]),
        ]))
}

async fn committed(c: &mut RawClient, group: &str, topic: &str) -> Vec<(i64, String)> {
    let r: OffsetFetchResponse = c
        .send(ApiKey::OffsetFetch, 0, &fetch_v0(group, topic))
        .await
        .unwrap();
    r.topics[0]
        .partitions
        .iter()
        .map(|p| {
            assert_eq!(p.error_code, 0, "{p:?}");
            let metadata = p.metadata.as_deref().unwrap_or_default().to_string();
            (p.committed_offset, metadata)
        })
        .collect()
}

#[tokio::test]
async fn old_offset_commits_and_fetches_round_trip() -> anyhow::Result<()> {
    let broker = TestBroker::start(&[]).await?;
    let mut c = broker.client().await?;
    create_topic(&mut c, "oc", 2, &[]).await?;
    // v0: no generation, no member: a simple consumer's commit.
    let mut v0 = commit_request("legacy-group", "oc", 0, 11);
    v0.topics[0].partitions[0].committed_metadata = Some(s("from v0"));
    let r: OffsetCommitResponse = c.send(ApiKey::OffsetCommit, 0, &v0).await?;
    assert_eq!(r.topics[0].partitions[0].error_code, 0, "{r:?}");
    // v1: the commit may name its time.
    let mut v1 = commit_request("legacy-group", "oc", 1, 22);
    v1.topics[0].partitions[0].commit_timestamp = 1_700_000_000_000;
    let r: OffsetCommitResponse = c.send(ApiKey::OffsetCommit, 1, &v1).await?;
    assert_eq!(r.topics[0].partitions[0].error_code, 0, "{r:?}");
    assert_eq!(
        committed(&mut c, "legacy-group", "oc").await,
        [(11, "from v0".to_string()), (22, String::new())]
    );
    // A member of a live group must say who it is: v0 cannot, so it is refused.
    let (_member, _generation) = join_group(&mut c, "live", 5).await?;
    let r: OffsetCommitResponse = c
        .send(ApiKey::OffsetCommit, 0, &commit_request("live", "oc", 0, 5))
        .await?;
    assert_eq!(r.topics[0].partitions[0].error_code, 25); // UNKNOWN_MEMBER_ID
    Ok(())
}

#[tokio::test]
async fn retention_time_of_an_offset_commit_expires_the_offset() -> anyhow::Result<()> {
    let broker = TestBroker::start(&[]).await?;
    let mut c = broker.client().await?;
    create_topic(&mut c, "ret", 2, &[]).await?;
    let mut short = commit_request("short-lived", "ret", 0, 9);
    short.retention_time_ms = 300;
    let r: OffsetCommitResponse = c.send(ApiKey::OffsetCommit, 2, &short).await?;
    assert_eq!(r.topics[0].partitions[0].error_code, 0, "{r:?}");
    let kept = commit_request("kept", "ret", 0, 9);
    let _: OffsetCommitResponse = c.send(ApiKey::OffsetCommit, 2, &kept).await?;
    assert_eq!(committed(&mut c, "short-lived", "ret").await[0].0, 9);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while committed(&mut c, "short-lived", "ret").await[0].0 != -1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the offset never expired"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Without a retention time, offsets.retention.minutes (7 days) applies.
    assert_eq!(committed(&mut c, "kept", "ret").await[0].0, 9);
    Ok(())
}

#[tokio::test]
async fn describe_configs_v0_says_which_values_are_defaults() -> anyhow::Result<()> {
    let broker = TestBroker::start(&[]).await?;
    let mut c = broker.client().await?;
    create_topic(&mut c, "dc", 1, &[("retention.ms", "1000")]).await?;
    let req = DescribeConfigsRequest::default().with_resources(vec![
        describe_configs_request::DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(s("dc")),
    ]);
    let r: DescribeConfigsResponse = c.send(ApiKey::DescribeConfigs, 0, &req).await?;
    let by_name = |n: &str| {
        r.results[0]
            .configs
            .iter()
            .find(|c| c.name.as_str() == n)
            .cloned()
            .unwrap()
    };
    assert!(!by_name("retention.ms").is_default);
    assert_eq!(by_name("retention.ms").value.as_deref(), Some("1000"));
    assert!(by_name("segment.bytes").is_default);
    Ok(())
}

#[tokio::test]
async fn create_and_delete_topics_v0() -> anyhow::Result<()> {
    let broker = TestBroker::start(&[]).await?;
    let mut c = broker.client().await?;
    let req = CreateTopicsRequest::default()
        .with_timeout_ms(5000)
        .with_topics(vec![create_topics_request::CreatableTopic::default()
            .with_name(name("old"))
            .with_num_partitions(3)
            .with_replication_factor(1)]);
    let r: CreateTopicsResponse = c.send(ApiKey::CreateTopics, 0, &req).await?;
    assert_eq!(r.topics[0].error_code, 0, "{r:?}");
    let again: CreateTopicsResponse = c.send(ApiKey::CreateTopics, 0, &req).await?;
    assert_eq!(again.topics[0].error_code, 36); // TOPIC_ALREADY_EXISTS
    let req = DeleteTopicsRequest::default()
        .with_timeout_ms(5000)
        .with_topic_names(vec![name("old")]);
    let r: DeleteTopicsResponse = c.send(ApiKey::DeleteTopics, 0, &req).await?;
    assert_eq!(r.responses[0].error_code, 0, "{r:?}");
    Ok(())
}

#[tokio::test]
async fn kafka_4_versions_only_when_old_versions_are_turned_off() -> anyhow::Result<()> {
    let broker = TestBroker::start(&[("strand.allow.old.protocol.versions", "false")]).await?;
    let mut c = broker.client().await?;
    let r: ApiVersionsResponse = c
        .send(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default())
        .await?;
    let min = |key: ApiKey| {
        r.api_keys
            .iter()
            .find(|k| k.api_key == key as i16)
            .map(|k| k.min_version)
    };
    assert_eq!(min(ApiKey::OffsetCommit), Some(2));
    assert_eq!(min(ApiKey::ListOffsets), Some(1));
    assert_eq!(min(ApiKey::DescribeConfigs), Some(1));
    // An unserved version closes the connection, as Kafka 4 does.
    create_topic(&mut c, "k4", 1, &[]).await?;
    let req = fetch_v0("g", "k4");
    let sent = c
        .send::<_, OffsetFetchResponse>(ApiKey::OffsetFetch, 0, &req)
        .await;
    assert!(sent.is_err());
    // The default broker advertises them.
    let old = TestBroker::start(&[]).await?;
    let r: ApiVersionsResponse = old
        .client()
        .await?
        .send(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default())
        .await?;
    let oc = r
        .api_keys
        .iter()
        .find(|k| k.api_key == ApiKey::OffsetCommit as i16);
    assert_eq!(oc.map(|k| k.min_version), Some(0));
    Ok(())
}
