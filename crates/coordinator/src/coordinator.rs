//! The group coordinator: every group, driven by requests and `now`, answering with the
//! records to append to `__consumer_offsets` and the replies to send.

use std::collections::{BTreeMap, HashMap};

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::consumer_protocol_subscription::ConsumerProtocolSubscription;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, StrBytes};

use crate::group::{Group, GroupState, RequestId};
use crate::records::{GroupRecord, OffsetValue};

fn s(v: impl Into<String>) -> StrBytes {
    StrBytes::from_string(v.into())
}

/// `(partition, offset, leader epoch, metadata)`; offset -1 where nothing is committed.
pub type CommittedOffset = (i32, i64, i32, String);

/// Settings under Kafka's broker config names.
#[derive(Debug, Clone)]
pub struct GroupConfig {
    /// `group.min.session.timeout.ms`
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`
    pub max_session_timeout_ms: i32,
    /// `group.max.size`
    pub max_size: usize,
    /// `group.initial.rebalance.delay.ms`
    pub initial_rebalance_delay_ms: i64,
    /// `offsets.retention.minutes`, in ms
    pub offsets_retention_ms: i64,
    /// `offset.metadata.max.bytes`
    pub offset_metadata_max_bytes: usize,
    /// `group.consumer.session.timeout.ms` (KIP-848 groups)
    pub consumer_session_timeout_ms: i32,
    /// `group.consumer.heartbeat.interval.ms` (KIP-848 groups)
    pub consumer_heartbeat_interval_ms: i32,
}

impl Default for GroupConfig {
    fn default() -> Self {
        Self {
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            max_size: i32::MAX as usize,
            initial_rebalance_delay_ms: 3_000,
            offsets_retention_ms: 7 * 24 * 3600 * 1000,
            offset_metadata_max_bytes: 4096,
            consumer_session_timeout_ms: 45_000,
            consumer_heartbeat_interval_ms: 5_000,
        }
    }
}

/// A reply to a request that was held (JoinGroup, SyncGroup).
#[derive(Debug, Clone)]
pub enum Reply {
    Join(JoinGroupResponse),
    Sync(SyncGroupResponse),
}

/// What a call produced: records to append (then replay is a no-op: the state already
/// holds them), and replies for held requests, to send once the records are appended.
#[derive(Debug, Default)]
pub struct Outcome {
    pub records: Vec<GroupRecord>,
    pub replies: Vec<(RequestId, Reply)>,
}

#[derive(Debug, Default)]
pub struct GroupCoordinator {
    pub(crate) config: GroupConfig,
    /// Classic groups, and the committed offsets of every group.
    pub(crate) groups: HashMap<String, Group>,
    /// KIP-848 consumer groups (membership only; their offsets live in `groups`).
    pub(crate) consumer_groups: HashMap<String, crate::consumer::ConsumerGroup>,
}

impl GroupCoordinator {
    pub fn new(config: GroupConfig) -> Self {
        Self {
            config,
            groups: HashMap::new(),
            consumer_groups: HashMap::new(),
        }
    }

    pub fn group(&self, id: &str) -> Option<&Group> {
        self.groups.get(id)
    }

    /// Applies a record read back from `__consumer_offsets` (at load).
    pub fn replay(&mut self, record: GroupRecord, now: i64) {
        match record {
            GroupRecord::Offset {
                group,
                topic,
                partition,
                value,
            } => {
                let g = self
                    .groups
                    .entry(group.clone())
                    .or_insert_with(|| Group::new(&group, now));
                match value {
                    Some(v) => {
                        g.offsets.insert((topic, partition), v);
                    }
                    None => {
                        g.offsets.remove(&(topic, partition));
                    }
                }
            }
            GroupRecord::Group { group, value } => match value {
                Some(v) => {
                    let offsets = self
                        .groups
                        .remove(&group)
                        .map(|g| g.offsets)
                        .unwrap_or_default();
                    self.groups
                        .insert(group.clone(), Group::from_value(&group, &v, offsets, now));
                }
                None => {
                    // The group is deleted; offsets written after the tombstone stay.
                    if let Some(g) = self.groups.get_mut(&group) {
                        *g = Group {
                            offsets: std::mem::take(&mut g.offsets),
                            ..Group::new(&group, now)
                        };
                    }
                }
            },
        }
    }

    /// Drops groups left with neither members nor offsets after replay.
    pub fn finish_load(&mut self) {
        self.groups.retain(|_, g| {
            !g.members.is_empty() || !g.offsets.is_empty() || g.protocol_type.is_some()
        });
    }

    /// Fires every timeout due at `now`; call it often (every 100 ms or so).
    pub fn tick(&mut self, now: i64) -> Outcome {
        let mut out = Outcome::default();
        self.tick_classic(now, &mut out);
        self.tick_consumer(now);
        self.expire_offsets(now, &mut out);
        out
    }

    /// Offsets of an empty group expire `offsets.retention.minutes` after it became empty
    /// (for a group that never had members, after their commit); the group goes with them.
    fn expire_offsets(&mut self, now: i64, out: &mut Outcome) {
        let retention = self.config.offsets_retention_ms;
        let mut gone = Vec::new();
        for g in self.groups.values_mut() {
            if g.state != GroupState::Empty || !g.members.is_empty() {
                continue;
            }
            let expired: Vec<(String, i32)> = g
                .offsets
                .iter()
                .filter(|(_, v)| {
                    let base = if g.protocol_type.is_some() {
                        g.state_since_ms
                    } else {
                        v.commit_timestamp_ms
                    };
                    base.saturating_add(retention) <= now
                })
                .map(|(k, _)| k.clone())
                .collect();
            for (topic, partition) in expired {
                g.offsets.remove(&(topic.clone(), partition));
                out.records.push(GroupRecord::Offset {
                    group: g.id.clone(),
                    topic,
                    partition,
                    value: None,
                });
            }
            if g.offsets.is_empty() && g.state_since_ms.saturating_add(retention) <= now {
                gone.push(g.id.clone());
            }
        }
        for id in gone {
            if let Some(g) = self.groups.remove(&id) {
                if g.protocol_type.is_some() {
                    out.records.push(GroupRecord::Group {
                        group: id,
                        value: None,
                    });
                }
            }
        }
    }

    /// OffsetCommit. `partition_exists` says whether a topic partition is real. Topic names,
    /// not ids: the caller resolves ids first.
    pub fn commit_offsets(
        &mut self,
        req: &OffsetCommitRequest,
        version: i16,
        now: i64,
        partition_exists: impl Fn(&str, i32) -> bool,
    ) -> (OffsetCommitResponse, Outcome) {
        let mut out = Outcome::default();
        let group_id = req.group_id.to_string();
        let member_id = req.member_id.to_string();
        let generation = req.generation_id_or_member_epoch;
        let consumer = self
            .consumer_groups
            .get_mut(&group_id)
            .filter(|g| !g.members.is_empty());
        let group_error = if group_id.is_empty() {
            Some(E::InvalidGroupId)
        } else if let Some(cg) = consumer {
            // KIP-848 groups: the member's epoch stands in for the generation.
            match cg.members.get_mut(&member_id) {
                None if generation < 0 && member_id.is_empty() => Some(E::UnknownMemberId),
                None => Some(E::UnknownMemberId),
                Some(m) if generation != m.member_epoch => Some(E::StaleMemberEpoch),
                Some(_) => None,
            }
        } else {
            match self.groups.get_mut(&group_id) {
                None if generation < 0 => None,
                None => Some(E::IllegalGeneration),
                Some(g) if generation < 0 && member_id.is_empty() => {
                    if g.members.is_empty() {
                        None
                    } else {
                        Some(E::UnknownMemberId)
                    }
                }
                Some(g) => {
                    let instance = req.group_instance_id.as_ref().filter(|_| version >= 7);
                    if instance.is_some_and(|i| {
                        g.static_members
                            .get(i.as_str())
                            .is_some_and(|m| *m != member_id)
                    }) {
                        Some(E::FencedInstanceId)
                    } else if let Some(m) = g.members.get_mut(&member_id) {
                        m.session_deadline_ms = now + i64::from(m.session_timeout_ms);
                        if generation != g.generation {
                            Some(E::IllegalGeneration)
                        } else if g.state == GroupState::CompletingRebalance {
                            // During PreparingRebalance commits are still fine, as in Kafka:
                            // members commit before they give their partitions up.
                            Some(E::RebalanceInProgress)
                        } else {
                            None
                        }
                    } else {
                        Some(E::UnknownMemberId)
                    }
                }
            }
        };
        let max_metadata = self.config.offset_metadata_max_bytes;
        let mut topics = Vec::new();
        for t in &req.topics {
            let topic = t.name.to_string();
            let mut partitions = Vec::new();
            for p in &t.partitions {
                let code = if let Some(e) = group_error {
                    e.code()
                } else if !partition_exists(&topic, p.partition_index) {
                    E::UnknownTopicOrPartition.code()
                } else if p
                    .committed_metadata
                    .as_ref()
                    .is_some_and(|m| m.len() > max_metadata)
                {
                    E::OffsetMetadataTooLarge.code()
                } else {
                    let value = OffsetValue {
                        offset: p.committed_offset,
                        leader_epoch: p.committed_leader_epoch,
                        metadata: p
                            .committed_metadata
                            .as_ref()
                            .map(|m| m.to_string())
                            .unwrap_or_default(),
                        commit_timestamp_ms: now,
                    };
                    let g = self
                        .groups
                        .entry(group_id.clone())
                        .or_insert_with(|| Group::new(&group_id, now));
                    g.offsets
                        .insert((topic.clone(), p.partition_index), value.clone());
                    out.records.push(GroupRecord::Offset {
                        group: group_id.clone(),
                        topic: topic.clone(),
                        partition: p.partition_index,
                        value: Some(value),
                    });
                    0
                };
                partitions.push(
                    offset_commit_response::OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code),
                );
            }
            topics.push(
                offset_commit_response::OffsetCommitResponseTopic::default()
                    .with_name(t.name.clone())
                    .with_topic_id(t.topic_id)
                    .with_partitions(partitions),
            );
        }
        (OffsetCommitResponse::default().with_topics(topics), out)
    }

    /// Committed offsets of `group` for the wanted partitions (`None`: every committed one),
    /// as `(topic, partition, offset, leader epoch, metadata)`; -1 where nothing is committed.
    pub fn fetch_offsets(
        &self,
        group: &str,
        wanted: Option<&[(String, Vec<i32>)]>,
    ) -> Vec<(String, Vec<CommittedOffset>)> {
        let g = self.groups.get(group);
        match wanted {
            Some(wanted) => wanted
                .iter()
                .map(|(topic, parts)| {
                    let ps = parts
                        .iter()
                        .map(
                            |p| match g.and_then(|g| g.offsets.get(&(topic.clone(), *p))) {
                                Some(v) => (*p, v.offset, v.leader_epoch, v.metadata.clone()),
                                None => (*p, -1, -1, String::new()),
                            },
                        )
                        .collect();
                    (topic.clone(), ps)
                })
                .collect(),
            None => {
                let mut by_topic: BTreeMap<String, Vec<CommittedOffset>> = BTreeMap::new();
                if let Some(g) = g {
                    for ((t, p), v) in &g.offsets {
                        by_topic.entry(t.clone()).or_default().push((
                            *p,
                            v.offset,
                            v.leader_epoch,
                            v.metadata.clone(),
                        ));
                    }
                }
                by_topic.into_iter().collect()
            }
        }
    }

    /// Topics the group's members subscribe to, read from their consumer-protocol metadata.
    fn subscribed_topics(g: &Group) -> Vec<String> {
        let mut topics = Vec::new();
        if g.protocol_type.as_deref() != Some("consumer") {
            return topics;
        }
        for m in g.members.values() {
            for (_, meta) in &m.protocols {
                let mut b = meta.clone();
                if b.len() < 2 {
                    continue;
                }
                let version = i16::from_be_bytes([b[0], b[1]]);
                bytes::Buf::advance(&mut b, 2);
                if let Ok(sub) = ConsumerProtocolSubscription::decode(&mut b, version.clamp(0, 3)) {
                    topics.extend(sub.topics.iter().map(|t| t.to_string()));
                }
            }
        }
        topics.sort();
        topics.dedup();
        topics
    }

    /// OffsetDelete: removes committed offsets of partitions the group does not consume.
    pub fn delete_offsets(&mut self, req: &OffsetDeleteRequest) -> (OffsetDeleteResponse, Outcome) {
        let mut out = Outcome::default();
        let group_id = req.group_id.to_string();
        let Some(g) = self.groups.get_mut(&group_id) else {
            return (
                OffsetDeleteResponse::default().with_error_code(E::GroupIdNotFound.code()),
                out,
            );
        };
        if !g.members.is_empty() && g.protocol_type.as_deref() != Some("consumer") {
            return (
                OffsetDeleteResponse::default().with_error_code(E::NonEmptyGroup.code()),
                out,
            );
        }
        let subscribed = if g.members.is_empty() {
            Vec::new()
        } else {
            Self::subscribed_topics(g)
        };
        let topics = req
            .topics
            .iter()
            .map(|t| {
                let topic = t.name.to_string();
                let partitions = t
                    .partitions
                    .iter()
                    .map(|p| {
                        let r = offset_delete_response::OffsetDeleteResponsePartition::default()
                            .with_partition_index(p.partition_index);
                        if subscribed.contains(&topic) {
                            return r.with_error_code(E::GroupSubscribedToTopic.code());
                        }
                        if g.offsets
                            .remove(&(topic.clone(), p.partition_index))
                            .is_some()
                        {
                            out.records.push(GroupRecord::Offset {
                                group: group_id.clone(),
                                topic: topic.clone(),
                                partition: p.partition_index,
                                value: None,
                            });
                        }
                        r
                    })
                    .collect();
                offset_delete_response::OffsetDeleteResponseTopic::default()
                    .with_name(t.name.clone())
                    .with_partitions(partitions)
            })
            .collect();
        (OffsetDeleteResponse::default().with_topics(topics), out)
    }

    /// ListGroups, with Kafka's state filter (v4+) and type filter (v5+).
    pub fn list_groups(&self, req: &ListGroupsRequest, version: i16) -> ListGroupsResponse {
        let states: Vec<String> = req
            .states_filter
            .iter()
            .map(|s| s.to_ascii_lowercase())
            .collect();
        let types: Vec<String> = req
            .types_filter
            .iter()
            .map(|s| s.to_ascii_lowercase())
            .collect();
        // (id, protocol type, state, type)
        let mut listed: Vec<(String, String, &'static str, &'static str)> = self
            .groups
            .values()
            .filter(|g| !self.consumer_groups.contains_key(&g.id))
            .map(|g| {
                (
                    g.id.clone(),
                    g.protocol_type.clone().unwrap_or_default(),
                    g.state.name(),
                    "classic",
                )
            })
            .collect();
        listed.extend(
            self.consumer_groups
                .values()
                .map(|g| (g.id.clone(), "consumer".to_string(), g.state(), "consumer")),
        );
        listed.retain(|(_, _, state, kind)| {
            (states.is_empty() || states.contains(&state.to_ascii_lowercase()))
                && (types.is_empty() || types.iter().any(|t| t == kind))
        });
        listed.sort();
        let groups = listed
            .into_iter()
            .map(|(id, protocol_type, state, kind)| {
                let mut l = list_groups_response::ListedGroup::default()
                    .with_group_id(GroupId(s(id)))
                    .with_protocol_type(s(protocol_type));
                if version >= 4 {
                    l.group_state = s(state);
                }
                if version >= 5 {
                    l.group_type = s(kind);
                }
                l
            })
            .collect();
        ListGroupsResponse::default().with_groups(groups)
    }

    /// DescribeGroups. Member metadata and assignments are shown once the group is Stable.
    pub fn describe_groups(
        &self,
        req: &DescribeGroupsRequest,
        version: i16,
    ) -> DescribeGroupsResponse {
        let groups = req
            .groups
            .iter()
            .map(|id| {
                let base =
                    describe_groups_response::DescribedGroup::default().with_group_id(id.clone());
                let Some(g) = self.groups.get(id.as_str()) else {
                    let dead = base.with_group_state(s("Dead"));
                    // From v6 an unknown group is an error (KIP-1043); before, just Dead.
                    return if version >= 6 {
                        dead.with_error_code(E::GroupIdNotFound.code())
                            .with_error_message(Some(s(format!(
                                "Group {} not found.",
                                id.as_str()
                            ))))
                    } else {
                        dead
                    };
                };
                let protocol = g.protocol.clone().unwrap_or_default();
                let stable = g.state == GroupState::Stable;
                let members = g
                    .members
                    .values()
                    .map(|m| {
                        let mut d = describe_groups_response::DescribedGroupMember::default()
                            .with_member_id(s(m.id.clone()))
                            .with_client_id(s(m.client_id.clone()))
                            .with_client_host(s(m.client_host.clone()));
                        if version >= 4 {
                            d.group_instance_id = m.instance_id.clone().map(s);
                        }
                        if stable {
                            d.member_metadata = m.metadata(&protocol);
                            d.member_assignment = m.assignment.clone();
                        }
                        d
                    })
                    .collect();
                base.with_group_state(s(g.state.name()))
                    .with_protocol_type(s(g.protocol_type.clone().unwrap_or_default()))
                    .with_protocol_data(s(if stable { protocol } else { String::new() }))
                    .with_members(members)
            })
            .collect();
        DescribeGroupsResponse::default().with_groups(groups)
    }

    /// DeleteGroups: only groups with no members; their offsets go with them.
    pub fn delete_groups(&mut self, req: &DeleteGroupsRequest) -> (DeleteGroupsResponse, Outcome) {
        let mut out = Outcome::default();
        let results = req
            .groups_names
            .iter()
            .map(|id| {
                let r = delete_groups_response::DeletableGroupResult::default()
                    .with_group_id(id.clone());
                if let Some(cg) = self.consumer_groups.get(id.as_str()) {
                    if !cg.members.is_empty() {
                        return r.with_error_code(E::NonEmptyGroup.code());
                    }
                    self.consumer_groups.remove(id.as_str());
                    if !self.groups.contains_key(id.as_str()) {
                        return r;
                    }
                }
                let code = match self.groups.get(id.as_str()) {
                    None => E::GroupIdNotFound.code(),
                    Some(g) if !g.members.is_empty() || g.state != GroupState::Empty => {
                        E::NonEmptyGroup.code()
                    }
                    Some(_) => {
                        if let Some(g) = self.groups.remove(id.as_str()) {
                            for (topic, partition) in g.offsets.into_keys() {
                                out.records.push(GroupRecord::Offset {
                                    group: g.id.clone(),
                                    topic,
                                    partition,
                                    value: None,
                                });
                            }
                            out.records.push(GroupRecord::Group {
                                group: g.id,
                                value: None,
                            });
                        }
                        0
                    }
                };
                r.with_error_code(code)
            })
            .collect();
        (DeleteGroupsResponse::default().with_results(results), out)
    }
}
