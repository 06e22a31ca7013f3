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
use strand_metadata::controller::ApiError;
use strand_metadata::{Committed, MetadataImage, MetadataRecord, Quorum};

/// What a decision answers with: the records that carry it out.
pub trait IntoRecords {
    fn records(&self) -> Vec<MetadataRecord>;
}

impl IntoRecords for Vec<MetadataRecord> {
    fn records(&self) -> Vec<MetadataRecord> {
        self.clone()
    }
}

impl IntoRecords for (MetadataRecord, std::ops::Range<i64>) {
    fn records(&self) -> Vec<MetadataRecord> {
        vec![self.0.clone()]
    }
}

impl IntoRecords for MetadataRecord {
    fn records(&self) -> Vec<MetadataRecord> {
        vec![self.clone()]
    }
}

pub struct ControllerClient {
    quorum: Arc<dyn Quorum>,
    /// One decision at a time.
    deciding: tokio::sync::Mutex<()>,
}

impl ControllerClient {
    pub fn new(quorum: Arc<dyn Quorum>) -> Self {
        Self {
            quorum,
            deciding: tokio::sync::Mutex::new(()),
        }
    }

    /// The image of the committed metadata log.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.quorum.image()
    }

    /// Runs `decide` against the committed image and commits the records it returns. Returns
    /// the decision with the commit (`None` when there was nothing to write).
    pub async fn commit<T: IntoRecords>(
        &self,
        decide: impl FnOnce(&MetadataImage) -> Result<T, ApiError>,
    ) -> Result<(T, Option<Committed>), ApiError> {
        let _turn = self.deciding.lock().await;
        let decided = decide(&self.quorum.image())?;
        let records = decided.records();
        if records.is_empty() {
            return Ok((decided, None));
        }
        let committed = self.quorum.propose(records).await.map_err(|e| {
            let code = match e {
                strand_metadata::QuorumError::NotAvailable(_) => ResponseError::NotController,
                strand_metadata::QuorumError::Store(_) => ResponseError::KafkaStorageError,
            };
            ApiError::new(code, e.to_string())
        })?;
        Ok((decided, Some(committed)))
    }
}
