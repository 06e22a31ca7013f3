//! The classic protocol driven by method calls and a manual clock: no sockets, no sleeps.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use strand_coordinator::*;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

struct Harness {
    c: GroupCoordinator,
    now: i64,
    next: RequestId,
    records: Vec<GroupRecord>,
    /// Member metadata every join sends, instead of `meta-<member>-<protocol>`.
    metadata: Option<Bytes>,
    /// The JoinGroup version and session timeout joins are sent with.
    version: i16,
    session: i32,
}

const SESSION: i32 = 10_000;

impl Harness {
    fn new(delay: i64) -> Self {
        let config = GroupConfig {
            initial_rebalance_delay_ms: delay,
            ..GroupConfig::default()
        };
        Self {
            c: GroupCoordinator::new(config),
            now: 1_000,
            next: 0,
            records: Vec::new(),
            metadata: None,
            version: 9,
            session: SESSION,
        }
    }

    fn join_req(member: &str, instance: Option<&str>, protocols: &[&str]) -> JoinGroupRequest {
        JoinGroupRequest::default()
            .with_group_id(GroupId(s("g")))
            .with_session_timeout_ms(SESSION)
            .with_rebalance_timeout_ms(30_000)
            .with_member_id(s(member))
            .with_group_instance_id(instance.map(s))
            .with_protocol_type(s("consumer"))
            .with_protocols(
                protocols
                    .iter()
                    .map(|p| {
                        JoinGroupRequestProtocol::default()
                            .with_name(s(p))
                            .with_metadata(Bytes::from(format!("meta-{member}-{p}")))
                    })
                    .collect(),
            )
    }

    /// Sends a JoinGroup; returns its id and any replies produced now.
    fn join(
        &mut self,
        member: &str,
        instance: Option<&str>,
        protocols: &[&str],
    ) -> (RequestId, Vec<(RequestId, Reply)>) {
        self.next += 1;
        let id = self.next;
        let mut req = Self::join_req(member, instance, protocols);
        req.session_timeout_ms = self.session;
        if let Some(m) = &self.metadata {
            for p in &mut req.protocols {
                p.metadata = m.clone();
            }
        }
        let out = self.c.join(
            req,
            self.version,
            ClientInfo {
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
            },
            id,
            self.now,
        );
        self.records.extend(out.records);
        (id, out.replies)
    }

    /// A new dynamic member: MEMBER_ID_REQUIRED, then the join with the id.
    fn join_new(&mut self) -> (String, RequestId, Vec<(RequestId, Reply)>) {
        let (_, replies) = self.join("", None, &["range"]);
        let Reply::Join(r) = &replies[0].1 else {
            panic!()
        };
        assert_eq!(r.error_code, E::MemberIdRequired.code());
        let id = r.member_id.to_string();
        let (rid, replies) = self.join(&id, None, &["range"]);
        (id, rid, replies)
    }

    fn sync(
        &mut self,
        member: &str,
        generation: i32,
        assignments: &[(&str, &str)],
    ) -> (RequestId, Vec<(RequestId, Reply)>) {
        self.next += 1;
        let id = self.next;
        let req = SyncGroupRequest::default()
            .with_group_id(GroupId(s("g")))
            .with_generation_id(generation)
            .with_member_id(s(member))
            .with_assignments(
                assignments
                    .iter()
                    .map(|(m, a)| {
                        SyncGroupRequestAssignment::default()
                            .with_member_id(s(m))
                            .with_assignment(Bytes::from(a.to_string()))
                    })
                    .collect(),
            );
        let out = self.c.sync(req, 5, id, self.now);
        self.records.extend(out.records);
        (id, out.replies)
    }

    fn heartbeat(&mut self, member: &str, generation: i32) -> i16 {
        let req = HeartbeatRequest::default()
            .with_group_id(GroupId(s("g")))
            .with_member_id(s(member))
            .with_generation_id(generation);
        self.c.heartbeat(&req, 4, self.now).error_code
    }

    fn advance(&mut self, ms: i64) -> Vec<(RequestId, Reply)> {
        self.now += ms;
        let out = self.c.tick(self.now);
        self.records.extend(out.records);
        out.replies
    }

    fn state(&self) -> GroupState {
        self.c.group("g").unwrap().state
    }
}

fn join_reply(replies: &[(RequestId, Reply)], id: RequestId) -> JoinGroupResponse {
    replies
        .iter()
        .find_map(|(r, x)| match x {
            Reply::Join(j) if *r == id => Some(j.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no join reply for {id}: {replies:?}"))
}

fn sync_reply(replies: &[(RequestId, Reply)], id: RequestId) -> SyncGroupResponse {
    replies
        .iter()
        .find_map(|(r, x)| match x {
            Reply::Sync(j) if *r == id => Some(j.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no sync reply for {id}: {replies:?}"))
}

#[test]
fn three_members_join_after_the_initial_delay_then_sync() {
    let mut h = Harness::new(3_000);
    let (a, ra, replies) = h.join_new();
    assert!(replies.is_empty(), "held during the initial delay");
    assert_eq!(h.state(), GroupState::PreparingRebalance);
    h.advance(1_000);
    let (b, rb, _) = h.join_new();
    let (c, rc, _) = h.join_new();
    assert!(h.advance(1_000).is_empty());
    let replies = h.advance(3_000);
    let (ja, jb, jc) = (
        join_reply(&replies, ra),
        join_reply(&replies, rb),
        join_reply(&replies, rc),
    );
    assert_eq!(h.state(), GroupState::CompletingRebalance);
    assert_eq!(ja.generation_id, 1);
    assert_eq!(
        ja.protocol_name.as_ref().map(|p| p.to_string()).as_deref(),
        Some("range")
    );
    let leader = ja.leader.to_string();
    assert_eq!(leader, a, "the first member leads");
    assert_eq!(ja.members.len(), 3);
    assert!(jb.members.is_empty() && jc.members.is_empty());
    // Followers wait for the leader's assignment.
    let (sb, replies) = h.sync(&b, 1, &[]);
    assert!(replies.is_empty());
    let (sa, replies) = h.sync(&a, 1, &[(&a, "A"), (&b, "B"), (&c, "C")]);
    assert_eq!(sync_reply(&replies, sb).assignment, Bytes::from("B"));
    assert_eq!(sync_reply(&replies, sa).assignment, Bytes::from("A"));
    assert_eq!(h.state(), GroupState::Stable);
    let (sc, replies) = h.sync(&c, 1, &[]);
    assert_eq!(sync_reply(&replies, sc).assignment, Bytes::from("C"));
    assert!(
        matches!(h.records.last(), Some(GroupRecord::Group { value: Some(v), .. }) if v.members.len() == 3 && v.generation == 1)
    );
    assert_eq!(h.heartbeat(&b, 1), 0);
    assert_eq!(h.heartbeat(&b, 0), E::IllegalGeneration.code());
    assert_eq!(h.heartbeat("nobody", 1), E::UnknownMemberId.code());
}

/// Three members in a Stable group at generation 1, no initial delay.
fn stable_three() -> (Harness, [String; 3]) {
    let mut h = Harness::new(0);
    let (a, ra, r1) = h.join_new();
    let ja = join_reply(&r1, ra);
    assert_eq!(ja.generation_id, 1);
    h.sync(&a, 1, &[(&a, "A")]);
    // b and c join: a rebalance that completes when a rejoins too.
    let (b, rb, _) = h.join_new();
    let (c, rc, _) = h.join_new();
    assert_eq!(h.heartbeat(&a, 1), E::RebalanceInProgress.code());
    let (ra2, replies) = h.join(&a, None, &["range"]);
    for r in [ra2, rb, rc] {
        assert_eq!(join_reply(&replies, r).generation_id, 2);
    }
    h.sync(&b, 2, &[]);
    h.sync(&c, 2, &[]);
    h.sync(&a, 2, &[(&a, "A"), (&b, "B"), (&c, "C")]);
    assert_eq!(h.state(), GroupState::Stable);
    (h, [a, b, c])
}

#[test]
fn a_leaving_member_triggers_a_rebalance_of_the_others() {
    let (mut h, [a, b, c]) = stable_three();
    let req = LeaveGroupRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_members(vec![MemberIdentity::default().with_member_id(s(&c))]);
    let (resp, out) = h.c.leave(&req, 5, h.now);
    assert_eq!(resp.members[0].error_code, 0);
    assert!(out.replies.is_empty());
    assert_eq!(h.state(), GroupState::PreparingRebalance);
    assert_eq!(h.heartbeat(&a, 2), E::RebalanceInProgress.code());
    let (ra, _) = h.join(&a, None, &["range"]);
    let (rb, replies) = h.join(&b, None, &["range"]);
    let (ja, jb) = (join_reply(&replies, ra), join_reply(&replies, rb));
    assert_eq!(
        (ja.generation_id, ja.members.len(), jb.generation_id),
        (3, 2, 3)
    );
    // Leaving twice is an error for that member only.
    let (resp, _) = h.c.leave(&req, 5, h.now);
    assert_eq!(resp.members[0].error_code, E::UnknownMemberId.code());
}

#[test]
fn a_crashed_member_is_dropped_after_its_session_timeout() {
    let (mut h, [a, b, c]) = stable_three();
    // a and b heartbeat; c has crashed.
    for _ in 0..3 {
        h.advance(3_000);
        assert_eq!(h.heartbeat(&a, 2), 0);
        assert_eq!(h.heartbeat(&b, 2), 0);
    }
    assert_eq!(h.state(), GroupState::Stable);
    h.advance(3_000);
    assert_eq!(h.state(), GroupState::PreparingRebalance, "c expired");
    assert_eq!(h.heartbeat(&a, 2), E::RebalanceInProgress.code());
    assert!(!h.c.group("g").unwrap().members.contains_key(&c));
    let (ra, _) = h.join(&a, None, &["range"]);
    let (rb, replies) = h.join(&b, None, &["range"]);
    assert_eq!(join_reply(&replies, ra).members.len(), 2);
    assert_eq!(join_reply(&replies, rb).generation_id, 3);
}

#[test]
fn members_that_do_not_rejoin_are_dropped_at_the_rebalance_timeout() {
    let (mut h, [a, _b, _c]) = stable_three();
    let (ra, replies) = h.join(&a, Some("x").filter(|_| false), &["range", "roundrobin"]);
    assert!(
        replies.is_empty(),
        "a changed its protocols: rebalance, waits for b and c"
    );
    let replies = h.advance(30_000);
    let ja = join_reply(&replies, ra);
    assert_eq!((ja.generation_id, ja.members.len()), (3, 1));
}

#[test]
fn a_static_member_restarting_gets_its_assignment_back_without_a_rebalance() {
    let mut h = Harness::new(0);
    let (r1, replies) = h.join("", Some("i1"), &["range"]);
    let j1 = join_reply(&replies, r1);
    let m1 = j1.member_id.to_string();
    h.sync(&m1, 1, &[(&m1, "one")]);
    let (r2, replies) = h.join("", Some("i2"), &["range"]);
    assert!(replies.is_empty());
    let (r1b, replies) = h.join(&m1, Some("i1"), &["range"]);
    let m2 = join_reply(&replies, r2).member_id.to_string();
    assert_eq!(join_reply(&replies, r1b).generation_id, 2);
    h.sync(&m2, 2, &[]);
    h.sync(&m1, 2, &[(&m1, "one"), (&m2, "two")]);
    assert_eq!(h.state(), GroupState::Stable);
    // i2 restarts: new member id, same generation, no rebalance.
    let (r, replies) = h.join("", Some("i2"), &["range"]);
    let j = join_reply(&replies, r);
    assert_eq!((j.error_code, j.generation_id), (0, 2));
    let new_m2 = j.member_id.to_string();
    assert_ne!(new_m2, m2);
    assert_eq!(h.state(), GroupState::Stable);
    let (sid, replies) = h.sync(&new_m2, 2, &[]);
    assert_eq!(sync_reply(&replies, sid).assignment, Bytes::from("two"));
    // The old incarnation is fenced.
    let req = HeartbeatRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_member_id(s(&m2))
        .with_generation_id(2)
        .with_group_instance_id(Some(s("i2")));
    assert_eq!(
        h.c.heartbeat(&req, 4, h.now).error_code,
        E::FencedInstanceId.code()
    );
}

/// Two static members, i1 (leading, assigned "one") and i2 ("two"), stable in generation 2.
fn stable_static_pair(h: &mut Harness) -> (String, String) {
    let (r1, replies) = h.join("", Some("i1"), &["range"]);
    let m1 = join_reply(&replies, r1).member_id.to_string();
    h.sync(&m1, 1, &[(&m1, "one")]);
    let (r2, _) = h.join("", Some("i2"), &["range"]);
    let (_, replies) = h.join(&m1, Some("i1"), &["range"]);
    let m2 = join_reply(&replies, r2).member_id.to_string();
    h.sync(&m2, 2, &[]);
    h.sync(&m1, 2, &[(&m1, "one"), (&m2, "two")]);
    assert_eq!(h.state(), GroupState::Stable);
    (m1, m2)
}

#[test]
fn a_static_leader_restarting_keeps_the_group_stable() {
    let mut h = Harness::new(0);
    let (m1, _m2) = stable_static_pair(&mut h);
    // v9 (KIP-814): the new incarnation leads, sees the members, and is told not to assign.
    let (r, replies) = h.join("", Some("i1"), &["range"]);
    let j = join_reply(&replies, r);
    let new_m1 = j.member_id.to_string();
    assert_eq!((j.error_code, j.generation_id), (0, 2));
    assert_eq!(j.leader.as_str(), new_m1);
    assert!(j.skip_assignment);
    assert_eq!(j.members.len(), 2);
    assert_eq!(h.state(), GroupState::Stable);
    let (sid, replies) = h.sync(&new_m1, 2, &[]);
    assert_eq!(sync_reply(&replies, sid).assignment, Bytes::from("one"));
    // Before v9: it is named under its old id, takes itself for a follower, syncs for its share.
    h.version = 5;
    let (r, replies) = h.join("", Some("i1"), &["range"]);
    let j = join_reply(&replies, r);
    let newer_m1 = j.member_id.to_string();
    assert_eq!(j.leader.as_str(), new_m1, "the previous incarnation's id");
    assert!(j.members.is_empty() && !j.skip_assignment);
    assert_eq!(h.state(), GroupState::Stable);
    let (sid, replies) = h.sync(&newer_m1, 2, &[]);
    assert_eq!(sync_reply(&replies, sid).assignment, Bytes::from("one"));
    // It leads all the same: its next rejoin (a metadata change) rebalances the group.
    assert_eq!(
        h.c.group("g").unwrap().leader.as_deref(),
        Some(newer_m1.as_str())
    );
    let (_, replies) = h.join(&newer_m1, Some("i1"), &["range"]);
    assert!(replies.is_empty());
    assert_eq!(h.state(), GroupState::PreparingRebalance);
    assert_ne!(m1, newer_m1);
}

#[test]
fn a_static_member_restarting_with_other_metadata_does_not_rebalance() {
    let mut h = Harness::new(0);
    let (_m1, _m2) = stable_static_pair(&mut h);
    // A restarted cooperative member no longer lists what it owned: other bytes, same protocol.
    h.metadata = Some(Bytes::from_static(b"owned-nothing"));
    let (r, replies) = h.join("", Some("i2"), &["range"]);
    let j = join_reply(&replies, r);
    assert_eq!((j.error_code, j.generation_id), (0, 2));
    assert_eq!(h.state(), GroupState::Stable);
    let g = h.c.group("g").unwrap();
    let stored = &g.members[j.member_id.as_str()];
    assert_eq!(
        stored.metadata("range"),
        Bytes::from_static(b"owned-nothing")
    );
}

#[test]
fn an_absent_static_member_keeps_its_place_through_a_rebalance() {
    let mut h = Harness::new(0);
    h.session = 60_000; // longer than the 30 s rebalance timeout
    let (m1, m2) = stable_static_pair(&mut h);
    // A third member joins while i2 is down (restarting); i1 rejoins, i2 does not.
    h.session = SESSION;
    let (m3, r3, _) = h.join_new();
    let (r1, replies) = h.join(&m1, Some("i1"), &["range"]);
    assert!(replies.is_empty(), "i2 has not rejoined");
    let replies = h.advance(30_000);
    let j1 = join_reply(&replies, r1);
    join_reply(&replies, r3);
    assert_eq!(j1.generation_id, 3);
    let members: Vec<&str> = j1.members.iter().map(|m| m.member_id.as_str()).collect();
    assert!(
        members.contains(&m2.as_str()) && members.contains(&m3.as_str()),
        "{members:?}"
    );
    // i2 comes back under a new id into the completing generation: a rebalance, not a loss.
    assert!(h.c.group("g").unwrap().members.contains_key(&m2));
}

#[test]
fn bad_joins_get_kafka_errors_and_change_nothing() {
    let mut h = Harness::new(0);
    let mut req = Harness::join_req("", None, &["range"]);
    req.session_timeout_ms = 10;
    let out = h.c.join(req, 9, ClientInfo::default(), 1, 0);
    let Reply::Join(r) = &out.replies[0].1 else {
        panic!()
    };
    assert_eq!(r.error_code, E::InvalidSessionTimeout.code());
    let (_, replies) = h.join("ghost", None, &["range"]);
    let Reply::Join(r) = &replies[0].1 else {
        panic!()
    };
    assert_eq!(r.error_code, E::UnknownMemberId.code());
    let (a, ra, replies) = h.join_new();
    assert_eq!(join_reply(&replies, ra).generation_id, 1);
    // A member with no protocol in common.
    let (_, replies) = h.join("", None, &["other"]);
    let Reply::Join(r) = &replies[0].1 else {
        panic!()
    };
    assert_eq!(r.error_code, E::InconsistentGroupProtocol.code());
    assert_eq!(h.c.group("g").unwrap().members.len(), 1);
    let (s1, replies) = h.sync(&a, 7, &[]);
    assert_eq!(
        sync_reply(&replies, s1).error_code,
        E::IllegalGeneration.code()
    );
}

/// Every one of `members` leaves group `g` in one LeaveGroup (v5).
fn leave_all(h: &mut Harness, members: &[&str]) {
    let leave = LeaveGroupRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_members(
            members
                .iter()
                .map(|m| MemberIdentity::default().with_member_id(s(m)))
                .collect(),
        );
    h.c.leave(&leave, 5, h.now);
}

fn commit(h: &mut Harness, member: &str, generation: i32, offset: i64) -> i16 {
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_member_id(s(member))
        .with_generation_id_or_member_epoch(generation)
        .with_topics(vec![
            offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(TopicName(s("t")))
                .with_partitions(vec![
                    offset_commit_request::OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(offset),
                ]),
        ]);
    let (resp, out) = h.c.commit_offsets(&req, 8, h.now, |t, p| t == "t" && p < 3);
    h.records.extend(out.records);
    resp.topics[0].partitions[0].error_code
}

#[test]
fn offsets_commit_checks_generation_and_survive_replay() {
    let (mut h, [a, _, _]) = stable_three();
    assert_eq!(commit(&mut h, &a, 2, 42), 0);
    // A rebalance starts: members may still commit for the generation they hold (Kafka does).
    let (_, _) = h.join(&a, None, &["range", "roundrobin"]);
    assert_eq!(h.state(), GroupState::PreparingRebalance);
    assert_eq!(commit(&mut h, &a, 2, 42), 0);
    assert_eq!(commit(&mut h, &a, 1, 43), E::IllegalGeneration.code());
    assert_eq!(commit(&mut h, "ghost", 2, 43), E::UnknownMemberId.code());
    assert_eq!(
        commit(&mut h, "", -1, 43),
        E::UnknownMemberId.code(),
        "the group has members"
    );
    assert_eq!(
        h.c.fetch_offsets("g", Some(&[("t".into(), vec![0, 1])]))[0].1,
        vec![(0, 42, -1, String::new()), (1, -1, -1, String::new())]
    );
    // Replay of what was written rebuilds the same offsets and members.
    let mut fresh = GroupCoordinator::new(GroupConfig::default());
    for r in h.records.clone() {
        fresh.replay(r, h.now);
    }
    fresh.finish_load();
    assert_eq!(fresh.fetch_offsets("g", None), h.c.fetch_offsets("g", None));
    let g = fresh.group("g").unwrap();
    assert_eq!(
        (g.members.len(), g.generation, g.state),
        (3, 2, GroupState::Stable)
    );
}

#[test]
fn simple_consumers_commit_without_a_group_and_offsets_expire() {
    let mut h = Harness::new(0);
    assert_eq!(commit(&mut h, "", -1, 7), 0);
    assert_eq!(h.state(), GroupState::Empty);
    let (resp, _) = h
        .c
        .delete_groups(&DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s("nope"))]));
    assert_eq!(resp.results[0].error_code, E::GroupIdNotFound.code());
    h.advance(7 * 24 * 3600 * 1000 + 1);
    assert!(h.c.group("g").is_none(), "expired with its offsets");
    assert!(matches!(
        h.records.last(),
        Some(GroupRecord::Offset { value: None, .. })
    ));
}

#[test]
fn delete_groups_refuses_groups_with_members() {
    let (mut h, [a, b, c]) = stable_three();
    commit(&mut h, &a, 2, 5);
    let req = DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s("g"))]);
    assert_eq!(
        h.c.delete_groups(&req).0.results[0].error_code,
        E::NonEmptyGroup.code()
    );
    leave_all(&mut h, &[&a, &b, &c]);
    assert_eq!(h.state(), GroupState::Empty);
    let (resp, out) = h.c.delete_groups(&req);
    assert_eq!(resp.results[0].error_code, 0);
    assert_eq!(
        out.records.len(),
        2,
        "an offset tombstone and a group tombstone"
    );
    assert!(h.c.group("g").is_none());
}

/// A ConsumerProtocolSubscription at `version`, as a consumer sends it in JoinGroup.
fn subscription(version: i16, topics: &[&str]) -> Bytes {
    use kafka_protocol::messages::consumer_protocol_subscription::ConsumerProtocolSubscription;
    use kafka_protocol::protocol::Encodable;
    let sub =
        ConsumerProtocolSubscription::default().with_topics(topics.iter().map(|t| s(t)).collect());
    let mut b = bytes::BytesMut::new();
    bytes::BufMut::put_i16(&mut b, version);
    sub.encode(&mut b, version).unwrap();
    b.freeze()
}

fn offset_delete(h: &mut Harness, topics: &[&str]) -> (i16, Vec<i16>) {
    let req = OffsetDeleteRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_topics(
            topics
                .iter()
                .map(|t| {
                    offset_delete_request::OffsetDeleteRequestTopic::default()
                        .with_name(TopicName(s(t)))
                        .with_partitions(vec![
                            offset_delete_request::OffsetDeleteRequestPartition::default()
                                .with_partition_index(0),
                        ])
                })
                .collect(),
        );
    let (resp, out) = h.c.delete_offsets(&req);
    h.records.extend(out.records);
    let codes = resp
        .topics
        .iter()
        .map(|t| t.partitions[0].error_code)
        .collect();
    (resp.error_code, codes)
}

fn commit_topic(h: &mut Harness, member: &str, generation: i32, topic: &str) -> i16 {
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_member_id(s(member))
        .with_generation_id_or_member_epoch(generation)
        .with_topics(vec![
            offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(TopicName(s(topic)))
                .with_partitions(vec![
                    offset_commit_request::OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(9),
                ]),
        ]);
    let (resp, out) = h.c.commit_offsets(&req, 8, h.now, |_, _| true);
    h.records.extend(out.records);
    resp.topics[0].partitions[0].error_code
}

#[test]
fn offset_delete_refuses_a_consumer_group_whose_subscriptions_cannot_be_read() {
    // Members of stable_three send `meta-...`, which is no ConsumerProtocolSubscription.
    let (mut h, [a, b, c]) = stable_three();
    assert_eq!(commit_topic(&mut h, &a, 2, "t"), 0);
    assert_eq!(commit_topic(&mut h, &a, 2, "u"), 0);
    let before = h.records.len();
    assert_eq!(
        offset_delete(&mut h, &["t", "u"]),
        (
            0,
            vec![
                E::GroupSubscribedToTopic.code(),
                E::GroupSubscribedToTopic.code()
            ]
        ),
        "unknown subscriptions count as every topic"
    );
    assert_eq!(h.records.len(), before, "nothing deleted");
    assert_eq!(h.c.fetch_offsets("g", None).len(), 2);
    // Once the group is empty nothing is consumed any more.
    leave_all(&mut h, &[&a, &b, &c]);
    assert_eq!(offset_delete(&mut h, &["t"]), (0, vec![0]));
    assert_eq!(h.c.fetch_offsets("g", None).len(), 1);
}

#[test]
fn offset_delete_refuses_topics_a_classic_consumer_group_subscribes_to() {
    let mut h = Harness::new(0);
    // Version 1 carries owned partitions after the topics: read as its version-0 prefix.
    h.metadata = Some(subscription(1, &["t"]));
    let (a, ra, replies) = h.join_new();
    assert_eq!(join_reply(&replies, ra).generation_id, 1);
    h.sync(&a, 1, &[(&a, "A")]);
    assert_eq!(h.state(), GroupState::Stable);
    assert_eq!(commit_topic(&mut h, &a, 1, "t"), 0);
    assert_eq!(commit_topic(&mut h, &a, 1, "u"), 0);
    assert_eq!(
        offset_delete(&mut h, &["t", "u"]),
        (0, vec![E::GroupSubscribedToTopic.code(), 0])
    );
    assert_eq!(
        h.c.fetch_offsets("g", None)
            .into_iter()
            .map(|(t, _)| t)
            .collect::<Vec<_>>(),
        ["t"]
    );
    assert!(matches!(
        h.records.last(),
        Some(GroupRecord::Offset { topic, value: None, .. }) if topic == "u"
    ));
}

#[test]
fn offset_delete_refuses_a_non_empty_group_of_another_protocol_type() {
    let (mut h, [a, _, _]) = stable_three();
    commit_topic(&mut h, &a, 2, "u");
    // Rewrite the group's protocol type as if it were, say, a Connect group.
    let mut replayed = GroupCoordinator::new(GroupConfig::default());
    for r in h.records.clone() {
        let r = match r {
            GroupRecord::Group {
                group,
                value: Some(mut v),
            } => {
                v.protocol_type = "connect".into();
                GroupRecord::Group {
                    group,
                    value: Some(v),
                }
            }
            r => r,
        };
        replayed.replay(r, h.now);
    }
    h.c = replayed;
    assert_eq!(offset_delete(&mut h, &["u"]).0, E::NonEmptyGroup.code());
}
