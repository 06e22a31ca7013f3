//! Micro-benchmarks of the broker's hot paths, each on inputs from `strand_bench`:
//!
//! - `batch_validation`: [`validate_record_set`], the header pass (CRC32C included) every
//!   produced batch gets before it is appended;
//! - `record_walk`: [`records::walk`], the record pass that follows it (framing, offset deltas,
//!   timestamps, keys), uncompressed and through lz4's streaming decompressor, beside
//!   inflating the same lz4 batch and nothing else (the floor Kafka's validator pays too);
//! - `index_lookup`: finding an offset in a segment, through the offset index alone and then
//!   through [`Segment::position_of`] (index, then batch headers read from the file);
//! - `segment_append`: [`PartitionLog::append`], stamping offsets and writing to the page cache;
//! - `request_decode`: frame header and body of Produce and Fetch requests.
//!
//! `cargo bench -p strand-bench [FILTER]`. Figures go to `bench/RESULTS.md` with the date,
//! machine and command, like every other figure.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BatchSize, BenchmarkGroup, Criterion, Throughput,
};
use kafka_protocol::messages::{FetchRequest, ProduceRequest};
use kafka_protocol::protocol::Decodable;
use strand_bench::{
    batch, compressible_batch, fetch_frame, produce_frame, small_batches, PRODUCE_VERSIONS,
};
use strand_protocol::batch::validate_record_set;
use strand_protocol::batch::{Codec, BATCH_HEADER_BYTES};
use strand_protocol::frame::{decode_body, RequestFrame};
use strand_protocol::records;
use strand_storage::index::OffsetIndex;
use strand_storage::segment::Segment;
use strand_storage::{LogConfig, PartitionLog};

const MAX_BATCH: usize = 2 << 20;
/// The broker's clock in appends: the inputs' record timestamps are from late 2023, and a
/// record more than an hour ahead of the clock is refused (`message.timestamp.after.max.ms`).
const NOW: i64 = 1_700_000_000_000;

fn batch_validation(c: &mut Criterion) {
    let mut g = c.benchmark_group("batch_validation");
    let big = batch(1000);
    g.throughput(Throughput::Bytes(big.len() as u64));
    g.bench_function("one 1 MiB batch of 1 KiB records", |b| {
        b.iter(|| validate_record_set(black_box(&big), MAX_BATCH).expect("valid"))
    });
    let small = small_batches(100);
    g.throughput(Throughput::Elements(100));
    g.bench_function("100 one-record batches", |b| {
        b.iter(|| validate_record_set(black_box(&small), MAX_BATCH).expect("valid"))
    });
    g.finish();
}

fn record_walk(c: &mut Criterion) {
    let mut g = c.benchmark_group("record_walk");
    let plain = compressible_batch(1000, kafka_protocol::records::Compression::None);
    let lz4 = compressible_batch(1000, kafka_protocol::records::Compression::Lz4);
    // Throughput in uncompressed bytes, for all three.
    g.throughput(Throughput::Bytes(plain.len() as u64));
    g.bench_function("1 MiB of 1 KiB records, uncompressed", |b| {
        b.iter(|| {
            records::walk(black_box(&plain), |r| {
                black_box(r);
            })
            .expect("valid")
        })
    });
    g.bench_function("1 MiB of 1 KiB records, lz4", |b| {
        b.iter(|| {
            records::walk(black_box(&lz4), |r| {
                black_box(r);
            })
            .expect("valid")
        })
    });
    g.bench_function("1 MiB of 1 KiB records, lz4, inflate only", |b| {
        let mut window = vec![0u8; 16 * 1024];
        b.iter(|| {
            let payload = &lz4[BATCH_HEADER_BYTES..];
            let mut r = strand_protocol::codec::decompressor(Codec::Lz4, payload).expect("lz4");
            let mut n = 0;
            loop {
                match std::io::Read::read(&mut r, &mut window).expect("inflates") {
                    0 => break n,
                    k => n += k,
                }
            }
        })
    });
    g.finish();
}

fn index_lookup(c: &mut Criterion) {
    let mut g = c.benchmark_group("index_lookup");
    // A full 1 GiB segment indexed every 4 KiB (log.index.interval.bytes): 262,144 entries.
    let dir = tempfile::tempdir().expect("temp dir");
    let mut index = OffsetIndex::new(dir.path().join("0.index"), 0);
    for i in 0..262_144i64 {
        index.append(i * 4, i as u64 * 4096);
    }
    let mut probe = 0i64;
    g.bench_function("offset index, 262144 entries", |b| {
        b.iter(|| {
            probe = (probe + 7919) % (262_144 * 4);
            index.lookup(black_box(probe)).expect("in range")
        })
    });
    // A segment of 10,000 one-record batches: the index points near, headers finish the job.
    let seg_dir = tempfile::tempdir().expect("temp dir");
    let (mut log, _) =
        PartitionLog::open(seg_dir.path(), LogConfig::default(), true, 0, 0).expect("log opens");
    let mut set = small_batches(100);
    for _ in 0..100 {
        log.append(&mut set, 0, NOW).expect("append");
    }
    log.close().expect("clean close");
    let interval = LogConfig::default().index_interval_bytes;
    let mut segment = Segment::open(seg_dir.path(), 0, interval, 0).expect("opens");
    segment.load().expect("loads");
    let mut probe = 0i64;
    g.bench_function("segment position_of, 10000 batches", |b| {
        b.iter(|| {
            probe = (probe + 613) % 10_000;
            segment.position_of(black_box(probe)).expect("reads")
        })
    });
    // A fetch at the tail: the last 16 appends are remembered, so no header is read from the
    // file; after a reopen the same read goes through the index and the headers.
    let tail_dir = tempfile::tempdir().expect("temp dir");
    let open = || {
        PartitionLog::open(tail_dir.path(), LogConfig::default(), true, 10_000, 0)
            .expect("log opens")
            .0
    };
    let mut log = open();
    let mut one = batch(1);
    for _ in 0..10_000 {
        log.append(&mut one, 0, NOW).expect("append");
    }
    let end = log.log_end_offset();
    let mut probe = 0i64;
    let mut tail_read = |log: &PartitionLog| {
        probe = (probe + 1) % 8;
        let slice = log.read(black_box(end - 1 - probe), 1 << 20, end, true);
        slice.expect("reads").expect("data")
    };
    g.bench_function("log read at the tail, from recent appends", |b| {
        b.iter(|| tail_read(&log))
    });
    log.close().expect("clean close");
    let log = open();
    g.bench_function("log read at the tail, after a reopen", |b| {
        b.iter(|| tail_read(&log))
    });
    g.finish();
}

fn segment_append(c: &mut Criterion) {
    let mut g = c.benchmark_group("segment_append");
    let cases = [("1 MiB batch", batch(1000)), ("one-record batch", batch(1))];
    for (name, mut data) in cases {
        g.throughput(Throughput::Bytes(data.len() as u64));
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                // A fresh log every 256 MiB keeps the disk use bounded; the reset is not timed.
                let mut dir = tempfile::tempdir().expect("temp dir");
                let open = |dir: &tempfile::TempDir| {
                    PartitionLog::open(dir.path(), LogConfig::default(), true, 0, 0)
                        .expect("log opens")
                        .0
                };
                let mut log = open(&dir);
                let mut written = 0usize;
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    if written >= 256 << 20 {
                        drop(log);
                        dir = tempfile::tempdir().expect("temp dir");
                        log = open(&dir);
                        written = 0;
                    }
                    let start = Instant::now();
                    log.append(black_box(&mut data), 0, NOW).expect("append");
                    total += start.elapsed();
                    written += data.len();
                }
                total
            })
        });
    }
    g.finish();
}

fn request_decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("request_decode");
    let records = batch(1000).freeze();
    for v in PRODUCE_VERSIONS {
        let name = format!("produce v{v}, 1 MiB of records");
        decode::<ProduceRequest>(&mut g, &name, produce_frame(v, records.clone()));
    }
    for partitions in [1, 100] {
        let name = format!("fetch v12, {partitions} partitions");
        decode::<FetchRequest>(&mut g, &name, fetch_frame(12, partitions));
    }
    g.finish();
}

/// Parses the frame and decodes its body, as the connection and `dispatch` do.
fn decode<R: Decodable>(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, bytes: Bytes) {
    g.bench_function(name, |b| {
        b.iter_batched(
            || bytes.clone(),
            |bytes| {
                let frame = RequestFrame::parse(bytes).expect("parses");
                decode_body::<R>(&frame).expect("decodes")
            },
            BatchSize::SmallInput,
        )
    });
}

criterion_group!(
    benches,
    batch_validation,
    record_walk,
    index_lookup,
    segment_append,
    request_decode
);
criterion_main!(benches);
