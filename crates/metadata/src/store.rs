//! The metadata log store: durable entries and the quorum's vote, with snapshots.
//!
//! This is the half of the metadata log that a Raft quorum replicates; applying the entries is
//! [`crate::state_machine`]'s. Files in the metadata dir:
//!
//! * `metadata.log`: frames `[length u32][crc32c u32][offset i64][entry as JSON]`, fsynced on
//!   every append. An entry is `{"term": .., "record": ..}`; frames written before terms
//!   existed hold the bare record and read as term 0.
//! * `metadata.snapshot`: the image at an offset, as the records that rebuild it, with the
//!   term of that offset. The log holds only what follows it.
//! * `quorum-state`: the current term and whom this node voted for (Kafka's file name).
//!
//! Opening cuts a torn or corrupt tail off the log (a crash in the middle of an append) and
//! reports it. Every change is written to a temporary file and renamed, or appended and
//! fsynced, so a crash leaves either the old or the new state.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::record::MetadataRecord;

const LOG_FILE: &str = "metadata.log";
const SNAPSHOT_FILE: &str = "metadata.snapshot";
const VOTE_FILE: &str = "quorum-state";
const FRAME_HEADER_BYTES: usize = 16;
/// A metadata record larger than this is not one Strand wrote.
const RECORD_BYTES_MAX: usize = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("corrupt {path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("cannot encode metadata: {0}")]
    Encode(String),
    #[error("entry at offset {got} does not follow {last}")]
    NotContiguous { got: i64, last: i64 },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

/// One replicated record: the term (leader epoch) it was proposed in, and its offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub term: u64,
    pub offset: i64,
    pub record: MetadataRecord,
}

#[derive(Serialize, Deserialize)]
struct StoredEntry<'a> {
    term: u64,
    record: std::borrow::Cow<'a, MetadataRecord>,
}

/// What a frame's JSON holds: an entry, or (before terms) a bare record.
#[derive(Deserialize)]
#[serde(untagged)]
enum FrameBody {
    Entry { term: u64, record: MetadataRecord },
    Legacy(MetadataRecord),
}

/// The image at `offset` (written in `term`), as the records that rebuild it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub offset: i64,
    #[serde(default)]
    pub term: u64,
    pub records: Vec<MetadataRecord>,
}

/// The quorum's durable election state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    pub term: u64,
    pub voted_for: Option<i32>,
}

/// What opening the store found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenReport {
    pub snapshot_offset: Option<i64>,
    pub entries: usize,
    pub truncated_bytes: u64,
    pub truncation_reason: Option<String>,
}

#[derive(Debug)]
pub struct LogStore {
    dir: PathBuf,
    file: File,
    /// Entries after the snapshot, with the byte position of each frame in the log file.
    entries: Vec<(Entry, u64)>,
    /// Bytes of the log file.
    len: u64,
    /// `(offset, term)` of the snapshot, if there is one.
    snapshot: Option<(i64, u64)>,
    vote: Vote,
}

impl LogStore {
    /// Opens the store in `dir` (created if missing), returning it with its snapshot.
    pub fn open(dir: &Path) -> Result<(Self, Option<Snapshot>, OpenReport), StoreError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let mut report = OpenReport::default();
        let snap_path = dir.join(SNAPSHOT_FILE);
        let snapshot: Option<Snapshot> = match std::fs::read(&snap_path) {
            Ok(bytes) => Some(
                serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
                    path: snap_path.clone(),
                    reason: e.to_string(),
                })?,
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io(&snap_path)(e)),
        };
        report.snapshot_offset = snapshot.as_ref().map(|s| s.offset);
        let vote_path = dir.join(VOTE_FILE);
        let vote = match std::fs::read(&vote_path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
                path: vote_path.clone(),
                reason: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vote::default(),
            Err(e) => return Err(io(&vote_path)(e)),
        };
        let log_path = dir.join(LOG_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&log_path)
            .map_err(io(&log_path))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io(&log_path))?;
        let after = snapshot.as_ref().map_or(-1, |s| s.offset);
        let mut entries: Vec<(Entry, u64)> = Vec::new();
        let mut pos = 0usize;
        while pos < bytes.len() {
            match parse_frame(&bytes[pos..]) {
                Ok((entry, len)) => {
                    let expected = entries.last().map_or(after + 1, |(e, _)| e.offset + 1);
                    // Frames at or before the snapshot are left from before it (a crash
                    // between the snapshot and the log's rewrite): skipped.
                    if entry.offset > after {
                        if entry.offset != expected {
                            report.truncation_reason = Some(format!(
                                "offset {} where {expected} was expected",
                                entry.offset
                            ));
                            break;
                        }
                        entries.push((entry, pos as u64));
                    }
                    pos += len;
                }
                Err(reason) => {
                    report.truncation_reason = Some(reason);
                    break;
                }
            }
        }
        if pos < bytes.len() {
            report.truncated_bytes = (bytes.len() - pos) as u64;
            tracing::warn!(path = %log_path.display(), bytes = report.truncated_bytes, reason = ?report.truncation_reason, "truncating the metadata log's torn tail");
            file.set_len(pos as u64).map_err(io(&log_path))?;
            file.sync_all().map_err(io(&log_path))?;
        }
        report.entries = entries.len();
        let store = Self {
            dir: dir.to_owned(),
            file,
            entries,
            len: pos as u64,
            snapshot: snapshot.as_ref().map(|s| (s.offset, s.term)),
            vote,
        };
        Ok((store, snapshot, report))
    }

    /// `(term, offset)` of the last entry, or of the snapshot if the log is empty.
    pub fn last(&self) -> Option<(u64, i64)> {
        self.entries
            .last()
            .map(|(e, _)| (e.term, e.offset))
            .or(self.snapshot.map(|(o, t)| (t, o)))
    }

    /// The offset the next entry gets.
    pub fn next_offset(&self) -> i64 {
        self.last().map_or(0, |(_, o)| o + 1)
    }

    /// Entries from `offset` on (those the snapshot covers are gone).
    pub fn entries_from(&self, offset: i64) -> impl Iterator<Item = &Entry> {
        self.entries
            .iter()
            .map(|(e, _)| e)
            .skip_while(move |e| e.offset < offset)
    }

    /// Entries after the snapshot.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Appends `entries` (which must follow the last one) and fsyncs them.
    pub fn append(&mut self, entries: Vec<Entry>) -> Result<(), StoreError> {
        let mut buf = Vec::new();
        let mut framed = Vec::with_capacity(entries.len());
        for (next, e) in (self.next_offset()..).zip(entries) {
            if e.offset != next {
                return Err(StoreError::NotContiguous {
                    got: e.offset,
                    last: next - 1,
                });
            }
            let pos = self.len + buf.len() as u64;
            frame(&mut buf, &e)?;
            framed.push((e, pos));
        }
        let path = self.dir.join(LOG_FILE);
        self.file.write_all(&buf).map_err(io(&path))?;
        self.file.sync_data().map_err(io(&path))?;
        self.len += buf.len() as u64;
        self.entries.extend(framed);
        Ok(())
    }

    /// Removes the entries from `offset` on (a follower's log that a new leader overrules).
    pub fn truncate_from(&mut self, offset: i64) -> Result<(), StoreError> {
        let Some(at) = self.entries.iter().position(|(e, _)| e.offset >= offset) else {
            return Ok(());
        };
        let pos = self.entries[at].1;
        let path = self.dir.join(LOG_FILE);
        self.file.set_len(pos).map_err(io(&path))?;
        self.file.sync_all().map_err(io(&path))?;
        self.entries.truncate(at);
        self.len = pos;
        Ok(())
    }

    /// Makes `snap` the snapshot and drops the entries it covers: the snapshot is written
    /// first, then the log is rewritten with what follows it (a crash between the two leaves
    /// frames that opening skips).
    pub fn save_snapshot(&mut self, snap: &Snapshot) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(snap).map_err(|e| StoreError::Encode(e.to_string()))?;
        write_atomically(&self.dir, SNAPSHOT_FILE, &bytes)?;
        self.snapshot = Some((snap.offset, snap.term));
        let keep: Vec<Entry> = self
            .entries
            .drain(..)
            .map(|(e, _)| e)
            .filter(|e| e.offset > snap.offset)
            .collect();
        let mut buf = Vec::new();
        let mut kept = Vec::with_capacity(keep.len());
        for e in keep {
            let pos = buf.len() as u64;
            frame(&mut buf, &e)?;
            kept.push((e, pos));
        }
        write_atomically(&self.dir, LOG_FILE, &buf)?;
        let path = self.dir.join(LOG_FILE);
        self.file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        self.len = buf.len() as u64;
        self.entries = kept;
        Ok(())
    }

    pub fn vote(&self) -> Vote {
        self.vote
    }

    pub fn save_vote(&mut self, vote: Vote) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(&vote).map_err(|e| StoreError::Encode(e.to_string()))?;
        write_atomically(&self.dir, VOTE_FILE, &bytes)?;
        self.vote = vote;
        Ok(())
    }
}

fn frame(buf: &mut Vec<u8>, e: &Entry) -> Result<(), StoreError> {
    let json = serde_json::to_vec(&StoredEntry {
        term: e.term,
        record: std::borrow::Cow::Borrowed(&e.record),
    })
    .map_err(|err| StoreError::Encode(err.to_string()))?;
    let mut body = Vec::with_capacity(8 + json.len());
    body.extend_from_slice(&e.offset.to_be_bytes());
    body.extend_from_slice(&json);
    buf.extend_from_slice(&(body.len() as u32).to_be_bytes());
    buf.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
    buf.extend_from_slice(&body);
    Ok(())
}

/// Writes `name` in `dir` through a temporary file, fsynced and renamed, then fsyncs the dir.
fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}.tmp"));
    let mut f = File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(bytes).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(io(&path))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))?;
    Ok(())
}

fn parse_frame(b: &[u8]) -> Result<(Entry, usize), String> {
    if b.len() < FRAME_HEADER_BYTES {
        return Err(format!("torn frame header ({} bytes)", b.len()));
    }
    let len = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
    let crc = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
    if !(8..=RECORD_BYTES_MAX).contains(&len) {
        return Err(format!("frame length {len}"));
    }
    if b.len() < 8 + len {
        return Err(format!(
            "torn frame: {len} bytes declared, {} left",
            b.len() - 8
        ));
    }
    let body = &b[8..8 + len];
    if crc32c::crc32c(body) != crc {
        return Err("CRC mismatch".into());
    }
    let mut off = [0u8; 8];
    off.copy_from_slice(&body[..8]);
    let offset = i64::from_be_bytes(off);
    let (term, record) = match serde_json::from_slice(&body[8..]) {
        Ok(FrameBody::Entry { term, record }) => (term, record),
        Ok(FrameBody::Legacy(record)) => (0, record),
        Err(e) => return Err(format!("undecodable record: {e}")),
    };
    Ok((
        Entry {
            term,
            offset,
            record,
        },
        8 + len,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::tests::topic as create;

    fn entries(term: u64, from: i64, names: &[&str]) -> Vec<Entry> {
        names
            .iter()
            .enumerate()
            .map(|(i, n)| Entry {
                term,
                offset: from + i as i64,
                record: create(n, from as u128 + i as u128 + 1),
            })
            .collect()
    }

    #[test]
    fn entries_survive_reopen_truncation_and_snapshots() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, snap, _) = LogStore::open(dir.path()).unwrap();
        assert!(snap.is_none() && s.last().is_none());
        s.append(entries(1, 0, &["a", "b", "c"])).unwrap();
        s.append(entries(2, 3, &["d"])).unwrap();
        assert!(matches!(
            s.append(entries(2, 9, &["x"])),
            Err(StoreError::NotContiguous { .. })
        ));
        s.truncate_from(2).unwrap();
        s.append(entries(3, 2, &["e"])).unwrap();
        drop(s);
        let (mut s, _, report) = LogStore::open(dir.path()).unwrap();
        assert_eq!(report.entries, 3);
        let got: Vec<(u64, i64)> = s.entries_from(0).map(|e| (e.term, e.offset)).collect();
        assert_eq!(got, [(1, 0), (1, 1), (3, 2)]);
        let snap = Snapshot {
            offset: 1,
            term: 1,
            records: vec![create("a", 1), create("b", 2)],
        };
        s.save_snapshot(&snap).unwrap();
        s.append(entries(3, 3, &["f"])).unwrap();
        s.save_vote(Vote {
            term: 3,
            voted_for: Some(1),
        })
        .unwrap();
        drop(s);
        let (s, reopened, report) = LogStore::open(dir.path()).unwrap();
        assert_eq!(reopened, Some(snap));
        assert_eq!(report.snapshot_offset, Some(1));
        let got: Vec<i64> = s.entries_from(0).map(|e| e.offset).collect();
        assert_eq!(got, [2, 3]);
        assert_eq!(s.last(), Some((3, 3)));
        assert_eq!(s.vote().voted_for, Some(1));
    }

    #[test]
    fn a_torn_tail_is_cut_and_appends_go_on() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, _, _) = LogStore::open(dir.path()).unwrap();
        s.append(entries(1, 0, &["a", "b"])).unwrap();
        drop(s);
        let path = dir.path().join(LOG_FILE);
        let len = std::fs::metadata(&path).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 3)
            .unwrap();
        let (mut s, _, report) = LogStore::open(dir.path()).unwrap();
        assert!(report.truncated_bytes > 0);
        assert_eq!(s.next_offset(), 1);
        s.append(entries(1, 1, &["c"])).unwrap();
        drop(s);
        let (s, _, report) = LogStore::open(dir.path()).unwrap();
        assert_eq!((report.entries, report.truncated_bytes), (2, 0));
        assert_eq!(s.next_offset(), 2);
    }

    #[test]
    fn logs_written_before_terms_are_read_as_term_zero() {
        let dir = tempfile::tempdir().unwrap();
        // A frame as the first metadata log wrote it: the bare record.
        let json = serde_json::to_vec(&create("old", 7)).unwrap();
        let mut body = 0i64.to_be_bytes().to_vec();
        body.extend_from_slice(&json);
        let mut bytes = (body.len() as u32).to_be_bytes().to_vec();
        bytes.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
        bytes.extend_from_slice(&body);
        std::fs::write(dir.path().join(LOG_FILE), bytes).unwrap();
        let old_snapshot = br#"{"offset":-1,"records":[]}"#;
        std::fs::write(dir.path().join(SNAPSHOT_FILE), old_snapshot).unwrap();
        let (s, snap, _) = LogStore::open(dir.path()).unwrap();
        assert_eq!(snap.map(|s| s.term), Some(0));
        let e: Vec<&Entry> = s.entries_from(0).collect();
        assert_eq!((e[0].term, e[0].offset), (0, 0));
        assert_eq!(e[0].record, create("old", 7));
    }
}
