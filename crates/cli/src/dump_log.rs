//! `strand dump-log`: prints and checks segment (`.log`), offset index (`.index`) and time
//! index (`.timeindex`) files, the job of Kafka's `kafka-dump-log`, with the same options and
//! output shape.
//!
//! The files may be torn, corrupt or not segments at all, so reading is defensive:
//!
//! * every length read from a file is checked against the bytes the file really has before
//!   anything is allocated for it, and a segment is read one batch at a time;
//! * a batch's records are decoded only when its CRC matches;
//! * the (inflated) records are first walked here, checking framing, the record count and the
//!   offset and timestamp arithmetic, and only then handed to `kafka-protocol`'s decoder, which
//!   would otherwise reserve memory for whatever record count the header claims;
//! * a snappy block's declared length is checked against the most snappy can expand its input
//!   before it is inflated (the decoder allocates that length up front).

use std::cell::RefCell;
use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use kafka_protocol::compression::{Decompressor, Gzip, Lz4, Snappy, Zstd};
use kafka_protocol::records::{Compression, RecordBatchDecoder};
use serde::Serialize;
use strand_protocol::batch::{
    compute_crc, read_varint, read_varlong, BatchHeader, Codec, BATCH_HEADER_BYTES, MAGIC_V2,
};
use strand_storage::index::{OffsetIndex, TimeIndex};
use strand_storage::segment::file_stem;

const OFFSET_ENTRY_BYTES: usize = 8;
const TIME_ENTRY_BYTES: usize = 12;
/// The smallest record: length, attributes, timestamp delta, offset delta, key length, value
/// length and header count, one byte each.
const MIN_RECORD_BYTES: usize = 7;

/// `strand dump-log` options (Kafka's `kafka-dump-log` names).
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Files to read: segments (.log), offset indexes (.index), time indexes (.timeindex).
    #[arg(
        long,
        value_name = "PATH[,PATH...]",
        value_delimiter = ',',
        required = true
    )]
    pub files: Vec<PathBuf>,
    /// Print every record, with its key and value (implies --deep-iteration).
    #[arg(long)]
    pub print_data_log: bool,
    /// Decode every record and print its metadata, without key and value.
    #[arg(long)]
    pub deep_iteration: bool,
    /// Index files: check every entry against the segment beside it, print only the problems.
    #[arg(long)]
    pub verify_index_only: bool,
    /// Index files: only run the checks the broker runs when it loads an index.
    #[arg(long)]
    pub index_sanity_check: bool,
    /// Read at most this many bytes of each segment (whole batches only).
    #[arg(long, value_name = "N")]
    pub max_bytes: Option<u64>,
    /// `text` (Kafka's line format) or `json` (one object per line).
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Text,
    Json,
}

/// Runs the subcommand on stdout and returns the process exit status: 0 when everything read
/// is valid, 1 when anything is not (or stdout failed).
pub fn run_cli(args: &Args) -> i32 {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let result = run(args, &mut out).and_then(|ok| out.flush().map(|()| ok));
    match result {
        Ok(true) => 0,
        Ok(false) => 1,
        // The reader went away (`| head`): stop quietly, as a tool killed by SIGPIPE would.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => 141,
        Err(e) => {
            eprintln!("strand dump-log: cannot write the output: {e}");
            1
        }
    }
}

/// Dumps every file named in `args` to `out`. `Ok(true)` when everything is valid; errors are
/// errors writing to `out` only (problems with the files read are reported in the output).
pub fn run(args: &Args, out: &mut dyn Write) -> io::Result<bool> {
    let mut d = Dumper {
        args,
        out,
        totals: Totals::default(),
    };
    for path in &args.files {
        d.dump_file(path)?;
    }
    d.summary()
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct Totals {
    files: u64,
    batches: u64,
    invalid_batches: u64,
    records: u64,
    invalid_bytes: u64,
    index_entries: u64,
    problems: u64,
}

struct Dumper<'a> {
    args: &'a Args,
    out: &'a mut dyn Write,
    totals: Totals,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Log,
    Index,
    TimeIndex,
}

impl Kind {
    fn of(path: &Path) -> Option<Kind> {
        match path.extension()?.to_str()? {
            "log" => Some(Kind::Log),
            "index" => Some(Kind::Index),
            "timeindex" => Some(Kind::TimeIndex),
            _ => None,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Kind::Log => "log",
            Kind::Index => "index",
            Kind::TimeIndex => "timeindex",
        }
    }
}

/// The base offset a segment file is named by, if its name is one.
fn base_offset_of(path: &Path) -> Option<i64> {
    let stem = path.file_stem()?.to_str()?;
    let base: i64 = stem.parse().ok()?;
    // Names are zero-padded to 20 digits; accept other widths too, but not signs.
    (base >= 0 && stem.bytes().all(|b| b.is_ascii_digit())).then_some(base)
}

fn is_canonical_name(path: &Path, base: i64) -> bool {
    path.file_stem().and_then(|s| s.to_str()) == Some(file_stem(base).as_str())
}

// ---------------------------------------------------------------------------------------------
// Reading batches

/// What is at a position of a segment.
enum Step {
    /// A whole magic-2 batch of `size` bytes (its length fits in the file; nothing else checked).
    Batch {
        size: u64,
        header: [u8; BATCH_HEADER_BYTES],
    },
    /// The end of the file.
    End,
    /// Bytes that cannot be a batch: the rest of the file is unreadable.
    Invalid(String),
}

fn step_at(file: &File, position: u64, file_len: u64) -> io::Result<Step> {
    let left = file_len.saturating_sub(position);
    if left == 0 {
        return Ok(Step::End);
    }
    if left < BATCH_HEADER_BYTES as u64 {
        return Ok(Step::Invalid(format!(
            "{left} bytes are too few for a batch header"
        )));
    }
    let mut h = [0u8; BATCH_HEADER_BYTES];
    file.read_exact_at(&mut h, position)?;
    let Some(header) = BatchHeader::new(&h) else {
        return Ok(Step::Invalid("short batch header".into()));
    };
    if header.magic() != MAGIC_V2 {
        return Ok(Step::Invalid(format!(
            "magic {} (only magic 2 batches are supported)",
            header.magic()
        )));
    }
    let Some(size) = header.total_size() else {
        return Ok(Step::Invalid(format!(
            "batch length {} is below the minimum",
            header.batch_length()
        )));
    };
    let size = size as u64;
    if size > left {
        return Ok(Step::Invalid(format!(
            "torn batch: {size} bytes declared, {left} left"
        )));
    }
    Ok(Step::Batch { size, header: h })
}

/// One batch's place in a segment, from its header.
#[derive(Debug, Clone, Copy)]
struct BatchPlace {
    position: u64,
    base_offset: i64,
    last_offset: i64,
    max_timestamp: i64,
}

/// The batches of a segment, as far as they can be framed (CRCs are not checked).
struct Layout {
    file_len: u64,
    batches: Vec<BatchPlace>,
    /// Where framing stopped: the end of the last whole batch.
    valid_end: u64,
}

impl Layout {
    fn scan(path: &Path) -> io::Result<Layout> {
        let file = File::open(path)?;
        let file_len = file.metadata()?.len();
        let mut batches = Vec::new();
        let mut position = 0;
        while let Step::Batch { size, header } = step_at(&file, position, file_len)? {
            if let Some(header) = BatchHeader::new(&header) {
                batches.push(BatchPlace {
                    position,
                    base_offset: header.base_offset(),
                    last_offset: last_offset(&header),
                    max_timestamp: header.max_timestamp(),
                });
            }
            position += size;
        }
        Ok(Layout {
            file_len,
            batches,
            valid_end: position,
        })
    }

    /// The batch holding `offset` and its index, if any (batches in offset order).
    fn batch_holding(&self, offset: i64) -> Option<(usize, BatchPlace)> {
        let i = self.batches.partition_point(|b| b.last_offset < offset);
        self.batches
            .get(i)
            .filter(|b| b.base_offset <= offset && offset <= b.last_offset)
            .map(|b| (i, *b))
    }
}

/// Last offset of a batch; garbage headers must not overflow.
fn last_offset(h: &BatchHeader<'_>) -> i64 {
    h.base_offset()
        .saturating_add(i64::from(h.last_offset_delta()))
}

/// Sequence number `delta` after `base` (-1: none), wrapping after `i32::MAX` as producers do.
fn sequence_after(base: i32, delta: i64) -> i32 {
    if base < 0 {
        return -1;
    }
    let wrapped = (i64::from(base) + delta).rem_euclid(i64::from(i32::MAX) + 1);
    i32::try_from(wrapped).unwrap_or(-1)
}

fn codec_name(h: &BatchHeader<'_>) -> String {
    match h.codec() {
        Some(Codec::None) => "none".into(),
        Some(Codec::Gzip) => "gzip".into(),
        Some(Codec::Snappy) => "snappy".into(),
        Some(Codec::Lz4) => "lz4".into(),
        Some(Codec::Zstd) => "zstd".into(),
        None => format!("unknown({})", h.attributes() & 0x07),
    }
}

fn timestamp_type(log_append_time: bool) -> &'static str {
    if log_append_time {
        "LogAppendTime"
    } else {
        "CreateTime"
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BatchLine<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    file: &'a str,
    base_offset: i64,
    last_offset: i64,
    count: i32,
    base_sequence: i32,
    last_sequence: i32,
    producer_id: i64,
    producer_epoch: i16,
    partition_leader_epoch: i32,
    is_transactional: bool,
    is_control: bool,
    position: u64,
    timestamp_type: &'static str,
    /// The batch's max timestamp (for LogAppendTime, the append time).
    timestamp: i64,
    size: u64,
    magic: i8,
    compresscodec: String,
    crc: u32,
    isvalid: bool,
}

impl fmt::Display for BatchLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "baseOffset: {} lastOffset: {} count: {} baseSequence: {} lastSequence: {} \
             producerId: {} producerEpoch: {} partitionLeaderEpoch: {} isTransactional: {} \
             isControl: {} position: {} {}: {} size: {} magic: {} compresscodec: {} crc: {} \
             isvalid: {}",
            self.base_offset,
            self.last_offset,
            self.count,
            self.base_sequence,
            self.last_sequence,
            self.producer_id,
            self.producer_epoch,
            self.partition_leader_epoch,
            self.is_transactional,
            self.is_control,
            self.position,
            self.timestamp_type,
            self.timestamp,
            self.size,
            self.magic,
            self.compresscodec,
            self.crc,
            self.isvalid
        )
    }
}

#[derive(Serialize)]
struct HeaderJson {
    key: String,
    value: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RecordLine<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    file: &'a str,
    offset: i64,
    timestamp_type: &'static str,
    timestamp: i64,
    key_size: i64,
    value_size: i64,
    sequence: i32,
    header_keys: Vec<String>,
    /// With --print-data-log only, like the fields below.
    #[serde(skip_serializing_if = "Option::is_none")]
    headers: Option<Vec<HeaderJson>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_txn_marker: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    coordinator_epoch: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    control_type: Option<String>,
}

impl fmt::Display for RecordLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "| offset: {} {}: {} keySize: {} valueSize: {} sequence: {} headerKeys: [{}]",
            self.offset,
            self.timestamp_type,
            self.timestamp,
            self.key_size,
            self.value_size,
            self.sequence,
            self.header_keys.join(",")
        )?;
        if let Some(marker) = self.end_txn_marker {
            write!(f, " endTxnMarker: {marker}")?;
            if let Some(epoch) = self.coordinator_epoch {
                write!(f, " coordinatorEpoch: {epoch}")?;
            }
        } else if let Some(t) = &self.control_type {
            write!(f, " controlType: {t}")?;
        } else {
            if let Some(Some(key)) = &self.key {
                write!(f, " key: {key}")?;
            }
            if let Some(Some(payload)) = &self.payload {
                write!(f, " payload: {payload}")?;
            }
        }
        Ok(())
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

// ---------------------------------------------------------------------------------------------
// Records

/// One record as walked here: what the decoder does not keep (duplicate header keys, in order).
struct Walked {
    headers: Vec<(String, Option<Vec<u8>>)>,
}

fn take<'b>(buf: &mut &'b [u8], n: usize) -> Option<&'b [u8]> {
    if buf.len() < n {
        return None;
    }
    let (head, tail) = buf.split_at(n);
    *buf = tail;
    Some(head)
}

/// A length-prefixed byte string: `Ok(None)` for null (-1) when `nullable`.
fn bytes_field<'b>(
    buf: &mut &'b [u8],
    nullable: bool,
    what: &str,
) -> Result<Option<&'b [u8]>, String> {
    let len = read_varint(buf).ok_or_else(|| format!("truncated {what} length"))?;
    match len {
        -1 if nullable => Ok(None),
        n if n >= 0 => take(buf, n as usize)
            .map(Some)
            .ok_or_else(|| format!("{what} of {n} bytes overruns the record")),
        n => Err(format!("{what} length {n}")),
    }
}

/// Walks `count` records of an inflated batch body, checking their framing and that their
/// offsets and timestamps do not overflow.
fn walk_records(
    mut body: &[u8],
    count: i32,
    base_offset: i64,
    base_timestamp: i64,
) -> Result<Vec<Walked>, String> {
    let count = usize::try_from(count).map_err(|_| format!("record count {count}"))?;
    if count > body.len() / MIN_RECORD_BYTES {
        return Err(format!(
            "record count {count} cannot fit in {} bytes of records",
            body.len()
        ));
    }
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let len = read_varint(&mut body).ok_or_else(|| format!("record {i}: truncated length"))?;
        let len = usize::try_from(len).map_err(|_| format!("record {i}: length {len}"))?;
        let mut rec = take(&mut body, len)
            .ok_or_else(|| format!("record {i} of {len} bytes overruns the batch"))?;
        let fail = |e: String| format!("record {i}: {e}");
        take(&mut rec, 1).ok_or_else(|| fail("truncated attributes".into()))?;
        let ts_delta =
            read_varlong(&mut rec).ok_or_else(|| fail("truncated timestamp delta".into()))?;
        base_timestamp
            .checked_add(ts_delta)
            .ok_or_else(|| fail(format!("timestamp delta {ts_delta} overflows")))?;
        let offset_delta =
            read_varint(&mut rec).ok_or_else(|| fail("truncated offset delta".into()))?;
        base_offset
            .checked_add(i64::from(offset_delta))
            .ok_or_else(|| fail(format!("offset delta {offset_delta} overflows")))?;
        bytes_field(&mut rec, true, "key").map_err(fail)?;
        bytes_field(&mut rec, true, "value").map_err(fail)?;
        let n = read_varint(&mut rec).ok_or_else(|| fail("truncated header count".into()))?;
        let n = usize::try_from(n).map_err(|_| fail(format!("header count {n}")))?;
        if n > rec.len() / 2 {
            return Err(fail(format!(
                "header count {n} cannot fit in {} bytes",
                rec.len()
            )));
        }
        let mut headers = Vec::with_capacity(n);
        for _ in 0..n {
            let key = bytes_field(&mut rec, false, "header key")
                .map_err(fail)?
                .unwrap_or_default();
            let value = bytes_field(&mut rec, true, "header value").map_err(fail)?;
            headers.push((lossy(key), value.map(<[u8]>::to_vec)));
        }
        if !rec.is_empty() {
            return Err(fail(format!("{} bytes after its last header", rec.len())));
        }
        out.push(Walked { headers });
    }
    if !body.is_empty() {
        return Err(format!("{} bytes after the last record", body.len()));
    }
    Ok(out)
}

/// Snappy expands its input at most ~21x (a 3-byte copy element yields at most 64 bytes); a
/// larger declared length is corrupt, and the decompressor would allocate it before finding out.
fn check_snappy_lengths(data: &[u8]) -> Result<(), String> {
    const XERIAL_MAGIC: &[u8] = b"\x82SNAPPY\x00";
    const XERIAL_HEADER_BYTES: usize = 16;
    let plausible = |block: &[u8]| -> Result<(), String> {
        let mut b = block;
        let mut declared = 0u64;
        for i in 0..5 {
            let Some((&byte, rest)) = b.split_first() else {
                return Err("truncated snappy length".into());
            };
            b = rest;
            declared |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                break;
            }
        }
        if declared > (b.len() as u64).saturating_mul(22) {
            return Err(format!(
                "snappy block of {} bytes claims to inflate to {declared}",
                block.len()
            ));
        }
        Ok(())
    };
    if data.len() >= XERIAL_HEADER_BYTES && data.starts_with(XERIAL_MAGIC) {
        let mut rest = &data[XERIAL_HEADER_BYTES..];
        while !rest.is_empty() {
            let len = take(&mut rest, 4).ok_or("truncated snappy block length")?;
            let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
            let block = take(&mut rest, len).ok_or("snappy block overruns the batch")?;
            plausible(block)?;
        }
        Ok(())
    } else {
        plausible(data)
    }
}

fn inflate(buf: &mut Bytes, c: Compression) -> anyhow::Result<Bytes> {
    let keep = |b: &mut Bytes| -> anyhow::Result<Bytes> { Ok(std::mem::take(b)) };
    match c {
        Compression::None => Ok(std::mem::take(buf)),
        Compression::Gzip => <Gzip as Decompressor<Bytes>>::decompress(buf, keep),
        Compression::Snappy => {
            check_snappy_lengths(buf).map_err(anyhow::Error::msg)?;
            <Snappy as Decompressor<Bytes>>::decompress(buf, keep)
        }
        Compression::Lz4 => <Lz4 as Decompressor<Bytes>>::decompress(buf, keep),
        Compression::Zstd => <Zstd as Decompressor<Bytes>>::decompress(buf, keep),
    }
}

/// What a control record says.
enum Control {
    EndTxn {
        commit: bool,
        coordinator_epoch: Option<i32>,
    },
    Other(String),
}

fn control_of(key: Option<&[u8]>, value: Option<&[u8]>) -> Control {
    let Some(k) = key.filter(|k| k.len() >= 4) else {
        return Control::Other(format!(
            "unreadable (key of {} bytes)",
            key.map_or(-1, |k| k.len() as i64)
        ));
    };
    let kind = i16::from_be_bytes([k[2], k[3]]);
    // Value of a transaction marker: version i16, coordinator epoch i32.
    let epoch = value
        .filter(|v| v.len() >= 6)
        .map(|v| i32::from_be_bytes([v[2], v[3], v[4], v[5]]));
    match kind {
        0 | 1 => Control::EndTxn {
            commit: kind == 1,
            coordinator_epoch: epoch,
        },
        2 => Control::Other("LEADER_CHANGE".into()),
        3 => Control::Other("SNAPSHOT_HEADER".into()),
        4 => Control::Other("SNAPSHOT_FOOTER".into()),
        5 => Control::Other("KRAFT_VERSION".into()),
        6 => Control::Other("KRAFT_VOTERS".into()),
        n => Control::Other(format!("UNKNOWN({n})")),
    }
}

/// A decoded record, ready to print.
struct RecordOut {
    offset: i64,
    timestamp: i64,
    sequence: i32,
    key: Option<Bytes>,
    value: Option<Bytes>,
    headers: Vec<(String, Option<Vec<u8>>)>,
}

/// Decodes the records of one whole batch whose CRC matched.
fn decode_records(batch: &[u8], h: &BatchHeader<'_>) -> Result<Vec<RecordOut>, String> {
    if h.codec().is_none() {
        return Err(format!(
            "unknown compression codec {}",
            h.attributes() & 0x07
        ));
    }
    let (count, base_offset, base_ts) = (h.record_count(), h.base_offset(), h.base_timestamp());
    let walked: RefCell<Option<Vec<Walked>>> = RefCell::new(None);
    let check = |buf: &mut Bytes, c: Compression| -> anyhow::Result<Bytes> {
        let body = inflate(buf, c)?;
        let w = walk_records(&body, count, base_offset, base_ts).map_err(anyhow::Error::msg)?;
        *walked.borrow_mut() = Some(w);
        Ok(body)
    };
    let mut bytes = Bytes::copy_from_slice(batch);
    let set = RecordBatchDecoder::decode_with_custom_compression(&mut bytes, Some(check))
        .map_err(|e| format!("{e:#}"))?;
    let walked = walked
        .into_inner()
        .ok_or("the decoder never reached the records")?;
    if walked.len() != set.records.len() {
        return Err(format!(
            "decoded {} records, walked {}",
            set.records.len(),
            walked.len()
        ));
    }
    Ok(set
        .records
        .into_iter()
        .zip(walked)
        .map(|(r, w)| RecordOut {
            offset: r.offset,
            // Under LogAppendTime every record's timestamp is the batch's max timestamp.
            timestamp: if h.is_log_append_time() {
                h.max_timestamp()
            } else {
                r.timestamp
            },
            // Not the decoder's: it adds offset deltas to a base sequence of -1 (none).
            sequence: sequence_after(h.base_sequence(), r.offset.saturating_sub(base_offset)),
            key: r.key,
            value: r.value,
            headers: w.headers,
        })
        .collect())
}

// ---------------------------------------------------------------------------------------------
// Output

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProblemJson<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    file: &'a str,
    problem: &'static str,
    message: &'a str,
}

impl Dumper<'_> {
    fn json(&self) -> bool {
        self.args.output == Output::Json
    }

    fn emit_json(&mut self, value: &impl Serialize) -> io::Result<()> {
        serde_json::to_writer(&mut *self.out, value)?;
        writeln!(self.out)
    }

    /// Something invalid: printed and counted (exit status 1).
    fn problem(&mut self, file: &Path, problem: &'static str, message: String) -> io::Result<()> {
        self.totals.problems += 1;
        if self.json() {
            let file = file.display().to_string();
            self.emit_json(&ProblemJson {
                kind: "problem",
                file: &file,
                problem,
                message: &message,
            })
        } else {
            writeln!(self.out, "{message}")
        }
    }

    /// Information that is not a problem.
    fn note(&mut self, file: &Path, message: String) -> io::Result<()> {
        if self.json() {
            let file = file.display().to_string();
            self.emit_json(&serde_json::json!({"type": "note", "file": file, "message": message}))
        } else {
            writeln!(self.out, "{message}")
        }
    }

    fn dump_file(&mut self, path: &Path) -> io::Result<()> {
        self.totals.files += 1;
        let Some(kind) = Kind::of(path) else {
            return self.note(path, format!("Ignoring unknown file {}", path.display()));
        };
        if self.json() {
            let file = path.display().to_string();
            self.emit_json(
                &serde_json::json!({"type": "file", "file": file, "kind": kind.name()}),
            )?;
        } else {
            writeln!(self.out, "Dumping {}", path.display())?;
        }
        match kind {
            Kind::Log => self.dump_segment(path),
            Kind::Index | Kind::TimeIndex => {
                let Some(base) = base_offset_of(path) else {
                    return self.problem(
                        path,
                        "bad_name",
                        format!(
                            "Cannot tell the base offset of {} from its name (expected <base offset>.{})",
                            path.display(),
                            kind.name()
                        ),
                    );
                };
                if self.args.index_sanity_check {
                    self.sanity_check(path, kind, base)
                } else if kind == Kind::Index {
                    self.dump_offset_index(path, base)
                } else {
                    self.dump_time_index(path, base)
                }
            }
        }
    }

    fn dump_segment(&mut self, path: &Path) -> io::Result<()> {
        let opened = File::open(path).and_then(|f| {
            let len = f.metadata()?.len();
            Ok((f, len))
        });
        let (file, file_len) = match opened {
            Ok(x) => x,
            Err(e) => {
                return self.problem(path, "io", format!("Cannot read {}: {e}", path.display()))
            }
        };
        let base = base_offset_of(path);
        if !self.json() {
            match base {
                Some(b) => writeln!(self.out, "Log starting offset: {b}")?,
                None => writeln!(
                    self.out,
                    "Log starting offset: unknown (not a segment name)"
                )?,
            }
        }
        let file_name = path.display().to_string();
        let limit = self.args.max_bytes.unwrap_or(u64::MAX);
        let deep = self.args.deep_iteration || self.args.print_data_log;
        let mut position = 0u64;
        // Offsets only move forward, from the segment's base offset on.
        let mut next_offset = base.unwrap_or(i64::MIN);
        let mut buf = Vec::new();
        loop {
            if position >= limit && position < file_len {
                return self.stopped_at_limit(path, limit, position, file_len);
            }
            let step = match step_at(&file, position, file_len) {
                Ok(s) => s,
                Err(e) => {
                    return self.problem(path, "io", format!("Cannot read {}: {e}", path.display()))
                }
            };
            let size = match step {
                Step::End => break,
                Step::Invalid(reason) => {
                    let n = file_len - position;
                    self.totals.invalid_bytes += n;
                    return self.problem(
                        path,
                        "invalid_bytes",
                        format!(
                            "Found {n} invalid bytes at the end of {} (from position {position}: {reason})",
                            path.display()
                        ),
                    );
                }
                Step::Batch { size, .. } => size,
            };
            if position.saturating_add(size) > limit {
                return self.stopped_at_limit(path, limit, position, file_len);
            }
            // `size` fits in the file (checked by step_at), so this allocation is bounded by it.
            buf.resize(size as usize, 0);
            if let Err(e) = file.read_exact_at(&mut buf, position) {
                return self.problem(path, "io", format!("Cannot read {}: {e}", path.display()));
            }
            let Some(h) = BatchHeader::new(&buf) else {
                break; // unreachable: step_at saw a whole header
            };
            let valid = compute_crc(&buf) == h.crc();
            let line = BatchLine {
                kind: "batch",
                file: &file_name,
                base_offset: h.base_offset(),
                last_offset: last_offset(&h),
                count: h.record_count(),
                base_sequence: h.base_sequence(),
                last_sequence: sequence_after(h.base_sequence(), i64::from(h.last_offset_delta())),
                producer_id: h.producer_id(),
                producer_epoch: h.producer_epoch(),
                partition_leader_epoch: h.partition_leader_epoch(),
                is_transactional: h.is_transactional(),
                is_control: h.is_control(),
                position,
                timestamp_type: timestamp_type(h.is_log_append_time()),
                timestamp: h.max_timestamp(),
                size,
                magic: h.magic(),
                compresscodec: codec_name(&h),
                crc: h.crc(),
                isvalid: valid,
            };
            if self.json() {
                self.emit_json(&line)?;
            } else {
                writeln!(self.out, "{line}")?;
            }
            self.totals.batches += 1;
            if valid {
                self.totals.records += u64::try_from(h.record_count()).unwrap_or(0);
            } else {
                self.totals.invalid_batches += 1;
            }
            if h.base_offset() < next_offset || h.last_offset_delta() < 0 {
                self.problem(
                    path,
                    "offset_order",
                    format!(
                        "Offsets out of order in {}: the batch at position {position} holds offsets {}..{}, expected {} or later",
                        path.display(),
                        h.base_offset(),
                        last_offset(&h),
                        next_offset
                    ),
                )?;
            }
            next_offset = next_offset.max(last_offset(&h).saturating_add(1));
            if valid && deep {
                match decode_records(&buf, &h) {
                    Ok(records) => {
                        for r in records {
                            self.print_record(&file_name, &h, r)?;
                        }
                    }
                    Err(e) => self.problem(
                        path,
                        "undecodable_batch",
                        format!(
                            "Cannot decode the records of the batch at position {position} in {}: {e}",
                            path.display()
                        ),
                    )?,
                }
            }
            position += size;
        }
        Ok(())
    }

    fn stopped_at_limit(
        &mut self,
        path: &Path,
        limit: u64,
        position: u64,
        file_len: u64,
    ) -> io::Result<()> {
        let left = file_len - position;
        self.note(
            path,
            format!(
                "Stopped at --max-bytes {limit}: {left} bytes from position {position} not read"
            ),
        )
    }

    fn print_record(&mut self, file: &str, h: &BatchHeader<'_>, r: RecordOut) -> io::Result<()> {
        let contents = self.args.print_data_log;
        let size = |b: &Option<Bytes>| b.as_ref().map_or(-1, |b| b.len() as i64);
        let mut line = RecordLine {
            kind: "record",
            file,
            offset: r.offset,
            timestamp_type: timestamp_type(h.is_log_append_time()),
            timestamp: r.timestamp,
            key_size: size(&r.key),
            value_size: size(&r.value),
            sequence: r.sequence,
            header_keys: r.headers.iter().map(|(k, _)| k.clone()).collect(),
            headers: None,
            key: None,
            payload: None,
            end_txn_marker: None,
            coordinator_epoch: None,
            control_type: None,
        };
        if contents {
            if h.is_control() {
                match control_of(r.key.as_deref(), r.value.as_deref()) {
                    Control::EndTxn {
                        commit,
                        coordinator_epoch,
                    } => {
                        line.end_txn_marker = Some(if commit { "COMMIT" } else { "ABORT" });
                        line.coordinator_epoch = coordinator_epoch;
                    }
                    Control::Other(t) => line.control_type = Some(t),
                }
            } else {
                line.key = Some(r.key.as_deref().map(lossy));
                line.payload = Some(r.value.as_deref().map(lossy));
            }
            line.headers = Some(
                r.headers
                    .iter()
                    .map(|(k, v)| HeaderJson {
                        key: k.clone(),
                        value: v.as_deref().map(lossy),
                    })
                    .collect(),
            );
        }
        if self.json() {
            self.emit_json(&line)
        } else {
            writeln!(self.out, "{line}")
        }
    }

    /// Reads an index file whole (index files are small; the read is bounded by its size).
    fn read_index(&mut self, path: &Path, entry_bytes: usize) -> io::Result<Option<Vec<u8>>> {
        let mut bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                self.problem(path, "io", format!("Cannot read {}: {e}", path.display()))?;
                return Ok(None);
            }
        };
        let extra = bytes.len() % entry_bytes;
        if extra != 0 {
            self.problem(
                path,
                "index_size",
                format!(
                    "Index size problem in {}: {} bytes is not a multiple of {entry_bytes}; the last {extra} bytes are ignored",
                    path.display(),
                    bytes.len()
                ),
            )?;
            bytes.truncate(bytes.len() - extra);
        }
        Ok(Some(bytes))
    }

    /// The segment beside an index, framed; `None` (after reporting it) if it cannot be read.
    fn layout_beside(&mut self, path: &Path) -> io::Result<Option<Layout>> {
        let log = path.with_extension("log");
        match Layout::scan(&log) {
            Ok(l) => Ok(Some(l)),
            Err(e) => {
                self.problem(
                    path,
                    "no_segment",
                    format!(
                        "Cannot verify {}: cannot read its segment {}: {e}",
                        path.display(),
                        log.display()
                    ),
                )?;
                Ok(None)
            }
        }
    }

    fn dump_offset_index(&mut self, path: &Path, base: i64) -> io::Result<()> {
        let Some(bytes) = self.read_index(path, OFFSET_ENTRY_BYTES)? else {
            return Ok(());
        };
        let layout = self.layout_beside(path)?;
        let file = path.display().to_string();
        let verify_only = self.args.verify_index_only;
        let mut last: Option<(i64, u64)> = None;
        let mut problems = 0u64;
        for (i, e) in bytes.chunks_exact(OFFSET_ENTRY_BYTES).enumerate() {
            let rel = u32::from_be_bytes([e[0], e[1], e[2], e[3]]);
            let position = u64::from(u32::from_be_bytes([e[4], e[5], e[6], e[7]]));
            // Kafka preallocates index files and fills them with zeros: that ends the entries.
            if i > 0 && rel == 0 && position == 0 {
                break;
            }
            self.totals.index_entries += 1;
            let Some(offset) = base.checked_add(i64::from(rel)) else {
                problems += 1;
                self.problem(
                    path,
                    "index_mismatch",
                    format!("Index mismatch in {file}: entry {i} overflows the offset range"),
                )?;
                continue;
            };
            if !verify_only {
                if self.json() {
                    self.emit_json(&serde_json::json!({
                        "type": "indexEntry", "file": file, "offset": offset, "position": position
                    }))?;
                } else {
                    writeln!(self.out, "offset: {offset} position: {position}")?;
                }
            }
            if let Some((lo, lp)) = last {
                if offset <= lo || position <= lp {
                    problems += 1;
                    self.problem(
                        path,
                        "index_order",
                        format!(
                            "Index out of order in {file}: entry {i} (offset {offset}, position {position}) does not follow offset {lo}, position {lp}"
                        ),
                    )?;
                }
            }
            last = Some((offset, position));
            let Some(layout) = &layout else { continue };
            let found = layout
                .batches
                .binary_search_by_key(&position, |b| b.position);
            let message = match found {
                // Strand indexes a batch's base offset, Kafka its last offset: either way the
                // entry's offset is in the batch it points to, which is what lookups rely on.
                Ok(b) => {
                    let b = layout.batches[b];
                    if b.base_offset <= offset && offset <= b.last_offset {
                        continue;
                    }
                    format!(
                        "Index mismatch in {file}: offset {offset} points to position {position}, but the batch there starts at offset {} (last offset {})",
                        b.base_offset, b.last_offset
                    )
                }
                Err(_) if position >= layout.file_len => format!(
                    "Index mismatch in {file}: offset {offset} points to position {position}, past the end of the segment ({} bytes)",
                    layout.file_len
                ),
                Err(_) if position >= layout.valid_end => format!(
                    "Index mismatch in {file}: offset {offset} points to position {position}, in the invalid bytes at the end of the segment (from position {})",
                    layout.valid_end
                ),
                Err(at) => {
                    let inside = at.checked_sub(1).map(|j| layout.batches[j]);
                    match inside {
                        Some(b) => format!(
                            "Index mismatch in {file}: offset {offset} points to position {position}, inside the batch at position {} (offsets {}..{}), not at the start of a batch",
                            b.position, b.base_offset, b.last_offset
                        ),
                        None => format!(
                            "Index mismatch in {file}: offset {offset} points to position {position}, not at the start of a batch"
                        ),
                    }
                }
            };
            problems += 1;
            self.problem(path, "index_mismatch", message)?;
        }
        if verify_only {
            let status = if problems == 0 { "ok" } else { "FAILED" };
            self.note(
                path,
                format!("Verified {file}: {problems} problems ({status})"),
            )?;
        }
        Ok(())
    }

    fn dump_time_index(&mut self, path: &Path, base: i64) -> io::Result<()> {
        let Some(bytes) = self.read_index(path, TIME_ENTRY_BYTES)? else {
            return Ok(());
        };
        let layout = self.layout_beside(path)?;
        // Largest batch max timestamp up to and including each batch.
        let running_max: Vec<i64> = layout.as_ref().map_or_else(Vec::new, |l| {
            l.batches
                .iter()
                .scan(i64::MIN, |m, b| {
                    *m = (*m).max(b.max_timestamp);
                    Some(*m)
                })
                .collect()
        });
        let file = path.display().to_string();
        let verify_only = self.args.verify_index_only;
        let mut last: Option<(i64, i64)> = None;
        let mut problems = 0u64;
        for (i, e) in bytes.chunks_exact(TIME_ENTRY_BYTES).enumerate() {
            let mut ts = [0u8; 8];
            ts.copy_from_slice(&e[..8]);
            let timestamp = i64::from_be_bytes(ts);
            let rel = u32::from_be_bytes([e[8], e[9], e[10], e[11]]);
            if i > 0 && timestamp == 0 && rel == 0 {
                break;
            }
            self.totals.index_entries += 1;
            let Some(offset) = base.checked_add(i64::from(rel)) else {
                problems += 1;
                self.problem(
                    path,
                    "index_mismatch",
                    format!("Time index mismatch in {file}: entry {i} overflows the offset range"),
                )?;
                continue;
            };
            if !verify_only {
                if self.json() {
                    self.emit_json(&serde_json::json!({
                        "type": "timeIndexEntry", "file": file, "timestamp": timestamp, "offset": offset
                    }))?;
                } else {
                    writeln!(self.out, "timestamp: {timestamp} offset: {offset}")?;
                }
            }
            if let Some((lt, lo)) = last {
                if timestamp <= lt || offset <= lo {
                    problems += 1;
                    self.problem(
                        path,
                        "index_order",
                        format!(
                            "Time index out of order in {file}: entry {i} (timestamp {timestamp}, offset {offset}) does not follow timestamp {lt}, offset {lo}"
                        ),
                    )?;
                }
            }
            last = Some((timestamp, offset));
            let Some(layout) = &layout else { continue };
            // An entry says: `timestamp` is the largest timestamp in the segment up to `offset`.
            let message = match layout.batch_holding(offset) {
                Some((j, _)) if running_max[j] == timestamp => continue,
                Some((j, b)) => format!(
                    "Time index mismatch in {file}: timestamp {timestamp} for offset {offset}, but the largest timestamp up to that batch (offsets {}..{}) is {}",
                    b.base_offset, b.last_offset, running_max[j]
                ),
                None => format!(
                    "Time index mismatch in {file}: offset {offset} (timestamp {timestamp}) is in no batch of the segment"
                ),
            };
            problems += 1;
            self.problem(path, "index_mismatch", message)?;
        }
        if verify_only {
            let status = if problems == 0 { "ok" } else { "FAILED" };
            self.note(
                path,
                format!("Verified {file}: {problems} problems ({status})"),
            )?;
        }
        Ok(())
    }

    /// The checks the broker runs when it loads an index (`strand_storage::index`).
    fn sanity_check(&mut self, path: &Path, kind: Kind, base: i64) -> io::Result<()> {
        // Bounds as the broker computes them: positions inside the segment, and never more
        // offsets than the segment has bytes.
        let segment_bytes = std::fs::metadata(path.with_extension("log")).map(|m| m.len());
        let (segment_bytes, bound) = match segment_bytes {
            Ok(n) => (
                n,
                base.saturating_add(i64::try_from(n).unwrap_or(i64::MAX))
                    .saturating_add(1),
            ),
            Err(_) => (u64::MAX, i64::MAX),
        };
        let result = match kind {
            Kind::Index => {
                OffsetIndex::load(path.to_owned(), base, segment_bytes, bound).map(|_| ())
            }
            _ => TimeIndex::load(path.to_owned(), base, bound).map(|_| ()),
        };
        let file = path.display().to_string();
        match result {
            Ok(()) => self.note(path, format!("{file} passed the sanity check")),
            Err(e) => self.problem(
                path,
                "sanity_check",
                format!("{file} failed the sanity check: {e}"),
            ),
        }?;
        if !is_canonical_name(path, base) {
            self.note(
                path,
                format!(
                    "Note: {file} is not named like a segment file ({}.{})",
                    file_stem(base),
                    kind.name()
                ),
            )?;
        }
        Ok(())
    }

    fn summary(mut self) -> io::Result<bool> {
        let t = &self.totals;
        let ok = t.invalid_batches == 0 && t.problems == 0;
        if self.json() {
            let mut v = serde_json::to_value(&self.totals)?;
            if let Some(m) = v.as_object_mut() {
                m.insert("type".into(), "summary".into());
                m.insert("ok".into(), ok.into());
            }
            self.emit_json(&v)?;
        } else {
            writeln!(
                self.out,
                "Summary: {} files, {} batches ({} invalid), {} records, {} invalid bytes, {} index entries, {} problems: {}",
                t.files,
                t.batches,
                t.invalid_batches,
                t.records,
                t.invalid_bytes,
                t.index_entries,
                t.problems,
                if ok { "all valid" } else { "INVALID DATA FOUND" }
            )?;
        }
        Ok(ok)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::records::{Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};

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
}
