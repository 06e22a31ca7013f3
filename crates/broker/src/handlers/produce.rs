//! Produce: validate and append each partition's batches; answer at once for `acks=1`, after
//! fsync (group commit) for `acks=all`, and not at all for `acks=0`.

use std::sync::Arc;

use bytes::BytesMut;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, TopicName};
use strand_protocol::frame::RequestFrame;
use strand_storage::LogError;

use super::{respond, str};
use crate::broker::{now_ms, Broker};
use crate::connection::Reply;
use crate::partition::Partition;

const FIRST_WITH_TOPIC_ID: i16 = 13;

pub fn handle(broker: &Arc<Broker>, frame: &RequestFrame, req: ProduceRequest) -> Reply {
    let version = frame.version();
    let acks = req.acks;
    let image = broker.image();
    let now = now_ms();
    let mut to_sync: Vec<(usize, usize, Arc<Partition>, i64)> = Vec::new();
    let mut appended = false;
    let mut responses = Vec::with_capacity(req.topic_data.len());
    for (ti, topic) in req.topic_data.into_iter().enumerate() {
        let name = if version >= FIRST_WITH_TOPIC_ID {
            image.topic_by_id(&topic.topic_id).map(|t| t.name.clone())
        } else {
            Some(topic.name.to_string())
        };
        let mut partition_responses = Vec::with_capacity(topic.partition_data.len());
        for (pi, pd) in topic.partition_data.into_iter().enumerate() {
            let mut r = PartitionProduceResponse::default()
                .with_index(pd.index)
                .with_base_offset(-1)
                .with_log_append_time_ms(-1)
                .with_log_start_offset(-1);
            let error = |r: PartitionProduceResponse, e: ResponseError, msg: Option<String>| {
                let r = r.with_error_code(e.code());
                if version >= 8 {
                    r.with_error_message(msg.map(str))
                } else {
                    r
                }
            };
            if !matches!(acks, -1..=1) {
                partition_responses.push(error(r, ResponseError::InvalidRequiredAcks, None));
                continue;
            }
            if name.as_deref() == Some(crate::groups::OFFSETS_TOPIC) {
                // Only the coordinator writes there, as Kafka enforces.
                partition_responses.push(error(
                    r,
                    ResponseError::InvalidTopicException,
                    Some("Cannot append to internal topic __consumer_offsets".into()),
                ));
                continue;
            }
            let partition = name.as_deref().and_then(|n| broker.partition(n, pd.index));
            let Some(partition) = partition else {
                let e = if name.is_none() {
                    ResponseError::UnknownTopicId
                } else {
                    ResponseError::UnknownTopicOrPartition
                };
                partition_responses.push(error(r, e, None));
                continue;
            };
            let Some(records) = pd.records else {
                partition_responses.push(error(
                    r,
                    ResponseError::InvalidRecord,
                    Some("no record set".into()),
                ));
                continue;
            };
            let mut buf = BytesMut::from(&records[..]);
            let result = {
                let mut log = partition.log();
                let result = log.append(&mut buf, partition.leader_epoch, now);
                if result.is_ok() {
                    let end = log.log_end_offset();
                    log.update_high_watermark(end);
                }
                result.map(|info| (info, log.log_start_offset()))
            };
            match result {
                Ok((info, start)) => {
                    appended = true;
                    r = r
                        .with_base_offset(info.base_offset)
                        .with_log_append_time_ms(info.log_append_time_ms)
                        .with_log_start_offset(start);
                    if acks == -1 {
                        to_sync.push((ti, pi, partition.clone(), info.last_offset + 1));
                    }
                    partition_responses.push(r);
                }
                Err(e) => {
                    log_append_error(&partition, &e);
                    let mut r = r.with_error_code(e.kafka_error_code());
                    if version >= 8 {
                        r.error_message = Some(str(e.to_string()));
                        if let LogError::InvalidBatch(_) = e {
                            r.record_errors = vec![BatchIndexAndErrorMessage::default()
                                .with_batch_index(0)
                                .with_batch_index_error_message(Some(str(e.to_string())))];
                        }
                    }
                    partition_responses.push(r);
                }
            }
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(if version < FIRST_WITH_TOPIC_ID {
                    topic.name
                } else {
                    TopicName::default()
                })
                .with_topic_id(topic.topic_id)
                .with_partition_responses(partition_responses),
        );
    }
    if appended {
        broker.notify_appended();
    }
    let response = ProduceResponse::default().with_responses(responses);
    match acks {
        0 => Reply::None,
        -1 if !to_sync.is_empty() => {
            let broker = broker.clone();
            // Keep the header for the answer, not the request's bytes: they are on disk
            // already, and holding them until the fsync is memory that grows with the queue.
            let frame = RequestFrame {
                api_key: frame.api_key,
                header: frame.header.clone(),
                body: bytes::Bytes::new(),
            };
            Reply::Later(Box::pin(async move {
                let mut response = response;
                for (ti, pi, partition, offset) in to_sync {
                    if let Err(e) = broker.flusher.wait_durable(partition, offset).await {
                        let r = &mut response.responses[ti].partition_responses[pi];
                        r.error_code = ResponseError::KafkaStorageError.code();
                        if frame.version() >= 8 {
                            r.error_message = Some(str(e));
                        }
                    }
                }
                respond(&frame, &response)
            }))
        }
        _ => respond(frame, &response),
    }
}

fn log_append_error(partition: &Partition, e: &LogError) {
    match e {
        LogError::InvalidBatch(_) => {
            tracing::debug!(partition = %partition.tp, error = %e, "refused batch")
        }
        _ => tracing::error!(partition = %partition.tp, error = %e, "append failed"),
    }
}
