//! The codecs of record batches, as streams: a compressed batch's records are read through a
//! decompressing reader (so validating a batch never holds its whole inflated payload), and a
//! payload can be compressed again when a topic's `compression.type` asks for another codec.
//!
//! The framings are Kafka's: gzip (RFC 1952), snappy in xerial's block framing (raw snappy is
//! read too, as the Java client reads what librdkafka writes), lz4 frames with 64 KiB
//! independent blocks and no checksums, and zstd frames.

use std::io::{self, Read, Write};

use crate::batch::Codec;

/// How many inflated bytes one batch may yield; past this its reader fails. The same cap the
/// vendored codecs apply when the client and the cleaner decode batches.
pub const INFLATED_BYTES_MAX: u64 = kafka_protocol::compression::DECOMPRESSED_BYTES_MAX as u64;

/// A reader of the uncompressed bytes of `payload` (the bytes after a batch header).
pub fn decompressor(codec: Codec, payload: &[u8]) -> io::Result<Box<dyn Read + '_>> {
    let reader: Box<dyn Read> = match codec {
        Codec::None => Box::new(payload),
        Codec::Gzip => Box::new(flate2::read::MultiGzDecoder::new(payload)),
        Codec::Snappy => Box::new(SnappyReader::new(payload)?),
        Codec::Lz4 => Box::new(lz4::Decoder::new(payload)?),
        Codec::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(payload)?),
    };
    Ok(Box::new(reader.take(INFLATED_BYTES_MAX)))
}

/// Compresses `raw` with `codec` at the level Kafka uses by default for it.
pub fn compress(codec: Codec, raw: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(raw.len() / 2 + 64);
    match codec {
        Codec::None => out.extend_from_slice(raw),
        Codec::Gzip => {
            let mut e = flate2::write::GzEncoder::new(&mut out, flate2::Compression::new(6));
            e.write_all(raw)?;
            e.finish()?;
        }
        Codec::Snappy => snappy_framed(raw, &mut out)?,
        Codec::Lz4 => {
            let mut e = lz4::EncoderBuilder::new()
                .block_size(lz4::BlockSize::Max64KB)
                .block_mode(lz4::BlockMode::Independent)
                .checksum(lz4::ContentChecksum::NoChecksum)
                .level(9)
                .build(&mut out)?;
            e.write_all(raw)?;
            let (_, done) = e.finish();
            done?;
        }
        Codec::Zstd => zstd::stream::copy_encode(raw, &mut out, 3)?,
    }
    Ok(out)
}

/// xerial's snappy stream header: magic, version 1, compatible version 1.
const XERIAL_HEADER: &[u8; 16] = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01";
/// xerial's block size (`SnappyOutputStream`'s default).
const SNAPPY_BLOCK: usize = 32 * 1024;

fn snappy_framed(raw: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    out.extend_from_slice(XERIAL_HEADER);
    let mut encoder = snap::raw::Encoder::new();
    for block in raw.chunks(SNAPPY_BLOCK) {
        let at = out.len();
        out.resize(at + 4 + snap::raw::max_compress_len(block.len()), 0);
        let n = encoder
            .compress(block, &mut out[at + 4..])
            .map_err(io::Error::other)?;
        out[at..at + 4].copy_from_slice(&(n as u32).to_be_bytes());
        out.truncate(at + 4 + n);
    }
    Ok(())
}

/// Inflates snappy block by block: xerial framing (length-prefixed raw blocks after the
/// header), or one raw snappy block when the header is absent.
struct SnappyReader<'a> {
    rest: &'a [u8],
    framed: bool,
    block: Vec<u8>,
    at: usize,
    decoder: snap::raw::Decoder,
}

impl<'a> SnappyReader<'a> {
    fn new(payload: &'a [u8]) -> io::Result<Self> {
        let framed = payload.starts_with(&XERIAL_HEADER[..8]);
        let rest = if framed {
            payload.get(XERIAL_HEADER.len()..).ok_or_else(|| {
                io::Error::new(io::ErrorKind::UnexpectedEof, "truncated snappy header")
            })?
        } else {
            payload
        };
        Ok(Self {
            rest,
            framed,
            block: Vec::new(),
            at: 0,
            decoder: snap::raw::Decoder::new(),
        })
    }

    /// Inflates the next block into `self.block`; false at the end of the stream.
    fn next_block(&mut self) -> io::Result<bool> {
        if self.rest.is_empty() {
            return Ok(false);
        }
        let compressed = if self.framed {
            let bad = || io::Error::new(io::ErrorKind::InvalidData, "truncated snappy block");
            let len = self.rest.get(..4).ok_or_else(bad)?;
            let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
            let block = self.rest.get(4..4 + len).ok_or_else(bad)?;
            self.rest = &self.rest[4 + len..];
            block
        } else {
            std::mem::take(&mut self.rest)
        };
        let len = snap::raw::decompress_len(compressed).map_err(io::Error::other)?;
        if len as u64 > INFLATED_BYTES_MAX {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "snappy block too large",
            ));
        }
        self.block.resize(len, 0);
        let n = self
            .decoder
            .decompress(compressed, &mut self.block)
            .map_err(io::Error::other)?;
        self.block.truncate(n);
        self.at = 0;
        Ok(true)
    }
}

impl Read for SnappyReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.block.len() {
            if !self.next_block()? {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.block.len() - self.at);
        buf[..n].copy_from_slice(&self.block[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inflate(codec: Codec, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        decompressor(codec, payload)
            .and_then(|mut r| r.read_to_end(&mut out))
            .expect("inflates");
        out
    }

    #[test]
    fn every_codec_round_trips() {
        let raw: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 251).to_be_bytes())
            .collect();
        for codec in [
            Codec::None,
            Codec::Gzip,
            Codec::Snappy,
            Codec::Lz4,
            Codec::Zstd,
        ] {
            let packed = compress(codec, &raw).expect("compresses");
            assert_eq!(inflate(codec, &packed), raw, "{codec:?}");
        }
    }

    #[test]
    fn raw_snappy_is_read_too() {
        let raw = b"librdkafka writes raw snappy".repeat(50);
        let packed = snap::raw::Encoder::new().compress_vec(&raw).expect("packs");
        assert_eq!(inflate(Codec::Snappy, &packed), raw);
    }

    #[test]
    fn what_the_kafka_protocol_crate_writes_is_read() {
        use kafka_protocol::records::Compression;
        for (codec, compression) in [
            (Codec::Gzip, Compression::Gzip),
            (Codec::Snappy, Compression::Snappy),
            (Codec::Lz4, Compression::Lz4),
            (Codec::Zstd, Compression::Zstd),
        ] {
            let batch = crate::testing::batch(100, compression);
            let payload = &batch[crate::batch::BATCH_HEADER_BYTES..];
            assert!(inflate(codec, payload).len() > payload.len(), "{codec:?}");
        }
    }

    #[test]
    fn garbage_fails_without_panicking() {
        for codec in [Codec::Gzip, Codec::Snappy, Codec::Lz4, Codec::Zstd] {
            for garbage in [
                &b""[..],
                b"\x82SNAPPY\x00",
                b"\xff\xff\xff\xff\xff\xff",
                &[0u8; 64],
            ] {
                let mut out = Vec::new();
                let _ = decompressor(codec, garbage).and_then(|mut r| r.read_to_end(&mut out));
            }
        }
    }
}
