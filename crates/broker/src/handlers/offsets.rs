//! OffsetCommit, OffsetFetch (one group, or several from v8) and OffsetDelete.

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::*;
use strand_protocol::frame::RequestFrame;

use super::str;
use crate::broker::Broker;
use crate::groups;

pub async fn commit(
    broker: &Broker,
    frame: &RequestFrame,
    req: OffsetCommitRequest,
) -> OffsetCommitResponse {
    let image = broker.image();
    let exists = |topic: &str, p: i32| {
        image
            .topic(topic)
            .is_some_and(|t| t.partitions.iter().any(|x| x.partition == p))
    };
    let version = frame.version();
    match groups::write(broker, req.group_id.as_str(), |c, now| {
        c.commit_offsets(&req, version, now, exists)
    })
    .await
    {
        Ok(r) => r,
        Err(e) => {
            let code = e.code();
            let mut r = OffsetCommitResponse::default();
            r.topics = req
                .topics
                .iter()
                .map(|t| {
                    offset_commit_response::OffsetCommitResponseTopic::default()
                        .with_name(t.name.clone())
                        .with_partitions(
                            t.partitions
                                .iter()
                                .map(|p| {
                                    offset_commit_response::OffsetCommitResponsePartition::default()
                                        .with_partition_index(p.partition_index)
                                        .with_error_code(code)
                                })
                                .collect(),
                        )
                })
                .collect();
            r
        }
    }
}

/// Topics and partitions asked for (`None`: every committed one).
type Wanted = Option<Vec<(String, Vec<i32>)>>;

/// An offset as OffsetFetch answers it: `(partition, offset, leader epoch, metadata, error)`.
type Answer = (i32, i64, i32, String, i16);

/// One group's committed offsets, or the error for the whole group. With `require_stable`
/// (v7+), a partition with an offset committed inside a transaction not yet ended answers
/// UNSTABLE_OFFSET_COMMIT, so the consumer waits rather than start from an offset about to
/// change.
async fn committed(
    broker: &Broker,
    group: &str,
    wanted: Wanted,
    require_stable: bool,
) -> Result<Vec<(String, Vec<Answer>)>, i16> {
    let (found, unstable) = groups::read(broker, group, |c| {
        let unstable = if require_stable {
            c.unstable_offsets(group)
        } else {
            Default::default()
        };
        (c.fetch_offsets(group, wanted.as_deref()), unstable)
    })
    .await
    .map_err(|e| e.code())?;
    let unstable_code = kafka_protocol::error::ResponseError::UnstableOffsetCommit.code();
    Ok(found
        .into_iter()
        .map(|(topic, parts)| {
            let parts = parts
                .into_iter()
                .map(|(p, offset, epoch, meta)| {
                    if unstable.contains(&(topic.clone(), p)) {
                        (p, -1, -1, String::new(), unstable_code)
                    } else {
                        (p, offset, epoch, meta, 0)
                    }
                })
                .collect();
            (topic, parts)
        })
        .collect())
}

pub async fn fetch(
    broker: &Broker,
    frame: &RequestFrame,
    req: OffsetFetchRequest,
) -> OffsetFetchResponse {
    if frame.version() < 8 {
        let wanted: Wanted = req.topics.as_ref().map(|ts| {
            ts.iter()
                .map(|t| (t.name.to_string(), t.partition_indexes.clone()))
                .collect()
        });
        let stable = frame.version() >= 7 && req.require_stable;
        let found = match committed(broker, req.group_id.as_str(), wanted, stable).await {
            Ok(f) => f,
            Err(code) => return OffsetFetchResponse::default().with_error_code(code),
        };
        let topics = found
            .into_iter()
            .map(|(topic, parts)| {
                OffsetFetchResponseTopic::default()
                    .with_name(TopicName(str(topic)))
                    .with_partitions(
                        parts
                            .into_iter()
                            .map(|(p, offset, epoch, meta, code)| {
                                let r = OffsetFetchResponsePartition::default()
                                    .with_partition_index(p)
                                    .with_committed_offset(offset)
                                    .with_error_code(code)
                                    .with_metadata(Some(str(meta)));
                                if frame.version() >= 5 {
                                    r.with_committed_leader_epoch(epoch)
                                } else {
                                    r
                                }
                            })
                            .collect(),
                    )
            })
            .collect();
        return OffsetFetchResponse::default().with_topics(topics);
    }
    let mut groups_out = Vec::with_capacity(req.groups.len());
    for g in &req.groups {
        let wanted: Wanted = g.topics.as_ref().map(|ts| {
            ts.iter()
                .map(|t| (t.name.to_string(), t.partition_indexes.clone()))
                .collect()
        });
        let group = OffsetFetchResponseGroup::default().with_group_id(g.group_id.clone());
        let found = match committed(broker, g.group_id.as_str(), wanted, req.require_stable).await {
            Ok(f) => f,
            Err(code) => {
                groups_out.push(group.with_error_code(code));
                continue;
            }
        };
        let topics = found
            .into_iter()
            .map(|(topic, parts)| {
                OffsetFetchResponseTopics::default()
                    .with_name(TopicName(str(topic)))
                    .with_partitions(
                        parts
                            .into_iter()
                            .map(|(p, offset, epoch, meta, code)| {
                                OffsetFetchResponsePartitions::default()
                                    .with_partition_index(p)
                                    .with_committed_offset(offset)
                                    .with_error_code(code)
                                    .with_committed_leader_epoch(epoch)
                                    .with_metadata(Some(str(meta)))
                            })
                            .collect(),
                    )
            })
            .collect();
        groups_out.push(group.with_topics(topics));
    }
    OffsetFetchResponse::default().with_groups(groups_out)
}

pub async fn delete(broker: &Broker, req: OffsetDeleteRequest) -> OffsetDeleteResponse {
    match groups::write(broker, req.group_id.as_str(), |c, _now| {
        c.delete_offsets(&req)
    })
    .await
    {
        Ok(r) => r,
        Err(e) => OffsetDeleteResponse::default().with_error_code(e.code()),
    }
}
