//! Client-side partition assignors for the classic group protocol, chosen with
//! `partition.assignment.strategy` and run by the group leader: `range`, `roundrobin`,
//! `sticky` and `cooperative-sticky` (KIP-429). Pure functions of the members' subscriptions
//! and the partition counts, and the encoding of the `consumer` protocol's subscription and
//! assignment bytes.

use std::collections::{BTreeMap, BTreeSet};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment as cpa;
use kafka_protocol::messages::consumer_protocol_subscription as cps;
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, ConsumerProtocolSubscription, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use crate::error::{Error, Result};
use crate::types::TopicPartition;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assignor {
    Range,
    RoundRobin,
    Sticky,
    CooperativeSticky,
}

impl Assignor {
    /// The protocol name in JoinGroup, as Kafka's assignors name themselves.
    pub fn name(self) -> &'static str {
        match self {
            Assignor::Range => "range",
            Assignor::RoundRobin => "roundrobin",
            Assignor::Sticky => "sticky",
            Assignor::CooperativeSticky => "cooperative-sticky",
        }
    }

    /// Reads one entry of `partition.assignment.strategy`: short names or Kafka's class names.
    pub fn parse(s: &str) -> Option<Self> {
        let n = s.trim().to_ascii_lowercase();
        let short = n.rsplit('.').next().unwrap_or(&n);
        Some(match short {
            "range" | "rangeassignor" => Assignor::Range,
            "roundrobin" | "roundrobinassignor" => Assignor::RoundRobin,
            "sticky" | "stickyassignor" => Assignor::Sticky,
            "cooperative-sticky" | "cooperativestickyassignor" => Assignor::CooperativeSticky,
            _ => return None,
        })
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::parse(name)
    }

    pub fn is_cooperative(self) -> bool {
        self == Assignor::CooperativeSticky
    }

    /// Assigns `partitions` (topic → count) to `members`.
    pub fn assign(
        self,
        members: &[Member],
        partitions: &BTreeMap<String, i32>,
    ) -> BTreeMap<String, Vec<TopicPartition>> {
        match self {
            Assignor::Range => range(members, partitions),
            Assignor::RoundRobin => round_robin(members, partitions),
            Assignor::Sticky => sticky(members, partitions, false),
            Assignor::CooperativeSticky => sticky(members, partitions, true),
        }
    }
}

/// One member's subscription as the leader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub member_id: String,
    pub topics: Vec<String>,
    pub owned: Vec<TopicPartition>,
}

fn empty_result(members: &[Member]) -> BTreeMap<String, Vec<TopicPartition>> {
    members
        .iter()
        .map(|m| (m.member_id.clone(), Vec::new()))
        .collect()
}

fn range(
    members: &[Member],
    partitions: &BTreeMap<String, i32>,
) -> BTreeMap<String, Vec<TopicPartition>> {
    let mut out = empty_result(members);
    for (topic, &n) in partitions {
        let mut subs: Vec<&str> = members
            .iter()
            .filter(|m| m.topics.iter().any(|t| t == topic))
            .map(|m| m.member_id.as_str())
            .collect();
        subs.sort();
        if subs.is_empty() {
            continue;
        }
        let (per, extra) = (n as usize / subs.len(), n as usize % subs.len());
        let mut next = 0i32;
        for (i, m) in subs.iter().enumerate() {
            let take = per + usize::from(i < extra);
            let list = out.entry(m.to_string()).or_default();
            for p in next..next + take as i32 {
                list.push(TopicPartition::new(topic.clone(), p));
            }
            next += take as i32;
        }
    }
    out
}

fn round_robin(
    members: &[Member],
    partitions: &BTreeMap<String, i32>,
) -> BTreeMap<String, Vec<TopicPartition>> {
    let mut out = empty_result(members);
    let mut ids: Vec<&Member> = members.iter().collect();
    ids.sort_by(|a, b| a.member_id.cmp(&b.member_id));
    if ids.is_empty() {
        return out;
    }
    let mut cursor = 0usize;
    for (topic, &n) in partitions {
        for p in 0..n {
            // The next member in the circle that subscribes to this topic.
            for step in 0..ids.len() {
                let m = ids[(cursor + step) % ids.len()];
                if m.topics.iter().any(|t| t == topic) {
                    out.entry(m.member_id.clone())
                        .or_default()
                        .push(TopicPartition::new(topic.clone(), p));
                    cursor = (cursor + step + 1) % ids.len();
                    break;
                }
            }
        }
    }
    out
}

/// Balanced, keeping as many owned partitions in place as balance allows. With
/// `cooperative`, a partition that changes owner is withheld for this round: its old owner
/// revokes it, rejoins, and the next round hands it over (KIP-429).
fn sticky(
    members: &[Member],
    partitions: &BTreeMap<String, i32>,
    cooperative: bool,
) -> BTreeMap<String, Vec<TopicPartition>> {
    let mut out = empty_result(members);
    if members.is_empty() {
        return out;
    }
    let mut sorted: Vec<&Member> = members.iter().collect();
    sorted.sort_by(|a, b| a.member_id.cmp(&b.member_id));
    let subscribed = |m: &Member, topic: &str| m.topics.iter().any(|t| t == topic);
    let all: BTreeSet<TopicPartition> = partitions
        .iter()
        .filter(|(t, _)| members.iter().any(|m| subscribed(m, t)))
        .flat_map(|(t, &n)| (0..n).map(move |p| TopicPartition::new(t.clone(), p)))
        .collect();
    let total = all.len();
    let m = sorted.len();
    let (min_quota, extra) = (total / m, total % m);
    let mut at_max = 0usize;
    let mut claimed: BTreeSet<TopicPartition> = BTreeSet::new();
    let mut previous_owner: BTreeMap<TopicPartition, String> = BTreeMap::new();
    // Members owning most keep their share first, so the fewest partitions move.
    let mut by_owned = sorted.clone();
    by_owned.sort_by(|a, b| {
        b.owned
            .len()
            .cmp(&a.owned.len())
            .then(a.member_id.cmp(&b.member_id))
    });
    for member in by_owned {
        let mut keep: Vec<TopicPartition> = Vec::new();
        let mut owned = member.owned.clone();
        owned.sort();
        for tp in owned {
            if !all.contains(&tp) || !subscribed(member, &tp.topic) || claimed.contains(&tp) {
                continue;
            }
            previous_owner.insert(tp.clone(), member.member_id.clone());
            let cap = if at_max < extra {
                min_quota + 1
            } else {
                min_quota
            };
            if keep.len() < cap {
                claimed.insert(tp.clone());
                keep.push(tp);
            }
        }
        if keep.len() > min_quota {
            at_max += 1;
        }
        out.insert(member.member_id.clone(), keep);
    }
    for tp in all.iter().filter(|tp| !claimed.contains(*tp)) {
        let target = sorted
            .iter()
            .filter(|m| subscribed(m, &tp.topic))
            .min_by_key(|m| {
                (
                    out.get(&m.member_id).map_or(0, Vec::len),
                    m.member_id.clone(),
                )
            });
        if let Some(t) = target {
            out.entry(t.member_id.clone()).or_default().push(tp.clone());
        }
    }
    if cooperative {
        for (member, list) in out.iter_mut() {
            list.retain(|tp| previous_owner.get(tp).is_none_or(|o| o == member));
        }
    }
    for list in out.values_mut() {
        list.sort();
    }
    out
}

fn group_by_topic(tps: &[TopicPartition]) -> BTreeMap<String, Vec<i32>> {
    let mut by: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for tp in tps {
        by.entry(tp.topic.clone()).or_default().push(tp.partition);
    }
    by
}

const SUBSCRIPTION_VERSION: i16 = 1;
const ASSIGNMENT_VERSION: i16 = 1;

pub fn encode_subscription(topics: &[String], owned: &[TopicPartition]) -> Bytes {
    let sub = ConsumerProtocolSubscription::default()
        .with_topics(
            topics
                .iter()
                .map(|t| StrBytes::from_string(t.clone()))
                .collect(),
        )
        .with_owned_partitions(
            group_by_topic(owned)
                .into_iter()
                .map(|(t, ps)| {
                    cps::TopicPartition::default()
                        .with_topic(TopicName(StrBytes::from_string(t)))
                        .with_partitions(ps)
                })
                .collect(),
        );
    let mut buf = BytesMut::new();
    buf.put_i16(SUBSCRIPTION_VERSION);
    // Encoding plain data into a growable buffer does not fail.
    let _ = sub.encode(&mut buf, SUBSCRIPTION_VERSION);
    buf.freeze()
}

pub fn decode_subscription(member_id: &str, mut bytes: Bytes) -> Result<Member> {
    if bytes.remaining() < 2 {
        return Err(Error::protocol(format!(
            "member {member_id}: empty subscription"
        )));
    }
    let version = bytes.get_i16().clamp(0, 3);
    let sub = ConsumerProtocolSubscription::decode(&mut bytes, version)
        .map_err(|e| Error::protocol(format!("member {member_id}: subscription: {e}")))?;
    Ok(Member {
        member_id: member_id.to_string(),
        topics: sub.topics.iter().map(|t| t.to_string()).collect(),
        owned: sub
            .owned_partitions
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| TopicPartition::new(t.topic.0.to_string(), *p))
            })
            .collect(),
    })
}

pub fn encode_assignment(tps: &[TopicPartition]) -> Bytes {
    let a = ConsumerProtocolAssignment::default().with_assigned_partitions(
        group_by_topic(tps)
            .into_iter()
            .map(|(t, ps)| {
                cpa::TopicPartition::default()
                    .with_topic(TopicName(StrBytes::from_string(t)))
                    .with_partitions(ps)
            })
            .collect(),
    );
    let mut buf = BytesMut::new();
    buf.put_i16(ASSIGNMENT_VERSION);
    let _ = a.encode(&mut buf, ASSIGNMENT_VERSION);
    buf.freeze()
}

pub fn decode_assignment(mut bytes: Bytes) -> Result<Vec<TopicPartition>> {
    if bytes.remaining() < 2 {
        return Ok(Vec::new()); // an empty assignment
    }
    let version = bytes.get_i16().clamp(0, 3);
    let a = ConsumerProtocolAssignment::decode(&mut bytes, version)
        .map_err(|e| Error::protocol(format!("assignment: {e}")))?;
    let mut out: Vec<TopicPartition> = a
        .assigned_partitions
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| TopicPartition::new(t.topic.0.to_string(), *p))
        })
        .collect();
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, topics: &[&str], owned: &[(&str, i32)]) -> Member {
        Member {
            member_id: id.into(),
            topics: topics.iter().map(|t| t.to_string()).collect(),
            owned: owned
                .iter()
                .map(|(t, p)| TopicPartition::new(*t, *p))
                .collect(),
        }
    }

    fn counts(a: &BTreeMap<String, Vec<TopicPartition>>) -> Vec<usize> {
        a.values().map(Vec::len).collect()
    }

    #[test]
    fn range_and_round_robin_split_like_kafka() {
        let parts = BTreeMap::from([("a".to_string(), 3), ("b".to_string(), 3)]);
        let ms = [
            member("m1", &["a", "b"], &[]),
            member("m2", &["a", "b"], &[]),
        ];
        let r = Assignor::Range.assign(&ms, &parts);
        assert_eq!(
            r["m1"],
            vec![
                TopicPartition::new("a", 0),
                TopicPartition::new("a", 1),
                TopicPartition::new("b", 0),
                TopicPartition::new("b", 1)
            ]
        );
        assert_eq!(r["m2"].len(), 2);
        let rr = Assignor::RoundRobin.assign(&ms, &parts);
        assert_eq!(
            rr["m1"],
            vec![
                TopicPartition::new("a", 0),
                TopicPartition::new("a", 2),
                TopicPartition::new("b", 1)
            ]
        );
        assert_eq!(counts(&rr), vec![3, 3]);
    }

    #[test]
    fn cooperative_sticky_withholds_moving_partitions_for_one_round() {
        let parts = BTreeMap::from([("t".to_string(), 6)]);
        // m1 owned everything; m2 joins.
        let owned: Vec<(&str, i32)> = (0..6).map(|p| ("t", p)).collect();
        let ms = [member("m1", &["t"], &owned), member("m2", &["t"], &[])];
        let first = Assignor::CooperativeSticky.assign(&ms, &parts);
        assert_eq!(first["m1"].len(), 3, "m1 keeps half");
        assert!(first["m2"].is_empty(), "moving partitions are withheld");
        // Second round: m1 owns its three, m2 gets the rest.
        let kept: Vec<(&str, i32)> = first["m1"].iter().map(|tp| ("t", tp.partition)).collect();
        let ms = [member("m1", &["t"], &kept), member("m2", &["t"], &[])];
        let second = Assignor::CooperativeSticky.assign(&ms, &parts);
        assert_eq!(second["m1"], first["m1"]);
        assert_eq!(second["m2"].len(), 3);
        // Eager sticky hands them over at once.
        let ms = [member("m1", &["t"], &owned), member("m2", &["t"], &[])];
        assert_eq!(counts(&Assignor::Sticky.assign(&ms, &parts)), vec![3, 3]);
    }

    #[test]
    fn sticky_balances_three_members_and_keeps_survivors_in_place() {
        let parts = BTreeMap::from([("t".to_string(), 6)]);
        let ms = [
            member("a", &["t"], &[("t", 0), ("t", 1)]),
            member("b", &["t"], &[("t", 2), ("t", 3)]),
            member("c", &["t"], &[("t", 4), ("t", 5)]),
        ];
        let same = Assignor::Sticky.assign(&ms, &parts);
        assert_eq!(
            same["b"],
            vec![TopicPartition::new("t", 2), TopicPartition::new("t", 3)]
        );
        // c leaves: a and b keep theirs and split c's.
        let ms = [
            member("a", &["t"], &[("t", 0), ("t", 1)]),
            member("b", &["t"], &[("t", 2), ("t", 3)]),
        ];
        let after = Assignor::CooperativeSticky.assign(&ms, &parts);
        assert_eq!(counts(&after), vec![3, 3]);
        assert!(after["a"].contains(&TopicPartition::new("t", 0)));
        assert!(after["b"].contains(&TopicPartition::new("t", 3)));
    }

    #[test]
    fn protocol_bytes_roundtrip() {
        let owned = vec![TopicPartition::new("t", 1), TopicPartition::new("u", 0)];
        let m = decode_subscription("m", encode_subscription(&["t".into(), "u".into()], &owned))
            .unwrap();
        assert_eq!(m.topics, vec!["t", "u"]);
        assert_eq!(m.owned, owned);
        assert_eq!(decode_assignment(encode_assignment(&owned)).unwrap(), owned);
        assert!(decode_assignment(Bytes::new()).unwrap().is_empty());
        assert_eq!(
            Assignor::parse("org.apache.kafka.clients.consumer.CooperativeStickyAssignor"),
            Some(Assignor::CooperativeSticky)
        );
    }
}
