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
