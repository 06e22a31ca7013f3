//! Consumer groups over real sockets: a member joins, syncs and commits; the group and its
//! offsets survive a restart.

use kafka_protocol::messages::*;
use strand_testkit::TestBroker;
use strand_tests::*;

#[tokio::test]
async fn group_state_and_offsets_survive_a_restart() -> anyhow::Result<()> {
    let broker = TestBroker::start(&[
        ("group.initial.rebalance.delay.ms", "0"),
        ("offsets.topic.num.partitions", "5"),
    ])
    .await?;
    let mut c = broker.client().await?;
    create_topic(&mut c, "t", 2, &[]).await?;
    let (member, generation) = join_group(&mut c, "g", 9).await?;
    sync_alone(
        &mut c,
        "g",
        &member,
        generation,
        bytes::Bytes::from_static(b"t0t1"),
    )
    .await?;
    let mut commit = commit_request("g", "t", 1, 77);
    commit.generation_id_or_member_epoch = generation;
    commit.member_id = s(&member);
    let r: OffsetCommitResponse = c.send(ApiKey::OffsetCommit, 8, &commit).await?;
    assert_eq!(r.topics[0].partitions[0].error_code, 0);
    // A stale generation and an unknown topic are refused.
    commit.generation_id_or_member_epoch = generation + 5;
    let r: OffsetCommitResponse = c.send(ApiKey::OffsetCommit, 8, &commit).await?;
    assert_eq!(r.topics[0].partitions[0].error_code, 22);
    let r: OffsetCommitResponse = c
        .send(
            ApiKey::OffsetCommit,
            8,
            &commit_request("simple", "nope", 0, 1),
        )
        .await?;
    assert_eq!(r.topics[0].partitions[0].error_code, 3);
    // Clients cannot write to the internal topic.
    assert_eq!(
        produce(
            &mut c,
            "__consumer_offsets",
            0,
            1,
            batch(0, 1, 0, kafka_protocol::records::Compression::None)
        )
        .await?
        .error_code,
        17
    );
    drop(c);

    let broker = broker.restart().await?;
    let mut c = broker.client().await?;
    let req = OffsetFetchRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_topics(None);
    let r: OffsetFetchResponse = c.send(ApiKey::OffsetFetch, 7, &req).await?;
    assert_eq!(r.topics.len(), 1);
    assert_eq!(
        (
            r.topics[0].partitions[0].partition_index,
            r.topics[0].partitions[0].committed_offset
        ),
        (1, 77)
    );
    let r: DescribeGroupsResponse = c
        .send(
            ApiKey::DescribeGroups,
            5,
            &DescribeGroupsRequest::default().with_groups(vec![GroupId(s("g"))]),
        )
        .await?;
    let g = &r.groups[0];
    assert_eq!((g.group_state.as_str(), g.members.len()), ("Stable", 1));
    assert_eq!(
        g.members[0].member_assignment,
        bytes::Bytes::from_static(b"t0t1")
    );
    // The member is still known after the restart and keeps its generation.
    let hb = HeartbeatRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_generation_id(generation)
        .with_member_id(s(&member));
    let r: HeartbeatResponse = c.send(ApiKey::Heartbeat, 4, &hb).await?;
    assert_eq!(r.error_code, 0);
    Ok(())
}

/// A KIP-848 member of `group` subscribed to `topic`: its member id and epoch.
async fn consumer_join(
    c: &mut strand_testkit::RawClient,
    group: &str,
    topic: &str,
) -> anyhow::Result<(String, i32)> {
    let member = uuid::Uuid::new_v4().simple().to_string();
    let hb = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_member_id(s(&member))
        .with_member_epoch(0)
        .with_rebalance_timeout_ms(10_000)
        .with_subscribed_topic_names(Some(vec![name(topic)]));
    let r: ConsumerGroupHeartbeatResponse = c.send(ApiKey::ConsumerGroupHeartbeat, 1, &hb).await?;
    anyhow::ensure!(r.error_code == 0, "{r:?}");
    Ok((member, r.member_epoch))
}

async fn consumer_leave(
    c: &mut strand_testkit::RawClient,
    group: &str,
    member: &str,
) -> anyhow::Result<()> {
    let hb = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_member_id(s(member))
        .with_member_epoch(-1);
    let r: ConsumerGroupHeartbeatResponse = c.send(ApiKey::ConsumerGroupHeartbeat, 1, &hb).await?;
    anyhow::ensure!(r.error_code == 0, "{r:?}");
    Ok(())
}

async fn committed(
    c: &mut strand_testkit::RawClient,
    group: &str,
    topic: &str,
    partition: i32,
) -> anyhow::Result<i64> {
    let req = OffsetFetchRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_topics(Some(vec![
            offset_fetch_request::OffsetFetchRequestTopic::default()
                .with_name(name(topic))
                .with_partition_indexes(vec![partition]),
        ]));
    let r: OffsetFetchResponse = c.send(ApiKey::OffsetFetch, 7, &req).await?;
    Ok(r.topics[0].partitions[0].committed_offset)
}

async fn describe_group(
    c: &mut strand_testkit::RawClient,
    group: &str,
    version: i16,
) -> anyhow::Result<describe_groups_response::DescribedGroup> {
    let req = DescribeGroupsRequest::default().with_groups(vec![GroupId(s(group))]);
    let r: DescribeGroupsResponse = c.send(ApiKey::DescribeGroups, version, &req).await?;
    Ok(r.groups[0].clone())
}

/// `(protocol type, group type)` of each listing of `group`.
async fn listings(
    c: &mut strand_testkit::RawClient,
    group: &str,
) -> anyhow::Result<Vec<(String, String)>> {
    let r: ListGroupsResponse = c
        .send(ApiKey::ListGroups, 5, &ListGroupsRequest::default())
        .await?;
    Ok(r.groups
        .iter()
        .filter(|g| g.group_id.as_str() == group)
        .map(|g| (g.protocol_type.to_string(), g.group_type.to_string()))
        .collect())
}

#[tokio::test]
async fn consumer_group_with_committed_offsets_is_not_described_as_an_empty_classic_group(
) -> anyhow::Result<()> {
    let broker = TestBroker::start(&[("offsets.topic.num.partitions", "3")]).await?;
    let mut c = broker.client().await?;
    create_topic(&mut c, "kt", 2, &[]).await?;
    let (member, epoch) = consumer_join(&mut c, "kg", "kt").await?;
    let mut commit = commit_request("kg", "kt", 1, 11);
    commit.generation_id_or_member_epoch = epoch;
    commit.member_id = s(&member);
    let r: OffsetCommitResponse = c.send(ApiKey::OffsetCommit, 9, &commit).await?;
    assert_eq!(r.topics[0].partitions[0].error_code, 0);
    assert_eq!(committed(&mut c, "kg", "kt", 1).await?, 11);

    let consumer = vec![("consumer".to_string(), "consumer".to_string())];
    let d = describe_group(&mut c, "kg", 6).await?;
    assert_eq!(d.error_code, 69, "{d:?}");
    assert_eq!(
        d.error_message.as_deref(),
        Some("Group kg is not a classic group.")
    );
    assert!(d.members.is_empty() && d.protocol_type.is_empty());
    let d = describe_group(&mut c, "kg", 5).await?;
    assert_eq!((d.error_code, d.group_state.as_str()), (0, "Dead"));
    assert_eq!(listings(&mut c, "kg").await?, consumer);
    drop(c);

    // The offsets survive a restart; the members come back and it is a consumer group again.
    let broker = broker.restart().await?;
    let mut c = broker.client().await?;
    assert_eq!(committed(&mut c, "kg", "kt", 1).await?, 11);
    let (member, epoch) = consumer_join(&mut c, "kg", "kt").await?;
    assert_eq!(describe_group(&mut c, "kg", 6).await?.error_code, 69);
    assert_eq!(listings(&mut c, "kg").await?, consumer);
    let mut commit = commit_request("kg", "kt", 0, 4);
    commit.generation_id_or_member_epoch = epoch;
    commit.member_id = s(&member);
    let r: OffsetCommitResponse = c.send(ApiKey::OffsetCommit, 9, &commit).await?;
    assert_eq!(r.topics[0].partitions[0].error_code, 0);

    // DeleteGroups takes the offsets with the group, for good.
    let del = DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s("kg"))]);
    let r: DeleteGroupsResponse = c.send(ApiKey::DeleteGroups, 2, &del).await?;
    assert_eq!(
        r.results[0].error_code, 68,
        "NON_EMPTY_GROUP while it has a member"
    );
    consumer_leave(&mut c, "kg", &member).await?;
    let r: DeleteGroupsResponse = c.send(ApiKey::DeleteGroups, 2, &del).await?;
    assert_eq!(r.results[0].error_code, 0);
    assert_eq!(committed(&mut c, "kg", "kt", 0).await?, -1);
    assert_eq!(committed(&mut c, "kg", "kt", 1).await?, -1);
    assert!(listings(&mut c, "kg").await?.is_empty());
    drop(c);
    let broker = broker.restart().await?;
    let mut c = broker.client().await?;
    assert_eq!(committed(&mut c, "kg", "kt", 1).await?, -1);
    assert!(listings(&mut c, "kg").await?.is_empty());
    assert_eq!(
        describe_group(&mut c, "kg", 6)
            .await?
            .error_message
            .as_deref(),
        Some("Group kg not found.")
    );
    Ok(())
}

fn offset_delete_request(group: &str, topics: &[&str]) -> OffsetDeleteRequest {
    OffsetDeleteRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_topics(
            topics
                .iter()
                .map(|t| {
                    offset_delete_request::OffsetDeleteRequestTopic::default()
                        .with_name(name(t))
                        .with_partitions(vec![
                            offset_delete_request::OffsetDeleteRequestPartition::default()
                                .with_partition_index(0),
                        ])
                })
                .collect(),
        )
}

#[tokio::test]
async fn offset_delete_keeps_offsets_of_topics_the_group_consumes() -> anyhow::Result<()> {
    let broker = TestBroker::start(&[
        ("group.initial.rebalance.delay.ms", "0"),
        ("offsets.topic.num.partitions", "3"),
    ])
    .await?;
    let mut c = broker.client().await?;
    create_topic(&mut c, "t", 1, &[]).await?;
    create_topic(&mut c, "u", 1, &[]).await?;

    // A classic "consumer" group whose member metadata (b"m") is no readable subscription:
    // it may consume anything, so none of its offsets may go.
    let (member, generation) = join_group(&mut c, "g", 9).await?;
    sync_alone(&mut c, "g", &member, generation, bytes::Bytes::new()).await?;
    for t in ["t", "u"] {
        let mut commit = commit_request("g", t, 0, 5);
        commit.generation_id_or_member_epoch = generation;
        commit.member_id = s(&member);
        let r: OffsetCommitResponse = c.send(ApiKey::OffsetCommit, 8, &commit).await?;
        assert_eq!(r.topics[0].partitions[0].error_code, 0);
    }
    let r: OffsetDeleteResponse = c
        .send(
            ApiKey::OffsetDelete,
            0,
            &offset_delete_request("g", &["t", "u"]),
        )
        .await?;
    assert_eq!(r.error_code, 0);
    let codes: Vec<i16> = r
        .topics
        .iter()
        .map(|t| t.partitions[0].error_code)
        .collect();
    assert_eq!(codes, [86, 86], "GROUP_SUBSCRIBED_TO_TOPIC");
    assert_eq!(committed(&mut c, "g", "t", 0).await?, 5);
    assert_eq!(committed(&mut c, "g", "u", 0).await?, 5);

    // A KIP-848 group subscribed to t: t's offset stays, u's goes.
    let (member, epoch) = consumer_join(&mut c, "kg", "t").await?;
    for t in ["t", "u"] {
        let mut commit = commit_request("kg", t, 0, 6);
        commit.generation_id_or_member_epoch = epoch;
        commit.member_id = s(&member);
        let r: OffsetCommitResponse = c.send(ApiKey::OffsetCommit, 9, &commit).await?;
        assert_eq!(r.topics[0].partitions[0].error_code, 0);
    }
    let r: OffsetDeleteResponse = c
        .send(
            ApiKey::OffsetDelete,
            0,
            &offset_delete_request("kg", &["t", "u"]),
        )
        .await?;
    let codes: Vec<i16> = r
        .topics
        .iter()
        .map(|t| t.partitions[0].error_code)
        .collect();
    assert_eq!(codes, [86, 0]);
    assert_eq!(committed(&mut c, "kg", "t", 0).await?, 6);
    assert_eq!(committed(&mut c, "kg", "u", 0).await?, -1);
    Ok(())
}
