//! The broker's way to change metadata: a request is decided by the controller against the
//! committed image and carried out by committing the records it answers with through the
//! metadata quorum.
//!
//! Decisions are taken one at a time, each against the image every earlier decision left, so
//! two requests never decide on the same state (two CreateTopics of one name, two producer id
//! blocks). In a combined node the controller runs here, on the local quorum; in a cluster only
//! the active controller decides, and other nodes forward to it.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use strand_metadata::controller::{ApiError, ControllerConfig};
use strand_metadata::request::decide;
use strand_metadata::{
    Committed, ControllerReply, ControllerRequest, MetadataImage, MetadataRecord, Quorum,
};

/// The controller's answer to a request: the records that carry it out, and what the
/// requester learns.
#[derive(Debug, Clone)]
pub struct Decision {
    pub records: Vec<MetadataRecord>,
    pub reply: ControllerReply,
}

pub struct ControllerClient {
    quorum: Arc<dyn Quorum>,
    config: ControllerConfig,
    /// One decision at a time.
    deciding: tokio::sync::Mutex<()>,
}

impl ControllerClient {
    pub fn new(quorum: Arc<dyn Quorum>, config: ControllerConfig) -> Self {
        Self {
            quorum,
            config,
            deciding: tokio::sync::Mutex::new(()),
        }
    }

    /// The image of the committed metadata log.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.quorum.image()
    }

    /// The quorum as DescribeQuorum reports it.
    pub fn describe_quorum(&self, now_ms: i64) -> strand_metadata::QuorumDescription {
        self.quorum.describe(now_ms)
    }

    /// The decision `request` would get now, committing nothing (`validate_only`).
    pub fn decide(&self, request: &ControllerRequest) -> Result<Decision, ApiError> {
        let (records, reply) = decide(&self.quorum.image(), request, &self.config)?;
        Ok(Decision { records, reply })
    }

    /// Decides `request` against the committed image and commits the records of the decision
    /// (no commit when there is nothing to write).
    pub async fn submit(
        &self,
        request: &ControllerRequest,
    ) -> Result<(Decision, Option<Committed>), ApiError> {
        let _turn = self.deciding.lock().await;
        let decision = self.decide(request)?;
        if decision.records.is_empty() {
            return Ok((decision, None));
        }
        let committed = self
            .quorum
            .propose(decision.records.clone())
            .await
            .map_err(|e| {
                let code = match e {
                    strand_metadata::QuorumError::NotAvailable(_) => ResponseError::NotController,
                    strand_metadata::QuorumError::Store(_) => ResponseError::KafkaStorageError,
                };
                ApiError::new(code, e.to_string())
            })?;
        Ok((decision, Some(committed)))
    }
}
