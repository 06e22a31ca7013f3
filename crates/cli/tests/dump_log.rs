//! `strand dump-log` over real segment and index files written by `strand_storage`.

#![allow(clippy::unwrap_used)] // tests

use std::path::{Path, PathBuf};
use std::process::Command;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType as Tt,
};
use strand_protocol::batch::compute_crc;
use strand_storage::{LogConfig, PartitionLog, TimestampType};

const CODECS: [(Compression, &str); 5] = [
    (Compression::None, "none"),
    (Compression::Gzip, "gzip"),
    (Compression::Snappy, "snappy"),
    (Compression::Lz4, "lz4"),
    (Compression::Zstd, "zstd"),
];
const T0: i64 = 1_700_000_000_000;
const PRODUCER_ID: i64 = 42;
const PRODUCER_EPOCH: i16 = 3;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn strand(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_strand"))
        .arg("dump-log")
        .args(args)
        .output()
        .unwrap();
    let run = Run {
        code: out
            .status
            .code()
            .expect("strand dump-log was killed by a signal"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    };
    assert!(
        !run.stderr.contains("panicked"),
        "strand dump-log panicked: {}",
        run.stderr
    );
    assert!(
        run.code == 0 || run.code == 1,
        "exit {}: {}",
        run.code,
        run.stderr
    );
    assert!(
        run.stdout.contains("Summary:") || run.stdout.contains("\"summary\""),
        "{}",
        run.stdout
    );
    run
}

fn files_arg(files: &[PathBuf]) -> String {
    files
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// What one produced record must look like in the dump.
#[derive(Debug, Clone)]
struct Expected {
    offset: i64,
    timestamp: i64,
    sequence: i32,
    key: Option<String>,
    value: Option<String>,
    headers: Vec<(String, Option<String>)>,
}

impl Expected {
    fn line(&self, timestamp_type: &str) -> String {
        let size = |s: &Option<String>| s.as_ref().map_or(-1, |s| s.len() as i64);
        let keys: Vec<&str> = self.headers.iter().map(|(k, _)| k.as_str()).collect();
        let mut line = format!(
            "| offset: {} {timestamp_type}: {} keySize: {} valueSize: {} sequence: {} headerKeys: [{}]",
            self.offset,
            self.timestamp,
            size(&self.key),
            size(&self.value),
            self.sequence,
            keys.join(",")
        );
        if let Some(k) = &self.key {
            line += &format!(" key: {k}");
        }
        if let Some(v) = &self.value {
            line += &format!(" payload: {v}");
        }
        line
    }
}

struct Spec {
    key: Option<String>,
    value: Option<String>,
    headers: Vec<(&'static str, Option<String>)>,
}

fn encode(records: &[Record], compression: Compression) -> BytesMut {
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .unwrap();
    buf
}

fn records(specs: &[Spec], ts0: i64, producer: Option<(i64, i16)>) -> Vec<Record> {
    specs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut headers = kafka_protocol::indexmap::IndexMap::new();
            for (k, v) in &s.headers {
                headers.insert((*k).into(), v.clone().map(Bytes::from));
            }
            Record {
                transactional: producer.is_some(),
                control: false,
                partition_leader_epoch: -1,
                producer_id: producer.map_or(-1, |p| p.0),
                producer_epoch: producer.map_or(-1, |p| p.1),
                timestamp_type: Tt::Creation,
                offset: i as i64,
                sequence: i as i32,
                timestamp: ts0 + i as i64,
                key: s.key.clone().map(Bytes::from),
                value: s.value.clone().map(Bytes::from),
                headers,
                delete_horizon: false,
            }
        })
        .collect()
}

/// A partition with small segments and a dense index, holding batches of every codec (keys,
/// null keys, tombstones, headers with and without values), a transactional batch, a batch
/// with a repeated header key and, at the end of the last segment, a COMMIT marker.
struct Partition {
    dir: PathBuf,
    expected: Vec<Expected>,
    /// Batches in the log, in order: (base offset, codec name).
    batches: Vec<(i64, &'static str)>,
    end_offset: i64,
}

impl Partition {
    fn files(&self, ext: &str) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == ext))
            .collect();
        v.sort();
        v
    }
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 2048,
        index_interval_bytes: 200,
        ..LogConfig::default()
    }
}

fn append(
    log: &mut PartitionLog,
    specs: &[Spec],
    compression: (Compression, &'static str),
    producer: Option<(i64, i16)>,
    p: &mut Partition,
) {
    let ts0 = T0 + log.log_end_offset() * 10;
    let mut batch = encode(&records(specs, ts0, producer), compression.0);
    let info = log.append(&mut batch, 5, T0).unwrap();
    p.batches.push((info.base_offset, compression.1));
    for (i, s) in specs.iter().enumerate() {
        p.expected.push(Expected {
            offset: info.base_offset + i as i64,
            timestamp: ts0 + i as i64,
            sequence: i as i32,
            key: s.key.clone(),
            value: s.value.clone(),
            headers: s
                .headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        });
    }
}

fn write_partition(root: &Path) -> Partition {
    let dir = root.join("orders-0");
    let mut p = Partition {
        dir: dir.clone(),
        expected: Vec::new(),
        batches: Vec::new(),
        end_offset: 0,
    };
    let (mut log, _) = PartitionLog::open(&dir, config(), true, 0, 0).unwrap();
    let mut n = 0;
    for round in 0..4 {
        for codec in CODECS {
            let specs: Vec<Spec> = (0..3 + round)
                .map(|i| {
                    n += 1;
                    Spec {
                        key: (i != 1).then(|| format!("key-{n}")),
                        value: (i != 2).then(|| format!("value {n} via {} ü", codec.1)),
                        headers: match i % 3 {
                            0 => vec![("trace", Some(format!("t{n}"))), ("flag", None)],
                            1 => vec![("source", Some("test".into()))],
                            _ => vec![],
                        },
                    }
                })
                .collect();
            append(&mut log, &specs, codec, None, &mut p);
        }
    }
    // A transactional batch.
    let specs: Vec<Spec> = (0..4)
        .map(|i| Spec {
            key: Some(format!("txn-key-{i}")),
            value: Some(format!("txn-value-{i}")),
            headers: vec![],
        })
        .collect();
    append(
        &mut log,
        &specs,
        CODECS[1],
        Some((PRODUCER_ID, PRODUCER_EPOCH)),
        &mut p,
    );
    // A repeated header key: written as "dup", "dux", then patched (and the CRC resealed).
    let specs = [Spec {
        key: Some("dup-key".into()),
        value: Some("dup-value".into()),
        headers: vec![("dup", Some("1".into())), ("dux", Some("2".into()))],
    }];
    let ts0 = T0 + log.log_end_offset() * 10;
    let mut batch = encode(&records(&specs, ts0, None), Compression::None);
    let at = batch.windows(3).position(|w| w == b"dux").unwrap();
    batch[at + 2] = b'p';
    let crc = compute_crc(&batch);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    let info = log.append(&mut batch, 5, T0).unwrap();
    p.batches.push((info.base_offset, "none"));
    p.expected.push(Expected {
        offset: info.base_offset,
        timestamp: ts0,
        sequence: 0,
        key: Some("dup-key".into()),
        value: Some("dup-value".into()),
        headers: vec![
            ("dup".into(), Some("1".into())),
            ("dup".into(), Some("2".into())),
        ],
    });
    let end = log.log_end_offset();
    assert!(log.segment_count() >= 3, "want several segments");
    log.close().unwrap();
    // The transaction's COMMIT marker, as a coordinator would have the leader write it.
    let marker = Record {
        transactional: true,
        control: true,
        partition_leader_epoch: 5,
        producer_id: PRODUCER_ID,
        producer_epoch: PRODUCER_EPOCH,
        timestamp_type: Tt::Creation,
        offset: end,
        sequence: -1,
        timestamp: T0 + end * 10,
        key: Some(Bytes::from_static(&[0, 0, 0, 1])),
        value: Some(Bytes::from_static(&[0, 0, 0, 0, 0, 9])),
        headers: Default::default(),
        delete_horizon: false,
    };
    let marker = encode(&[marker], Compression::None);
    let last = p.files("log").pop().unwrap();
    let mut bytes = std::fs::read(&last).unwrap();
    bytes.extend_from_slice(&marker);
    std::fs::write(&last, bytes).unwrap();
    p.batches.push((end, "none"));
    p.end_offset = end + 1;
    p
}

fn batch_lines(out: &str) -> Vec<&str> {
    out.lines()
        .filter(|l| l.starts_with("baseOffset: "))
        .collect()
}

fn field<'a>(line: &'a str, name: &str) -> &'a str {
    let start = line.find(&format!(" {name}: ")).map(|i| i + name.len() + 3);
    let start = start
        .or_else(|| {
            line.starts_with(&format!("{name}: "))
                .then_some(name.len() + 2)
        })
        .unwrap_or_else(|| panic!("no {name} in {line}"));
    line[start..].split(' ').next().unwrap()
}

#[test]
fn prints_every_record_of_every_codec_with_its_offset_key_value_and_headers() {
    let root = tempfile::tempdir().unwrap();
    let p = write_partition(root.path());
    let logs = p.files("log");
    let run = strand(&["--files", &files_arg(&logs), "--print-data-log"]);
    assert_eq!(run.code, 0, "{}", run.stdout);

    for log in &logs {
        assert!(run.stdout.contains(&format!("Dumping {}", log.display())));
    }
    // One line per batch, in order, each valid, with the right codec and offsets.
    let batches = batch_lines(&run.stdout);
    assert_eq!(batches.len(), p.batches.len(), "{}", run.stdout);
    for (line, (base, codec)) in batches.iter().zip(&p.batches) {
        assert_eq!(field(line, "baseOffset"), base.to_string(), "{line}");
        assert_eq!(field(line, "compresscodec"), *codec, "{line}");
        assert_eq!(field(line, "isvalid"), "true", "{line}");
        assert_eq!(field(line, "magic"), "2", "{line}");
        assert_eq!(field(line, "partitionLeaderEpoch"), "5", "{line}");
        let count: i64 = field(line, "count").parse().unwrap();
        let last: i64 = field(line, "lastOffset").parse().unwrap();
        assert_eq!(last, base + count - 1, "{line}");
    }
    // Positions are contiguous within each segment and sizes add up to the file sizes.
    let mut per_file = Vec::new();
    for section in run.stdout.split("Dumping ").skip(1) {
        let lines = batch_lines(section);
        let mut pos = 0u64;
        for l in &lines {
            assert_eq!(field(l, "position"), pos.to_string(), "{l}");
            pos += field(l, "size").parse::<u64>().unwrap();
        }
        per_file.push(pos);
    }
    let sizes: Vec<u64> = logs
        .iter()
        .map(|l| std::fs::metadata(l).unwrap().len())
        .collect();
    assert_eq!(per_file, sizes);

    // Every produced record, exactly as produced, in order.
    let records: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("| ") && !l.contains("endTxnMarker"))
        .collect();
    let want: Vec<String> = p.expected.iter().map(|e| e.line("CreateTime")).collect();
    assert_eq!(records, want);
    assert!(run
        .stdout
        .contains("headerKeys: [dup,dup] key: dup-key payload: dup-value"));

    // The transactional batch and its marker.
    let txn = batches
        .iter()
        .find(|l| {
            field(l, "producerId") == PRODUCER_ID.to_string() && field(l, "isControl") == "false"
        })
        .unwrap();
    assert_eq!(field(txn, "isTransactional"), "true");
    assert_eq!(field(txn, "producerEpoch"), "3");
    assert_eq!(
        (field(txn, "baseSequence"), field(txn, "lastSequence")),
        ("0", "3")
    );
    let marker = batches.last().unwrap();
    assert_eq!(field(marker, "isControl"), "true");
    assert_eq!(field(marker, "isTransactional"), "true");
    assert_eq!(field(marker, "baseOffset"), (p.end_offset - 1).to_string());
    let marker_record = format!(
        "| offset: {} CreateTime: {} keySize: 4 valueSize: 6 sequence: -1 headerKeys: [] endTxnMarker: COMMIT coordinatorEpoch: 9",
        p.end_offset - 1,
        T0 + (p.end_offset - 1) * 10
    );
    assert!(
        run.stdout.lines().any(|l| l == marker_record),
        "{}",
        run.stdout
    );

    let summary = run.stdout.lines().last().unwrap();
    assert_eq!(
        summary,
        format!(
            "Summary: {} files, {} batches (0 invalid), {} records, 0 invalid bytes, 0 index entries, 0 problems: all valid",
            logs.len(),
            p.batches.len(),
            p.end_offset
        )
    );

    // Without --print-data-log: batches only.
    let run = strand(&["--files", &files_arg(&logs)]);
    assert_eq!(run.code, 0);
    assert_eq!(batch_lines(&run.stdout).len(), p.batches.len());
    assert!(!run.stdout.contains("| offset"));
    // --deep-iteration: record metadata, no contents.
    let run = strand(&["--files", &files_arg(&logs), "--deep-iteration"]);
    assert_eq!(
        run.stdout
            .lines()
            .filter(|l| l.starts_with("| offset"))
            .count() as i64,
        p.end_offset
    );
    assert!(!run.stdout.contains("payload:") && !run.stdout.contains("endTxnMarker"));
}

#[test]
fn json_output_has_every_batch_record_and_header_value() {
    let root = tempfile::tempdir().unwrap();
    let p = write_partition(root.path());
    let logs = p.files("log");
    let run = strand(&[
        "--files",
        &files_arg(&logs),
        "--print-data-log",
        "--output",
        "json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    let values: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let of_type = |t: &'static str| values.iter().filter(move |v| v["type"] == t);
    assert_eq!(of_type("file").count(), logs.len());
    let batches: Vec<_> = of_type("batch").collect();
    assert_eq!(batches.len(), p.batches.len());
    for (b, (base, codec)) in batches.iter().zip(&p.batches) {
        assert_eq!(b["baseOffset"], *base);
        assert_eq!(b["compresscodec"], *codec);
        assert_eq!(b["isvalid"], true);
        assert_eq!(b["timestampType"], "CreateTime");
    }
    let records: Vec<_> = of_type("record")
        .filter(|r| r.get("endTxnMarker").is_none())
        .collect();
    assert_eq!(records.len(), p.expected.len());
    for (r, e) in records.iter().zip(&p.expected) {
        assert_eq!(r["offset"], e.offset);
        assert_eq!(r["timestamp"], e.timestamp);
        assert_eq!(r["sequence"], e.sequence);
        assert_eq!(r["key"], serde_json::json!(e.key));
        assert_eq!(r["payload"], serde_json::json!(e.value));
        let headers: Vec<(String, Option<String>)> = r["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                (
                    h["key"].as_str().unwrap().to_string(),
                    h["value"].as_str().map(str::to_string),
                )
            })
            .collect();
        assert_eq!(headers, e.headers, "{r}");
    }
    let marker = of_type("record")
        .find(|r| r.get("endTxnMarker").is_some())
        .unwrap();
    assert_eq!(marker["endTxnMarker"], "COMMIT");
    assert_eq!(marker["coordinatorEpoch"], 9);
    let summary = values.last().unwrap();
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["ok"], true);
    assert_eq!(summary["records"], p.end_offset);
    assert_eq!(summary["batches"], p.batches.len());
}

#[test]
fn log_append_time_batches_show_the_append_time_on_every_record() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("clicks-0");
    let config = LogConfig {
        timestamp_type: TimestampType::LogAppendTime,
        ..LogConfig::default()
    };
    let (mut log, _) = PartitionLog::open(&dir, config, true, 0, 0).unwrap();
    let specs: Vec<Spec> = (0..3)
        .map(|i| Spec {
            key: Some(format!("c{i}")),
            value: Some(format!("click {i}")),
            headers: vec![],
        })
        .collect();
    let appended_at = T0 + 123_456;
    log.append(
        &mut encode(&records(&specs, 5, None), Compression::Zstd),
        0,
        appended_at,
    )
    .unwrap();
    log.close().unwrap();
    let seg = dir.join("00000000000000000000.log");
    let run = strand(&["--files", seg.to_str().unwrap(), "--print-data-log"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    let batch = batch_lines(&run.stdout)[0];
    assert_eq!(
        field(batch, "LogAppendTime"),
        appended_at.to_string(),
        "{batch}"
    );
    let records: Vec<&str> = run.stdout.lines().filter(|l| l.starts_with("| ")).collect();
    assert_eq!(records.len(), 3);
    for (i, r) in records.iter().enumerate() {
        assert_eq!(
            *r,
            format!(
                "| offset: {i} LogAppendTime: {appended_at} keySize: 2 valueSize: 7 sequence: {i} headerKeys: [] key: c{i} payload: click {i}"
            )
        );
    }
}

#[test]
fn a_flipped_byte_invalidates_exactly_its_batch() {
    let root = tempfile::tempdir().unwrap();
    let p = write_partition(root.path());
    let seg = p.files("log").remove(0);
    let clean = strand(&["--files", seg.to_str().unwrap(), "--print-data-log"]);
    assert_eq!(clean.code, 0);
    let batches = batch_lines(&clean.stdout);
    assert!(batches.len() >= 3);
    let victim = batches[batches.len() / 2];
    let position: usize = field(victim, "position").parse().unwrap();
    let size: usize = field(victim, "size").parse().unwrap();
    let base: i64 = field(victim, "baseOffset").parse().unwrap();
    let last: i64 = field(victim, "lastOffset").parse().unwrap();
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[position + size / 2] ^= 0x20;
    std::fs::write(&seg, bytes).unwrap();

    let run = strand(&["--files", seg.to_str().unwrap(), "--print-data-log"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    let after = batch_lines(&run.stdout);
    assert_eq!(after.len(), batches.len());
    for (l, before) in after.iter().zip(&batches) {
        let is_victim = field(l, "position") == position.to_string();
        assert_eq!(
            field(l, "isvalid"),
            if is_victim { "false" } else { "true" },
            "{l}"
        );
        assert_eq!(field(l, "baseOffset"), field(before, "baseOffset"));
    }
    // Its records are not decoded; every other record still is.
    let offsets: Vec<i64> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("| offset: "))
        .map(|l| field(l, "offset").parse().unwrap())
        .collect();
    let clean_offsets: Vec<i64> = clean
        .stdout
        .lines()
        .filter(|l| l.starts_with("| offset: "))
        .map(|l| field(l, "offset").parse().unwrap())
        .filter(|o| !(base..=last).contains(o))
        .collect();
    assert_eq!(offsets, clean_offsets);
    assert!(run.stdout.contains("(1 invalid)"), "{}", run.stdout);
    assert!(run
        .stdout
        .lines()
        .last()
        .unwrap()
        .ends_with("INVALID DATA FOUND"));
}

#[test]
fn a_truncated_tail_is_reported() {
    let root = tempfile::tempdir().unwrap();
    let p = write_partition(root.path());
    let seg = p.files("log").remove(0);
    let clean = strand(&["--files", seg.to_str().unwrap()]);
    let batches = batch_lines(&clean.stdout);
    let last_size: u64 = field(batches.last().unwrap(), "size").parse().unwrap();
    let len = std::fs::metadata(&seg).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(len - 7)
        .unwrap();
    let run = strand(&["--files", seg.to_str().unwrap(), "--print-data-log"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert_eq!(batch_lines(&run.stdout), batches[..batches.len() - 1]);
    let want = format!(
        "Found {} invalid bytes at the end of {} (from position {}: torn batch",
        last_size - 7,
        seg.display(),
        len - last_size
    );
    assert!(run.stdout.contains(&want), "{}", run.stdout);

    // A tail too short for a header.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(len - last_size + 20)
        .unwrap();
    let run = strand(&["--files", seg.to_str().unwrap()]);
    assert_eq!(run.code, 1);
    assert!(
        run.stdout.contains("Found 20 invalid bytes at the end of"),
        "{}",
        run.stdout
    );
}

fn read_entries(path: &Path, width: usize) -> Vec<Vec<u8>> {
    std::fs::read(path)
        .unwrap()
        .chunks(width)
        .map(<[u8]>::to_vec)
        .collect()
}

#[test]
fn index_files_are_dumped_and_verified_against_their_segment() {
    let root = tempfile::tempdir().unwrap();
    let p = write_partition(root.path());
    let indexes = p.files("index");
    let timeindexes = p.files("timeindex");
    let all: Vec<PathBuf> = indexes.iter().chain(&timeindexes).cloned().collect();

    // A plain dump lists the entries, each pointing at the start of a batch.
    let run = strand(&["--files", &files_arg(&indexes)]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    let entries: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("offset: "))
        .collect();
    let on_disk: usize = indexes
        .iter()
        .map(|i| std::fs::metadata(i).unwrap().len() as usize / 8)
        .sum();
    assert!(entries.len() >= 6, "{}", run.stdout);
    assert_eq!(entries.len(), on_disk);
    let batch_starts: Vec<i64> = p.batches.iter().map(|b| b.0).collect();
    for e in &entries {
        let offset: i64 = field(e, "offset").parse().unwrap();
        assert!(batch_starts.contains(&offset), "{e}");
    }
    let run = strand(&["--files", &files_arg(&timeindexes)]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(
        run.stdout
            .lines()
            .filter(|l| l.starts_with("timestamp: "))
            .count()
            >= 6
    );

    // --verify-index-only on intact files: no entries printed, no problems.
    let run = strand(&["--files", &files_arg(&all), "--verify-index-only"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(!run
        .stdout
        .lines()
        .any(|l| l.starts_with("offset: ") || l.starts_with("timestamp: ")));
    assert_eq!(
        run.stdout.matches(": 0 problems (ok)").count(),
        all.len(),
        "{}",
        run.stdout
    );

    // Batch positions of the first segment, from its dump.
    let seg = p.files("log").remove(0);
    let dump = strand(&["--files", seg.to_str().unwrap()]);
    let positions: Vec<(u64, i64)> = batch_lines(&dump.stdout)
        .iter()
        .map(|l| {
            (
                field(l, "position").parse().unwrap(),
                field(l, "baseOffset").parse().unwrap(),
            )
        })
        .collect();
    let index = &indexes[0];
    let original = std::fs::read(index).unwrap();
    let entries = read_entries(index, 8);
    assert!(entries.len() >= 2);
    let pos_of = |e: &[u8]| u32::from_be_bytes([e[4], e[5], e[6], e[7]]) as u64;
    let off_of = |e: &[u8]| u32::from_be_bytes([e[0], e[1], e[2], e[3]]) as i64;
    let write_entry = |i: usize, position: u64| {
        let mut bytes = original.clone();
        bytes[i * 8 + 4..i * 8 + 8].copy_from_slice(&(position as u32).to_be_bytes());
        std::fs::write(index, bytes).unwrap();
    };
    let last = entries.len() - 1;
    let (o_last, p_last) = (off_of(&entries[last]), pos_of(&entries[last]));

    // The last entry pointed at the start of another batch (the next one, or the one before).
    let (next_pos, next_base) = *positions
        .iter()
        .find(|(pos, _)| *pos > p_last)
        .or_else(|| positions.iter().rev().find(|(pos, _)| *pos < p_last))
        .unwrap();
    write_entry(last, next_pos);
    let run = strand(&["--files", index.to_str().unwrap(), "--verify-index-only"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    let want = format!(
        "Index mismatch in {}: offset {o_last} points to position {next_pos}, but the batch there starts at offset {next_base}",
        index.display()
    );
    assert!(run.stdout.contains(&want), "{}", run.stdout);
    assert!(
        !run.stdout.contains("offset: "),
        "verify only: {}",
        run.stdout
    );
    assert!(run.stdout.contains("problems (FAILED)"), "{}", run.stdout);

    // Into the middle of a batch.
    write_entry(last, p_last + 10);
    let run = strand(&["--files", index.to_str().unwrap(), "--verify-index-only"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stdout.contains("not at the start of a batch"),
        "{}",
        run.stdout
    );

    // Past the end of the segment.
    write_entry(last, 1 << 30);
    let run = strand(&["--files", index.to_str().unwrap(), "--verify-index-only"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stdout.contains("past the end of the segment"),
        "{}",
        run.stdout
    );

    // Out of order: the last entry before the one preceding it.
    if last >= 1 {
        write_entry(last, pos_of(&entries[last - 1]).saturating_sub(1));
        let run = strand(&["--files", index.to_str().unwrap(), "--verify-index-only"]);
        assert_eq!(run.code, 1);
        assert!(run.stdout.contains("Index out of order"), "{}", run.stdout);
    }
    std::fs::write(index, &original).unwrap();

    // A time index entry with a timestamp the segment does not have there.
    let timeindex = &timeindexes[0];
    let original = std::fs::read(timeindex).unwrap();
    let mut bytes = original.clone();
    let ts = i64::from_be_bytes(bytes[0..8].try_into().unwrap());
    bytes[0..8].copy_from_slice(&(ts - 1).to_be_bytes());
    std::fs::write(timeindex, &bytes).unwrap();
    let run = strand(&[
        "--files",
        timeindex.to_str().unwrap(),
        "--verify-index-only",
    ]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stdout.contains(&format!(
            "Time index mismatch in {}: timestamp {}",
            timeindex.display(),
            ts - 1
        )),
        "{}",
        run.stdout
    );
    // ...and one with an offset past the segment.
    let mut bytes = original.clone();
    bytes[8..12].copy_from_slice(&1_000_000u32.to_be_bytes());
    std::fs::write(timeindex, &bytes).unwrap();
    let run = strand(&[
        "--files",
        timeindex.to_str().unwrap(),
        "--verify-index-only",
    ]);
    assert_eq!(run.code, 1);
    assert!(
        run.stdout.contains("is in no batch of the segment"),
        "{}",
        run.stdout
    );
}

#[test]
fn index_sanity_check_runs_the_load_checks() {
    let root = tempfile::tempdir().unwrap();
    let p = write_partition(root.path());
    let index = p.files("index").remove(0);
    let timeindex = p.files("timeindex").remove(0);
    let both = files_arg(&[index.clone(), timeindex.clone()]);
    let run = strand(&["--files", &both, "--index-sanity-check"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(run.stdout.matches("passed the sanity check").count(), 2);
    assert!(!run.stdout.contains("offset: "));
    // Entries swapped: out of order.
    let mut bytes = std::fs::read(&index).unwrap();
    assert!(bytes.len() >= 16);
    let (a, b) = bytes.split_at_mut(8);
    a.swap_with_slice(&mut b[..8]);
    std::fs::write(&index, &bytes).unwrap();
    let run = strand(&["--files", &both, "--index-sanity-check"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stdout
            .contains(&format!("{} failed the sanity check", index.display())),
        "{}",
        run.stdout
    );
    assert_eq!(run.stdout.matches("passed the sanity check").count(), 1);
}

#[test]
fn max_bytes_reads_only_whole_batches_within_the_limit() {
    let root = tempfile::tempdir().unwrap();
    let p = write_partition(root.path());
    let seg = p.files("log").remove(0);
    let all = strand(&["--files", seg.to_str().unwrap()]);
    let batches = batch_lines(&all.stdout);
    let two: u64 = batches[..2]
        .iter()
        .map(|l| field(l, "size").parse::<u64>().unwrap())
        .sum();
    let run = strand(&[
        "--files",
        seg.to_str().unwrap(),
        "--max-bytes",
        &(two + 5).to_string(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(batch_lines(&run.stdout), batches[..2]);
    assert!(
        run.stdout.contains("Stopped at --max-bytes"),
        "{}",
        run.stdout
    );
}

/// Deterministic pseudo-random bytes (xorshift).
fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn garbage_and_empty_files_are_reported_without_panicking() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path();

    // Empty files: an empty segment is valid; an empty index beside it too.
    let empty_log = dir.join("00000000000000000000.log");
    let empty_index = dir.join("00000000000000000000.index");
    let empty_time = dir.join("00000000000000000000.timeindex");
    for f in [&empty_log, &empty_index, &empty_time] {
        std::fs::write(f, []).unwrap();
    }
    let run = strand(&[
        "--files",
        &files_arg(&[empty_log.clone(), empty_index.clone(), empty_time.clone()]),
        "--print-data-log",
    ]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(
        run.stdout
            .contains("Summary: 3 files, 0 batches (0 invalid), 0 records"),
        "{}",
        run.stdout
    );

    // Garbage of many sizes, as segments and as indexes beside a garbage segment.
    for (i, n) in [1usize, 11, 12, 60, 61, 62, 100, 4096, 70_000]
        .into_iter()
        .enumerate()
    {
        let base = format!("{:020}", 1000 + i);
        let log = dir.join(format!("{base}.log"));
        let index = dir.join(format!("{base}.index"));
        let time = dir.join(format!("{base}.timeindex"));
        std::fs::write(&log, noise(i as u64 + 7, n)).unwrap();
        std::fs::write(&index, noise(i as u64 + 99, n)).unwrap();
        std::fs::write(&time, noise(i as u64 + 1234, n)).unwrap();
        let files = files_arg(&[log.clone(), index.clone(), time.clone()]);
        let run = strand(&["--files", &files, "--print-data-log"]);
        assert_eq!(run.code, 1, "{n} bytes: {}", run.stdout);
        assert!(
            run.stdout.contains("invalid bytes at the end of"),
            "{}",
            run.stdout
        );
        let run = strand(&["--files", &files, "--verify-index-only", "--output", "json"]);
        assert_eq!(run.code, 1);
        for l in run.stdout.lines() {
            serde_json::from_str::<serde_json::Value>(l).unwrap();
        }
        strand(&["--files", &files, "--index-sanity-check"]);
    }

    // A header that claims 2 GiB, and one at the top of the offset range.
    let huge = dir.join("00000000000000000077.log");
    let mut h = vec![0u8; 61];
    h[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
    h[16] = 2;
    std::fs::write(&huge, &h).unwrap();
    let run = strand(&["--files", huge.to_str().unwrap()]);
    assert_eq!(run.code, 1);
    assert!(
        run.stdout.contains("Found 61 invalid bytes at the end of"),
        "{}",
        run.stdout
    );
    let mut h = vec![0xffu8; 61];
    h[0] = 0x7f;
    h[8..12].copy_from_slice(&49i32.to_be_bytes());
    h[16] = 2;
    h[23..27].copy_from_slice(&i32::MAX.to_be_bytes());
    std::fs::write(&huge, &h).unwrap();
    let run = strand(&["--files", huge.to_str().unwrap(), "--print-data-log"]);
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("isvalid: false"), "{}", run.stdout);

    // A file that does not exist, and one of an unknown kind.
    let run = strand(&[
        "--files",
        &dir.join("00000000000000000123.log").display().to_string(),
    ]);
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("Cannot read"), "{}", run.stdout);
    let other = dir.join("leader-epoch-checkpoint");
    std::fs::write(&other, "0\n1\n0 0\n").unwrap();
    let run = strand(&["--files", other.to_str().unwrap()]);
    assert_eq!(run.code, 0);
    assert!(
        run.stdout.contains("Ignoring unknown file"),
        "{}",
        run.stdout
    );
}
