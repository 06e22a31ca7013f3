//! Decoding fetched record batches into [`ConsumerRecord`]s.
//!
//! Each batch's CRC32C is checked (as the Java client's `check.crcs` does) before anything is
//! read from it; compressed batches are inflated with their codec; keys, values and headers
//! are slices of the batch (or of its inflated copy), not copies. A trailing partial batch —
//! a fetch cut at `max.partition.fetch.bytes` — is left for the next fetch. Control batches
//! (transaction markers) are skipped, and so are the batches of aborted transactions a
//! `read_committed` fetch names (Kafka's consumer algorithm: a transaction's batches are
//! dropped from its first offset until its ABORT marker).

use std::sync::Arc;

use bytes::{Buf, Bytes};
use kafka_protocol::compression::{Decompressor, Gzip, Lz4, Snappy, Zstd};

use crate::error::{Error, Result};
use crate::producer::Header;

/// How a record's timestamp was set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
}

/// A record as the consumer returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
    pub timestamp: i64,
    pub timestamp_type: TimestampType,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<Header>,
    pub leader_epoch: i32,
}

/// What decoding a fetched partition's record data gave.
#[derive(Debug, Default)]
pub struct Decoded {
    pub records: Vec<ConsumerRecord>,
    /// Where the next fetch starts: after the last complete batch seen.
    pub next_offset: Option<i64>,
    pub bytes: usize,
}

fn varint(buf: &mut Bytes) -> Result<i64> {
    let mut v: u64 = 0;
    for shift in (0..70).step_by(7) {
        if !buf.has_remaining() {
            return Err(Error::protocol("record truncated"));
        }
        let b = buf.get_u8();
        if shift == 63 && b > 1 {
            return Err(Error::protocol("varint too long"));
        }
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(((v >> 1) as i64) ^ -((v & 1) as i64));
        }
    }
    Err(Error::protocol("varint too long"))
}

fn take(buf: &mut Bytes, len: i64) -> Result<Option<Bytes>> {
    if len < 0 {
        return Ok(None);
    }
    let len = usize::try_from(len).map_err(|_| Error::protocol("bad length"))?;
    if len > buf.remaining() {
        return Err(Error::protocol("record field past its batch"));
    }
    Ok(Some(buf.split_to(len)))
}

fn inflate<D: Decompressor<Bytes, Buf = Bytes>>(data: &mut Bytes) -> Result<Bytes> {
    D::decompress(data, |b| Ok(b.split_to(b.remaining())))
        .map_err(|e| Error::protocol(format!("cannot decompress batch: {e}")))
}

/// Decodes the record data of one partition, keeping records at or after `from_offset`.
/// `aborted`: the `(producer id, first offset)` of each aborted transaction the fetch named.
pub fn decode(
    topic: &Arc<str>,
    partition: i32,
    mut data: Bytes,
    from_offset: i64,
    aborted: &[(i64, i64)],
) -> Result<Decoded> {
    let mut out = Decoded::default();
    // Aborted transactions by first offset, still to reach; and those being skipped.
    let mut upcoming: Vec<(i64, i64)> = aborted.iter().map(|&(p, f)| (f, p)).collect();
    upcoming.sort_unstable_by(|a, b| b.cmp(a));
    let mut skipping: std::collections::HashSet<i64> = std::collections::HashSet::new();
    while data.remaining() >= 12 {
        let base_offset = i64::from_be_bytes(data[..8].try_into().unwrap_or_default());
        let batch_length = i32::from_be_bytes(data[8..12].try_into().unwrap_or_default());
        if batch_length < 49 {
            return Err(Error::protocol(format!(
                "{topic}-{partition} at offset {base_offset}: batch length {batch_length}"
            )));
        }
        let total = 12 + batch_length as usize;
        if data.remaining() < total {
            break; // partial batch at the end of the fetch
        }
        let mut batch = data.split_to(total);
        out.bytes += total;
        let magic = batch[16] as i8;
        if magic != 2 {
            return Err(Error::protocol(format!(
                "{topic}-{partition} at offset {base_offset}: magic {magic} batches are not supported"
            )));
        }
        if !strand_protocol::batch::crc_matches(&batch) {
            return Err(Error::kafka(
                2,
                format!("{topic}-{partition}: CRC mismatch in the batch at offset {base_offset}"),
            ));
        }
        batch.advance(12);
        let leader_epoch = batch.get_i32();
        batch.advance(1 + 4); // magic, crc
        let attributes = batch.get_i16();
        let last_offset_delta = batch.get_i32();
        let base_timestamp = batch.get_i64();
        let max_timestamp = batch.get_i64();
        let producer_id = batch.get_i64();
        batch.advance(2 + 4); // epoch, base sequence
        let count = batch.get_i32();
        let last_offset = base_offset.saturating_add(i64::from(last_offset_delta));
        out.next_offset = Some(last_offset + 1);
        while upcoming
            .last()
            .is_some_and(|&(first, _)| first <= last_offset)
        {
            if let Some((_, pid)) = upcoming.pop() {
                skipping.insert(pid);
            }
        }
        let transactional = attributes & 0x10 != 0;
        if attributes & 0x20 != 0 {
            // A control batch: an ABORT marker ends the skipping of its producer.
            if skipping.contains(&producer_id) && is_abort_marker(&batch) {
                skipping.remove(&producer_id);
            }
            continue;
        }
        if transactional && skipping.contains(&producer_id) {
            continue;
        }
        let log_append = attributes & 0x08 != 0;
        let mut records = match attributes & 0x07 {
            0 => batch,
            1 => inflate::<Gzip>(&mut batch)?,
            2 => inflate::<Snappy>(&mut batch)?,
            3 => inflate::<Lz4>(&mut batch)?,
            4 => inflate::<Zstd>(&mut batch)?,
            c => return Err(Error::protocol(format!("unknown compression codec {c}"))),
        };
        out.records.reserve(count.clamp(0, 100_000) as usize);
        for _ in 0..count.max(0) {
            let len = varint(&mut records)?;
            let mut r = take(&mut records, len)?
                .ok_or_else(|| Error::protocol("negative record length"))?;
            if !r.has_remaining() {
                return Err(Error::protocol("empty record"));
            }
            r.advance(1); // attributes
            let ts_delta = varint(&mut r)?;
            let offset_delta = varint(&mut r)?;
            let klen = varint(&mut r)?;
            let key = take(&mut r, klen)?;
            let vlen = varint(&mut r)?;
            let value = take(&mut r, vlen)?;
            let nh = varint(&mut r)?;
            let mut headers = Vec::with_capacity(nh.clamp(0, 64) as usize);
            for _ in 0..nh.max(0) {
                let hk = varint(&mut r)?;
                let hkey = take(&mut r, hk)?.ok_or_else(|| Error::protocol("null header key"))?;
                let hv = varint(&mut r)?;
                let hval = take(&mut r, hv)?;
                headers.push(Header {
                    key: String::from_utf8_lossy(&hkey).into_owned(),
                    value: hval,
                });
            }
            let offset = base_offset.saturating_add(offset_delta);
            if offset < from_offset {
                continue;
            }
            out.records.push(ConsumerRecord {
                topic: topic.clone(),
                partition,
                offset,
                timestamp: if log_append {
                    max_timestamp
                } else {
                    base_timestamp.saturating_add(ts_delta)
                },
                timestamp_type: if log_append {
                    TimestampType::LogAppendTime
                } else {
                    TimestampType::CreateTime
                },
                key,
                value,
                headers,
                leader_epoch,
            });
        }
    }
    Ok(out)
}

/// Whether the records of a control batch (after its header) start with an ABORT marker key
/// (`version 0, type 0`).
fn is_abort_marker(records: &Bytes) -> bool {
    let mut r = records.clone();
    let ok = (|| {
        let len = varint(&mut r).ok()?;
        let mut rec = take(&mut r, len).ok()??;
        if !rec.has_remaining() {
            return None;
        }
        rec.advance(1);
        varint(&mut rec).ok()?;
        varint(&mut rec).ok()?;
        let klen = varint(&mut rec).ok()?;
        let key = take(&mut rec, klen).ok()??;
        (key.len() >= 4).then(|| i16::from_be_bytes([key[2], key[3]]) == 0)
    })();
    ok.unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::producer::batch::{BatchBuilder, Compression};
    use bytes::{BufMut, BytesMut};

    fn batch_at(base: i64, n: i32, c: Compression) -> Bytes {
        let mut b = BatchBuilder::new(c, 256);
        for i in 0..n {
            let h = [Header {
                key: "n".into(),
                value: Some(Bytes::from(i.to_string())),
            }];
            b.append(
                100 + i as i64,
                Some(format!("k{i}").as_bytes()),
                Some(b"v"),
                &h,
            );
        }
        let mut bytes = BytesMut::from(&b.build().unwrap()[..]);
        bytes[..8].copy_from_slice(&base.to_be_bytes());
        // Base offset is outside the CRC: no need to recompute it.
        bytes.freeze()
    }

    #[test]
    fn decodes_every_codec_and_skips_before_the_fetch_offset() {
        let topic: Arc<str> = Arc::from("t");
        for c in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let mut data = BytesMut::new();
            data.put_slice(&batch_at(10, 5, c));
            data.put_slice(&batch_at(15, 5, c));
            let d = decode(&topic, 0, data.freeze(), 12, &[]).unwrap();
            let offsets: Vec<i64> = d.records.iter().map(|r| r.offset).collect();
            assert_eq!(offsets, (12..20).collect::<Vec<_>>(), "{c:?}");
            assert_eq!(d.next_offset, Some(20));
            assert_eq!(d.records[0].key.as_deref(), Some(&b"k2"[..]));
            assert_eq!(d.records[0].timestamp, 102);
            assert_eq!(d.records[0].headers[0].value.as_deref(), Some(&b"2"[..]));
        }
    }

    #[test]
    fn partial_tail_is_left_and_corruption_is_reported() {
        let topic: Arc<str> = Arc::from("t");
        let one = batch_at(0, 3, Compression::None);
        let mut data = BytesMut::new();
        data.put_slice(&one);
        data.put_slice(&one[..one.len() - 5]);
        let d = decode(&topic, 0, data.freeze(), 0, &[]).unwrap();
        assert_eq!(d.records.len(), 3);
        assert_eq!(d.next_offset, Some(3));
        let mut bad = BytesMut::from(&one[..]);
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        let e = decode(&topic, 0, bad.freeze(), 0, &[]).unwrap_err();
        assert!(e.to_string().contains("CRC"), "{e}");
    }
}
