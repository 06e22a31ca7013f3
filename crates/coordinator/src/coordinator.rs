//! The group coordinator: every group, driven by requests and `now`, answering with the
//! records to append to `__consumer_offsets` and the replies to send.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::consumer_protocol_subscription::ConsumerProtocolSubscription;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, StrBytes};

use crate::group::{Group, GroupState};
use crate::journal::JournaledMap;
use crate::records::{GroupRecord, OffsetValue};
use crate::runtime::{self, BatchKind, Replayed, Shard};

fn s(v: impl Into<String>) -> StrBytes {
    StrBytes::from_string(v.into())
}

/// `(partition, offset, leader epoch, metadata)`; offset -1 where nothing is committed.
pub type CommittedOffset = (i32, i64, i32, String);

/// One group's committed offsets, by `(topic, partition)`.
pub type Offsets = BTreeMap<(String, i32), OffsetValue>;

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

/// What a call produced: records to append to the shard's `__consumer_offsets` partition,
/// and replies for held requests, sent once the records are durable. The group coordinator
/// changes its state as it handles a request; the runtime reverts the change if the records
/// cannot be appended (see [`runtime`]).
pub type Outcome = runtime::Outcome<GroupRecord, Reply>;

/// The groups of one `__consumer_offsets` partition.
#[derive(Debug, Default)]
pub struct GroupCoordinator {
    pub(crate) config: GroupConfig,
    /// Classic groups, including Kafka's "simple" groups: an empty classic group with no
    /// protocol type, made for offsets committed outside any group.
    pub(crate) groups: JournaledMap<String, Group>,
    /// KIP-848 consumer groups (membership only, in memory). Where an id is in both maps
    /// (a simple group rebuilt from offsets at load, then joined by KIP-848 members), the
    /// consumer group is the group; the classic entry is a member-less leftover.
    pub(crate) consumer_groups: JournaledMap<String, crate::consumer::ConsumerGroup>,
    /// Committed offsets of every group, classic or KIP-848, by group id: kept apart from
    /// both so that committing for a consumer group never makes a classic group.
    pub(crate) offsets: JournaledMap<String, Offsets>,
    /// Offsets committed inside transactions not yet ended, by producer id.
    pub(crate) pending_txn: JournaledMap<i64, crate::txn_offsets::PendingTxnOffsets>,
}

impl GroupCoordinator {
    pub fn new(config: GroupConfig) -> Self {
        Self {
            config,
            groups: JournaledMap::new(),
            consumer_groups: JournaledMap::new(),
            offsets: JournaledMap::new(),
            pending_txn: JournaledMap::new(),
        }
    }

    /// The classic group `id`.
    pub fn group(&self, id: &str) -> Option<&Group> {
        self.groups.get(id)
    }

    /// The committed offsets of group `id` (classic or KIP-848).
    pub fn committed(&self, id: &str) -> Option<&Offsets> {
        self.offsets.get(id)
    }

    /// Writes a tombstone for every committed offset of `id` and forgets them.
    fn delete_all_offsets(&mut self, id: &str, out: &mut Outcome) {
        for (topic, partition) in self.offsets.remove(id).unwrap_or_default().into_keys() {
            out.records.push(GroupRecord::Offset {
                group: id.to_string(),
                topic,
                partition,
                value: None,
            });
        }
    }

    /// Applies a record read back from `__consumer_offsets` (at load).
    pub fn replay(&mut self, record: GroupRecord, now: i64) {
        match record {
            GroupRecord::Offset {
                group,
                topic,
                partition,
                value,
            } => match value {
                Some(v) => {
                    // As in Kafka, offsets of a group nobody knows belong to a simple classic
                    // group. KIP-848 groups are not persisted, so after a restart this is
                    // what is left of one until its members rejoin.
                    if !self.consumer_groups.contains_key(&group) {
                        self.groups
                            .get_or_insert_with(group.clone(), || Group::new(&group, now));
                    }
                    self.offsets
                        .get_or_insert_with(group, Default::default)
                        .insert((topic, partition), v);
                }
                None => {
                    if let Some(o) = self.offsets.get_mut(&group) {
                        o.remove(&(topic, partition));
                        if o.is_empty() {
                            self.offsets.remove(&group);
                        }
                    }
                }
            },
            GroupRecord::Group { group, value } => match value {
                Some(v) => {
                    self.groups
                        .insert(group.clone(), Group::from_value(&group, &v, now));
                }
                None => {
                    // The group is deleted; offsets written after the tombstone stay, with a
                    // simple group to hold them (dropped by `finish_load` if there are none).
                    if let Some(g) = self.groups.get_mut(&group) {
                        *g = Group::new(&group, now);
                    }
                }
            },
        }
    }

    /// Drops groups left with neither members nor offsets after replay.
    pub fn finish_load(&mut self) {
        let offsets = &self.offsets;
        self.groups.retain(|id, g| {
            !g.members.is_empty() || g.protocol_type.is_some() || offsets.contains_key(id)
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

    /// Offsets expire `offsets.retention.minutes` after a moment that depends on the group,
    /// as in Kafka: for an empty classic group, after it became empty (for a simple group,
    /// after their commit); for a KIP-848 group, after their commit, and only for topics no
    /// member subscribes to. A classic group with members keeps all of its offsets. An empty
    /// classic group goes once its offsets have.
    fn expire_offsets(&mut self, now: i64, out: &mut Outcome) {
        let retention = self.config.offsets_retention_ms;
        let Self {
            groups,
            consumer_groups,
            offsets,
            ..
        } = self;
        let mut expired: Vec<(String, String, i32)> = Vec::new();
        for (id, committed) in offsets.iter() {
            // `since`: the moment every offset starts to age from, if not its commit time.
            let (since, subscribed) = if let Some(cg) = consumer_groups.get(id) {
                (None, cg.subscribed_topics())
            } else if let Some(g) = groups.get(id) {
                if g.state != GroupState::Empty || !g.members.is_empty() {
                    continue;
                }
                let since = g.protocol_type.is_some().then_some(g.state_since_ms);
                (since, BTreeSet::new())
            } else {
                (None, BTreeSet::new())
            };
            expired.extend(
                committed
                    .iter()
                    .filter(|((topic, _), v)| {
                        let base = since.unwrap_or(v.commit_timestamp_ms);
                        let due = match v.expire_timestamp_ms {
                            Some(expire) => now >= expire,
                            None => base.saturating_add(retention) <= now,
                        };
                        !subscribed.contains(topic) && due
                    })
                    .map(|((topic, partition), _)| (id.clone(), topic.clone(), *partition)),
            );
        }
        for (id, topic, partition) in expired {
            if let Some(committed) = offsets.get_mut(&id) {
                committed.remove(&(topic.clone(), partition));
            }
            out.records.push(GroupRecord::Offset {
                group: id,
                topic,
                partition,
                value: None,
            });
        }
        offsets.retain(|_, o| !o.is_empty());
        let gone: Vec<String> = groups
            .values()
            .filter(|g| {
                g.state == GroupState::Empty
                    && g.members.is_empty()
                    && !offsets.contains_key(&g.id)
                    && g.state_since_ms.saturating_add(retention) <= now
            })
            .map(|g| g.id.clone())
            .collect();
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
        let consumer = self.consumer_groups.get(&group_id);
        let is_consumer_group = consumer.is_some();
        let group_error = if group_id.is_empty() {
            Some(E::InvalidGroupId)
        } else if let Some(cg) = consumer {
            // KIP-848 groups: the member's epoch stands in for the generation. An empty one
            // takes commits from outside (admin clients, manual commits), as in Kafka.
            if generation < 0 && cg.members.is_empty() {
                None
            } else {
                match cg.members.get(&member_id) {
                    None => Some(E::UnknownMemberId),
                    Some(m) if generation != m.member_epoch => Some(E::StaleMemberEpoch),
                    Some(_) => None,
                }
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
                let refused = group_error.or_else(|| {
                    let metadata = p.committed_metadata.as_ref().map(|m| m.as_str());
                    partition_commit_error(
                        &topic,
                        p.partition_index,
                        metadata,
                        max_metadata,
                        &partition_exists,
                    )
                });
                let code = if let Some(e) = refused {
                    e.code()
                } else {
                    let mut value = OffsetValue::committed(
                        p.committed_offset,
                        p.committed_leader_epoch,
                        p.committed_metadata.as_ref().map(|m| m.as_str()),
                        now,
                    );
                    // OffsetCommit v1 may name the commit time (retention counts from it);
                    // v2-v4 may name how long to keep the offset.
                    if version == 1 && p.commit_timestamp != -1 {
                        value.commit_timestamp_ms = p.commit_timestamp;
                    }
                    if (2..=4).contains(&version) && req.retention_time_ms != -1 {
                        value.expire_timestamp_ms = Some(now.saturating_add(req.retention_time_ms));
                    }
                    if !is_consumer_group {
                        // A commit outside any group makes a simple group, as in Kafka.
                        self.groups
                            .get_or_insert_with(group_id.clone(), || Group::new(&group_id, now));
                    }
                    self.offsets
                        .get_or_insert_with(group_id.clone(), Default::default)
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
        let g = self.offsets.get(group);
        match wanted {
            Some(wanted) => wanted
                .iter()
                .map(|(topic, parts)| {
                    let ps = parts
                        .iter()
                        .map(|p| match g.and_then(|g| g.get(&(topic.clone(), *p))) {
                            Some(v) => (*p, v.offset, v.leader_epoch, v.metadata.clone()),
                            None => (*p, -1, -1, String::new()),
                        })
                        .collect();
                    (topic.clone(), ps)
                })
                .collect(),
            None => {
                let mut by_topic: BTreeMap<String, Vec<CommittedOffset>> = BTreeMap::new();
                if let Some(g) = g {
                    for ((t, p), v) in g {
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

    /// Topics a classic group's members subscribe to, read from the consumer-protocol
    /// metadata they sent for the group's protocol (every protocol they offered, while none
    /// is selected). `None` when any of it cannot be read.
    fn classic_subscribed_topics(g: &Group) -> Option<BTreeSet<String>> {
        let mut topics = BTreeSet::new();
        for m in g.members.values() {
            let metas: Vec<&bytes::Bytes> = match &g.protocol {
                // A member without metadata for the selected protocol tells nothing either.
                Some(p) => vec![&m.protocols.iter().find(|(n, _)| n == p)?.1],
                None => m.protocols.iter().map(|(_, meta)| meta).collect(),
            };
            for meta in metas {
                topics.extend(decode_subscription(meta)?);
            }
        }
        Some(topics)
    }

    /// OffsetDelete: removes committed offsets of partitions the group does not consume.
    ///
    /// A partition is refused with GROUP_SUBSCRIBED_TO_TOPIC while the group subscribes to
    /// its topic: for a KIP-848 group, a topic some member subscribes to (by name or regex);
    /// for a classic group of protocol type "consumer", a topic in some member's
    /// subscription. A classic group with members and another protocol type is refused
    /// whole (NON_EMPTY_GROUP). When a "consumer" group's subscriptions cannot be read
    /// (malformed or missing member metadata), the group is taken to consume every topic,
    /// so no offset of a non-empty group is deleted: Kafka's rule
    /// (`ClassicGroup::isSubscribedToTopic` answers true when it cannot tell), and the safe
    /// one, since a deleted offset of a live consumer sends it back to its reset policy.
    pub fn delete_offsets(&mut self, req: &OffsetDeleteRequest) -> (OffsetDeleteResponse, Outcome) {
        let mut out = Outcome::default();
        let group_id = req.group_id.to_string();
        let fail = |e: E| OffsetDeleteResponse::default().with_error_code(e.code());
        // `None`: every topic.
        let subscribed: Option<BTreeSet<String>> =
            if let Some(cg) = self.consumer_groups.get(&group_id) {
                Some(cg.subscribed_topics())
            } else if let Some(g) = self.groups.get(&group_id) {
                if g.members.is_empty() {
                    Some(BTreeSet::new())
                } else if g.protocol_type.as_deref() != Some("consumer") {
                    return (fail(E::NonEmptyGroup), out);
                } else {
                    Self::classic_subscribed_topics(g)
                }
            } else {
                return (fail(E::GroupIdNotFound), out);
            };
        let mut committed = self.offsets.remove(&group_id).unwrap_or_default();
        let topics = req
            .topics
            .iter()
            .map(|t| {
                let topic = t.name.to_string();
                let refused = subscribed.as_ref().is_none_or(|s| s.contains(&topic));
                let partitions = t
                    .partitions
                    .iter()
                    .map(|p| {
                        let r = offset_delete_response::OffsetDeleteResponsePartition::default()
                            .with_partition_index(p.partition_index);
                        if refused {
                            return r.with_error_code(E::GroupSubscribedToTopic.code());
                        }
                        if committed
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
        if !committed.is_empty() {
            self.offsets.insert(group_id, committed);
        }
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

    /// DescribeGroups, of classic groups only. Member metadata and assignments are shown once
    /// the group is Stable. Any other id, unknown or a KIP-848 group, is `Dead`, and from v6
    /// GROUP_ID_NOT_FOUND with Kafka's message (KIP-1043); before v6 Kafka adds no error.
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
                let dead = |message: String| {
                    let dead = base.clone().with_group_state(s("Dead"));
                    if version >= 6 {
                        dead.with_error_code(E::GroupIdNotFound.code())
                            .with_error_message(Some(s(message)))
                    } else {
                        dead
                    }
                };
                if self.consumer_groups.contains_key(id.as_str()) {
                    return dead(format!("Group {} is not a classic group.", id.as_str()));
                }
                let Some(g) = self.groups.get(id.as_str()) else {
                    return dead(format!("Group {} not found.", id.as_str()));
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
                let code = self.delete_group(id.as_str(), &mut out);
                delete_groups_response::DeletableGroupResult::default()
                    .with_group_id(id.clone())
                    .with_error_code(code)
            })
            .collect();
        (DeleteGroupsResponse::default().with_results(results), out)
    }

    /// Deletes one group and its offsets; returns the error code.
    fn delete_group(&mut self, id: &str, out: &mut Outcome) -> i16 {
        if let Some(cg) = self.consumer_groups.get(id) {
            if !cg.members.is_empty() {
                return E::NonEmptyGroup.code();
            }
            self.consumer_groups.remove(id);
        } else {
            match self.groups.get(id) {
                None => return E::GroupIdNotFound.code(),
                Some(g) if !g.members.is_empty() || g.state != GroupState::Empty => {
                    return E::NonEmptyGroup.code();
                }
                Some(_) => {}
            }
        }
        self.delete_all_offsets(id, out);
        // A classic entry beside a consumer group has no members (see `consumer_groups`).
        if self.groups.remove(id).is_some() {
            out.records.push(GroupRecord::Group {
                group: id.to_string(),
                value: None,
            });
        }
        0
    }
}

impl Shard for GroupCoordinator {
    type Record = GroupRecord;
    type Reply = Reply;

    fn replay(&mut self, entry: Replayed<'_, GroupRecord>, now: i64) {
        match entry {
            Replayed::Record {
                record,
                producer_id: Some(pid),
            } => self.replay_txn_record(pid, record),
            Replayed::Record { record, .. } => GroupCoordinator::replay(self, record.clone(), now),
            Replayed::Marker {
                producer_id,
                commit,
            } => self.complete_txn(producer_id, commit, now),
        }
    }

    fn finish_load(&mut self) {
        GroupCoordinator::finish_load(self)
    }

    fn on_durable(&mut self, _records: &[GroupRecord], _kind: BatchKind, _now: i64) {}

    fn begin(&mut self) {
        self.groups.begin();
        self.consumer_groups.begin();
        self.offsets.begin();
        self.pending_txn.begin();
    }

    fn commit(&mut self) {
        self.groups.commit();
        self.consumer_groups.commit();
        self.offsets.commit();
        self.pending_txn.commit();
    }

    fn revert(&mut self) {
        self.groups.revert();
        self.consumer_groups.revert();
        self.offsets.revert();
        self.pending_txn.revert();
    }
}

/// What refuses one partition of an offset commit (plain or transactional): an unknown
/// partition, or metadata over `offset.metadata.max.bytes`.
pub(crate) fn partition_commit_error(
    topic: &str,
    partition: i32,
    metadata: Option<&str>,
    metadata_bytes_max: usize,
    partition_exists: impl Fn(&str, i32) -> bool,
) -> Option<E> {
    if !partition_exists(topic, partition) {
        Some(E::UnknownTopicOrPartition)
    } else if metadata.is_some_and(|m| m.len() > metadata_bytes_max) {
        Some(E::OffsetMetadataTooLarge)
    } else {
        None
    }
}

/// The topics of a ConsumerProtocolSubscription (a version, then the subscription); `None`
/// when it cannot be read. Read as version 0, which every later version extends, as Kafka
/// reads it, so subscriptions from newer clients still count.
fn decode_subscription(meta: &bytes::Bytes) -> Option<Vec<String>> {
    let mut b = meta.clone();
    if b.len() < 2 || i16::from_be_bytes([b[0], b[1]]) < 0 {
        return None;
    }
    bytes::Buf::advance(&mut b, 2);
    let sub = ConsumerProtocolSubscription::decode(&mut b, 0).ok()?;
    Some(sub.topics.iter().map(|t| t.to_string()).collect())
}
