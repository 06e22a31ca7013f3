//! Dumping a segment (`.log`) one batch at a time: a line per batch, the offset order across
//! batches, and with --deep-iteration or --print-data-log the records of each batch whose CRC
//! matched. Reading stops at the first bytes that cannot be framed as a batch, or at
//! --max-bytes.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use strand_protocol::batch::{compute_crc, BatchHeader};

use super::batch::{last_offset, step_at, Step};
use super::lines::{BatchLine, RecordLine};
use super::records::{decode_records, RecordOut};
use super::{base_offset_of, Dumper};

/// A segment being read, one batch at a time.
struct Cursor {
    file: File,
    file_len: u64,
    /// Where the next batch starts.
    position: u64,
    /// Offsets only move forward, from the segment's base offset on.
    next_offset: i64,
    /// The bytes of the current batch, reused: reading a segment holds at most its largest
    /// batch in memory.
    buf: Vec<u8>,
}

/// A whole batch read from a segment.
struct Batch<'b> {
    bytes: &'b [u8],
    header: BatchHeader<'b>,
    position: u64,
    size: u64,
}

impl Dumper<'_> {
    pub(super) fn dump_segment(&mut self, path: &Path) -> io::Result<()> {
        let Some(mut cursor) = self.open_segment(path)? else {
            return Ok(());
        };
        let file_name = path.display().to_string();
        let limit = self.args.max_bytes.unwrap_or(u64::MAX);
        while let Some(size) = self.next_batch(path, &mut cursor, limit)? {
            let Some(header) = BatchHeader::new(&cursor.buf) else {
                break; // unreachable: step_at saw a whole header
            };
            let batch = Batch {
                bytes: &cursor.buf,
                header,
                position: cursor.position,
                size,
            };
            cursor.next_offset = self.dump_batch(path, &file_name, &batch, cursor.next_offset)?;
            cursor.position += size;
        }
        Ok(())
    }

    /// Opens a segment and prints its starting offset; `None` (after reporting it) if it
    /// cannot be read.
    fn open_segment(&mut self, path: &Path) -> io::Result<Option<Cursor>> {
        let opened = File::open(path).and_then(|f| {
            let len = f.metadata()?.len();
            Ok((f, len))
        });
        let (file, file_len) = match opened {
            Ok(x) => x,
            Err(e) => {
                self.cannot_read(path, e)?;
                return Ok(None);
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
        Ok(Some(Cursor {
            file,
            file_len,
            position: 0,
            next_offset: base.unwrap_or(i64::MIN),
            buf: Vec::new(),
        }))
    }

    /// Reads the batch at the cursor into its buffer and returns its size; `None` when the
    /// segment ends there, for whatever reason (reported unless it is the end of the file).
    fn next_batch(
        &mut self,
        path: &Path,
        cursor: &mut Cursor,
        limit: u64,
    ) -> io::Result<Option<u64>> {
        let (position, file_len) = (cursor.position, cursor.file_len);
        if position >= limit && position < file_len {
            self.stopped_at_limit(path, limit, position, file_len)?;
            return Ok(None);
        }
        let step = match step_at(&cursor.file, position, file_len) {
            Ok(s) => s,
            Err(e) => {
                self.cannot_read(path, e)?;
                return Ok(None);
            }
        };
        let size = match step {
            Step::End => return Ok(None),
            Step::Invalid(reason) => {
                let n = file_len - position;
                self.totals.invalid_bytes += n;
                self.problem(
                    path,
                    "invalid_bytes",
                    format!(
                        "Found {n} invalid bytes at the end of {} (from position {position}: {reason})",
                        path.display()
                    ),
                )?;
                return Ok(None);
            }
            Step::Batch { size, .. } => size,
        };
        if position.saturating_add(size) > limit {
            self.stopped_at_limit(path, limit, position, file_len)?;
            return Ok(None);
        }
        // `size` fits in the file (checked by step_at), so this allocation is bounded by it.
        cursor.buf.resize(size as usize, 0);
        if let Err(e) = cursor.file.read_exact_at(&mut cursor.buf, position) {
            self.cannot_read(path, e)?;
            return Ok(None);
        }
        Ok(Some(size))
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

    /// Prints a batch, checks it follows `next_offset`, and prints its records when asked to
    /// and its CRC matched. Returns the offset the next batch must start at or after.
    fn dump_batch(
        &mut self,
        path: &Path,
        file_name: &str,
        b: &Batch<'_>,
        next_offset: i64,
    ) -> io::Result<i64> {
        let h = &b.header;
        let valid = compute_crc(b.bytes) == h.crc();
        self.emit_line(&BatchLine::new(file_name, h, b.position, b.size, valid))?;
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
                    "Offsets out of order in {}: the batch at position {} holds offsets {}..{}, expected {} or later",
                    path.display(),
                    b.position,
                    h.base_offset(),
                    last_offset(h),
                    next_offset
                ),
            )?;
        }
        if valid && (self.args.deep_iteration || self.args.print_data_log) {
            self.dump_records(path, file_name, b)?;
        }
        Ok(next_offset.max(last_offset(h).saturating_add(1)))
    }

    fn dump_records(&mut self, path: &Path, file_name: &str, b: &Batch<'_>) -> io::Result<()> {
        match decode_records(b.bytes, &b.header) {
            Ok(records) => {
                for r in &records {
                    self.print_record(file_name, &b.header, r)?;
                }
                Ok(())
            }
            Err(e) => self.problem(
                path,
                "undecodable_batch",
                format!(
                    "Cannot decode the records of the batch at position {} in {}: {e}",
                    b.position,
                    path.display()
                ),
            ),
        }
    }

    fn print_record(&mut self, file: &str, h: &BatchHeader<'_>, r: &RecordOut) -> io::Result<()> {
        let mut line = RecordLine::new(file, h, r);
        if self.args.print_data_log {
            line.add_contents(h, r);
        }
        self.emit_line(&line)
    }
}
