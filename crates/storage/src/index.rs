//! Sparse offset and time indexes, in Kafka's file format.
//!
//! * `.index`: 8-byte entries `(offset - base_offset) as u32, file position as u32`.
//! * `.timeindex`: 12-byte entries `max timestamp so far as i64, (offset - base_offset) as u32`.
//!
//! Both are kept in memory and appended to their files when the log is flushed or the segment
//! rolls; after an unclean stop they are rebuilt from the segment, so a stale file is harmless.
//! A file that fails its sanity checks on load is reported and rebuilt.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{LogError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetEntry {
    pub offset: i64,
    pub position: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeEntry {
    pub timestamp: i64,
    pub offset: i64,
}

/// An index file: entries in memory, `persisted` of them already in the file.
#[derive(Debug)]
struct IndexFile<E> {
    path: PathBuf,
    entries: Vec<E>,
    persisted: usize,
}

impl<E: Copy> IndexFile<E> {
    fn new(path: PathBuf) -> Self {
        Self {
            path,
            entries: Vec::new(),
            persisted: 0,
        }
    }

    fn persist(&mut self, encode: impl Fn(&E, &mut Vec<u8>)) -> Result<()> {
        if self.persisted == self.entries.len() && self.path.exists() {
            return Ok(());
        }
        let mut buf = Vec::new();
        for e in &self.entries[self.persisted..] {
            encode(e, &mut buf);
        }
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(LogError::io(&self.path))?;
        f.write_all(&buf).map_err(LogError::io(&self.path))?;
        self.persisted = self.entries.len();
        Ok(())
    }

    /// Rewrites the whole file (after a rebuild or a truncation).
    fn rewrite(&mut self, encode: impl Fn(&E, &mut Vec<u8>)) -> Result<()> {
        let mut buf = Vec::new();
        for e in &self.entries {
            encode(e, &mut buf);
        }
        let tmp = self.path.with_extension("tmp-index");
        let mut f = File::create(&tmp).map_err(LogError::io(&tmp))?;
        f.write_all(&buf).map_err(LogError::io(&tmp))?;
        std::fs::rename(&tmp, &self.path).map_err(LogError::io(&self.path))?;
        self.persisted = self.entries.len();
        Ok(())
    }
}

fn read_file(path: &Path) -> Result<Option<Vec<u8>>> {
    match File::open(path) {
        Ok(mut f) => {
            let mut buf = Vec::new();
            f.read_to_end(&mut buf).map_err(LogError::io(path))?;
            Ok(Some(buf))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(LogError::io(path)(e)),
    }
}

fn corrupt(path: &Path, position: u64, reason: String) -> LogError {
    LogError::Corrupt {
        what: "index",
        path: path.to_owned(),
        position,
        reason,
    }
}

/// Offset index of one segment.
#[derive(Debug)]
pub struct OffsetIndex {
    base_offset: i64,
    file: IndexFile<OffsetEntry>,
}

impl OffsetIndex {
    pub fn new(path: PathBuf, base_offset: i64) -> Self {
        Self {
            base_offset,
            file: IndexFile::new(path),
        }
    }

    /// Loads and checks the file: entries strictly increasing in offset and position, every
    /// position inside the segment, every offset below `next_offset`.
    pub fn load(
        path: PathBuf,
        base_offset: i64,
        segment_bytes: u64,
        next_offset: i64,
    ) -> Result<Self> {
        let mut index = Self::new(path, base_offset);
        let Some(bytes) = read_file(&index.file.path)? else {
            return Err(corrupt(&index.file.path, 0, "missing".into()));
        };
        if bytes.len() % 8 != 0 {
            return Err(corrupt(
                &index.file.path,
                0,
                format!("length {} is not a multiple of 8", bytes.len()),
            ));
        }
        let mut last: Option<OffsetEntry> = None;
        for (i, chunk) in bytes.chunks_exact(8).enumerate() {
            let rel = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            let pos = u32::from_be_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]);
            let e = OffsetEntry {
                offset: base_offset + i64::from(rel),
                position: u64::from(pos),
            };
            // Kafka pads preallocated index files with zeros: an all-zero entry after the first ends it.
            if i > 0 && rel == 0 && pos == 0 {
                break;
            }
            let ordered = last.is_none_or(|l| e.offset > l.offset && e.position > l.position);
            if !ordered
                || e.position >= segment_bytes.max(1)
                || e.offset >= next_offset.max(base_offset + 1)
            {
                return Err(corrupt(
                    &index.file.path,
                    i as u64 * 8,
                    format!("entry {e:?} out of order or range"),
                ));
            }
            index.file.entries.push(e);
            last = Some(e);
        }
        index.file.persisted = index.file.entries.len();
        Ok(index)
    }

    pub fn append(&mut self, offset: i64, position: u64) {
        if self
            .file
            .entries
            .last()
            .is_none_or(|l| offset > l.offset && position > l.position)
        {
            self.file.entries.push(OffsetEntry { offset, position });
        }
    }

    /// The last entry at or before `offset`.
    pub fn lookup(&self, offset: i64) -> Option<OffsetEntry> {
        let i = self.file.entries.partition_point(|e| e.offset <= offset);
        i.checked_sub(1).map(|i| self.file.entries[i])
    }

    pub fn entries(&self) -> &[OffsetEntry] {
        &self.file.entries
    }

    pub fn clear(&mut self) {
        self.file.entries.clear();
    }

    fn encode(base: i64) -> impl Fn(&OffsetEntry, &mut Vec<u8>) {
        move |e, buf| {
            buf.extend_from_slice(&((e.offset - base) as u32).to_be_bytes());
            buf.extend_from_slice(&(e.position as u32).to_be_bytes());
        }
    }

    pub fn persist(&mut self) -> Result<()> {
        self.file.persist(Self::encode(self.base_offset))
    }

    pub fn rewrite(&mut self) -> Result<()> {
        self.file.rewrite(Self::encode(self.base_offset))
    }

    pub fn path(&self) -> &Path {
        &self.file.path
    }
}

/// Time index of one segment.
#[derive(Debug)]
pub struct TimeIndex {
    base_offset: i64,
    file: IndexFile<TimeEntry>,
}

impl TimeIndex {
    pub fn new(path: PathBuf, base_offset: i64) -> Self {
        Self {
            base_offset,
            file: IndexFile::new(path),
        }
    }

    /// Loads and checks the file: timestamps non-decreasing, offsets increasing and in range.
    pub fn load(path: PathBuf, base_offset: i64, next_offset: i64) -> Result<Self> {
        let mut index = Self::new(path, base_offset);
        let Some(bytes) = read_file(&index.file.path)? else {
            return Err(corrupt(&index.file.path, 0, "missing".into()));
        };
        if bytes.len() % 12 != 0 {
            return Err(corrupt(
                &index.file.path,
                0,
                format!("length {} is not a multiple of 12", bytes.len()),
            ));
        }
        let mut last: Option<TimeEntry> = None;
        for (i, c) in bytes.chunks_exact(12).enumerate() {
            let mut ts = [0u8; 8];
            ts.copy_from_slice(&c[..8]);
            let timestamp = i64::from_be_bytes(ts);
            let rel = u32::from_be_bytes([c[8], c[9], c[10], c[11]]);
            if i > 0 && timestamp == 0 && rel == 0 {
                break;
            }
            let e = TimeEntry {
                timestamp,
                offset: base_offset + i64::from(rel),
            };
            let ordered = last.is_none_or(|l| e.timestamp > l.timestamp && e.offset > l.offset);
            if !ordered || e.offset >= next_offset.max(base_offset + 1) {
                return Err(corrupt(
                    &index.file.path,
                    i as u64 * 12,
                    format!("entry {e:?} out of order or range"),
                ));
            }
            index.file.entries.push(e);
            last = Some(e);
        }
        index.file.persisted = index.file.entries.len();
        Ok(index)
    }

    /// Records that `offset` holds the largest timestamp seen so far, if it is larger.
    pub fn maybe_append(&mut self, timestamp: i64, offset: i64) {
        if self
            .file
            .entries
            .last()
            .is_none_or(|l| timestamp > l.timestamp && offset > l.offset)
        {
            self.file.entries.push(TimeEntry { timestamp, offset });
        }
    }

    /// The last entry whose timestamp is below `timestamp`: every batch with a timestamp at
    /// or above it starts after that entry's offset.
    pub fn lookup_before(&self, timestamp: i64) -> Option<TimeEntry> {
        let i = self
            .file
            .entries
            .partition_point(|e| e.timestamp < timestamp);
        i.checked_sub(1).map(|i| self.file.entries[i])
    }

    pub fn last(&self) -> Option<TimeEntry> {
        self.file.entries.last().copied()
    }

    pub fn clear(&mut self) {
        self.file.entries.clear();
    }

    fn encode(base: i64) -> impl Fn(&TimeEntry, &mut Vec<u8>) {
        move |e, buf| {
            buf.extend_from_slice(&e.timestamp.to_be_bytes());
            buf.extend_from_slice(&((e.offset - base) as u32).to_be_bytes());
        }
    }

    pub fn persist(&mut self) -> Result<()> {
        self.file.persist(Self::encode(self.base_offset))
    }

    pub fn rewrite(&mut self) -> Result<()> {
        self.file.rewrite(Self::encode(self.base_offset))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_and_roundtrip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.index");
        let mut idx = OffsetIndex::new(path.clone(), 100);
        idx.append(100, 0);
        idx.append(150, 4096);
        idx.append(150, 5000); // ignored: not increasing
        idx.append(210, 9000);
        idx.persist().unwrap();
        assert_eq!(idx.lookup(99), None);
        assert_eq!(idx.lookup(149).unwrap().position, 0);
        assert_eq!(idx.lookup(150).unwrap().position, 4096);
        assert_eq!(idx.lookup(10_000).unwrap().offset, 210);
        let loaded = OffsetIndex::load(path.clone(), 100, 10_000, 300).unwrap();
        assert_eq!(loaded.entries(), idx.entries());
        // A position past the segment end means the index does not belong to this segment.
        assert!(OffsetIndex::load(path, 100, 5000, 300).is_err());
    }

    #[test]
    fn time_index_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let mut idx = TimeIndex::new(dir.path().join("0.timeindex"), 0);
        idx.maybe_append(1000, 0);
        idx.maybe_append(900, 5); // ignored
        idx.maybe_append(2000, 10);
        idx.persist().unwrap();
        assert_eq!(idx.lookup_before(1000), None);
        assert_eq!(idx.lookup_before(1001).unwrap().offset, 0);
        assert_eq!(idx.lookup_before(5000).unwrap().offset, 10);
        let loaded = TimeIndex::load(dir.path().join("0.timeindex"), 0, 11).unwrap();
        assert_eq!(loaded.last(), idx.last());
    }

    #[test]
    fn garbage_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.index");
        std::fs::write(&path, [1, 2, 3]).unwrap();
        assert!(matches!(
            OffsetIndex::load(path.clone(), 0, 100, 100),
            Err(LogError::Corrupt { .. })
        ));
        std::fs::write(&path, [0, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0, 2]).unwrap();
        assert!(OffsetIndex::load(path, 0, 100, 100).is_err());
    }
}
