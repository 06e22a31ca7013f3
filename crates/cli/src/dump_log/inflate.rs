//! Inflating a batch body. The decompressors trust the lengths they read; the one that
//! allocates a declared length up front (snappy) gets that length checked here first.

use bytes::Bytes;
use kafka_protocol::compression::{Decompressor, Gzip, Lz4, Snappy, Zstd};
use kafka_protocol::records::Compression;

use super::records::take;

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

pub(super) fn inflate(buf: &mut Bytes, c: Compression) -> anyhow::Result<Bytes> {
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
