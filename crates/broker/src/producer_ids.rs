//! Producer ids for idempotent and transactional producers: taken from the metadata log a
//! block at a time (Kafka's ProducerIdsRecord), so an id is never handed out twice, across
//! restarts too.

use std::ops::Range;
use strand_metadata::{ControllerReply, ControllerRequest};

use kafka_protocol::error::ResponseError;

use crate::broker::Broker;

#[derive(Debug, Default)]
pub struct ProducerIds {
    block: tokio::sync::Mutex<Range<i64>>,
}

impl ProducerIds {
    /// The next unused producer id; takes a new block from the metadata log when this one is
    /// spent.
    pub async fn next(&self, broker: &Broker) -> Result<i64, ResponseError> {
        let mut block = self.block.lock().await;
        if block.is_empty() {
            let node = broker.config.node_id;
            let (decided, _) = broker
                .submit(ControllerRequest::AllocateProducerIds { broker_id: node })
                .await
                .map_err(|e| {
                    tracing::error!(error = %e.message, "cannot allocate producer ids");
                    ResponseError::CoordinatorLoadInProgress
                })?;
            let ControllerReply::ProducerIds(range) = decided.reply else {
                return Err(ResponseError::UnknownServerError);
            };
            *block = range;
        }
        let id = block.start;
        block.start += 1;
        Ok(id)
    }
}
