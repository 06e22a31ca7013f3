//! Dumping offset indexes (`.index`) and time indexes (`.timeindex`) and verifying every entry
//! against the segment beside the index, or with --index-sanity-check running only the checks
//! the broker runs when it loads one.

use std::io;
use std::path::Path;

use strand_storage::index::{OffsetIndex, TimeIndex};
use strand_storage::segment::file_stem;

use super::batch::Layout;
use super::{is_canonical_name, Dumper, Kind};

/// How one kind of index lays out its entries: a relative offset and one other field.
struct EntryFormat {
    entry_bytes: usize,
    /// Starts the messages about it ("Index mismatch in ...").
    label: &'static str,
    json_type: &'static str,
    /// The relative offset and the other field of an entry.
    parse: fn(&[u8]) -> (u32, i64),
    /// The other field's name, and whether it is printed before the offset.
    value_name: &'static str,
    value_first: bool,
}

impl EntryFormat {
    /// The entry's two fields, named, in the order Kafka's dump prints them.
    fn fields(&self, offset: i64, value: i64) -> [(&'static str, i64); 2] {
        if self.value_first {
            [(self.value_name, value), ("offset", offset)]
        } else {
            [("offset", offset), (self.value_name, value)]
        }
    }
}

fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// `.index`: relative offset (4 bytes), position (4 bytes).
const OFFSET_INDEX: EntryFormat = EntryFormat {
    entry_bytes: 8,
    label: "Index",
    json_type: "indexEntry",
    parse: |e| (be_u32(&e[..4]), i64::from(be_u32(&e[4..8]))),
    value_name: "position",
    value_first: false,
};

/// `.timeindex`: timestamp (8 bytes), relative offset (4 bytes).
const TIME_INDEX: EntryFormat = EntryFormat {
    entry_bytes: 12,
    label: "Time index",
    json_type: "timeIndexEntry",
    parse: |e| {
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&e[..8]);
        (be_u32(&e[8..12]), i64::from_be_bytes(ts))
    },
    value_name: "timestamp",
    value_first: true,
};

impl Dumper<'_> {
    /// Reads an index file whole (index files are small; the read is bounded by its size).
    fn read_index(&mut self, path: &Path, entry_bytes: usize) -> io::Result<Option<Vec<u8>>> {
        let mut bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                self.cannot_read(path, e)?;
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

    pub(super) fn dump_offset_index(&mut self, path: &Path, base: i64) -> io::Result<()> {
        let Some(bytes) = self.read_index(path, OFFSET_INDEX.entry_bytes)? else {
            return Ok(());
        };
        let layout = self.layout_beside(path)?;
        self.walk_entries(
            path,
            base,
            &bytes,
            &OFFSET_INDEX,
            |file, offset, position| {
                let position = position as u64; // parsed from a u32
                layout
                    .as_ref()
                    .and_then(|l| offset_entry_mismatch(l, file, offset, position))
            },
        )
    }

    pub(super) fn dump_time_index(&mut self, path: &Path, base: i64) -> io::Result<()> {
        let Some(bytes) = self.read_index(path, TIME_INDEX.entry_bytes)? else {
            return Ok(());
        };
        let layout = self.layout_beside(path)?;
        let running_max = layout.as_ref().map_or_else(Vec::new, running_max);
        self.walk_entries(
            path,
            base,
            &bytes,
            &TIME_INDEX,
            |file, offset, timestamp| {
                layout
                    .as_ref()
                    .and_then(|l| time_entry_mismatch(l, &running_max, file, timestamp, offset))
            },
        )
    }

    /// Prints (unless --verify-index-only) and checks every entry of an index: each must
    /// follow the one before in both fields, and `mismatch(file, offset, value)` says what is
    /// wrong with it against the segment, if anything.
    fn walk_entries(
        &mut self,
        path: &Path,
        base: i64,
        bytes: &[u8],
        format: &EntryFormat,
        mismatch: impl Fn(&str, i64, i64) -> Option<String>,
    ) -> io::Result<()> {
        let file = path.display().to_string();
        let label = format.label;
        let verify_only = self.args.verify_index_only;
        // Only the problems of the entries count in the verdict, not those reported before.
        let problems_before = self.totals.problems;
        let mut last: Option<[i64; 2]> = None;
        for (i, e) in bytes.chunks_exact(format.entry_bytes).enumerate() {
            // Kafka preallocates index files and fills them with zeros: that ends the entries.
            if i > 0 && e.iter().all(|b| *b == 0) {
                break;
            }
            self.totals.index_entries += 1;
            let (rel, value) = (format.parse)(e);
            let Some(offset) = base.checked_add(i64::from(rel)) else {
                self.problem(
                    path,
                    "index_mismatch",
                    format!("{label} mismatch in {file}: entry {i} overflows the offset range"),
                )?;
                continue;
            };
            let fields = format.fields(offset, value);
            let [(n0, v0), (n1, v1)] = fields;
            if !verify_only {
                if self.json() {
                    let mut entry = serde_json::Map::new();
                    entry.insert("type".into(), format.json_type.into());
                    entry.insert("file".into(), file.clone().into());
                    entry.insert(n0.into(), v0.into());
                    entry.insert(n1.into(), v1.into());
                    self.emit_json(&serde_json::Value::Object(entry))?;
                } else {
                    writeln!(self.out, "{n0}: {v0} {n1}: {v1}")?;
                }
            }
            if let Some([l0, l1]) = last {
                if v0 <= l0 || v1 <= l1 {
                    self.problem(
                        path,
                        "index_order",
                        format!(
                            "{label} out of order in {file}: entry {i} ({n0} {v0}, {n1} {v1}) does not follow {n0} {l0}, {n1} {l1}"
                        ),
                    )?;
                }
            }
            last = Some([v0, v1]);
            if let Some(message) = mismatch(&file, offset, value) {
                self.problem(path, "index_mismatch", message)?;
            }
        }
        self.verdict(path, &file, self.totals.problems - problems_before)
    }

    /// With --verify-index-only, which prints no entries, the one line saying how it went.
    fn verdict(&mut self, path: &Path, file: &str, problems: u64) -> io::Result<()> {
        if !self.args.verify_index_only {
            return Ok(());
        }
        let status = if problems == 0 { "ok" } else { "FAILED" };
        self.note(
            path,
            format!("Verified {file}: {problems} problems ({status})"),
        )
    }

    /// The checks the broker runs when it loads an index (`strand_storage::index`).
    pub(super) fn sanity_check(&mut self, path: &Path, kind: Kind, base: i64) -> io::Result<()> {
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
}

/// What is wrong with the offset index entry `offset -> position` of `file`, given the
/// segment's batches; `None` when the entry points at the start of a batch holding `offset`.
fn offset_entry_mismatch(
    layout: &Layout,
    file: &str,
    offset: i64,
    position: u64,
) -> Option<String> {
    let found = layout
        .batches
        .binary_search_by_key(&position, |b| b.position);
    let message = match found {
        // Strand indexes a batch's base offset, Kafka its last offset: either way the
        // entry's offset is in the batch it points to, which is what lookups rely on.
        Ok(b) => {
            let b = layout.batches[b];
            if b.base_offset <= offset && offset <= b.last_offset {
                return None;
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
    Some(message)
}

/// Largest batch max timestamp up to and including each batch.
fn running_max(layout: &Layout) -> Vec<i64> {
    layout
        .batches
        .iter()
        .scan(i64::MIN, |m, b| {
            *m = (*m).max(b.max_timestamp);
            Some(*m)
        })
        .collect()
}

/// What is wrong with the time index entry `timestamp -> offset` of `file`, given the
/// segment's batches and their `running_max`; `None` when it holds.
fn time_entry_mismatch(
    layout: &Layout,
    running_max: &[i64],
    file: &str,
    timestamp: i64,
    offset: i64,
) -> Option<String> {
    // An entry says: `timestamp` is the largest timestamp in the segment up to `offset`.
    let message = match layout.batch_holding(offset) {
        Some((j, _)) if running_max[j] == timestamp => return None,
        Some((j, b)) => format!(
            "Time index mismatch in {file}: timestamp {timestamp} for offset {offset}, but the largest timestamp up to that batch (offsets {}..{}) is {}",
            b.base_offset, b.last_offset, running_max[j]
        ),
        None => format!(
            "Time index mismatch in {file}: offset {offset} (timestamp {timestamp}) is in no batch of the segment"
        ),
    };
    Some(message)
}
