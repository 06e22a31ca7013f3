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
    let sync = SyncGroupRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_generation_id(generation)
        .with_member_id(s(&member))
        .with_assignments(vec![
            sync_group_request::SyncGroupRequestAssignment::default()
                .with_member_id(s(&member))
                .with_assignment(bytes::Bytes::from_static(b"t0t1")),
        ]);
    let r: SyncGroupResponse = c.send(ApiKey::SyncGroup, 5, &sync).await?;
    assert_eq!(r.error_code, 0);
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
