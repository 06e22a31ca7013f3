//! DescribeQuorum: the metadata quorum's leader, epoch, high watermark and replicas.

use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::{DescribeQuorumRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::{check_msg, Admin};
use crate::error::{Error, Result};

/// The metadata log's topic (one partition, 0).
pub const METADATA_TOPIC: &str = "__cluster_metadata";

/// One replica of the metadata log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumReplica {
    pub node_id: i32,
    /// Base64 (Kafka's form) of its log dir's id; empty if unknown.
    pub directory_id: String,
    pub log_end_offset: i64,
    /// -1 if the broker does not say (DescribeQuorum v0).
    pub last_fetch_ms: i64,
    pub last_caught_up_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumInfo {
    pub leader_id: i32,
    pub leader_epoch: i32,
    pub high_watermark: i64,
    pub voters: Vec<QuorumReplica>,
    pub observers: Vec<QuorumReplica>,
    /// Voter endpoints, `NAME://host:port` per node (DescribeQuorum v2).
    pub endpoints: Vec<(i32, Vec<String>)>,
}

impl Admin {
    /// The metadata quorum, as any broker reports it.
    pub async fn describe_quorum(&self) -> Result<QuorumInfo> {
        self.retrying(|| async {
            let conn = self.cluster.any_conn().await?;
            let req = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
                .with_topic_name(TopicName(StrBytes::from_static_str(METADATA_TOPIC)))
                .with_partitions(vec![PartitionData::default().with_partition_index(0)])]);
            let resp = conn.send(&req).await?;
            check_msg(resp.error_code, resp.error_message.as_ref(), || {
                "DescribeQuorum".into()
            })?;
            let p = resp
                .topics
                .first()
                .and_then(|t| t.partitions.first())
                .ok_or_else(|| Error::protocol("DescribeQuorum answered no partition"))?;
            check_msg(p.error_code, p.error_message.as_ref(), || {
                format!("{METADATA_TOPIC}-0")
            })?;
            let replica = |r: &kafka_protocol::messages::describe_quorum_response::ReplicaState| {
                QuorumReplica {
                    node_id: r.replica_id.0,
                    directory_id: if r.replica_directory_id.is_nil() {
                        String::new()
                    } else {
                        strand_protocol::ids::uuid_text(&r.replica_directory_id)
                    },
                    log_end_offset: r.log_end_offset,
                    last_fetch_ms: r.last_fetch_timestamp,
                    last_caught_up_ms: r.last_caught_up_timestamp,
                }
            };
            Ok(QuorumInfo {
                leader_id: p.leader_id.0,
                leader_epoch: p.leader_epoch,
                high_watermark: p.high_watermark,
                voters: p.current_voters.iter().map(replica).collect(),
                observers: p.observers.iter().map(replica).collect(),
                endpoints: resp
                    .nodes
                    .iter()
                    .map(|n| {
                        let eps = n
                            .listeners
                            .iter()
                            .map(|l| format!("{}://{}:{}", l.name, l.host, l.port))
                            .collect();
                        (n.node_id.0, eps)
                    })
                    .collect(),
            })
        })
        .await
    }
}
