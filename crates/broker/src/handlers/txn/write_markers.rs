//! WriteTxnMarkers: COMMIT or ABORT markers written to partitions on a coordinator's (or an
//! operator's) behalf. The transaction coordinator of this broker writes its markers
//! directly (`crate::txns`); this request is how an operator ends a hanging transaction
//! (`strand transactions abort`, Kafka's `kafka-transactions.sh abort`), and how another
//! coordinator will reach this broker's partitions.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{WriteTxnMarkersRequest, WriteTxnMarkersResponse};
use strand_coordinator::txn::Prepared;

use crate::broker::Broker;
use crate::txns;

pub async fn handle(broker: &Arc<Broker>, req: WriteTxnMarkersRequest) -> WriteTxnMarkersResponse {
    let mut markers = Vec::with_capacity(req.markers.len());
    for m in &req.markers {
        let prepared = Prepared {
            transactional_id: String::new(),
            producer_id: m.producer_id.0,
            producer_epoch: m.producer_epoch,
            commit: m.transaction_result,
            partitions: Default::default(),
        };
        let mut topics = Vec::with_capacity(m.topics.len());
        for t in &m.topics {
            let mut partitions = Vec::with_capacity(t.partition_indexes.len());
            for &p in &t.partition_indexes {
                let known = broker.partition(t.name.as_str(), p).is_some();
                let code = if !known {
                    ResponseError::UnknownTopicOrPartition.code()
                } else {
                    match txns::write_marker(
                        broker,
                        t.name.as_str(),
                        p,
                        &prepared,
                        m.coordinator_epoch,
                    )
                    .await
                    {
                        Ok(()) => 0,
                        Err(e) => e.code(),
                    }
                };
                partitions.push(
                    WritableTxnMarkerPartitionResult::default()
                        .with_partition_index(p)
                        .with_error_code(code),
                );
            }
            topics.push(
                WritableTxnMarkerTopicResult::default()
                    .with_name(t.name.clone())
                    .with_partitions(partitions),
            );
        }
        markers.push(
            WritableTxnMarkerResult::default()
                .with_producer_id(m.producer_id)
                .with_topics(topics),
        );
    }
    WriteTxnMarkersResponse::default().with_markers(markers)
}
