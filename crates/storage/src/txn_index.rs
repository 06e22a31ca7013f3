//! The aborted-transaction index of a segment (`<base offset>.txnindex`), in Kafka's format:
//! a flat array of 34-byte entries `version i16 = 0, producer id i64, first offset i64,
//! last offset i64 (the ABORT marker), last stable offset i64`, one for each transaction with
//! data whose ABORT marker is in this segment.
//!
//! A consumer reading committed data gets the aborted transactions that overlap what it
//! fetched and drops their batches; the last stable offset of an entry (where the oldest other
//! open transaction started when this one was aborted) tells when no later entry can overlap.
//!
//! The file is created on the first entry. Entries are kept in memory too (they are few: one
//! per aborted transaction).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{LogError, Result};

pub const ENTRY_BYTES: usize = 34;

/// One aborted transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    /// The offset of its ABORT marker.
    pub last_offset: i64,
    pub last_stable_offset: i64,
}

impl AbortedTxn {
    fn to_bytes(self) -> [u8; ENTRY_BYTES] {
        let mut b = [0u8; ENTRY_BYTES];
        b[2..10].copy_from_slice(&self.producer_id.to_be_bytes());
        b[10..18].copy_from_slice(&self.first_offset.to_be_bytes());
        b[18..26].copy_from_slice(&self.last_offset.to_be_bytes());
        b[26..34].copy_from_slice(&self.last_stable_offset.to_be_bytes());
        b
    }

    fn from_bytes(b: &[u8]) -> Option<Self> {
        let i64_at = |at: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[at..at + 8]);
            i64::from_be_bytes(a)
        };
        (i16::from_be_bytes([b[0], b[1]]) == 0).then(|| Self {
            producer_id: i64_at(2),
            first_offset: i64_at(10),
            last_offset: i64_at(18),
            last_stable_offset: i64_at(26),
        })
    }
}

#[derive(Debug)]
pub struct TxnIndex {
    path: PathBuf,
    base_offset: i64,
    entries: Vec<AbortedTxn>,
    file: Option<Arc<File>>,
}

impl TxnIndex {
    /// The index of the segment at `base_offset`, empty (no file yet).
    pub fn new(path: PathBuf, base_offset: i64) -> Self {
        Self {
            path,
            base_offset,
            entries: Vec::new(),
            file: None,
        }
    }

    pub fn path_for(dir: &Path, base_offset: i64) -> PathBuf {
        dir.join(format!(
            "{}.txnindex",
            crate::segment::file_stem(base_offset)
        ))
    }

    /// Loads the file if there is one; entries must be in order and within the segment.
    pub fn load(&mut self) -> Result<()> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(LogError::io(&self.path)(e)),
        };
        let corrupt = |position: usize, reason: String| LogError::Corrupt {
            what: "transaction index",
            path: self.path.clone(),
            position: position as u64,
            reason,
        };
        let mut entries = Vec::with_capacity(bytes.len() / ENTRY_BYTES);
        // A torn last entry (a crash mid-write) is ignored, as Kafka does.
        for (i, chunk) in bytes.chunks_exact(ENTRY_BYTES).enumerate() {
            let e = AbortedTxn::from_bytes(chunk)
                .ok_or_else(|| corrupt(i * ENTRY_BYTES, "unknown entry version".into()))?;
            if e.last_offset < self.base_offset
                || entries
                    .last()
                    .is_some_and(|p: &AbortedTxn| p.last_offset >= e.last_offset)
            {
                return Err(corrupt(
                    i * ENTRY_BYTES,
                    format!("entry with marker offset {} out of order", e.last_offset),
                ));
            }
            entries.push(e);
        }
        self.entries = entries;
        Ok(())
    }

    pub fn entries(&self) -> &[AbortedTxn] {
        &self.entries
    }

    /// The file, once it exists (to fsync with the segment).
    pub fn file(&self) -> Option<&Arc<File>> {
        self.file.as_ref()
    }

    /// Appends an entry (marker offsets only grow).
    pub fn append(&mut self, e: AbortedTxn) -> Result<()> {
        if self
            .entries
            .last()
            .is_some_and(|p| p.last_offset >= e.last_offset)
        {
            return Ok(()); // already recorded (a rescan of data the index holds)
        }
        let position = (self.entries.len() * ENTRY_BYTES) as u64;
        let file = match &self.file {
            Some(f) => f.clone(),
            None => {
                let f = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(&self.path)
                    .map_err(LogError::io(&self.path))?;
                let f = Arc::new(f);
                self.file = Some(f.clone());
                f
            }
        };
        file.write_all_at(&e.to_bytes(), position)
            .map_err(LogError::io(&self.path))?;
        self.entries.push(e);
        Ok(())
    }

    /// Forgets every entry and removes the file (the segment is being rescanned).
    pub fn reset(&mut self) -> Result<()> {
        self.entries.clear();
        self.file = None;
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(LogError::io(&self.path)(e)),
        }
    }

    /// Aborted transactions overlapping `[fetch_offset, upper_bound)`, and whether no later
    /// segment can hold more (an entry's last stable offset reached `upper_bound`).
    pub fn collect(&self, fetch_offset: i64, upper_bound: i64, out: &mut Vec<AbortedTxn>) -> bool {
        for e in &self.entries {
            if e.last_offset >= fetch_offset && e.first_offset < upper_bound {
                out.push(*e);
            }
            if e.last_stable_offset >= upper_bound {
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = TxnIndex::path_for(dir.path(), 100);
        let mut ix = TxnIndex::new(path.clone(), 100);
        let a = AbortedTxn {
            producer_id: 7,
            first_offset: 90,
            last_offset: 120,
            last_stable_offset: 121,
        };
        ix.append(a).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 34);
        let mut again = TxnIndex::new(path, 100);
        again.load().unwrap();
        assert_eq!(again.entries(), &[a]);
        let mut found = Vec::new();
        assert!(again.collect(100, 110, &mut found));
        assert_eq!(found, vec![a]);
        found.clear();
        assert!(!again.collect(121, 200, &mut found) && found.is_empty());
    }
}
