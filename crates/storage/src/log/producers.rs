//! The log's side of idempotent and transactional producers: transaction markers, the last
//! stable offset, aborted transactions for committed reads, and the producer state's
//! snapshots and rebuild at open (see [`crate::producer_state`]).

use strand_protocol::batch::{
    end_txn_marker, read_end_txn_marker, BatchHeader, BatchMut, BATCH_HEADER_BYTES,
    MARKER_BATCH_BYTES,
};

use super::{AppendInfo, PartitionLog};
use crate::error::{LogError, Result};
use crate::producer_state::{
    self, AppendOrigin, CompletedTxn, Marker, ProducerBatch, ProducerEntry, ProducerStateManager,
};
use crate::segment::BatchPosition;
use crate::txn_index::AbortedTxn;

impl PartitionLog {
    /// Appends a transaction marker (a coordinator's COMMIT or ABORT for `producer_id`) and
    /// ends the producer's open transaction here; an aborted one goes into the transaction
    /// index.
    pub fn append_marker(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        marker: Marker,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo> {
        let offset = self.log_end_offset();
        let mut batch = end_txn_marker(
            producer_id,
            producer_epoch,
            marker.commit,
            marker.coordinator_epoch,
            now_ms,
        );
        let mut m = BatchMut::new(&mut batch).ok_or(LogError::InvalidBatch(
            strand_protocol::batch::BatchError::Empty,
        ))?;
        m.set_base_offset(offset);
        m.set_partition_leader_epoch(leader_epoch);
        let pb = ProducerBatch {
            producer_id,
            epoch: producer_epoch,
            base_seq: -1,
            last_seq: -1,
            first_offset: offset,
            last_offset: offset,
            max_timestamp: now_ms,
            transactional: true,
            marker: Some(marker),
        };
        let update = self.producers.prepare(&[pb], AppendOrigin::Coordinator)?;
        self.maybe_roll(MARKER_BATCH_BYTES as u64, now_ms, now_ms)?;
        let position = BatchPosition {
            position: 0,
            size: MARKER_BATCH_BYTES as u64,
            base_offset: offset,
            last_offset: offset,
            max_timestamp: now_ms,
        };
        self.active_mut().append(&batch, &[position])?;
        self.epochs.assign(leader_epoch, offset)?;
        let completed = self.complete_txns(update, offset + 1)?;
        tracing::debug!(dir = %self.dir.display(), producer_id, offset, ?completed, "transaction marker appended");
        Ok(AppendInfo {
            base_offset: offset,
            last_offset: offset,
            record_count: 1,
            log_append_time_ms: -1,
            log_start_offset: self.log_start_offset,
            duplicate: false,
        })
    }

    /// Applies a producer update whose markers end transactions; aborted transactions go
    /// into the active segment's transaction index with the last stable offset at that point.
    fn complete_txns(
        &mut self,
        update: producer_state::ProducerUpdate,
        end_offset: i64,
    ) -> Result<Vec<CompletedTxn>> {
        let aborted = self.aborted_by(&update);
        let completed = self.producers.apply(update, end_offset);
        for a in aborted {
            self.active_mut().add_aborted_txn(a)?;
        }
        self.producers.on_high_watermark(self.high_watermark);
        Ok(completed)
    }

    /// The transaction index entries of the aborts in `update`, with the last stable offset
    /// as it is before the update applies (Kafka's rule).
    fn aborted_by(&self, update: &producer_state::ProducerUpdate) -> Vec<AbortedTxn> {
        update
            .completed()
            .iter()
            .filter(|t| t.aborted)
            .map(|t| AbortedTxn {
                producer_id: t.producer_id,
                first_offset: t.first_offset,
                last_offset: t.marker_offset,
                last_stable_offset: self.producers.last_stable_offset_after(t),
            })
            .collect()
    }

    /// The last stable offset: committed reads stop here, before the oldest transaction not
    /// yet decided (never past the high watermark).
    pub fn last_stable_offset(&self) -> i64 {
        match self.producers.first_unstable_offset() {
            Some(first) => first.max(self.log_start_offset).min(self.high_watermark),
            None => self.high_watermark,
        }
    }

    /// Aborted transactions overlapping `[fetch_offset, upper_bound)`, for a committed read.
    pub fn aborted_transactions(&self, fetch_offset: i64, upper_bound: i64) -> Vec<AbortedTxn> {
        let start_key = self
            .segments
            .range(..=fetch_offset)
            .next_back()
            .map_or(i64::MIN, |(k, _)| *k);
        let mut out = Vec::new();
        for seg in self.segments.range(start_key..).map(|(_, s)| s) {
            if seg.txn_index().collect(fetch_offset, upper_bound, &mut out) {
                break;
            }
        }
        out
    }

    /// What the log knows of `producer_id`.
    pub fn producer(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.entry(producer_id)
    }

    /// Every producer the log knows (DescribeProducers).
    pub fn producers(&self) -> impl Iterator<Item = &ProducerEntry> {
        self.producers.entries()
    }

    /// Forgets producers idle past `producer.id.expiration.ms`.
    pub fn expire_producers(&mut self, now_ms: i64) -> usize {
        self.producers
            .expire(now_ms, self.config.producer_id_expiration_ms)
    }

    /// Writes a producer snapshot at the log end if the state moved since the last one.
    pub(super) fn snapshot_producers(&mut self, sync: bool) -> Result<()> {
        let offset = self.log_end_offset();
        if offset == self.last_snapshot_offset {
            return Ok(());
        }
        producer_state::write_snapshot(&self.dir, &self.producers, offset, sync)?;
        self.last_snapshot_offset = offset;
        Ok(())
    }

    /// Rebuilds the producer state at open: the newest valid snapshot at or before where it is
    /// needed from, then a scan of every batch after it. Transaction indexes of rescanned
    /// segments (from `first_recovered`) are rebuilt on the way.
    pub(super) fn load_producer_state(
        &mut self,
        clean: bool,
        first_recovered: Option<i64>,
        now_ms: i64,
    ) -> Result<()> {
        let end = self.log_end_offset();
        let mut snapshots = producer_state::list_snapshots(&self.dir)?;
        // Snapshots of data that is gone, or strays between segment bases (but the newest),
        // are removed, as Kafka does.
        let newest = snapshots.keys().next_back().copied();
        let active_base = self.active().base_offset();
        snapshots.retain(|offset, path| {
            let keep = *offset <= end
                && *offset >= self.log_start_offset
                && (self.segments.contains_key(offset)
                    || (Some(*offset) == newest && *offset >= active_base));
            if !keep {
                let _ = std::fs::remove_file(path.as_path());
            }
            keep
        });
        let needed_at = first_recovered.unwrap_or(end);
        let mut start = None;
        for (offset, path) in snapshots.range(..=needed_at).rev() {
            let read = std::fs::read(path).map_err(LogError::io(path.as_path()));
            match read.map(|b| producer_state::parse_snapshot(&b)) {
                Ok(Ok(entries)) => {
                    self.producers.load(entries, *offset);
                    self.producers
                        .expire(now_ms, self.config.producer_id_expiration_ms);
                    start = Some(*offset);
                    break;
                }
                Ok(Err(reason)) => {
                    tracing::warn!(path = %path.display(), %reason, "removing corrupt producer snapshot");
                    let _ = std::fs::remove_file(path);
                }
                Err(e) => return Err(e),
            }
        }
        if start.is_none() && clean && first_recovered.is_none() {
            // A log written before producer state was kept: nothing to rebuild.
            self.producers = ProducerStateManager::new(end);
            self.producers.on_high_watermark(self.high_watermark);
            return Ok(());
        }
        let from = start
            .unwrap_or(self.log_start_offset)
            .max(self.log_start_offset);
        if start.is_none() {
            self.producers = ProducerStateManager::new(from);
        }
        let scanned = self.scan_producers(from, first_recovered)?;
        self.producers.on_high_watermark(self.high_watermark);
        if scanned > 0 {
            tracing::info!(dir = %self.dir.display(), from, batches = scanned, "producer state rebuilt");
        }
        self.snapshot_producers(false)
    }

    /// Replays the producer fields of every batch from `from` to the log end.
    fn scan_producers(&mut self, from: i64, first_recovered: Option<i64>) -> Result<u64> {
        let bases: Vec<i64> = self
            .segments
            .keys()
            .copied()
            .filter(|b| {
                self.segments
                    .range(b + 1..)
                    .next()
                    .is_none_or(|(n, _)| *n > from)
            })
            .collect();
        let mut scanned = 0u64;
        for base in bases {
            let batches = self.segment_producer_batches(base, from)?;
            scanned += batches.len() as u64;
            for b in batches {
                let update = match self.producers.prepare(&[b], AppendOrigin::Replication) {
                    Ok(u) => u,
                    Err(e) => {
                        tracing::warn!(dir = %self.dir.display(), offset = b.first_offset, error = %e, "producer state: skipping batch");
                        continue;
                    }
                };
                let rebuild_index = first_recovered.is_some_and(|f| base >= f);
                let aborted = if rebuild_index {
                    self.aborted_by(&update)
                } else {
                    Vec::new()
                };
                self.producers.apply(update, b.last_offset + 1);
                if let Some(seg) = self.segments.get_mut(&base) {
                    for a in aborted {
                        seg.add_aborted_txn(a)?;
                    }
                }
            }
        }
        let end = self.log_end_offset();
        self.producers.apply(Default::default(), end);
        Ok(scanned)
    }

    /// The producer fields of the batches of segment `base` from offset `from` on.
    fn segment_producer_batches(&self, base: i64, from: i64) -> Result<Vec<ProducerBatch>> {
        let Some(seg) = self.segments.get(&base) else {
            return Ok(Vec::new());
        };
        let mut positions = Vec::new();
        seg.scan_from(from.max(base), |b| {
            if b.last_offset >= from {
                positions.push(b);
            }
            true
        })?;
        let mut out = Vec::new();
        for b in positions {
            let Some(h) = seg.read_header(b.position)? else {
                break;
            };
            let Some(header) = BatchHeader::new(&h) else {
                break;
            };
            if header.producer_id() < 0 {
                continue;
            }
            let marker = if header.is_control() {
                // The marker is the first record: a few bytes past the header.
                let bytes =
                    seg.read_at(b.position, (b.size as usize).min(BATCH_HEADER_BYTES + 64))?;
                match read_end_txn_marker(&bytes) {
                    Some((commit, coordinator_epoch)) => Some(Marker {
                        commit,
                        coordinator_epoch,
                    }),
                    None => continue,
                }
            } else {
                None
            };
            out.push(ProducerBatch {
                producer_id: header.producer_id(),
                epoch: header.producer_epoch(),
                base_seq: header.base_sequence(),
                last_seq: producer_state::last_sequence(
                    header.base_sequence(),
                    header.last_offset_delta(),
                ),
                first_offset: b.base_offset,
                last_offset: b.last_offset,
                max_timestamp: b.max_timestamp,
                transactional: header.is_transactional(),
                marker,
            });
        }
        Ok(out)
    }
}
