//! The two zlib contexts of a SPDY/3 connection.
//!
//! Each direction compresses all of its header blocks as ONE zlib stream primed with the SPDY
//! dictionary; every block ends with a sync flush so the peer can decode it on its own, while
//! later blocks keep referring back to earlier ones. A context therefore lives as long as the
//! connection and must see every header block of its direction, in order.

use std::io;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::dictionary::header_dictionary;
use super::invalid_data;

/// Upper bound for one decompressed header block: port-forward headers are a few dozen bytes,
/// this only stops a hostile block from inflating without limit.
const MAX_HEADER_BLOCK: usize = 256 * 1024;

/// Compresses outgoing header blocks.
pub(super) struct HeaderDeflater {
    zlib: Compress,
}

impl HeaderDeflater {
    pub(super) fn new() -> Self {
        let mut zlib = Compress::new(Compression::default(), true);
        zlib.set_dictionary(header_dictionary())
            .expect("a fresh zlib stream accepts a dictionary");
        Self { zlib }
    }

    /// Appends `raw`, compressed and sync-flushed, to `out`.
    pub(super) fn compress(&mut self, raw: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        let start = self.zlib.total_in();
        loop {
            let consumed = usize::try_from(self.zlib.total_in() - start).expect("small block");
            out.reserve(raw.len() / 2 + 64);
            self.zlib
                .compress_vec(&raw[consumed..], out, FlushCompress::Sync)
                .map_err(io::Error::other)?;
            let consumed = usize::try_from(self.zlib.total_in() - start).expect("small block");
            // The flush is complete once all input is in and zlib left output space unused.
            if consumed == raw.len() && out.len() < out.capacity() {
                return Ok(());
            }
        }
    }
}

/// Decompresses incoming header blocks.
pub(super) struct HeaderInflater {
    zlib: Decompress,
}

impl HeaderInflater {
    pub(super) fn new() -> Self {
        Self {
            zlib: Decompress::new(true),
        }
    }

    /// Decompresses one header block (the compressed bytes of one frame).
    pub(super) fn decompress(&mut self, compressed: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(compressed.len() * 4 + 64);
        let start = self.zlib.total_in();
        loop {
            let consumed = usize::try_from(self.zlib.total_in() - start).expect("small block");
            if out.len() == out.capacity() {
                if out.len() >= MAX_HEADER_BLOCK {
                    return Err(invalid_data("header block too large"));
                }
                out.reserve(out.len());
            }
            let before = (self.zlib.total_in(), self.zlib.total_out());
            match self
                .zlib
                .decompress_vec(&compressed[consumed..], &mut out, FlushDecompress::Sync)
            {
                Ok(Status::StreamEnd) => return Ok(out),
                Ok(_) => {}
                // The first block's zlib header names the preset dictionary.
                Err(e) if e.needs_dictionary().is_some() => {
                    self.zlib
                        .set_dictionary(header_dictionary())
                        .map_err(|_| invalid_data("peer uses a different header dictionary"))?;
                    continue;
                }
                Err(e) => return Err(invalid_data(format!("header block: {e}"))),
            }
            let consumed = usize::try_from(self.zlib.total_in() - start).expect("small block");
            if consumed == compressed.len() && out.len() < out.capacity() {
                return Ok(out);
            }
            if before == (self.zlib.total_in(), self.zlib.total_out()) && out.len() < out.capacity()
            {
                return Err(invalid_data("header block does not decompress"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{HeaderDeflater, HeaderInflater};
    use crate::spdy::header_block::HeaderBlock;

    fn block(i: usize) -> HeaderBlock {
        HeaderBlock::default()
            .with(
                "streamtype",
                if i.is_multiple_of(2) { "error" } else { "data" },
            )
            .with("port", "8080")
            .with("requestid", &i.to_string())
    }

    #[test]
    fn one_context_per_direction_round_trips_many_blocks() {
        let mut deflater = HeaderDeflater::new();
        let mut inflater = HeaderInflater::new();
        let mut sizes = Vec::new();
        for i in 0..50 {
            let mut raw = Vec::new();
            block(i).encode(&mut raw);
            let mut compressed = Vec::new();
            deflater.compress(&raw, &mut compressed).unwrap();
            sizes.push(compressed.len());
            let decompressed = inflater.decompress(&compressed).unwrap();
            assert_eq!(HeaderBlock::decode(&decompressed).unwrap(), block(i));
        }
        // The shared context makes repeated blocks much cheaper than the first one.
        assert!(sizes[10] < sizes[0], "{sizes:?}");
    }

    #[test]
    fn first_block_announces_the_dictionary() {
        let mut compressed = Vec::new();
        HeaderDeflater::new()
            .compress(&[0, 0, 0, 0], &mut compressed)
            .unwrap();
        assert_eq!(compressed[0] & 0x0f, 8, "deflate method");
        assert_ne!(compressed[1] & 0x20, 0, "FDICT flag");
        let dict_id = u32::from_be_bytes(compressed[2..6].try_into().unwrap());
        assert_eq!(
            dict_id,
            adler32(crate::spdy::dictionary::header_dictionary())
        );
    }

    #[test]
    fn a_lost_block_breaks_the_following_ones() {
        let mut deflater = HeaderDeflater::new();
        let mut first = Vec::new();
        let mut raw = Vec::new();
        block(1).encode(&mut raw);
        deflater.compress(&raw, &mut first).unwrap();
        let mut second = Vec::new();
        deflater.compress(&raw, &mut second).unwrap();
        // A fresh inflater cannot start mid-stream: the zlib header is in the first block.
        assert!(HeaderInflater::new().decompress(&second).is_err());
    }

    #[test]
    fn garbage_is_an_error_not_a_hang() {
        let mut inflater = HeaderInflater::new();
        assert!(
            inflater
                .decompress(&[0x78, 0xbb, 1, 2, 3, 4, 5, 6, 7])
                .is_err()
        );
        assert!(HeaderInflater::new().decompress(&[0xff; 32]).is_err());
    }

    /// Plain Adler-32 (RFC 1950), independent of the zlib implementation under test.
    fn adler32(data: &[u8]) -> u32 {
        let (mut a, mut b) = (1u32, 0u32);
        for &byte in data {
            a = (a + u32::from(byte)) % 65521;
            b = (b + a) % 65521;
        }
        (b << 16) | a
    }
}
