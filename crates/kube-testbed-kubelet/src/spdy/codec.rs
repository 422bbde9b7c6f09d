//! Reading frames from and writing frames to the upgraded byte stream.
//!
//! Each direction owns its zlib context, so all frames of a direction go through exactly one
//! reader or one writer, in wire order.

use std::io;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::compression::{HeaderDeflater, HeaderInflater};
use super::frame::{self, Frame, FrameHead, HEADER_LEN};

/// Reads frames, decompressing header blocks with the connection's inbound zlib context.
pub(super) struct FrameReader<R> {
    io: R,
    inflater: HeaderInflater,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub(super) fn new(io: R) -> Self {
        Self {
            io,
            inflater: HeaderInflater::new(),
        }
    }

    /// The next frame, or `None` when the peer closed the stream between two frames.
    pub(super) async fn next(&mut self) -> io::Result<Option<Frame>> {
        let mut raw = [0u8; HEADER_LEN];
        let mut filled = 0;
        while filled < HEADER_LEN {
            match self.io.read(&mut raw[filled..]).await? {
                0 if filled == 0 => return Ok(None),
                0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                n => filled += n,
            }
        }
        let head = FrameHead::parse(raw)?;
        let mut payload = BytesMut::zeroed(head.length);
        self.io.read_exact(&mut payload).await?;
        frame::decode(head, payload.freeze(), &mut self.inflater).map(Some)
    }
}

/// Writes every frame sent on `frames` until all senders are gone, then shuts the stream down.
///
/// Frames queued together are written with one syscall; the stream is flushed whenever the
/// queue runs empty, so nothing waits in a buffer while the peer waits for it.
pub(super) async fn write_frames<W: AsyncWrite + Unpin>(
    mut io: W,
    mut frames: mpsc::Receiver<Frame>,
) -> io::Result<()> {
    /// Stop batching past this many bytes so a burst of data frames still streams out.
    const BATCH: usize = 64 * 1024;
    let mut deflater = HeaderDeflater::new();
    let mut buf = BytesMut::with_capacity(BATCH);
    while let Some(first) = frames.recv().await {
        frame::encode(&first, &mut deflater, &mut buf)?;
        while buf.len() < BATCH {
            let Ok(next) = frames.try_recv() else { break };
            frame::encode(&next, &mut deflater, &mut buf)?;
        }
        io.write_all(&buf).await?;
        io.flush().await?;
        buf.clear();
    }
    io.shutdown().await
}

/// Reads frames until the peer closes the stream or a read fails (the error is passed on),
/// or until nobody listens any more.
pub(super) async fn read_frames<R: AsyncRead + Unpin>(
    io: R,
    frames: mpsc::Sender<io::Result<Frame>>,
) {
    // Frame heads are 8 bytes: buffer the socket rather than make two reads per frame.
    let mut reader = FrameReader::new(tokio::io::BufReader::with_capacity(64 * 1024, io));
    while let Some(next) = reader.next().await.transpose() {
        let failed = next.is_err();
        if frames.send(next).await.is_err() || failed {
            return;
        }
    }
}

/// Cuts `data` into DATA frames of at most `max` bytes, as a client sends a buffer.
#[cfg(test)]
pub(super) fn chunks(stream_id: u32, data: &[u8], max: usize) -> Vec<Frame> {
    data.chunks(max)
        .map(|c| Frame::data(stream_id, bytes::Bytes::copy_from_slice(c), false))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spdy::header_block::HeaderBlock;

    #[tokio::test]
    async fn writer_and_reader_agree_over_a_socket_pair() {
        let (client, server) = tokio::io::duplex(1024);
        let (tx, rx) = mpsc::channel(8);
        let writer = tokio::spawn(write_frames(client, rx));
        let mut frames = vec![Frame::SynReply {
            stream_id: 1,
            fin: false,
            headers: HeaderBlock::default(),
        }];
        frames.extend(chunks(1, &vec![42u8; 100_000], 16 * 1024));
        frames.push(Frame::SynReply {
            stream_id: 3,
            fin: true,
            headers: HeaderBlock::default().with("k", "v"),
        });
        let sent = frames.clone();
        let feeder = tokio::spawn(async move {
            for frame in frames {
                tx.send(frame).await.unwrap();
            }
        });
        let mut reader = FrameReader::new(server);
        for expected in sent {
            assert_eq!(reader.next().await.unwrap(), Some(expected));
        }
        feeder.await.unwrap();
        writer.await.unwrap().unwrap();
        assert_eq!(
            reader.next().await.unwrap(),
            None,
            "clean EOF after shutdown"
        );
    }

    /// The first bytes kubectl 1.32 sent after the upgrade, for `kubectl port-forward pod/p
    /// 18766:80` and one local connection: the error stream's SYN_STREAM, then a PING.
    const KUBECTL_OPENING: &str = concat!(
        "800300010000003d0000000100000000000078f9e3c6a7c202253a703a2b294a4dcc851625aca9a080",
        "8614cb45a024cc6461c0c0c0c0590489c44c50e2663400000000ffff",
        "800300060000000400000001",
    );

    #[tokio::test]
    async fn decodes_what_kubectl_sends() {
        let bytes: Vec<u8> = (0..KUBECTL_OPENING.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&KUBECTL_OPENING[i..i + 2], 16).unwrap())
            .collect();
        let mut reader = FrameReader::new(bytes.as_slice());
        let expected_headers = HeaderBlock::default()
            .with("port", "80")
            .with("requestid", "0")
            .with("streamtype", "error");
        let Some(Frame::SynStream {
            stream_id: 1,
            associated_to: 0,
            priority: 0,
            fin: false,
            unidirectional: false,
            headers,
        }) = reader.next().await.unwrap()
        else {
            panic!("a SYN_STREAM for stream 1");
        };
        // Go writes a map, so the order is not fixed; compare by name.
        for name in ["port", "requestid", "streamtype"] {
            assert_eq!(headers.get(name), expected_headers.get(name), "{name}");
        }
        assert_eq!(reader.next().await.unwrap(), Some(Frame::Ping { id: 1 }));
        assert_eq!(reader.next().await.unwrap(), None);
    }

    #[tokio::test]
    async fn eof_inside_a_frame_is_an_error() {
        let (mut client, server) = tokio::io::duplex(64);
        client
            .write_all(&[0x80, 0x03, 0x00, 0x06, 0, 0, 0, 4, 0])
            .await
            .unwrap();
        drop(client);
        let err = FrameReader::new(server).next().await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }
}
