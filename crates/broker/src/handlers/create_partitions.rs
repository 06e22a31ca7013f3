//! CreatePartitions: grows a topic to a new partition count.

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use strand_metadata::ControllerRequest;

use super::str;
use crate::broker::Broker;

pub async fn handle(broker: &Broker, req: CreatePartitionsRequest) -> CreatePartitionsResponse {
    let mut results = Vec::new();
    for t in req.topics {
        let name = t.name.to_string();
        // Null (or, from some clients, empty) assignments: the controller places the partitions.
        let assignments: Option<Vec<Vec<i32>>> =
            t.assignments.as_ref().filter(|a| !a.is_empty()).map(|a| {
                a.iter()
                    .map(|x| x.broker_ids.iter().map(|b| b.0).collect())
                    .collect()
            });
        let request = ControllerRequest::CreatePartitions {
            topic: name.clone(),
            count: t.count,
            assignments,
        };
        let outcome = if req.validate_only {
            broker.decide(&request).map(|_| ())
        } else {
            broker.submit(request).await.map(|_| ())
        };
        let mut r = CreatePartitionsTopicResult::default().with_name(t.name.clone());
        if let Err(e) = outcome {
            r.error_code = e.code;
            r.error_message = Some(str(e.message));
        }
        results.push(r);
    }
    CreatePartitionsResponse::default().with_results(results)
}
