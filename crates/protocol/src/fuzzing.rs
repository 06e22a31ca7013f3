//! Entry points for fuzzing: what the broker does with untrusted bytes before any handler
//! runs. The `fuzz/` targets call these, and `tests/fuzz_replay.rs` replays seeds, their
//! truncations and mutations, and every file under `fuzz/corpus/`, on stable Rust in CI.

use bytes::Bytes;
use kafka_protocol::messages::*;

use crate::api::is_supported;
use crate::batch::{validate_record_set, BatchHeader};
use crate::frame::{decode_body, frame_len, RequestFrame};

/// Frame bytes allowed in a fuzz run (the broker's limit is a config; any value will do).
const FRAME_BYTES_MAX: usize = 1 << 20;

/// A size-prefixed request: frame, header, body at its version and, for Produce, every
/// partition's record set through batch validation. Must never panic.
pub fn request(data: &[u8]) {
    let Some(prefix) = data.get(..4) else { return };
    let Ok(n) = frame_len(
        [prefix[0], prefix[1], prefix[2], prefix[3]],
        FRAME_BYTES_MAX,
    ) else {
        return;
    };
    let rest = &data[4..];
    let frame = Bytes::copy_from_slice(&rest[..n.min(rest.len())]);
    let Ok(frame) = RequestFrame::parse(frame) else {
        return;
    };
    if !is_supported(frame.api_key, frame.version()) {
        return; // the broker closes the connection
    }
    let f = &frame;
    match f.api_key {
        ApiKey::Produce => {
            if let Ok(p) = decode_body::<ProduceRequest>(f) {
                for t in &p.topic_data {
                    for pd in &t.partition_data {
                        if let Some(records) = &pd.records {
                            record_set(records);
                        }
                    }
                }
            }
        }
        ApiKey::Fetch => drop(decode_body::<FetchRequest>(f)),
        ApiKey::ListOffsets => drop(decode_body::<ListOffsetsRequest>(f)),
        ApiKey::Metadata => drop(decode_body::<MetadataRequest>(f)),
        ApiKey::ApiVersions => drop(decode_body::<ApiVersionsRequest>(f)),
        ApiKey::CreateTopics => drop(decode_body::<CreateTopicsRequest>(f)),
        ApiKey::DeleteTopics => drop(decode_body::<DeleteTopicsRequest>(f)),
        ApiKey::DescribeConfigs => drop(decode_body::<DescribeConfigsRequest>(f)),
        ApiKey::AlterConfigs => drop(decode_body::<AlterConfigsRequest>(f)),
        ApiKey::DescribeLogDirs => drop(decode_body::<DescribeLogDirsRequest>(f)),
        ApiKey::CreatePartitions => drop(decode_body::<CreatePartitionsRequest>(f)),
        ApiKey::IncrementalAlterConfigs => drop(decode_body::<IncrementalAlterConfigsRequest>(f)),
        ApiKey::DescribeCluster => drop(decode_body::<DescribeClusterRequest>(f)),
        ApiKey::DescribeQuorum => drop(decode_body::<DescribeQuorumRequest>(f)),
        ApiKey::OffsetCommit => drop(decode_body::<OffsetCommitRequest>(f)),
        ApiKey::OffsetFetch => drop(decode_body::<OffsetFetchRequest>(f)),
        ApiKey::FindCoordinator => drop(decode_body::<FindCoordinatorRequest>(f)),
        ApiKey::JoinGroup => drop(decode_body::<JoinGroupRequest>(f)),
        ApiKey::Heartbeat => drop(decode_body::<HeartbeatRequest>(f)),
        ApiKey::LeaveGroup => drop(decode_body::<LeaveGroupRequest>(f)),
        ApiKey::SyncGroup => drop(decode_body::<SyncGroupRequest>(f)),
        ApiKey::DescribeGroups => drop(decode_body::<DescribeGroupsRequest>(f)),
        ApiKey::ListGroups => drop(decode_body::<ListGroupsRequest>(f)),
        ApiKey::DeleteGroups => drop(decode_body::<DeleteGroupsRequest>(f)),
        ApiKey::OffsetDelete => drop(decode_body::<OffsetDeleteRequest>(f)),
        ApiKey::ConsumerGroupHeartbeat => drop(decode_body::<ConsumerGroupHeartbeatRequest>(f)),
        ApiKey::ConsumerGroupDescribe => drop(decode_body::<ConsumerGroupDescribeRequest>(f)),
        ApiKey::DeleteRecords => drop(decode_body::<DeleteRecordsRequest>(f)),
        _ => {}
    }
}

/// A record set as a producer sends it: its batches validated, and the records of each read
/// whatever the CRC says (so that mutations reach the record reader and the decompressors).
/// Must never panic.
pub fn record_set(data: &[u8]) {
    let _ = validate_record_set(data, FRAME_BYTES_MAX);
    let mut rest = data;
    while let Some(size) = BatchHeader::new(rest).and_then(|h| h.total_size()) {
        let Some(batch) = rest.get(..size) else { break };
        let _ = crate::records::walk(batch, |_| {});
        rest = &rest[size..];
    }
}
