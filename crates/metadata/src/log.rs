//! The metadata log on disk, with snapshots.
//!
//! `metadata.log` holds frames `[length u32][crc32c u32][offset i64][record as JSON]`, fsynced
//! on every append (metadata changes are rare and must not be lost). When enough records pile
//! up, the image is written to `metadata.snapshot` as the records that rebuild it, and the log
//! starts over. Opening replays the snapshot, then the log; a torn or corrupt tail (a crash in
//! the middle of an append) is cut off and reported.
//!
//! The Raft quorum that arrives with clustering replicates exactly these records.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::image::MetadataImage;
use crate::record::{ConfigResource, MetadataRecord};

const LOG_FILE: &str = "metadata.log";
const SNAPSHOT_FILE: &str = "metadata.snapshot";
const FRAME_HEADER_BYTES: usize = 16;
/// A metadata record larger than this is not one Strand wrote.
const RECORD_BYTES_MAX: usize = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum MetadataLogError {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("corrupt metadata snapshot {path}: {reason}")]
    CorruptSnapshot { path: PathBuf, reason: String },
    #[error("cannot encode metadata record: {0}")]
    Encode(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> MetadataLogError + '_ {
    move |source| MetadataLogError::Io {
        path: path.to_owned(),
        source,
    }
}

#[derive(Serialize, Deserialize)]
struct Snapshot {
    offset: i64,
    records: Vec<MetadataRecord>,
}

/// What opening the log found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    pub snapshot_offset: Option<i64>,
    pub records_replayed: usize,
    pub truncated_bytes: u64,
    pub truncation_reason: Option<String>,
}

#[derive(Debug)]
pub struct MetadataLog {
    dir: PathBuf,
    file: File,
    next_offset: i64,
    records_in_log: usize,
    snapshot_after_records: usize,
}

impl MetadataLog {
    /// Opens the log in `dir`, returning it with the image it holds.
    pub fn open(
        dir: &Path,
        snapshot_after_records: usize,
    ) -> Result<(Self, MetadataImage, ReplayReport), MetadataLogError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let mut report = ReplayReport::default();
        let mut image = MetadataImage::empty();
        let snap_path = dir.join(SNAPSHOT_FILE);
        match std::fs::read(&snap_path) {
            Ok(bytes) => {
                let snap: Snapshot = serde_json::from_slice(&bytes).map_err(|e| {
                    MetadataLogError::CorruptSnapshot {
                        path: snap_path.clone(),
                        reason: e.to_string(),
                    }
                })?;
                for r in &snap.records {
                    image = image.apply(snap.offset, r);
                }
                image.offset = snap.offset;
                report.snapshot_offset = Some(snap.offset);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&snap_path)(e)),
        }
        let log_path = dir.join(LOG_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&log_path)
            .map_err(io(&log_path))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io(&log_path))?;
        let mut pos = 0usize;
        let mut records_in_log = 0;
        while pos < bytes.len() {
            match parse_frame(&bytes[pos..]) {
                Ok((offset, record, len)) => {
                    if offset > image.offset {
                        image = image.apply(offset, &record);
                        report.records_replayed += 1;
                    }
                    records_in_log += 1;
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
        let log = Self {
            dir: dir.to_owned(),
            file,
            next_offset: image.offset + 1,
            records_in_log,
            snapshot_after_records,
        };
        Ok((log, image, report))
    }

    /// Appends `records` durably and returns the image after them.
    pub fn append(
        &mut self,
        image: &MetadataImage,
        records: &[MetadataRecord],
    ) -> Result<MetadataImage, MetadataLogError> {
        let mut buf = Vec::new();
        let mut next = image.clone();
        for r in records {
            let offset = self.next_offset;
            let json =
                serde_json::to_vec(r).map_err(|e| MetadataLogError::Encode(e.to_string()))?;
            let mut body = Vec::with_capacity(8 + json.len());
            body.extend_from_slice(&offset.to_be_bytes());
            body.extend_from_slice(&json);
            buf.extend_from_slice(&(body.len() as u32).to_be_bytes());
            buf.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
            buf.extend_from_slice(&body);
            next = next.apply(offset, r);
            self.next_offset += 1;
        }
        let path = self.dir.join(LOG_FILE);
        self.file.write_all(&buf).map_err(io(&path))?;
        self.file.sync_data().map_err(io(&path))?;
        self.records_in_log += records.len();
        if self.records_in_log >= self.snapshot_after_records {
            self.snapshot(&next)?;
        }
        Ok(next)
    }

    /// Writes `image` as a snapshot and empties the log.
    pub fn snapshot(&mut self, image: &MetadataImage) -> Result<(), MetadataLogError> {
        let snap = Snapshot {
            offset: image.offset,
            records: image_records(image),
        };
        let bytes =
            serde_json::to_vec(&snap).map_err(|e| MetadataLogError::Encode(e.to_string()))?;
        let path = self.dir.join(SNAPSHOT_FILE);
        let tmp = self.dir.join(format!("{SNAPSHOT_FILE}.tmp"));
        let mut f = File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(&bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        let log_path = self.dir.join(LOG_FILE);
        self.file.set_len(0).map_err(io(&log_path))?;
        self.file.sync_all().map_err(io(&log_path))?;
        self.records_in_log = 0;
        Ok(())
    }
}

fn parse_frame(b: &[u8]) -> Result<(i64, MetadataRecord, usize), String> {
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
    let record =
        serde_json::from_slice(&body[8..]).map_err(|e| format!("undecodable record: {e}"))?;
    Ok((i64::from_be_bytes(off), record, 8 + len))
}

/// The records that rebuild `image` from nothing.
pub fn image_records(image: &MetadataImage) -> Vec<MetadataRecord> {
    let mut out = Vec::new();
    for b in image.brokers.values() {
        out.push(MetadataRecord::RegisterBroker {
            node_id: b.node_id,
            host: b.host.clone(),
            port: b.port,
            rack: b.rack.clone(),
        });
    }
    for t in image.topics.values() {
        out.push(MetadataRecord::CreateTopic {
            name: t.name.clone(),
            topic_id: t.id,
            partitions: t.partitions.clone(),
            configs: t.configs.clone(),
        });
    }
    if image.next_producer_id > 0 {
        out.push(MetadataRecord::ProducerIds {
            broker_id: -1,
            next_producer_id: image.next_producer_id,
        });
    }
    for (node, configs) in &image.broker_configs {
        for (k, v) in configs {
            out.push(MetadataRecord::SetConfig {
                resource: ConfigResource::Broker(*node),
                key: k.clone(),
                value: Some(v.clone()),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::PartitionRecord;
    use uuid::Uuid;

    fn create(name: &str, n: u128) -> MetadataRecord {
        MetadataRecord::CreateTopic {
            name: name.into(),
            topic_id: Uuid::from_u128(n),
            partitions: vec![PartitionRecord {
                partition: 0,
                replicas: vec![1],
                isr: vec![1],
                leader: 1,
                leader_epoch: 0,
            }],
            configs: Default::default(),
        }
    }

    #[test]
    fn replay_after_reopen_and_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, mut image, _) = MetadataLog::open(dir.path(), 3).unwrap();
        for i in 0..5u128 {
            image = log
                .append(&image, &[create(&format!("t{i}"), i + 1)])
                .unwrap();
        }
        image = log
            .append(
                &image,
                &[MetadataRecord::DeleteTopic {
                    topic_id: Uuid::from_u128(2),
                }],
            )
            .unwrap();
        drop(log);
        let (_, replayed, report) = MetadataLog::open(dir.path(), 3).unwrap();
        assert_eq!(report.snapshot_offset, Some(5)); // snapshots after offsets 2 and 5
        assert_eq!(
            replayed.topics.keys().collect::<Vec<_>>(),
            vec!["t0", "t2", "t3", "t4"]
        );
        assert_eq!(replayed.offset, image.offset);
        assert_eq!(replayed, image);
    }

    #[test]
    fn torn_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, mut image, _) = MetadataLog::open(dir.path(), 1000).unwrap();
        image = log
            .append(&image, &[create("a", 1), create("b", 2)])
            .unwrap();
        drop(log);
        let path = dir.path().join(LOG_FILE);
        let len = std::fs::metadata(&path).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 3)
            .unwrap();
        let (mut log, replayed, report) = MetadataLog::open(dir.path(), 1000).unwrap();
        assert!(report.truncated_bytes > 0);
        assert!(replayed.topic("a").is_some() && replayed.topic("b").is_none());
        // Appending continues at the right offset.
        let after = log.append(&replayed, &[create("c", 3)]).unwrap();
        assert_eq!(after.offset, 1);
        let _ = image;
    }
}
