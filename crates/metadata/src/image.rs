//! The metadata image: an immutable view of the cluster built by replaying records.
//!
//! Readers hold an `Arc<MetadataImage>` for as long as they like; applying a record builds a
//! new image that shares every unchanged topic with the old one.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use uuid::Uuid;

use crate::record::{ConfigResource, MetadataRecord, PartitionRecord};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerImage {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicImage {
    pub name: String,
    pub id: Uuid,
    pub partitions: Vec<PartitionRecord>,
    /// Settings made on the topic itself.
    pub configs: BTreeMap<String, String>,
}

impl TopicImage {
    pub fn is_internal(&self) -> bool {
        self.name.starts_with("__")
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetadataImage {
    /// Offset of the last record applied (-1 for none).
    pub offset: i64,
    pub brokers: BTreeMap<i32, BrokerImage>,
    pub topics: BTreeMap<String, Arc<TopicImage>>,
    pub topic_names: HashMap<Uuid, String>,
    /// Dynamic broker configs: `None` key is the cluster-wide default.
    pub broker_configs: BTreeMap<Option<i32>, BTreeMap<String, String>>,
    /// The first producer id not yet handed out.
    pub next_producer_id: i64,
}

impl MetadataImage {
    pub fn empty() -> Self {
        Self {
            offset: -1,
            ..Self::default()
        }
    }

    pub fn topic(&self, name: &str) -> Option<&Arc<TopicImage>> {
        self.topics.get(name)
    }

    pub fn topic_by_id(&self, id: &Uuid) -> Option<&Arc<TopicImage>> {
        self.topic_names.get(id).and_then(|n| self.topics.get(n))
    }

    /// Returns the image after `record`, at `offset`. Records that refer to something absent
    /// (possible only for a log written by a buggy controller) change nothing.
    pub fn apply(&self, offset: i64, record: &MetadataRecord) -> Self {
        let mut next = self.clone();
        next.offset = offset;
        match record {
            MetadataRecord::RegisterBroker {
                node_id,
                host,
                port,
                rack,
            } => {
                next.brokers.insert(
                    *node_id,
                    BrokerImage {
                        node_id: *node_id,
                        host: host.clone(),
                        port: *port,
                        rack: rack.clone(),
                    },
                );
            }
            MetadataRecord::CreateTopic {
                name,
                topic_id,
                partitions,
                configs,
            } => {
                next.topic_names.insert(*topic_id, name.clone());
                next.topics.insert(
                    name.clone(),
                    Arc::new(TopicImage {
                        name: name.clone(),
                        id: *topic_id,
                        partitions: partitions.clone(),
                        configs: configs.clone(),
                    }),
                );
            }
            MetadataRecord::AddPartitions {
                topic_id,
                partitions,
            } => {
                if let Some(t) = self.topic_by_id(topic_id) {
                    let mut t = TopicImage::clone(t);
                    t.partitions.extend(partitions.iter().cloned());
                    t.partitions.sort_by_key(|p| p.partition);
                    next.topics.insert(t.name.clone(), Arc::new(t));
                }
            }
            MetadataRecord::ProducerIds {
                next_producer_id, ..
            } => {
                next.next_producer_id = next.next_producer_id.max(*next_producer_id);
            }
            MetadataRecord::DeleteTopic { topic_id } => {
                if let Some(name) = next.topic_names.remove(topic_id) {
                    next.topics.remove(&name);
                }
            }
            MetadataRecord::SetConfig {
                resource,
                key,
                value,
            } => match resource {
                ConfigResource::Topic(name) => {
                    if let Some(t) = self.topics.get(name) {
                        let mut t = TopicImage::clone(t);
                        match value {
                            Some(v) => t.configs.insert(key.clone(), v.clone()),
                            None => t.configs.remove(key),
                        };
                        next.topics.insert(name.clone(), Arc::new(t));
                    }
                }
                ConfigResource::Broker(node) => {
                    let configs = next.broker_configs.entry(*node).or_default();
                    match value {
                        Some(v) => configs.insert(key.clone(), v.clone()),
                        None => configs.remove(key),
                    };
                }
            },
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_builds_the_image() {
        let id = Uuid::from_u128(1);
        let p = |i| PartitionRecord {
            partition: i,
            replicas: vec![1],
            isr: vec![1],
            leader: 1,
            leader_epoch: 0,
        };
        let records = [
            MetadataRecord::CreateTopic {
                name: "a".into(),
                topic_id: id,
                partitions: vec![p(0)],
                configs: Default::default(),
            },
            MetadataRecord::AddPartitions {
                topic_id: id,
                partitions: vec![p(1), p(2)],
            },
            MetadataRecord::SetConfig {
                resource: ConfigResource::Topic("a".into()),
                key: "retention.ms".into(),
                value: Some("5".into()),
            },
            MetadataRecord::CreateTopic {
                name: "b".into(),
                topic_id: Uuid::from_u128(2),
                partitions: vec![p(0)],
                configs: Default::default(),
            },
        ];
        let mut image = MetadataImage::empty();
        for (i, r) in records.iter().enumerate() {
            image = image.apply(i as i64, r);
        }
        let a = image.topic("a").unwrap();
        assert_eq!(a.partitions.len(), 3);
        assert_eq!(a.configs.get("retention.ms").map(String::as_str), Some("5"));
        let before = image.clone();
        image = image.apply(4, &MetadataRecord::DeleteTopic { topic_id: id });
        assert!(image.topic("a").is_none() && image.topic("b").is_some());
        // The old image is untouched, and unchanged topics are shared.
        assert!(before.topic("a").is_some());
        assert!(Arc::ptr_eq(
            before.topic("b").unwrap(),
            image.topic("b").unwrap()
        ));
    }
}
