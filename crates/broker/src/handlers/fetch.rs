//! Fetch: finds each partition's byte range through the index and answers with file ranges,
//! which the connection sends with sendfile. Batches are never decoded here.
//!
//! A fetch that finds fewer than `min_bytes` waits up to `max_wait_ms` and is answered the
//! moment an append makes enough data available.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::{AbortedTransaction, PartitionData};
use kafka_protocol::messages::{FetchRequest, ProducerId, TopicName};
use strand_protocol::fetch::{write_fetch_response, FetchHead, FetchPartition, FetchTopic};
use strand_protocol::frame::RequestFrame;
use strand_storage::{FileSlice, LogError};
use uuid::Uuid;

use super::str;
use crate::broker::Broker;
use crate::connection::{Reply, Response};

const FIRST_WITH_TOPIC_ID: i16 = 13;
const READ_COMMITTED: i8 = 1;

/// One requested partition.
struct Want {
    partition: i32,
    fetch_offset: i64,
    max_bytes: i32,
    current_leader_epoch: i32,
}

struct WantTopic {
    name: Option<String>,
    topic_id: Uuid,
    partitions: Vec<Want>,
}

struct Plan {
    version: i16,
    correlation_id: i32,
    max_bytes: usize,
    read_committed: bool,
    topics: Vec<WantTopic>,
}

pub fn handle(broker: &Arc<Broker>, frame: &RequestFrame, req: FetchRequest) -> Reply {
    let version = frame.version();
    if req.session_id != 0 || req.session_epoch > 0 {
        // Strand creates no fetch sessions (it answers session id 0), so a client never holds one.
        let head = FetchHead {
            error_code: ResponseError::FetchSessionIdNotFound.code(),
            ..FetchHead::default()
        };
        return finish(version, frame.correlation_id(), head, Vec::new());
    }
    let image = broker.image();
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let name = if version >= FIRST_WITH_TOPIC_ID {
                image.topic_by_id(&t.topic_id).map(|x| x.name.clone())
            } else {
                Some(t.topic.to_string())
            };
            WantTopic {
                name,
                topic_id: t.topic_id,
                partitions: t
                    .partitions
                    .into_iter()
                    .map(|p| Want {
                        partition: p.partition,
                        fetch_offset: p.fetch_offset,
                        max_bytes: p.partition_max_bytes,
                        current_leader_epoch: p.current_leader_epoch,
                    })
                    .collect(),
            }
        })
        .collect();
    let request_max = if req.max_bytes <= 0 {
        broker.config.fetch_max_bytes
    } else {
        req.max_bytes as usize
    };
    let plan = Plan {
        version,
        correlation_id: frame.correlation_id(),
        max_bytes: request_max.min(broker.config.fetch_max_bytes),
        read_committed: req.isolation_level == READ_COMMITTED,
        topics,
    };
    let min_bytes = req.min_bytes.max(0) as usize;
    let max_wait = Duration::from_millis(req.max_wait_ms.max(0) as u64);
    let mut appends = broker.subscribe_appends();
    appends.borrow_and_update();
    let (topics, bytes, errors) = read(broker, &plan);
    if bytes >= min_bytes || errors || max_wait.is_zero() {
        return finish(
            plan.version,
            plan.correlation_id,
            FetchHead::default(),
            topics,
        );
    }
    drop(topics);
    let broker = broker.clone();
    Reply::Later(Box::pin(async move {
        let deadline = tokio::time::Instant::now() + max_wait;
        loop {
            let timed_out = tokio::select! {
                changed = appends.changed() => changed.is_err(),
                _ = tokio::time::sleep_until(deadline) => true,
            };
            let (topics, bytes, errors) = read(&broker, &plan);
            if timed_out || bytes >= min_bytes || errors {
                return finish(
                    plan.version,
                    plan.correlation_id,
                    FetchHead::default(),
                    topics,
                );
            }
        }
    }))
}

fn finish(
    version: i16,
    correlation_id: i32,
    head: FetchHead,
    topics: Vec<FetchTopic<Option<FileSlice>>>,
) -> Reply {
    match write_fetch_response(version, correlation_id, head, topics) {
        Ok(pieces) => Reply::Now(Response::Pieces(pieces)),
        Err(e) => Reply::Close(e.to_string()),
    }
}

/// Reads every requested partition once: the response topics, the record bytes found, and
/// whether any partition has an error (which ends a long poll at once). A partition with no
/// data gets an empty record set, never a null one, as Kafka does (librdkafka 2.0.2 loops on
/// null).
fn read(broker: &Broker, plan: &Plan) -> (Vec<FetchTopic<Option<FileSlice>>>, usize, bool) {
    let mut budget = plan.max_bytes;
    let mut total = 0usize;
    let mut errors = false;
    let mut out = Vec::with_capacity(plan.topics.len());
    for t in &plan.topics {
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for w in &t.partitions {
            let data = PartitionData::default()
                .with_partition_index(w.partition)
                .with_high_watermark(-1)
                .with_last_stable_offset(-1)
                .with_log_start_offset(-1);
            let (data, records) = read_partition(
                broker,
                t,
                w,
                data,
                &mut budget,
                total == 0,
                plan.read_committed,
            );
            errors |= data.error_code != 0;
            let len = records.as_ref().map_or(0, |r| r.len);
            total += len;
            partitions.push(FetchPartition { data, records });
        }
        out.push(FetchTopic {
            name: TopicName(str(t.name.clone().unwrap_or_default())),
            topic_id: t.topic_id,
            partitions,
        });
    }
    (out, total, errors)
}

fn read_partition(
    broker: &Broker,
    t: &WantTopic,
    w: &Want,
    data: PartitionData,
    budget: &mut usize,
    first: bool,
    read_committed: bool,
) -> (PartitionData, Option<FileSlice>) {
    let Some(name) = &t.name else {
        return (
            data.with_error_code(ResponseError::UnknownTopicId.code()),
            None,
        );
    };
    let Some(p) = broker.partition(name, w.partition) else {
        return (
            data.with_error_code(ResponseError::UnknownTopicOrPartition.code()),
            None,
        );
    };
    if w.current_leader_epoch >= 0 && w.current_leader_epoch != p.leader_epoch {
        let e = if w.current_leader_epoch > p.leader_epoch {
            ResponseError::UnknownLeaderEpoch
        } else {
            ResponseError::FencedLeaderEpoch
        };
        return (data.with_error_code(e.code()), None);
    }
    let log = p.log();
    let hw = log.high_watermark();
    let lso = log.last_stable_offset();
    let bound = if read_committed { lso } else { hw };
    let data = data
        .with_high_watermark(hw)
        .with_last_stable_offset(lso)
        .with_log_start_offset(log.log_start_offset());
    let limit = (w.max_bytes.max(0) as usize).min(*budget);
    if limit == 0 && !first {
        return (data, None);
    }
    // A committed read is told which aborted transactions overlap what it gets (an empty
    // list when none do); an uncommitted one gets null.
    let data = if read_committed {
        data.with_aborted_transactions(Some(Vec::new()))
    } else {
        data
    };
    match log.read(w.fetch_offset, limit, bound, first) {
        Ok(Some(slice)) => {
            *budget = budget.saturating_sub(slice.len);
            let data = if read_committed {
                let aborted = log
                    .aborted_transactions(w.fetch_offset, slice.end_offset_bound)
                    .into_iter()
                    .map(|a| {
                        AbortedTransaction::default()
                            .with_producer_id(ProducerId(a.producer_id))
                            .with_first_offset(a.first_offset)
                    })
                    .collect();
                data.with_aborted_transactions(Some(aborted))
            } else {
                data
            };
            (data, Some(slice))
        }
        Ok(None) => (data, None),
        Err(e @ LogError::OffsetOutOfRange { .. }) => {
            (data.with_error_code(crate::errors::log(&e).code()), None)
        }
        Err(e) => {
            tracing::error!(partition = %p.tp, error = %e, "fetch read failed");
            (data.with_error_code(crate::errors::log(&e).code()), None)
        }
    }
}
