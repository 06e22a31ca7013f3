//! ListGroups, DescribeGroups (and ConsumerGroupDescribe for KIP-848 groups), DeleteGroups,
//! and a group's offsets: OffsetFetch, OffsetCommit, OffsetDelete.

use std::collections::BTreeMap;

use bytes::{Buf, Bytes};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::{
    consumer_group_describe_response, describe_groups_response, ApiKey,
    ConsumerGroupDescribeRequest, ConsumerProtocolAssignment, DeleteGroupsRequest,
    DescribeGroupsRequest, GroupId, ListGroupsRequest, OffsetCommitRequest, OffsetDeleteRequest,
    OffsetFetchRequest, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};

use super::{
    check_msg, s, should_retry, Admin, GroupDescription, GroupListing, MemberDescription,
    OffsetAndMetadata,
};
use crate::cluster::Lane;
use crate::error::{Error, KafkaCode, Result};
use crate::types::TopicPartition;

/// The highest ConsumerProtocolAssignment version the codec knows.
const ASSIGNMENT_VERSION_MAX: i16 = 3;

impl Admin {
    /// Every group on every broker, sorted by id.
    pub async fn list_groups(&self) -> Result<Vec<GroupListing>> {
        let view = self
            .retrying(|| self.cluster.refresh(Some(&[]), false))
            .await?;
        let mut nodes: Vec<i32> = view.brokers.keys().copied().collect();
        nodes.sort_unstable();
        let mut all: BTreeMap<String, GroupListing> = BTreeMap::new();
        for node in nodes {
            let listed = self.retrying(|| self.list_groups_on(node)).await?;
            for g in listed {
                all.entry(g.group_id.clone()).or_insert(g);
            }
        }
        Ok(all.into_values().collect())
    }

    async fn list_groups_on(&self, node: i32) -> Result<Vec<GroupListing>> {
        let conn = self.cluster.conn(node, Lane::Data).await?;
        let (resp, v) = conn.send_versioned(&ListGroupsRequest::default()).await?;
        crate::error::check(resp.error_code, || format!("ListGroups on broker {node}"))?;
        Ok(resp
            .groups
            .iter()
            .map(|g| GroupListing {
                group_id: g.group_id.to_string(),
                protocol_type: g.protocol_type.to_string(),
                state: (v >= 4).then(|| g.group_state.to_string()),
                group_type: (v >= 5).then(|| g.group_type.to_string()),
            })
            .collect())
    }

    /// Each group's state, protocol and members with their assignments, in the order asked.
    /// A group no broker knows fails the call with `GROUP_ID_NOT_FOUND`.
    ///
    /// Classic groups come from DescribeGroups. A KIP-848 group is not a classic group, so
    /// DescribeGroups answers GROUP_ID_NOT_FOUND (v6+) or `Dead` for it (and a broker that
    /// keeps offsets in a classic placeholder may call it an empty group without a
    /// protocol); such groups are asked about again with ConsumerGroupDescribe, as Kafka's
    /// own admin client does.
    pub async fn describe_groups(&self, groups: &[String]) -> Result<Vec<GroupDescription>> {
        let results = self
            .per_key(groups.iter().cloned(), |ids| self.describe_round(ids))
            .await?;
        groups
            .iter()
            .map(|g| {
                results
                    .get(g)
                    .cloned()
                    .unwrap_or_else(|| Err(Error::protocol(format!("no answer for group {g}"))))
            })
            .collect()
    }

    async fn describe_round(
        &self,
        ids: Vec<String>,
    ) -> Result<Vec<(String, Result<GroupDescription>)>> {
        let (by_node, mut out) = self.by_coordinator(ids).await;
        for (node, ids) in by_node {
            match self.describe_on(node, &ids).await {
                Ok(rs) => out.extend(rs),
                Err(e) => out.extend(ids.into_iter().map(|g| (g, Err(e.clone())))),
            }
        }
        Ok(out)
    }

    async fn describe_on(
        &self,
        node: i32,
        ids: &[String],
    ) -> Result<Vec<(String, Result<GroupDescription>)>> {
        let conn = self.cluster.conn(node, Lane::Data).await?;
        let req = DescribeGroupsRequest::default()
            .with_groups(ids.iter().map(|g| GroupId(s(g))).collect());
        let resp = conn.send(&req).await?;
        let mut out = Vec::new();
        let mut ask_consumer = Vec::new();
        for g in &resp.groups {
            let id = g.group_id.to_string();
            let not_found = g.error_code == KafkaCode::GROUP_ID_NOT_FOUND.0
                || (g.error_code == 0 && g.group_state.as_str() == "Dead");
            let offsets_only = g.error_code == 0
                && g.group_state.as_str() == "Empty"
                && g.protocol_type.is_empty()
                && g.members.is_empty();
            if (not_found || offsets_only) && conn.supports(ApiKey::ConsumerGroupDescribe) {
                ask_consumer.push((id, not_found, g));
                continue;
            }
            let r = if not_found {
                Err(Error::kafka(69, format!("group {id}")))
            } else {
                check_msg(g.error_code, g.error_message.as_ref(), || {
                    format!("group {id}")
                })
                .and_then(|_| classic_description(g))
            };
            out.push((id, r));
        }
        if ask_consumer.is_empty() {
            return Ok(out);
        }
        let req = ConsumerGroupDescribeRequest::default().with_group_ids(
            ask_consumer
                .iter()
                .map(|(id, _, _)| GroupId(s(id)))
                .collect(),
        );
        let resp = conn.send(&req).await?;
        for (id, not_found, classic) in ask_consumer {
            let found = resp.groups.iter().find(|c| c.group_id.as_str() == id);
            let r = match found {
                Some(c) if c.error_code == 0 => Ok(self.consumer_description(c)),
                Some(c) if c.error_code != KafkaCode::GROUP_ID_NOT_FOUND.0 => {
                    check_msg(c.error_code, c.error_message.as_ref(), || {
                        format!("group {id}")
                    })
                    .map(|_| self.consumer_description(c))
                }
                _ if not_found => Err(Error::kafka(69, format!("group {id}"))),
                _ => classic_description(classic),
            };
            out.push((id, r));
        }
        Ok(out)
    }

    fn consumer_description(
        &self,
        g: &consumer_group_describe_response::DescribedGroup,
    ) -> GroupDescription {
        let view = self.cluster.view();
        let mut members: Vec<MemberDescription> = g
            .members
            .iter()
            .map(|m| {
                let mut assignment = Vec::new();
                for t in &m.assignment.topic_partitions {
                    let name = if t.topic_name.is_empty() {
                        // Older brokers may leave names out; the metadata cache knows ids.
                        view.topics
                            .values()
                            .find(|i| i.id == t.topic_id)
                            .map(|i| i.name.clone())
                    } else {
                        Some(t.topic_name.to_string())
                    };
                    let Some(name) = name else {
                        tracing::debug!(topic_id = %t.topic_id, "assigned topic id not in metadata");
                        continue;
                    };
                    assignment.extend(t.partitions.iter().map(|p| TopicPartition::new(&name, *p)));
                }
                assignment.sort();
                MemberDescription {
                    member_id: m.member_id.to_string(),
                    group_instance_id: m.instance_id.as_ref().map(|i| i.to_string()),
                    client_id: m.client_id.to_string(),
                    host: m.client_host.to_string(),
                    assignment,
                }
            })
            .collect();
        members.sort_by(|a, b| a.member_id.cmp(&b.member_id));
        GroupDescription {
            group_id: g.group_id.to_string(),
            state: g.group_state.to_string(),
            protocol_type: "consumer".into(),
            protocol: g.assignor_name.to_string(),
            group_type: "consumer".into(),
            members,
        }
    }

    /// Deletes groups that have no members, with their offsets; one answer per distinct id,
    /// in the order given.
    pub async fn delete_groups(&self, groups: &[String]) -> Result<Vec<(String, Result<()>)>> {
        let mut order: Vec<String> = Vec::new();
        for g in groups {
            if !order.contains(g) {
                order.push(g.clone());
            }
        }
        let mut results = self
            .per_key(order.clone(), |ids| async move {
                let (by_node, mut out) = self.by_coordinator(ids).await;
                for (node, ids) in by_node {
                    let sent = async {
                        let conn = self.cluster.conn(node, Lane::Data).await?;
                        let req = DeleteGroupsRequest::default()
                            .with_groups_names(ids.iter().map(|g| GroupId(s(g))).collect());
                        conn.send(&req).await
                    };
                    match sent.await {
                        Ok(resp) => out.extend(resp.results.iter().map(|r| {
                            let id = r.group_id.to_string();
                            let res = crate::error::check(r.error_code, || format!("group {id}"));
                            (id, res)
                        })),
                        Err(e) => out.extend(ids.into_iter().map(|g| (g, Err(e.clone())))),
                    }
                }
                Ok(out)
            })
            .await?;
        Ok(order
            .into_iter()
            .map(|g| {
                let r = results
                    .remove(&g)
                    .unwrap_or_else(|| Err(Error::protocol(format!("no answer for group {g}"))));
                (g, r)
            })
            .collect())
    }

    /// The group's committed offsets, for every partition it committed.
    pub async fn list_group_offsets(
        &self,
        group: &str,
    ) -> Result<BTreeMap<TopicPartition, OffsetAndMetadata>> {
        self.retrying(|| async {
            let node = self.cluster.find_coordinator(group, 0).await?;
            let conn = self.cluster.conn(node, Lane::Data).await?;
            let v = conn.version_for::<OffsetFetchRequest>()?;
            let mut req = OffsetFetchRequest::default();
            if v >= 8 {
                req.groups = vec![OffsetFetchRequestGroup::default()
                    .with_group_id(GroupId(s(group)))
                    .with_topics(None)];
            } else {
                req.group_id = GroupId(s(group));
                req.topics = None;
            }
            let resp = conn.send_at(&req, v).await?;
            // (topic, partition, offset, leader epoch, metadata, error code): v8 answers per
            // group, older versions for the one group asked about.
            let row = |t: &TopicName, p: i32, o: i64, e: i32, m: &Option<StrBytes>, c: i16| {
                (t.to_string(), p, o, e, m.as_ref().map(|m| m.to_string()), c)
            };
            let rows: Vec<_> = if v >= 8 {
                let g = resp
                    .groups
                    .iter()
                    .find(|g| g.group_id.as_str() == group)
                    .ok_or_else(|| Error::protocol(format!("no answer for group {group}")))?;
                crate::error::check(g.error_code, || format!("group {group}"))?;
                g.topics
                    .iter()
                    .flat_map(|t| t.partitions.iter().map(move |p| (t, p)))
                    .map(|(t, p)| {
                        let (o, e) = (p.committed_offset, p.committed_leader_epoch);
                        row(&t.name, p.partition_index, o, e, &p.metadata, p.error_code)
                    })
                    .collect()
            } else {
                crate::error::check(resp.error_code, || format!("group {group}"))?;
                resp.topics
                    .iter()
                    .flat_map(|t| t.partitions.iter().map(move |p| (t, p)))
                    .map(|(t, p)| {
                        let (o, e) = (p.committed_offset, p.committed_leader_epoch);
                        row(&t.name, p.partition_index, o, e, &p.metadata, p.error_code)
                    })
                    .collect()
            };
            let mut out = BTreeMap::new();
            for (topic, partition, offset, epoch, metadata, code) in rows {
                crate::error::check(code, || {
                    format!("group {group} topic {topic} partition {partition}")
                })?;
                if offset < 0 {
                    continue; // nothing committed
                }
                out.insert(
                    TopicPartition::new(topic, partition),
                    OffsetAndMetadata {
                        offset,
                        leader_epoch: (epoch >= 0).then_some(epoch),
                        metadata: metadata.filter(|m| !m.is_empty()),
                    },
                );
            }
            Ok(out)
        })
        .await
    }

    /// Commits `offsets` for the group as an admin does: generation -1, no member id. Kafka
    /// only accepts this for a group without active members (`UNKNOWN_MEMBER_ID` otherwise).
    pub async fn alter_group_offsets(
        &self,
        group: &str,
        offsets: BTreeMap<TopicPartition, i64>,
    ) -> Result<()> {
        if offsets.is_empty() {
            return Ok(());
        }
        let mut by_topic: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
        for (tp, offset) in &offsets {
            by_topic.entry(&tp.topic).or_default().push(
                OffsetCommitRequestPartition::default()
                    .with_partition_index(tp.partition)
                    .with_committed_offset(*offset)
                    .with_committed_leader_epoch(-1)
                    .with_committed_metadata(Some(s(""))),
            );
        }
        let topics: Vec<OffsetCommitRequestTopic> = by_topic
            .into_iter()
            .map(|(t, ps)| {
                OffsetCommitRequestTopic::default()
                    .with_name(TopicName(s(t)))
                    .with_partitions(ps)
            })
            .collect();
        self.retrying(|| async {
            let node = self.cluster.find_coordinator(group, 0).await?;
            let conn = self.cluster.conn(node, Lane::Data).await?;
            let req = OffsetCommitRequest::default()
                .with_group_id(GroupId(s(group)))
                .with_generation_id_or_member_epoch(-1)
                .with_member_id(s(""))
                .with_retention_time_ms(-1)
                .with_topics(topics.clone());
            let resp = conn.send(&req).await?;
            let errors = resp.topics.iter().flat_map(|t| {
                t.partitions.iter().map(move |p| {
                    crate::error::check(p.error_code, || {
                        format!(
                            "group {group} topic {} partition {}",
                            t.name.as_str(),
                            p.partition_index
                        )
                    })
                })
            });
            first_error(errors)
        })
        .await
    }

    /// Deletes the group's committed offsets of these partitions. Kafka refuses
    /// (`GROUP_SUBSCRIBED_TO_TOPIC`) for topics the group's members consume.
    pub async fn delete_group_offsets(
        &self,
        group: &str,
        partitions: &[TopicPartition],
    ) -> Result<()> {
        if partitions.is_empty() {
            return Ok(());
        }
        let mut by_topic: BTreeMap<&str, Vec<OffsetDeleteRequestPartition>> = BTreeMap::new();
        for tp in partitions {
            by_topic
                .entry(&tp.topic)
                .or_default()
                .push(OffsetDeleteRequestPartition::default().with_partition_index(tp.partition));
        }
        let topics: Vec<OffsetDeleteRequestTopic> = by_topic
            .into_iter()
            .map(|(t, ps)| {
                OffsetDeleteRequestTopic::default()
                    .with_name(TopicName(s(t)))
                    .with_partitions(ps)
            })
            .collect();
        self.retrying(|| async {
            let node = self.cluster.find_coordinator(group, 0).await?;
            let conn = self.cluster.conn(node, Lane::Data).await?;
            let req = OffsetDeleteRequest::default()
                .with_group_id(GroupId(s(group)))
                .with_topics(topics.clone());
            let resp = conn.send(&req).await?;
            crate::error::check(resp.error_code, || format!("group {group}"))?;
            let errors = resp.topics.iter().flat_map(|t| {
                t.partitions.iter().map(move |p| {
                    crate::error::check(p.error_code, || {
                        format!(
                            "group {group} topic {} partition {}",
                            t.name.as_str(),
                            p.partition_index
                        )
                    })
                })
            });
            first_error(errors)
        })
        .await
    }

    /// The coordinator of each group, and an answer for the groups whose coordinator could
    /// not be found.
    async fn by_coordinator<V>(
        &self,
        ids: Vec<String>,
    ) -> (BTreeMap<i32, Vec<String>>, Vec<(String, Result<V>)>) {
        let mut by_node: BTreeMap<i32, Vec<String>> = BTreeMap::new();
        let mut failed = Vec::new();
        for id in ids {
            match self.cluster.find_coordinator(&id, 0).await {
                Ok(node) => by_node.entry(node).or_default().push(id),
                Err(e) => failed.push((id, Err(e))),
            }
        }
        (by_node, failed)
    }
}

/// The error to report from per-partition answers: one worth a retry first (the whole
/// request is retried), else the first.
fn first_error(results: impl Iterator<Item = Result<()>>) -> Result<()> {
    let mut first = None;
    for r in results {
        if let Err(e) = r {
            if should_retry(&e) {
                return Err(e);
            }
            first.get_or_insert(e);
        }
    }
    first.map_or(Ok(()), Err)
}

fn classic_description(g: &describe_groups_response::DescribedGroup) -> Result<GroupDescription> {
    let consumer_protocol = g.protocol_type.as_str() == "consumer";
    let mut members = Vec::with_capacity(g.members.len());
    for m in &g.members {
        let assignment = if consumer_protocol {
            decode_assignment(&m.member_assignment).map_err(|e| {
                Error::protocol(format!(
                    "group {} member {}: assignment: {e}",
                    g.group_id.as_str(),
                    m.member_id.as_str()
                ))
            })?
        } else {
            Vec::new()
        };
        members.push(MemberDescription {
            member_id: m.member_id.to_string(),
            group_instance_id: m.group_instance_id.as_ref().map(|i| i.to_string()),
            client_id: m.client_id.to_string(),
            host: m.client_host.to_string(),
            assignment,
        });
    }
    members.sort_by(|a, b| a.member_id.cmp(&b.member_id));
    Ok(GroupDescription {
        group_id: g.group_id.to_string(),
        state: g.group_state.to_string(),
        protocol_type: g.protocol_type.to_string(),
        protocol: g.protocol_data.to_string(),
        group_type: "classic".into(),
        members,
    })
}

/// A classic consumer's assignment as the consumer protocol writes it: an i16 version, then
/// `ConsumerProtocolAssignment` at that version (newer versions are read as the newest this
/// codec knows, as Kafka's `ConsumerProtocol` does). Empty bytes: nothing assigned yet.
pub(crate) fn decode_assignment(bytes: &Bytes) -> std::result::Result<Vec<TopicPartition>, String> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    if bytes.len() < 2 {
        return Err(format!("{} bytes is too short for a version", bytes.len()));
    }
    let mut b = bytes.clone();
    let version = b.get_i16();
    if version < 0 {
        return Err(format!("version {version}"));
    }
    let a = ConsumerProtocolAssignment::decode(&mut b, version.min(ASSIGNMENT_VERSION_MAX))
        .map_err(|e| e.to_string())?;
    let mut out: Vec<TopicPartition> = a
        .assigned_partitions
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| TopicPartition::new(t.topic.to_string(), *p))
        })
        .collect();
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;
    use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as WireTp;
    use kafka_protocol::protocol::Encodable;

    fn encoded(version: i16, a: &ConsumerProtocolAssignment) -> Bytes {
        let mut buf = bytes::BytesMut::new();
        buf.put_i16(version);
        a.encode(&mut buf, version.min(ASSIGNMENT_VERSION_MAX))
            .unwrap();
        buf.freeze()
    }

    #[test]
    fn assignments_decode_at_their_version() {
        let a = ConsumerProtocolAssignment::default()
            .with_assigned_partitions(vec![
                WireTp::default()
                    .with_topic(TopicName(s("b")))
                    .with_partitions(vec![1, 0]),
                WireTp::default()
                    .with_topic(TopicName(s("a")))
                    .with_partitions(vec![2]),
            ])
            .with_user_data(Some(Bytes::from_static(b"u")));
        let want = vec![
            TopicPartition::new("a", 2),
            TopicPartition::new("b", 0),
            TopicPartition::new("b", 1),
        ];
        for v in [0, 1, 3, 7] {
            assert_eq!(decode_assignment(&encoded(v, &a)).unwrap(), want, "v{v}");
        }
        assert_eq!(decode_assignment(&Bytes::new()).unwrap(), vec![]);
    }

    #[test]
    fn bad_assignment_bytes_are_errors() {
        assert!(decode_assignment(&Bytes::from_static(&[0])).is_err());
        assert!(decode_assignment(&Bytes::from_static(&[0xff, 0xff, 0, 0])).is_err());
        // A topic count far beyond the bytes there.
        assert!(decode_assignment(&Bytes::from_static(&[0, 1, 0x7f, 0xff, 0xff, 0xff])).is_err());
        // Truncated in the middle of a topic name.
        let full = encoded(
            1,
            &ConsumerProtocolAssignment::default()
                .with_assigned_partitions(vec![WireTp::default()
                    .with_topic(TopicName(s("topic")))
                    .with_partitions(vec![0])]),
        );
        assert!(decode_assignment(&full.slice(..6)).is_err());
    }

    #[test]
    fn a_retriable_partition_error_wins() {
        let r = first_error(
            [
                Ok(()),
                Err(Error::kafka(3, "topic t partition 0")),
                Err(Error::kafka(16, "group g")),
            ]
            .into_iter(),
        );
        assert_eq!(r.unwrap_err().code(), Some(KafkaCode::NOT_COORDINATOR));
        let r = first_error(
            [
                Ok(()),
                Err(Error::kafka(3, "a")),
                Err(Error::kafka(25, "b")),
            ]
            .into_iter(),
        );
        assert_eq!(r.unwrap_err().code(), Some(KafkaCode(3)));
        assert!(first_error([Ok(())].into_iter()).is_ok());
    }
}
