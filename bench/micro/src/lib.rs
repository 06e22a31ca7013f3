//! Inputs for the Criterion micro-benchmarks in `benches/hot_paths.rs`, shaped like what the
//! broker sees under kbench: 1 KiB records in batches of about 1 MiB (librdkafka's default
//! `batch.size`), or one record per batch (`linger.ms=0`), and request frames as librdkafka
//! sends them. Kept in a library so that the unit tests below check every input is one the
//! broker accepts: a benchmark of a path that fails early measures nothing.
//!
//! Run the benchmarks with `cargo bench -p strand-bench`; `cargo test -p strand-bench
//! --benches` runs each once, as a check that they still work.

#![cfg_attr(test, allow(clippy::unwrap_used))]

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, FetchRequest, ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use strand_protocol::testing::{encode, record, request_frame};

/// Bytes of each record's value.
pub const RECORD_BYTES: usize = 1024;

/// One uncompressed batch of `records` records of [`RECORD_BYTES`] each.
pub fn batch(records: usize) -> BytesMut {
    let value = Bytes::from(vec![0x5a; RECORD_BYTES]);
    let records: Vec<_> = (0..records as i64)
        .map(|i| record(i, None, Some(value.clone()), 1_700_000_000_000 + i))
        .collect();
    encode(&records, Compression::None)
}

/// A batch of `records` 1 KiB records in `compression`, values of words that compress about
/// as well as JSON logs do (lz4 to about a third).
pub fn compressible_batch(records: usize, compression: Compression) -> BytesMut {
    let words = [
        "order", "id", "customer", "amount", "status", "shipped", "eur", "usd",
    ];
    let records: Vec<_> = (0..records as i64)
        .map(|i| {
            let mut value = String::with_capacity(RECORD_BYTES);
            let mut x = i as u64 * 2_654_435_761 + 1;
            while value.len() < RECORD_BYTES - 24 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                value.push_str(words[(x % words.len() as u64) as usize]);
                value.push_str(&format!("={} ", x % 10_000));
            }
            record(
                i,
                Some(Bytes::from(format!("k{i}"))),
                Some(Bytes::from(value)),
                1_700_000_000_000 + i,
            )
        })
        .collect();
    encode(&records, compression)
}

/// `count` batches of one record each, back to back: what a `linger.ms=0` producer's requests
/// add up to.
pub fn small_batches(count: usize) -> BytesMut {
    let mut set = BytesMut::new();
    for _ in 0..count {
        set.extend_from_slice(&batch(1));
    }
    set
}

/// The Produce versions librdkafka 2.x uses: v7 (before flexible versions) and v9.
pub const PRODUCE_VERSIONS: [i16; 2] = [7, 9];

/// A whole Produce request frame (header and body, without the size prefix) carrying `records`
/// for partition 0 of topic `bench`.
pub fn produce_frame(version: i16, records: Bytes) -> Bytes {
    let body = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str("bench")))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(records))])]);
    request_frame(ApiKey::Produce, version, 1, "rdkafka", &body)
}

/// A Fetch request frame for `partitions` partitions of topic `bench`, as a consumer sends it.
pub fn fetch_frame(version: i16, partitions: i32) -> Bytes {
    let body = FetchRequest::default()
        .with_replica_id(kafka_protocol::messages::BrokerId(-1))
        .with_max_wait_ms(500)
        .with_min_bytes(1)
        .with_max_bytes(52_428_800)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_static_str("bench")))
            .with_partitions(
                (0..partitions)
                    .map(|p| {
                        FetchPartition::default()
                            .with_partition(p)
                            .with_fetch_offset(1_000_000)
                            .with_partition_max_bytes(1_048_576)
                    })
                    .collect(),
            )]);
    request_frame(ApiKey::Fetch, version, 1, "rdkafka", &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use strand_protocol::batch::validate_record_set;
    use strand_protocol::frame::{decode_body, RequestFrame};

    #[test]
    fn batches_are_valid_and_the_expected_size() {
        let big = batch(1000);
        let infos = validate_record_set(&big, 2 << 20).unwrap();
        assert_eq!(infos.len(), 1);
        assert_eq!(infos[0].record_count, 1000);
        assert!(big.len() > 1000 * RECORD_BYTES && big.len() < 1_100_000);
        let small = small_batches(100);
        let infos = validate_record_set(&small, 2 << 20).unwrap();
        assert_eq!(infos.len(), 100);
        assert!(infos.iter().all(|b| b.record_count == 1));
    }

    #[test]
    fn frames_decode_to_what_was_encoded() {
        let records = batch(10).freeze();
        for v in PRODUCE_VERSIONS {
            let frame = RequestFrame::parse(produce_frame(v, records.clone())).unwrap();
            assert_eq!(frame.api_key, ApiKey::Produce);
            let req: ProduceRequest = decode_body(&frame).unwrap();
            let got = req.topic_data[0].partition_data[0].records.clone().unwrap();
            assert_eq!(got, records);
        }
        let frame = RequestFrame::parse(fetch_frame(12, 6)).unwrap();
        let req: FetchRequest = decode_body(&frame).unwrap();
        assert_eq!(req.topics[0].partitions.len(), 6);
    }
}
