//! DeleteTopics, by name (all versions) or by id (v6+). Each entry deletes exactly its topic.

use crate::broker::Decision;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use strand_metadata::{ControllerReply, ControllerRequest};
use strand_protocol::frame::RequestFrame;
use uuid::Uuid;

use super::str;
use crate::broker::Broker;

pub async fn handle(
    broker: &Broker,
    frame: &RequestFrame,
    req: DeleteTopicsRequest,
) -> DeleteTopicsResponse {
    let targets: Vec<(Option<String>, Option<Uuid>)> = if frame.version() >= 6 {
        req.topics
            .iter()
            .map(|t| (t.name.as_ref().map(|n| n.to_string()), Some(t.topic_id)))
            .collect()
    } else {
        req.topic_names
            .iter()
            .map(|n| (Some(n.to_string()), None))
            .collect()
    };
    let mut responses = Vec::new();
    for (name, id) in targets {
        let outcome = broker
            .submit(ControllerRequest::DeleteTopic {
                name: name.clone(),
                id,
            })
            .await;
        let mut r =
            DeletableTopicResult::default().with_name(name.clone().map(|n| TopicName(str(n))));
        match outcome {
            Ok((
                Decision {
                    reply: ControllerReply::TopicDeleted { name, topic_id },
                    ..
                },
                _,
            )) => {
                tracing::info!(topic = %name, %topic_id, "deleted topic");
                r.topic_id = topic_id;
            }
            Ok(_) => {}
            Err(e) => {
                r.error_code = e.code;
                if frame.version() >= 5 {
                    r.error_message = Some(str(e.message));
                }
                r.topic_id = id.unwrap_or_default();
            }
        }
        responses.push(r);
    }
    DeleteTopicsResponse::default().with_responses(responses)
}
