//! One forwarded connection: dial the pod's port, then copy bytes both ways until both
//! directions have ended.

use std::future::Future;
use std::io;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::frame::Frame;

/// Largest DATA frame sent towards the client; spdystream accepts any size, smaller frames
/// keep one busy connection from holding up the others on the shared session.
const MAX_DATA_FRAME: usize = 16 * 1024;

/// The two client streams of one forwarded connection.
#[derive(Debug, Clone, Copy)]
pub(super) struct StreamPair {
    pub(super) error: u32,
    pub(super) data: u32,
}

/// Runs one forwarded connection.
///
/// `inbound` yields the data stream's bytes from the client and ends with the client's FIN;
/// everything for the client goes to `out`. The caller closes the error stream once this
/// returns (or once it aborts the task because the client reset the data stream).
pub(super) async fn forward(
    dialing: impl Future<Output = io::Result<TcpStream>>,
    port: u16,
    streams: StreamPair,
    mut inbound: mpsc::Receiver<Bytes>,
    out: mpsc::Sender<Frame>,
) {
    let tcp = match dialing.await {
        Ok(tcp) => tcp,
        Err(e) => {
            let message = format!("error forwarding port {port}: {e}");
            tracing::debug!(port, "port-forward dial failed: {e}");
            // kubectl reports the message once the error stream ends, but only after the
            // data stream has ended too, so that one is closed here as well.
            let _ = out
                .send(Frame::data(streams.error, message.into(), false))
                .await;
            let _ = out.send(Frame::fin(streams.data)).await;
            return;
        }
    };
    let (mut from_pod, mut to_pod) = tcp.into_split();
    let upstream = async move {
        while let Some(chunk) = inbound.recv().await {
            if to_pod.write_all(&chunk).await.is_err() {
                return;
            }
        }
        // The client half-closed its side: pass that on, the pod may still answer.
        let _ = to_pod.shutdown().await;
    };
    let downstream = async {
        let mut buf = vec![0u8; MAX_DATA_FRAME];
        loop {
            let n = match from_pod.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let chunk = Bytes::copy_from_slice(&buf[..n]);
            if out
                .send(Frame::data(streams.data, chunk, false))
                .await
                .is_err()
            {
                return; // the session is gone
            }
        }
        let _ = out.send(Frame::fin(streams.data)).await;
    };
    tokio::join!(upstream, downstream);
}
