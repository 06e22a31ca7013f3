//! CreateTopics.

use std::collections::{BTreeMap, HashSet};
use strand_metadata::ControllerRequest;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use strand_metadata::controller::{ApiError, NewTopic};
use strand_metadata::MetadataRecord;
use strand_protocol::frame::RequestFrame;

use super::str;
use crate::broker::Broker;

pub async fn handle(
    broker: &Broker,
    frame: &RequestFrame,
    req: CreateTopicsRequest,
) -> CreateTopicsResponse {
    let mut seen = HashSet::new();
    let duplicates: HashSet<String> = req
        .topics
        .iter()
        .map(|t| t.name.to_string())
        .filter(|n| !seen.insert(n.clone()))
        .collect();
    let mut results = Vec::new();
    for t in req.topics {
        let name = t.name.to_string();
        let result = CreatableTopicResult::default()
            .with_name(t.name.clone())
            .with_num_partitions(-1)
            .with_replication_factor(-1);
        if duplicates.contains(&name) {
            results.push(fail(result, frame, ApiError::new(ResponseError::InvalidRequest, format!("Create topics request from client contains multiple entries for the topic {name}"))));
            continue;
        }
        let mut configs = BTreeMap::new();
        let mut null_config = None;
        for c in &t.configs {
            match &c.value {
                Some(v) => {
                    configs.insert(c.name.to_string(), v.to_string());
                }
                None => null_config = Some(c.name.to_string()),
            }
        }
        if let Some(k) = null_config {
            results.push(fail(
                result,
                frame,
                ApiError::new(
                    ResponseError::InvalidConfig,
                    format!("Null value not supported for topic configs: {k}"),
                ),
            ));
            continue;
        }
        let new = NewTopic {
            name: name.clone(),
            num_partitions: t.num_partitions,
            replication_factor: t.replication_factor,
            assignments: t
                .assignments
                .iter()
                .map(|a| {
                    (
                        a.partition_index,
                        a.broker_ids.iter().map(|b| b.0).collect(),
                    )
                })
                .collect(),
            configs,
        };
        let request = ControllerRequest::CreateTopic(new.clone());
        let outcome = if req.validate_only {
            broker.decide(&request).map(|d| (d, broker.image()))
        } else {
            broker.submit(request).await
        };
        let created = outcome.map(|(d, image)| (d.records.into_iter().next(), image));
        match created {
            Ok((
                Some(MetadataRecord::CreateTopic {
                    topic_id,
                    partitions,
                    ..
                }),
                image,
            )) => {
                let rf = partitions.first().map_or(0, |p| p.replicas.len()) as i16;
                let mut r = result
                    .with_topic_id(if req.validate_only {
                        uuid::Uuid::nil()
                    } else {
                        topic_id
                    })
                    .with_num_partitions(partitions.len() as i32)
                    .with_replication_factor(rf);
                if frame.version() >= 5 {
                    let topic = image.topic(&name).cloned().unwrap_or_else(|| {
                        std::sync::Arc::new(strand_metadata::TopicImage {
                            name: name.clone(),
                            id: topic_id,
                            partitions: partitions.clone(),
                            configs: new.configs.clone(),
                        })
                    });
                    r.configs = Some(
                        broker
                            .resolved_topic_configs(&image, &topic)
                            .into_iter()
                            .map(|c| {
                                CreatableTopicConfigs::default()
                                    .with_name(str(c.name))
                                    .with_value(Some(str(c.value)))
                                    .with_config_source(c.source as i8)
                            })
                            .collect(),
                    );
                }
                results.push(r);
            }
            Ok(_) => results.push(fail(
                result,
                frame,
                ApiError::new(
                    ResponseError::UnknownServerError,
                    "unexpected controller answer",
                ),
            )),
            Err(e) => results.push(fail(result, frame, e)),
        }
    }
    CreateTopicsResponse::default().with_topics(results)
}

fn fail(result: CreatableTopicResult, frame: &RequestFrame, e: ApiError) -> CreatableTopicResult {
    let r = result.with_error_code(e.code);
    if frame.version() >= 1 {
        r.with_error_message(Some(str(e.message)))
    } else {
        r
    }
}
