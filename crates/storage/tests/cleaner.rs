//! Log compaction over real files.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use bytes::BytesMut;
use kafka_protocol::records::{Compression, RecordBatchDecoder};
use strand_protocol::batch::BatchError;
use strand_protocol::testing::{encode, record};
use strand_storage::cleaner::clean_now;
use strand_storage::{LogConfig, LogError, PartitionLog};

/// `(key, value or tombstone)` records in one batch, timestamps `ts`.
fn batch(records: &[(String, Option<String>)], ts: i64, compression: Compression) -> BytesMut {
    let records: Vec<_> = records
        .iter()
        .enumerate()
        .map(|(i, (k, v))| {
            record(
                i as i64,
                Some(k.clone().into()),
                v.clone().map(Into::into),
                ts,
            )
        })
        .collect();
    encode(&records, compression)
}

fn everything(log: &PartitionLog) -> Vec<(i64, String, Option<String>)> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while let Some(slice) = log
        .read(offset, 1 << 20, log.high_watermark(), true)
        .unwrap()
    {
        let mut bytes = slice.read().unwrap();
        let mut progressed = false;
        while !bytes.is_empty() {
            let Ok(set) = RecordBatchDecoder::decode(&mut bytes) else {
                break;
            };
            for r in set.records {
                if r.offset >= offset {
                    out.push((
                        r.offset,
                        String::from_utf8(r.key.unwrap().to_vec()).unwrap(),
                        r.value.map(|v| String::from_utf8(v.to_vec()).unwrap()),
                    ));
                    offset = r.offset + 1;
                    progressed = true;
                }
            }
        }
        if !progressed {
            break;
        }
    }
    out
}

#[test]
fn compaction_keeps_the_latest_value_per_key_and_drops_old_tombstones() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        compact_policy: true,
        delete_policy: false,
        segment_bytes: 16 << 10,
        delete_retention_ms: 1_000,
        ..LogConfig::default()
    };
    let (mut log, _) = PartitionLog::open(dir.path(), config, true, 0, 0).unwrap();
    let codecs = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];
    let mut latest: BTreeMap<String, (i64, Option<String>)> = BTreeMap::new();
    let mut offset = 0i64;
    // 10,000 updates over 100 keys, 20 per batch, codecs in turn; keys 0-9 end deleted.
    for b in 0..500 {
        let recs: Vec<(String, Option<String>)> = (0..20)
            .map(|i| {
                let n = b * 20 + i;
                let key = format!("key-{}", n % 100);
                let value = if n >= 9_900 && n % 100 < 10 {
                    None
                } else {
                    Some(format!("v{n}"))
                };
                (key, value)
            })
            .collect();
        for (k, v) in &recs {
            latest.insert(k.clone(), (offset, v.clone()));
            offset += 1;
        }
        log.append(&mut batch(&recs, 1_000, codecs[b % 5]), 0, 2_000)
            .unwrap();
    }
    // One more batch so the last update is in a closed segment too.
    log.roll(2_000).unwrap();
    log.append(
        &mut batch(
            &[("other".into(), Some("x".into()))],
            1_000,
            Compression::None,
        ),
        0,
        2_000,
    )
    .unwrap();
    log.update_high_watermark(log.log_end_offset());
    let before = log.size_bytes();
    let stats = clean_now(&mut log, 1_500).unwrap().expect("a pass ran");
    assert!(stats.records_dropped >= 9_800, "{stats:?}");
    assert!(
        log.size_bytes() < before / 10,
        "{} -> {}",
        before,
        log.size_bytes()
    );
    let after = everything(&log);
    // Exactly the latest record per key, at its original offset; tombstones still there.
    let want: Vec<(i64, String, Option<String>)> = {
        let mut v: Vec<_> = latest
            .iter()
            .map(|(k, (o, val))| (*o, k.clone(), val.clone()))
            .collect();
        v.push((10_000, "other".into(), Some("x".into())));
        v.sort();
        v
    };
    assert_eq!(after, want);
    // No new dirty data: nothing to do.
    assert!(clean_now(&mut log, 1_600).unwrap().is_none());
    // Once delete.retention.ms has passed, a new pass drops the tombstones.
    log.append(
        &mut batch(
            &[("key-50".into(), Some("new".into()))],
            3_000,
            Compression::Lz4,
        ),
        0,
        3_000,
    )
    .unwrap();
    log.roll(3_000).unwrap();
    log.update_high_watermark(log.log_end_offset());
    clean_now(&mut log, 5_000).unwrap().expect("a pass ran");
    let after = everything(&log);
    assert!(after.iter().all(|(_, _, v)| v.is_some()), "tombstones gone");
    assert_eq!(
        after
            .iter()
            .filter(|(_, k, _)| k.starts_with("key-"))
            .count(),
        90
    );
    assert_eq!(
        after
            .iter()
            .find(|(_, k, _)| k == "key-50")
            .map(|x| x.2.clone()),
        Some(Some("new".into()))
    );
    // Offsets keep increasing with gaps; appends continue after the log end.
    assert!(after.windows(2).all(|w| w[0].0 < w[1].0));
    let info = log
        .append(
            &mut batch(&[("z".into(), Some("z".into()))], 3_000, Compression::None),
            0,
            3_000,
        )
        .unwrap();
    assert_eq!(info.base_offset, 10_002);
    // And the whole thing survives a clean restart.
    log.close().unwrap();
    let (log, report) = PartitionLog::open(
        dir.path(),
        LogConfig {
            compact_policy: true,
            ..LogConfig::default()
        },
        true,
        10_003,
        0,
    )
    .unwrap();
    assert!(
        report.recovered.is_empty() && report.rebuilt_indexes.is_empty(),
        "{report:?}"
    );
    assert_eq!(everything(&log).len(), 92);
}

#[test]
fn compacted_topics_refuse_keyless_records() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        compact_policy: true,
        ..LogConfig::default()
    };
    let (mut log, _) = PartitionLog::open(dir.path(), config, true, 0, 0).unwrap();
    let mut b = batch(&[("k".into(), Some("v".into()))], 0, Compression::None);
    // Same batch shape without a key.
    let records = vec![record(0, None, Some("v".into()), 0)];
    let mut keyless = encode(&records, Compression::Zstd);
    let LogError::Records(refused) = log.append(&mut keyless, 0, 0).unwrap_err() else {
        panic!("a keyless record was not named")
    };
    assert_eq!(refused.errors[0].index, 0);
    assert!(!refused.invalid_timestamp);
    assert_eq!(log.append(&mut b, 0, 0).unwrap().base_offset, 0);
}

#[test]
fn a_decompression_bomb_is_refused_not_inflated() {
    // One record whose value is 300 MiB of zeros, zstd-compressed to a few KiB.
    let value_len: usize = 300 << 20;
    let mut record = Vec::new();
    let varint = |v: i64, out: &mut Vec<u8>| {
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        while z >= 0x80 {
            out.push((z as u8) | 0x80);
            z >>= 7;
        }
        out.push(z as u8);
    };
    let mut body = vec![0u8]; // attributes
    varint(0, &mut body); // timestamp delta
    varint(0, &mut body); // offset delta
    varint(1, &mut body); // key length
    body.push(b'k');
    varint(value_len as i64, &mut body);
    let tail_len = 1; // header count, after the value
    varint((body.len() + value_len + tail_len) as i64, &mut record);
    record.extend_from_slice(&body);
    let reader = std::io::Read::chain(
        std::io::Read::chain(
            &record[..],
            std::io::Read::take(std::io::repeat(0), value_len as u64),
        ),
        &[0u8][..],
    );
    let compressed = zstd::stream::encode_all(reader, 1).unwrap();
    let mut batch = vec![0u8; 61];
    batch[12..16].copy_from_slice(&(-1i32).to_be_bytes());
    batch[16] = 2;
    batch[21..23].copy_from_slice(&4i16.to_be_bytes()); // zstd
    batch[43..51].copy_from_slice(&(-1i64).to_be_bytes());
    batch[51..53].copy_from_slice(&(-1i16).to_be_bytes());
    batch[53..57].copy_from_slice(&(-1i32).to_be_bytes());
    batch[57..61].copy_from_slice(&1i32.to_be_bytes());
    batch.extend_from_slice(&compressed);
    let len = (batch.len() - 12) as i32;
    batch[8..12].copy_from_slice(&len.to_be_bytes());
    let crc = strand_protocol::batch::compute_crc(&batch);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());

    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        compact_policy: true,
        ..LogConfig::default()
    };
    let (mut log, _) = PartitionLog::open(dir.path(), config, true, 0, 0).unwrap();
    let err = log.append(&mut batch, 0, 0).unwrap_err();
    assert!(
        matches!(
            err,
            LogError::InvalidBatch(BatchError::InvalidRecord { .. })
        ),
        "{err}"
    );
    assert_eq!(log.log_end_offset(), 0);
}
