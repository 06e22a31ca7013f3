//! The records inside a batch, read one at a time whatever the batch's codec.
//!
//! A record (magic 2) is: length varint, attributes i8, timestamp delta varlong, offset delta
//! varint, key (varint length, -1 for null), value (likewise), header count varint, and per
//! header a key (non-null) and a value (nullable). [`walk`] checks that framing for every
//! record and hands the caller what validation needs (offset delta, timestamp, whether there is
//! a key); keys, values and headers are skipped, never copied, and a compressed batch is read
//! through a decompressing stream with a small window.

use std::io::Read;

use crate::batch::{BatchHeader, Codec, BATCH_HEADER_BYTES};

/// What validation learns about one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordMeta {
    /// Position of the record in its batch, from 0 (Kafka's `batch_index`).
    pub index: i32,
    /// The record's timestamp: the batch's base timestamp plus the record's delta.
    pub timestamp: i64,
    pub has_key: bool,
}

/// Reads every record of `batch` (one whole batch whose header was validated), checking that
/// each is framed exactly by its length, that record `i` has offset delta `i`, and that the
/// records are exactly as many as the header says. Calls `each` for every record, in order.
pub fn walk(batch: &[u8], mut each: impl FnMut(RecordMeta)) -> Result<(), String> {
    let header = BatchHeader::new(batch).ok_or("truncated batch header")?;
    let codec = header
        .codec()
        .ok_or_else(|| format!("unknown compression codec {}", header.attributes() & 7))?;
    let payload = &batch[BATCH_HEADER_BYTES..];
    let (count, base) = (header.record_count(), header.base_timestamp());
    match codec {
        Codec::None => walk_input(&mut Slice(payload), count, base, &mut each),
        codec => {
            let reader = crate::codec::decompressor(codec, payload)
                .map_err(|e| format!("cannot decompress the {codec:?} records: {e}"))?;
            walk_input(&mut Stream::new(reader), count, base, &mut each)
        }
    }
}

fn walk_input(
    input: &mut impl Input,
    count: i32,
    base_timestamp: i64,
    each: &mut impl FnMut(RecordMeta),
) -> Result<(), String> {
    for index in 0..count {
        let len = match varint(input)? {
            Some(len) => len,
            None => {
                return Err(format!(
                    "the batch declares {count} records but holds {index}"
                ))
            }
        };
        let len = usize::try_from(len).map_err(|_| format!("record {index} has length {len}"))?;
        let mut r = Bounded { input, left: len };
        let at = |what: &str| format!("record {index}: {what}");
        r.skip(1).map_err(|_| at("truncated attributes"))?;
        let timestamp_delta = varlong(&mut r)?.ok_or_else(|| at("truncated timestamp delta"))?;
        let offset_delta = varint(&mut r)?.ok_or_else(|| at("truncated offset delta"))?;
        if offset_delta != index {
            return Err(at(&format!(
                "offset delta {offset_delta}, expected {index}"
            )));
        }
        let has_key = bytes(&mut r, true).map_err(|e| at(&format!("key: {e}")))?;
        bytes(&mut r, true).map_err(|e| at(&format!("value: {e}")))?;
        let headers = varint(&mut r)?.ok_or_else(|| at("truncated header count"))?;
        if headers < 0 {
            return Err(at(&format!("{headers} headers")));
        }
        for _ in 0..headers {
            bytes(&mut r, false).map_err(|e| at(&format!("header key: {e}")))?;
            bytes(&mut r, true).map_err(|e| at(&format!("header value: {e}")))?;
        }
        if r.left != 0 {
            return Err(at(&format!("{} bytes after its fields", r.left)));
        }
        each(RecordMeta {
            index,
            timestamp: base_timestamp.wrapping_add(timestamp_delta),
            has_key,
        });
    }
    if input.byte()?.is_some() {
        return Err(format!(
            "bytes after the last of the {count} records the batch declares"
        ));
    }
    Ok(())
}

/// A source of record bytes.
trait Input {
    /// The next byte; `None` at the end.
    fn byte(&mut self) -> Result<Option<u8>, String>;
    /// Skips `n` bytes; fails if fewer are left.
    fn skip(&mut self, n: usize) -> Result<(), String>;
}

struct Slice<'a>(&'a [u8]);

impl Input for Slice<'_> {
    fn byte(&mut self) -> Result<Option<u8>, String> {
        Ok(self.0.split_first().map(|(b, rest)| {
            self.0 = rest;
            *b
        }))
    }
    fn skip(&mut self, n: usize) -> Result<(), String> {
        self.0 = self.0.get(n..).ok_or("truncated")?;
        Ok(())
    }
}

/// Bytes from a reader, through a small window.
struct Stream<R> {
    reader: R,
    window: Vec<u8>,
    at: usize,
    end: usize,
}

const WINDOW_BYTES: usize = 16 * 1024;

impl<R: Read> Stream<R> {
    fn new(reader: R) -> Self {
        Self {
            reader,
            window: vec![0; WINDOW_BYTES],
            at: 0,
            end: 0,
        }
    }
    /// Refills the window; false at the end of the stream.
    fn fill(&mut self) -> Result<bool, String> {
        loop {
            match self.reader.read(&mut self.window) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    (self.at, self.end) = (0, n);
                    return Ok(true);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("cannot decompress the records: {e}")),
            }
        }
    }
}

impl<R: Read> Input for Stream<R> {
    fn byte(&mut self) -> Result<Option<u8>, String> {
        if self.at == self.end && !self.fill()? {
            return Ok(None);
        }
        self.at += 1;
        Ok(Some(self.window[self.at - 1]))
    }
    fn skip(&mut self, mut n: usize) -> Result<(), String> {
        loop {
            let here = n.min(self.end - self.at);
            self.at += here;
            n -= here;
            if n == 0 {
                return Ok(());
            }
            if !self.fill()? {
                return Err("truncated".into());
            }
        }
    }
}

/// The bytes of one record: no field may reach past its length.
struct Bounded<'a, I> {
    input: &'a mut I,
    left: usize,
}

impl<I: Input> Input for Bounded<'_, I> {
    fn byte(&mut self) -> Result<Option<u8>, String> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        self.input
            .byte()?
            .map(Some)
            .ok_or_else(|| "truncated".to_string())
    }
    fn skip(&mut self, n: usize) -> Result<(), String> {
        if n > self.left {
            return Err(format!("{n} bytes overrun the record"));
        }
        self.left -= n;
        self.input.skip(n)
    }
}

/// A length-prefixed byte string, skipped; `Ok(false)` for null (allowed when `nullable`).
fn bytes(input: &mut impl Input, nullable: bool) -> Result<bool, String> {
    match varint(input)?.ok_or("truncated length")? {
        -1 if nullable => Ok(false),
        n if n >= 0 => input.skip(n as usize).map(|()| true),
        n => Err(format!("length {n}")),
    }
}

/// Zig-zag varint (at most 5 bytes); `None` if the input ends before its first byte.
fn varint(input: &mut impl Input) -> Result<Option<i32>, String> {
    let Some(raw) = unsigned(input, 5)? else {
        return Ok(None);
    };
    let raw = u32::try_from(raw).map_err(|_| "varint out of range")?;
    Ok(Some(((raw >> 1) as i32) ^ -((raw & 1) as i32)))
}

/// Zig-zag varlong (at most 10 bytes).
fn varlong(input: &mut impl Input) -> Result<Option<i64>, String> {
    Ok(unsigned(input, 10)?.map(|raw| ((raw >> 1) as i64) ^ -((raw & 1) as i64)))
}

fn unsigned(input: &mut impl Input, max_bytes: usize) -> Result<Option<u64>, String> {
    let mut value = 0u64;
    for i in 0..max_bytes {
        let Some(b) = input.byte()? else {
            return if i == 0 {
                Ok(None)
            } else {
                Err("truncated varint".into())
            };
        };
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(Some(value));
        }
    }
    Err("varint too long".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::batch;
    use kafka_protocol::records::Compression;

    fn metas(b: &[u8]) -> Result<Vec<RecordMeta>, String> {
        let mut out = Vec::new();
        walk(b, |m| out.push(m))?;
        Ok(out)
    }

    #[test]
    fn reads_every_codec_the_same() {
        for c in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let got = metas(&batch(40, c)).expect("walks");
            assert_eq!(got.len(), 40, "{c:?}");
            for (i, m) in got.iter().enumerate() {
                assert_eq!(
                    *m,
                    RecordMeta {
                        index: i as i32,
                        timestamp: 1_000 + i as i64,
                        has_key: true
                    }
                );
            }
        }
    }

    #[test]
    fn keyless_records_are_seen() {
        let records = vec![
            crate::testing::record(0, Some("k".into()), Some("v".into()), 5),
            crate::testing::record(1, None, Some("v".into()), 6),
        ];
        for c in [Compression::None, Compression::Lz4] {
            let b = crate::testing::encode(&records, c);
            let keys: Vec<bool> = metas(&b).unwrap().iter().map(|m| m.has_key).collect();
            assert_eq!(keys, [true, false]);
        }
    }

    #[test]
    fn refuses_framing_errors() {
        let good = batch(3, Compression::None);
        // Every truncation of the payload, with the header left as it is.
        for cut in BATCH_HEADER_BYTES..good.len() {
            assert!(metas(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut extra = good.to_vec();
        extra.push(0);
        assert!(metas(&extra).unwrap_err().contains("after the last"));
        // A record whose offset delta is not its index.
        let mut shifted = good.to_vec();
        let first_record = BATCH_HEADER_BYTES;
        // length, attributes, timestamp delta 0 (one byte), then the offset delta.
        shifted[first_record + 3] = 2; // zig-zag 1
        assert!(metas(&shifted).unwrap_err().contains("offset delta"));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let good = batch(5, Compression::Snappy);
        for at in BATCH_HEADER_BYTES..good.len() {
            let mut b = good.to_vec();
            b[at] ^= 0xa5;
            let _ = metas(&b);
        }
    }
}
