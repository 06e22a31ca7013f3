//! Record-level validation of what a leader appends, as Kafka's `LogValidator` does it.
//!
//! [`strand_protocol::batch::validate_record_set`] has checked each batch's header (length,
//! magic, CRC, count, codec, size); here every record is read (through a decompressing stream
//! when the batch is compressed) and checked against the topic:
//!
//! * framing and offset deltas (a batch that breaks them is refused whole, INVALID_RECORD);
//! * a key on every record of a compacted topic, and CreateTime timestamps within
//!   `message.timestamp.before.max.ms` / `message.timestamp.after.max.ms` of now (KIP-937):
//!   each record that fails is named with its index, and the batch is refused ([`RecordErrors`],
//!   which a producer reports per record, KIP-467);
//! * the batch's max timestamp is the largest record timestamp: when the producer left it wrong
//!   (some write -1), the header is corrected and its CRC sealed again, so the time index and
//!   ListOffsets by timestamp see the batch;
//! * a topic whose `compression.type` names a codec gets its batches in that codec: a batch in
//!   another is decompressed and compressed again (the only case where records are rewritten).

use std::fmt;
use std::io::Read;

use strand_protocol::batch::{self, BatchError, BatchHeader, BatchInfo, BatchMut, Codec};
use strand_protocol::records;

use crate::config::{LogConfig, TimestampType};
use crate::error::LogError;

/// One record refused, by its position in its batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    pub index: i32,
    pub message: String,
}

/// The records of a batch that broke a rule. The batch is refused whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordErrors {
    /// Whether any record had a timestamp out of range (INVALID_TIMESTAMP, else INVALID_RECORD).
    pub invalid_timestamp: bool,
    pub errors: Vec<RecordError>,
}

impl fmt::Display for RecordErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.invalid_timestamp {
            return f.write_str("One or more records have been rejected due to invalid timestamp");
        }
        write!(
            f,
            "One or more records have been rejected due to {} record errors in total, and only \
             showing the first three errors at most: [",
            self.errors.len()
        )?;
        for (i, e) in self.errors.iter().take(3).enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            write!(
                f,
                "{sep}RecordError(batchIndex={}, message='{}')",
                e.index, e.message
            )?;
        }
        f.write_str("]")
    }
}

impl std::error::Error for RecordErrors {}

/// Validates the records of every batch in `set` (as [`batch::validate_record_set`] described
/// them in `infos`), correcting max timestamps in place. Returns the whole set rewritten when
/// the topic's codec made a batch change; `infos` then describe the old bytes and must be
/// computed again.
pub(crate) fn validate(
    set: &mut [u8],
    infos: &mut [BatchInfo],
    config: &LogConfig,
    now_ms: i64,
) -> Result<Option<Vec<u8>>, LogError> {
    let mut rewritten: Vec<(usize, Vec<u8>)> = Vec::new();
    for (i, info) in infos.iter_mut().enumerate() {
        let bytes = &mut set[info.position..info.position + info.size];
        let max_timestamp = check_records(bytes, info.position, config, now_ms)?;
        match config.compression {
            Some(codec) if codec != info.codec => {
                rewritten.push((i, recompress(bytes, info, codec, max_timestamp)?));
            }
            _ if config.timestamp_type == TimestampType::CreateTime
                && info.max_timestamp != max_timestamp =>
            {
                BatchMut::new(bytes)
                    .ok_or(BatchError::Empty)?
                    .set_max_timestamp(max_timestamp);
                info.max_timestamp = max_timestamp;
            }
            _ => {}
        }
    }
    if rewritten.is_empty() {
        return Ok(None);
    }
    let mut out = Vec::with_capacity(set.len());
    let mut next = rewritten.into_iter().peekable();
    for (i, info) in infos.iter().enumerate() {
        match next.next_if(|(at, _)| *at == i) {
            Some((_, bytes)) => out.extend_from_slice(&bytes),
            None => out.extend_from_slice(&set[info.position..info.position + info.size]),
        }
    }
    Ok(Some(out))
}

/// Reads every record of one batch; returns the largest record timestamp (-1 if none has one).
fn check_records(
    batch: &[u8],
    position: usize,
    config: &LogConfig,
    now_ms: i64,
) -> Result<i64, LogError> {
    let header = BatchHeader::new(batch).ok_or(BatchError::Empty)?;
    let create_time = config.timestamp_type == TimestampType::CreateTime;
    let (earliest, latest) = (
        now_ms.saturating_sub(config.timestamp_before_max_ms),
        now_ms.saturating_add(config.timestamp_after_max_ms),
    );
    let mut max_timestamp = -1;
    let mut errors = RecordErrors {
        invalid_timestamp: false,
        errors: Vec::new(),
    };
    let walked = records::walk(batch, |r| {
        let message = if config.compact_policy && !r.has_key {
            Some("Compacted topic cannot accept message without key".to_string())
        } else if create_time && r.timestamp != -1 {
            (r.timestamp < earliest || r.timestamp > latest).then(|| {
                errors.invalid_timestamp = true;
                format!(
                    "Timestamp {} of message with offset {} is out of range. The timestamp \
                     should be within [{earliest}, {latest}]",
                    r.timestamp,
                    header.base_offset().saturating_add(i64::from(r.index)),
                )
            })
        } else if header.is_log_append_time() {
            errors.invalid_timestamp = true;
            Some(
                "Invalid timestamp type in message. Producer should not set timestamp type to \
                 LogAppendTime."
                    .to_string(),
            )
        } else {
            None
        };
        match message {
            Some(message) => errors.errors.push(RecordError {
                index: r.index,
                message,
            }),
            None => max_timestamp = max_timestamp.max(r.timestamp),
        }
    });
    walked.map_err(|reason| BatchError::InvalidRecord { position, reason })?;
    if errors.errors.is_empty() {
        Ok(max_timestamp)
    } else {
        Err(LogError::Records(errors))
    }
}

/// The batch with its records in `codec`.
fn recompress(
    batch: &[u8],
    info: &BatchInfo,
    codec: Codec,
    max_timestamp: i64,
) -> Result<Vec<u8>, LogError> {
    let failed = |e: std::io::Error| BatchError::InvalidRecord {
        position: info.position,
        reason: format!("cannot recompress the records as {codec:?}: {e}"),
    };
    let payload = &batch[batch::BATCH_HEADER_BYTES..];
    let mut raw = Vec::new();
    strand_protocol::codec::decompressor(info.codec, payload)
        .and_then(|mut r| r.read_to_end(&mut raw))
        .map_err(failed)?;
    let packed = strand_protocol::codec::compress(codec, &raw).map_err(failed)?;
    Ok(batch::with_payload(batch, codec, &packed, max_timestamp))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::records::{Compression, RecordBatchDecoder};
    use strand_protocol::batch::validate_record_set;
    use strand_protocol::testing::{encode, record};

    const NOW: i64 = 1_700_000_000_000;

    fn run(set: &mut [u8], config: &LogConfig) -> Result<Option<Vec<u8>>, LogError> {
        let mut infos = validate_record_set(set, usize::MAX).expect("valid header");
        validate(set, &mut infos, config, NOW)
    }

    fn records(keys: &[Option<&str>], timestamps: &[i64]) -> Vec<kafka_protocol::records::Record> {
        keys.iter()
            .zip(timestamps)
            .enumerate()
            .map(|(i, (k, t))| {
                record(
                    i as i64,
                    k.map(|k| k.to_owned().into()),
                    Some("v".into()),
                    *t,
                )
            })
            .collect()
    }

    fn set_max_timestamp_raw(b: &mut [u8], ts: i64) {
        b[35..43].copy_from_slice(&ts.to_be_bytes());
        let crc = batch::compute_crc(b);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
    }

    #[test]
    fn a_wrong_or_unset_max_timestamp_is_computed_from_the_records() {
        for c in [Compression::None, Compression::Lz4, Compression::Zstd] {
            for stated in [-1, 5, NOW + 10] {
                let mut b = encode(&records(&[Some("a"), Some("b")], &[NOW - 2, NOW - 1]), c);
                set_max_timestamp_raw(&mut b, stated);
                assert!(run(&mut b, &LogConfig::default()).unwrap().is_none());
                let h = BatchHeader::new(&b).unwrap();
                assert_eq!(h.max_timestamp(), NOW - 1, "{c:?} stated {stated}");
                assert!(batch::crc_matches(&b));
            }
        }
    }

    #[test]
    fn keyless_records_of_a_compacted_topic_are_named() {
        let config = LogConfig {
            compact_policy: true,
            ..LogConfig::default()
        };
        for c in [Compression::None, Compression::Gzip, Compression::Snappy] {
            let mut b = encode(&records(&[Some("a"), None, Some("c"), None], &[NOW; 4]), c);
            let Err(LogError::Records(e)) = run(&mut b, &config) else {
                panic!("{c:?}: keyless records accepted")
            };
            assert!(!e.invalid_timestamp);
            let indexes: Vec<i32> = e.errors.iter().map(|e| e.index).collect();
            assert_eq!(indexes, [1, 3]);
            assert!(e.to_string().contains("2 record errors"), "{e}");
        }
    }

    #[test]
    fn timestamps_out_of_bounds_are_refused_per_record() {
        let config = LogConfig {
            timestamp_before_max_ms: 1_000,
            timestamp_after_max_ms: 100,
            ..LogConfig::default()
        };
        let keys = [Some("a"); 5];
        let ts = [NOW - 1_000, NOW - 1_001, NOW + 100, NOW + 101, -1];
        let mut b = encode(&records(&keys, &ts), Compression::None);
        let Err(LogError::Records(e)) = run(&mut b, &config) else {
            panic!("accepted")
        };
        assert!(e.invalid_timestamp);
        let indexes: Vec<i32> = e.errors.iter().map(|e| e.index).collect();
        assert_eq!(indexes, [1, 3]);
        assert!(e.errors[0].message.contains("out of range"));
        // LogAppendTime topics take any timestamp.
        let config = LogConfig {
            timestamp_type: TimestampType::LogAppendTime,
            ..config
        };
        assert!(run(&mut b, &config).is_ok());
    }

    #[test]
    fn a_topic_codec_recompresses_and_keeps_every_record() {
        let rs = records(&[Some("a"), None, Some("c")], &[NOW - 3, NOW - 1, NOW - 2]);
        for (from, to) in [
            (Compression::None, Codec::Lz4),
            (Compression::Lz4, Codec::None),
            (Compression::Gzip, Codec::Zstd),
            (Compression::Zstd, Codec::Snappy),
            (Compression::Snappy, Codec::Gzip),
        ] {
            let config = LogConfig {
                compression: Some(to),
                ..LogConfig::default()
            };
            let mut b = encode(&rs, from);
            let out = run(&mut b, &config).unwrap().expect("rewritten");
            let infos = validate_record_set(&out, usize::MAX).expect("valid batch");
            assert_eq!(infos[0].codec, to);
            assert_eq!(infos[0].max_timestamp, NOW - 1);
            let set = RecordBatchDecoder::decode(&mut bytes::Bytes::from(out)).unwrap();
            let got: Vec<_> = set
                .records
                .iter()
                .map(|r| (r.key.clone(), r.timestamp))
                .collect();
            let want: Vec<_> = rs.iter().map(|r| (r.key.clone(), r.timestamp)).collect();
            assert_eq!(got, want, "{from:?} -> {to:?}");
        }
        // Already in the topic's codec: left as it is.
        let config = LogConfig {
            compression: Some(Codec::Lz4),
            ..LogConfig::default()
        };
        assert!(run(&mut encode(&rs, Compression::Lz4), &config)
            .unwrap()
            .is_none());
    }

    #[test]
    fn framing_errors_refuse_the_batch() {
        let mut b = encode(
            &records(&[Some("a"), Some("b")], &[NOW; 2]),
            Compression::None,
        );
        // Shift the second record's offset delta and reseal, so only the walk can tell.
        // Record 1: length (one byte, zig-zag), attributes, timestamp delta 0, offset delta.
        let first_len = usize::from(b[batch::BATCH_HEADER_BYTES] >> 1);
        let second = batch::BATCH_HEADER_BYTES + 1 + first_len + 3;
        assert_eq!(b[second], 2, "record 1 has offset delta 1");
        b[second] = 4;
        let crc = batch::compute_crc(&b);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        let err = run(&mut b, &LogConfig::default()).unwrap_err();
        assert!(
            matches!(
                err,
                LogError::InvalidBatch(BatchError::InvalidRecord { .. })
            ),
            "{err}"
        );
    }
}
