//! Server side of kubectl's port-forward protocol: SPDY/3.1 framing as Go's `moby/spdystream`
//! speaks it, carrying the kubelet's `portforward.k8s.io` stream semantics.
//!
//! After the HTTP upgrade kubectl opens, per forwarded TCP connection, an `error` stream and a
//! `data` stream (headers `streamtype`, `port`, `requestid`). Each stream gets a SYN_REPLY; once
//! both streams of a request id exist the port is dialled and bytes are copied both ways, each
//! direction half-closed with FIN. A dial failure is written on the error stream. Closing the
//! error stream tells kubectl that the forwarded connection is over.
//!
//! Tasks: one reads and decodes frames, one encodes and writes them (each owns its direction's
//! zlib context), the session in between dispatches, and each forwarded connection is a task.

mod codec;
mod compression;
mod dictionary;
mod forward;
mod frame;
mod header_block;
mod session;
mod stream_request;

#[cfg(test)]
mod kubectl_tests;
#[cfg(test)]
mod session_tests;

use std::future::Future;
use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// Frames queued for the writer before senders wait.
const OUTBOUND_FRAMES: usize = 64;
/// Decoded frames queued for the session before the reader waits.
const INBOUND_FRAMES: usize = 16;
/// How long the last frames may take to drain once the session is over; a client that stopped
/// reading must not keep the connection open.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves kubectl's port-forward protocol (SPDY/3.1, `portforward.k8s.io`) on an upgraded
/// connection until the client closes it, dialling each requested container port with `dial`
/// (once per forwarded connection).
///
/// Returns `Ok(())` when the client closes the connection (EOF between frames, or GOAWAY and
/// then the end of all forwards) and an error for a broken connection or a protocol violation.
pub async fn serve_port_forward<IO, D, F>(io: IO, dial: D) -> std::io::Result<()>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    D: Fn(u16) -> F + Send + Sync + 'static,
    F: Future<Output = std::io::Result<TcpStream>> + Send + 'static,
{
    let (read_half, write_half) = tokio::io::split(io);
    let (out_tx, out_rx) = mpsc::channel(OUTBOUND_FRAMES);
    let mut writer = tokio::spawn(codec::write_frames(write_half, out_rx));
    let (frames_tx, frames_rx) = mpsc::channel(INBOUND_FRAMES);
    let reader = tokio::spawn(codec::read_frames(read_half, frames_tx));
    // The tasks hold the connection: if this future is dropped (the server stops, the pod's
    // sessions are dropped), they go too, and the connection is cut.
    let _abort = (
        AbortOnDrop(reader.abort_handle()),
        AbortOnDrop(writer.abort_handle()),
    );

    // Ending the session drops its frame sender and aborts the forwards (dropping theirs), so
    // the writer sends what is queued, shuts the connection down and ends.
    let session = session::Session::new(dial, out_tx).run(frames_rx).await;
    reader.abort();
    let written = match tokio::time::timeout(DRAIN_TIMEOUT, &mut writer).await {
        Ok(Ok(written)) => written,
        Ok(Err(join)) => Err(io::Error::other(join)),
        Err(_) => {
            writer.abort();
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "client stopped reading the port-forward connection",
            ))
        }
    };
    match (session, written) {
        // The session only sees "broken pipe" when the writer failed; its error says more.
        (Err(e), Err(write)) if e.kind() == io::ErrorKind::BrokenPipe => Err(write),
        (Err(e), _) => Err(e),
        // A client that closed the connection may have closed it in both directions already.
        (Ok(()), Err(e)) => {
            tracing::debug!("port-forward connection closed while writing: {e}");
            Ok(())
        }
        (Ok(()), Ok(())) => Ok(()),
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// An `InvalidData` error: the peer broke the protocol.
fn invalid_data(message: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}
