//! A classic consumer group: its members, state and generation. Committed offsets are kept
//! by the coordinator, by group id, for classic and KIP-848 groups alike.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;

use crate::records::{GroupValue, MemberValue};

/// Identifies a request waiting for an answer (a JoinGroup or SyncGroup held until the
/// rebalance moves on). The caller picks them; the coordinator hands them back with replies.
pub type RequestId = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    /// The name Kafka reports (ListGroups, DescribeGroups).
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    /// Protocols in the member's order of preference, with its metadata for each.
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    /// A JoinGroup waiting for the join phase to end: request and its version.
    pub awaiting_join: Option<(RequestId, i16)>,
    /// A SyncGroup waiting for the leader's assignment.
    pub awaiting_sync: Option<(RequestId, i16)>,
    pub session_deadline_ms: i64,
}

impl Member {
    pub fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(n, _)| n == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }

    pub fn same_protocols(&self, other: &[(String, Bytes)]) -> bool {
        self.protocols == other
    }
    /// Whether the session has run out. A member waiting for its JoinGroup or SyncGroup
    /// answer does not expire (the coordinator owes it one), as in Kafka.
    pub fn session_expired(&self, now: i64) -> bool {
        self.awaiting_join.is_none()
            && self.awaiting_sync.is_none()
            && self.session_deadline_ms <= now
    }
}

#[derive(Debug, Clone)]
pub struct Group {
    pub id: String,
    pub state: GroupState,
    pub state_since_ms: i64,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub generation: i32,
    pub leader: Option<String>,
    pub members: BTreeMap<String, Member>,
    /// Static members: instance id to member id.
    pub static_members: HashMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, until they join or time out.
    pub pending: HashMap<String, i64>,
    /// When the join phase ends at the latest.
    pub join_deadline_ms: Option<i64>,
    /// The first rebalance of an empty group waits `group.initial.rebalance.delay.ms` for
    /// more members instead of completing as soon as everyone known has joined.
    pub initial_join_until_ms: Option<i64>,
}

impl Group {
    pub fn new(id: &str, now_ms: i64) -> Self {
        Self {
            id: id.to_string(),
            state: GroupState::Empty,
            state_since_ms: now_ms,
            protocol_type: None,
            protocol: None,
            generation: 0,
            leader: None,
            members: BTreeMap::new(),
            static_members: HashMap::new(),
            pending: HashMap::new(),
            join_deadline_ms: None,
            initial_join_until_ms: None,
        }
    }

    pub fn set_state(&mut self, state: GroupState, now_ms: i64) {
        self.state = state;
        self.state_since_ms = now_ms;
    }

    /// Every member has rejoined and nobody is still expected.
    pub fn all_joined(&self) -> bool {
        self.pending.is_empty() && self.members.values().all(|m| m.awaiting_join.is_some())
    }

    /// The protocol every member supports that most members prefer.
    pub fn select_protocol(&self) -> Option<String> {
        let first = self.members.values().next()?;
        let candidates: Vec<&String> = first
            .protocols
            .iter()
            .map(|(n, _)| n)
            .filter(|n| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(p, _)| p == *n))
            })
            .collect();
        let mut votes: Vec<(usize, &String)> = candidates.iter().map(|c| (0, *c)).collect();
        for m in self.members.values() {
            if let Some((vote, _)) = m.protocols.iter().find(|(p, _)| candidates.contains(&p)) {
                if let Some(v) = votes.iter_mut().find(|(_, c)| *c == vote) {
                    v.0 += 1;
                }
            }
        }
        // The first candidate among those with the most votes.
        let best = votes.iter().map(|(n, _)| *n).max()?;
        votes
            .into_iter()
            .find(|(n, _)| *n == best)
            .map(|(_, c)| c.clone())
    }

    /// Whether a joining member's protocols fit the group's.
    pub fn supports(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.members.is_empty() {
            return true;
        }
        if self.protocol_type.as_deref() != Some(protocol_type) {
            return false;
        }
        protocols.iter().any(|(p, _)| {
            self.members
                .values()
                .all(|m| m.protocols.iter().any(|(q, _)| q == p))
        })
    }

    pub fn remove_member(&mut self, member_id: &str) -> Option<Member> {
        let m = self.members.remove(member_id)?;
        if let Some(instance) = &m.instance_id {
            if self.static_members.get(instance).map(String::as_str) == Some(member_id) {
                self.static_members.remove(instance);
            }
        }
        if self.leader.as_deref() == Some(member_id) {
            self.leader = self.members.keys().next().cloned();
        }
        Some(m)
    }

    /// The group's metadata as the record value Kafka stores.
    pub fn to_value(&self) -> GroupValue {
        let protocol = self.protocol.clone().unwrap_or_default();
        GroupValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol: self.protocol.clone(),
            leader: self.leader.clone(),
            state_timestamp_ms: self.state_since_ms,
            members: self
                .members
                .values()
                .map(|m| MemberValue {
                    member_id: m.id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: m.session_timeout_ms,
                    subscription: m.metadata(&protocol),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    /// Rebuilds a group from its stored metadata (at load). Members must heartbeat within
    /// their session timeout from `now_ms` to stay.
    pub fn from_value(id: &str, v: &GroupValue, now_ms: i64) -> Self {
        let mut g = Group::new(id, now_ms);
        g.protocol_type = Some(v.protocol_type.clone()).filter(|s| !s.is_empty());
        g.protocol = v.protocol.clone();
        g.generation = v.generation;
        g.leader = v.leader.clone();
        for m in &v.members {
            let protocol = v.protocol.clone().unwrap_or_default();
            if let Some(i) = &m.group_instance_id {
                g.static_members.insert(i.clone(), m.member_id.clone());
            }
            g.members.insert(
                m.member_id.clone(),
                Member {
                    id: m.member_id.clone(),
                    instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    session_timeout_ms: m.session_timeout_ms,
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    protocols: vec![(protocol, m.subscription.clone())],
                    assignment: m.assignment.clone(),
                    awaiting_join: None,
                    awaiting_sync: None,
                    session_deadline_ms: now_ms + i64::from(m.session_timeout_ms),
                },
            );
        }
        let state = if g.members.is_empty() {
            GroupState::Empty
        } else {
            GroupState::Stable
        };
        g.set_state(
            state,
            if v.state_timestamp_ms > 0 && state == GroupState::Empty {
                v.state_timestamp_ms
            } else {
                now_ms
            },
        );
        g
    }
}
