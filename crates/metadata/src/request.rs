//! What a node asks the controller to do, as data: a combined node decides it locally, other
//! nodes will forward it to the active controller. [`decide`] is the controller's answer, a
//! pure function of the committed image: the records that carry the request out, and what
//! the requester learns.

use std::ops::Range;

use uuid::Uuid;

use crate::controller::{self, ApiError, ConfigOp, ControllerConfig, NewTopic};
use crate::image::MetadataImage;
use crate::record::{ConfigResource, MetadataRecord};

#[derive(Debug, Clone)]
pub enum ControllerRequest {
    CreateTopic(NewTopic),
    /// `count` is the new total; `assignments` the replicas of each new partition.
    CreatePartitions {
        topic: String,
        count: i32,
        assignments: Option<Vec<Vec<i32>>>,
    },
    /// By name, or by id.
    DeleteTopic {
        name: Option<String>,
        id: Option<Uuid>,
    },
    /// With `replace` (the legacy AlterConfigs), every setting not named is removed.
    AlterConfigs {
        resource: ConfigResource,
        ops: Vec<(String, ConfigOp)>,
        replace: bool,
    },
    RegisterBroker {
        node_id: i32,
        host: String,
        port: i32,
        rack: Option<String>,
    },
    AllocateProducerIds {
        broker_id: i32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControllerReply {
    Done,
    TopicCreated { topic_id: Uuid },
    TopicDeleted { name: String, topic_id: Uuid },
    ProducerIds(Range<i64>),
}

/// The controller's decision on `request` against `image`.
pub fn decide(
    image: &MetadataImage,
    request: &ControllerRequest,
    cfg: &ControllerConfig,
) -> Result<(Vec<MetadataRecord>, ControllerReply), ApiError> {
    Ok(match request {
        ControllerRequest::CreateTopic(new) => {
            let record = controller::create_topic(image, new, cfg)?;
            let topic_id = match &record {
                MetadataRecord::CreateTopic { topic_id, .. } => *topic_id,
                _ => Uuid::nil(),
            };
            (vec![record], ControllerReply::TopicCreated { topic_id })
        }
        ControllerRequest::CreatePartitions {
            topic,
            count,
            assignments,
        } => {
            let record =
                controller::create_partitions(image, topic, *count, assignments.as_deref())?;
            (vec![record], ControllerReply::Done)
        }
        ControllerRequest::DeleteTopic { name, id } => {
            let (name, topic_id, record) = controller::delete_topic(image, name.as_deref(), *id)?;
            (
                vec![record],
                ControllerReply::TopicDeleted { name, topic_id },
            )
        }
        ControllerRequest::AlterConfigs {
            resource,
            ops,
            replace,
        } => {
            let records = match resource {
                ConfigResource::Topic(t) => {
                    controller::alter_topic_configs(image, t, ops, *replace)?
                }
                ConfigResource::Broker(node) => {
                    controller::alter_broker_configs(image, *node, ops, *replace)?
                }
            };
            (records, ControllerReply::Done)
        }
        ControllerRequest::RegisterBroker {
            node_id,
            host,
            port,
            rack,
        } => {
            let known = image
                .brokers
                .get(node_id)
                .is_some_and(|b| (&b.host, b.port, &b.rack) == (host, *port, rack));
            let records = if known {
                Vec::new()
            } else {
                vec![MetadataRecord::RegisterBroker {
                    node_id: *node_id,
                    host: host.clone(),
                    port: *port,
                    rack: rack.clone(),
                }]
            };
            (records, ControllerReply::Done)
        }
        ControllerRequest::AllocateProducerIds { broker_id } => {
            let (record, range) = controller::allocate_producer_ids(image, *broker_id)?;
            (vec![record], ControllerReply::ProducerIds(range))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: ControllerConfig = ControllerConfig {
        num_partitions: 2,
        default_replication_factor: 1,
    };

    fn commit(image: &MetadataImage, records: &[MetadataRecord]) -> MetadataImage {
        records
            .iter()
            .fold(image.clone(), |img, r| img.apply(img.offset + 1, r))
    }

    #[test]
    fn decisions_carry_their_records_and_replies() {
        let me = ControllerRequest::RegisterBroker {
            node_id: 1,
            host: "127.0.0.1".into(),
            port: 9092,
            rack: None,
        };
        let (records, _) = decide(&MetadataImage::empty(), &me, &CFG).unwrap();
        let image = commit(&MetadataImage::empty(), &records);
        // Registering again with the same endpoint writes nothing.
        assert!(decide(&image, &me, &CFG).unwrap().0.is_empty());
        let create = ControllerRequest::CreateTopic(NewTopic {
            name: "t".into(),
            num_partitions: -1,
            replication_factor: -1,
            ..Default::default()
        });
        let (records, reply) = decide(&image, &create, &CFG).unwrap();
        let image = commit(&image, &records);
        let ControllerReply::TopicCreated { topic_id } = reply else {
            panic!("{reply:?}")
        };
        assert_eq!(
            image.topic("t").map(|t| (t.id, t.partitions.len())),
            Some((topic_id, 2))
        );
        let (records, reply) = decide(
            &image,
            &ControllerRequest::AllocateProducerIds { broker_id: 1 },
            &CFG,
        )
        .unwrap();
        assert_eq!(reply, ControllerReply::ProducerIds(0..1000));
        let image = commit(&image, &records);
        let delete = ControllerRequest::DeleteTopic {
            name: None,
            id: Some(topic_id),
        };
        let (_, reply) = decide(&image, &delete, &CFG).unwrap();
        assert_eq!(
            reply,
            ControllerReply::TopicDeleted {
                name: "t".into(),
                topic_id
            }
        );
        assert!(decide(&image, &create, &CFG).is_err(), "the topic exists");
    }
}
