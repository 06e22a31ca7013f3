//! Builders for tests: records and batches in the shape a plain (non-idempotent) producer
//! sends them. Hidden from the docs; used by the test suites of several crates.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::{Encodable, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

/// A record at `offset` (relative within its batch) with a CreateTime `timestamp`.
pub fn record(offset: i64, key: Option<Bytes>, value: Option<Bytes>, timestamp: i64) -> Record {
    Record {
        transactional: false,
        control: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset,
        // Sequences follow offsets so the encoder keeps the records in one batch.
        sequence: offset as i32,
        timestamp,
        key,
        value,
        headers: Default::default(),
        delete_horizon: false,
    }
}

/// Encodes `records` as magic-2 batches with `compression`.
pub fn encode(records: &[Record], compression: Compression) -> BytesMut {
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .expect("test records encode");
    buf
}

/// A request frame as a client sends it: header (with `client_id`) and body at `version`,
/// without the size prefix.
pub fn request_frame(
    key: ApiKey,
    version: i16,
    correlation_id: i32,
    client_id: &'static str,
    body: &impl Encodable,
) -> Bytes {
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str(client_id)));
    let mut buf = BytesMut::new();
    header
        .encode(&mut buf, key.request_header_version(version))
        .expect("test request header encodes");
    body.encode(&mut buf, version)
        .expect("test request body encodes");
    buf.freeze()
}

/// A batch of `n` keyed records, values `value-{i}`, timestamps `1000 + i`.
pub fn batch(n: usize, compression: Compression) -> BytesMut {
    let records: Vec<_> = (0..n)
        .map(|i| {
            record(
                i as i64,
                Some(format!("k{i}").into()),
                Some(format!("value-{i}").into()),
                1_000 + i as i64,
            )
        })
        .collect();
    encode(&records, compression)
}
