//! ListOffsets and DeleteRecords, each sent to the partitions' leaders.

use std::collections::BTreeMap;

use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{DeleteRecordsRequest, ListOffsetsRequest, TopicName};

use super::{s, Admin, ListedOffset, OffsetSpec};
use crate::cluster::Lane;
use crate::error::{Error, KafkaCode, Result};
use crate::types::TopicPartition;

/// What a round sends to one leader and gets back for each partition.
type Answers<V> = Vec<(TopicPartition, Result<V>)>;

impl Admin {
    /// Looks up an offset of each partition on its leader. Fails with the first partition
    /// that has an error (`UNKNOWN_TOPIC_OR_PARTITION`, ...), with its topic and partition.
    /// A partition listed twice is looked up with the last spec given.
    pub async fn list_offsets(
        &self,
        wanted: Vec<(TopicPartition, OffsetSpec)>,
    ) -> Result<BTreeMap<TopicPartition, ListedOffset>> {
        let specs: BTreeMap<TopicPartition, OffsetSpec> = wanted.into_iter().collect();
        let specs = &specs;
        let results = self
            .per_key(specs.keys().cloned(), |tps| async move {
                self.to_leaders(tps, |leader, tps| self.list_offsets_on(leader, tps, specs))
                    .await
            })
            .await?;
        results.into_iter().map(|(tp, r)| Ok((tp, r?))).collect()
    }

    async fn list_offsets_on(
        &self,
        leader: i32,
        tps: Vec<TopicPartition>,
        specs: &BTreeMap<TopicPartition, OffsetSpec>,
    ) -> Result<Answers<ListedOffset>> {
        let conn = self.cluster.conn(leader, Lane::Data).await?;
        let v = conn.version_for::<ListOffsetsRequest>()?;
        let spec = |tp: &TopicPartition| specs.get(tp).copied().unwrap_or(OffsetSpec::Latest);
        if v < 7 && tps.iter().any(|tp| spec(tp) == OffsetSpec::MaxTimestamp) {
            return Err(Error::Unsupported(format!(
                "max timestamp lookups (ListOffsets v7) on broker {leader}"
            )));
        }
        let mut by_topic: BTreeMap<&str, Vec<ListOffsetsPartition>> = BTreeMap::new();
        for tp in &tps {
            by_topic.entry(&tp.topic).or_default().push(
                ListOffsetsPartition::default()
                    .with_partition_index(tp.partition)
                    .with_current_leader_epoch(-1)
                    .with_timestamp(spec(tp).wire()),
            );
        }
        let req = ListOffsetsRequest::default()
            .with_replica_id((-1).into())
            .with_isolation_level(0)
            .with_timeout_ms(self.timeout_ms())
            .with_topics(
                by_topic
                    .into_iter()
                    .map(|(t, ps)| {
                        ListOffsetsTopic::default()
                            .with_name(TopicName(s(t)))
                            .with_partitions(ps)
                    })
                    .collect(),
            );
        let resp = conn.send_at(&req, v).await?;
        let mut out = Vec::new();
        for t in &resp.topics {
            for p in &t.partitions {
                let tp = TopicPartition::new(t.name.to_string(), p.partition_index);
                let r = crate::error::check(p.error_code, || partition_context(&tp)).map(|_| {
                    ListedOffset {
                        offset: p.offset,
                        timestamp: p.timestamp,
                        leader_epoch: (v >= 4 && p.leader_epoch >= 0).then_some(p.leader_epoch),
                    }
                });
                out.push((tp, r));
            }
        }
        Ok(out)
    }

    /// Deletes the records of each partition below an offset (-1: the high watermark) and
    /// returns each partition's new low watermark. Fails with the first partition that has
    /// an error (`OFFSET_OUT_OF_RANGE` past the high watermark, ...).
    pub async fn delete_records(
        &self,
        offsets: BTreeMap<TopicPartition, i64>,
    ) -> Result<BTreeMap<TopicPartition, i64>> {
        let offsets = &offsets;
        let results = self
            .per_key(offsets.keys().cloned(), |tps| async move {
                self.to_leaders(tps, |leader, tps| {
                    self.delete_records_on(leader, tps, offsets)
                })
                .await
            })
            .await?;
        results.into_iter().map(|(tp, r)| Ok((tp, r?))).collect()
    }

    async fn delete_records_on(
        &self,
        leader: i32,
        tps: Vec<TopicPartition>,
        offsets: &BTreeMap<TopicPartition, i64>,
    ) -> Result<Answers<i64>> {
        let conn = self.cluster.conn(leader, Lane::Data).await?;
        let mut by_topic: BTreeMap<&str, Vec<DeleteRecordsPartition>> = BTreeMap::new();
        for tp in &tps {
            by_topic.entry(&tp.topic).or_default().push(
                DeleteRecordsPartition::default()
                    .with_partition_index(tp.partition)
                    .with_offset(offsets.get(tp).copied().unwrap_or(-1)),
            );
        }
        let req = DeleteRecordsRequest::default()
            .with_timeout_ms(self.timeout_ms())
            .with_topics(
                by_topic
                    .into_iter()
                    .map(|(t, ps)| {
                        DeleteRecordsTopic::default()
                            .with_name(TopicName(s(t)))
                            .with_partitions(ps)
                    })
                    .collect(),
            );
        let resp = conn.send(&req).await?;
        let mut out = Vec::new();
        for t in &resp.topics {
            for p in &t.partitions {
                let tp = TopicPartition::new(t.name.to_string(), p.partition_index);
                let r = crate::error::check(p.error_code, || partition_context(&tp))
                    .map(|_| p.low_watermark);
                out.push((tp, r));
            }
        }
        Ok(out)
    }

    /// One round of a request to partition leaders: refreshes the metadata of the topics,
    /// sends each leader its partitions with `send`, and answers for partitions that have
    /// no leader or do not exist. A leader that cannot be reached fails its partitions
    /// (retriably), not the others.
    async fn to_leaders<V, F, Fut>(
        &self,
        tps: Vec<TopicPartition>,
        mut send: F,
    ) -> Result<Answers<V>>
    where
        F: FnMut(i32, Vec<TopicPartition>) -> Fut,
        Fut: std::future::Future<Output = Result<Answers<V>>>,
    {
        let mut topics: Vec<String> = tps.iter().map(|tp| tp.topic.clone()).collect();
        topics.sort();
        topics.dedup();
        let view = self.cluster.refresh(Some(&topics), false).await?;
        let mut out = Vec::new();
        let mut by_leader: BTreeMap<i32, Vec<TopicPartition>> = BTreeMap::new();
        for tp in tps {
            let topic = view.topics.get(&tp.topic);
            let problem = match topic {
                None => Some(KafkaCode::UNKNOWN_TOPIC_OR_PARTITION.0),
                Some(t) if t.error_code != 0 => Some(t.error_code),
                Some(t)
                    if usize::try_from(tp.partition).map_or(true, |p| p >= t.partitions.len()) =>
                {
                    Some(KafkaCode::UNKNOWN_TOPIC_OR_PARTITION.0)
                }
                Some(_) => match view.leader(&tp.topic, tp.partition) {
                    Some(leader) => {
                        by_leader.entry(leader).or_default().push(tp.clone());
                        None
                    }
                    None => Some(KafkaCode::LEADER_NOT_AVAILABLE.0),
                },
            };
            if let Some(code) = problem {
                let e = Error::kafka(code, partition_context(&tp));
                out.push((tp, Err(e)));
            }
        }
        for (leader, tps) in by_leader {
            match send(leader, tps.clone()).await {
                Ok(answers) => out.extend(answers),
                Err(e) => out.extend(tps.into_iter().map(|tp| (tp, Err(e.clone())))),
            }
        }
        Ok(out)
    }
}

fn partition_context(tp: &TopicPartition) -> String {
    format!("topic {} partition {}", tp.topic, tp.partition)
}
