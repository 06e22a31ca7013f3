//! Framing a segment into batches from their headers alone. Nothing in a header is trusted:
//! a batch is framed only when its magic is 2 and its declared length fits in the file, so a
//! torn or garbage tail stops the framing instead of sizing an allocation.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use strand_protocol::batch::{BatchHeader, BATCH_HEADER_BYTES, MAGIC_V2};

/// What is at a position of a segment.
pub(super) enum Step {
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

pub(super) fn step_at(file: &File, position: u64, file_len: u64) -> io::Result<Step> {
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
pub(super) struct BatchPlace {
    pub(super) position: u64,
    pub(super) base_offset: i64,
    pub(super) last_offset: i64,
    pub(super) max_timestamp: i64,
}

/// The batches of a segment, as far as they can be framed (CRCs are not checked).
pub(super) struct Layout {
    pub(super) file_len: u64,
    pub(super) batches: Vec<BatchPlace>,
    /// Where framing stopped: the end of the last whole batch.
    pub(super) valid_end: u64,
}

impl Layout {
    pub(super) fn scan(path: &Path) -> io::Result<Layout> {
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
    pub(super) fn batch_holding(&self, offset: i64) -> Option<(usize, BatchPlace)> {
        let i = self.batches.partition_point(|b| b.last_offset < offset);
        self.batches
            .get(i)
            .filter(|b| b.base_offset <= offset && offset <= b.last_offset)
            .map(|b| (i, *b))
    }
}

/// Last offset of a batch; garbage headers must not overflow.
pub(super) fn last_offset(h: &BatchHeader<'_>) -> i64 {
    h.base_offset()
        .saturating_add(i64::from(h.last_offset_delta()))
}

/// Sequence number `delta` after `base` (-1: none), wrapping after `i32::MAX` as producers do.
pub(super) fn sequence_after(base: i32, delta: i64) -> i32 {
    if base < 0 {
        return -1;
    }
    let wrapped = (i64::from(base) + delta).rem_euclid(i64::from(i32::MAX) + 1);
    i32::try_from(wrapped).unwrap_or(-1)
}
