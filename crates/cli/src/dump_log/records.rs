//! The records of a batch whose CRC matched: walked here first, checking what the decoder
//! would trust (framing, counts, offset and timestamp arithmetic), then decoded by
//! `kafka-protocol` into what gets printed.

use std::cell::RefCell;

use bytes::Bytes;
use kafka_protocol::records::{Compression, RecordBatchDecoder};
use strand_protocol::batch::{read_varint, read_varlong, BatchHeader};

use super::batch::sequence_after;
use super::inflate::inflate;

/// The smallest record: length, attributes, timestamp delta, offset delta, key length, value
/// length and header count, one byte each.
const MIN_RECORD_BYTES: usize = 7;

/// Bytes as text, for printing: keys, values and header keys need not be UTF-8.
pub(super) fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// One record as walked here: what the decoder does not keep (duplicate header keys, in order).
struct Walked {
    headers: Vec<(String, Option<Vec<u8>>)>,
}

/// The next `n` bytes of `buf`, or `None` when it has fewer.
pub(super) fn take<'b>(buf: &mut &'b [u8], n: usize) -> Option<&'b [u8]> {
    if buf.len() < n {
        return None;
    }
    let (head, tail) = buf.split_at(n);
    *buf = tail;
    Some(head)
}

/// A length-prefixed byte string: `Ok(None)` for null (-1) when `nullable`.
fn bytes_field<'b>(
    buf: &mut &'b [u8],
    nullable: bool,
    what: &str,
) -> Result<Option<&'b [u8]>, String> {
    let len = read_varint(buf).ok_or_else(|| format!("truncated {what} length"))?;
    match len {
        -1 if nullable => Ok(None),
        n if n >= 0 => take(buf, n as usize)
            .map(Some)
            .ok_or_else(|| format!("{what} of {n} bytes overruns the record")),
        n => Err(format!("{what} length {n}")),
    }
}

/// Walks `count` records of an inflated batch body, checking their framing and that their
/// offsets and timestamps do not overflow.
fn walk_records(
    mut body: &[u8],
    count: i32,
    base_offset: i64,
    base_timestamp: i64,
) -> Result<Vec<Walked>, String> {
    let count = usize::try_from(count).map_err(|_| format!("record count {count}"))?;
    if count > body.len() / MIN_RECORD_BYTES {
        return Err(format!(
            "record count {count} cannot fit in {} bytes of records",
            body.len()
        ));
    }
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let len = read_varint(&mut body).ok_or_else(|| format!("record {i}: truncated length"))?;
        let len = usize::try_from(len).map_err(|_| format!("record {i}: length {len}"))?;
        let mut rec = take(&mut body, len)
            .ok_or_else(|| format!("record {i} of {len} bytes overruns the batch"))?;
        let fail = |e: String| format!("record {i}: {e}");
        take(&mut rec, 1).ok_or_else(|| fail("truncated attributes".into()))?;
        let ts_delta =
            read_varlong(&mut rec).ok_or_else(|| fail("truncated timestamp delta".into()))?;
        base_timestamp
            .checked_add(ts_delta)
            .ok_or_else(|| fail(format!("timestamp delta {ts_delta} overflows")))?;
        let offset_delta =
            read_varint(&mut rec).ok_or_else(|| fail("truncated offset delta".into()))?;
        base_offset
            .checked_add(i64::from(offset_delta))
            .ok_or_else(|| fail(format!("offset delta {offset_delta} overflows")))?;
        bytes_field(&mut rec, true, "key").map_err(fail)?;
        bytes_field(&mut rec, true, "value").map_err(fail)?;
        let n = read_varint(&mut rec).ok_or_else(|| fail("truncated header count".into()))?;
        let n = usize::try_from(n).map_err(|_| fail(format!("header count {n}")))?;
        if n > rec.len() / 2 {
            return Err(fail(format!(
                "header count {n} cannot fit in {} bytes",
                rec.len()
            )));
        }
        let mut headers = Vec::with_capacity(n);
        for _ in 0..n {
            let key = bytes_field(&mut rec, false, "header key")
                .map_err(fail)?
                .unwrap_or_default();
            let value = bytes_field(&mut rec, true, "header value").map_err(fail)?;
            headers.push((lossy(key), value.map(<[u8]>::to_vec)));
        }
        if !rec.is_empty() {
            return Err(fail(format!("{} bytes after its last header", rec.len())));
        }
        out.push(Walked { headers });
    }
    if !body.is_empty() {
        return Err(format!("{} bytes after the last record", body.len()));
    }
    Ok(out)
}

/// What a control record says.
pub(super) enum Control {
    EndTxn {
        commit: bool,
        coordinator_epoch: Option<i32>,
    },
    Other(String),
}

pub(super) fn control_of(key: Option<&[u8]>, value: Option<&[u8]>) -> Control {
    let Some(k) = key.filter(|k| k.len() >= 4) else {
        return Control::Other(format!(
            "unreadable (key of {} bytes)",
            key.map_or(-1, |k| k.len() as i64)
        ));
    };
    let kind = i16::from_be_bytes([k[2], k[3]]);
    // Value of a transaction marker: version i16, coordinator epoch i32.
    let epoch = value
        .filter(|v| v.len() >= 6)
        .map(|v| i32::from_be_bytes([v[2], v[3], v[4], v[5]]));
    match kind {
        0 | 1 => Control::EndTxn {
            commit: kind == 1,
            coordinator_epoch: epoch,
        },
        2 => Control::Other("LEADER_CHANGE".into()),
        3 => Control::Other("SNAPSHOT_HEADER".into()),
        4 => Control::Other("SNAPSHOT_FOOTER".into()),
        5 => Control::Other("KRAFT_VERSION".into()),
        6 => Control::Other("KRAFT_VOTERS".into()),
        n => Control::Other(format!("UNKNOWN({n})")),
    }
}

/// A decoded record, ready to print.
pub(super) struct RecordOut {
    pub(super) offset: i64,
    pub(super) timestamp: i64,
    pub(super) sequence: i32,
    pub(super) key: Option<Bytes>,
    pub(super) value: Option<Bytes>,
    pub(super) headers: Vec<(String, Option<Vec<u8>>)>,
}

/// Decodes the records of one whole batch whose CRC matched.
pub(super) fn decode_records(batch: &[u8], h: &BatchHeader<'_>) -> Result<Vec<RecordOut>, String> {
    if h.codec().is_none() {
        return Err(format!(
            "unknown compression codec {}",
            h.attributes() & 0x07
        ));
    }
    let (count, base_offset, base_ts) = (h.record_count(), h.base_offset(), h.base_timestamp());
    let walked: RefCell<Option<Vec<Walked>>> = RefCell::new(None);
    let check = |buf: &mut Bytes, c: Compression| -> anyhow::Result<Bytes> {
        let body = inflate(buf, c)?;
        let w = walk_records(&body, count, base_offset, base_ts).map_err(anyhow::Error::msg)?;
        *walked.borrow_mut() = Some(w);
        Ok(body)
    };
    let mut bytes = Bytes::copy_from_slice(batch);
    let set = RecordBatchDecoder::decode_with_custom_compression(&mut bytes, Some(check))
        .map_err(|e| format!("{e:#}"))?;
    let walked = walked
        .into_inner()
        .ok_or("the decoder never reached the records")?;
    if walked.len() != set.records.len() {
        return Err(format!(
            "decoded {} records, walked {}",
            set.records.len(),
            walked.len()
        ));
    }
    Ok(set
        .records
        .into_iter()
        .zip(walked)
        .map(|(r, w)| RecordOut {
            offset: r.offset,
            // Under LogAppendTime every record's timestamp is the batch's max timestamp.
            timestamp: if h.is_log_append_time() {
                h.max_timestamp()
            } else {
                r.timestamp
            },
            // Not the decoder's: it adds offset deltas to a base sequence of -1 (none).
            sequence: sequence_after(h.base_sequence(), r.offset.saturating_sub(base_offset)),
            key: r.key,
            value: r.value,
            headers: w.headers,
        })
        .collect())
}
