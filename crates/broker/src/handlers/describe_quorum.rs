//! DescribeQuorum: the metadata quorum's leader, epoch, high watermark and replicas, what
//! `kafka-metadata-quorum describe` (and `strand metadata-quorum describe`) prints.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_quorum_response::{
    Listener, Node, PartitionData, ReplicaState, TopicData,
};
use kafka_protocol::messages::{DescribeQuorumRequest, DescribeQuorumResponse};
use strand_metadata::ReplicaDescription;
use strand_protocol::frame::RequestFrame;

use super::str;
use crate::broker::{now_ms, Broker};

/// The metadata log's topic, as Kafka names it; its one partition is 0.
pub const METADATA_TOPIC: &str = "__cluster_metadata";

pub fn handle(
    broker: &Broker,
    frame: &RequestFrame,
    req: DescribeQuorumRequest,
) -> DescribeQuorumResponse {
    let version = frame.version();
    let d = broker.describe_quorum(now_ms());
    let directory_id = broker.metadata_directory_id();
    let replica = |r: &ReplicaDescription| {
        let mut s = ReplicaState::default()
            .with_replica_id(r.replica_id.into())
            .with_log_end_offset(r.log_end_offset);
        if version >= 1 {
            s = s
                .with_last_fetch_timestamp(r.last_fetch_ms)
                .with_last_caught_up_timestamp(r.last_caught_up_ms);
        }
        if version >= 2 {
            s = s.with_replica_directory_id(directory_id);
        }
        s
    };
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let out = PartitionData::default().with_partition_index(p.partition_index);
                    if t.topic_name.as_str() != METADATA_TOPIC || p.partition_index != 0 {
                        return out
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                            .with_leader_id((-1).into());
                    }
                    let mut out = out
                        .with_leader_id(d.leader_id.into())
                        .with_leader_epoch(i32::try_from(d.leader_epoch).unwrap_or(i32::MAX))
                        .with_high_watermark(d.high_watermark)
                        .with_current_voters(d.voters.iter().map(replica).collect())
                        .with_observers(d.observers.iter().map(replica).collect());
                    if version >= 2 {
                        out = out.with_error_message(None);
                    }
                    out
                })
                .collect();
            TopicData::default()
                .with_topic_name(t.topic_name.clone())
                .with_partitions(partitions)
        })
        .collect();
    let mut resp = DescribeQuorumResponse::default().with_topics(topics);
    if version >= 2 {
        // The voters' endpoints: a node is its own controller, on its inter-broker listener.
        let me = &broker.config;
        resp.nodes = d
            .voters
            .iter()
            .map(|v| {
                Node::default()
                    .with_node_id(v.replica_id.into())
                    .with_listeners(vec![Listener::default()
                        .with_name(str(me.inter_broker_listener.clone()))
                        .with_host(str(me.advertised_host.clone()))
                        .with_port(me.advertised_port)])
            })
            .collect();
    }
    resp
}
