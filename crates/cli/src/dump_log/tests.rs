//! Unit tests over segments built in memory: every codec, every truncation and byte flip, and
//! headers crafted (with valid CRCs) to overflow or over-allocate.

#![allow(clippy::unwrap_used)]

use super::batch::sequence_after;
use super::*;
use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use strand_protocol::batch::{compute_crc, BATCH_HEADER_BYTES};

fn batch(base: i64, n: usize, compression: Compression) -> BytesMut {
    let records: Vec<Record> = (0..n)
        .map(|i| {
            let mut headers = kafka_protocol::indexmap::IndexMap::new();
            headers.insert("h".into(), Some(Bytes::from(format!("v{i}"))));
            Record {
                transactional: false,
                control: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: base + i as i64,
                sequence: i as i32,
                timestamp: 1_000 + i as i64,
                key: Some(format!("k{i}").into()),
                value: Some(format!("value-{i}").into()),
                headers,
                delete_horizon: false,
            }
        })
        .collect();
    let mut buf = BytesMut::new();
    let opts = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &opts).unwrap();
    buf
}

const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

fn segment() -> Vec<u8> {
    let mut seg = Vec::new();
    let mut base = 0;
    for c in CODECS {
        seg.extend_from_slice(&batch(base, 3, c));
        base += 3;
    }
    seg
}

fn dump(dir: &Path, name: &str, bytes: &[u8], print: bool) -> (bool, String) {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    let args = Args {
        files: vec![path],
        print_data_log: print,
        deep_iteration: false,
        verify_index_only: false,
        index_sanity_check: false,
        max_bytes: None,
        output: Output::Text,
    };
    let mut out = Vec::new();
    let ok = run(&args, &mut out).unwrap();
    (ok, String::from_utf8(out).unwrap())
}

#[test]
fn decodes_all_codecs() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out) = dump(dir.path(), "00000000000000000000.log", &segment(), true);
    assert!(ok, "{out}");
    let records: Vec<&str> = out.lines().filter(|l| l.starts_with("| offset:")).collect();
    assert_eq!(records.len(), 15, "{out}");
    for (i, line) in records.iter().enumerate() {
        assert!(line.starts_with(&format!("| offset: {i} ")), "{line}");
        assert!(
            line.ends_with(&format!("key: k{} payload: value-{}", i % 3, i % 3)),
            "{line}"
        );
    }
}

/// Every truncation and every single-byte change of a segment is reported, never a panic.
#[test]
fn survives_every_truncation_and_flip() {
    let dir = tempfile::tempdir().unwrap();
    let seg = segment();
    let mut boundaries = vec![0];
    let mut base = 0;
    for c in CODECS {
        let end = boundaries[boundaries.len() - 1] + batch(base, 3, c).len();
        boundaries.push(end);
        base += 3;
    }
    assert_eq!(boundaries[5], seg.len());
    for n in 0..seg.len() {
        let (ok, out) = dump(dir.path(), "00000000000000000000.log", &seg[..n], true);
        assert_eq!(ok, boundaries.contains(&n), "{n}: {out}");
        if !ok {
            assert!(out.contains("invalid bytes at the end"), "{n}: {out}");
        }
    }
    for at in 0..seg.len() {
        for mask in [0x01u8, 0x80, 0xff] {
            let mut c = seg.clone();
            c[at] ^= mask;
            let (_, out) = dump(dir.path(), "00000000000000000000.log", &c, true);
            assert!(out.contains("Summary:"), "{at}: {out}");
        }
    }
}

#[test]
fn crafted_headers_with_valid_crcs_do_not_overflow_or_overallocate() {
    let dir = tempfile::tempdir().unwrap();
    let reseal = |b: &mut BytesMut| {
        let crc = compute_crc(b);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
    };
    // A huge record count.
    let mut b = batch(0, 2, Compression::None);
    b[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
    reseal(&mut b);
    let (ok, out) = dump(dir.path(), "00000000000000000000.log", &b, true);
    assert!(!ok && out.contains("cannot fit"), "{out}");
    // Base offset and timestamp at the top of the range: deltas would overflow.
    let mut b = batch(0, 2, Compression::Gzip);
    b[0..8].copy_from_slice(&i64::MAX.to_be_bytes());
    b[27..35].copy_from_slice(&i64::MAX.to_be_bytes());
    reseal(&mut b);
    let (ok, out) = dump(dir.path(), "x.log", &b, true);
    assert!(!ok && out.contains("overflows"), "{out}");
    // A snappy block claiming to inflate to 4 GiB.
    let mut b = batch(0, 1, Compression::None);
    let mut body = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01".to_vec();
    body.extend_from_slice(&6u32.to_be_bytes());
    body.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f, 0x00]);
    b.truncate(BATCH_HEADER_BYTES);
    b.extend_from_slice(&body);
    let len = (b.len() - 12) as i32;
    b[8..12].copy_from_slice(&len.to_be_bytes());
    b[21..23].copy_from_slice(&2i16.to_be_bytes());
    reseal(&mut b);
    let (ok, out) = dump(dir.path(), "00000000000000000000.log", &b, true);
    assert!(!ok && out.contains("claims to inflate"), "{out}");
}

#[test]
fn sequences_wrap_and_none_stays_none() {
    assert_eq!(sequence_after(-1, 5), -1);
    assert_eq!(sequence_after(10, 5), 15);
    assert_eq!(sequence_after(i32::MAX, 1), 0);
    assert_eq!(sequence_after(i32::MAX - 1, 3), 1);
}
