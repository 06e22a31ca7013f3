//! ListOffsets: earliest, latest, by timestamp, max timestamp.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use strand_protocol::frame::RequestFrame;

use crate::broker::Broker;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const READ_COMMITTED: i8 = 1;

pub fn handle(
    broker: &Broker,
    frame: &RequestFrame,
    req: ListOffsetsRequest,
) -> ListOffsetsResponse {
    let version = frame.version();
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let r = ListOffsetsPartitionResponse::default().with_partition_index(p.partition_index).with_timestamp(-1).with_offset(-1);
                    let Some(part) = broker.partition(t.name.as_str(), p.partition_index) else {
                        return r.with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    };
                    if p.current_leader_epoch >= 0 && p.current_leader_epoch != part.leader_epoch {
                        let e = if p.current_leader_epoch > part.leader_epoch { ResponseError::UnknownLeaderEpoch } else { ResponseError::FencedLeaderEpoch };
                        return r.with_error_code(e.code());
                    }
                    let log = part.log();
                    // A committed reader's end is the last stable offset (v2+ carry the level).
                    let hw = if version >= 2 && req.isolation_level == READ_COMMITTED {
                        log.last_stable_offset()
                    } else {
                        log.high_watermark()
                    };
                    if version == 0 {
                        return old_style(&log, p.timestamp, p.max_num_offsets, hw, r);
                    }
                    // The leader epoch field exists from v4 on.
                    let r = if version >= 4 { r.with_leader_epoch(part.leader_epoch) } else { r };
                    let found = match p.timestamp {
                        LATEST => Ok(Some((hw, -1))),
                        EARLIEST | EARLIEST_LOCAL => Ok(Some((log.log_start_offset(), -1))),
                        MAX_TIMESTAMP => log.max_timestamp().map(|o| o.filter(|(off, _)| *off < hw)),
                        ts if ts >= 0 => log.offset_for_timestamp(ts).map(|o| o.filter(|(off, _)| *off < hw)),
                        _ => Ok(None),
                    };
                    match found {
                        Ok(Some((offset, ts))) => r.with_offset(offset).with_timestamp(ts),
                        Ok(None) => r,
                        Err(e) => {
                            tracing::error!(partition = %part.tp, error = %e, "offset lookup failed");
                            r.with_error_code(crate::errors::log(&e).code())
                        }
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default().with_name(t.name).with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}

/// ListOffsets v0 (removed in Kafka 4, served again): a list of offsets instead of one, as
/// Kafka 3.9 answered it. Only -1 and -2 and real times are known to v0; a consumer is never
/// told of offsets past the high watermark (the watermark takes their place).
fn old_style(
    log: &strand_storage::PartitionLog,
    timestamp: i64,
    max_num_offsets: i32,
    hw: i64,
    r: ListOffsetsPartitionResponse,
) -> ListOffsetsPartitionResponse {
    if timestamp < EARLIEST {
        return r.with_error_code(ResponseError::UnsupportedVersion.code());
    }
    let max = usize::try_from(max_num_offsets).unwrap_or(0);
    let mut offsets = log.legacy_offsets_before(timestamp, max, crate::broker::now_ms());
    if offsets.first().is_some_and(|o| *o > hw) {
        offsets.retain(|o| *o <= hw);
        offsets.insert(0, hw);
    }
    r.with_old_style_offsets(offsets)
}
