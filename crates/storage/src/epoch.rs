//! The leader-epoch cache and its `leader-epoch-checkpoint` file (Kafka's format:
//! a version line `0`, a count line, then `epoch start_offset` per line).
//!
//! Each entry says from which offset on the partition was written under a leader epoch; after
//! a failover, followers use it to find where their log diverges from the new leader's.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{LogError, Result};

pub const CHECKPOINT_FILE: &str = "leader-epoch-checkpoint";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEntry {
    pub epoch: i32,
    pub start_offset: i64,
}

#[derive(Debug)]
pub struct LeaderEpochCache {
    path: PathBuf,
    entries: Vec<EpochEntry>,
}

impl LeaderEpochCache {
    /// Loads the checkpoint in `dir`; a missing file is an empty cache, a malformed one an error.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(CHECKPOINT_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(LogError::io(&path)(e)),
        };
        let entries = parse_checkpoint(&text, 2)
            .map_err(|reason| LogError::Corrupt {
                what: "leader-epoch checkpoint",
                path: path.clone(),
                position: 0,
                reason,
            })?
            .into_iter()
            .map(|f| EpochEntry {
                epoch: f[0] as i32,
                start_offset: f[1],
            })
            .collect();
        Ok(Self { path, entries })
    }

    pub fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    pub fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|e| e.epoch)
    }

    /// Records that `epoch` starts at `offset`, if it is newer than the latest; writes the file
    /// when it changes.
    pub fn assign(&mut self, epoch: i32, offset: i64) -> Result<()> {
        if epoch < 0 || self.latest_epoch().is_some_and(|e| e >= epoch) {
            return Ok(());
        }
        self.entries.push(EpochEntry {
            epoch,
            start_offset: offset,
        });
        self.write()
    }

    /// Drops entries that start at or after `end_offset` (the log was cut back there).
    pub fn truncate_from_end(&mut self, end_offset: i64) -> Result<()> {
        let before = self.entries.len();
        self.entries.retain(|e| e.start_offset < end_offset);
        if self.entries.len() != before {
            self.write()?;
        }
        Ok(())
    }

    fn write(&self) -> Result<()> {
        let lines: Vec<String> = self
            .entries
            .iter()
            .map(|e| format!("{} {}", e.epoch, e.start_offset))
            .collect();
        write_checkpoint(&self.path, &lines)
    }
}

/// Parses a Kafka checkpoint file: version `0`, a count, then `count` lines of `fields`
/// whitespace-separated integers (the last `fields` of each line: leading words are returned
/// by [`parse_named_checkpoint`]).
pub fn parse_checkpoint(text: &str, fields: usize) -> std::result::Result<Vec<Vec<i64>>, String> {
    parse_named_checkpoint(text, fields).map(|v| v.into_iter().map(|(_, n)| n).collect())
}

/// Like [`parse_checkpoint`], keeping the leading word of each line (a topic name) if there is one.
pub fn parse_named_checkpoint(
    text: &str,
    fields: usize,
) -> std::result::Result<Vec<(String, Vec<i64>)>, String> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let mut lines = text.lines();
    let version = lines.next().unwrap_or("").trim();
    if version != "0" {
        return Err(format!("unknown checkpoint version {version:?}"));
    }
    let count: usize = lines
        .next()
        .unwrap_or("")
        .trim()
        .parse()
        .map_err(|_| "bad entry count".to_string())?;
    let mut out = Vec::with_capacity(count.min(1 << 16));
    for (i, line) in lines.enumerate().take(count) {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.len() < fields {
            return Err(format!("line {} has {} fields", i + 3, words.len()));
        }
        let (name, nums) = words.split_at(words.len() - fields);
        let nums = nums
            .iter()
            .map(|w| {
                w.parse::<i64>()
                    .map_err(|_| format!("line {}: {w:?} is not a number", i + 3))
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        out.push((name.join(" "), nums));
    }
    if out.len() != count {
        return Err(format!("{count} entries announced, {} found", out.len()));
    }
    Ok(out)
}

/// Writes a checkpoint atomically: a temp file, fsync, rename.
pub fn write_checkpoint(path: &Path, lines: &[String]) -> Result<()> {
    let mut text = format!("0\n{}\n", lines.len());
    for l in lines {
        text.push_str(l);
        text.push('\n');
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(LogError::io(&tmp))?;
    f.write_all(text.as_bytes()).map_err(LogError::io(&tmp))?;
    f.sync_all().map_err(LogError::io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(LogError::io(path))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assign_persist_truncate() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = LeaderEpochCache::load(dir.path()).unwrap();
        c.assign(0, 0).unwrap();
        c.assign(0, 10).unwrap();
        c.assign(3, 50).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join(CHECKPOINT_FILE)).unwrap(),
            "0\n2\n0 0\n3 50\n"
        );
        c.truncate_from_end(50).unwrap();
        let c = LeaderEpochCache::load(dir.path()).unwrap();
        assert_eq!(
            c.entries(),
            &[EpochEntry {
                epoch: 0,
                start_offset: 0
            }]
        );
    }

    #[test]
    fn malformed_is_an_error() {
        assert!(parse_checkpoint("1\n0\n", 2).is_err());
        assert!(parse_checkpoint("0\n2\n1 2\n", 2).is_err());
        assert!(parse_checkpoint("0\n1\n1 x\n", 2).is_err());
        assert_eq!(
            parse_named_checkpoint("0\n1\nmy topic 3 7\n", 2).unwrap(),
            vec![("my topic".into(), vec![3, 7])]
        );
    }
}
