//! Protocol-level tests: a client built from this module's frame codec (its own zlib contexts)
//! drives `serve_port_forward` over an in-memory pipe, as kubectl's spdystream would.

use std::collections::HashMap;
use std::io;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, ReadHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::timeout;

use super::codec::{FrameReader, chunks, write_frames};
use super::frame::{Frame, RST_PROTOCOL_ERROR, RST_REFUSED_STREAM};
use super::header_block::HeaderBlock;
use super::serve_port_forward;

const ECHO_PORT: u16 = 80;
const REFUSED_PORT: u16 = 81;
const SILENT_PORT: u16 = 82;
const WAIT: Duration = Duration::from_secs(10);

/// Local TCP servers standing in for the pod's ports.
struct Pod {
    echo: u16,
    refused: u16,
    silent: u16,
}

impl Pod {
    async fn start() -> Self {
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let echo_port = echo.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((conn, _)) = echo.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = conn.into_split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                    let _ = w.shutdown().await;
                });
            }
        });
        // Accepts and then neither reads nor closes: a forward to it only ends by reset.
        let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let silent_port = silent.local_addr().unwrap().port();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((conn, _)) = silent.accept().await {
                held.push(conn);
            }
        });
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let refused = closed.local_addr().unwrap().port();
        drop(closed);
        Self {
            echo: echo_port,
            refused,
            silent: silent_port,
        }
    }

    fn dial(
        &self,
    ) -> impl Fn(u16) -> std::pin::Pin<Box<dyn Future<Output = io::Result<TcpStream>> + Send>>
    + Send
    + Sync
    + 'static {
        let ports = HashMap::from([
            (ECHO_PORT, self.echo),
            (REFUSED_PORT, self.refused),
            (SILENT_PORT, self.silent),
        ]);
        move |port| {
            let target = ports.get(&port).copied();
            Box::pin(async move {
                match target {
                    Some(target) => TcpStream::connect(("127.0.0.1", target)).await,
                    None => Err(io::Error::other(format!("no port {port}"))),
                }
            })
        }
    }
}

/// The client end of a session.
struct Client {
    out: Option<mpsc::Sender<Frame>>,
    frames: FrameReader<ReadHalf<DuplexStream>>,
    server: JoinHandle<io::Result<()>>,
}

impl Client {
    async fn connect(pod: &Pod) -> Self {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let server = tokio::spawn(serve_port_forward(server, pod.dial()));
        let (read, write) = tokio::io::split(client);
        let (out, rx) = mpsc::channel(64);
        tokio::spawn(write_frames(write, rx));
        Self {
            out: Some(out),
            frames: FrameReader::new(read),
            server,
        }
    }

    async fn send(&self, frame: Frame) {
        self.out.as_ref().unwrap().send(frame).await.unwrap();
    }

    async fn open(&self, stream_id: u32, kind: &str, port: u16, request: Option<&str>) {
        let mut headers = HeaderBlock::default()
            .with("streamtype", kind)
            .with("port", &port.to_string());
        if let Some(request) = request {
            headers = headers.with("requestid", request);
        }
        self.send(Frame::SynStream {
            stream_id,
            associated_to: 0,
            priority: 0,
            fin: false,
            unidirectional: false,
            headers,
        })
        .await;
    }

    /// Opens the error and data streams of one forwarded connection, like kubectl.
    async fn open_pair(&mut self, error: u32, port: u16, request: &str) {
        self.open(error, "error", port, Some(request)).await;
        self.expect(reply(error)).await;
        self.open(error + 2, "data", port, Some(request)).await;
        self.expect(reply(error + 2)).await;
    }

    async fn next(&mut self) -> Frame {
        timeout(WAIT, self.frames.next())
            .await
            .expect("a frame in time")
            .unwrap()
            .expect("the connection is open")
    }

    async fn expect(&mut self, expected: Frame) {
        assert_eq!(self.next().await, expected);
    }

    /// Reads frames until every listed stream has sent FIN; returns each stream's bytes.
    async fn read_until_fin(&mut self, streams: &[u32]) -> HashMap<u32, Vec<u8>> {
        let mut received: HashMap<u32, Vec<u8>> =
            streams.iter().map(|&s| (s, Vec::new())).collect();
        let mut open = streams.len();
        while open > 0 {
            match self.next().await {
                Frame::Data {
                    stream_id,
                    fin,
                    data,
                } => {
                    let bytes = received
                        .get_mut(&stream_id)
                        .expect("data on a listed stream");
                    bytes.extend_from_slice(&data);
                    if fin {
                        open -= 1;
                    }
                }
                other => panic!("unexpected frame {other:?}"),
            }
        }
        received
    }

    /// Closes the client side and returns what `serve_port_forward` returned.
    async fn close(mut self) -> io::Result<()> {
        self.out = None;
        timeout(WAIT, self.server)
            .await
            .expect("server ends")
            .unwrap()
    }
}

fn reply(stream_id: u32) -> Frame {
    Frame::SynReply {
        stream_id,
        fin: false,
        headers: HeaderBlock::default(),
    }
}

fn payload(seed: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 ^ seed).collect()
}

#[tokio::test]
async fn forwards_a_connection_and_closes_both_streams() {
    let pod = Pod::start().await;
    let mut client = Client::connect(&pod).await;
    client.open_pair(1, ECHO_PORT, "0").await;
    let sent = payload(1, 100_000);
    for frame in chunks(3, &sent, 32 * 1024) {
        client.send(frame).await;
    }
    client.send(Frame::fin(3)).await;
    client.send(Frame::fin(1)).await; // kubectl closes its (unused) side of the error stream
    let received = client.read_until_fin(&[3, 1]).await;
    assert_eq!(received[&3], sent, "echoed through the pod port");
    assert!(received[&1].is_empty(), "no error");
    // kubectl resets the data stream once the remote side is done; nothing else happens.
    client
        .send(Frame::RstStream {
            stream_id: 3,
            status: 5,
        })
        .await;
    client.send(Frame::Ping { id: 1 }).await;
    client.expect(Frame::Ping { id: 1 }).await;
    client.close().await.unwrap();
}

#[tokio::test]
async fn a_dial_failure_is_reported_and_the_session_goes_on() {
    let pod = Pod::start().await;
    let mut client = Client::connect(&pod).await;
    client.open_pair(1, REFUSED_PORT, "0").await;
    let received = client.read_until_fin(&[3, 1]).await;
    let message = String::from_utf8(received[&1].clone()).unwrap();
    assert!(
        message.starts_with("error forwarding port 81: "),
        "{message}"
    );
    assert!(message.to_lowercase().contains("refused"), "{message}");
    assert!(received[&3].is_empty());

    client.open_pair(5, ECHO_PORT, "1").await;
    client
        .send(Frame::data(7, Bytes::from_static(b"still here"), true))
        .await;
    let received = client.read_until_fin(&[7, 5]).await;
    assert_eq!(received[&7], b"still here");
    client.close().await.unwrap();
}

#[tokio::test]
async fn many_interleaved_connections_on_one_session() {
    let pod = Pod::start().await;
    let mut client = Client::connect(&pod).await;
    let count: u32 = 12;
    let mut expected = HashMap::new();
    for i in 0..count {
        client.open_pair(1 + 4 * i, ECHO_PORT, &i.to_string()).await;
    }
    // Interleave every connection's frames, as concurrent kubectl connections would.
    let sends: Vec<_> = (0..count)
        .map(|i| {
            let data_stream = 3 + 4 * i;
            let sent = payload(i as u8, 20_000 + 7_919 * i as usize);
            expected.insert(data_stream, sent.clone());
            chunks(data_stream, &sent, 4096)
        })
        .collect();
    let longest = sends.iter().map(Vec::len).max().unwrap();
    let sender = client.out.clone().unwrap();
    let feeder = tokio::spawn(async move {
        for round in 0..longest {
            for frames in &sends {
                if let Some(frame) = frames.get(round) {
                    sender.send(frame.clone()).await.unwrap();
                }
            }
        }
        for i in 0..count {
            sender.send(Frame::fin(3 + 4 * i)).await.unwrap();
        }
    });
    let all: Vec<u32> = (0..count).flat_map(|i| [1 + 4 * i, 3 + 4 * i]).collect();
    let received = client.read_until_fin(&all).await;
    feeder.await.unwrap();
    for (stream, sent) in expected {
        assert_eq!(received[&stream], sent, "stream {stream}");
        assert!(received[&(stream - 2)].is_empty());
    }
    client.close().await.unwrap();
}

#[tokio::test]
async fn data_stream_first_and_old_clients_without_request_ids() {
    let pod = Pod::start().await;
    let mut client = Client::connect(&pod).await;
    client.open(1, "data", ECHO_PORT, Some("x")).await;
    client.expect(reply(1)).await;
    client
        .send(Frame::data(1, Bytes::from_static(b"early"), true))
        .await;
    client.open(3, "error", ECHO_PORT, Some("x")).await;
    client.expect(reply(3)).await;
    let received = client.read_until_fin(&[1, 3]).await;
    assert_eq!(
        received[&1], b"early",
        "bytes sent before the pair was complete"
    );

    client.open(5, "error", ECHO_PORT, None).await;
    client.expect(reply(5)).await;
    client.open(7, "data", ECHO_PORT, None).await;
    client.expect(reply(7)).await;
    client
        .send(Frame::data(7, Bytes::from_static(b"old"), true))
        .await;
    let received = client.read_until_fin(&[7, 5]).await;
    assert_eq!(received[&7], b"old");
    client.close().await.unwrap();
}

#[tokio::test]
async fn rejects_bad_streams_with_rst_stream() {
    let pod = Pod::start().await;
    let mut client = Client::connect(&pod).await;
    client
        .send(Frame::SynStream {
            stream_id: 1,
            associated_to: 0,
            priority: 0,
            fin: false,
            unidirectional: false,
            headers: HeaderBlock::default().with("streamtype", "data"),
        })
        .await;
    client
        .expect(Frame::RstStream {
            stream_id: 1,
            status: RST_REFUSED_STREAM,
        })
        .await;
    client.open(4, "data", ECHO_PORT, Some("0")).await;
    client
        .expect(Frame::RstStream {
            stream_id: 4,
            status: RST_PROTOCOL_ERROR,
        })
        .await;
    client.open(5, "error", ECHO_PORT, Some("0")).await;
    client.expect(reply(5)).await;
    client.open(7, "error", ECHO_PORT, Some("0")).await;
    client
        .expect(Frame::RstStream {
            stream_id: 7,
            status: RST_PROTOCOL_ERROR,
        })
        .await;
    client.close().await.unwrap();
}

#[tokio::test]
async fn reset_of_the_data_stream_stops_the_forward() {
    let pod = Pod::start().await;
    let mut client = Client::connect(&pod).await;
    client.open_pair(1, SILENT_PORT, "0").await;
    client
        .send(Frame::data(3, Bytes::from_static(b"hello?"), false))
        .await;
    client
        .send(Frame::RstStream {
            stream_id: 3,
            status: 5,
        })
        .await;
    let received = client.read_until_fin(&[1]).await;
    assert!(received[&1].is_empty());
    client.close().await.unwrap();
}

#[tokio::test]
async fn goaway_ends_the_session_once_forwards_are_done() {
    let pod = Pod::start().await;
    let mut client = Client::connect(&pod).await;
    client.open_pair(1, ECHO_PORT, "0").await;
    client
        .send(Frame::GoAway {
            last_good_stream_id: 0,
            status: 0,
        })
        .await;
    client.open(5, "error", ECHO_PORT, Some("1")).await;
    client
        .expect(Frame::RstStream {
            stream_id: 5,
            status: RST_REFUSED_STREAM,
        })
        .await;
    // The running forward still completes after GOAWAY.
    client
        .send(Frame::data(3, Bytes::from_static(b"last"), true))
        .await;
    let received = client.read_until_fin(&[3, 1]).await;
    assert_eq!(received[&3], b"last");
    // Then the server closes the connection although the client keeps its side open.
    let end = timeout(WAIT, client.frames.next())
        .await
        .expect("server closes");
    assert!(end.unwrap().is_none());
    let server = timeout(WAIT, &mut client.server).await.unwrap().unwrap();
    server.unwrap();
}

#[tokio::test]
async fn client_eof_ends_the_session_with_forwards_running() {
    let pod = Pod::start().await;
    let mut client = Client::connect(&pod).await;
    client.open_pair(1, SILENT_PORT, "0").await;
    client.open_pair(5, ECHO_PORT, "1").await;
    client.close().await.unwrap();
}

#[tokio::test]
async fn garbage_ends_the_session_with_an_error() {
    let (mut client, server) = tokio::io::duplex(1024);
    let pod = Pod::start().await;
    let server = tokio::spawn(serve_port_forward(server, pod.dial()));
    // A SPDY/2 control frame.
    client
        .write_all(&[0x80, 0x02, 0x00, 0x06, 0, 0, 0, 4, 0, 0, 0, 1])
        .await
        .unwrap();
    let err = timeout(WAIT, server).await.unwrap().unwrap().unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty(), "the connection was closed");
}
