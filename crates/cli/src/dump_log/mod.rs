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
//!
//! # Layout
//!
//! * `mod.rs` — the options, the run over the named files and the summary;
//! * `batch` — framing a segment into batches from their headers, without trusting them;
//! * `inflate` — decompressing a batch body, refusing snappy lengths no input could reach;
//! * `records` — walking and decoding the records of a batch whose CRC matched;
//! * `lines` — the printed shape of batches and records: `Display` for text, `Serialize`
//!   for JSON;
//! * `emit` — how lines, problems and notes reach the output in either format;
//! * `segment` — dumping a `.log` file batch by batch;
//! * `index` — dumping and verifying `.index` and `.timeindex` files against their segment.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use strand_storage::segment::file_stem;

mod batch;
mod emit;
mod index;
mod inflate;
mod lines;
mod records;
mod segment;
#[cfg(test)]
mod tests;

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

impl Dumper<'_> {
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
