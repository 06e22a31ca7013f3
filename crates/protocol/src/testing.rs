//! Builders for tests: records and batches in the shape a plain (non-idempotent) producer
//! sends them. Hidden from the docs; used by the test suites of several crates.

use bytes::{Bytes, BytesMut};
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
