//! The log of one partition: an ordered set of segments, the last one active.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::records::RecordBatchDecoder;
use strand_protocol::batch::{validate_record_set, BatchHeader, BatchMut};
use strand_protocol::fetch::RecordData;

use crate::config::{LogConfig, TimestampType};
use crate::epoch::LeaderEpochCache;
use crate::error::{LogError, Result};
use crate::producer_state::{self, AppendOrigin, ProducerBatch, ProducerStateManager};
use crate::segment::{BatchPosition, Segment, SegmentRecovery};

mod producers;

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    pub base_offset: i64,
    pub last_offset: i64,
    pub record_count: i64,
    /// The time stamped on the batches, or -1 under CreateTime.
    pub log_append_time_ms: i64,
    pub log_start_offset: i64,
    /// The batch was a retry of one already in the log: nothing was written, and the offsets
    /// are those of the original.
    pub duplicate: bool,
}

/// A byte range of a segment file holding whole batches (the last one may be cut short by the
/// size limit, as Kafka does; clients drop a partial trailing batch).
#[derive(Debug, Clone)]
pub struct FileSlice {
    pub file: Arc<File>,
    pub position: u64,
    pub len: usize,
    /// No batch of the range holds an offset at or past this (an upper bound, for the
    /// aborted transactions a committed read must be told about).
    pub end_offset_bound: i64,
}

impl RecordData for FileSlice {
    fn len(&self) -> usize {
        self.len
    }
}

impl FileSlice {
    /// Reads the range into memory (for callers that cannot send from the file).
    pub fn read(&self) -> std::io::Result<Bytes> {
        use std::os::unix::fs::FileExt;
        let mut buf = vec![0u8; self.len];
        self.file.read_exact_at(&mut buf, self.position)?;
        Ok(buf.into())
    }
}

/// Files to fsync, and the offset that is durable once they are.
#[derive(Debug, Clone)]
pub struct SyncTarget {
    pub files: Vec<Arc<File>>,
    pub end_offset: i64,
}

/// What opening a log found.
#[derive(Debug, Clone, Default)]
pub struct OpenReport {
    pub recovered: Vec<SegmentRecovery>,
    /// Segments deleted because they followed a truncated one.
    pub dropped_segments: Vec<i64>,
    /// Index files that failed their checks and were rebuilt.
    pub rebuilt_indexes: Vec<String>,
}

impl OpenReport {
    pub fn truncated_bytes(&self) -> u64 {
        self.recovered.iter().map(|r| r.truncated_bytes).sum()
    }
}

#[derive(Debug)]
pub struct PartitionLog {
    dir: PathBuf,
    config: LogConfig,
    segments: BTreeMap<i64, Segment>,
    log_start_offset: i64,
    high_watermark: i64,
    /// Everything below this offset is on stable storage.
    recovery_point: i64,
    epochs: LeaderEpochCache,
    /// Files of deleted segments and when they may be removed (`file.delete.delay.ms`).
    pending_deletes: Vec<(PathBuf, i64)>,
    /// Offsets from here on have not been compacted yet.
    first_dirty_offset: i64,
    /// When the first not-yet-compacted data arrived (for `max.compaction.lag.ms`).
    dirty_since_ms: Option<i64>,
    /// The oldest tombstone the last compaction kept.
    oldest_tombstone_ms: Option<i64>,
    /// Idempotent and transactional producers, and the open transactions.
    producers: ProducerStateManager,
    /// The offset of the newest producer snapshot written.
    last_snapshot_offset: i64,
}

/// What a retention pass deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionOutcome {
    pub segments: usize,
    pub bytes: u64,
    /// Why: "time", "size" or "log start".
    pub reasons: Vec<&'static str>,
}

impl PartitionLog {
    /// Opens (or creates) the log in `dir`.
    ///
    /// After a clean shutdown the indexes are loaded and only checked; otherwise every segment
    /// from the one holding `recovery_point` on is scanned, its CRCs verified, a torn or corrupt
    /// tail cut off, and its indexes rebuilt. Segments after a cut are dropped: the log must stay
    /// contiguous.
    pub fn open(
        dir: &Path,
        config: LogConfig,
        clean: bool,
        recovery_point: i64,
        now_ms: i64,
    ) -> Result<(Self, OpenReport)> {
        std::fs::create_dir_all(dir).map_err(LogError::io(dir))?;
        let mut bases = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(LogError::io(dir))? {
            let entry = entry.map_err(LogError::io(dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(stem) = name.strip_suffix(".log") {
                if let Ok(base) = stem.parse::<i64>() {
                    bases.push(base);
                }
            } else if name.ends_with(".tmp")
                || name.ends_with(".tmp-index")
                || name.ends_with(".deleted")
            {
                // Leftovers of an interrupted write, or of a deletion waiting out file.delete.delay.ms.
                let _ = std::fs::remove_file(entry.path());
            }
        }
        bases.sort_unstable();
        let mut report = OpenReport::default();
        let mut segments = BTreeMap::new();
        let batch_bytes_max = (config.max_message_bytes as u64).max(config.segment_bytes);
        let recover_from = bases
            .iter()
            .rev()
            .find(|&&b| b <= recovery_point)
            .copied()
            .unwrap_or(i64::MIN);
        let mut cut = false;
        // The first segment rescanned: its transaction index and those after it are rebuilt.
        let mut first_recovered: Option<i64> = None;
        for base in bases {
            let mut seg = Segment::open(dir, base, config.index_interval_bytes, now_ms)?;
            if cut {
                seg.delete_files()?;
                report.dropped_segments.push(base);
                continue;
            }
            let must_recover = !clean && base >= recover_from;
            if !must_recover {
                if let Err(e) = seg.load() {
                    tracing::warn!(dir = %dir.display(), base, error = %e, "segment failed its checks; rebuilding");
                    report.rebuilt_indexes.push(format!("{base}: {e}"));
                    first_recovered.get_or_insert(base);
                    let r = seg.recover(batch_bytes_max)?;
                    cut = r.truncated_bytes > 0;
                    report.recovered.push(r);
                }
            } else {
                first_recovered.get_or_insert(base);
                let r = seg.recover(batch_bytes_max)?;
                cut = r.truncated_bytes > 0;
                report.recovered.push(r);
            }
            segments.insert(base, seg);
        }
        if segments.is_empty() {
            segments.insert(
                0,
                Segment::create(dir, 0, config.index_interval_bytes, now_ms)?,
            );
        }
        let mut log = Self {
            dir: dir.to_owned(),
            config,
            log_start_offset: *segments.keys().next().unwrap_or(&0),
            segments,
            high_watermark: 0,
            recovery_point: 0,
            epochs: LeaderEpochCache::load(dir)?,
            pending_deletes: Vec::new(),
            first_dirty_offset: 0,
            dirty_since_ms: None,
            oldest_tombstone_ms: None,
            producers: ProducerStateManager::new(0),
            last_snapshot_offset: -1,
        };
        let end = log.log_end_offset();
        log.epochs.truncate_from_end(end)?;
        log.high_watermark = end;
        log.recovery_point = end;
        log.load_producer_state(clean, first_recovered, now_ms)?;
        Ok((log, report))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn config(&self) -> &LogConfig {
        &self.config
    }
    pub fn set_config(&mut self, config: LogConfig) {
        self.config = config;
    }
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }
    pub fn log_end_offset(&self) -> i64 {
        self.active().next_offset()
    }
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
    }
    /// The high watermark only moves forward and never past the log end.
    pub fn update_high_watermark(&mut self, offset: i64) {
        self.high_watermark = self.high_watermark.max(offset.min(self.log_end_offset()));
        self.producers.on_high_watermark(self.high_watermark);
    }
    pub fn recovery_point(&self) -> i64 {
        self.recovery_point
    }
    pub fn size_bytes(&self) -> u64 {
        self.segments.values().map(Segment::size).sum()
    }
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Closed segments (all but the active one) with their newest record's timestamp.
    pub fn closed_segments(&self) -> Vec<(crate::cleaner::PlannedSegment, i64)> {
        let n = self.segments.len().saturating_sub(1);
        self.segments
            .values()
            .take(n)
            .map(|s| {
                let planned = crate::cleaner::PlannedSegment {
                    base_offset: s.base_offset(),
                    file: s.file().clone(),
                    path: s.log_path().to_owned(),
                    size: s.size(),
                };
                (planned, s.max_timestamp())
            })
            .collect()
    }

    pub fn first_dirty_offset(&self) -> i64 {
        self.first_dirty_offset
    }

    pub fn dirty_since_ms(&self) -> Option<i64> {
        self.dirty_since_ms
    }

    pub fn oldest_tombstone_ms(&self) -> Option<i64> {
        self.oldest_tombstone_ms
    }

    /// Everything below `offset` is compacted; the oldest tombstone left is `oldest_tombstone_ms`.
    pub fn mark_cleaned(&mut self, offset: i64, oldest_tombstone_ms: Option<i64>) {
        self.first_dirty_offset = self.first_dirty_offset.max(offset);
        self.dirty_since_ms = None;
        self.oldest_tombstone_ms = oldest_tombstone_ms;
    }

    /// Replaces closed segment `base` with the file at `cleaned` if the segment still has
    /// `expected_size` bytes; the new file is rescanned (CRCs, indexes). Readers holding the
    /// old file keep reading it.
    pub fn replace_closed_segment(
        &mut self,
        base: i64,
        expected_size: u64,
        cleaned: &Path,
        now_ms: i64,
    ) -> Result<bool> {
        let active = self.active().base_offset();
        let Some(old) = self.segments.get(&base) else {
            return Ok(false);
        };
        if base == active || old.size() != expected_size {
            return Ok(false);
        }
        let path = old.log_path().to_owned();
        let aborted = old.txn_index().entries().to_vec();
        std::fs::rename(cleaned, &path).map_err(LogError::io(&path))?;
        let mut seg = Segment::open(&self.dir, base, self.config.index_interval_bytes, now_ms)?;
        let batch_bytes_max = (self.config.max_message_bytes as u64).max(self.config.segment_bytes);
        let report = seg.recover(batch_bytes_max)?;
        if report.truncated_bytes > 0 {
            tracing::error!(dir = %self.dir.display(), base, ?report, "cleaned segment failed its checks");
        }
        // The cleaner keeps markers and aborted data: the aborted transactions stay as they were.
        for a in aborted {
            seg.add_aborted_txn(a)?;
        }
        self.segments.insert(base, seg);
        Ok(true)
    }
    pub fn latest_epoch(&self) -> Option<i32> {
        self.epochs.latest_epoch()
    }
    pub fn epochs(&self) -> &LeaderEpochCache {
        &self.epochs
    }

    pub fn active_base_offset(&self) -> i64 {
        self.active().base_offset()
    }

    fn active(&self) -> &Segment {
        self.segments
            .values()
            .next_back()
            .expect("a log always has an active segment")
    }

    fn active_mut(&mut self) -> &mut Segment {
        self.segments
            .values_mut()
            .next_back()
            .expect("a log always has an active segment")
    }

    /// Validates `records` (one or more batches as a producer sent them), checks their
    /// producer ids, epochs and sequences as `origin` requires, assigns offsets and the leader
    /// epoch in place, and appends them to the active segment. A retried batch already in the
    /// log is not written again: the answer carries the original's offsets, marked
    /// `duplicate`.
    pub fn append_from(
        &mut self,
        origin: AppendOrigin,
        records: &mut [u8],
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo> {
        let max_bytes = self.config.max_message_bytes;
        let mut infos = validate_record_set(records, max_bytes)?;
        let mut rewritten = crate::validate::validate(records, &mut infos, &self.config, now_ms)?;
        let records: &mut [u8] = match rewritten.as_mut() {
            Some(set) => {
                // A topic codec changed the bytes: their batches are described again (and
                // the size limit applies to what is stored, as Kafka checks it after).
                infos = validate_record_set(set, max_bytes)?;
                set
            }
            None => records,
        };
        let log_append_time = self.config.timestamp_type == TimestampType::LogAppendTime;
        let base_offset = self.log_end_offset();
        let mut next = base_offset;
        let mut positions = Vec::with_capacity(infos.len());
        let mut producer_batches = Vec::new();
        for info in &infos {
            let mut batch = BatchMut::new(&mut records[info.position..info.position + info.size])
                .ok_or(LogError::InvalidBatch(
                strand_protocol::batch::BatchError::Empty,
            ))?;
            batch.set_base_offset(next);
            batch.set_partition_leader_epoch(leader_epoch);
            if log_append_time {
                batch.set_log_append_time(now_ms);
            }
            let last = next + i64::from(info.record_count) - 1;
            let max_timestamp = if log_append_time {
                now_ms
            } else {
                info.max_timestamp
            };
            positions.push(BatchPosition {
                position: info.position as u64,
                size: info.size as u64,
                base_offset: next,
                last_offset: last,
                max_timestamp,
            });
            if info.producer_id >= 0 {
                producer_batches.push(ProducerBatch {
                    producer_id: info.producer_id,
                    epoch: info.producer_epoch,
                    base_seq: info.base_sequence,
                    last_seq: producer_state::last_sequence(
                        info.base_sequence,
                        info.record_count - 1,
                    ),
                    first_offset: next,
                    last_offset: last,
                    max_timestamp,
                    transactional: info.transactional,
                    marker: None,
                });
            }
            next = last + 1;
        }
        if origin == AppendOrigin::Client {
            if let Some(dup) = producer_batches
                .iter()
                .find_map(|b| self.producers.find_duplicate(b))
            {
                return Ok(AppendInfo {
                    base_offset: dup.first_offset,
                    last_offset: dup.last_offset,
                    record_count: dup.last_offset - dup.first_offset + 1,
                    log_append_time_ms: if log_append_time { dup.timestamp } else { -1 },
                    log_start_offset: self.log_start_offset,
                    duplicate: true,
                });
            }
        }
        let update = self.producers.prepare(&producer_batches, origin)?;
        let incoming_max_timestamp = positions
            .iter()
            .map(|b| b.max_timestamp)
            .max()
            .unwrap_or(-1);
        self.maybe_roll(records.len() as u64, incoming_max_timestamp, now_ms)?;
        self.active_mut().append(records, &positions)?;
        if self.config.compact_policy && self.dirty_since_ms.is_none() {
            self.dirty_since_ms = Some(now_ms);
        }
        self.epochs.assign(leader_epoch, base_offset)?;
        self.producers.apply(update, next);
        Ok(AppendInfo {
            base_offset,
            last_offset: next - 1,
            record_count: next - base_offset,
            log_append_time_ms: if log_append_time { now_ms } else { -1 },
            log_start_offset: self.log_start_offset,
            duplicate: false,
        })
    }

    /// [`Self::append_from`] a producer (Produce).
    pub fn append(
        &mut self,
        records: &mut [u8],
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo> {
        self.append_from(AppendOrigin::Client, records, leader_epoch, now_ms)
    }

    fn maybe_roll(
        &mut self,
        incoming_bytes: u64,
        incoming_max_timestamp: i64,
        now_ms: i64,
    ) -> Result<()> {
        let active = self.active();
        let full = active.size() + incoming_bytes > self.config.segment_bytes;
        let old =
            active.time_waited_for_roll(now_ms, incoming_max_timestamp) > self.config.segment_ms;
        if active.is_empty() || !(full || old) {
            return Ok(());
        }
        self.roll(now_ms)
    }

    /// Closes the active segment and starts a new one at the log end offset.
    pub fn roll(&mut self, now_ms: i64) -> Result<()> {
        let next = self.log_end_offset();
        self.active_mut().persist_indexes()?;
        let seg = Segment::create(&self.dir, next, self.config.index_interval_bytes, now_ms)?;
        self.segments.insert(next, seg);
        // The state as of the new segment's base: a crash rebuilds from here (not fsynced
        // now; a torn snapshot fails its CRC and an older one is used).
        self.snapshot_producers(false)
    }

    /// Finds record data from `offset` on: at most `max_bytes` (but at least one whole batch
    /// when `min_one_batch`), and nothing at or beyond `max_offset` (the high watermark for
    /// consumers). `Ok(None)` means no data yet.
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        max_offset: i64,
        min_one_batch: bool,
    ) -> Result<Option<FileSlice>> {
        let end = self.log_end_offset();
        if offset < self.log_start_offset || offset > end {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start_offset: self.log_start_offset,
                log_end_offset: end,
            });
        }
        let max_offset = max_offset.min(end);
        if offset >= max_offset {
            return Ok(None);
        }
        let start_key = self
            .segments
            .range(..=offset)
            .next_back()
            .map_or(i64::MIN, |(k, _)| *k);
        for seg in self.segments.range(start_key..).map(|(_, s)| s) {
            if seg.base_offset() >= max_offset {
                break;
            }
            let Some(first) = seg.position_of(offset)? else {
                continue;
            };
            if first.base_offset >= max_offset {
                return Ok(None);
            }
            let end_position = if max_offset >= seg.next_offset() {
                seg.size()
            } else {
                seg.end_position_before(max_offset)?
            };
            let available = end_position.saturating_sub(first.position);
            let mut len = available.min(max_bytes as u64);
            if min_one_batch && len < first.size {
                len = first.size.min(available);
            }
            if let Some((bad, offset, reason)) =
                seg.verify_range(first.position, first.position + len)?
            {
                tracing::error!(dir = %self.dir.display(), offset, position = bad, %reason, "corrupt batch in segment; not serving it");
                if bad <= first.position {
                    return Err(LogError::Corrupt {
                        what: "batch",
                        path: seg.log_path().to_owned(),
                        position: bad,
                        reason: format!("offset {offset}: {reason}"),
                    });
                }
                len = bad - first.position;
            }
            if len == 0 {
                return Ok(None);
            }
            let end_offset_bound = if first.position + len >= end_position {
                max_offset.min(seg.next_offset())
            } else {
                seg.offset_bound_after(first.position + len)
            };
            return Ok(Some(FileSlice {
                file: seg.file().clone(),
                position: first.position,
                len: len as usize,
                end_offset_bound,
            }));
        }
        Ok(None)
    }

    /// Moves the log start offset up to `offset` (from a checkpoint, DeleteRecords or
    /// retention), never past the log end, and drops segments wholly below it.
    pub fn set_log_start_offset(&mut self, offset: i64, now_ms: i64) -> Result<RetentionOutcome> {
        let offset = offset.min(self.log_end_offset());
        if offset > self.log_start_offset {
            self.log_start_offset = offset;
            self.producers.on_log_start_offset(offset);
        }
        let mut out = RetentionOutcome::default();
        while self.segments.len() > 1 {
            let Some(first) = self.segments.values().next() else {
                break;
            };
            // A segment compaction emptied says nothing about the log start: keep it.
            if first.is_empty() || first.next_offset() > self.log_start_offset {
                break;
            }
            self.remove_oldest(now_ms, &mut out, "log start")?;
        }
        Ok(out)
    }

    /// DeleteRecords: makes everything below `offset` unreadable (-1: the high watermark).
    /// Returns the new low watermark (log start offset).
    pub fn delete_records(&mut self, offset: i64, now_ms: i64) -> Result<i64> {
        let target = if offset == -1 {
            self.high_watermark
        } else {
            offset
        };
        if target < 0 || target > self.high_watermark {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start_offset: self.log_start_offset,
                log_end_offset: self.high_watermark,
            });
        }
        self.set_log_start_offset(target, now_ms)?;
        Ok(self.log_start_offset)
    }

    /// Deletes closed segments past `retention.ms` (by their largest timestamp) or beyond
    /// `retention.bytes`, oldest first. The active segment is never deleted here.
    pub fn apply_retention(&mut self, now_ms: i64) -> Result<RetentionOutcome> {
        let mut out = self.set_log_start_offset(self.log_start_offset, now_ms)?;
        if !self.config.delete_policy {
            return Ok(out);
        }
        while self.segments.len() > 1 {
            let Some(first) = self.segments.values().next() else {
                break;
            };
            let by_time = self.config.retention_ms >= 0 && {
                // Without record timestamps, the file's age stands in (as in Kafka).
                let newest = if first.max_timestamp() >= 0 {
                    first.max_timestamp()
                } else {
                    std::fs::metadata(first.log_path())
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                        .map_or(now_ms, |d| d.as_millis() as i64)
                };
                now_ms - newest > self.config.retention_ms
            };
            let by_size = self.config.retention_bytes >= 0
                && self.size_bytes().saturating_sub(first.size())
                    >= self.config.retention_bytes as u64;
            let reason = match (by_time, by_size) {
                (true, _) => "time",
                (false, true) => "size",
                (false, false) => break,
            };
            self.remove_oldest(now_ms, &mut out, reason)?;
        }
        Ok(out)
    }

    fn remove_oldest(
        &mut self,
        now_ms: i64,
        out: &mut RetentionOutcome,
        reason: &'static str,
    ) -> Result<()> {
        let Some((&base, _)) = self.segments.iter().next() else {
            return Ok(());
        };
        let Some(seg) = self.segments.remove(&base) else {
            return Ok(());
        };
        let next_base = self
            .segments
            .keys()
            .next()
            .copied()
            .unwrap_or_else(|| seg.next_offset());
        self.log_start_offset = self.log_start_offset.max(next_base);
        self.high_watermark = self.high_watermark.max(self.log_start_offset);
        self.recovery_point = self.recovery_point.max(self.log_start_offset);
        out.segments += 1;
        out.bytes += seg.size();
        out.reasons.push(reason);
        self.producers.on_log_start_offset(self.log_start_offset);
        let due = now_ms.saturating_add(self.config.file_delete_delay_ms);
        for path in seg.rename_to_deleted()? {
            self.pending_deletes.push((path, due));
        }
        // Snapshots of the state before the new start describe data that is gone.
        for (offset, path) in producer_state::list_snapshots(&self.dir)? {
            if offset < self.log_start_offset {
                let _ = std::fs::remove_file(path);
            }
        }
        tracing::info!(dir = %self.dir.display(), base, reason, log_start_offset = self.log_start_offset, "deleted segment");
        Ok(())
    }

    /// Removes the files of deleted segments whose delay is over.
    pub fn purge_deleted(&mut self, now_ms: i64) {
        self.pending_deletes.retain(|(path, due)| {
            if *due > now_ms {
                return true;
            }
            if let Err(e) = std::fs::remove_file(path) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(path = %path.display(), error = %e, "cannot remove deleted segment file");
                }
            }
            false
        });
    }

    /// The segment files holding data not yet fsynced, and the offset durable once they are.
    pub fn sync_target(&self) -> Option<SyncTarget> {
        let end = self.log_end_offset();
        if end <= self.recovery_point {
            return None;
        }
        let files = self
            .segments
            .values()
            .filter(|s| {
                s.next_offset() > self.recovery_point || s.base_offset() >= self.recovery_point
            })
            .flat_map(|s| std::iter::once(s.file().clone()).chain(s.txn_index().file().cloned()))
            .collect();
        Some(SyncTarget {
            files,
            end_offset: end,
        })
    }

    /// Records that everything below `offset` is on stable storage.
    pub fn mark_flushed(&mut self, offset: i64) {
        self.recovery_point = self.recovery_point.max(offset.min(self.log_end_offset()));
    }

    /// Fsyncs everything and writes the indexes (shutdown, tests).
    pub fn flush(&mut self) -> Result<()> {
        if let Some(t) = self.sync_target() {
            for f in &t.files {
                f.sync_data().map_err(LogError::io(&self.dir))?;
            }
            self.mark_flushed(t.end_offset);
        }
        for s in self.segments.values_mut() {
            s.persist_indexes()?;
        }
        self.snapshot_producers(true)
    }

    /// The first offset whose record timestamp is at least `timestamp`, with that timestamp.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(i64, i64)>> {
        for seg in self.segments.values() {
            let Some(b) = seg.find_by_timestamp(timestamp)? else {
                continue;
            };
            if b.last_offset < self.log_start_offset {
                continue;
            }
            let bytes = seg.read_at(b.position, b.size as usize)?;
            let found = self.record_in_batch(&bytes, b, |records| {
                records.iter().find(|(_, ts)| *ts >= timestamp).copied()
            });
            return Ok(Some(found.unwrap_or((
                b.base_offset.max(self.log_start_offset),
                b.max_timestamp,
            ))));
        }
        Ok(None)
    }

    /// The record with the largest timestamp (the first one, if several share it).
    /// ListOffsets v0's answer (Kafka's `legacyFetchOffsetsBefore`): up to `max` segment start
    /// offsets, newest first, of segments last modified at or before `timestamp` (-1: from the
    /// log end, -2: the log start only), the log end offset counting as a segment modified
    /// now. Each segment's time is its file's modification time, as Kafka reads it.
    pub fn legacy_offsets_before(&self, timestamp: i64, max: usize, now_ms: i64) -> Vec<i64> {
        let mut points: Vec<(i64, i64)> = self
            .segments
            .values()
            .map(|seg| {
                let modified = std::fs::metadata(seg.log_path())
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_millis() as i64);
                (seg.base_offset().max(self.log_start_offset), modified)
            })
            .collect();
        if !self.active().is_empty() {
            points.push((self.log_end_offset(), now_ms));
        }
        let start = match timestamp {
            -1 => points.len().checked_sub(1),
            -2 => (!points.is_empty()).then_some(0),
            ts => points.iter().rposition(|(_, modified)| *modified <= ts),
        };
        let Some(start) = start else {
            return Vec::new();
        };
        let mut offsets: Vec<i64> = points[..=start]
            .iter()
            .rev()
            .take(max)
            .map(|(o, _)| *o)
            .collect();
        offsets.sort_unstable_by(|a, b| b.cmp(a));
        offsets
    }

    pub fn max_timestamp(&self) -> Result<Option<(i64, i64)>> {
        let Some(seg) = self
            .segments
            .values()
            .filter(|s| !s.is_empty())
            .max_by_key(|s| s.max_timestamp())
        else {
            return Ok(None);
        };
        let target = seg.max_timestamp();
        let Some(b) = seg.find_by_timestamp(target)? else {
            return Ok(None);
        };
        let bytes = seg.read_at(b.position, b.size as usize)?;
        let found = self.record_in_batch(&bytes, b, |records| {
            records.iter().find(|(_, ts)| *ts == target).copied()
        });
        Ok(Some(found.unwrap_or((b.last_offset, target))))
    }

    /// Decodes one batch (inflating it if compressed) to look at its records' timestamps.
    fn record_in_batch(
        &self,
        bytes: &[u8],
        b: BatchPosition,
        pick: impl Fn(&[(i64, i64)]) -> Option<(i64, i64)>,
    ) -> Option<(i64, i64)> {
        let header = BatchHeader::new(bytes)?;
        if header.is_log_append_time() {
            return pick(&[(b.base_offset, b.max_timestamp)]);
        }
        let mut buf = Bytes::copy_from_slice(bytes);
        match RecordBatchDecoder::decode(&mut buf) {
            Ok(set) => {
                let records: Vec<(i64, i64)> = set
                    .records
                    .iter()
                    .filter(|r| r.offset >= self.log_start_offset)
                    .map(|r| (r.offset, r.timestamp))
                    .collect();
                pick(&records)
            }
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), offset = b.base_offset, error = %e, "cannot decode batch");
                None
            }
        }
    }

    /// Writes the indexes; called at shutdown after [`PartitionLog::flush`].
    pub fn close(mut self) -> Result<()> {
        self.flush()
    }

    /// Deletes the log: renames its directory out of the way at once (so a new partition of the
    /// same name can be created), then removes it.
    pub fn delete(self) -> Result<()> {
        let name = self
            .dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let doomed = self
            .dir
            .with_file_name(format!("{name}.{}-delete", uuid::Uuid::new_v4().simple()));
        std::fs::rename(&self.dir, &doomed).map_err(LogError::io(&self.dir))?;
        drop(self);
        std::fs::remove_dir_all(&doomed).map_err(LogError::io(&doomed))
    }
}
