//! DeleteRecords: moves each partition's log start offset forward (never past the high
//! watermark); whole segments below it are deleted.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use crate::broker::{now_ms, Broker};

pub fn handle(broker: &Broker, req: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let now = now_ms();
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let r = DeleteRecordsPartitionResult::default()
                        .with_partition_index(p.partition_index)
                        .with_low_watermark(-1);
                    let Some(part) = broker.partition(t.name.as_str(), p.partition_index) else {
                        return r.with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    };
                    let result = part.log().delete_records(p.offset, now);
                    match result {
                        Ok(low) => r.with_low_watermark(low),
                        Err(e) => r.with_error_code(e.kafka_error_code()),
                    }
                })
                .collect();
            DeleteRecordsTopicResult::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    // The new log start offsets must survive a restart.
    if let Err(e) = broker.checkpoint() {
        tracing::error!(error = %e, "cannot write checkpoints after DeleteRecords");
    }
    DeleteRecordsResponse::default().with_topics(topics)
}
