//! One segment: a `.log` file of batches named by its base offset, with its two indexes.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use strand_protocol::batch::{compute_crc, BatchHeader, BATCH_HEADER_BYTES};

use crate::error::{LogError, Result};
use crate::index::{OffsetIndex, TimeIndex};
use crate::txn_index::{AbortedTxn, TxnIndex};

/// File name stem of a segment: the base offset, zero-padded to 20 digits as Kafka does.
pub fn file_stem(base_offset: i64) -> String {
    format!("{base_offset:020}")
}

/// One batch as the segment saw it on append or scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchPosition {
    pub position: u64,
    pub size: u64,
    pub base_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
}

/// What a recovery scan found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentRecovery {
    pub base_offset: i64,
    pub valid_bytes: u64,
    pub truncated_bytes: u64,
    pub batches: u64,
    /// Why the scan stopped before the end of the file, if it did.
    pub reason: Option<String>,
}

#[derive(Debug)]
pub struct Segment {
    base_offset: i64,
    log_path: PathBuf,
    file: Arc<File>,
    size: u64,
    next_offset: i64,
    offset_index: OffsetIndex,
    time_index: TimeIndex,
    /// Aborted transactions whose ABORT marker is in this segment.
    txn_index: TxnIndex,
    index_interval_bytes: u64,
    bytes_since_index: u64,
    max_timestamp: i64,
    offset_of_max_timestamp: i64,
    /// When the segment was created or opened (wall clock).
    created_ms: i64,
    /// Max timestamp of the first batch, if it has one.
    first_batch_timestamp: Option<i64>,
    /// Byte ranges (start -> end) whose batch CRCs are known good: data appended here was
    /// validated on produce, and a recovery scan checks everything it keeps; a segment loaded
    /// after a clean stop is checked lazily, the first time each range is read.
    verified: Mutex<BTreeMap<u64, u64>>,
    /// The last batches appended since the segment was opened, oldest first: a consumer near
    /// the tail finds its batch here without reading headers from the file. Empty until the
    /// first append, so idle partitions cost nothing.
    recent: VecDeque<BatchPosition>,
}

/// How many appended batches [`Segment::position_of`] can find without reading the file.
const RECENT_BATCHES: usize = 16;

impl Segment {
    fn paths(dir: &Path, base_offset: i64) -> (PathBuf, PathBuf, PathBuf) {
        let stem = file_stem(base_offset);
        (
            dir.join(format!("{stem}.log")),
            dir.join(format!("{stem}.index")),
            dir.join(format!("{stem}.timeindex")),
        )
    }

    fn with_file(
        dir: &Path,
        base_offset: i64,
        file: File,
        size: u64,
        index_interval_bytes: u64,
        now_ms: i64,
    ) -> Self {
        let (log_path, index_path, time_path) = Self::paths(dir, base_offset);
        Self {
            base_offset,
            log_path,
            file: Arc::new(file),
            size,
            next_offset: base_offset,
            offset_index: OffsetIndex::new(index_path, base_offset),
            time_index: TimeIndex::new(time_path, base_offset),
            txn_index: TxnIndex::new(TxnIndex::path_for(dir, base_offset), base_offset),
            index_interval_bytes,
            bytes_since_index: 0,
            max_timestamp: -1,
            offset_of_max_timestamp: base_offset,
            created_ms: now_ms,
            first_batch_timestamp: None,
            verified: Mutex::new(BTreeMap::new()),
            recent: VecDeque::new(),
        }
    }

    /// Creates a new, empty segment.
    pub fn create(
        dir: &Path,
        base_offset: i64,
        index_interval_bytes: u64,
        now_ms: i64,
    ) -> Result<Self> {
        let (log_path, index_path, time_path) = Self::paths(dir, base_offset);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&log_path)
            .map_err(LogError::io(&log_path))?;
        for p in [&index_path, &time_path] {
            File::create(p).map_err(LogError::io(p))?;
        }
        let txn_path = TxnIndex::path_for(dir, base_offset);
        if let Err(e) = std::fs::remove_file(&txn_path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                return Err(LogError::io(&txn_path)(e));
            }
        }
        Ok(Self::with_file(
            dir,
            base_offset,
            file,
            0,
            index_interval_bytes,
            now_ms,
        ))
    }

    /// Opens an existing segment, trusting nothing yet: call [`Segment::load`] or
    /// [`Segment::recover`] next.
    pub fn open(
        dir: &Path,
        base_offset: i64,
        index_interval_bytes: u64,
        now_ms: i64,
    ) -> Result<Self> {
        let (log_path, _, _) = Self::paths(dir, base_offset);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&log_path)
            .map_err(LogError::io(&log_path))?;
        let size = file.metadata().map_err(LogError::io(&log_path))?.len();
        Ok(Self::with_file(
            dir,
            base_offset,
            file,
            size,
            index_interval_bytes,
            now_ms,
        ))
    }

    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }
    pub fn size(&self) -> u64 {
        self.size
    }
    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }
    pub fn file(&self) -> &Arc<File> {
        &self.file
    }
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }
    pub fn max_timestamp(&self) -> i64 {
        self.max_timestamp
    }
    pub fn offset_of_max_timestamp(&self) -> i64 {
        self.offset_of_max_timestamp
    }
    /// How long this segment has been filling, as `segment.ms` counts it (Kafka's rule): the
    /// incoming batch's timestamp minus the first batch's, or, without record timestamps, the
    /// time since the segment was created.
    pub fn time_waited_for_roll(&self, now_ms: i64, incoming_max_timestamp: i64) -> i64 {
        match self.first_batch_timestamp {
            Some(first) if first >= 0 => incoming_max_timestamp - first,
            _ => now_ms - self.created_ms,
        }
    }
    pub fn time_index(&self) -> &TimeIndex {
        &self.time_index
    }

    pub fn txn_index(&self) -> &TxnIndex {
        &self.txn_index
    }

    fn txn_index_path(&self) -> PathBuf {
        TxnIndex::path_for(
            self.log_path.parent().unwrap_or(Path::new(".")),
            self.base_offset,
        )
    }

    /// Records an aborted transaction whose marker is in this segment.
    pub fn add_aborted_txn(&mut self, txn: AbortedTxn) -> Result<()> {
        self.txn_index.append(txn)
    }

    /// Reads the header of the batch at `position`, if a whole header is there.
    pub fn read_header(&self, position: u64) -> Result<Option<[u8; BATCH_HEADER_BYTES]>> {
        if position + BATCH_HEADER_BYTES as u64 > self.size {
            return Ok(None);
        }
        let mut h = [0u8; BATCH_HEADER_BYTES];
        self.file
            .read_exact_at(&mut h, position)
            .map_err(LogError::io(&self.log_path))?;
        Ok(Some(h))
    }

    /// Reads `len` bytes at `position`.
    pub fn read_at(&self, position: u64, len: usize) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; len];
        self.file
            .read_exact_at(&mut buf, position)
            .map_err(LogError::io(&self.log_path))?;
        Ok(buf)
    }

    /// The batch at `position`, checked only for a sane length that fits in the segment.
    fn batch_at(&self, position: u64) -> Result<Option<BatchPosition>> {
        let Some(h) = self.read_header(position)? else {
            return Ok(None);
        };
        let header = BatchHeader::new(&h).ok_or_else(|| self.corrupt(position, "short header"))?;
        let size = header
            .total_size()
            .ok_or_else(|| self.corrupt(position, "bad batch length"))? as u64;
        if position + size > self.size {
            return Err(self.corrupt(position, "batch runs past the end of the segment"));
        }
        Ok(Some(BatchPosition {
            position,
            size,
            base_offset: header.base_offset(),
            last_offset: header.last_offset(),
            max_timestamp: header.max_timestamp(),
        }))
    }

    fn corrupt(&self, position: u64, reason: &str) -> LogError {
        LogError::Corrupt {
            what: "segment",
            path: self.log_path.clone(),
            position,
            reason: reason.into(),
        }
    }

    /// Position of the first batch that holds `offset` or anything after it.
    pub fn position_of(&self, offset: i64) -> Result<Option<BatchPosition>> {
        // The recent batches are the segment's tail, contiguous: if the oldest starts at or
        // before `offset`, the answer is among them, or there is none.
        if self.recent.front().is_some_and(|b| b.base_offset <= offset) {
            return Ok(self
                .recent
                .iter()
                .find(|b| b.last_offset >= offset)
                .copied());
        }
        let mut position = self.offset_index.lookup(offset).map_or(0, |e| e.position);
        while let Some(b) = self.batch_at(position)? {
            if b.last_offset >= offset {
                return Ok(Some(b));
            }
            position += b.size;
        }
        Ok(None)
    }

    /// An offset no batch starting before byte `position` reaches: the first indexed batch at
    /// or after it (or, with no such entry, the segment's end). Approximate, as Kafka's.
    pub fn offset_bound_after(&self, position: u64) -> i64 {
        if self.recent.front().is_some_and(|b| b.position < position) {
            return self
                .recent
                .iter()
                .find(|b| b.position >= position)
                .map_or(self.next_offset, |b| b.base_offset);
        }
        let entries = self.offset_index.entries();
        let i = entries.partition_point(|e| e.position < position);
        entries.get(i).map_or(self.next_offset, |e| e.offset)
    }

    /// Byte position where data at or after `offset` starts (the segment size if none does).
    pub fn end_position_before(&self, offset: i64) -> Result<u64> {
        if offset >= self.next_offset {
            return Ok(self.size);
        }
        if self.recent.front().is_some_and(|b| b.base_offset < offset) {
            let found = self.recent.iter().find(|b| b.base_offset >= offset);
            return Ok(found.map_or(self.size, |b| b.position));
        }
        let mut position = self.offset_index.lookup(offset).map_or(0, |e| e.position);
        while let Some(b) = self.batch_at(position)? {
            if b.base_offset >= offset {
                return Ok(position);
            }
            position += b.size;
        }
        Ok(self.size)
    }

    /// Appends validated batches that already carry their offsets. On a write error the file is
    /// cut back to where it was, so a failed append leaves nothing behind.
    pub fn append(&mut self, data: &[u8], batches: &[BatchPosition]) -> Result<()> {
        let start = self.size;
        if let Err(e) = self.file.write_all_at(data, start) {
            let _ = self.file.set_len(start);
            return Err(LogError::io(&self.log_path)(e));
        }
        for b in batches {
            let b = BatchPosition {
                position: start + b.position,
                ..*b
            };
            self.index_batch(b);
            if self.recent.len() == RECENT_BATCHES {
                self.recent.pop_front();
            }
            self.recent.push_back(b);
        }
        self.size = start + data.len() as u64;
        // Appended batches were validated (CRC included) on their way in: a fetch need not
        // read them back to check them again.
        self.mark_verified(start, self.size);
        Ok(())
    }

    fn index_batch(&mut self, b: BatchPosition) {
        if b.position == 0 {
            self.first_batch_timestamp = Some(b.max_timestamp);
        }
        if b.max_timestamp > self.max_timestamp {
            self.max_timestamp = b.max_timestamp;
            self.offset_of_max_timestamp = b.last_offset;
        }
        if self.bytes_since_index >= self.index_interval_bytes {
            self.offset_index.append(b.base_offset, b.position);
            self.time_index
                .maybe_append(self.max_timestamp, self.offset_of_max_timestamp);
            self.bytes_since_index = 0;
        }
        self.bytes_since_index += b.size;
        self.next_offset = b.last_offset + 1;
    }

    /// Loads the indexes of a segment closed cleanly, then walks the batch headers after the
    /// last index entry to find the segment's end. Any inconsistency is an error: the caller
    /// then runs [`Segment::recover`].
    pub fn load(&mut self) -> Result<()> {
        let (_, index_path, time_path) = Self::paths(
            self.log_path.parent().unwrap_or(Path::new(".")),
            self.base_offset,
        );
        // The upper bound on offsets is not known before the walk; a segment never holds more
        // offsets than bytes, which bounds it.
        let bound = self.base_offset.saturating_add(self.size as i64 + 1);
        let offset_index = OffsetIndex::load(index_path, self.base_offset, self.size, bound)?;
        let time_index = TimeIndex::load(time_path, self.base_offset, bound)?;
        self.txn_index.load()?;
        let start = offset_index.entries().last().map_or(0, |e| e.position);
        let mut position = start;
        let mut next_offset = self.base_offset;
        let mut first = true;
        while let Some(b) = self.batch_at(position)? {
            let indexed = offset_index.entries().last().map(|e| e.offset);
            if first && indexed.is_some_and(|o| o != b.base_offset) {
                return Err(self.corrupt(
                    position,
                    "index entry does not point at the start of its batch",
                ));
            }
            first = false;
            if b.base_offset < next_offset {
                return Err(self.corrupt(position, "offsets go backwards"));
            }
            next_offset = b.last_offset + 1;
            if b.max_timestamp > self.max_timestamp {
                self.max_timestamp = b.max_timestamp;
                self.offset_of_max_timestamp = b.last_offset;
            }
            position += b.size;
        }
        if position != self.size {
            return Err(self.corrupt(position, "trailing bytes after the last batch"));
        }
        if let Some(t) = time_index.last() {
            if t.timestamp > self.max_timestamp {
                self.max_timestamp = t.timestamp;
                self.offset_of_max_timestamp = t.offset;
            }
        }
        if let Some(h) = self.read_header(0)? {
            self.first_batch_timestamp = BatchHeader::new(&h).map(|h| h.max_timestamp());
        }
        self.next_offset = next_offset.max(self.base_offset);
        self.bytes_since_index = self.size - start;
        self.offset_index = offset_index;
        self.time_index = time_index;
        Ok(())
    }

    /// Scans every batch from the start, checking length, CRC and offset order; truncates the
    /// file at the first batch that fails and rebuilds both indexes.
    /// The transaction index is emptied: the log rebuilds it from its producer state.
    pub fn recover(&mut self, batch_bytes_max: u64) -> Result<SegmentRecovery> {
        self.txn_index.reset()?;
        self.recent.clear();
        self.offset_index.clear();
        self.time_index.clear();
        self.bytes_since_index = 0;
        self.max_timestamp = -1;
        self.offset_of_max_timestamp = self.base_offset;
        self.next_offset = self.base_offset;
        let mut position = 0u64;
        let mut batches = 0u64;
        let mut reason = None;
        let mut buf = Vec::new();
        while position < self.size {
            match self.check_batch_at(position, batch_bytes_max, &mut buf) {
                Ok(b) => {
                    self.index_batch(b);
                    position += b.size;
                    batches += 1;
                }
                Err(why) => {
                    reason = Some(why);
                    break;
                }
            }
        }
        let truncated_bytes = self.size - position;
        if truncated_bytes > 0 {
            self.file
                .set_len(position)
                .map_err(LogError::io(&self.log_path))?;
            self.file.sync_all().map_err(LogError::io(&self.log_path))?;
            self.size = position;
        }
        self.offset_index.rewrite()?;
        self.time_index.rewrite()?;
        self.mark_verified(0, self.size);
        Ok(SegmentRecovery {
            base_offset: self.base_offset,
            valid_bytes: position,
            truncated_bytes,
            batches,
            reason,
        })
    }

    fn check_batch_at(
        &self,
        position: u64,
        batch_bytes_max: u64,
        buf: &mut Vec<u8>,
    ) -> Result<BatchPosition, String> {
        let left = self.size - position;
        if left < BATCH_HEADER_BYTES as u64 {
            return Err(format!("torn batch header ({left} bytes)"));
        }
        let h = self
            .read_header(position)
            .map_err(|e| e.to_string())?
            .ok_or("torn batch header")?;
        let header = BatchHeader::new(&h).ok_or("short header")?;
        if header.magic() != strand_protocol::batch::MAGIC_V2 {
            return Err(format!("magic {}", header.magic()));
        }
        let size = header
            .total_size()
            .ok_or_else(|| format!("batch length {}", header.batch_length()))?
            as u64;
        if size > left {
            return Err(format!("torn batch: {size} bytes declared, {left} left"));
        }
        if size > batch_bytes_max {
            return Err(format!("batch of {size} bytes exceeds {batch_bytes_max}"));
        }
        if header.base_offset() < self.next_offset || header.last_offset() < header.base_offset() {
            return Err(format!(
                "offset {} out of order (expected at least {})",
                header.base_offset(),
                self.next_offset
            ));
        }
        buf.resize(size as usize, 0);
        self.file
            .read_exact_at(buf, position)
            .map_err(|e| e.to_string())?;
        let computed = compute_crc(buf);
        if computed != header.crc() {
            return Err(format!(
                "CRC mismatch: stored {:#010x}, computed {computed:#010x}",
                header.crc()
            ));
        }
        Ok(BatchPosition {
            position,
            size,
            base_offset: header.base_offset(),
            last_offset: header.last_offset(),
            max_timestamp: header.max_timestamp(),
        })
    }

    fn verified_ranges(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, u64>> {
        self.verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records `[start, end)` as checked, merging with neighbours.
    fn mark_verified(&self, start: u64, end: u64) {
        if end <= start {
            return;
        }
        let mut ranges = self.verified_ranges();
        let (mut lo, mut hi) = (start, end);
        let touching: Vec<(u64, u64)> = ranges
            .range(..=end)
            .filter(|(_, e)| **e >= start)
            .map(|(s, e)| (*s, *e))
            .collect();
        for (s, e) in touching {
            ranges.remove(&s);
            lo = lo.min(s);
            hi = hi.max(e);
        }
        ranges.insert(lo, hi);
    }

    /// The end of the checked range holding `position`, if it is checked.
    fn verified_end(&self, position: u64) -> Option<u64> {
        self.verified_ranges()
            .range(..=position)
            .next_back()
            .filter(|(_, e)| **e > position)
            .map(|(_, e)| *e)
    }

    /// Checks the CRC of every whole batch in `[start, end)` not checked before; `start` must
    /// be a batch boundary. Returns the first bad batch (position, base offset, reason);
    /// everything before it in the range is then known good.
    pub fn verify_range(&self, start: u64, end: u64) -> Result<Option<(u64, i64, String)>> {
        let end = end.min(self.size);
        let mut position = start;
        let mut buf = Vec::new();
        while position < end {
            if let Some(e) = self.verified_end(position) {
                position = e;
                continue;
            }
            let Some(h) = self.read_header(position)? else {
                break;
            };
            let Some(header) = BatchHeader::new(&h) else {
                break;
            };
            let Some(size) = header.total_size().map(|s| s as u64) else {
                return Ok(Some((
                    position,
                    header.base_offset(),
                    format!("bad batch length {}", header.batch_length()),
                )));
            };
            if position + size > self.size {
                return Ok(Some((
                    position,
                    header.base_offset(),
                    "batch runs past the end of the segment".into(),
                )));
            }
            if position + size > end {
                break; // a partial batch at the end of the range: checked when read whole
            }
            buf.resize(size as usize, 0);
            self.file
                .read_exact_at(&mut buf, position)
                .map_err(LogError::io(&self.log_path))?;
            let computed = compute_crc(&buf);
            if computed != header.crc() {
                let reason = format!(
                    "CRC mismatch: stored {:#010x}, computed {computed:#010x}",
                    header.crc()
                );
                return Ok(Some((position, header.base_offset(), reason)));
            }
            self.mark_verified(position, position + size);
            position += size;
        }
        Ok(None)
    }

    /// Renames the segment's files to `*.deleted` (readers holding the file keep reading);
    /// returns the new paths, to remove after `file.delete.delay.ms`.
    pub fn rename_to_deleted(&self) -> Result<Vec<PathBuf>> {
        let (log, index, time) = Self::paths(
            self.log_path.parent().unwrap_or(Path::new(".")),
            self.base_offset,
        );
        let txn = self.txn_index_path();
        let mut out = Vec::new();
        for p in [log, index, time, txn] {
            let mut to = p.clone().into_os_string();
            to.push(".deleted");
            let to = PathBuf::from(to);
            match std::fs::rename(&p, &to) {
                Ok(()) => out.push(to),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(LogError::io(&p)(e)),
            }
        }
        Ok(out)
    }

    /// Writes new index entries to their files.
    pub fn persist_indexes(&mut self) -> Result<()> {
        self.offset_index.persist()?;
        self.time_index.persist()
    }

    /// fdatasync of the log file.
    pub fn sync(&self) -> Result<()> {
        self.file.sync_data().map_err(LogError::io(&self.log_path))
    }

    /// Scans batch headers from the first batch holding `offset` onward, calling `f` for each
    /// until it returns false.
    pub fn scan_from(&self, offset: i64, mut f: impl FnMut(BatchPosition) -> bool) -> Result<()> {
        let Some(first) = self.position_of(offset)? else {
            return Ok(());
        };
        let mut position = first.position;
        while let Some(b) = self.batch_at(position)? {
            if !f(b) {
                break;
            }
            position += b.size;
        }
        Ok(())
    }

    /// The first batch whose max timestamp is at least `timestamp`.
    pub fn find_by_timestamp(&self, timestamp: i64) -> Result<Option<BatchPosition>> {
        if self.max_timestamp < timestamp {
            return Ok(None);
        }
        let start = self
            .time_index
            .lookup_before(timestamp)
            .map_or(self.base_offset, |e| e.offset);
        let mut found = None;
        self.scan_from(start, |b| {
            if b.max_timestamp >= timestamp {
                found = Some(b);
                false
            } else {
                true
            }
        })?;
        Ok(found)
    }

    /// Removes the segment's files.
    pub fn delete_files(&self) -> Result<()> {
        let (log, index, time) = Self::paths(
            self.log_path.parent().unwrap_or(Path::new(".")),
            self.base_offset,
        );
        let txn = self.txn_index_path();
        for p in [log, index, time, txn] {
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(LogError::io(&p)(e)),
            }
        }
        Ok(())
    }
}
