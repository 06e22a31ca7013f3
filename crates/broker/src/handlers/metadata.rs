//! Metadata: brokers, topics, partitions and leaders; auto-creates missing topics when allowed.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{MetadataRequest, MetadataResponse, TopicName};
use strand_metadata::controller::{self, NewTopic};
use strand_metadata::ControllerRequest;
use strand_metadata::{MetadataImage, TopicImage};
use strand_protocol::frame::RequestFrame;
use uuid::Uuid;

use super::str;
use crate::broker::Broker;

/// A requested topic, by name or (v10+) by id.
enum Wanted {
    Name(String),
    Id(Uuid),
}

pub async fn handle(
    broker: &Broker,
    frame: &RequestFrame,
    req: MetadataRequest,
    listener: &crate::listeners::Listener,
) -> MetadataResponse {
    let version = frame.version();
    // v0: an empty list means every topic; v1+: null does, and empty means none.
    let wanted: Option<Vec<Wanted>> = match req.topics {
        None => None,
        Some(ts) if ts.is_empty() && version == 0 => None,
        Some(ts) => Some(
            ts.into_iter()
                .map(|t| match t.name {
                    Some(n) if !n.is_empty() => Wanted::Name(n.to_string()),
                    _ => Wanted::Id(t.topic_id),
                })
                .collect(),
        ),
    };
    let auto_create =
        broker.config.auto_create_topics && (version < 4 || req.allow_auto_topic_creation);
    let mut create_errors = std::collections::HashMap::new();
    if let (Some(wanted), true) = (&wanted, auto_create) {
        let image = broker.image();
        for w in wanted {
            let Wanted::Name(name) = w else { continue };
            if image.topic(name).is_some() {
                continue;
            }
            let new = NewTopic {
                name: name.clone(),
                num_partitions: -1,
                replication_factor: -1,
                ..Default::default()
            };
            match broker.submit(ControllerRequest::CreateTopic(new)).await {
                Ok(_) => tracing::info!(topic = %name, "auto-created topic"),
                // Another request created it meanwhile: fine.
                Err(e) if e.code == ResponseError::TopicAlreadyExists.code() => {}
                Err(e) => {
                    create_errors.insert(name.clone(), e.code);
                }
            }
        }
    }
    let image = broker.image();
    let topics = match wanted {
        None => image
            .topics
            .values()
            .map(|t| topic_entry(&image, t, version))
            .collect(),
        Some(wanted) => wanted
            .iter()
            .map(|w| match w {
                Wanted::Name(name) => match image.topic(name) {
                    Some(t) => topic_entry(&image, t, version),
                    None => {
                        let code = create_errors.get(name).copied().unwrap_or_else(|| {
                            if controller::validate_topic_name(name).is_err() {
                                ResponseError::InvalidTopicException.code()
                            } else {
                                ResponseError::UnknownTopicOrPartition.code()
                            }
                        });
                        MetadataResponseTopic::default()
                            .with_name(Some(TopicName(str(name.clone()))))
                            .with_error_code(code)
                    }
                },
                Wanted::Id(id) => match image.topic_by_id(id) {
                    Some(t) => topic_entry(&image, t, version),
                    None => MetadataResponseTopic::default()
                        .with_topic_id(*id)
                        .with_error_code(ResponseError::UnknownTopicId.code()),
                },
            })
            .collect(),
    };
    MetadataResponse::default()
        .with_brokers(
            image
                .brokers
                .values()
                .map(|b| {
                    let (host, port) = broker.endpoint_of(b, listener);
                    MetadataResponseBroker::default()
                        .with_node_id(b.node_id.into())
                        .with_host(str(host))
                        .with_port(port)
                        .with_rack(b.rack.clone().map(str))
                })
                .collect(),
        )
        .with_cluster_id(Some(str(broker.cluster_id.clone())))
        .with_controller_id(broker.config.node_id.into())
        .with_topics(topics)
}

fn topic_entry(image: &MetadataImage, t: &TopicImage, _version: i16) -> MetadataResponseTopic {
    let _ = image;
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(str(t.name.clone()))))
        .with_topic_id(t.id)
        .with_is_internal(t.is_internal())
        .with_partitions(
            t.partitions
                .iter()
                .map(|p| {
                    MetadataResponsePartition::default()
                        .with_partition_index(p.partition)
                        .with_leader_id(p.leader.into())
                        .with_leader_epoch(p.leader_epoch)
                        .with_replica_nodes(p.replicas.iter().map(|&r| r.into()).collect())
                        .with_isr_nodes(p.isr.iter().map(|&r| r.into()).collect())
                })
                .collect(),
        )
}
