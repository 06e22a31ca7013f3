//! KIP-848 consumer groups driven by heartbeats and a manual clock.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use strand_coordinator::consumer::assign;
use strand_coordinator::*;
use uuid::Uuid;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

const T: Uuid = Uuid::from_u128(7);

fn topics(n: i32) -> TopicsView {
    BTreeMap::from([("t".to_string(), (T, n))])
}

/// A client's view: member id, epoch, owned partitions.
#[derive(Clone, Default, Debug)]
struct Client {
    id: String,
    epoch: i32,
    owned: BTreeSet<i32>,
}

fn beat(
    c: &mut GroupCoordinator,
    cl: &mut Client,
    view: &TopicsView,
    now: i64,
) -> ConsumerGroupHeartbeatResponse {
    let mut req = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_member_id(s(&cl.id))
        .with_member_epoch(cl.epoch)
        .with_rebalance_timeout_ms(30_000)
        .with_topic_partitions(Some(vec![TopicPartitions::default()
            .with_topic_id(T)
            .with_partitions(cl.owned.iter().copied().collect())]));
    if cl.epoch == 0 {
        req.subscribed_topic_names = Some(vec![TopicName(s("t"))]);
        req.server_assignor = Some(s("uniform"));
    }
    let r = c.consumer_heartbeat(&req, ClientInfo::default(), view, now);
    if r.error_code == 0 {
        cl.id = r.member_id.as_ref().unwrap().to_string();
        cl.epoch = r.member_epoch;
        if let Some(a) = &r.assignment {
            cl.owned = a
                .topic_partitions
                .iter()
                .flat_map(|tp| tp.partitions.iter().copied())
                .collect();
        }
    }
    r
}

/// Heartbeats every client until nothing changes; checks no partition is ever owned twice.
fn settle(c: &mut GroupCoordinator, clients: &mut [Client], view: &TopicsView, now: i64) {
    for _ in 0..10 {
        for cl in clients.iter_mut() {
            assert_eq!(beat(c, cl, view, now).error_code, 0);
        }
        let mut all: Vec<i32> = clients
            .iter()
            .flat_map(|c| c.owned.iter().copied())
            .collect();
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n, "a partition is owned twice: {clients:?}");
    }
}

#[test]
fn three_members_converge_to_an_even_split_and_hand_over_on_leave_and_crash() {
    let mut c = GroupCoordinator::new(GroupConfig::default());
    let view = topics(6);
    let mut clients = vec![Client::default(), Client::default(), Client::default()];
    let mut now = 0;
    beat(&mut c, &mut clients[0], &view, now);
    assert_eq!(clients[0].owned.len(), 6, "a lone member gets everything");
    settle(&mut c, &mut clients, &view, now);
    let sizes: Vec<usize> = clients.iter().map(|c| c.owned.len()).collect();
    assert_eq!(sizes, vec![2, 2, 2]);
    let g = c.consumer_group("g").unwrap();
    assert_eq!(g.state(), "Stable");
    let epoch = g.group_epoch;
    assert!(clients.iter().all(|c| c.epoch == epoch));

    // The third leaves.
    let mut leaver = clients.pop().unwrap();
    leaver.epoch = -1;
    assert_eq!(beat(&mut c, &mut leaver, &view, now).member_epoch, -1);
    settle(&mut c, &mut clients, &view, now);
    assert_eq!(
        clients.iter().map(|c| c.owned.len()).collect::<Vec<_>>(),
        vec![3, 3]
    );

    // The second crashes: after the session timeout the first owns everything.
    for _ in 0..10 {
        now += 5_000;
        beat(&mut c, &mut clients[0], &view, now);
        let _ = c.tick(now);
    }
    assert_eq!(c.consumer_group("g").unwrap().members.len(), 1);
    assert_eq!(clients[0].owned.len(), 6);
    assert_eq!(c.consumer_group("g").unwrap().state(), "Stable");
}

#[test]
fn stale_epochs_are_fenced_and_unknown_members_told_to_rejoin() {
    let mut c = GroupCoordinator::new(GroupConfig::default());
    let view = topics(2);
    let mut a = Client::default();
    beat(&mut c, &mut a, &view, 0);
    let mut stale = a.clone();
    stale.epoch += 5;
    stale.owned.clear();
    assert_eq!(
        beat(&mut c, &mut stale, &view, 0).error_code,
        E::FencedMemberEpoch.code()
    );
    let mut ghost = Client {
        id: "ghost".into(),
        epoch: 3,
        owned: BTreeSet::new(),
    };
    assert_eq!(
        beat(&mut c, &mut ghost, &view, 0).error_code,
        E::UnknownMemberId.code()
    );
}

#[test]
fn new_partitions_are_assigned() {
    let mut c = GroupCoordinator::new(GroupConfig::default());
    let mut clients = vec![Client::default(), Client::default()];
    settle(&mut c, &mut clients, &topics(2), 0);
    settle(&mut c, &mut clients, &topics(4), 0);
    assert_eq!(clients.iter().map(|c| c.owned.len()).sum::<usize>(), 4);
}

#[test]
fn assignors_balance_and_range_is_contiguous() {
    let members: BTreeMap<String, strand_coordinator::consumer::ConsumerMember> = ["a", "b", "c"]
        .iter()
        .map(|id| {
            (
                id.to_string(),
                strand_coordinator::consumer::ConsumerMember {
                    id: id.to_string(),
                    instance_id: None,
                    rack_id: None,
                    client: ClientInfo::default(),
                    member_epoch: 0,
                    previous_member_epoch: -1,
                    subscribed: ["t".to_string()].into(),
                    subscribed_names: ["t".to_string()].into(),
                    subscribed_regex: None,
                    server_assignor: None,
                    rebalance_timeout_ms: 0,
                    assigned: Default::default(),
                    revoking: Default::default(),
                    session_deadline_ms: 0,
                    last_sent: None,
                },
            )
        })
        .collect();
    let r = assign("range", &members, &topics(7), &BTreeMap::new());
    let parts = |m: &str| {
        r[m].get(&T)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        (parts("a"), parts("b"), parts("c")),
        (vec![0, 1, 2], vec![3, 4], vec![5, 6])
    );
    // Sticky: a member that had everything keeps its share of it.
    let before = BTreeMap::from([(
        "a".to_string(),
        BTreeMap::from([(T, (0..7).collect::<BTreeSet<i32>>())]),
    )]);
    let u = assign("uniform", &members, &topics(7), &before);
    let counts: Vec<usize> = ["a", "b", "c"]
        .iter()
        .map(|m| u[*m].get(&T).map_or(0, |x| x.len()))
        .collect();
    assert_eq!(counts.iter().sum::<usize>(), 7);
    assert!(
        counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1,
        "{counts:?}"
    );
    assert!(u["a"][&T].iter().all(|p| *p < 7));
}

#[test]
fn regex_subscriptions_static_leaves_and_unknown_assignors() {
    let mut c = GroupCoordinator::new(GroupConfig::default());
    let mut view = topics(2);
    view.insert("pre-b".into(), (Uuid::from_u128(9), 1));
    let join =
        |member: &str, instance: Option<&str>, regex: Option<&str>, assignor: Option<&str>| {
            ConsumerGroupHeartbeatRequest::default()
                .with_group_id(GroupId(s("g")))
                .with_member_id(s(member))
                .with_member_epoch(0)
                .with_instance_id(instance.map(s))
                .with_subscribed_topic_regex(regex.map(s))
                .with_subscribed_topic_names(if regex.is_some() {
                    None
                } else {
                    Some(vec![TopicName(s("t"))])
                })
                .with_server_assignor(assignor.map(s))
        };
    let r = c.consumer_heartbeat(
        &join("a", Some("i-a"), Some("pre-.*"), None),
        ClientInfo::default(),
        &view,
        0,
    );
    assert_eq!(r.error_code, 0);
    let parts: usize = r
        .assignment
        .unwrap()
        .topic_partitions
        .iter()
        .map(|t| t.partitions.len())
        .sum();
    assert_eq!(parts, 1, "only pre-b matches");
    let r = c.consumer_heartbeat(
        &join("x", None, Some("(["), None),
        ClientInfo::default(),
        &view,
        0,
    );
    assert_eq!(r.error_code, E::InvalidRegularExpression.code());
    let r = c.consumer_heartbeat(
        &join("y", None, None, Some("no-such")),
        ClientInfo::default(),
        &view,
        0,
    );
    assert_eq!(r.error_code, E::UnsupportedAssignor.code());
    // A static member stepping away (-2) keeps its partitions for its next incarnation.
    let epoch = c.consumer_group("g").unwrap().group_epoch;
    let leave = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_member_id(s("a"))
        .with_member_epoch(-2)
        .with_instance_id(Some(s("i-a")));
    assert_eq!(
        c.consumer_heartbeat(&leave, ClientInfo::default(), &view, 1)
            .member_epoch,
        -2
    );
    assert_eq!(
        c.consumer_group("g").unwrap().group_epoch,
        epoch,
        "no rebalance"
    );
    let r = c.consumer_heartbeat(
        &join("a2", Some("i-a"), Some("pre-.*"), None),
        ClientInfo::default(),
        &view,
        2,
    );
    assert_eq!(r.error_code, 0);
    let parts: usize = r
        .assignment
        .unwrap()
        .topic_partitions
        .iter()
        .map(|t| t.partitions.len())
        .sum();
    assert_eq!(parts, 1);
    assert_eq!(c.consumer_group("g").unwrap().members.len(), 1);
}

/// OffsetCommit of `offset` for each `(topic, partition)`, by `member` at `epoch`; returns
/// the error codes and keeps the records.
fn commit(
    c: &mut GroupCoordinator,
    records: &mut Vec<GroupRecord>,
    member: &str,
    epoch: i32,
    partitions: &[(&str, i32)],
    offset: i64,
) -> Vec<i16> {
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_member_id(s(member))
        .with_generation_id_or_member_epoch(epoch)
        .with_topics(
            partitions
                .iter()
                .map(|(t, p)| {
                    offset_commit_request::OffsetCommitRequestTopic::default()
                        .with_name(TopicName(s(t)))
                        .with_partitions(vec![
                            offset_commit_request::OffsetCommitRequestPartition::default()
                                .with_partition_index(*p)
                                .with_committed_offset(offset),
                        ])
                })
                .collect(),
        );
    let (resp, out) = c.commit_offsets(&req, 9, 0, |_, _| true);
    records.extend(out.records);
    resp.topics
        .iter()
        .map(|t| t.partitions[0].error_code)
        .collect()
}

fn describe(c: &GroupCoordinator, version: i16) -> describe_groups_response::DescribedGroup {
    let req = DescribeGroupsRequest::default().with_groups(vec![GroupId(s("g"))]);
    c.describe_groups(&req, version).groups[0].clone()
}

fn listed(c: &GroupCoordinator) -> Vec<(String, String, String)> {
    c.list_groups(&ListGroupsRequest::default(), 5)
        .groups
        .iter()
        .map(|g| {
            (
                g.group_id.to_string(),
                g.protocol_type.to_string(),
                g.group_type.to_string(),
            )
        })
        .collect()
}

fn fetch(c: &GroupCoordinator, topic: &str) -> i64 {
    c.fetch_offsets("g", Some(&[(topic.to_string(), vec![0])]))[0].1[0].1
}

#[test]
fn consumer_group_with_committed_offsets_is_not_described_as_an_empty_classic_group() {
    let mut c = GroupCoordinator::new(GroupConfig::default());
    let view = topics(2);
    let mut records = Vec::new();
    let mut a = Client::default();
    assert_eq!(beat(&mut c, &mut a, &view, 0).error_code, 0);
    assert_eq!(
        commit(&mut c, &mut records, &a.id, a.epoch, &[("t", 0)], 42),
        [0]
    );
    assert_eq!(
        commit(&mut c, &mut records, &a.id, a.epoch + 1, &[("t", 0)], 43),
        [E::StaleMemberEpoch.code()]
    );
    assert!(
        c.group("g").is_none(),
        "no classic group for a consumer group's commit"
    );
    assert_eq!(fetch(&c, "t"), 42);

    // DescribeGroups answers as Kafka 4 does for a group that is not classic.
    let d = describe(&c, 6);
    assert_eq!(d.error_code, E::GroupIdNotFound.code());
    assert_eq!(
        d.error_message.as_deref(),
        Some("Group g is not a classic group.")
    );
    assert_eq!((d.group_state.as_str(), d.members.len()), ("Dead", 0));
    let d = describe(&c, 5);
    assert_eq!((d.error_code, d.group_state.as_str()), (0, "Dead"));
    assert_eq!(
        listed(&c),
        [(
            "g".to_string(),
            "consumer".to_string(),
            "consumer".to_string()
        )]
    );

    // After a restart only the offsets are left (consumer groups are not persisted): a
    // simple group holds them until the members rejoin, and then it is a consumer group.
    let mut fresh = GroupCoordinator::new(GroupConfig::default());
    for r in records.clone() {
        fresh.replay(r, 0);
    }
    fresh.finish_load();
    assert_eq!(fetch(&fresh, "t"), 42);
    let mut a2 = Client::default();
    assert_eq!(beat(&mut fresh, &mut a2, &view, 0).error_code, 0);
    assert_eq!(describe(&fresh, 6).error_code, E::GroupIdNotFound.code());
    assert_eq!(
        listed(&fresh),
        [(
            "g".to_string(),
            "consumer".to_string(),
            "consumer".to_string()
        )]
    );
    let mut fresh_records = Vec::new();
    assert_eq!(
        commit(
            &mut fresh,
            &mut fresh_records,
            &a2.id,
            a2.epoch,
            &[("t", 1)],
            7
        ),
        [0]
    );
    assert_eq!(
        fresh.fetch_offsets("g", None),
        vec![(
            "t".to_string(),
            vec![(0, 42, -1, String::new()), (1, 7, -1, String::new())]
        )]
    );

    // Once empty, the group takes commits from outside, and still makes no classic group.
    let mut leaver = a.clone();
    leaver.epoch = -1;
    assert_eq!(beat(&mut c, &mut leaver, &view, 0).error_code, 0);
    assert_eq!(commit(&mut c, &mut records, "", -1, &[("t", 1)], 5), [0]);
    assert!(c.group("g").is_none());
    assert_eq!(describe(&c, 6).error_code, E::GroupIdNotFound.code());

    // DeleteGroups takes the offsets with the group, here and after the restart.
    let del = DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s("g"))]);
    let (resp, out) = c.delete_groups(&del);
    assert_eq!(resp.results[0].error_code, 0);
    assert_eq!(
        out.records
            .iter()
            .filter(|r| matches!(r, GroupRecord::Offset { value: None, .. }))
            .count(),
        2
    );
    records.extend(out.records);
    assert_eq!(fetch(&c, "t"), -1);
    assert!(c.consumer_group("g").is_none() && c.committed("g").is_none());
    assert!(listed(&c).is_empty());
    let mut replayed = GroupCoordinator::new(GroupConfig::default());
    for r in records {
        replayed.replay(r, 0);
    }
    replayed.finish_load();
    assert!(replayed.group("g").is_none() && replayed.committed("g").is_none());

    let mut leaver = a2.clone();
    leaver.epoch = -1;
    beat(&mut fresh, &mut leaver, &view, 0);
    let (resp, out) = fresh.delete_groups(&del);
    assert_eq!(resp.results[0].error_code, 0);
    assert!(fresh.group("g").is_none() && fresh.committed("g").is_none());
    assert!(matches!(
        out.records.last(),
        Some(GroupRecord::Group { value: None, .. })
    ));
}

#[test]
fn offset_delete_keeps_offsets_of_topics_a_consumer_group_subscribes_to() {
    let mut c = GroupCoordinator::new(GroupConfig::default());
    let view = topics(2);
    let mut records = Vec::new();
    let mut a = Client::default();
    beat(&mut c, &mut a, &view, 0);
    assert_eq!(
        commit(
            &mut c,
            &mut records,
            &a.id,
            a.epoch,
            &[("t", 0), ("u", 0)],
            3
        ),
        [0, 0]
    );
    let req = |topic: &str| {
        OffsetDeleteRequest::default()
            .with_group_id(GroupId(s("g")))
            .with_topics(vec![
                offset_delete_request::OffsetDeleteRequestTopic::default()
                    .with_name(TopicName(s(topic)))
                    .with_partitions(vec![
                        offset_delete_request::OffsetDeleteRequestPartition::default()
                            .with_partition_index(0),
                    ]),
            ])
    };
    let (resp, out) = c.delete_offsets(&req("t"));
    assert_eq!(
        (resp.error_code, resp.topics[0].partitions[0].error_code),
        (0, E::GroupSubscribedToTopic.code())
    );
    assert!(out.records.is_empty());
    assert_eq!(fetch(&c, "t"), 3);
    let (resp, out) = c.delete_offsets(&req("u"));
    assert_eq!(resp.topics[0].partitions[0].error_code, 0);
    assert_eq!(out.records.len(), 1);
    assert_eq!(fetch(&c, "u"), -1);
    // Once the group is empty it consumes nothing.
    a.epoch = -1;
    beat(&mut c, &mut a, &view, 0);
    let (resp, _) = c.delete_offsets(&req("t"));
    assert_eq!(resp.topics[0].partitions[0].error_code, 0);
    assert_eq!(fetch(&c, "t"), -1);
}

#[test]
fn offsets_of_a_live_consumer_group_expire_only_for_topics_it_does_not_subscribe_to() {
    let config = GroupConfig::default();
    let retention = config.offsets_retention_ms;
    let mut c = GroupCoordinator::new(config);
    let view = topics(2);
    let mut records = Vec::new();
    let mut a = Client::default();
    beat(&mut c, &mut a, &view, 0);
    commit(
        &mut c,
        &mut records,
        &a.id,
        a.epoch,
        &[("t", 0), ("u", 0)],
        3,
    );
    let now = retention + 1;
    assert_eq!(beat(&mut c, &mut a, &view, now).error_code, 0);
    let out = c.tick(now);
    assert_eq!(
        out.records,
        [GroupRecord::Offset {
            group: "g".into(),
            topic: "u".into(),
            partition: 0,
            value: None
        }]
    );
    assert_eq!((fetch(&c, "t"), fetch(&c, "u")), (3, -1));
}

#[test]
fn classic_join_does_not_share_an_id_with_a_live_consumer_group() {
    let mut c = GroupCoordinator::new(GroupConfig {
        initial_rebalance_delay_ms: 0,
        ..GroupConfig::default()
    });
    let view = topics(2);
    let mut a = Client::default();
    beat(&mut c, &mut a, &view, 0);
    let join = |c: &mut GroupCoordinator, member: &str| {
        let req = JoinGroupRequest::default()
            .with_group_id(GroupId(s("g")))
            .with_session_timeout_ms(10_000)
            .with_rebalance_timeout_ms(10_000)
            .with_member_id(s(member))
            .with_protocol_type(s("consumer"))
            .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default(
            )
            .with_name(s("range"))
            .with_metadata(bytes::Bytes::from_static(b"m"))]);
        let out = c.join(req, 9, ClientInfo::default(), 1, 0);
        match &out.replies[0].1 {
            Reply::Join(r) => r.clone(),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(
        join(&mut c, "").error_code,
        E::InconsistentGroupProtocol.code()
    );
    assert!(c.group("g").is_none());
    // An empty consumer group gives its id to the classic group.
    a.epoch = -1;
    beat(&mut c, &mut a, &view, 0);
    let r = join(&mut c, "");
    assert_eq!(r.error_code, E::MemberIdRequired.code());
    assert_eq!(join(&mut c, r.member_id.as_str()).error_code, 0);
    assert!(c.consumer_group("g").is_none());
    assert_eq!(describe(&c, 6).members.len(), 1);
}
