//! Metadata records: every change to topics, partitions and configs is one of these.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Where a partition lives and who leads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionRecord {
    pub partition: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub leader: i32,
    pub leader_epoch: i32,
}

/// The resource a config change applies to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ConfigResource {
    Topic(String),
    /// `None`: the cluster-wide default for every broker.
    Broker(Option<i32>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetadataRecord {
    RegisterBroker {
        node_id: i32,
        host: String,
        port: i32,
        rack: Option<String>,
    },
    CreateTopic {
        name: String,
        topic_id: Uuid,
        partitions: Vec<PartitionRecord>,
        configs: BTreeMap<String, String>,
    },
    AddPartitions {
        topic_id: Uuid,
        partitions: Vec<PartitionRecord>,
    },
    DeleteTopic {
        topic_id: Uuid,
    },
    /// Producer ids below `next_producer_id` are taken (Kafka's ProducerIdsRecord): a broker
    /// hands out the block it was given, so ids never repeat, across restarts too.
    ProducerIds {
        broker_id: i32,
        next_producer_id: i64,
    },
    /// `value: None` removes the setting.
    SetConfig {
        resource: ConfigResource,
        key: String,
        value: Option<String>,
    },
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A one-partition topic `name` with id `n`, led by broker 1.
    pub(crate) fn topic(name: &str, n: u128) -> MetadataRecord {
        MetadataRecord::CreateTopic {
            name: name.into(),
            topic_id: Uuid::from_u128(n),
            partitions: vec![PartitionRecord {
                partition: 0,
                replicas: vec![1],
                isr: vec![1],
                leader: 1,
                leader_epoch: 0,
            }],
            configs: Default::default(),
        }
    }
}
