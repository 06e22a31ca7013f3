//! FindCoordinator: this broker coordinates every group (single node). Creates
//! `__consumer_offsets` on first use.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{FindCoordinatorRequest, FindCoordinatorResponse};
use strand_protocol::frame::RequestFrame;

use super::str;
use crate::broker::Broker;
use crate::groups::ensure_offsets_topic;

const GROUP: i8 = 0;

pub async fn handle(
    broker: &Broker,
    frame: &RequestFrame,
    req: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let keys: Vec<String> = if frame.version() >= 4 {
        req.coordinator_keys.iter().map(|k| k.to_string()).collect()
    } else {
        vec![req.key.to_string()]
    };
    let error = if req.key_type != GROUP {
        // Transactions and share groups are not implemented: no coordinator for them.
        Some((
            ResponseError::CoordinatorNotAvailable.code(),
            format!("Key type {} is not supported", req.key_type),
        ))
    } else {
        ensure_offsets_topic(broker)
            .await
            .err()
            .map(|e| (ResponseError::CoordinatorNotAvailable.code(), e.message))
    };
    let host = broker.config.advertised_host.clone();
    let port = i32::from(broker.config.advertised_port);
    let node = broker.config.node_id;
    if frame.version() < 4 {
        let mut r = FindCoordinatorResponse::default();
        match error {
            Some((code, msg)) => {
                r.error_code = code;
                r.node_id = (-1).into();
                r.port = -1;
                if frame.version() >= 1 {
                    r.error_message = Some(str(msg));
                }
            }
            None => {
                r.node_id = node.into();
                r.host = str(host);
                r.port = port;
            }
        }
        return r;
    }
    let coordinators = keys
        .into_iter()
        .map(|key| {
            let c = Coordinator::default().with_key(str(key));
            match &error {
                Some((code, msg)) => c
                    .with_error_code(*code)
                    .with_error_message(Some(str(msg.clone())))
                    .with_node_id((-1).into())
                    .with_port(-1),
                None => c
                    .with_node_id(node.into())
                    .with_host(str(host.clone()))
                    .with_port(port),
            }
        })
        .collect();
    FindCoordinatorResponse::default().with_coordinators(coordinators)
}
