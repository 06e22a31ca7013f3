//! Producer state: per producer id, what a partition's log knows of the idempotent and
//! transactional producers that wrote to it, as Kafka keeps it.
//!
//! For each producer id: its epoch, the sequence and offset ranges of its last five batches
//! (to recognise a retried batch), the coordinator epoch of its last transaction marker, and
//! the first offset of its open transaction, if any. Open transactions give the last stable
//! offset (LSO): consumers reading committed data stop before the first offset of the oldest
//! transaction not yet decided.
//!
//! Checks on a batch, in Kafka's order (`ProducerAppendInfo`):
//!
//! | check | origins | error |
//! |---|---|---|
//! | same epoch and exactly the sequence range of a retained batch | client | none: a duplicate, answered with its original offsets |
//! | epoch older than the stored one | client, coordinator | INVALID_PRODUCER_EPOCH |
//! | new epoch of a known producer not starting at sequence 0 | client | OUT_OF_ORDER_SEQUENCE_NUMBER |
//! | same epoch, sequence not last + 1 (wrapping at `i32::MAX`) | client | OUT_OF_ORDER_SEQUENCE_NUMBER |
//! | plain batch while the producer has an open transaction | all | INVALID_TXN_STATE |
//! | marker with an older coordinator epoch | coordinator | TRANSACTION_COORDINATOR_FENCED |
//!
//! A producer id with no state (new, expired, or whose data retention deleted) is accepted
//! with any sequence, as in Kafka since KIP-360.
//!
//! Snapshots: `<offset>.snapshot` files in the partition directory, in Kafka's format
//! (`ProducerSnapshot` v1), hold the state of every producer as of that offset. They are
//! written when a segment rolls (at the new segment's base offset) and at a clean shutdown (at
//! the log end); after a crash the state is the latest snapshot plus a scan of the batches
//! after it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};

use crate::error::{LogError, Result};

/// Retried batches are recognised among a producer's last this many.
pub const BATCHES_RETAINED: usize = 5;

/// Who is appending: the checks differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOrigin {
    /// A producer, through Produce: every check.
    Client,
    /// A coordinator (transaction markers, transactional offset commits): no sequence checks.
    Coordinator,
    /// Data the log already holds (recovery, follower fetch): nothing refused, oddities logged.
    Replication,
}

/// One retained batch of a producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMeta {
    pub first_seq: i32,
    pub last_seq: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    pub timestamp: i64,
}

/// What the log knows of one producer id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerEntry {
    pub producer_id: i64,
    /// -1: nothing known.
    pub epoch: i16,
    /// The coordinator epoch of the last marker, -1 if none.
    pub coordinator_epoch: i32,
    /// The max timestamp of its last batch (or the marker's time): its last activity.
    pub last_timestamp: i64,
    /// The first offset of its open transaction in this partition.
    pub current_txn_first_offset: Option<i64>,
    /// Its last batches, oldest first.
    pub batches: VecDeque<BatchMeta>,
    /// Markers seen for it since the broker started (never persisted): a transactional
    /// produce checked against the coordinator is refused if a marker came in between.
    pub markers_seen: u64,
}

impl ProducerEntry {
    fn empty(producer_id: i64) -> Self {
        Self {
            producer_id,
            epoch: -1,
            coordinator_epoch: -1,
            last_timestamp: -1,
            current_txn_first_offset: None,
            batches: VecDeque::new(),
            markers_seen: 0,
        }
    }

    /// The sequence of its last batch, -1 if none is retained.
    pub fn last_seq(&self) -> i32 {
        self.batches.back().map_or(-1, |b| b.last_seq)
    }

    /// The offset of its last batch's last record, -1 if none is retained.
    pub fn last_offset(&self) -> i64 {
        self.batches.back().map_or(-1, |b| b.last_offset)
    }

    fn find_duplicate(&self, epoch: i16, first_seq: i32, last_seq: i32) -> Option<BatchMeta> {
        if epoch != self.epoch {
            return None;
        }
        self.batches
            .iter()
            .find(|b| b.first_seq == first_seq && b.last_seq == last_seq)
            .copied()
    }

    /// A different epoch forgets the retained batches: sequences start over.
    fn set_epoch(&mut self, epoch: i16) {
        if epoch != self.epoch {
            self.batches.clear();
            self.epoch = epoch;
        }
    }

    fn add_batch(&mut self, epoch: i16, b: BatchMeta) {
        self.set_epoch(epoch);
        if self.batches.len() == BATCHES_RETAINED {
            self.batches.pop_front();
        }
        self.batches.push_back(b);
        self.last_timestamp = b.timestamp;
    }
}

/// A transaction marker's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    pub commit: bool,
    pub coordinator_epoch: i32,
}

/// The producer fields of one batch, as the log sees them after offsets are assigned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerBatch {
    pub producer_id: i64,
    pub epoch: i16,
    pub base_seq: i32,
    pub last_seq: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
    pub transactional: bool,
    /// `Some` for a control batch holding a transaction marker.
    pub marker: Option<Marker>,
}

/// A transaction a marker ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompletedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    pub marker_offset: i64,
    pub aborted: bool,
}

/// The changes one append makes, checked but not yet applied.
#[derive(Debug, Default)]
pub struct ProducerUpdate {
    entries: HashMap<i64, ProducerEntry>,
    completed: Vec<CompletedTxn>,
}

impl ProducerUpdate {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The transactions its markers end.
    pub fn completed(&self) -> &[CompletedTxn] {
        &self.completed
    }
}

/// The last sequence of a batch of `count` records starting at `base`, wrapping at `i32::MAX`.
pub fn last_sequence(base: i32, last_offset_delta: i32) -> i32 {
    if base < 0 {
        return -1;
    }
    if base > i32::MAX - last_offset_delta {
        last_offset_delta - (i32::MAX - base) - 1
    } else {
        base + last_offset_delta
    }
}

fn in_sequence(last: i32, next: i32) -> bool {
    i64::from(next) == i64::from(last) + 1 || (next == 0 && last == i32::MAX)
}

/// Every producer of one partition, and its open transactions.
#[derive(Debug, Default)]
pub struct ProducerStateManager {
    producers: HashMap<i64, ProducerEntry>,
    /// Open transactions: first offset -> producer id.
    ongoing: BTreeMap<i64, i64>,
    /// Transactions whose marker is written but not yet below the high watermark: first
    /// offset -> marker offset. They still hold the last stable offset back.
    unreplicated: BTreeMap<i64, i64>,
    /// The state covers every batch below this offset.
    map_end_offset: i64,
}

impl ProducerStateManager {
    pub fn new(map_end_offset: i64) -> Self {
        Self {
            map_end_offset,
            ..Self::default()
        }
    }

    pub fn map_end_offset(&self) -> i64 {
        self.map_end_offset
    }

    pub fn entry(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }

    /// Every producer, by id.
    pub fn entries(&self) -> impl Iterator<Item = &ProducerEntry> {
        self.producers.values()
    }

    pub fn has_ongoing_txn(&self, producer_id: i64) -> bool {
        self.producers
            .get(&producer_id)
            .is_some_and(|e| e.current_txn_first_offset.is_some())
    }

    /// The first offset of the oldest transaction not yet decided (or decided with a marker
    /// not yet below the high watermark).
    pub fn first_unstable_offset(&self) -> Option<i64> {
        let a = self.ongoing.keys().next().copied();
        let b = self.unreplicated.keys().next().copied();
        match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// A retained batch with exactly this batch's epoch and sequence range: a retry.
    pub fn find_duplicate(&self, b: &ProducerBatch) -> Option<BatchMeta> {
        if b.producer_id < 0 || b.marker.is_some() {
            return None;
        }
        self.producers
            .get(&b.producer_id)?
            .find_duplicate(b.epoch, b.base_seq, b.last_seq)
    }

    /// Checks `batches` (in log order) as appended by `origin`; nothing changes until
    /// [`Self::apply`].
    pub fn prepare(
        &self,
        batches: &[ProducerBatch],
        origin: AppendOrigin,
    ) -> Result<ProducerUpdate> {
        let mut update = ProducerUpdate::default();
        for b in batches.iter().filter(|b| b.producer_id >= 0) {
            let entry = match update.entries.remove(&b.producer_id) {
                Some(e) => e,
                None => self
                    .producers
                    .get(&b.producer_id)
                    .cloned()
                    .unwrap_or_else(|| ProducerEntry::empty(b.producer_id)),
            };
            let entry = match b.marker {
                Some(m) => Self::check_marker(entry, b, m, origin, &mut update.completed)?,
                None => Self::check_data(entry, b, origin)?,
            };
            update.entries.insert(b.producer_id, entry);
        }
        Ok(update)
    }

    fn check_epoch(entry: &ProducerEntry, b: &ProducerBatch, origin: AppendOrigin) -> Result<()> {
        if b.epoch < entry.epoch {
            if origin == AppendOrigin::Replication {
                tracing::warn!(
                    producer_id = b.producer_id,
                    epoch = b.epoch,
                    current = entry.epoch,
                    offset = b.first_offset,
                    "batch with an older producer epoch in the log"
                );
            } else {
                return Err(LogError::InvalidProducerEpoch {
                    producer_id: b.producer_id,
                    epoch: b.epoch,
                    current: entry.epoch,
                });
            }
        }
        Ok(())
    }

    fn check_data(
        mut entry: ProducerEntry,
        b: &ProducerBatch,
        origin: AppendOrigin,
    ) -> Result<ProducerEntry> {
        Self::check_epoch(&entry, b, origin)?;
        if origin == AppendOrigin::Client && entry.epoch != -1 {
            let gap = |reason: String| LogError::OutOfOrderSequence {
                producer_id: b.producer_id,
                reason,
            };
            if b.epoch != entry.epoch {
                if b.base_seq != 0 {
                    return Err(gap(format!(
                        "sequence {} for new epoch {} (current epoch {}), expected 0",
                        b.base_seq, b.epoch, entry.epoch
                    )));
                }
            } else if !in_sequence(entry.last_seq(), b.base_seq) {
                return Err(gap(format!(
                    "sequence {} at epoch {}, expected {}",
                    b.base_seq,
                    b.epoch,
                    i64::from(entry.last_seq()) + 1
                )));
            }
        }
        entry.add_batch(
            b.epoch,
            BatchMeta {
                first_seq: b.base_seq,
                last_seq: b.last_seq,
                first_offset: b.first_offset,
                last_offset: b.last_offset,
                timestamp: b.max_timestamp,
            },
        );
        match (entry.current_txn_first_offset, b.transactional) {
            (Some(_), false) => {
                return Err(LogError::InvalidTxnState {
                    producer_id: b.producer_id,
                    reason: "a non-transactional batch while a transaction is open".into(),
                })
            }
            (None, true) => entry.current_txn_first_offset = Some(b.first_offset),
            _ => {}
        }
        Ok(entry)
    }

    fn check_marker(
        mut entry: ProducerEntry,
        b: &ProducerBatch,
        m: Marker,
        origin: AppendOrigin,
        completed: &mut Vec<CompletedTxn>,
    ) -> Result<ProducerEntry> {
        Self::check_epoch(&entry, b, origin)?;
        if entry.coordinator_epoch > m.coordinator_epoch {
            if origin == AppendOrigin::Replication {
                tracing::info!(
                    producer_id = b.producer_id,
                    "marker with an older coordinator epoch in the log"
                );
            } else {
                return Err(LogError::CoordinatorFenced {
                    producer_id: b.producer_id,
                    epoch: m.coordinator_epoch,
                    current: entry.coordinator_epoch,
                });
            }
        }
        if let Some(first_offset) = entry.current_txn_first_offset.take() {
            completed.push(CompletedTxn {
                producer_id: b.producer_id,
                first_offset,
                marker_offset: b.first_offset,
                aborted: !m.commit,
            });
        }
        entry.set_epoch(b.epoch);
        entry.coordinator_epoch = m.coordinator_epoch;
        entry.last_timestamp = b.max_timestamp;
        entry.markers_seen += 1;
        Ok(entry)
    }

    /// The last stable offset to record with an aborted transaction in the transaction
    /// index: where the oldest other open transaction starts, else just past the marker.
    pub fn last_stable_offset_after(&self, txn: &CompletedTxn) -> i64 {
        self.ongoing
            .iter()
            .find(|(_, pid)| **pid != txn.producer_id)
            .map_or(txn.marker_offset + 1, |(first, _)| *first)
    }

    /// Applies a checked update; every batch below `end_offset` is now covered. Returns the
    /// transactions its markers completed.
    pub fn apply(&mut self, update: ProducerUpdate, end_offset: i64) -> Vec<CompletedTxn> {
        for (pid, entry) in update.entries {
            if let Some(first) = entry.current_txn_first_offset {
                self.ongoing.insert(first, pid);
            }
            self.producers.insert(pid, entry);
        }
        for txn in &update.completed {
            self.ongoing.remove(&txn.first_offset);
            self.unreplicated
                .insert(txn.first_offset, txn.marker_offset);
        }
        self.map_end_offset = self.map_end_offset.max(end_offset);
        update.completed
    }

    /// Decided transactions whose marker is below `hw` no longer hold the LSO back.
    pub fn on_high_watermark(&mut self, hw: i64) {
        self.unreplicated.retain(|_, marker| *marker >= hw);
    }

    /// The log now starts at `offset`: decided transactions below it are forgotten.
    pub fn on_log_start_offset(&mut self, offset: i64) {
        self.unreplicated.retain(|_, marker| *marker >= offset);
        self.map_end_offset = self.map_end_offset.max(offset);
    }

    /// Forgets producers idle for `expiration_ms` (by their last batch's timestamp) that have
    /// no open transaction. Returns how many went.
    pub fn expire(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers.retain(|_, e| {
            e.current_txn_first_offset.is_some()
                || now_ms.saturating_sub(e.last_timestamp) < expiration_ms
        });
        before - self.producers.len()
    }

    /// Starts over from a snapshot's entries, covering everything below `offset`.
    pub fn load(&mut self, entries: Vec<ProducerEntry>, offset: i64) {
        self.producers.clear();
        self.ongoing.clear();
        self.unreplicated.clear();
        for e in entries {
            if let Some(first) = e.current_txn_first_offset {
                self.ongoing.insert(first, e.producer_id);
            }
            self.producers.insert(e.producer_id, e);
        }
        self.map_end_offset = offset;
    }

    /// The snapshot of the current state, in Kafka's `ProducerSnapshot` v1 format:
    /// `version i16 = 1, crc u32 (CRC32C of everything after it), count i32`, then per
    /// producer `id i64, epoch i16, last sequence i32, last offset i64, offset delta i32,
    /// timestamp i64, coordinator epoch i32, current transaction first offset i64`.
    pub fn snapshot_bytes(&self) -> Vec<u8> {
        let mut entries: Vec<&ProducerEntry> = self.producers.values().collect();
        entries.sort_by_key(|e| e.producer_id);
        let mut b =
            Vec::with_capacity(SNAPSHOT_HEADER_BYTES + entries.len() * SNAPSHOT_ENTRY_BYTES);
        b.extend_from_slice(&SNAPSHOT_VERSION.to_be_bytes());
        b.extend_from_slice(&[0u8; 4]);
        b.extend_from_slice(&(entries.len() as i32).to_be_bytes());
        for e in entries {
            let last = e.batches.back();
            b.extend_from_slice(&e.producer_id.to_be_bytes());
            b.extend_from_slice(&e.epoch.to_be_bytes());
            b.extend_from_slice(&last.map_or(-1, |l| l.last_seq).to_be_bytes());
            b.extend_from_slice(&last.map_or(-1, |l| l.last_offset).to_be_bytes());
            let delta = last.map_or(0, |l| (l.last_offset - l.first_offset) as i32);
            b.extend_from_slice(&delta.to_be_bytes());
            b.extend_from_slice(&e.last_timestamp.to_be_bytes());
            b.extend_from_slice(&e.coordinator_epoch.to_be_bytes());
            b.extend_from_slice(&e.current_txn_first_offset.unwrap_or(-1).to_be_bytes());
        }
        let crc = crc32c::crc32c(&b[CRC_END..]);
        b[2..CRC_END].copy_from_slice(&crc.to_be_bytes());
        b
    }
}

const SNAPSHOT_VERSION: i16 = 1;
const CRC_END: usize = 6;
const SNAPSHOT_HEADER_BYTES: usize = 10;
const SNAPSHOT_ENTRY_BYTES: usize = 46;

/// Reads a snapshot written by [`ProducerStateManager::snapshot_bytes`] (or by Kafka).
pub fn parse_snapshot(bytes: &[u8]) -> std::result::Result<Vec<ProducerEntry>, String> {
    if bytes.len() < SNAPSHOT_HEADER_BYTES {
        return Err(format!("{} bytes, shorter than the header", bytes.len()));
    }
    let version = i16::from_be_bytes([bytes[0], bytes[1]]);
    if version != SNAPSHOT_VERSION {
        return Err(format!("version {version}"));
    }
    let stored = u32::from_be_bytes([bytes[2], bytes[3], bytes[4], bytes[5]]);
    let computed = crc32c::crc32c(&bytes[CRC_END..]);
    if stored != computed {
        return Err(format!("CRC {stored:#010x}, computed {computed:#010x}"));
    }
    let count = i32::from_be_bytes([bytes[6], bytes[7], bytes[8], bytes[9]]);
    let body = &bytes[SNAPSHOT_HEADER_BYTES..];
    if count < 0 || body.len() != count as usize * SNAPSHOT_ENTRY_BYTES {
        return Err(format!("{count} entries in {} bytes", body.len()));
    }
    let i16_at = |b: &[u8], at: usize| i16::from_be_bytes([b[at], b[at + 1]]);
    let i32_at = |b: &[u8], at: usize| i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    let i64_at = |b: &[u8], at: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[at..at + 8]);
        i64::from_be_bytes(a)
    };
    Ok(body
        .chunks_exact(SNAPSHOT_ENTRY_BYTES)
        .map(|e| {
            let last_seq = i32_at(e, 10);
            let last_offset = i64_at(e, 14);
            let delta = i32_at(e, 22);
            let timestamp = i64_at(e, 26);
            let txn = i64_at(e, 38);
            let mut batches = VecDeque::new();
            if last_offset >= 0 {
                batches.push_back(BatchMeta {
                    first_seq: first_sequence(last_seq, delta),
                    last_seq,
                    first_offset: last_offset - i64::from(delta),
                    last_offset,
                    timestamp,
                });
            }
            ProducerEntry {
                producer_id: i64_at(e, 0),
                epoch: i16_at(e, 8),
                coordinator_epoch: i32_at(e, 34),
                last_timestamp: timestamp,
                current_txn_first_offset: (txn >= 0).then_some(txn),
                batches,
                markers_seen: 0,
            }
        })
        .collect())
}

/// The first sequence of a batch whose last is `last`, `delta` records before it.
fn first_sequence(last: i32, delta: i32) -> i32 {
    if last < 0 {
        return -1;
    }
    if last < delta {
        i32::MAX - (delta - last) + 1
    } else {
        last - delta
    }
}

/// The path of the snapshot at `offset` in `dir`.
pub fn snapshot_path(dir: &Path, offset: i64) -> PathBuf {
    dir.join(format!("{}.snapshot", crate::segment::file_stem(offset)))
}

/// The snapshot files in `dir`, by offset.
pub fn list_snapshots(dir: &Path) -> Result<BTreeMap<i64, PathBuf>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).map_err(LogError::io(dir))? {
        let entry = entry.map_err(LogError::io(dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(offset) = name.strip_suffix(".snapshot").and_then(|s| s.parse().ok()) {
            out.insert(offset, entry.path());
        }
    }
    Ok(out)
}

/// Writes the snapshot of `state` at `offset` (to a temporary file renamed into place, so a
/// crash never leaves half a snapshot under the real name); fsyncs it when `sync`.
pub fn write_snapshot(
    dir: &Path,
    state: &ProducerStateManager,
    offset: i64,
    sync: bool,
) -> Result<()> {
    use std::io::Write;
    let path = snapshot_path(dir, offset);
    let tmp = path.with_extension("snapshot.tmp");
    let mut f = std::fs::File::create(&tmp).map_err(LogError::io(&tmp))?;
    f.write_all(&state.snapshot_bytes())
        .map_err(LogError::io(&tmp))?;
    if sync {
        f.sync_data().map_err(LogError::io(&tmp))?;
    }
    std::fs::rename(&tmp, &path).map_err(LogError::io(&path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pid: i64, epoch: i16, seq: i32, first: i64, count: i32) -> ProducerBatch {
        ProducerBatch {
            producer_id: pid,
            epoch,
            base_seq: seq,
            last_seq: last_sequence(seq, count - 1),
            first_offset: first,
            last_offset: first + i64::from(count) - 1,
            max_timestamp: 1_000,
            transactional: false,
            marker: None,
        }
    }

    fn append(
        s: &mut ProducerStateManager,
        b: ProducerBatch,
        origin: AppendOrigin,
    ) -> Result<Vec<CompletedTxn>> {
        let update = s.prepare(&[b], origin)?;
        Ok(s.apply(update, b.last_offset + 1))
    }

    #[test]
    fn sequences_must_follow_on_within_an_epoch() {
        let mut s = ProducerStateManager::new(0);
        // A new producer may start anywhere.
        append(&mut s, data(7, 0, 5, 0, 3), AppendOrigin::Client).unwrap();
        append(&mut s, data(7, 0, 8, 3, 2), AppendOrigin::Client).unwrap();
        let gap = s
            .prepare(&[data(7, 0, 11, 5, 1)], AppendOrigin::Client)
            .unwrap_err();
        assert!(matches!(gap, LogError::OutOfOrderSequence { .. }), "{gap}");
        // A new epoch starts at 0.
        assert!(s
            .prepare(&[data(7, 1, 3, 5, 1)], AppendOrigin::Client)
            .is_err());
        append(&mut s, data(7, 1, 0, 5, 1), AppendOrigin::Client).unwrap();
        // An older epoch is fenced.
        let old = s
            .prepare(&[data(7, 0, 10, 6, 1)], AppendOrigin::Client)
            .unwrap_err();
        assert!(
            matches!(old, LogError::InvalidProducerEpoch { current: 1, .. }),
            "{old}"
        );
        // Coordinators are not checked for sequences, only epochs.
        append(&mut s, data(7, 1, 40, 6, 1), AppendOrigin::Coordinator).unwrap();
    }

    #[test]
    fn sequences_wrap_at_i32_max() {
        assert_eq!(last_sequence(i32::MAX - 1, 3), 1);
        assert_eq!(first_sequence(1, 3), i32::MAX - 1);
        let mut s = ProducerStateManager::new(0);
        append(&mut s, data(1, 0, i32::MAX - 1, 0, 2), AppendOrigin::Client).unwrap();
        append(&mut s, data(1, 0, 0, 2, 1), AppendOrigin::Client).unwrap();
    }

    #[test]
    fn a_retry_of_one_of_the_last_five_batches_is_a_duplicate() {
        let mut s = ProducerStateManager::new(0);
        for i in 0..7 {
            append(
                &mut s,
                data(3, 2, i * 10, i64::from(i) * 10, 10),
                AppendOrigin::Client,
            )
            .unwrap();
        }
        let dup = s.find_duplicate(&data(3, 2, 30, 999, 10)).unwrap();
        assert_eq!((dup.first_offset, dup.last_offset), (30, 39));
        assert!(
            s.find_duplicate(&data(3, 2, 10, 999, 10)).is_none(),
            "older than five"
        );
        assert!(
            s.find_duplicate(&data(3, 2, 30, 999, 5)).is_none(),
            "partial overlap"
        );
        assert!(
            s.find_duplicate(&data(3, 3, 30, 999, 10)).is_none(),
            "other epoch"
        );
    }

    #[test]
    fn transactions_hold_the_last_stable_offset_until_their_marker() {
        let mut s = ProducerStateManager::new(0);
        let txn = |pid, first| ProducerBatch {
            transactional: true,
            ..data(pid, 0, 0, first, 1)
        };
        append(&mut s, txn(1, 0), AppendOrigin::Client).unwrap();
        append(&mut s, txn(2, 1), AppendOrigin::Client).unwrap();
        assert_eq!(s.first_unstable_offset(), Some(0));
        let plain = s
            .prepare(&[data(1, 0, 1, 2, 1)], AppendOrigin::Client)
            .unwrap_err();
        assert!(matches!(plain, LogError::InvalidTxnState { .. }), "{plain}");
        let marker = |pid, offset, commit, coordinator_epoch| ProducerBatch {
            transactional: true,
            marker: Some(Marker {
                commit,
                coordinator_epoch,
            }),
            base_seq: -1,
            last_seq: -1,
            ..data(pid, 0, -1, offset, 1)
        };
        let done = append(&mut s, marker(1, 2, false, 5), AppendOrigin::Coordinator).unwrap();
        assert_eq!(
            done,
            vec![CompletedTxn {
                producer_id: 1,
                first_offset: 0,
                marker_offset: 2,
                aborted: true
            }]
        );
        // The marker is not yet below the high watermark.
        assert_eq!(s.first_unstable_offset(), Some(0));
        s.on_high_watermark(3);
        assert_eq!(s.first_unstable_offset(), Some(1));
        // A marker from an older coordinator is fenced.
        let fenced = s
            .prepare(&[marker(1, 3, true, 4)], AppendOrigin::Coordinator)
            .unwrap_err();
        assert!(
            matches!(fenced, LogError::CoordinatorFenced { .. }),
            "{fenced}"
        );
    }

    #[test]
    fn snapshots_round_trip_in_kafkas_format() {
        let mut s = ProducerStateManager::new(0);
        append(&mut s, data(9, 4, 100, 0, 5), AppendOrigin::Client).unwrap();
        let bytes = s.snapshot_bytes();
        assert_eq!(bytes.len(), 10 + 46);
        let entries = parse_snapshot(&bytes).unwrap();
        assert_eq!(entries[0].epoch, 4);
        assert_eq!(
            entries[0].batches.back().copied(),
            s.entry(9).unwrap().batches.back().copied()
        );
        let mut bad = bytes.clone();
        bad[20] ^= 1;
        assert!(parse_snapshot(&bad).unwrap_err().contains("CRC"));
    }

    #[test]
    fn idle_producers_expire_unless_a_transaction_is_open() {
        let mut s = ProducerStateManager::new(0);
        append(&mut s, data(1, 0, 0, 0, 1), AppendOrigin::Client).unwrap();
        let open = ProducerBatch {
            transactional: true,
            ..data(2, 0, 0, 1, 1)
        };
        append(&mut s, open, AppendOrigin::Client).unwrap();
        assert_eq!(s.expire(1_000 + 86_400_000, 86_400_000), 1);
        assert!(s.entry(1).is_none() && s.entry(2).is_some());
    }
}
