//! Committed offsets (OffsetCommit / OffsetFetch at the group coordinator) and log offsets
//! for resets and seeks (ListOffsets at partition leaders).

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::{
    BrokerId, GroupId, ListOffsetsRequest, OffsetCommitRequest, OffsetFetchRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::group::{Group, GroupShared};
use crate::cluster::{Cluster, Lane};
use crate::error::{Error, KafkaCode, Result};
use crate::types::TopicPartition;

fn by_topic<T>(
    items: impl IntoIterator<Item = (TopicPartition, T)>,
) -> BTreeMap<String, Vec<(i32, T)>> {
    let mut out: BTreeMap<String, Vec<(i32, T)>> = BTreeMap::new();
    for (tp, v) in items {
        out.entry(tp.topic).or_default().push((tp.partition, v));
    }
    out
}

fn name(t: &str) -> TopicName {
    TopicName(StrBytes::from_string(t.to_string()))
}

/// Errors that mean "ask the coordinator again" rather than "give up".
fn coordinator_moved(code: i16) -> bool {
    matches!(code, 14..=16)
}

/// Commits `offsets` as the current member (or as a standalone consumer outside a group).
pub(crate) async fn commit(
    cluster: &Cluster,
    group: &GroupShared,
    offsets: &BTreeMap<TopicPartition, i64>,
    deadline: Instant,
) -> Result<()> {
    loop {
        let (member_id, generation, instance) = group.identity();
        let topics: Vec<OffsetCommitRequestTopic> =
            by_topic(offsets.iter().map(|(tp, o)| (tp.clone(), *o)))
                .into_iter()
                .map(|(t, ps)| {
                    OffsetCommitRequestTopic::default()
                        .with_name(name(&t))
                        .with_partitions(
                            ps.into_iter()
                                .map(|(p, o)| {
                                    OffsetCommitRequestPartition::default()
                                        .with_partition_index(p)
                                        .with_committed_offset(o)
                                        .with_committed_leader_epoch(-1)
                                        .with_committed_metadata(Some(StrBytes::from_static_str(
                                            "",
                                        )))
                                })
                                .collect(),
                        )
                })
                .collect();
        let req = OffsetCommitRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group.id.clone())))
            .with_generation_id_or_member_epoch(generation)
            .with_member_id(StrBytes::from_string(member_id))
            .with_group_instance_id(instance.map(StrBytes::from_string))
            .with_retention_time_ms(-1)
            .with_topics(topics);
        let attempt = async {
            let conn = group.coordinator_conn(cluster).await?;
            conn.send(&req).await
        }
        .await;
        let retry = match attempt {
            Ok(resp) => {
                let mut first_error: Option<(i16, String)> = None;
                for t in &resp.topics {
                    for p in &t.partitions {
                        if p.error_code != 0 && first_error.is_none() {
                            first_error = Some((
                                p.error_code,
                                format!(
                                    "commit of {}-{} for group {}",
                                    t.name.0, p.partition_index, group.id
                                ),
                            ));
                        }
                    }
                }
                match first_error {
                    None => return Ok(()),
                    Some((code, ctx)) if coordinator_moved(code) => {
                        group.forget_coordinator();
                        Error::kafka(code, ctx)
                    }
                    Some((code, ctx)) if matches!(code, 22 | 25 | 27 | 110 | 113) => {
                        // ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, REBALANCE_IN_PROGRESS,
                        // FENCED/STALE_MEMBER_EPOCH: the member must rejoin first.
                        if code != 27 {
                            group.membership_lost();
                        } else {
                            group.request_rejoin();
                        }
                        return Err(Error::Rebalance(format!("{}: {ctx}", KafkaCode(code))));
                    }
                    Some((code, ctx)) => {
                        let e = Error::kafka(code, ctx);
                        if !e.is_retriable() {
                            return Err(e);
                        }
                        e
                    }
                }
            }
            Err(e) if e.is_retriable() => {
                group.forget_coordinator();
                e
            }
            Err(e) => return Err(e),
        };
        if Instant::now() + cluster.backoff() >= deadline {
            return Err(retry);
        }
        tokio::time::sleep(cluster.backoff()).await;
    }
}

/// Committed offsets of `partitions` (-1 where none is committed).
pub(crate) async fn fetch_committed(
    cluster: &Cluster,
    group: &Group,
    partitions: &[TopicPartition],
    deadline: Instant,
) -> Result<BTreeMap<TopicPartition, i64>> {
    let shared = group.shared();
    let topics: Vec<OffsetFetchRequestTopic> =
        by_topic(partitions.iter().map(|tp| (tp.clone(), ())))
            .into_iter()
            .map(|(t, ps)| {
                OffsetFetchRequestTopic::default()
                    .with_name(name(&t))
                    .with_partition_indexes(ps.into_iter().map(|(p, _)| p).collect())
            })
            .collect();
    let req = OffsetFetchRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(shared.id.clone())))
        .with_topics(Some(topics))
        .with_require_stable(true);
    loop {
        let attempt = async {
            let conn = shared.coordinator_conn(cluster).await?;
            conn.send(&req).await
        }
        .await;
        let e = match attempt {
            Ok(resp) if resp.error_code == 0 => {
                let mut out = BTreeMap::new();
                let mut unstable = None;
                for t in &resp.topics {
                    for p in &t.partitions {
                        let tp = TopicPartition::new(t.name.0.to_string(), p.partition_index);
                        match p.error_code {
                            0 => {
                                out.insert(tp, p.committed_offset);
                            }
                            // UNSTABLE_OFFSET_COMMIT: a transaction is pending; ask again.
                            88 => unstable = Some(Error::kafka(88, format!("{tp}"))),
                            code => {
                                return Err(Error::kafka(
                                    code,
                                    format!("committed offset of {tp} in group {}", shared.id),
                                ))
                            }
                        }
                    }
                }
                match unstable {
                    None => return Ok(out),
                    Some(e) => e,
                }
            }
            Ok(resp) => {
                if coordinator_moved(resp.error_code) {
                    shared.forget_coordinator();
                }
                let e = Error::kafka(resp.error_code, format!("offsets of group {}", shared.id));
                if !e.is_retriable() {
                    return Err(e);
                }
                e
            }
            Err(e) if e.is_retriable() => {
                shared.forget_coordinator();
                e
            }
            Err(e) => return Err(e),
        };
        if Instant::now() + cluster.backoff() >= deadline {
            return Err(e);
        }
        tokio::time::sleep(cluster.backoff()).await;
    }
}

/// Offsets by `timestamp` (-2 earliest, -1 latest, -3 max timestamp, else the first offset
/// at or after that time) from each partition's leader.
pub(crate) async fn list_offsets(
    cluster: &Cluster,
    partitions: &[TopicPartition],
    timestamp: i64,
    isolation_level: i8,
) -> Result<BTreeMap<TopicPartition, i64>> {
    Ok(
        list_offsets_with_time(cluster, partitions, timestamp, isolation_level)
            .await?
            .into_iter()
            .map(|(tp, (o, _))| (tp, o))
            .collect(),
    )
}

/// Like [`list_offsets`], with the timestamp of each found record.
pub(crate) async fn list_offsets_with_time(
    cluster: &Cluster,
    partitions: &[TopicPartition],
    timestamp: i64,
    isolation_level: i8,
) -> Result<BTreeMap<TopicPartition, (i64, i64)>> {
    let deadline = Instant::now() + cluster.cfg.request_timeout;
    let mut out = BTreeMap::new();
    let mut todo: Vec<TopicPartition> = partitions.to_vec();
    loop {
        let mut topics: Vec<String> = todo.iter().map(|tp| tp.topic.clone()).collect();
        topics.sort();
        topics.dedup();
        let view =
            if cluster.view().topics.keys().any(|t| topics.contains(t)) && !cluster.is_stale() {
                cluster.view()
            } else {
                cluster.refresh(Some(&topics), false).await?
            };
        let mut by_leader: HashMap<i32, Vec<TopicPartition>> = HashMap::new();
        let mut last_error: Option<Error> = None;
        for tp in &todo {
            match view.leader(&tp.topic, tp.partition) {
                Some(l) => by_leader.entry(l).or_default().push(tp.clone()),
                None => last_error = Some(Error::kafka(3, format!("{tp}: no leader known"))),
            }
        }
        for (leader, tps) in by_leader {
            let req = ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_isolation_level(isolation_level)
                .with_topics(
                    by_topic(tps.iter().map(|tp| (tp.clone(), ())))
                        .into_iter()
                        .map(|(t, ps)| {
                            ListOffsetsTopic::default()
                                .with_name(name(&t))
                                .with_partitions(
                                    ps.into_iter()
                                        .map(|(p, _)| {
                                            ListOffsetsPartition::default()
                                                .with_partition_index(p)
                                                .with_current_leader_epoch(-1)
                                                .with_timestamp(timestamp)
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                );
            let resp = match cluster.conn(leader, Lane::Data).await {
                Ok(conn) => conn.send(&req).await,
                Err(e) => Err(e),
            };
            match resp {
                Ok(resp) => {
                    for t in &resp.topics {
                        for p in &t.partitions {
                            let tp = TopicPartition::new(t.name.0.to_string(), p.partition_index);
                            if p.error_code == 0 {
                                out.insert(tp, (p.offset, p.timestamp));
                            } else {
                                let e = Error::kafka(p.error_code, format!("list offsets of {tp}"));
                                if !e.is_retriable() {
                                    return Err(e);
                                }
                                last_error = Some(e);
                            }
                        }
                    }
                }
                Err(e) if e.is_retriable() => last_error = Some(e),
                Err(e) => return Err(e),
            }
        }
        todo.retain(|tp| !out.contains_key(tp));
        if todo.is_empty() {
            return Ok(out);
        }
        let e =
            last_error.unwrap_or_else(|| Error::protocol("ListOffsets left partitions unanswered"));
        if Instant::now() + cluster.backoff() >= deadline {
            return Err(e);
        }
        tokio::time::sleep(cluster.backoff()).await;
        cluster.refresh(Some(&topics), false).await.ok();
    }
}
