//! The port-forward session: accepts the client's streams, pairs them per forwarded
//! connection and runs one forward task per pair.

use std::collections::HashMap;
use std::future::Future;
use std::io;

use bytes::Bytes;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::{AbortHandle, Id, JoinError, JoinSet};

use super::forward::{StreamPair, forward};
use super::frame::{Frame, RST_PROTOCOL_ERROR, RST_REFUSED_STREAM};
use super::header_block::HeaderBlock;
use super::stream_request::{StreamKind, StreamRequest};

/// Client DATA frames buffered per forwarded connection before the session waits for the pod
/// side to take them (spdystream has no flow control; this is the back-pressure instead).
const INBOUND_FRAMES: usize = 16;

/// A client stream that was accepted and is not finished yet.
struct OpenStream {
    request_id: String,
    /// Data streams: where the client's bytes go, until its FIN.
    inbound: Option<mpsc::Sender<Bytes>>,
    /// Data streams: the running forward, stopped when the client resets the stream.
    forward: Option<AbortHandle>,
}

/// The streams of a request id seen so far; forwarding starts when both are there.
#[derive(Default)]
struct PendingPair {
    error: Option<u32>,
    /// Stream id, port and the buffered client bytes.
    data: Option<(u32, u16, mpsc::Receiver<Bytes>)>,
}

impl PendingPair {
    /// The pair ready to forward, or itself while a stream is missing.
    fn into_complete(self) -> Result<(StreamPair, u16, mpsc::Receiver<Bytes>), Self> {
        match self {
            PendingPair {
                error: Some(error),
                data: Some((data, port, inbound)),
            } => Ok((StreamPair { error, data }, port, inbound)),
            incomplete => Err(incomplete),
        }
    }
}

pub(super) struct Session<D> {
    dial: D,
    out: mpsc::Sender<Frame>,
    streams: HashMap<u32, OpenStream>,
    pending: HashMap<String, PendingPair>,
    forwards: JoinSet<()>,
    running: HashMap<Id, StreamPair>,
    last_stream_id: u32,
    gone_away: bool,
}

impl<D, F> Session<D>
where
    D: Fn(u16) -> F,
    F: Future<Output = io::Result<TcpStream>> + Send + 'static,
{
    pub(super) fn new(dial: D, out: mpsc::Sender<Frame>) -> Self {
        Self {
            dial,
            out,
            streams: HashMap::new(),
            pending: HashMap::new(),
            forwards: JoinSet::new(),
            running: HashMap::new(),
            last_stream_id: 0,
            gone_away: false,
        }
    }

    /// Handles frames until the client closes the connection, or has sent GOAWAY and every
    /// forward has finished. Dropping the session stops the forwards still running.
    pub(super) async fn run(
        mut self,
        mut frames: mpsc::Receiver<io::Result<Frame>>,
    ) -> io::Result<()> {
        loop {
            tokio::select! {
                frame = frames.recv() => match frame {
                    Some(Ok(frame)) => self.on_frame(frame).await?,
                    Some(Err(e)) => return Err(e),
                    None => return Ok(()),
                },
                Some(done) = self.forwards.join_next_with_id() => self.on_forward_done(done).await?,
            }
            if self.gone_away && self.forwards.is_empty() {
                return Ok(());
            }
        }
    }

    async fn on_frame(&mut self, frame: Frame) -> io::Result<()> {
        match frame {
            Frame::SynStream {
                stream_id,
                fin,
                headers,
                ..
            } => self.on_syn_stream(stream_id, fin, &headers).await,
            Frame::Data {
                stream_id,
                fin,
                data,
            } => {
                self.on_data(stream_id, data, fin).await;
                Ok(())
            }
            Frame::Headers {
                stream_id,
                fin: true,
                ..
            } => {
                self.on_data(stream_id, Bytes::new(), true).await;
                Ok(())
            }
            Frame::RstStream { stream_id, status } => {
                tracing::trace!(stream_id, status, "client reset stream");
                self.on_reset(stream_id);
                Ok(())
            }
            // Odd ids are the client's own pings, to be echoed; even ones would answer ours.
            Frame::Ping { id } if !id.is_multiple_of(2) => self.send(Frame::Ping { id }).await,
            Frame::GoAway { .. } => {
                self.gone_away = true;
                Ok(())
            }
            // spdystream does no flow control (it neither sends nor honours WINDOW_UPDATE) and
            // its SETTINGS carry nothing this server needs; replies never come from a client.
            other => {
                tracing::trace!(frame = ?other, "ignored frame");
                Ok(())
            }
        }
    }

    async fn on_syn_stream(
        &mut self,
        stream_id: u32,
        fin: bool,
        headers: &HeaderBlock,
    ) -> io::Result<()> {
        tracing::debug!(stream_id, ?headers, "port-forward stream opened");
        if self.gone_away {
            return self.reset(stream_id, RST_REFUSED_STREAM).await;
        }
        // Client streams have odd, increasing ids.
        if stream_id.is_multiple_of(2) || stream_id <= self.last_stream_id {
            return self.reset(stream_id, RST_PROTOCOL_ERROR).await;
        }
        self.last_stream_id = stream_id;
        let request = match StreamRequest::parse(stream_id, headers) {
            Ok(request) => request,
            Err(reason) => {
                tracing::warn!(stream_id, "rejecting port-forward stream: {reason}");
                return self.reset(stream_id, RST_REFUSED_STREAM).await;
            }
        };
        let mut pair = self.pending.remove(&request.request_id).unwrap_or_default();
        let taken = match request.kind {
            StreamKind::Error => pair.error.is_some(),
            StreamKind::Data => pair.data.is_some(),
        };
        if taken {
            tracing::warn!(
                stream_id,
                request = request.request_id,
                kind = ?request.kind,
                "second stream of one kind for a request"
            );
            self.pending.insert(request.request_id, pair);
            return self.reset(stream_id, RST_PROTOCOL_ERROR).await;
        }
        self.send(Frame::SynReply {
            stream_id,
            fin: false,
            headers: HeaderBlock::default(),
        })
        .await?;

        let mut open = OpenStream {
            request_id: request.request_id.clone(),
            inbound: None,
            forward: None,
        };
        match request.kind {
            StreamKind::Error => pair.error = Some(stream_id),
            StreamKind::Data => {
                let (tx, rx) = mpsc::channel(INBOUND_FRAMES);
                open.inbound = (!fin).then_some(tx);
                pair.data = Some((stream_id, request.port, rx));
            }
        }
        self.streams.insert(stream_id, open);
        match pair.into_complete() {
            Ok((streams, port, inbound)) => self.start_forward(streams, port, inbound),
            Err(pair) => {
                self.pending.insert(request.request_id, pair);
            }
        }
        Ok(())
    }

    fn start_forward(&mut self, streams: StreamPair, port: u16, inbound: mpsc::Receiver<Bytes>) {
        let dialing = (self.dial)(port);
        let task = forward(dialing, port, streams, inbound, self.out.clone());
        let handle = self.forwards.spawn(task);
        self.running.insert(handle.id(), streams);
        if let Some(data) = self.streams.get_mut(&streams.data) {
            data.forward = Some(handle);
        }
    }

    async fn on_data(&mut self, stream_id: u32, data: Bytes, fin: bool) {
        // Frames for streams already finished or reset are dropped, as spdystream does.
        let Some(stream) = self.streams.get_mut(&stream_id) else {
            return;
        };
        if let Some(inbound) = &stream.inbound
            && !data.is_empty()
        {
            // An error means the forward stopped writing to the pod; nothing left to do.
            let _ = inbound.send(data).await;
        }
        if fin {
            stream.inbound = None;
        }
    }

    fn on_reset(&mut self, stream_id: u32) {
        let Some(stream) = self.streams.remove(&stream_id) else {
            return;
        };
        // The forward's end is handled in on_forward_done like any other.
        if let Some(forward) = stream.forward {
            forward.abort();
        }
        if let Some(pair) = self.pending.get_mut(&stream.request_id) {
            if pair.error == Some(stream_id) {
                pair.error = None;
            }
            if pair.data.as_ref().is_some_and(|(id, ..)| *id == stream_id) {
                pair.data = None;
            }
            if pair.error.is_none() && pair.data.is_none() {
                self.pending.remove(&stream.request_id);
            }
        }
    }

    /// A forward ended (or was aborted): close its error stream, which tells kubectl the
    /// forwarded connection is over, and forget both streams.
    async fn on_forward_done(&mut self, done: Result<(Id, ()), JoinError>) -> io::Result<()> {
        let id = match &done {
            Ok((id, ())) => *id,
            Err(e) => {
                if e.is_panic() {
                    tracing::error!("port-forward task panicked: {e}");
                }
                e.id()
            }
        };
        let Some(streams) = self.running.remove(&id) else {
            return Ok(());
        };
        self.streams.remove(&streams.error);
        self.streams.remove(&streams.data);
        self.send(Frame::fin(streams.error)).await
    }

    async fn reset(&self, stream_id: u32, status: u32) -> io::Result<()> {
        self.send(Frame::RstStream { stream_id, status }).await
    }

    /// Queues a frame for the writer; failing means the connection's write side is gone.
    async fn send(&self, frame: Frame) -> io::Result<()> {
        self.out
            .send(frame)
            .await
            .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))
    }
}
