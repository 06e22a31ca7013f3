//! The metadata state machine: committed entries applied, in order, to the image.
//!
//! The other half of the metadata log ([`crate::store`] keeps the entries durable); a quorum
//! applies an entry only once it is committed, so every node's image is the same function of
//! the same committed prefix.

use std::sync::Arc;

use crate::image::MetadataImage;
use crate::record::{ConfigResource, MetadataRecord};
use crate::store::{Entry, Snapshot};

#[derive(Debug, Clone)]
pub struct MetadataStateMachine {
    image: Arc<MetadataImage>,
    /// Term of the last entry applied.
    term: u64,
}

impl MetadataStateMachine {
    /// The state `snapshot` holds (or the empty image).
    pub fn new(snapshot: Option<&Snapshot>) -> Self {
        let mut image = MetadataImage::empty();
        let mut term = 0;
        if let Some(s) = snapshot {
            for r in &s.records {
                image = image.apply(s.offset, r);
            }
            image.offset = s.offset;
            term = s.term;
        }
        Self {
            image: Arc::new(image),
            term,
        }
    }

    /// Applies entries in offset order; those already applied are skipped.
    pub fn apply<'a>(
        &mut self,
        entries: impl IntoIterator<Item = &'a Entry>,
    ) -> &Arc<MetadataImage> {
        let mut next: Option<MetadataImage> = None;
        for e in entries {
            let current = next.as_ref().unwrap_or(&self.image);
            if e.offset <= current.offset {
                continue;
            }
            next = Some(current.apply(e.offset, &e.record));
            self.term = e.term;
        }
        if let Some(image) = next {
            self.image = Arc::new(image);
        }
        &self.image
    }

    pub fn image(&self) -> &Arc<MetadataImage> {
        &self.image
    }

    /// Offset and term of the last entry applied.
    pub fn applied(&self) -> (i64, u64) {
        (self.image.offset, self.term)
    }

    /// The image as a snapshot: the records that rebuild it.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            offset: self.image.offset,
            term: self.term,
            records: image_records(&self.image),
        }
    }
}

/// The records that rebuild `image` from nothing.
pub fn image_records(image: &MetadataImage) -> Vec<MetadataRecord> {
    let mut out = Vec::new();
    for b in image.brokers.values() {
        out.push(MetadataRecord::RegisterBroker {
            node_id: b.node_id,
            host: b.host.clone(),
            port: b.port,
            rack: b.rack.clone(),
        });
    }
    for t in image.topics.values() {
        out.push(MetadataRecord::CreateTopic {
            name: t.name.clone(),
            topic_id: t.id,
            partitions: t.partitions.clone(),
            configs: t.configs.clone(),
        });
    }
    if image.next_producer_id > 0 {
        out.push(MetadataRecord::ProducerIds {
            broker_id: -1,
            next_producer_id: image.next_producer_id,
        });
    }
    for (node, configs) in &image.broker_configs {
        for (k, v) in configs {
            out.push(MetadataRecord::SetConfig {
                resource: ConfigResource::Broker(*node),
                key: k.clone(),
                value: Some(v.clone()),
            });
        }
    }
    out
}
