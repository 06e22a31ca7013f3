//! KIP-848 consumer groups (`group.protocol=consumer`): one ConsumerGroupHeartbeat RPC, the
//! assignment computed on the broker, and incremental reconciliation.
//!
//! Each membership or subscription change bumps the group epoch; the target assignment is
//! recomputed for that epoch by the server-side assignor (`uniform` or `range`). Every member
//! then moves towards its target one heartbeat at a time: it first gives up what it must
//! revoke (its epoch stays), then receives the target epoch and the partitions nobody else
//! still owns; partitions still held by others follow once they are released.
//!
//! Membership is kept in memory (committed offsets are persisted as for classic groups): after
//! a coordinator restart members are fenced and rejoin with epoch 0, which clients do by
//! themselves.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use crate::classic::ClientInfo;
use crate::coordinator::GroupCoordinator;

/// Partitions by topic id.
pub type Partitions = BTreeMap<Uuid, BTreeSet<i32>>;

/// Topic name to (id, partition count), from the metadata image.
pub type TopicsView = BTreeMap<String, (Uuid, i32)>;

/// Member epoch a member leaves with.
const LEAVE_EPOCH: i32 = -1;
const STATIC_LEAVE_EPOCH: i32 = -2;

fn s(v: impl Into<String>) -> StrBytes {
    StrBytes::from_string(v.into())
}

#[derive(Debug, Clone)]
pub struct ConsumerMember {
    pub id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client: ClientInfo,
    pub member_epoch: i32,
    pub previous_member_epoch: i32,
    /// Topics the member subscribes to: its names, plus those matching its regex.
    pub subscribed: BTreeSet<String>,
    pub subscribed_names: BTreeSet<String>,
    pub subscribed_regex: Option<String>,
    pub server_assignor: Option<String>,
    pub rebalance_timeout_ms: i32,
    /// What the member owns (as told in our last answer).
    pub assigned: Partitions,
    /// What it was told to give up and has not confirmed yet.
    pub revoking: Partitions,
    pub session_deadline_ms: i64,
    /// The assignment last sent, so unchanged ones are not repeated.
    pub last_sent: Option<Partitions>,
}

#[derive(Debug, Clone, Default)]
pub struct ConsumerGroup {
    pub id: String,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub assignor: String,
    pub members: BTreeMap<String, ConsumerMember>,
    pub target: BTreeMap<String, Partitions>,
    /// Partition counts of subscribed topics when the target was computed.
    pub topics_seen: BTreeMap<String, (Uuid, i32)>,
}

impl ConsumerGroup {
    /// Kafka's state names for consumer groups.
    pub fn state(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else if self.assignment_epoch < self.group_epoch {
            "Assigning"
        } else if self.members.values().any(|m| {
            m.member_epoch != self.assignment_epoch
                || !m.revoking.is_empty()
                || Some(&m.assigned) != self.target.get(&m.id)
        }) {
            "Reconciling"
        } else {
            "Stable"
        }
    }

    pub fn subscribed_topics(&self) -> BTreeSet<String> {
        self.members
            .values()
            .flat_map(|m| m.subscribed.iter().cloned())
            .collect()
    }
}

fn count(p: &Partitions) -> usize {
    p.values().map(BTreeSet::len).sum()
}

fn minus(a: &Partitions, b: &Partitions) -> Partitions {
    let mut out = Partitions::new();
    for (t, ps) in a {
        let rest: BTreeSet<i32> = ps
            .iter()
            .filter(|p| !b.get(t).is_some_and(|x| x.contains(p)))
            .copied()
            .collect();
        if !rest.is_empty() {
            out.insert(*t, rest);
        }
    }
    out
}

fn union(a: &Partitions, b: &Partitions) -> Partitions {
    let mut out = a.clone();
    for (t, ps) in b {
        out.entry(*t).or_default().extend(ps.iter().copied());
    }
    out
}

fn intersect(a: &Partitions, b: &Partitions) -> Partitions {
    minus(a, &minus(a, b))
}

/// Computes the target assignment: `range` gives each member contiguous ranges per topic;
/// `uniform` balances all partitions, keeping a partition with its current owner when that
/// stays within the owner's share.
pub fn assign(
    assignor: &str,
    members: &BTreeMap<String, ConsumerMember>,
    topics: &TopicsView,
    current: &BTreeMap<String, Partitions>,
) -> BTreeMap<String, Partitions> {
    let mut out: BTreeMap<String, Partitions> = members
        .keys()
        .map(|m| (m.clone(), Partitions::new()))
        .collect();
    let mut subscribed: Vec<&String> = members.values().flat_map(|m| m.subscribed.iter()).collect();
    subscribed.sort();
    subscribed.dedup();
    if assignor == "range" {
        for topic in subscribed {
            let Some((id, n)) = topics.get(topic) else {
                continue;
            };
            let subs: Vec<&String> = members
                .values()
                .filter(|m| m.subscribed.contains(topic))
                .map(|m| &m.id)
                .collect();
            if subs.is_empty() {
                continue;
            }
            let (per, extra) = (*n as usize / subs.len(), *n as usize % subs.len());
            let mut next = 0i32;
            for (i, m) in subs.iter().enumerate() {
                let take = per + usize::from(i < extra);
                let ps: BTreeSet<i32> = (next..next + take as i32).collect();
                next += take as i32;
                if !ps.is_empty() {
                    out.entry((*m).clone()).or_default().insert(*id, ps);
                }
            }
        }
        return out;
    }
    // uniform
    let mut all: Vec<(Uuid, i32, &String)> = Vec::new();
    for topic in &subscribed {
        if let Some((id, n)) = topics.get(*topic) {
            all.extend((0..*n).map(|p| (*id, p, *topic)));
        }
    }
    let quota = all.len().div_ceil(members.len().max(1));
    let mut load: BTreeMap<String, usize> = members.keys().map(|m| (m.clone(), 0)).collect();
    let mut unassigned = Vec::new();
    for (id, p, topic) in all {
        let owner = current
            .iter()
            .find(|(_, ps)| ps.get(&id).is_some_and(|x| x.contains(&p)))
            .map(|(m, _)| m.clone());
        let keep = owner.filter(|m| {
            members
                .get(m)
                .is_some_and(|mm| mm.subscribed.contains(topic))
                && load.get(m).is_some_and(|l| *l < quota)
        });
        match keep {
            Some(m) => {
                *load.entry(m.clone()).or_default() += 1;
                out.entry(m).or_default().entry(id).or_default().insert(p);
            }
            None => unassigned.push((id, p, topic)),
        }
    }
    for (id, p, topic) in unassigned {
        let best = members
            .values()
            .filter(|m| m.subscribed.contains(topic))
            .min_by_key(|m| (load.get(&m.id).copied().unwrap_or(0), m.id.clone()))
            .map(|m| m.id.clone());
        if let Some(m) = best {
            *load.entry(m.clone()).or_default() += 1;
            out.entry(m).or_default().entry(id).or_default().insert(p);
        }
    }
    // Kept partitions can leave a member above its share while another is below: move one
    // partition at a time from the most to the least loaded member that can take it.
    let topic_of = |t: &Uuid| {
        topics
            .iter()
            .find(|(_, (id, _))| id == t)
            .map(|(n, _)| n.clone())
    };
    for _ in 0..members.len() * quota.max(1) {
        let Some((max_m, max_l)) = load
            .iter()
            .max_by_key(|(m, l)| (**l, std::cmp::Reverse((*m).clone())))
            .map(|(m, l)| (m.clone(), *l))
        else {
            break;
        };
        let Some((min_m, min_l)) = load
            .iter()
            .min_by_key(|(m, l)| (**l, (*m).clone()))
            .map(|(m, l)| (m.clone(), *l))
        else {
            break;
        };
        if max_l <= min_l + 1 {
            break;
        }
        let takes = |t: &Uuid| {
            topic_of(t).is_some_and(|n| {
                members
                    .get(&min_m)
                    .is_some_and(|m| m.subscribed.contains(&n))
            })
        };
        let movable = out.get(&max_m).and_then(|ps| {
            ps.iter()
                .flat_map(|(t, set)| set.iter().map(move |p| (*t, *p)))
                .find(|(t, _)| takes(t))
        });
        let Some((t, p)) = movable else { break };
        if let Some(ps) = out.get_mut(&max_m).and_then(|x| x.get_mut(&t)) {
            ps.remove(&p);
        }
        out.entry(min_m.clone())
            .or_default()
            .entry(t)
            .or_default()
            .insert(p);
        *load.entry(max_m).or_default() -= 1;
        *load.entry(min_m).or_default() += 1;
    }
    for ps in out.values_mut() {
        ps.retain(|_, set| !set.is_empty());
    }
    out
}

/// A member's topics: the names it gave, plus every non-internal topic its regex matches
/// whole (as Kafka matches subscription regexes).
fn resolve(names: &BTreeSet<String>, regex: Option<&str>, topics: &TopicsView) -> BTreeSet<String> {
    let mut out = names.clone();
    if let Some(re) = regex.and_then(|r| regex::Regex::new(&format!("^(?:{r})$")).ok()) {
        out.extend(
            topics
                .keys()
                .filter(|t| !t.starts_with("__") && re.is_match(t))
                .cloned(),
        );
    }
    out
}

fn to_wire(p: &Partitions) -> Vec<TopicPartitions> {
    p.iter()
        .map(|(t, ps)| {
            TopicPartitions::default()
                .with_topic_id(*t)
                .with_partitions(ps.iter().copied().collect())
        })
        .collect()
}

fn from_wire(tps: &[consumer_group_heartbeat_request::TopicPartitions]) -> Partitions {
    let mut out = Partitions::new();
    for tp in tps {
        out.entry(tp.topic_id)
            .or_default()
            .extend(tp.partitions.iter().copied());
    }
    out.retain(|_, s| !s.is_empty());
    out
}

impl GroupCoordinator {
    pub fn consumer_group(&self, id: &str) -> Option<&ConsumerGroup> {
        self.consumer_groups.get(id)
    }

    /// ConsumerGroupHeartbeat: join (epoch 0), heartbeat, acknowledge revocations, leave (-1).
    pub fn consumer_heartbeat(
        &mut self,
        req: &ConsumerGroupHeartbeatRequest,
        client: ClientInfo,
        topics: &TopicsView,
        now: i64,
    ) -> ConsumerGroupHeartbeatResponse {
        let fail = |e: E, msg: &str| {
            ConsumerGroupHeartbeatResponse::default()
                .with_error_code(e.code())
                .with_error_message(Some(s(msg)))
        };
        let group_id = req.group_id.to_string();
        if group_id.is_empty() {
            return fail(E::InvalidGroupId, "The group id must not be empty");
        }
        if self
            .groups
            .get(&group_id)
            .is_some_and(|g| !g.members.is_empty())
        {
            return fail(
                E::GroupIdNotFound,
                "The group is a classic group with members",
            );
        }
        let session_ms = i64::from(self.config.consumer_session_timeout_ms);
        let interval = self.config.consumer_heartbeat_interval_ms;
        let group = self
            .consumer_groups
            .get_or_insert_with(group_id.clone(), || ConsumerGroup {
                id: group_id.clone(),
                assignor: "uniform".into(),
                ..Default::default()
            });
        let mut member_id = req.member_id.to_string();

        if let Some(a) = req
            .server_assignor
            .as_ref()
            .filter(|a| a.as_str() != "uniform" && a.as_str() != "range")
        {
            let msg = format!(
                "ServerAssignor {} is not supported. Supported assignors: uniform, range.",
                a.as_str()
            );
            return fail(E::UnsupportedAssignor, &msg);
        }
        // A static member leaving with -2 only steps away: it keeps its partitions until its
        // session expires, and its next incarnation gets them back.
        if req.member_epoch == STATIC_LEAVE_EPOCH {
            let Some(m) = group.members.get_mut(&member_id) else {
                return fail(E::UnknownMemberId, "Unknown member");
            };
            if m.instance_id.is_some() {
                m.member_epoch = STATIC_LEAVE_EPOCH;
                return ConsumerGroupHeartbeatResponse::default()
                    .with_member_id(Some(s(member_id)))
                    .with_member_epoch(STATIC_LEAVE_EPOCH);
            }
        }
        // Leaving.
        if req.member_epoch == LEAVE_EPOCH || req.member_epoch == STATIC_LEAVE_EPOCH {
            if group.members.remove(&member_id).is_none() {
                return fail(E::UnknownMemberId, "Unknown member");
            }
            group.target.remove(&member_id);
            group.group_epoch += 1;
            return ConsumerGroupHeartbeatResponse::default()
                .with_member_id(Some(s(member_id)))
                .with_member_epoch(req.member_epoch);
        }
        if let Some(re) = req
            .subscribed_topic_regex
            .as_ref()
            .filter(|r| !r.is_empty())
        {
            if regex::Regex::new(&format!("^(?:{})$", re.as_str())).is_err() {
                return fail(
                    E::InvalidRegularExpression,
                    &format!("Invalid regular expression {}", re.as_str()),
                );
            }
        }

        // Joining, or identifying the member.
        if req.member_epoch == 0 {
            if member_id.is_empty() {
                member_id = uuid::Uuid::new_v4().simple().to_string();
            }
            if req.subscribed_topic_names.is_none() && req.subscribed_topic_regex.is_none() {
                return fail(
                    E::InvalidRequest,
                    "SubscribedTopicNames or SubscribedTopicRegex must be set when joining",
                );
            }
            let names: BTreeSet<String> = req
                .subscribed_topic_names
                .iter()
                .flatten()
                .map(|t| t.to_string())
                .collect();
            let regex = req
                .subscribed_topic_regex
                .as_ref()
                .map(|r| r.to_string())
                .filter(|r| !r.is_empty());
            if let Some(instance) = &req.instance_id {
                // A static member coming back replaces its previous incarnation.
                let old: Vec<String> = group
                    .members
                    .values()
                    .filter(|m| {
                        m.instance_id.as_deref() == Some(instance.as_str()) && m.id != member_id
                    })
                    .map(|m| m.id.clone())
                    .collect();
                for o in old {
                    if let Some(prev) = group.members.remove(&o) {
                        if let Some(t) = group.target.remove(&o) {
                            group.target.insert(member_id.clone(), t);
                        }
                        let mut m = prev;
                        m.id = member_id.clone();
                        m.member_epoch = 0;
                        m.last_sent = None;
                        group.members.insert(member_id.clone(), m);
                    }
                }
            }
            let subscribed = resolve(&names, regex.as_deref(), topics);
            let existing = group
                .members
                .get(&member_id)
                .map(|m| (m.subscribed.clone(), m.assigned.clone()));
            let member = ConsumerMember {
                id: member_id.clone(),
                instance_id: req.instance_id.as_ref().map(|i| i.to_string()),
                rack_id: req.rack_id.as_ref().map(|r| r.to_string()),
                client: client.clone(),
                member_epoch: 0,
                previous_member_epoch: -1,
                subscribed: subscribed.clone(),
                subscribed_names: names,
                subscribed_regex: regex,
                server_assignor: req.server_assignor.as_ref().map(|a| a.to_string()),
                rebalance_timeout_ms: req.rebalance_timeout_ms,
                assigned: existing
                    .as_ref()
                    .map(|(_, a)| a.clone())
                    .unwrap_or_default(),
                revoking: Partitions::new(),
                session_deadline_ms: now + session_ms,
                last_sent: None,
            };
            if existing.as_ref().is_none_or(|(sub, _)| *sub != subscribed) {
                group.group_epoch += 1;
            }
            group.members.insert(member_id.clone(), member);
        } else {
            let Some(m) = group.members.get_mut(&member_id) else {
                return fail(E::UnknownMemberId, "Unknown member; rejoin with epoch 0");
            };
            let owned = req.topic_partitions.as_ref().map(|t| from_wire(t));
            let epoch_ok = req.member_epoch == m.member_epoch
                || (req.member_epoch == m.previous_member_epoch
                    && owned
                        .as_ref()
                        .is_some_and(|o| minus(o, &m.assigned).is_empty()));
            if !epoch_ok {
                return fail(
                    E::FencedMemberEpoch,
                    "The member epoch is stale; rejoin with epoch 0",
                );
            }
            m.session_deadline_ms = now + session_ms;
            if let Some(sub) = &req.subscribed_topic_names {
                m.subscribed_names = sub.iter().map(|t| t.to_string()).collect();
            }
            if let Some(re) = &req.subscribed_topic_regex {
                m.subscribed_regex = Some(re.to_string()).filter(|r| !r.is_empty());
            }
            // A regex picks up topics created since the last heartbeat.
            let sub = resolve(&m.subscribed_names, m.subscribed_regex.as_deref(), topics);
            if sub != m.subscribed {
                m.subscribed = sub;
                group.group_epoch += 1;
            }
            if let Some(owned) = owned {
                // Revocations are confirmed when the member no longer reports them.
                if intersect(&owned, &m.revoking).is_empty() {
                    m.revoking.clear();
                }
                if owned != m.assigned {
                    m.last_sent = None;
                }
            }
        }

        // Topic metadata changes (partitions added) also call for a new assignment.
        let wanted = group.subscribed_topics();
        let seen: BTreeMap<String, (Uuid, i32)> = wanted
            .iter()
            .filter_map(|t| topics.get(t).map(|v| (t.clone(), *v)))
            .collect();
        if seen != group.topics_seen {
            group.topics_seen = seen;
            group.group_epoch += 1;
        }
        if group.assignment_epoch < group.group_epoch {
            if let Some(a) = group
                .members
                .values()
                .find_map(|m| m.server_assignor.clone())
            {
                if a == "range" || a == "uniform" {
                    group.assignor = a;
                }
            }
            group.target = assign(&group.assignor, &group.members, topics, &group.target);
            group.assignment_epoch = group.group_epoch;
        }
        reconcile(group, &member_id);
        let Some(m) = group.members.get_mut(&member_id) else {
            return fail(E::UnknownServerError, "member vanished");
        };
        let mut resp = ConsumerGroupHeartbeatResponse::default()
            .with_member_id(Some(s(member_id.clone())))
            .with_member_epoch(m.member_epoch)
            .with_heartbeat_interval_ms(interval);
        if m.last_sent.as_ref() != Some(&m.assigned) {
            resp.assignment =
                Some(Assignment::default().with_topic_partitions(to_wire(&m.assigned)));
            m.last_sent = Some(m.assigned.clone());
        }
        resp
    }

    /// Drops consumer-group members whose session expired.
    pub(crate) fn tick_consumer(&mut self, now: i64) {
        let due: Vec<String> = self
            .consumer_groups
            .values()
            .filter(|g| g.members.values().any(|m| m.session_deadline_ms <= now))
            .map(|g| g.id.clone())
            .collect();
        for group_id in due {
            let Some(g) = self.consumer_groups.get_mut(&group_id) else {
                continue;
            };
            let expired: Vec<String> = g
                .members
                .values()
                .filter(|m| m.session_deadline_ms <= now)
                .map(|m| m.id.clone())
                .collect();
            for id in expired {
                g.members.remove(&id);
                g.target.remove(&id);
                g.group_epoch += 1;
            }
        }
    }

    /// ConsumerGroupDescribe.
    pub fn consumer_describe(
        &self,
        req: &ConsumerGroupDescribeRequest,
        topic_names: &BTreeMap<Uuid, String>,
    ) -> ConsumerGroupDescribeResponse {
        use kafka_protocol::messages::consumer_group_describe_response as d;
        let wire = |p: &Partitions| {
            d::Assignment::default().with_topic_partitions(
                p.iter()
                    .map(|(t, ps)| {
                        d::TopicPartitions::default()
                            .with_topic_id(*t)
                            .with_topic_name(TopicName(s(topic_names
                                .get(t)
                                .cloned()
                                .unwrap_or_default())))
                            .with_partitions(ps.iter().copied().collect())
                    })
                    .collect(),
            )
        };
        let groups = req
            .group_ids
            .iter()
            .map(|id| match self.consumer_groups.get(id.as_str()) {
                None => d::DescribedGroup::default()
                    .with_group_id(id.clone())
                    .with_group_state(s("Dead"))
                    .with_error_code(E::GroupIdNotFound.code())
                    .with_error_message(Some(s(format!("Group {} not found.", id.as_str())))),
                Some(g) => d::DescribedGroup::default()
                    .with_group_id(id.clone())
                    .with_group_state(s(g.state()))
                    .with_group_epoch(g.group_epoch)
                    .with_assignment_epoch(g.assignment_epoch)
                    .with_assignor_name(s(g.assignor.clone()))
                    .with_members(
                        g.members
                            .values()
                            .map(|m| {
                                d::Member::default()
                                    .with_member_id(s(m.id.clone()))
                                    .with_instance_id(m.instance_id.clone().map(s))
                                    .with_rack_id(m.rack_id.clone().map(s))
                                    .with_member_epoch(m.member_epoch)
                                    .with_client_id(s(m.client.client_id.clone()))
                                    .with_client_host(s(m.client.client_host.clone()))
                                    .with_subscribed_topic_names(
                                        m.subscribed
                                            .iter()
                                            .map(|t| TopicName(s(t.clone())))
                                            .collect(),
                                    )
                                    .with_assignment(wire(&m.assigned))
                                    .with_target_assignment(wire(
                                        g.target.get(&m.id).unwrap_or(&Partitions::new()),
                                    ))
                            })
                            .collect(),
                    ),
            })
            .collect();
        ConsumerGroupDescribeResponse::default().with_groups(groups)
    }
}

/// Moves `member_id` one step towards its target: revoke first, then take the target epoch
/// and every target partition nobody else still holds.
fn reconcile(group: &mut ConsumerGroup, member_id: &str) {
    let target = group.target.get(member_id).cloned().unwrap_or_default();
    let held_by_others: Partitions = group
        .members
        .values()
        .filter(|m| m.id != member_id)
        .fold(Partitions::new(), |acc, m| {
            union(&union(&acc, &m.assigned), &m.revoking)
        });
    let epoch = group.assignment_epoch;
    let Some(m) = group.members.get_mut(member_id) else {
        return;
    };
    let revoke = minus(&m.assigned, &target);
    if !revoke.is_empty() {
        m.assigned = intersect(&m.assigned, &target);
        m.revoking = union(&m.revoking, &revoke);
        return;
    }
    if !m.revoking.is_empty() {
        return; // waiting for the member to confirm
    }
    let free = minus(&minus(&target, &m.assigned), &held_by_others);
    m.assigned = union(&m.assigned, &free);
    if m.member_epoch != epoch {
        m.previous_member_epoch = m.member_epoch;
        m.member_epoch = epoch;
    }
    let _ = count(&m.assigned);
}
