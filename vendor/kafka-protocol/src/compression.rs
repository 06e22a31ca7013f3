//! Provides compression utilities for encoding records.
//!
//! This module has implementations of gzip, Snappy, as well as a noop compression format that
//! allows encoding and decoding records into a [`Record`](crate::records::Record).

use crate::protocol::buf::{ByteBuf, ByteBufMut};
use anyhow::Result;

#[cfg(feature = "gzip")]
mod gzip;
#[cfg(feature = "lz4")]
mod lz4;
mod none;
#[cfg(feature = "snappy")]
mod snappy;
#[cfg(feature = "zstd")]
mod zstd;

#[cfg(feature = "gzip")]
pub use gzip::Gzip;
#[cfg(feature = "lz4")]
pub use lz4::Lz4;
pub use none::None;
#[cfg(feature = "snappy")]
pub use snappy::Snappy;
#[cfg(feature = "zstd")]
pub use zstd::Zstd;

/// A trait for record compression algorithms.
pub trait Compressor<B: ByteBufMut> {
    /// Target buffer type for compression.
    type BufMut: ByteBufMut;
    /// Compresses into provided [`ByteBufMut`], with records encoded by `F` into `R`.
    fn compress<R, F>(buf: &mut B, f: F) -> Result<R>
    where
        F: FnOnce(&mut Self::BufMut) -> Result<R>;
}

/// A trait for record decompression algorithms.
pub trait Decompressor<B: ByteBuf> {
    /// Target buffer type for decompression.
    type Buf: ByteBuf;
    /// Decompress records from `B` mapped using `F` into `R`.
    fn decompress<R, F>(buf: &mut B, f: F) -> Result<R>
    where
        F: FnOnce(&mut Self::Buf) -> Result<R>;
}

/// Strand patch: the most one record batch may inflate to. A batch is at most
/// `message.max.bytes` (about 1 MiB by default) compressed; this leaves room for very high
/// ratios while refusing decompression bombs before they exhaust memory.
pub const DECOMPRESSED_BYTES_MAX: usize = 256 << 20;

/// Strand patch: copies `reader` into `out`, failing past [`DECOMPRESSED_BYTES_MAX`].
pub(crate) fn read_capped(reader: impl std::io::Read, out: &mut Vec<u8>) -> anyhow::Result<()> {
    use std::io::Read;
    let limit = DECOMPRESSED_BYTES_MAX as u64 + 1;
    reader.take(limit).read_to_end(out)?;
    if out.len() > DECOMPRESSED_BYTES_MAX {
        anyhow::bail!("batch inflates past {DECOMPRESSED_BYTES_MAX} bytes");
    }
    Ok(())
}
