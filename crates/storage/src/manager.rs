//! The log directories of a broker: which partitions they hold, whether the last stop was
//! clean, and the recovery-point checkpoint that bounds how much a restart must scan.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::config::LogConfig;
use crate::epoch::{parse_named_checkpoint, write_checkpoint};
use crate::error::{LogError, Result};
use crate::log::{OpenReport, PartitionLog};

/// Present in a log dir only while the broker that wrote it is stopped after a clean shutdown.
pub const CLEAN_SHUTDOWN_FILE: &str = ".kafka_cleanshutdown";
pub const RECOVERY_POINT_FILE: &str = "recovery-point-offset-checkpoint";
pub const LOG_START_FILE: &str = "log-start-offset-checkpoint";

/// One partition's line in the log dir checkpoints.
#[derive(Debug, Clone)]
pub struct CheckpointEntry {
    pub topic: String,
    pub partition: i32,
    pub recovery_point: i64,
    pub log_start_offset: i64,
    /// The partition's directory (its parent is the log dir).
    pub dir: PathBuf,
}

/// A partition directory found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundPartition {
    pub topic: String,
    pub partition: i32,
    pub dir: PathBuf,
}

#[derive(Debug)]
pub struct LogManager {
    dirs: Vec<PathBuf>,
    clean: HashMap<PathBuf, bool>,
    recovery_points: HashMap<(String, i32), i64>,
    log_starts: HashMap<(String, i32), i64>,
}

/// Reads a `topic partition offset` checkpoint; a corrupt one is reported and ignored (the
/// caller then falls back to the safe default).
fn read_offsets(path: &Path, into: &mut HashMap<(String, i32), i64>) -> Result<()> {
    match std::fs::read_to_string(path) {
        Ok(text) => match parse_named_checkpoint(&text, 2) {
            Ok(entries) => {
                for (topic, nums) in entries {
                    into.insert((topic, nums[0] as i32), nums[1]);
                }
            }
            Err(reason) => {
                tracing::warn!(path = %path.display(), %reason, "ignoring corrupt checkpoint")
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(LogError::io(path)(e)),
    }
    Ok(())
}

/// `topic-partition` directory name for a partition.
pub fn partition_dir_name(topic: &str, partition: i32) -> String {
    format!("{topic}-{partition}")
}

impl LogManager {
    /// Opens the log dirs, creating them if needed. Notes which were shut down cleanly and
    /// removes the marker, so that a crash from here on is seen as one.
    pub fn open(dirs: Vec<PathBuf>) -> Result<Self> {
        let mut clean = HashMap::new();
        let mut recovery_points = HashMap::new();
        let mut log_starts = HashMap::new();
        for dir in &dirs {
            std::fs::create_dir_all(dir).map_err(LogError::io(dir))?;
            let marker = dir.join(CLEAN_SHUTDOWN_FILE);
            let was_clean = marker.exists();
            if was_clean {
                std::fs::remove_file(&marker).map_err(LogError::io(&marker))?;
            }
            clean.insert(dir.clone(), was_clean);
            read_offsets(&dir.join(RECOVERY_POINT_FILE), &mut recovery_points)?;
            read_offsets(&dir.join(LOG_START_FILE), &mut log_starts)?;
        }
        Ok(Self {
            dirs,
            clean,
            recovery_points,
            log_starts,
        })
    }

    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// Partition directories in all log dirs. Leftovers of deletions are removed.
    pub fn discover(&self) -> Result<Vec<FoundPartition>> {
        let mut found = Vec::new();
        for dir in &self.dirs {
            for entry in std::fs::read_dir(dir).map_err(LogError::io(dir))? {
                let entry = entry.map_err(LogError::io(dir))?;
                if !entry
                    .file_type()
                    .map_err(LogError::io(entry.path()))?
                    .is_dir()
                {
                    continue;
                }
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.ends_with("-delete") {
                    let _ = std::fs::remove_dir_all(entry.path());
                    continue;
                }
                let Some((topic, partition)) = name.rsplit_once('-') else {
                    continue;
                };
                let Ok(partition) = partition.parse::<i32>() else {
                    continue;
                };
                found.push(FoundPartition {
                    topic: topic.to_owned(),
                    partition,
                    dir: entry.path(),
                });
            }
        }
        found.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        Ok(found)
    }

    /// Opens the log of a partition found on disk (recovering it if the stop was unclean).
    pub fn open_log(
        &self,
        found: &FoundPartition,
        config: LogConfig,
        now_ms: i64,
    ) -> Result<(PartitionLog, OpenReport)> {
        let parent = found.dir.parent().unwrap_or(Path::new("."));
        let clean = self.clean.get(parent).copied().unwrap_or(false);
        let recovery_point = self
            .recovery_points
            .get(&(found.topic.clone(), found.partition))
            .copied()
            .unwrap_or(0);
        let key = (found.topic.clone(), found.partition);
        let (mut log, report) =
            PartitionLog::open(&found.dir, config, clean, recovery_point, now_ms)?;
        if let Some(start) = self.log_starts.get(&key) {
            log.set_log_start_offset(*start, now_ms)?;
        }
        Ok((log, report))
    }

    /// Creates the log of a new partition in the log dir holding the fewest partitions.
    pub fn create_log(
        &self,
        topic: &str,
        partition: i32,
        config: LogConfig,
        now_ms: i64,
    ) -> Result<PartitionLog> {
        let mut best: Option<(usize, &PathBuf)> = None;
        for dir in &self.dirs {
            let n = std::fs::read_dir(dir).map_err(LogError::io(dir))?.count();
            if best.is_none_or(|(m, _)| n < m) {
                best = Some((n, dir));
            }
        }
        let dir = best
            .map(|(_, d)| d)
            .ok_or_else(|| LogError::Offline("no log.dirs configured".into()))?;
        let path = dir.join(partition_dir_name(topic, partition));
        if path.exists() {
            // A directory left over from a topic of the same name: its data is not ours.
            let doomed = path.with_file_name(format!(
                "{}.{}-delete",
                partition_dir_name(topic, partition),
                uuid::Uuid::new_v4().simple()
            ));
            std::fs::rename(&path, &doomed).map_err(LogError::io(&path))?;
            let _ = std::fs::remove_dir_all(&doomed);
        }
        let (log, _) = PartitionLog::open(&path, config, true, 0, now_ms)?;
        Ok(log)
    }

    /// Writes both checkpoints (recovery points, log start offsets) of every log dir.
    pub fn write_checkpoints(&self, entries: &[CheckpointEntry]) -> Result<()> {
        let mut per_dir: HashMap<&Path, (Vec<String>, Vec<String>)> = self
            .dirs
            .iter()
            .map(|d| (d.as_path(), Default::default()))
            .collect();
        for e in entries {
            if let Some((points, starts)) = e.dir.parent().and_then(|p| per_dir.get_mut(p)) {
                points.push(format!("{} {} {}", e.topic, e.partition, e.recovery_point));
                starts.push(format!(
                    "{} {} {}",
                    e.topic, e.partition, e.log_start_offset
                ));
            }
        }
        for (dir, (points, starts)) in per_dir {
            write_checkpoint(&dir.join(RECOVERY_POINT_FILE), &points)?;
            write_checkpoint(&dir.join(LOG_START_FILE), &starts)?;
        }
        Ok(())
    }

    /// Marks every log dir as cleanly shut down. Call last, after every log is closed.
    pub fn mark_clean_shutdown(&self) -> Result<()> {
        for dir in &self.dirs {
            let marker = dir.join(CLEAN_SHUTDOWN_FILE);
            std::fs::write(&marker, b"").map_err(LogError::io(&marker))?;
        }
        Ok(())
    }
}
