//! Produce: validate and append each partition's batches; answer at once for `acks=1`, after
//! fsync (group commit) for `acks=all`, and not at all for `acks=0`.

use std::ops::Range;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, RequestHeader, TopicName};
use strand_protocol::frame::RequestFrame;
use strand_storage::{AppendOrigin, LogError};
use uuid::Uuid;

use super::{respond, str};
use crate::broker::{now_ms, Broker};
use crate::connection::Reply;
use crate::partition::{Partition, TxnGuard};

const FIRST_WITH_TOPIC_ID: i16 = 13;

/// One partition's records: where they are in the request body.
enum Records {
    /// A range of the request body.
    InBody(Range<usize>),
    /// Not a slice of the body (never expected; copied so that it can still be appended).
    Owned(BytesMut),
    Missing,
}

struct PartitionPlan {
    index: i32,
    records: Records,
}

struct TopicPlan {
    /// The name the request gave (answered back before v13).
    request_name: TopicName,
    topic_id: Uuid,
    partitions: Vec<PartitionPlan>,
}

/// Takes the request apart into owned names and byte ranges, then lets go of every other
/// reference to the frame's buffer, so that the batches can be stamped (base offset, leader
/// epoch) in place and written from there: no copy of the records in user space.
fn plan(frame: RequestFrame, mut req: ProduceRequest) -> (Vec<TopicPlan>, BytesMut) {
    let body = frame.body;
    let base = body.as_ptr() as usize;
    let topic_data = std::mem::take(&mut req.topic_data);
    drop(req); // the transactional id and tagged fields may be slices of the buffer
    let mut topics = Vec::with_capacity(topic_data.len());
    for topic in topic_data {
        let partitions = topic
            .partition_data
            .into_iter()
            .map(|pd| {
                let records = match pd.records {
                    None => Records::Missing,
                    Some(r) => {
                        let start = (r.as_ptr() as usize).wrapping_sub(base);
                        if start <= body.len() && r.len() <= body.len() - start {
                            Records::InBody(start..start + r.len())
                        } else {
                            Records::Owned(BytesMut::from(&r[..]))
                        }
                    }
                };
                PartitionPlan {
                    index: pd.index,
                    records,
                }
            })
            .collect();
        topics.push(TopicPlan {
            request_name: TopicName(str(topic.name.to_string())),
            topic_id: topic.topic_id,
            partitions,
        });
    }
    drop(frame.header); // its client id is a slice of the buffer too
    let body = body
        .try_into_mut()
        .unwrap_or_else(|shared| BytesMut::from(&shared[..]));
    (topics, body)
}

pub fn handle(broker: &Arc<Broker>, frame: RequestFrame, req: ProduceRequest) -> Reply {
    let version = frame.version();
    // The answer needs only the API, version and correlation id.
    let reply_to = RequestFrame {
        api_key: frame.api_key,
        header: RequestHeader::default()
            .with_request_api_key(frame.header.request_api_key)
            .with_request_api_version(version)
            .with_correlation_id(frame.correlation_id()),
        body: Bytes::new(),
    };
    let acks = req.acks;
    let transactional_id = req.transactional_id.as_ref().map(|t| t.to_string());
    let (topics, mut body) = plan(frame, req);
    let image = broker.image();
    let now = now_ms();
    let mut to_sync: Vec<(usize, usize, Arc<Partition>, i64)> = Vec::new();
    let mut appended = false;
    let mut responses = Vec::with_capacity(topics.len());
    for (ti, topic) in topics.into_iter().enumerate() {
        let name = if version >= FIRST_WITH_TOPIC_ID {
            image.topic_by_id(&topic.topic_id).map(|t| t.name.clone())
        } else {
            Some(topic.request_name.to_string())
        };
        let mut partition_responses = Vec::with_capacity(topic.partitions.len());
        for (pi, pd) in topic.partitions.into_iter().enumerate() {
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
            if let Some(internal) = name
                .as_deref()
                .filter(|n| [crate::groups::OFFSETS_TOPIC, crate::txns::TXN_TOPIC].contains(n))
            {
                // Only the coordinators write there, as Kafka enforces.
                partition_responses.push(error(
                    r,
                    ResponseError::InvalidTopicException,
                    Some(format!("Cannot append to internal topic {internal}")),
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
            let mut owned;
            let buf: &mut [u8] = match pd.records {
                Records::InBody(range) => &mut body[range],
                Records::Owned(b) => {
                    owned = b;
                    &mut owned
                }
                Records::Missing => {
                    partition_responses.push(error(
                        r,
                        ResponseError::InvalidRecord,
                        Some("no record set".into()),
                    ));
                    continue;
                }
            };
            if let Err((e, message)) = request_rules(version, buf) {
                partition_responses.push(error(r, e, Some(message)));
                continue;
            }
            let guard = match verify_txn(broker, transactional_id.as_deref(), &partition, buf) {
                Ok(g) => g,
                Err(e) => {
                    let e = if e == ResponseError::TransactionAbortable && version <= 10 {
                        ResponseError::InvalidTxnState
                    } else {
                        e
                    };
                    let message = (e == ResponseError::InvalidTxnState)
                        .then(|| "Partition was not added to the transaction".to_string());
                    partition_responses.push(error(r, e, message));
                    continue;
                }
            };
            let result = partition
                .append_verified(buf, AppendOrigin::Client, guard, now)
                .map(|info| (info, info.log_start_offset));
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
                    let mut r = r.with_error_code(crate::errors::log(&e).code());
                    if version >= 8 {
                        r.error_message = Some(str(e.to_string()));
                        if let LogError::Records(records) = &e {
                            // KIP-467: the producer fails these records with their own
                            // message, and the rest of the batch with another error.
                            r.record_errors = records
                                .errors
                                .iter()
                                .map(|e| {
                                    BatchIndexAndErrorMessage::default()
                                        .with_batch_index(e.index)
                                        .with_batch_index_error_message(Some(str(e
                                            .message
                                            .clone())))
                                })
                                .collect();
                        }
                    }
                    partition_responses.push(r);
                }
            }
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(if version < FIRST_WITH_TOPIC_ID {
                    topic.request_name
                } else {
                    TopicName::default()
                })
                .with_topic_id(topic.topic_id)
                .with_partition_responses(partition_responses),
        );
    }
    // The records are on disk (or in the page cache): the request's bytes are not kept while
    // an acks=all answer waits for fsync, memory that would grow with the queue.
    drop(body);
    if appended {
        broker.notify_appended();
    }
    let response = ProduceResponse::default().with_responses(responses);
    match acks {
        0 => Reply::None,
        -1 if !to_sync.is_empty() => {
            let broker = broker.clone();
            Reply::Later(Box::pin(async move {
                let mut response = response;
                for (ti, pi, partition, offset) in to_sync {
                    if let Err(e) = broker.flusher.wait_durable(partition, offset).await {
                        let r = &mut response.responses[ti].partition_responses[pi];
                        r.error_code = ResponseError::KafkaStorageError.code();
                        if version >= 8 {
                            r.error_message = Some(str(e));
                        }
                    }
                }
                respond(&reply_to, &response)
            }))
        }
        _ => respond(&reply_to, &response),
    }
}

/// The rules of the request's version for a partition's records, before the log sees them
/// (Kafka's `ProduceRequest.validateRecords`): from v3, exactly one batch, of magic 2, and
/// zstd only from v7 (KIP-110).
fn request_rules(version: i16, records: &[u8]) -> Result<(), (ResponseError, String)> {
    let Some(h) = strand_protocol::batch::BatchHeader::new(records) else {
        return Ok(()); // the log says what is wrong with it
    };
    if h.magic() != strand_protocol::batch::MAGIC_V2 {
        return Err((
            ResponseError::InvalidRecord,
            format!(
                "Produce requests with version {version} are only allowed to contain record \
                 batches with magic version 2"
            ),
        ));
    }
    if version < 7 && h.codec() == Some(strand_protocol::batch::Codec::Zstd) {
        return Err((
            ResponseError::UnsupportedCompressionType,
            format!(
                "Produce requests with version {version} are not allowed to use ZStandard \
                 compression"
            ),
        ));
    }
    // More than one batch; if what follows is not a whole batch, the log reports it corrupt.
    let complete = || strand_protocol::batch::validate_record_set(records, usize::MAX).is_ok();
    if h.total_size().is_some_and(|size| size < records.len()) && complete() {
        return Err((
            ResponseError::InvalidRecord,
            format!(
                "Produce requests with version {version} are only allowed to contain exactly \
                 one record batch per partition"
            ),
        ));
    }
    Ok(())
}

/// KIP-890: a transactional batch for a partition where its producer has no open
/// transaction must belong to a transaction the coordinator has this partition in.
fn verify_txn(
    broker: &Broker,
    transactional_id: Option<&str>,
    partition: &Partition,
    records: &[u8],
) -> Result<Option<TxnGuard>, ResponseError> {
    let Some(h) = strand_protocol::batch::BatchHeader::new(records) else {
        return Ok(None); // the log refuses it
    };
    // Control batches are refused by the log (clients may not write them).
    if !h.is_transactional() || h.is_control() || h.producer_id() < 0 {
        return Ok(None);
    }
    let guard = partition.txn_guard(h.producer_id());
    if guard == TxnGuard::Ongoing {
        return Ok(Some(guard));
    }
    let Some(id) = transactional_id else {
        return Err(ResponseError::InvalidTxnState);
    };
    if broker.image().topic(crate::txns::TXN_TOPIC).is_none() {
        return Err(ResponseError::InvalidTxnState);
    }
    let wanted = strand_coordinator::txn::TxnPartitions::from([(
        partition.tp.topic.clone(),
        std::collections::BTreeSet::from([partition.tp.partition]),
    )]);
    let shard = crate::txns::shard_of(broker, id);
    let (pid, epoch) = (h.producer_id(), h.producer_epoch());
    let checked = broker.txns.host.peek(broker, shard, |c| {
        c.verify_partitions(id, pid, epoch, &wanted)
    });
    match checked {
        Ok(Ok(per_partition)) => match per_partition.first().and_then(|(_, _, e)| *e) {
            None => Ok(Some(guard)),
            Some(e) => Err(e),
        },
        Ok(Err(ResponseError::ProducerFenced)) => Err(ResponseError::InvalidProducerEpoch),
        // Retriable for every client, and no metadata refresh (as Kafka remaps them).
        Ok(Err(
            ResponseError::ConcurrentTransactions
            | ResponseError::NotCoordinator
            | ResponseError::CoordinatorLoadInProgress
            | ResponseError::CoordinatorNotAvailable,
        ))
        | Err(_) => Err(ResponseError::NotEnoughReplicas),
        Ok(Err(e)) => Err(e),
    }
}

fn log_append_error(partition: &Partition, e: &LogError) {
    match e {
        LogError::InvalidBatch(_) | LogError::Records(_) => {
            tracing::debug!(partition = %partition.tp, error = %e, "refused batch")
        }
        _ => tracing::error!(partition = %partition.tp, error = %e, "append failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::ApiKey;
    use strand_protocol::frame::decode_body;
    use strand_protocol::testing::request_frame;

    fn request(version: i16, transactional: bool) -> (RequestFrame, ProduceRequest) {
        let records = |fill: u8| Some(Bytes::from(vec![fill; 100]));
        let req = ProduceRequest::default()
            .with_transactional_id(
                transactional.then(|| kafka_protocol::messages::TransactionalId(str("tx"))),
            )
            .with_acks(1)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(str("t")))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(0)
                        .with_records(records(1)),
                    PartitionProduceData::default()
                        .with_index(1)
                        .with_records(records(2)),
                    PartitionProduceData::default()
                        .with_index(2)
                        .with_records(None),
                ])]);
        let bytes = request_frame(ApiKey::Produce, version, 7, "producer-1", &req);
        let frame = RequestFrame::parse(bytes).expect("frame");
        let req = decode_body(&frame).expect("decodes");
        (frame, req)
    }

    #[test]
    fn records_are_stamped_in_the_frame_buffer_without_a_copy() {
        for (version, transactional) in [(3, false), (9, true), (11, false)] {
            let (frame, req) = request(version, transactional);
            let body_at = frame.body.as_ptr();
            let (topics, body) = plan(frame, req);
            assert_eq!(body.as_ptr(), body_at, "v{version}: the body was copied");
            let parts = &topics[0].partitions;
            assert_eq!(topics[0].request_name.as_str(), "t");
            for (p, fill) in parts.iter().zip([1u8, 2]) {
                let Records::InBody(range) = &p.records else {
                    panic!("v{version}: partition {} not in the body", p.index)
                };
                assert!(body[range.clone()].iter().all(|b| *b == fill));
            }
            assert!(matches!(parts[2].records, Records::Missing));
        }
    }
}
