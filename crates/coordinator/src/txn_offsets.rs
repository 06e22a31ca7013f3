//! Offsets committed inside a transaction (TxnOffsetCommit, `sendOffsetsToTransaction`).
//!
//! They are written to `__consumer_offsets` as a transactional batch of the producer, and held
//! apart, per producer id, until the transaction's marker reaches this partition: COMMIT makes
//! them the group's committed offsets, ABORT drops them. Replay at load does the same with the
//! batches and markers it reads. OffsetFetch with `require_stable` answers
//! UNSTABLE_OFFSET_COMMIT for a partition with offsets still held.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};

use crate::coordinator::{partition_commit_error, GroupCoordinator, Offsets, Outcome};
use crate::group::{Group, GroupState};
use crate::records::{GroupRecord, OffsetValue};
use crate::runtime::BatchKind;

/// Offsets held for open transactions: producer id -> group -> offsets.
pub type PendingTxnOffsets = BTreeMap<String, Offsets>;

impl GroupCoordinator {
    /// The group check of a transactional commit (Kafka's `validateOffsetCommit` with
    /// `isTransactional`): no REBALANCE_IN_PROGRESS, and old requests without member or
    /// generation are accepted.
    fn txn_commit_error(&self, req: &TxnOffsetCommitRequest, version: i16) -> Option<E> {
        let group_id = req.group_id.as_str();
        if group_id.is_empty() {
            return Some(E::InvalidGroupId);
        }
        let generation = if version >= 3 { req.generation_id } else { -1 };
        let member_id = if version >= 3 {
            req.member_id.as_str()
        } else {
            ""
        };
        let instance = req.group_instance_id.as_ref().filter(|_| version >= 3);
        if let Some(cg) = self.consumer_groups.get(group_id) {
            if generation < 0 && cg.members.is_empty() {
                return None;
            }
            return match cg.members.get(member_id) {
                None => Some(E::UnknownMemberId),
                Some(m) if generation != m.member_epoch => Some(E::IllegalGeneration),
                Some(_) => None,
            };
        }
        let Some(g) = self.groups.get(group_id) else {
            return (generation >= 0).then_some(E::IllegalGeneration);
        };
        if g.state == GroupState::Dead {
            return Some(E::CoordinatorNotAvailable);
        }
        if generation < 0 && member_id.is_empty() && instance.is_none() {
            return None;
        }
        if let Some(i) = instance {
            match g.static_members.get(i.as_str()) {
                None => return Some(E::UnknownMemberId),
                Some(m) if m != member_id => return Some(E::FencedInstanceId),
                Some(_) => {}
            }
        }
        if !g.members.contains_key(member_id) {
            return Some(E::UnknownMemberId);
        }
        (generation != g.generation).then_some(E::IllegalGeneration)
    }

    /// TxnOffsetCommit: checks the group and each partition, and holds the offsets for the
    /// producer's transaction. The records go out as one transactional batch.
    pub fn txn_commit_offsets(
        &mut self,
        req: &TxnOffsetCommitRequest,
        version: i16,
        now: i64,
        partition_exists: impl Fn(&str, i32) -> bool,
    ) -> (TxnOffsetCommitResponse, Outcome) {
        let mut out = Outcome {
            kind: BatchKind::Transactional {
                producer_id: req.producer_id.0,
                producer_epoch: req.producer_epoch,
            },
            ..Outcome::default()
        };
        let group_id = req.group_id.to_string();
        let group_error = self.txn_commit_error(req, version);
        let max_metadata = self.config.offset_metadata_max_bytes;
        let mut held = Offsets::new();
        let mut topics = Vec::with_capacity(req.topics.len());
        for t in &req.topics {
            let topic = t.name.to_string();
            let mut partitions = Vec::with_capacity(t.partitions.len());
            for p in &t.partitions {
                let error = group_error.or_else(|| {
                    let metadata = p.committed_metadata.as_ref().map(|m| m.as_str());
                    partition_commit_error(
                        &topic,
                        p.partition_index,
                        metadata,
                        max_metadata,
                        &partition_exists,
                    )
                });
                let error = if error.is_some() {
                    error
                } else {
                    let value = OffsetValue::committed(
                        p.committed_offset,
                        p.committed_leader_epoch,
                        p.committed_metadata.as_ref().map(|m| m.as_str()),
                        now,
                    );
                    held.insert((topic.clone(), p.partition_index), value.clone());
                    out.records.push(GroupRecord::Offset {
                        group: group_id.clone(),
                        topic: topic.clone(),
                        partition: p.partition_index,
                        value: Some(value),
                    });
                    None
                };
                partitions.push(
                    TxnOffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(error.map_or(0, |e| e.code())),
                );
            }
            topics.push(
                TxnOffsetCommitResponseTopic::default()
                    .with_name(t.name.clone())
                    .with_partitions(partitions),
            );
        }
        if !held.is_empty() {
            if !self.groups.contains_key(&group_id) && !self.consumer_groups.contains_key(&group_id)
            {
                // As for plain commits: offsets outside any group make a simple group.
                self.groups
                    .get_or_insert_with(group_id.clone(), || Group::new(&group_id, now));
            }
            self.hold_txn_offsets(req.producer_id.0, &group_id, held);
        }
        (TxnOffsetCommitResponse::default().with_topics(topics), out)
    }

    fn hold_txn_offsets(&mut self, producer_id: i64, group: &str, offsets: Offsets) {
        self.pending_txn
            .get_or_insert_with(producer_id, Default::default)
            .entry(group.to_string())
            .or_default()
            .extend(offsets);
    }

    /// A transaction marker for `producer_id` reached this partition.
    pub fn complete_txn(&mut self, producer_id: i64, commit: bool, now: i64) {
        let Some(by_group) = self.pending_txn.remove(&producer_id) else {
            return;
        };
        if !commit {
            return;
        }
        for (group, offsets) in by_group {
            if !self.groups.contains_key(&group) && !self.consumer_groups.contains_key(&group) {
                self.groups
                    .get_or_insert_with(group.clone(), || Group::new(&group, now));
            }
            self.offsets
                .get_or_insert_with(group, Default::default)
                .extend(offsets);
        }
    }

    /// Replays a record of a transactional batch: held until its marker.
    pub(crate) fn replay_txn_record(&mut self, producer_id: i64, record: &GroupRecord) {
        if let GroupRecord::Offset {
            group,
            topic,
            partition,
            value: Some(v),
        } = record
        {
            let offsets = Offsets::from([((topic.clone(), *partition), v.clone())]);
            self.hold_txn_offsets(producer_id, group, offsets);
        }
    }

    /// Partitions of `group` with transactional offsets not yet committed or aborted.
    pub fn unstable_offsets(&self, group: &str) -> BTreeSet<(String, i32)> {
        self.pending_txn
            .values()
            .filter_map(|by_group| by_group.get(group))
            .flat_map(|o| o.keys().cloned())
            .collect()
    }
}
