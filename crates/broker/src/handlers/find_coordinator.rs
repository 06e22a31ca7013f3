//! FindCoordinator: this broker coordinates every group and transactional id (single node).
//! Creates `__consumer_offsets` or `__transaction_state` on first use.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{FindCoordinatorRequest, FindCoordinatorResponse};
use strand_protocol::frame::RequestFrame;

use super::str;
use crate::broker::Broker;
use crate::groups::ensure_offsets_topic;

const GROUP: i8 = 0;
const TRANSACTION: i8 = 1;

pub async fn handle(
    broker: &Broker,
    frame: &RequestFrame,
    req: FindCoordinatorRequest,
    listener: &crate::listeners::Listener,
) -> FindCoordinatorResponse {
    let keys: Vec<String> = if frame.version() >= 4 {
        req.coordinator_keys.iter().map(|k| k.to_string()).collect()
    } else {
        vec![req.key.to_string()]
    };
    let ensured = match req.key_type {
        GROUP => ensure_offsets_topic(broker).await,
        TRANSACTION => crate::txns::ensure_txn_topic(broker).await,
        // Share groups are not implemented: no coordinator for them.
        other => Err(strand_metadata::controller::ApiError::new(
            ResponseError::InvalidRequest,
            format!("Key type {other} is not supported"),
        )),
    };
    let error = ensured.err().map(|e| {
        let code = if e.code == ResponseError::InvalidRequest.code() {
            e.code
        } else {
            ResponseError::CoordinatorNotAvailable.code()
        };
        (code, e.message)
    });
    let host = listener.advertised_host.clone();
    let port = i32::from(listener.advertised_port);
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
