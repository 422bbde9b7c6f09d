//! SPDY/3 frames: the 8-byte header and the payload of every frame type spdystream knows.
//!
//! Control frame: `1 | version(15) | type(16)`, `flags(8) | length(24)`, payload.
//! Data frame:    `0 | stream id(31)`,          `flags(8) | length(24)`, payload.

use std::io;

use bytes::{BufMut, Bytes, BytesMut};

use super::compression::{HeaderDeflater, HeaderInflater};
use super::header_block::HeaderBlock;
use super::invalid_data;

const VERSION: u16 = 3;
pub(super) const HEADER_LEN: usize = 8;
/// Largest payload the 24-bit length field can describe.
const MAX_PAYLOAD: usize = (1 << 24) - 1;

const TYPE_SYN_STREAM: u16 = 1;
const TYPE_SYN_REPLY: u16 = 2;
const TYPE_RST_STREAM: u16 = 3;
const TYPE_SETTINGS: u16 = 4;
const TYPE_PING: u16 = 6;
const TYPE_GOAWAY: u16 = 7;
const TYPE_HEADERS: u16 = 8;
const TYPE_WINDOW_UPDATE: u16 = 9;

const FLAG_FIN: u8 = 0x01;
const FLAG_UNIDIRECTIONAL: u8 = 0x02;
const STREAM_ID_MASK: u32 = 0x7fff_ffff;

/// RST_STREAM status codes used here.
pub(super) const RST_PROTOCOL_ERROR: u32 = 1;
pub(super) const RST_REFUSED_STREAM: u32 = 3;

/// One SPDY/3 frame with its header block decompressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Frame {
    SynStream {
        stream_id: u32,
        associated_to: u32,
        /// 0 (highest) to 7.
        priority: u8,
        fin: bool,
        unidirectional: bool,
        headers: HeaderBlock,
    },
    SynReply {
        stream_id: u32,
        fin: bool,
        headers: HeaderBlock,
    },
    RstStream {
        stream_id: u32,
        status: u32,
    },
    Settings {
        /// `(flags, id, value)` entries.
        entries: Vec<(u8, u32, u32)>,
    },
    Ping {
        id: u32,
    },
    GoAway {
        last_good_stream_id: u32,
        status: u32,
    },
    Headers {
        stream_id: u32,
        fin: bool,
        headers: HeaderBlock,
    },
    WindowUpdate {
        stream_id: u32,
        delta: u32,
    },
    Data {
        stream_id: u32,
        fin: bool,
        data: Bytes,
    },
    /// A control frame of a type this implementation does not know; SPDY says to ignore it.
    Unknown {
        frame_type: u16,
    },
}

impl Frame {
    pub(super) fn data(stream_id: u32, data: Bytes, fin: bool) -> Self {
        Frame::Data {
            stream_id,
            fin,
            data,
        }
    }

    pub(super) fn fin(stream_id: u32) -> Self {
        Frame::data(stream_id, Bytes::new(), true)
    }
}

/// The fixed 8 bytes in front of every frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FrameHead {
    /// `Some(type)` for control frames, `None` for data frames.
    control: Option<u16>,
    /// Stream id of a data frame, version of a control frame.
    word: u32,
    flags: u8,
    pub(super) length: usize,
}

impl FrameHead {
    pub(super) fn parse(raw: [u8; HEADER_LEN]) -> io::Result<Self> {
        let first = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
        let flags = raw[4];
        let length = usize::from(raw[5]) << 16 | usize::from(raw[6]) << 8 | usize::from(raw[7]);
        if first & 0x8000_0000 == 0 {
            return Ok(Self {
                control: None,
                word: first,
                flags,
                length,
            });
        }
        let version = (first >> 16) & 0x7fff;
        if version != u32::from(VERSION) {
            return Err(invalid_data(format!("unsupported SPDY version {version}")));
        }
        Ok(Self {
            control: Some((first & 0xffff) as u16),
            word: version,
            flags,
            length,
        })
    }
}

/// Decodes one frame from its head and payload, feeding header blocks through `inflater`.
pub(super) fn decode(
    head: FrameHead,
    payload: Bytes,
    inflater: &mut HeaderInflater,
) -> io::Result<Frame> {
    let fin = head.flags & FLAG_FIN != 0;
    let Some(frame_type) = head.control else {
        return Ok(Frame::Data {
            stream_id: head.word & STREAM_ID_MASK,
            fin,
            data: payload,
        });
    };
    let mut p = Payload(&payload);
    let frame = match frame_type {
        TYPE_SYN_STREAM => {
            let stream_id = p.stream_id()?;
            let associated_to = p.stream_id()?;
            let priority = p.bytes::<2>()?[0] >> 5;
            Frame::SynStream {
                stream_id,
                associated_to,
                priority,
                fin,
                unidirectional: head.flags & FLAG_UNIDIRECTIONAL != 0,
                headers: p.header_block(inflater)?,
            }
        }
        TYPE_SYN_REPLY => Frame::SynReply {
            stream_id: p.stream_id()?,
            fin,
            headers: p.header_block(inflater)?,
        },
        TYPE_HEADERS => Frame::Headers {
            stream_id: p.stream_id()?,
            fin,
            headers: p.header_block(inflater)?,
        },
        TYPE_RST_STREAM => Frame::RstStream {
            stream_id: p.stream_id()?,
            status: p.u32()?,
        },
        TYPE_SETTINGS => {
            let count = p.u32()?;
            let entries = (0..count)
                .map(|_| {
                    let flags_and_id = p.u32()?;
                    Ok((
                        (flags_and_id >> 24) as u8,
                        flags_and_id & 0x00ff_ffff,
                        p.u32()?,
                    ))
                })
                .collect::<io::Result<_>>()?;
            Frame::Settings { entries }
        }
        TYPE_PING => Frame::Ping { id: p.u32()? },
        TYPE_GOAWAY => Frame::GoAway {
            last_good_stream_id: p.stream_id()?,
            status: p.u32()?,
        },
        TYPE_WINDOW_UPDATE => Frame::WindowUpdate {
            stream_id: p.stream_id()?,
            delta: p.u32()? & STREAM_ID_MASK,
        },
        frame_type => return Ok(Frame::Unknown { frame_type }),
    };
    if !p.0.is_empty() {
        return Err(invalid_data(format!(
            "control frame type {frame_type} is too long"
        )));
    }
    Ok(frame)
}

/// Appends the wire form of `frame` to `out`, compressing header blocks with `deflater`.
pub(super) fn encode(
    frame: &Frame,
    deflater: &mut HeaderDeflater,
    out: &mut BytesMut,
) -> io::Result<()> {
    let flag = |set: bool, bit: u8| if set { bit } else { 0 };
    let mut body = Vec::new();
    let (frame_type, flags) = match frame {
        Frame::Data {
            stream_id,
            fin,
            data,
        } => {
            put_head(
                out,
                stream_id & STREAM_ID_MASK,
                flag(*fin, FLAG_FIN),
                data.len(),
            )?;
            out.extend_from_slice(data);
            return Ok(());
        }
        Frame::SynStream {
            stream_id,
            associated_to,
            priority,
            fin,
            unidirectional,
            headers,
        } => {
            body.put_u32(*stream_id);
            body.put_u32(*associated_to);
            body.put_u8(priority << 5);
            body.put_u8(0); // credential slot, unused
            compress_block(headers, deflater, &mut body)?;
            (
                TYPE_SYN_STREAM,
                flag(*fin, FLAG_FIN) | flag(*unidirectional, FLAG_UNIDIRECTIONAL),
            )
        }
        Frame::SynReply {
            stream_id,
            fin,
            headers,
        } => {
            body.put_u32(*stream_id);
            compress_block(headers, deflater, &mut body)?;
            (TYPE_SYN_REPLY, flag(*fin, FLAG_FIN))
        }
        Frame::Headers {
            stream_id,
            fin,
            headers,
        } => {
            body.put_u32(*stream_id);
            compress_block(headers, deflater, &mut body)?;
            (TYPE_HEADERS, flag(*fin, FLAG_FIN))
        }
        Frame::RstStream { stream_id, status } => {
            body.put_u32(*stream_id);
            body.put_u32(*status);
            (TYPE_RST_STREAM, 0)
        }
        Frame::Settings { entries } => {
            body.put_u32(u32::try_from(entries.len()).map_err(invalid_data)?);
            for (flags, id, value) in entries {
                body.put_u32(u32::from(*flags) << 24 | id & 0x00ff_ffff);
                body.put_u32(*value);
            }
            (TYPE_SETTINGS, 0)
        }
        Frame::Ping { id } => {
            body.put_u32(*id);
            (TYPE_PING, 0)
        }
        Frame::GoAway {
            last_good_stream_id,
            status,
        } => {
            body.put_u32(*last_good_stream_id);
            body.put_u32(*status);
            (TYPE_GOAWAY, 0)
        }
        Frame::WindowUpdate { stream_id, delta } => {
            body.put_u32(*stream_id);
            body.put_u32(*delta);
            (TYPE_WINDOW_UPDATE, 0)
        }
        Frame::Unknown { frame_type } => (*frame_type, 0),
    };
    put_head(
        out,
        0x8000_0000 | u32::from(VERSION) << 16 | u32::from(frame_type),
        flags,
        body.len(),
    )?;
    out.extend_from_slice(&body);
    Ok(())
}

fn put_head(out: &mut BytesMut, first: u32, flags: u8, length: usize) -> io::Result<()> {
    if length > MAX_PAYLOAD {
        return Err(invalid_data("frame payload exceeds 24 bits"));
    }
    out.put_u32(first);
    out.put_u32(u32::from(flags) << 24 | length as u32);
    Ok(())
}

fn compress_block(
    headers: &HeaderBlock,
    deflater: &mut HeaderDeflater,
    body: &mut Vec<u8>,
) -> io::Result<()> {
    let mut raw = Vec::new();
    headers.encode(&mut raw);
    deflater.compress(&raw, body)
}

/// A cursor over a control frame's payload.
struct Payload<'a>(&'a [u8]);

impl Payload<'_> {
    fn bytes<const N: usize>(&mut self) -> io::Result<[u8; N]> {
        let (head, rest) = self
            .0
            .split_first_chunk::<N>()
            .ok_or_else(|| invalid_data("control frame is too short"))?;
        self.0 = rest;
        Ok(*head)
    }

    fn u32(&mut self) -> io::Result<u32> {
        self.bytes::<4>().map(u32::from_be_bytes)
    }

    fn stream_id(&mut self) -> io::Result<u32> {
        Ok(self.u32()? & STREAM_ID_MASK)
    }

    /// The rest of the payload is a compressed header block.
    fn header_block(&mut self, inflater: &mut HeaderInflater) -> io::Result<HeaderBlock> {
        let compressed = std::mem::take(&mut self.0);
        HeaderBlock::decode(&inflater.decompress(compressed)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encodes with one context and decodes with another, as two peers would.
    fn round_trip(frames: &[Frame]) -> Vec<u8> {
        let mut deflater = HeaderDeflater::new();
        let mut wire = BytesMut::new();
        for frame in frames {
            encode(frame, &mut deflater, &mut wire).unwrap();
        }
        let bytes = wire.to_vec();
        let mut inflater = HeaderInflater::new();
        let mut rest = wire.freeze();
        for frame in frames {
            let head = FrameHead::parse(rest[..HEADER_LEN].try_into().unwrap()).unwrap();
            let payload = rest.slice(HEADER_LEN..HEADER_LEN + head.length);
            rest = rest.slice(HEADER_LEN + head.length..);
            assert_eq!(&decode(head, payload, &mut inflater).unwrap(), frame);
        }
        assert!(rest.is_empty());
        bytes
    }

    fn headers(kind: &str, request: &str) -> HeaderBlock {
        HeaderBlock::default()
            .with("streamtype", kind)
            .with("port", "80")
            .with("requestid", request)
    }

    #[test]
    fn every_frame_type_round_trips() {
        round_trip(&[
            Frame::SynStream {
                stream_id: 1,
                associated_to: 0,
                priority: 7,
                fin: false,
                unidirectional: true,
                headers: headers("error", "0"),
            },
            Frame::SynReply {
                stream_id: 1,
                fin: false,
                headers: HeaderBlock::default(),
            },
            Frame::SynStream {
                stream_id: 3,
                associated_to: 1,
                priority: 0,
                fin: true,
                unidirectional: false,
                headers: headers("data", "0"),
            },
            Frame::Headers {
                stream_id: 3,
                fin: true,
                headers: HeaderBlock::default().with("a", "b\0c"),
            },
            Frame::RstStream {
                stream_id: 3,
                status: RST_REFUSED_STREAM,
            },
            Frame::Settings {
                entries: vec![(1, 7, 65536), (0, 4, 100)],
            },
            Frame::Ping { id: 0x7fff_ffff },
            Frame::GoAway {
                last_good_stream_id: 5,
                status: 0,
            },
            Frame::WindowUpdate {
                stream_id: 1,
                delta: 1 << 20,
            },
            Frame::data(5, Bytes::from_static(b"hello"), false),
            Frame::fin(5),
        ]);
    }

    #[test]
    fn wire_layout_matches_the_spec() {
        let bytes = round_trip(&[
            Frame::Ping { id: 9 },
            Frame::data(0x1234, Bytes::from_static(b"ab"), true),
            Frame::RstStream {
                stream_id: 7,
                status: RST_PROTOCOL_ERROR,
            },
        ]);
        assert_eq!(
            bytes,
            [
                // PING: control bit + version 3, type 6, flags 0, length 4, id.
                0x80, 0x03, 0x00, 0x06, 0x00, 0x00, 0x00, 0x04, 0, 0, 0, 9,
                // DATA: stream id, FIN, length 2, payload.
                0x00, 0x00, 0x12, 0x34, 0x01, 0x00, 0x00, 0x02, b'a', b'b',
                // RST_STREAM: type 3, length 8, stream id, status.
                0x80, 0x03, 0x00, 0x03, 0x00, 0x00, 0x00, 0x08, 0, 0, 0, 7, 0, 0, 0, 1,
            ]
        );
    }

    #[test]
    fn large_data_frames_and_unknown_types() {
        let big = Bytes::from(vec![7u8; 70_000]);
        round_trip(&[Frame::data(1, big, false)]);
        let head = FrameHead::parse([0x80, 0x03, 0x00, 0x0a, 0, 0, 0, 0]).unwrap();
        let frame = decode(head, Bytes::new(), &mut HeaderInflater::new()).unwrap();
        assert_eq!(frame, Frame::Unknown { frame_type: 10 });
    }

    #[test]
    fn rejects_other_versions_and_short_frames() {
        assert!(FrameHead::parse([0x80, 0x02, 0x00, 0x06, 0, 0, 0, 4]).is_err());
        let head = FrameHead::parse([0x80, 0x03, 0x00, 0x06, 0, 0, 0, 2]).unwrap();
        assert!(
            decode(
                head,
                Bytes::from_static(&[0, 1]),
                &mut HeaderInflater::new()
            )
            .is_err()
        );
        let head = FrameHead::parse([0x80, 0x03, 0x00, 0x06, 0, 0, 0, 5]).unwrap();
        assert!(
            decode(
                head,
                Bytes::from_static(&[0, 0, 0, 1, 0]),
                &mut HeaderInflater::new()
            )
            .is_err()
        );
    }
}
