//! The (uncompressed) SPDY/3 name/value header block.
//!
//! Layout: a u32 pair count, then for each pair a u32-length-prefixed name and a
//! u32-length-prefixed value, all big-endian. Names are lowercase; several values of one name
//! travel as one value joined by NUL bytes (spdystream splits them back apart).

use std::io;

use super::invalid_data;

/// Header pairs in wire order; each value may hold NUL-separated multiple values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct HeaderBlock {
    pairs: Vec<(String, String)>,
}

impl HeaderBlock {
    /// Appends a pair; the name is lowercased as the protocol requires.
    #[cfg(test)]
    pub(super) fn with(mut self, name: &str, value: &str) -> Self {
        self.pairs
            .push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }

    /// The first value of `name` (names are compared case-insensitively).
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.split('\0').next().unwrap_or_default())
    }

    /// Serialises the block (before compression).
    pub(super) fn encode(&self, out: &mut Vec<u8>) {
        put_len(out, self.pairs.len());
        for (name, value) in &self.pairs {
            put_len(out, name.len());
            out.extend_from_slice(name.as_bytes());
            put_len(out, value.len());
            out.extend_from_slice(value.as_bytes());
        }
    }

    /// Parses a decompressed block; it must be consumed exactly.
    pub(super) fn decode(mut raw: &[u8]) -> io::Result<Self> {
        let count = take_u32(&mut raw)?;
        let mut pairs = Vec::new();
        for _ in 0..count {
            let name = take_string(&mut raw)?.to_ascii_lowercase();
            let value = take_string(&mut raw)?;
            pairs.push((name, value));
        }
        if !raw.is_empty() {
            return Err(invalid_data("trailing bytes after the header block"));
        }
        Ok(Self { pairs })
    }
}

fn put_len(out: &mut Vec<u8>, len: usize) {
    let len = u32::try_from(len).expect("header block parts are far below 4 GiB");
    out.extend_from_slice(&len.to_be_bytes());
}

fn take_u32(raw: &mut &[u8]) -> io::Result<u32> {
    let (head, rest) = raw
        .split_first_chunk::<4>()
        .ok_or_else(|| invalid_data("truncated header block"))?;
    *raw = rest;
    Ok(u32::from_be_bytes(*head))
}

fn take_string(raw: &mut &[u8]) -> io::Result<String> {
    let len = take_u32(raw)? as usize;
    if raw.len() < len {
        return Err(invalid_data("truncated header block"));
    }
    let (bytes, rest) = raw.split_at(len);
    *raw = rest;
    String::from_utf8(bytes.to_vec()).map_err(|_| invalid_data("header block is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::HeaderBlock;

    #[test]
    fn round_trips_and_lowercases_names() {
        let block = HeaderBlock::default()
            .with("StreamType", "data")
            .with("port", "8080")
            .with("x", "a\0b");
        let mut raw = Vec::new();
        block.encode(&mut raw);
        assert_eq!(&raw[..8], &[0, 0, 0, 3, 0, 0, 0, 10]);
        assert_eq!(&raw[8..18], b"streamtype");
        let decoded = HeaderBlock::decode(&raw).unwrap();
        assert_eq!(decoded, block);
        assert_eq!(decoded.get("streamtype"), Some("data"));
        assert_eq!(
            decoded.get("X"),
            Some("a"),
            "the first of NUL-joined values"
        );
        assert_eq!(decoded.get("requestid"), None);
    }

    #[test]
    fn rejects_truncated_and_trailing_bytes() {
        let mut raw = Vec::new();
        HeaderBlock::default().with("port", "80").encode(&mut raw);
        assert!(HeaderBlock::decode(&raw[..raw.len() - 1]).is_err());
        raw.push(0);
        assert!(HeaderBlock::decode(&raw).is_err());
        assert!(HeaderBlock::decode(&[0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff]).is_err());
    }
}
