//! A zero-copy view of record batches (magic 2), as producers send them and the log stores them.
//!
//! Layout of a batch header (big-endian, offsets in bytes):
//!
//! | at | field | | at | field |
//! |---:|---|---|---:|---|
//! | 0 | base offset i64 | | 27 | base timestamp i64 |
//! | 8 | batch length i32 (bytes after this field) | | 35 | max timestamp i64 |
//! | 12 | partition leader epoch i32 | | 43 | producer id i64 |
//! | 16 | magic i8 (= 2) | | 51 | producer epoch i16 |
//! | 17 | CRC32C u32 of bytes 21.. | | 53 | base sequence i32 |
//! | 21 | attributes i16 | | 57 | record count i32 |
//! | 23 | last offset delta i32 | | 61 | records |
//!
//! The base offset and the leader epoch are outside the CRC, so the log assigns them by patching
//! the header in place; nothing else is rewritten unless the topic asks for LogAppendTime.

use std::fmt;

/// Bytes before the batch length field counts from (base offset + length).
pub const LOG_OVERHEAD: usize = 12;
/// Size of a batch header, i.e. of a batch with no records.
pub const BATCH_HEADER_BYTES: usize = 61;
pub const MAGIC_V2: i8 = 2;

const LENGTH_AT: usize = 8;
const EPOCH_AT: usize = 12;
const MAGIC_AT: usize = 16;
const CRC_AT: usize = 17;
const ATTRIBUTES_AT: usize = 21;
const LAST_OFFSET_DELTA_AT: usize = 23;
const BASE_TIMESTAMP_AT: usize = 27;
const MAX_TIMESTAMP_AT: usize = 35;
const PRODUCER_ID_AT: usize = 43;
const PRODUCER_EPOCH_AT: usize = 51;
const BASE_SEQUENCE_AT: usize = 53;
const RECORD_COUNT_AT: usize = 57;

const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_BIT: i16 = 0x08;
const TRANSACTIONAL_BIT: i16 = 0x10;
const CONTROL_BIT: i16 = 0x20;

/// Why a batch was refused (the broker's `errors` module says what Kafka answers for each).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("record set truncated at byte {position}: {needed} bytes needed, {available} left")]
    Truncated {
        position: usize,
        needed: usize,
        available: usize,
    },
    #[error("batch at byte {position} has length {length}, below the minimum")]
    LengthTooSmall { position: usize, length: i32 },
    #[error("batch at byte {position} has magic {magic}; only magic 2 is accepted")]
    UnsupportedMagic { position: usize, magic: i8 },
    #[error("batch at byte {position} has CRC {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch {
        position: usize,
        stored: u32,
        computed: u32,
    },
    #[error("batch at byte {position} is {size} bytes, over the {max} byte limit")]
    TooLarge {
        position: usize,
        size: usize,
        max: usize,
    },
    #[error("batch at byte {position}: {reason}")]
    InvalidRecord { position: usize, reason: String },
    #[error("empty record set")]
    Empty,
}

/// Compression codec named in a batch's attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    None = 0,
    Gzip = 1,
    Snappy = 2,
    Lz4 = 3,
    Zstd = 4,
}

impl Codec {
    /// The name `compression.type` gives it (`uncompressed` for none).
    pub fn from_config_name(name: &str) -> Option<Self> {
        Some(match name {
            "uncompressed" | "none" => Codec::None,
            "gzip" => Codec::Gzip,
            "snappy" => Codec::Snappy,
            "lz4" => Codec::Lz4,
            "zstd" => Codec::Zstd,
            _ => return None,
        })
    }
    fn from_attributes(attributes: i16) -> Option<Self> {
        Some(match attributes & COMPRESSION_MASK {
            0 => Codec::None,
            1 => Codec::Gzip,
            2 => Codec::Snappy,
            3 => Codec::Lz4,
            4 => Codec::Zstd,
            _ => return None,
        })
    }
}

/// A batch header, read from at least [`BATCH_HEADER_BYTES`] bytes.
#[derive(Clone, Copy)]
pub struct BatchHeader<'a>(&'a [u8]);

impl fmt::Debug for BatchHeader<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchHeader")
            .field("base_offset", &self.base_offset())
            .field("batch_length", &self.batch_length())
            .field("leader_epoch", &self.partition_leader_epoch())
            .field("records", &self.record_count())
            .field("max_timestamp", &self.max_timestamp())
            .finish()
    }
}

fn i16_at(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn i64_at(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

impl<'a> BatchHeader<'a> {
    /// Views the header at the start of `bytes`; `None` if fewer than 61 bytes are there.
    pub fn new(bytes: &'a [u8]) -> Option<Self> {
        (bytes.len() >= BATCH_HEADER_BYTES).then_some(Self(bytes))
    }
    pub fn base_offset(&self) -> i64 {
        i64_at(self.0, 0)
    }
    /// Bytes after the length field.
    pub fn batch_length(&self) -> i32 {
        i32_at(self.0, LENGTH_AT)
    }
    /// Whole batch size in bytes, if the length is sane.
    pub fn total_size(&self) -> Option<usize> {
        let len = self.batch_length();
        (len >= (BATCH_HEADER_BYTES - LOG_OVERHEAD) as i32).then(|| len as usize + LOG_OVERHEAD)
    }
    pub fn partition_leader_epoch(&self) -> i32 {
        i32_at(self.0, EPOCH_AT)
    }
    pub fn magic(&self) -> i8 {
        self.0[MAGIC_AT] as i8
    }
    pub fn crc(&self) -> u32 {
        i32_at(self.0, CRC_AT) as u32
    }
    pub fn attributes(&self) -> i16 {
        i16_at(self.0, ATTRIBUTES_AT)
    }
    pub fn codec(&self) -> Option<Codec> {
        Codec::from_attributes(self.attributes())
    }
    pub fn is_log_append_time(&self) -> bool {
        self.attributes() & TIMESTAMP_TYPE_BIT != 0
    }
    pub fn is_transactional(&self) -> bool {
        self.attributes() & TRANSACTIONAL_BIT != 0
    }
    pub fn is_control(&self) -> bool {
        self.attributes() & CONTROL_BIT != 0
    }
    pub fn last_offset_delta(&self) -> i32 {
        i32_at(self.0, LAST_OFFSET_DELTA_AT)
    }
    /// Saturating: a garbage header read from disk must not overflow.
    pub fn last_offset(&self) -> i64 {
        self.base_offset()
            .saturating_add(i64::from(self.last_offset_delta()))
    }
    /// The offset after this batch.
    pub fn next_offset(&self) -> i64 {
        self.last_offset().saturating_add(1)
    }
    pub fn base_timestamp(&self) -> i64 {
        i64_at(self.0, BASE_TIMESTAMP_AT)
    }
    pub fn max_timestamp(&self) -> i64 {
        i64_at(self.0, MAX_TIMESTAMP_AT)
    }
    pub fn producer_id(&self) -> i64 {
        i64_at(self.0, PRODUCER_ID_AT)
    }
    pub fn producer_epoch(&self) -> i16 {
        i16_at(self.0, PRODUCER_EPOCH_AT)
    }
    pub fn base_sequence(&self) -> i32 {
        i32_at(self.0, BASE_SEQUENCE_AT)
    }
    pub fn record_count(&self) -> i32 {
        i32_at(self.0, RECORD_COUNT_AT)
    }
}

/// CRC32C of a whole batch's covered bytes (attributes to end).
pub fn compute_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(&batch[ATTRIBUTES_AT..])
}

/// Checks the CRC of a complete batch (exactly one batch's bytes).
pub fn crc_matches(batch: &[u8]) -> bool {
    BatchHeader::new(batch).is_some_and(|h| h.crc() == compute_crc(batch))
}

/// What validation learned about one batch of a produce request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchInfo {
    /// Byte position of the batch in the record set.
    pub position: usize,
    pub size: usize,
    pub record_count: i32,
    pub max_timestamp: i64,
    pub codec: Codec,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub transactional: bool,
}

/// Validates the batches of a producer's record set: one or more complete magic-2 batches, each
/// with a correct CRC, a sane record count matching its last offset delta, a known codec, and at
/// most `batch_bytes_max` bytes. The records inside are for [`crate::records::walk`].
pub fn validate_record_set(
    set: &[u8],
    batch_bytes_max: usize,
) -> Result<Vec<BatchInfo>, BatchError> {
    if set.is_empty() {
        return Err(BatchError::Empty);
    }
    let mut infos = Vec::new();
    let mut position = 0;
    while position < set.len() {
        let rest = &set[position..];
        let header = BatchHeader::new(rest).ok_or(BatchError::Truncated {
            position,
            needed: BATCH_HEADER_BYTES,
            available: rest.len(),
        })?;
        if header.magic() != MAGIC_V2 {
            return Err(BatchError::UnsupportedMagic {
                position,
                magic: header.magic(),
            });
        }
        let size = header.total_size().ok_or(BatchError::LengthTooSmall {
            position,
            length: header.batch_length(),
        })?;
        if size > rest.len() {
            return Err(BatchError::Truncated {
                position,
                needed: size,
                available: rest.len(),
            });
        }
        let batch = &rest[..size];
        let computed = compute_crc(batch);
        if computed != header.crc() {
            return Err(BatchError::CrcMismatch {
                position,
                stored: header.crc(),
                computed,
            });
        }
        if size > batch_bytes_max {
            return Err(BatchError::TooLarge {
                position,
                size,
                max: batch_bytes_max,
            });
        }
        let invalid = |reason: String| BatchError::InvalidRecord { position, reason };
        let count = header.record_count();
        if count <= 0 {
            return Err(invalid(format!("record count {count}")));
        }
        if header.last_offset_delta() != count - 1 {
            return Err(invalid(format!(
                "last offset delta {} does not match record count {count}",
                header.last_offset_delta()
            )));
        }
        if header.is_control() {
            return Err(invalid(
                "Clients are not allowed to write control records".into(),
            ));
        }
        if header.producer_id() >= 0 && header.base_sequence() < 0 {
            return Err(invalid(format!(
                "producer id {} with no base sequence",
                header.producer_id()
            )));
        }
        if header.is_transactional() && header.producer_id() < 0 {
            return Err(invalid(
                "a transactional batch without a producer id".into(),
            ));
        }
        let codec = header.codec().ok_or_else(|| {
            invalid(format!(
                "unknown compression codec {}",
                header.attributes() & 7
            ))
        })?;
        infos.push(BatchInfo {
            position,
            size,
            record_count: count,
            max_timestamp: header.max_timestamp(),
            codec,
            producer_id: header.producer_id(),
            producer_epoch: header.producer_epoch(),
            base_sequence: header.base_sequence(),
            transactional: header.is_transactional(),
        });
        position += size;
    }
    Ok(infos)
}

/// Zig-zag varint, at most 5 bytes.
pub fn read_varint(buf: &mut &[u8]) -> Option<i32> {
    let raw = read_unsigned(buf, 5)?;
    let raw = u32::try_from(raw).ok()?;
    Some(((raw >> 1) as i32) ^ -((raw & 1) as i32))
}

/// Zig-zag varlong, at most 10 bytes.
pub fn read_varlong(buf: &mut &[u8]) -> Option<i64> {
    let raw = read_unsigned(buf, 10)?;
    Some(((raw >> 1) as i64) ^ -((raw & 1) as i64))
}

fn read_unsigned(buf: &mut &[u8], max_bytes: usize) -> Option<u64> {
    let mut value = 0u64;
    for i in 0..max_bytes {
        let (&b, rest) = buf.split_first()?;
        *buf = rest;
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// Bytes of a transaction marker batch: the batch header and one control record.
pub const MARKER_BATCH_BYTES: usize = 78;

/// A transaction marker (`EndTransactionMarker`): a control batch of `producer_id` at
/// `producer_epoch` with one record, key `version 0, type` (0 abort, 1 commit), value
/// `version 0, coordinator epoch`. Base offset and leader epoch are left for the log to stamp.
pub fn end_txn_marker(
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
    coordinator_epoch: i32,
    timestamp: i64,
) -> Vec<u8> {
    let mut b = Vec::with_capacity(MARKER_BATCH_BYTES);
    b.extend_from_slice(&0i64.to_be_bytes());
    b.extend_from_slice(&((MARKER_BATCH_BYTES - LOG_OVERHEAD) as i32).to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.push(MAGIC_V2 as u8);
    b.extend_from_slice(&[0u8; 4]); // CRC, below
    b.extend_from_slice(&(TRANSACTIONAL_BIT | CONTROL_BIT).to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes()); // last offset delta
    b.extend_from_slice(&timestamp.to_be_bytes());
    b.extend_from_slice(&timestamp.to_be_bytes());
    b.extend_from_slice(&producer_id.to_be_bytes());
    b.extend_from_slice(&producer_epoch.to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes()); // base sequence
    b.extend_from_slice(&1i32.to_be_bytes()); // record count
                                              // The record: length 16 (zigzag 32), attributes, timestamp delta 0, offset delta 0,
                                              // key length 4 (zigzag 8), key, value length 6 (zigzag 12), value, no headers.
    b.extend_from_slice(&[32, 0, 0, 0, 8]);
    b.extend_from_slice(&0i16.to_be_bytes());
    b.extend_from_slice(&i16::from(commit).to_be_bytes());
    b.push(12);
    b.extend_from_slice(&0i16.to_be_bytes());
    b.extend_from_slice(&coordinator_epoch.to_be_bytes());
    b.push(0);
    let crc = compute_crc(&b);
    b[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    b
}

/// The marker of a control batch, as `(commit, coordinator epoch)`; `None` if the batch is
/// not an uncompressed control batch whose first record is a transaction marker.
pub fn read_end_txn_marker(batch: &[u8]) -> Option<(bool, i32)> {
    let header = BatchHeader::new(batch)?;
    if !header.is_control() || header.codec() != Some(Codec::None) || header.record_count() < 1 {
        return None;
    }
    let mut r = batch.get(BATCH_HEADER_BYTES..)?;
    let _len = read_varint(&mut r)?;
    let (_attributes, rest) = r.split_first()?;
    r = rest;
    let _timestamp_delta = read_varint(&mut r)?;
    let _offset_delta = read_varint(&mut r)?;
    let key_len = usize::try_from(read_varint(&mut r)?).ok()?;
    let key = r.get(..key_len)?;
    r = &r[key_len..];
    if key_len < 4 {
        return None;
    }
    let kind = i16::from_be_bytes([key[2], key[3]]);
    let value_len = usize::try_from(read_varint(&mut r)?).ok()?;
    let value = r.get(..value_len)?;
    if value_len < 6 {
        return None;
    }
    let coordinator_epoch = i32::from_be_bytes([value[2], value[3], value[4], value[5]]);
    match kind {
        0 => Some((false, coordinator_epoch)),
        1 => Some((true, coordinator_epoch)),
        _ => None,
    }
}

/// A copy of the batch `original` (one whole validated batch) whose records are `payload`,
/// compressed with `codec`, and whose max timestamp is `max_timestamp`: the header's other
/// fields (producer, sequence, base timestamp, count) are kept, the CRC is sealed anew.
pub fn with_payload(original: &[u8], codec: Codec, payload: &[u8], max_timestamp: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(BATCH_HEADER_BYTES + payload.len());
    out.extend_from_slice(&original[..BATCH_HEADER_BYTES]);
    out.extend_from_slice(payload);
    let length = (out.len() - LOG_OVERHEAD) as i32;
    out[LENGTH_AT..LENGTH_AT + 4].copy_from_slice(&length.to_be_bytes());
    let attributes = (BatchHeader(&out).attributes() & !COMPRESSION_MASK) | codec as i16;
    out[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    BatchMut(&mut out).set_max_timestamp(max_timestamp);
    out
}

/// In-place changes the log makes to a validated batch.
pub struct BatchMut<'a>(&'a mut [u8]);

impl<'a> BatchMut<'a> {
    /// `batch` must be one whole validated batch.
    pub fn new(batch: &'a mut [u8]) -> Option<Self> {
        (batch.len() >= BATCH_HEADER_BYTES).then_some(Self(batch))
    }
    pub fn header(&self) -> BatchHeader<'_> {
        BatchHeader(self.0)
    }
    /// Not covered by the CRC.
    pub fn set_base_offset(&mut self, offset: i64) {
        self.0[0..8].copy_from_slice(&offset.to_be_bytes());
    }
    /// Not covered by the CRC.
    pub fn set_partition_leader_epoch(&mut self, epoch: i32) {
        self.0[EPOCH_AT..EPOCH_AT + 4].copy_from_slice(&epoch.to_be_bytes());
    }
    /// Sets the max timestamp (a CreateTime batch's, computed from its records) and re-seals the
    /// CRC.
    pub fn set_max_timestamp(&mut self, max_timestamp: i64) {
        self.0[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8]
            .copy_from_slice(&max_timestamp.to_be_bytes());
        self.seal();
    }
    /// Rewrites the CRC over the covered bytes.
    fn seal(&mut self) {
        let crc = compute_crc(self.0);
        self.0[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    }
    /// Marks the batch LogAppendTime with `now_ms` as its max timestamp, and re-seals the CRC.
    /// Consumers read every record's timestamp as the batch's max timestamp then.
    pub fn set_log_append_time(&mut self, now_ms: i64) {
        let attributes = self.header().attributes() | TIMESTAMP_TYPE_BIT;
        self.0[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
        self.0[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&now_ms.to_be_bytes());
        self.seal();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::records::{Compression, RecordBatchDecoder, TimestampType};

    use crate::testing::batch;

    #[test]
    fn accepts_what_the_encoder_writes() {
        let b = batch(10, Compression::None);
        let infos = validate_record_set(&b, 1 << 20).unwrap();
        assert_eq!(infos.len(), 1);
        assert_eq!(infos[0].record_count, 10);
        assert_eq!(infos[0].size, b.len());
        assert_eq!(infos[0].max_timestamp, 1_009);
    }

    #[test]
    fn refuses_flipped_bits_everywhere_in_the_crc_range() {
        let b = batch(3, Compression::None);
        for at in ATTRIBUTES_AT..b.len() {
            let mut c = b.clone();
            c[at] ^= 0x10;
            let err = validate_record_set(&c, 1 << 20).unwrap_err();
            assert!(
                matches!(err, BatchError::CrcMismatch { .. }),
                "byte {at}: {err}"
            );
        }
    }

    #[test]
    fn refuses_truncation_and_oversize() {
        let b = batch(3, Compression::None);
        for n in 1..b.len() {
            assert!(validate_record_set(&b[..n], 1 << 20).is_err());
        }
        let err = validate_record_set(&b, b.len() - 1).unwrap_err();
        assert!(matches!(err, BatchError::TooLarge { .. }), "{err}");
    }

    #[test]
    fn refuses_wrong_count_with_a_valid_crc() {
        let mut b = batch(3, Compression::None);
        b[RECORD_COUNT_AT..RECORD_COUNT_AT + 4].copy_from_slice(&2i32.to_be_bytes());
        let crc = compute_crc(&b);
        b[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(
            validate_record_set(&b, 1 << 20).unwrap_err(),
            BatchError::InvalidRecord { .. }
        ));
    }

    #[test]
    fn markers_are_control_batches_the_decoder_reads() {
        for commit in [false, true] {
            let m = end_txn_marker(42, 3, commit, 7, 1_000);
            assert_eq!(m.len(), MARKER_BATCH_BYTES);
            assert!(crc_matches(&m));
            assert_eq!(read_end_txn_marker(&m), Some((commit, 7)));
            let set = RecordBatchDecoder::decode(&mut bytes::Bytes::from(m)).unwrap();
            let r = &set.records[0];
            assert!(r.control && r.transactional);
            assert_eq!((r.producer_id, r.producer_epoch, r.sequence), (42, 3, -1));
            assert_eq!(r.key.as_deref(), Some(&[0, 0, 0, u8::from(commit)][..]));
            assert_eq!(r.value.as_deref(), Some(&[0, 0, 0, 0, 0, 7][..]));
        }
    }

    #[test]
    fn patches_keep_the_batch_valid() {
        let mut b = batch(4, Compression::None);
        let mut m = BatchMut::new(&mut b).unwrap();
        m.set_base_offset(1234);
        m.set_partition_leader_epoch(7);
        m.set_log_append_time(99_999);
        assert!(validate_record_set(&b, 1 << 20).is_ok());
        let h = BatchHeader::new(&b).unwrap();
        assert_eq!(
            (h.base_offset(), h.last_offset(), h.partition_leader_epoch()),
            (1234, 1237, 7)
        );
        assert!(h.is_log_append_time());
        assert_eq!(h.max_timestamp(), 99_999);
        let set = RecordBatchDecoder::decode(&mut b.freeze()).unwrap();
        assert!(set
            .records
            .iter()
            .all(|r| r.timestamp_type == TimestampType::LogAppend));
        assert_eq!(set.records[3].offset, 1237);
    }

    #[test]
    fn compressed_batches_pass_through() {
        for c in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let b = batch(50, c);
            let infos = validate_record_set(&b, 1 << 20).unwrap();
            assert_eq!(infos[0].record_count, 50);
        }
    }

    #[test]
    fn varints() {
        let mut b: &[u8] = &[0x01, 0x02, 0xff, 0xff, 0xff, 0xff, 0x0f];
        assert_eq!(read_varint(&mut b), Some(-1));
        assert_eq!(read_varint(&mut b), Some(1));
        assert_eq!(read_varint(&mut b), Some(i32::MIN));
        let mut over: &[u8] = &[0xff; 6];
        assert_eq!(read_varint(&mut over), None);
    }
}
