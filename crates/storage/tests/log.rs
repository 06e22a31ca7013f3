//! Partition log behaviour over real files.

#![allow(clippy::unwrap_used)] // tests

use bytes::BytesMut;
use kafka_protocol::records::{Compression, RecordBatchDecoder, TimestampType as Tt};
use strand_protocol::batch::BatchError;
use strand_protocol::testing::{encode, record};
use strand_storage::{LogConfig, LogError, PartitionLog, TimestampType};

fn batch(n: usize, ts0: i64, compression: Compression) -> BytesMut {
    let records: Vec<_> = (0..n)
        .map(|i| {
            record(
                i as i64,
                Some(format!("key-{i}").into()),
                Some(vec![b'v'; 100].into()),
                ts0 + i as i64,
            )
        })
        .collect();
    encode(&records, compression)
}

fn small_segments() -> LogConfig {
    LogConfig {
        segment_bytes: 4096,
        index_interval_bytes: 512,
        ..LogConfig::default()
    }
}

fn read_all(log: &PartitionLog) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while let Some(slice) = log
        .read(offset, 1 << 20, log.high_watermark(), true)
        .unwrap()
    {
        let mut bytes = slice.read().unwrap();
        while let Ok(set) = RecordBatchDecoder::decode(&mut bytes) {
            for r in set.records {
                out.push((r.offset, r.timestamp));
                offset = r.offset + 1;
            }
            if bytes.is_empty() {
                break;
            }
        }
    }
    out
}

#[test]
fn append_assigns_offsets_and_reads_back_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = PartitionLog::open(dir.path(), small_segments(), true, 0, 0).unwrap();
    for i in 0..40 {
        let mut b = batch(5, 1000 + i * 10, Compression::None);
        let info = log.append(&mut b, 3, 0).unwrap();
        assert_eq!((info.base_offset, info.last_offset), (i * 5, i * 5 + 4));
    }
    log.update_high_watermark(log.log_end_offset());
    assert!(log.segment_count() > 3, "segments roll by segment.bytes");
    let records = read_all(&log);
    assert_eq!(records.len(), 200);
    assert!(records.iter().enumerate().all(|(i, (o, _))| *o == i as i64));
    assert_eq!(log.epochs().entries().len(), 1);
    // A fetch in the middle of a batch starts at that batch.
    let s = log.read(7, 1 << 20, 200, true).unwrap().unwrap();
    let b = RecordBatchDecoder::decode(&mut s.read().unwrap()).unwrap();
    assert_eq!(b.records[0].offset, 5);
    // Nothing at or past the bound.
    assert!(log.read(200, 1 << 20, 200, true).unwrap().is_none());
    assert!(log.read(10, 1 << 20, 10, true).unwrap().is_none());
    assert!(matches!(
        log.read(201, 100, 201, true),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    // max_bytes cuts, but min-one-batch gives a whole first batch.
    let s = log.read(0, 10, 200, true).unwrap().unwrap();
    assert!(s.len > 10);
    let s = log.read(0, 10, 200, false).unwrap().unwrap();
    assert_eq!(s.len, 10);
}

#[test]
fn clean_reopen_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = PartitionLog::open(dir.path(), small_segments(), true, 0, 0).unwrap();
    for i in 0..30 {
        log.append(&mut batch(3, i, Compression::None), 0, 0)
            .unwrap();
    }
    log.close().unwrap();
    let (log, report) = PartitionLog::open(dir.path(), small_segments(), true, 90, 0).unwrap();
    assert!(
        report.recovered.is_empty() && report.rebuilt_indexes.is_empty(),
        "{report:?}"
    );
    assert_eq!(log.log_end_offset(), 90);
    assert_eq!(read_all(&log).len(), 90);
}

#[test]
fn unclean_reopen_truncates_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = PartitionLog::open(dir.path(), LogConfig::default(), true, 0, 0).unwrap();
    for i in 0..10 {
        log.append(&mut batch(4, i, Compression::None), 0, 0)
            .unwrap();
    }
    drop(log); // no flush, no index write: a crash
    let seg = dir.path().join("00000000000000000000.log");
    let len = std::fs::metadata(&seg).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    f.set_len(len - 7).unwrap();
    let (log, report) = PartitionLog::open(dir.path(), LogConfig::default(), false, 0, 0).unwrap();
    assert_eq!(log.log_end_offset(), 36);
    assert!(report.truncated_bytes() > 0);
    assert!(report.recovered[0]
        .reason
        .as_deref()
        .unwrap()
        .contains("torn"));
    assert_eq!(read_all(&log).len(), 36);
}

#[test]
fn unclean_reopen_cuts_at_a_corrupt_batch_and_drops_later_segments() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = PartitionLog::open(dir.path(), small_segments(), true, 0, 0).unwrap();
    for i in 0..40 {
        log.append(&mut batch(5, i, Compression::None), 0, 0)
            .unwrap();
    }
    assert!(log.segment_count() >= 3);
    drop(log);
    // Flip a byte in the middle of the first segment.
    let seg = dir.path().join("00000000000000000000.log");
    let mut bytes = std::fs::read(&seg).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&seg, &bytes).unwrap();
    let (log, report) = PartitionLog::open(dir.path(), small_segments(), false, 0, 0).unwrap();
    assert!(report.recovered[0].reason.is_some(), "{report:?}");
    assert!(!report.dropped_segments.is_empty());
    assert_eq!(log.segment_count(), 1);
    let records = read_all(&log);
    assert_eq!(records.len() as i64, log.log_end_offset());
    assert!(log.log_end_offset() < 200 && log.log_end_offset() > 0);
}

#[test]
fn corrupt_index_is_rebuilt_on_clean_open() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = PartitionLog::open(dir.path(), small_segments(), true, 0, 0).unwrap();
    for i in 0..6 {
        log.append(&mut batch(5, i, Compression::None), 0, 0)
            .unwrap();
    }
    log.close().unwrap();
    std::fs::write(
        dir.path().join("00000000000000000000.index"),
        [0xde, 0xad, 0xbe],
    )
    .unwrap();
    let (log, report) = PartitionLog::open(dir.path(), small_segments(), true, 30, 0).unwrap();
    assert_eq!(report.rebuilt_indexes.len(), 1, "{report:?}");
    assert_eq!(log.log_end_offset(), 30);
    assert_eq!(read_all(&log).len(), 30);
}

#[test]
fn offsets_by_timestamp_look_inside_compressed_batches() {
    for c in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = PartitionLog::open(dir.path(), small_segments(), true, 0, 0).unwrap();
        for i in 0..20 {
            log.append(&mut batch(10, 10_000 + i * 100, c), 0, 0)
                .unwrap();
        }
        // Batch i holds timestamps 10_000 + 100 i .. + 9, offsets 10 i .. 10 i + 9.
        assert_eq!(log.offset_for_timestamp(0).unwrap(), Some((0, 10_000)));
        assert_eq!(
            log.offset_for_timestamp(10_505).unwrap(),
            Some((55, 10_505))
        );
        assert_eq!(
            log.offset_for_timestamp(10_510).unwrap(),
            Some((60, 10_600))
        );
        assert_eq!(log.offset_for_timestamp(99_999).unwrap(), None);
        assert_eq!(log.max_timestamp().unwrap(), Some((199, 11_909)));
    }
}

#[test]
fn log_append_time_stamps_batches() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        timestamp_type: TimestampType::LogAppendTime,
        ..LogConfig::default()
    };
    let (mut log, _) = PartitionLog::open(dir.path(), config, true, 0, 0).unwrap();
    let info = log
        .append(&mut batch(3, 5, Compression::Lz4), 0, 777)
        .unwrap();
    assert_eq!(info.log_append_time_ms, 777);
    log.update_high_watermark(3);
    let s = log.read(0, 1 << 20, 3, true).unwrap().unwrap();
    let set = RecordBatchDecoder::decode(&mut s.read().unwrap()).unwrap();
    assert!(set
        .records
        .iter()
        .all(|r| r.timestamp_type == Tt::LogAppend));
    assert_eq!(log.offset_for_timestamp(700).unwrap(), Some((0, 777)));
}

#[test]
fn invalid_batches_append_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = PartitionLog::open(dir.path(), LogConfig::default(), true, 0, 0).unwrap();
    let mut good = batch(2, 0, Compression::None);
    let mut bad = good.clone();
    let n = bad.len();
    bad[n - 1] ^= 1;
    let mut both = good.clone();
    both.extend_from_slice(&bad);
    let err = log.append(&mut both, 0, 0).unwrap_err();
    assert!(
        matches!(err, LogError::InvalidBatch(BatchError::CrcMismatch { .. })),
        "{err}"
    );
    assert_eq!(log.log_end_offset(), 0);
    assert_eq!(log.size_bytes(), 0);
    log.append(&mut good, 0, 0).unwrap();
    assert_eq!(log.log_end_offset(), 2);
}

#[test]
fn fsync_bookkeeping() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = PartitionLog::open(dir.path(), small_segments(), true, 0, 0).unwrap();
    assert!(log.sync_target().is_none());
    log.append(&mut batch(2, 0, Compression::None), 0, 0)
        .unwrap();
    let t = log.sync_target().unwrap();
    assert_eq!(t.end_offset, 2);
    for f in &t.files {
        f.sync_data().unwrap();
    }
    log.mark_flushed(t.end_offset);
    assert_eq!(log.recovery_point(), 2);
    assert!(log.sync_target().is_none());
}

fn lifecycle_config() -> LogConfig {
    LogConfig {
        segment_bytes: 2048,
        index_interval_bytes: 256,
        file_delete_delay_ms: 1_000,
        ..LogConfig::default()
    }
}

#[test]
fn retention_by_time_deletes_old_closed_segments_and_keeps_the_active_one() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_ms: 2_000,
        ..lifecycle_config()
    };
    let (mut log, _) = PartitionLog::open(dir.path(), config, true, 0, 0).unwrap();
    for i in 0..40 {
        log.append(&mut batch(5, 10_000 + i, Compression::None), 0, 0)
            .unwrap();
    }
    log.update_high_watermark(log.log_end_offset());
    let segments = log.segment_count();
    assert!(segments > 3);
    // Nothing is older than 2 s at t = 11 s.
    assert_eq!(log.apply_retention(11_000).unwrap().segments, 0);
    // At t = 100 s every closed segment is; the active one stays.
    let out = log.apply_retention(100_000).unwrap();
    assert_eq!(out.segments, segments - 1);
    assert_eq!(log.segment_count(), 1);
    assert!(log.log_start_offset() > 0);
    assert!(matches!(
        log.read(0, 1 << 20, 200, true),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert_eq!(
        read_all(&log).first().map(|r| r.0),
        Some(log.log_start_offset())
    );
    // Files linger as .deleted until file.delete.delay.ms is over.
    let deleted = || {
        std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".deleted")
            })
            .count()
    };
    assert!(deleted() > 0);
    log.purge_deleted(100_500);
    assert!(deleted() > 0);
    log.purge_deleted(101_001);
    assert_eq!(deleted(), 0);
}

#[test]
fn retention_by_size_and_compact_only_topics() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_bytes: 4096,
        retention_ms: -1,
        ..lifecycle_config()
    };
    let (mut log, _) = PartitionLog::open(dir.path(), config.clone(), true, 0, 0).unwrap();
    for i in 0..60 {
        log.append(&mut batch(5, i, Compression::None), 0, 0)
            .unwrap();
    }
    log.apply_retention(0).unwrap();
    assert!(log.size_bytes() <= 4096 + 2048, "size {}", log.size_bytes());
    assert!(log.segment_count() >= 2);

    let dir = tempfile::tempdir().unwrap();
    let compact_only = LogConfig {
        delete_policy: false,
        compact_policy: true,
        retention_ms: 1,
        ..lifecycle_config()
    };
    let (mut log, _) = PartitionLog::open(dir.path(), compact_only, true, 0, 0).unwrap();
    for i in 0..40 {
        log.append(&mut batch(5, i, Compression::None), 0, 0)
            .unwrap();
    }
    assert_eq!(
        log.apply_retention(1_000_000).unwrap().segments,
        0,
        "retention does not apply to compact-only topics"
    );
}

#[test]
fn delete_records_moves_the_log_start_never_past_the_high_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = PartitionLog::open(dir.path(), lifecycle_config(), true, 0, 0).unwrap();
    for i in 0..40 {
        log.append(&mut batch(5, i, Compression::None), 0, 0)
            .unwrap();
    }
    log.update_high_watermark(150);
    assert!(log.delete_records(151, 0).is_err());
    assert_eq!(log.delete_records(77, 0).unwrap(), 77);
    assert_eq!(log.log_start_offset(), 77);
    assert!(matches!(
        log.read(76, 1 << 20, 150, true),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert!(log.read(77, 1 << 20, 150, true).unwrap().is_some());
    assert!(log.delete_records(10, 0).unwrap() == 77, "never moves back");
    assert_eq!(log.delete_records(-1, 0).unwrap(), 150);
}

#[test]
fn a_flipped_bit_in_a_cleanly_closed_segment_is_never_served() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = PartitionLog::open(dir.path(), LogConfig::default(), true, 0, 0).unwrap();
    let mut sizes = Vec::new();
    for i in 0..10 {
        let mut b = batch(4, i, Compression::None);
        sizes.push(b.len());
        log.append(&mut b, 0, 0).unwrap();
    }
    log.close().unwrap();
    // Flip a byte inside the 6th batch's records (offsets 20..23).
    let seg = dir.path().join("00000000000000000000.log");
    let mut bytes = std::fs::read(&seg).unwrap();
    let at: usize = sizes[..5].iter().sum::<usize>() + sizes[5] - 3;
    bytes[at] ^= 0x01;
    std::fs::write(&seg, &bytes).unwrap();
    // A clean open trusts the indexes; the bad batch is caught when it is read.
    let (log, report) = PartitionLog::open(dir.path(), LogConfig::default(), true, 40, 0).unwrap();
    assert!(report.recovered.is_empty());
    let s = log.read(0, 1 << 20, 40, true).unwrap().unwrap();
    assert_eq!(
        s.len,
        sizes[..5].iter().sum::<usize>(),
        "served up to the corrupt batch only"
    );
    let err = log.read(20, 1 << 20, 40, true).unwrap_err();
    assert!(matches!(err, LogError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("offset 20"), "{err}");
    assert!(
        log.read(24, 1 << 20, 40, true).unwrap().is_some(),
        "later batches are still readable"
    );
}

#[test]
fn missing_indexes_are_rebuilt_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = PartitionLog::open(dir.path(), small_segments(), true, 0, 0).unwrap();
    for i in 0..30 {
        log.append(&mut batch(5, i, Compression::None), 0, 0)
            .unwrap();
    }
    log.close().unwrap();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path
            .extension()
            .is_some_and(|e| e == "index" || e == "timeindex")
        {
            std::fs::remove_file(path).unwrap();
        }
    }
    let (log, report) = PartitionLog::open(dir.path(), small_segments(), true, 150, 0).unwrap();
    assert_eq!(
        report.rebuilt_indexes.len(),
        log.segment_count(),
        "{report:?}"
    );
    assert_eq!(log.log_end_offset(), 150);
    assert_eq!(read_all(&log).len(), 150);
    // Batch i holds timestamps i..i+4 at offsets 5i..5i+4: timestamp 20 first appears at 84.
    assert_eq!(
        log.offset_for_timestamp(20).unwrap().map(|(o, _)| o),
        Some(84)
    );
    assert!(
        dir.path().join("00000000000000000000.index").exists(),
        "rewritten"
    );
}

/// Reads near the tail are answered from the segment's memory of its last appends; they must
/// find exactly the bytes a scan of the file finds after a reopen (which starts with none).
#[test]
fn reads_from_the_recent_appends_match_reads_from_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        index_interval_bytes: 1024,
        ..LogConfig::default()
    };
    let (mut log, _) = PartitionLog::open(dir.path(), config.clone(), true, 0, 0).unwrap();
    // 40 batches of 3 records: more than the segment remembers, so both paths are taken.
    for i in 0..40 {
        log.append(&mut batch(3, 1000 + i, Compression::None), 0, 0)
            .unwrap();
    }
    log.update_high_watermark(log.log_end_offset());
    let ranges = |log: &PartitionLog| {
        let mut out = Vec::new();
        for offset in 0..=log.log_end_offset() {
            // Bounded by the log end, and by an offset inside a batch (end_position_before).
            for bound in [log.log_end_offset(), offset + 4] {
                let got = log.read(offset, 1 << 20, bound, true).unwrap();
                out.push(got.map(|s| (s.position, s.len)));
            }
        }
        out
    };
    let from_memory = ranges(&log);
    log.close().unwrap();
    let (reopened, _) = PartitionLog::open(dir.path(), config, true, 120, 0).unwrap();
    assert_eq!(reopened.log_end_offset(), 120);
    assert_eq!(from_memory, ranges(&reopened));
    assert!(from_memory.iter().filter(|r| r.is_some()).count() > 200);
}
