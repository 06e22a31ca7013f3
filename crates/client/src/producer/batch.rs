//! Building a record batch (magic 2) the way it goes on the wire and on disk.
//!
//! Records are encoded straight into one buffer as they are appended; closing the batch
//! compresses that buffer if asked, writes the 61-byte header in front and fills in the
//! CRC32C. Nothing is encoded twice.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::compression::{Compressor, Gzip, Lz4, Snappy, Zstd};

use crate::error::{Error, Result};

pub const BATCH_HEADER_BYTES: usize = 61;

/// `compression.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "none" | "" => Compression::None,
            "gzip" => Compression::Gzip,
            "snappy" => Compression::Snappy,
            "lz4" => Compression::Lz4,
            "zstd" => Compression::Zstd,
            _ => return None,
        })
    }

    /// The codec id in the batch attributes.
    pub fn attribute(self) -> i16 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }
}

/// A header of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub key: String,
    pub value: Option<Bytes>,
}

fn varint_len(v: i64) -> usize {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    let mut n = 1;
    while z >= 0x80 {
        z >>= 7;
        n += 1;
    }
    n
}

fn put_varint(buf: &mut BytesMut, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        buf.put_u8((z as u8) | 0x80);
        z >>= 7;
    }
    buf.put_u8(z as u8);
}

fn bytes_len(b: Option<&[u8]>) -> usize {
    match b {
        None => varint_len(-1),
        Some(b) => varint_len(b.len() as i64) + b.len(),
    }
}

fn put_bytes(buf: &mut BytesMut, b: Option<&[u8]>) {
    match b {
        None => put_varint(buf, -1),
        Some(b) => {
            put_varint(buf, b.len() as i64);
            buf.put_slice(b);
        }
    }
}

/// The encoded size of one record's body (without its own length prefix).
fn record_body_len(
    timestamp_delta: i64,
    offset_delta: i32,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[Header],
) -> usize {
    1 + varint_len(timestamp_delta)
        + varint_len(offset_delta as i64)
        + bytes_len(key)
        + bytes_len(value)
        + varint_len(headers.len() as i64)
        + headers
            .iter()
            .map(|h| bytes_len(Some(h.key.as_bytes())) + bytes_len(h.value.as_deref()))
            .sum::<usize>()
}

/// An upper bound of what a record adds to a batch, before it is known where it goes.
pub fn estimate_record_bytes(
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[Header],
) -> usize {
    // Length, timestamp and offset deltas at their largest.
    5 + 10 + 5 + record_body_len(0, 0, key, value, headers)
}

/// The producer fields of a batch from an idempotent or transactional producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerStamp {
    pub producer_id: i64,
    pub epoch: i16,
    pub base_sequence: i32,
    pub transactional: bool,
}

const TRANSACTIONAL_BIT: i16 = 0x10;

/// Writes `stamp` into an encoded batch's header and seals the CRC again.
fn put_stamp(batch: &mut [u8], stamp: &ProducerStamp) {
    let attributes = i16::from_be_bytes([batch[21], batch[22]]);
    let attributes = if stamp.transactional {
        attributes | TRANSACTIONAL_BIT
    } else {
        attributes & !TRANSACTIONAL_BIT
    };
    batch[21..23].copy_from_slice(&attributes.to_be_bytes());
    batch[43..51].copy_from_slice(&stamp.producer_id.to_be_bytes());
    batch[51..53].copy_from_slice(&stamp.epoch.to_be_bytes());
    batch[53..57].copy_from_slice(&stamp.base_sequence.to_be_bytes());
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// A copy of an encoded batch with other producer fields (a retry after the producer id or
/// epoch changed).
pub fn restamp(batch: &[u8], stamp: &ProducerStamp) -> Bytes {
    let mut b = BytesMut::from(batch);
    if b.len() >= BATCH_HEADER_BYTES {
        put_stamp(&mut b, stamp);
    }
    b.freeze()
}

/// An open batch for one partition.
pub struct BatchBuilder {
    records: BytesMut,
    count: i32,
    base_timestamp: i64,
    max_timestamp: i64,
    compression: Compression,
    stamp: Option<ProducerStamp>,
}

impl BatchBuilder {
    pub fn new(compression: Compression, capacity: usize) -> Self {
        // The header is written in place when the batch closes, so an uncompressed batch is
        // never copied.
        let mut records = BytesMut::with_capacity(capacity.max(BATCH_HEADER_BYTES));
        records.put_bytes(0, BATCH_HEADER_BYTES);
        Self {
            records,
            count: 0,
            base_timestamp: 0,
            max_timestamp: i64::MIN,
            compression,
            stamp: None,
        }
    }

    /// The batch will carry these producer fields.
    pub fn set_stamp(&mut self, stamp: ProducerStamp) {
        self.stamp = Some(stamp);
    }

    pub fn record_count(&self) -> i32 {
        self.count
    }

    /// Bytes the batch would take uncompressed.
    pub fn size(&self) -> usize {
        self.records.len()
    }

    /// What appending this record would add.
    pub fn record_bytes(
        &self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> usize {
        let ts_delta = if self.count == 0 {
            0
        } else {
            timestamp.wrapping_sub(self.base_timestamp)
        };
        let body = record_body_len(ts_delta, self.count, key, value, headers);
        varint_len(body as i64) + body
    }

    /// Appends a record; returns its offset delta.
    pub fn append(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> i32 {
        if self.count == 0 {
            self.base_timestamp = timestamp;
        }
        let ts_delta = timestamp.wrapping_sub(self.base_timestamp);
        let offset_delta = self.count;
        let body = record_body_len(ts_delta, offset_delta, key, value, headers);
        let buf = &mut self.records;
        buf.reserve(varint_len(body as i64) + body);
        put_varint(buf, body as i64);
        buf.put_i8(0); // record attributes
        put_varint(buf, ts_delta);
        put_varint(buf, offset_delta as i64);
        put_bytes(buf, key);
        put_bytes(buf, value);
        put_varint(buf, headers.len() as i64);
        for h in headers {
            put_bytes(buf, Some(h.key.as_bytes()));
            put_bytes(buf, h.value.as_deref());
        }
        self.count += 1;
        self.max_timestamp = self.max_timestamp.max(timestamp);
        offset_delta
    }

    /// The finished batch: header, (compressed) records, CRC32C.
    pub fn build(self) -> Result<Bytes> {
        let mut out = match self.compression {
            Compression::None => self.records,
            codec => {
                let records = &self.records[BATCH_HEADER_BYTES..];
                let mut out = BytesMut::with_capacity(BATCH_HEADER_BYTES + records.len() / 2);
                out.put_bytes(0, BATCH_HEADER_BYTES);
                match codec {
                    Compression::Gzip => compress_into::<Gzip>(&mut out, records)?,
                    Compression::Snappy => compress_into::<Snappy>(&mut out, records)?,
                    Compression::Lz4 => compress_into::<Lz4>(&mut out, records)?,
                    Compression::Zstd => compress_into::<Zstd>(&mut out, records)?,
                    Compression::None => unreachable!("handled above"),
                }
                out
            }
        };
        let batch_length = (out.len() - 12) as i32;
        let max_timestamp = if self.count == 0 {
            self.base_timestamp
        } else {
            self.max_timestamp
        };
        let mut h = &mut out[..BATCH_HEADER_BYTES];
        h.put_i64(0); // base offset: the broker assigns it
        h.put_i32(batch_length);
        h.put_i32(-1); // partition leader epoch
        h.put_i8(2); // magic
        h.put_u32(0); // crc, filled in below
        h.put_i16(self.compression.attribute());
        h.put_i32(self.count - 1);
        h.put_i64(self.base_timestamp);
        h.put_i64(max_timestamp);
        h.put_i64(-1); // producer id
        h.put_i16(-1); // producer epoch
        h.put_i32(-1); // base sequence
        h.put_i32(self.count);
        match &self.stamp {
            Some(stamp) => put_stamp(&mut out, stamp),
            None => {
                let crc = crc32c::crc32c(&out[21..]);
                out[17..21].copy_from_slice(&crc.to_be_bytes());
            }
        }
        Ok(out.freeze())
    }
}

fn compress_into<C: Compressor<BytesMut, BufMut = BytesMut>>(
    out: &mut BytesMut,
    records: &[u8],
) -> Result<()> {
    C::compress(out, |b| {
        b.put_slice(records);
        Ok(())
    })
    .map_err(|e| Error::InvalidRecord(format!("compression failed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::records::RecordBatchDecoder;

    #[test]
    fn stamps_set_the_producer_fields_and_keep_the_crc_right() {
        let stamp = ProducerStamp {
            producer_id: 42,
            epoch: 3,
            base_sequence: 7,
            transactional: true,
        };
        let mut b = BatchBuilder::new(Compression::Lz4, 256);
        b.append(1, Some(b"k"), Some(b"v"), &[]);
        b.append(2, Some(b"k"), Some(b"v"), &[]);
        b.set_stamp(stamp);
        let bytes = b.build().unwrap();
        assert!(strand_protocol::batch::crc_matches(&bytes));
        let set = RecordBatchDecoder::decode(&mut bytes.clone()).unwrap();
        let r = &set.records[1];
        assert_eq!(
            (r.producer_id, r.producer_epoch, r.sequence, r.transactional),
            (42, 3, 8, true)
        );
        let again = restamp(
            &bytes,
            &ProducerStamp {
                producer_id: 9,
                epoch: 0,
                base_sequence: 0,
                transactional: false,
            },
        );
        assert!(strand_protocol::batch::crc_matches(&again));
        let set = RecordBatchDecoder::decode(&mut again.clone()).unwrap();
        assert_eq!(
            (set.records[0].producer_id, set.records[0].transactional),
            (9, false)
        );
    }

    #[test]
    fn batches_decode_with_every_codec() {
        for c in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let mut b = BatchBuilder::new(c, 1024);
            let headers = vec![Header {
                key: "h".into(),
                value: Some(Bytes::from_static(b"v")),
            }];
            for i in 0..100i64 {
                let key = format!("k{i}");
                let value = format!("value-{i}-{}", "x".repeat(i as usize));
                let estimate = b.record_bytes(
                    1000 + i,
                    Some(key.as_bytes()),
                    Some(value.as_bytes()),
                    &headers,
                );
                let before = b.size();
                assert_eq!(
                    b.append(
                        1000 + i,
                        Some(key.as_bytes()),
                        Some(value.as_bytes()),
                        &headers
                    ),
                    i as i32
                );
                assert_eq!(b.size() - before, estimate);
            }
            b.append(2000, None, None, &[]);
            let bytes = b.build().unwrap();
            assert!(strand_protocol::batch::crc_matches(&bytes), "{c:?}");
            let set = RecordBatchDecoder::decode(&mut bytes.clone()).unwrap();
            assert_eq!(set.records.len(), 101);
            assert_eq!(set.records[7].key.as_deref(), Some(&b"k7"[..]));
            assert_eq!(set.records[7].timestamp, 1007);
            assert_eq!(set.records[7].offset, 7);
            assert_eq!(set.records[100].value, None);
            assert_eq!(set.records[3].headers.len(), 1);
        }
    }
}
