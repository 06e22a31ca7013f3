//! The printed shape of batches and records, in Kafka's `kafka-dump-log` field names: one
//! struct per line, printed by its `Display` for text and its `Serialize` for JSON, so the
//! two formats are built from the same values.

use std::fmt;

use bytes::Bytes;
use serde::Serialize;
use strand_protocol::batch::{BatchHeader, Codec};

use super::batch::{last_offset, sequence_after};
use super::records::{control_of, lossy, Control, RecordOut};

fn codec_name(h: &BatchHeader<'_>) -> String {
    match h.codec() {
        Some(Codec::None) => "none".into(),
        Some(Codec::Gzip) => "gzip".into(),
        Some(Codec::Snappy) => "snappy".into(),
        Some(Codec::Lz4) => "lz4".into(),
        Some(Codec::Zstd) => "zstd".into(),
        None => format!("unknown({})", h.attributes() & 0x07),
    }
}

fn timestamp_type(log_append_time: bool) -> &'static str {
    if log_append_time {
        "LogAppendTime"
    } else {
        "CreateTime"
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct BatchLine<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    file: &'a str,
    base_offset: i64,
    last_offset: i64,
    count: i32,
    base_sequence: i32,
    last_sequence: i32,
    producer_id: i64,
    producer_epoch: i16,
    partition_leader_epoch: i32,
    is_transactional: bool,
    is_control: bool,
    position: u64,
    timestamp_type: &'static str,
    /// The batch's max timestamp (for LogAppendTime, the append time).
    timestamp: i64,
    size: u64,
    magic: i8,
    compresscodec: String,
    crc: u32,
    isvalid: bool,
}

impl<'a> BatchLine<'a> {
    /// The line of the batch at `position` of `file` whose header is `h`; `valid` when its
    /// CRC matched.
    pub(super) fn new(
        file: &'a str,
        h: &BatchHeader<'_>,
        position: u64,
        size: u64,
        valid: bool,
    ) -> Self {
        BatchLine {
            kind: "batch",
            file,
            base_offset: h.base_offset(),
            last_offset: last_offset(h),
            count: h.record_count(),
            base_sequence: h.base_sequence(),
            last_sequence: sequence_after(h.base_sequence(), i64::from(h.last_offset_delta())),
            producer_id: h.producer_id(),
            producer_epoch: h.producer_epoch(),
            partition_leader_epoch: h.partition_leader_epoch(),
            is_transactional: h.is_transactional(),
            is_control: h.is_control(),
            position,
            timestamp_type: timestamp_type(h.is_log_append_time()),
            timestamp: h.max_timestamp(),
            size,
            magic: h.magic(),
            compresscodec: codec_name(h),
            crc: h.crc(),
            isvalid: valid,
        }
    }
}

impl fmt::Display for BatchLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "baseOffset: {} lastOffset: {} count: {} baseSequence: {} lastSequence: {} \
             producerId: {} producerEpoch: {} partitionLeaderEpoch: {} isTransactional: {} \
             isControl: {} position: {} {}: {} size: {} magic: {} compresscodec: {} crc: {} \
             isvalid: {}",
            self.base_offset,
            self.last_offset,
            self.count,
            self.base_sequence,
            self.last_sequence,
            self.producer_id,
            self.producer_epoch,
            self.partition_leader_epoch,
            self.is_transactional,
            self.is_control,
            self.position,
            self.timestamp_type,
            self.timestamp,
            self.size,
            self.magic,
            self.compresscodec,
            self.crc,
            self.isvalid
        )
    }
}

#[derive(Serialize)]
struct HeaderJson {
    key: String,
    value: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RecordLine<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    file: &'a str,
    offset: i64,
    timestamp_type: &'static str,
    timestamp: i64,
    key_size: i64,
    value_size: i64,
    sequence: i32,
    header_keys: Vec<String>,
    /// With --print-data-log only, like the fields below.
    #[serde(skip_serializing_if = "Option::is_none")]
    headers: Option<Vec<HeaderJson>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_txn_marker: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    coordinator_epoch: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    control_type: Option<String>,
}

impl<'a> RecordLine<'a> {
    /// The metadata line of record `r` of the batch whose header is `h`, in `file`.
    pub(super) fn new(file: &'a str, h: &BatchHeader<'_>, r: &RecordOut) -> Self {
        let size = |b: &Option<Bytes>| b.as_ref().map_or(-1, |b| b.len() as i64);
        RecordLine {
            kind: "record",
            file,
            offset: r.offset,
            timestamp_type: timestamp_type(h.is_log_append_time()),
            timestamp: r.timestamp,
            key_size: size(&r.key),
            value_size: size(&r.value),
            sequence: r.sequence,
            header_keys: r.headers.iter().map(|(k, _)| k.clone()).collect(),
            headers: None,
            key: None,
            payload: None,
            end_txn_marker: None,
            coordinator_epoch: None,
            control_type: None,
        }
    }

    /// Adds what --print-data-log prints: header values, and the key and value, or for a
    /// control record what its key and value say.
    pub(super) fn add_contents(&mut self, h: &BatchHeader<'_>, r: &RecordOut) {
        if h.is_control() {
            match control_of(r.key.as_deref(), r.value.as_deref()) {
                Control::EndTxn {
                    commit,
                    coordinator_epoch,
                } => {
                    self.end_txn_marker = Some(if commit { "COMMIT" } else { "ABORT" });
                    self.coordinator_epoch = coordinator_epoch;
                }
                Control::Other(t) => self.control_type = Some(t),
            }
        } else {
            self.key = Some(r.key.as_deref().map(lossy));
            self.payload = Some(r.value.as_deref().map(lossy));
        }
        self.headers = Some(
            r.headers
                .iter()
                .map(|(k, v)| HeaderJson {
                    key: k.clone(),
                    value: v.as_deref().map(lossy),
                })
                .collect(),
        );
    }
}

impl fmt::Display for RecordLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "| offset: {} {}: {} keySize: {} valueSize: {} sequence: {} headerKeys: [{}]",
            self.offset,
            self.timestamp_type,
            self.timestamp,
            self.key_size,
            self.value_size,
            self.sequence,
            self.header_keys.join(",")
        )?;
        if let Some(marker) = self.end_txn_marker {
            write!(f, " endTxnMarker: {marker}")?;
            if let Some(epoch) = self.coordinator_epoch {
                write!(f, " coordinatorEpoch: {epoch}")?;
            }
        } else if let Some(t) = &self.control_type {
            write!(f, " controlType: {t}")?;
        } else {
            if let Some(Some(key)) = &self.key {
                write!(f, " key: {key}")?;
            }
            if let Some(Some(payload)) = &self.payload {
                write!(f, " payload: {payload}")?;
            }
        }
        Ok(())
    }
}
