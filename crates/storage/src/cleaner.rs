//! Log compaction: keep the latest record per key in a partition's closed segments.
//!
//! A pass has three steps, so that producers are never blocked for long:
//!
//! 1. [`plan`] (under the partition lock, cheap): which closed segments to clean, if the dirty
//!    part is large enough (`min.cleanable.dirty.ratio`), old enough
//!    (`min.compaction.lag.ms`), or overdue (`max.compaction.lag.ms`).
//! 2. [`build`] (no lock): read those segments, map each key to its latest offset, and write a
//!    cleaned copy of each segment beside it (`*.log.cleaned`). Offsets are kept (compaction
//!    leaves gaps, never renumbers); a batch with nothing to drop is copied byte for byte;
//!    control batches and producer ids are kept; tombstones older than `delete.retention.ms`
//!    go. Reads are throttled to a byte rate.
//! 3. [`install`] (under the lock): each cleaned file replaces its segment if the segment is
//!    unchanged; the new file is rescanned (CRCs checked, indexes rebuilt).
//!
//! The active segment is never compacted.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
};
use strand_protocol::batch::{BatchHeader, Codec, BATCH_HEADER_BYTES};

use crate::error::{LogError, Result};
use crate::log::PartitionLog;

/// A closed segment to clean, as seen when the pass was planned.
#[derive(Debug, Clone)]
pub struct PlannedSegment {
    pub base_offset: i64,
    pub file: Arc<File>,
    pub path: PathBuf,
    pub size: u64,
}

#[derive(Debug, Clone)]
pub struct CleanPlan {
    pub segments: Vec<PlannedSegment>,
    pub delete_retention_ms: i64,
    /// Where the dirty part will start after this pass (the active segment's base).
    pub clean_until: i64,
    /// Aborted transactions of the log: their data neither shadows older values nor is
    /// dropped here (consumers skip it), and their markers stay.
    pub aborted: Vec<crate::txn_index::AbortedTxn>,
}

/// A cleaned copy of one segment, ready to install.
#[derive(Debug)]
pub struct CleanedSegment {
    pub base_offset: i64,
    pub original_size: u64,
    pub cleaned_path: PathBuf,
    pub cleaned_size: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanStats {
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub records_kept: u64,
    pub records_dropped: u64,
    /// Timestamp of the oldest tombstone kept: a pass is due again once it passes
    /// `delete.retention.ms`, whatever the dirty ratio.
    pub oldest_tombstone_ms: Option<i64>,
}

/// Decides whether `log` needs cleaning now.
pub fn plan(log: &PartitionLog, now_ms: i64) -> Option<CleanPlan> {
    let config = log.config();
    if !config.compact_policy {
        return None;
    }
    let closed = log.closed_segments();
    // Segments younger than min.compaction.lag.ms (by their newest record) are left alone,
    // and so is everything after them; so is everything from the last stable offset on
    // (undecided transactions).
    let lso = log.last_stable_offset();
    let ends: Vec<i64> = closed
        .iter()
        .skip(1)
        .map(|(s, _)| s.base_offset)
        .chain(std::iter::once(log.active_base_offset()))
        .collect();
    let cleanable: Vec<PlannedSegment> = closed
        .into_iter()
        .zip(ends)
        .take_while(|((seg, max_ts), end)| {
            *end <= lso
                && (*max_ts < 0
                    || now_ms - *max_ts >= config.min_compaction_lag_ms
                    || seg.size == 0)
        })
        .map(|((seg, _), _)| seg)
        .collect();
    if cleanable.is_empty() {
        return None;
    }
    let clean_until = cleanable.last().map(|s| s.base_offset).unwrap_or(0);
    let first_dirty = log.first_dirty_offset();
    let total: u64 = cleanable.iter().map(|s| s.size).sum();
    let dirty: u64 = cleanable
        .iter()
        .filter(|s| s.base_offset >= first_dirty)
        .map(|s| s.size)
        .sum();
    let tombstones_due = log
        .oldest_tombstone_ms()
        .is_some_and(|t| now_ms.saturating_sub(t) > config.delete_retention_ms);
    if total == 0 || (dirty == 0 && !tombstones_due) {
        return None;
    }
    let ratio = dirty as f64 / total as f64;
    let overdue = log
        .dirty_since_ms()
        .is_some_and(|t| now_ms.saturating_sub(t) >= config.max_compaction_lag_ms);
    if ratio < config.min_cleanable_dirty_ratio && !overdue && !tombstones_due {
        return None;
    }
    Some(CleanPlan {
        segments: cleanable,
        delete_retention_ms: config.delete_retention_ms,
        clean_until: clean_until + 1,
        aborted: log.aborted_transactions(i64::MIN, i64::MAX),
    })
}

/// Limits reads to `bytes_per_sec` (`log.cleaner.io.max.bytes.per.second`).
pub struct Throttle {
    bytes_per_sec: f64,
    started: Instant,
    bytes: u64,
}

impl Throttle {
    pub fn new(bytes_per_sec: f64) -> Self {
        Self {
            bytes_per_sec,
            started: Instant::now(),
            bytes: 0,
        }
    }

    fn consume(&mut self, n: u64) {
        self.bytes += n;
        if !self.bytes_per_sec.is_finite() || self.bytes_per_sec <= 0.0 {
            return;
        }
        let due = Duration::from_secs_f64(self.bytes as f64 / self.bytes_per_sec);
        let elapsed = self.started.elapsed();
        if due > elapsed {
            std::thread::sleep(due - elapsed);
        }
    }
}

/// Batches of a segment, read one at a time.
fn batches(
    seg: &PlannedSegment,
    throttle: &mut Throttle,
    mut f: impl FnMut(Bytes) -> Result<()>,
) -> Result<u64> {
    let mut position = 0u64;
    let mut header = [0u8; BATCH_HEADER_BYTES];
    while position + BATCH_HEADER_BYTES as u64 <= seg.size {
        seg.file
            .read_exact_at(&mut header, position)
            .map_err(LogError::io(&seg.path))?;
        let size = BatchHeader::new(&header)
            .and_then(|h| h.total_size())
            .filter(|s| position + *s as u64 <= seg.size);
        let Some(size) = size else {
            return Err(LogError::Corrupt {
                what: "segment",
                path: seg.path.clone(),
                position,
                reason: "bad batch length while cleaning".into(),
            });
        };
        let mut buf = vec![0u8; size];
        seg.file
            .read_exact_at(&mut buf, position)
            .map_err(LogError::io(&seg.path))?;
        throttle.consume(size as u64);
        f(Bytes::from(buf))?;
        position += size as u64;
    }
    Ok(position)
}

/// Whether `h` is a data batch of an aborted transaction.
fn is_aborted(h: &BatchHeader<'_>, aborted: &[crate::txn_index::AbortedTxn]) -> bool {
    h.is_transactional()
        && !h.is_control()
        && aborted.iter().any(|a| {
            a.producer_id == h.producer_id()
                && a.first_offset <= h.base_offset()
                && h.base_offset() <= a.last_offset
        })
}

fn decode(batch: &Bytes, path: &std::path::Path) -> Result<Vec<Record>> {
    let mut b = batch.clone();
    RecordBatchDecoder::decode(&mut b)
        .map(|set| set.records)
        .map_err(|e| LogError::Corrupt {
            what: "batch",
            path: path.to_owned(),
            position: 0,
            reason: format!("undecodable while cleaning: {e}"),
        })
}

/// Writes the cleaned copies; returns them with what the pass did.
pub fn build(
    plan: &CleanPlan,
    now_ms: i64,
    throttle: &mut Throttle,
) -> Result<(Vec<CleanedSegment>, CleanStats)> {
    let mut stats = CleanStats::default();
    // Pass 1: the latest offset of every key.
    let mut latest: HashMap<Bytes, i64> = HashMap::new();
    for seg in &plan.segments {
        stats.bytes_read += batches(seg, throttle, |batch| {
            let Some(h) = BatchHeader::new(&batch) else {
                return Ok(());
            };
            if h.is_control() || is_aborted(&h, &plan.aborted) {
                return Ok(());
            }
            for r in decode(&batch, &seg.path)? {
                if let Some(k) = r.key {
                    latest.insert(k, r.offset);
                }
            }
            Ok(())
        })?;
    }
    // Pass 2: the cleaned copies.
    let horizon = now_ms.saturating_sub(plan.delete_retention_ms);
    let mut out = Vec::new();
    for seg in &plan.segments {
        let cleaned_path = seg.path.with_extension("log.cleaned");
        let mut file = File::create(&cleaned_path).map_err(LogError::io(&cleaned_path))?;
        let mut written = 0u64;
        batches(seg, throttle, |batch| {
            let Some(h) = BatchHeader::new(&batch) else {
                return Ok(());
            };
            if h.is_control() || is_aborted(&h, &plan.aborted) {
                file.write_all(&batch)
                    .map_err(LogError::io(&cleaned_path))?;
                written += batch.len() as u64;
                return Ok(());
            }
            let records = decode(&batch, &seg.path)?;
            let n = records.len();
            let keep = |r: &Record| match &r.key {
                // Keyless records cannot be compacted away by a newer value; Kafka refuses
                // them on compacted topics, so only old data has them.
                None => true,
                Some(k) => {
                    latest.get(k) == Some(&r.offset)
                        && (r.value.is_some() || r.timestamp >= horizon)
                }
            };
            let kept: Vec<Record> = records.into_iter().filter(keep).collect();
            for r in kept.iter().filter(|r| r.value.is_none()) {
                stats.oldest_tombstone_ms = Some(
                    stats
                        .oldest_tombstone_ms
                        .map_or(r.timestamp, |t| t.min(r.timestamp)),
                );
            }
            stats.records_kept += kept.len() as u64;
            stats.records_dropped += (n - kept.len()) as u64;
            let bytes = if kept.len() == n {
                batch
            } else if kept.is_empty() {
                return Ok(());
            } else {
                reencode(&h, kept, &cleaned_path)?
            };
            file.write_all(&bytes)
                .map_err(LogError::io(&cleaned_path))?;
            written += bytes.len() as u64;
            Ok(())
        })?;
        file.sync_all().map_err(LogError::io(&cleaned_path))?;
        stats.bytes_written += written;
        out.push(CleanedSegment {
            base_offset: seg.base_offset,
            original_size: seg.size,
            cleaned_path,
            cleaned_size: written,
        });
    }
    Ok((out, stats))
}

/// A new batch holding `kept` (offsets unchanged) with the original's codec, producer and
/// leader epoch. Sequences follow offsets so the encoder keeps the records in one batch.
fn reencode(h: &BatchHeader<'_>, mut kept: Vec<Record>, path: &std::path::Path) -> Result<Bytes> {
    let compression = match h.codec() {
        Some(Codec::Gzip) => Compression::Gzip,
        Some(Codec::Snappy) => Compression::Snappy,
        Some(Codec::Lz4) => Compression::Lz4,
        Some(Codec::Zstd) => Compression::Zstd,
        _ => Compression::None,
    };
    let first = kept.first().map_or(0, |r| r.offset);
    let base_sequence = h.base_sequence();
    for r in &mut kept {
        r.partition_leader_epoch = h.partition_leader_epoch();
        r.sequence = if base_sequence < 0 {
            -1 + (r.offset - first) as i32
        } else {
            base_sequence.wrapping_add((r.offset - h.base_offset()) as i32)
        };
    }
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &kept,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .map_err(|e| LogError::Corrupt {
        what: "batch",
        path: path.to_owned(),
        position: 0,
        reason: format!("cannot re-encode while cleaning: {e}"),
    })?;
    Ok(buf.freeze())
}

/// Installs the cleaned copies into `log`; a segment that changed since the plan (it cannot
/// while closed, but a retention pass may have deleted it) keeps its old file.
pub fn install(
    log: &mut PartitionLog,
    cleaned: Vec<CleanedSegment>,
    stats: &CleanStats,
    clean_until: i64,
    now_ms: i64,
) -> Result<usize> {
    let mut installed = 0;
    for c in cleaned {
        if log.replace_closed_segment(c.base_offset, c.original_size, &c.cleaned_path, now_ms)? {
            installed += 1;
        } else {
            let _ = std::fs::remove_file(&c.cleaned_path);
        }
    }
    log.mark_cleaned(clean_until, stats.oldest_tombstone_ms);
    Ok(installed)
}

/// One whole pass (tests and callers that hold the log exclusively).
pub fn clean_now(log: &mut PartitionLog, now_ms: i64) -> Result<Option<CleanStats>> {
    let Some(plan) = plan(log, now_ms) else {
        return Ok(None);
    };
    let (cleaned, stats) = build(&plan, now_ms, &mut Throttle::new(f64::INFINITY))?;
    install(log, cleaned, &stats, plan.clean_until, now_ms)?;
    Ok(Some(stats))
}
