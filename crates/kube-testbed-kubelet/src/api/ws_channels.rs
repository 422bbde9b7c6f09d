//! The channel framing of Kubernetes' streaming WebSockets: the first byte of each binary message
//! is the channel (exec: 0 stdin, 1 stdout, 2 stderr, 3 status, 4 resize, 255 close a stream;
//! port-forward: 2i data and 2i+1 errors of the i-th port).

use std::time::Duration;

use futures::{SinkExt, StreamExt, stream::SplitSink, stream::SplitStream};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWriteExt},
    sync::mpsc,
};
use tokio_tungstenite::tungstenite::{
    Message,
    protocol::{CloseFrame, frame::coding::CloseCode},
};

use super::upgrade::WebSocket;

/// Bytes per message when streaming output: small enough to interleave streams, big enough for
/// throughput.
const CHUNK: usize = 32 * 1024;
/// How long the client has to answer our close frame.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

pub(super) fn frame(channel: u8, data: &[u8]) -> Message {
    let mut bytes = Vec::with_capacity(data.len() + 1);
    bytes.push(channel);
    bytes.extend_from_slice(data);
    Message::binary(bytes)
}

/// Sends what `reader` yields on `channel` until it ends or the receiver goes away; the bounded
/// queue makes a slow client slow the reader down.
pub(super) async fn copy_out(
    channel: u8,
    mut reader: impl AsyncRead + Unpin,
    out: mpsc::Sender<Message>,
) {
    let mut buffer = vec![0; CHUNK];
    loop {
        match reader.read(&mut buffer).await {
            // A pseudo-terminal reports EIO once the process has gone: the end, like EOF.
            Ok(0) | Err(_) => return,
            Ok(read) => {
                if out.send(frame(channel, &buffer[..read])).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Writes every queued message to the client until the queue's senders are gone; returns false if
/// the client went away.
pub(super) async fn write_out(
    sink: &mut SplitSink<WebSocket, Message>,
    mut queue: mpsc::Receiver<Message>,
) -> bool {
    while let Some(message) = queue.recv().await {
        if sink.send(message).await.is_err() {
            return false;
        }
    }
    true
}

/// Ends the WebSocket properly: a normal close frame, then the client's answer (or a timeout).
pub(super) async fn close(sink: SplitSink<WebSocket, Message>, incoming: SplitStream<WebSocket>) {
    let Ok(mut socket) = sink.reunite(incoming) else {
        return;
    };
    let frame = CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    };
    if socket.close(Some(frame)).await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
        while let Some(Ok(_)) = socket.next().await {}
        // Then TLS's own close_notify, so the client sees a clean end rather than a cut.
        let _ = socket.get_mut().shutdown().await;
    })
    .await;
}
