//! The kubelet API over real HTTPS and WebSockets, against a pod registered without a cluster.

use std::{sync::Arc, time::Duration};

use futures::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Empty};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::{Container, EnvVar, Pod, PodSpec};
use kube::api::ObjectMeta;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};
use tokio_rustls::{TlsConnector, client::TlsStream};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{self, Message, client::IntoClientRequest, protocol::frame::coding::CloseCode},
};
use tokio_util::sync::CancellationToken;

use crate::{
    behaviour::Behaviour,
    init_process::{self, InitSpec},
    network::PodNetwork,
    pod_runtime::{PodRegistry, PodRuntime, Started},
    pod_user::PodUser,
    tls,
};

type Socket = WebSocketStream<TlsStream<TcpStream>>;

/// A kubelet API serving one pod `ns/pod` (container `main`, env `GREETING=hello`) whose
/// container runs, and port 8080 forwarded to `forward_to` if given.
struct Harness {
    port: u16,
    connector: TlsConnector,
    pod: Arc<PodRuntime>,
    server: JoinHandle<()>,
    _dir: TempDir,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn harness(forward_to: Option<u16>) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["bin", "root"] {
        std::fs::create_dir(dir.path().join(sub)).unwrap();
    }
    let pod = Pod {
        metadata: ObjectMeta {
            namespace: Some("ns".into()),
            name: Some("pod".into()),
            uid: Some("uid-1".into()),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "main".into(),
                image: Some("busybox".into()),
                env: Some(vec![
                    EnvVar {
                        name: "GREETING".into(),
                        value: Some("hello".into()),
                        ..EnvVar::default()
                    },
                    EnvVar {
                        name: "HOME".into(),
                        value: Some("/home/vscode".into()),
                        ..EnvVar::default()
                    },
                ]),
                ..Container::default()
            }],
            ..PodSpec::default()
        }),
        ..Pod::default()
    };
    let behaviour = Behaviour {
        forwards: forward_to.map(|to| (8080, to)).into_iter().collect(),
        ..Behaviour::default()
    };
    let runtime = Arc::new(PodRuntime::new(
        &pod,
        dir.path().to_owned(),
        &behaviour,
        CancellationToken::new(),
    ));
    runtime
        .container("main")
        .unwrap()
        .log
        .start_run()
        .await
        .unwrap();
    let registry = Arc::new(PodRegistry::default());
    registry.insert(runtime.clone());

    let (acceptor, certificate) = tls::self_signed().unwrap();
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(super::serve(listener, acceptor, registry));
    Harness {
        port,
        connector: connector(certificate),
        pod: runtime,
        server,
        _dir: dir,
    }
}

/// A client that trusts the kubelet's self-signed certificate (and only it).
fn connector(certificate: CertificateDer<'static>) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(certificate).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

impl Harness {
    async fn tls(&self) -> TlsStream<TcpStream> {
        let tcp = TcpStream::connect(("127.0.0.1", self.port)).await.unwrap();
        let name = ServerName::try_from("127.0.0.1").unwrap();
        self.connector.connect(name, tcp).await.unwrap()
    }

    /// A WebSocket to `path` offering `protocols`; the negotiated protocol comes back.
    async fn websocket(
        &self,
        path: &str,
        protocols: &str,
    ) -> Result<(Socket, Option<String>), tungstenite::Error> {
        let mut request = format!("wss://127.0.0.1:{}{path}", self.port)
            .into_client_request()
            .unwrap();
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", protocols.parse().unwrap());
        let (socket, response) = tokio_tungstenite::client_async(request, self.tls().await).await?;
        let protocol = response
            .headers()
            .get("Sec-WebSocket-Protocol")
            .map(|p| p.to_str().unwrap().to_owned());
        Ok((socket, protocol))
    }

    /// A plain HTTP/1.1 request; the response's status and the body stream.
    async fn request(&self, method: Method, path: &str) -> hyper::Response<hyper::body::Incoming> {
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(self.tls().await))
                .await
                .unwrap();
        tokio::spawn(connection.with_upgrades());
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("Host", "127.0.0.1")
            .body(Empty::<bytes::Bytes>::new())
            .unwrap();
        sender.send_request(request).await.unwrap()
    }

    async fn get(&self, path: &str) -> hyper::Response<hyper::body::Incoming> {
        self.request(Method::GET, path).await
    }

    async fn get_text(&self, path: &str) -> (StatusCode, String) {
        self.text(Method::GET, path).await
    }

    async fn text(&self, method: Method, path: &str) -> (StatusCode, String) {
        let response = self.request(method, path).await;
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }
}

/// What an exec session produced.
#[derive(Debug, Default)]
struct Exec {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    status: Option<Value>,
    close: Option<CloseCode>,
}

impl Exec {
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

fn exec_path(command: &[&str], flags: &str) -> String {
    let command: String = command
        .iter()
        .map(|arg| {
            format!(
                "command={}&",
                form_urlencoded::byte_serialize(arg.as_bytes()).collect::<String>()
            )
        })
        .collect();
    format!("/exec/ns/pod/main?{command}{flags}")
}

/// Runs `command` over v5, feeding `stdin` (then closing it) if given.
async fn exec(harness: &Harness, command: &[&str], stdin: Option<&[u8]>) -> Exec {
    let flags = if stdin.is_some() {
        "stdin=1&stdout=1&stderr=1"
    } else {
        "stdout=1&stderr=1"
    };
    let (mut socket, protocol) = harness
        .websocket(
            &exec_path(command, flags),
            "v5.channel.k8s.io, v4.channel.k8s.io",
        )
        .await
        .unwrap();
    assert_eq!(protocol.as_deref(), Some("v5.channel.k8s.io"));
    if let Some(stdin) = stdin {
        for chunk in stdin.chunks(64 * 1024) {
            let mut frame = vec![0];
            frame.extend_from_slice(chunk);
            socket.send(Message::binary(frame)).await.unwrap();
        }
        socket.send(Message::binary(vec![255, 0])).await.unwrap();
    }
    read_exec(socket).await
}

async fn read_exec(mut socket: Socket) -> Exec {
    let mut result = Exec::default();
    while let Some(message) = tokio::time::timeout(Duration::from_secs(20), socket.next())
        .await
        .expect("exec output in time")
    {
        match message.unwrap() {
            Message::Binary(data) => match data[0] {
                1 => result.stdout.extend_from_slice(&data[1..]),
                2 => result.stderr.extend_from_slice(&data[1..]),
                3 => {
                    assert!(result.status.is_none(), "one status");
                    result.status = Some(serde_json::from_slice(&data[1..]).unwrap());
                }
                other => panic!("unexpected channel {other}"),
            },
            Message::Close(frame) => {
                assert!(result.status.is_some(), "the status comes before the close");
                result.close = frame.map(|f| f.code);
            }
            _ => {}
        }
    }
    result
}

fn failure(command: &str, code: i32) -> Value {
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!("command terminated with non-zero exit code: error executing command [{command}], exit code {code}"),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
    })
}

#[tokio::test]
async fn exec_reports_output_and_exit_codes() {
    let harness = harness(None).await;
    let ok = exec(&harness, &["sh", "-c", "echo hi; echo oops >&2"], None).await;
    assert_eq!(
        (ok.stdout(), String::from_utf8_lossy(&ok.stderr).as_ref()),
        ("hi\n".to_owned(), "oops\n")
    );
    assert_eq!(
        ok.status,
        Some(json!({"metadata": {}, "status": "Success"}))
    );
    assert_eq!(ok.close, Some(CloseCode::Normal));

    let three = exec(&harness, &["sh", "-c", "exit 3"], None).await;
    assert_eq!(three.status, Some(failure("sh -c exit 3", 3)));
    assert_eq!(three.close, Some(CloseCode::Normal));

    let killed = exec(&harness, &["sh", "-c", "kill -9 $$"], None).await;
    assert_eq!(killed.status, Some(failure("sh -c kill -9 $$", 137)));
}

#[tokio::test]
async fn exec_runs_in_the_pod_directory_with_its_environment() {
    let harness = harness(None).await;
    let stub = harness.pod.dir.join("bin").join("stub");
    std::fs::write(&stub, "#!/bin/sh\necho stub \"$@\"\n").unwrap();
    std::fs::set_permissions(&stub, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let env = exec(
        &harness,
        &[
            "sh",
            "-c",
            "pwd; echo $HOME; echo $GREETING; echo $PATH; stub a b",
        ],
        None,
    )
    .await;
    let root = harness.pod.root_dir().display().to_string();
    let bin = harness.pod.dir.join("bin").display().to_string();
    assert_eq!(
        env.stdout(),
        format!("{root}\n{root}\nhello\n{bin}:/usr/local/bin:/usr/bin:/bin\nstub a b\n")
    );
}

#[tokio::test]
async fn exec_pipes_stdin_until_it_is_closed() {
    let harness = harness(None).await;
    let echoed = exec(&harness, &["cat"], Some(b"hello\nworld\n")).await;
    assert_eq!(echoed.stdout(), "hello\nworld\n");
    let input = vec![b'x'; 3 * 1024 * 1024];
    let counted = exec(&harness, &["wc", "-c"], Some(&input)).await;
    assert_eq!(counted.stdout().trim(), "3145728");
    assert_eq!(
        counted.status,
        Some(json!({"metadata": {}, "status": "Success"}))
    );
}

#[tokio::test]
async fn exec_streams_ten_megabytes_intact() {
    let harness = harness(None).await;
    const SIZE: usize = 10 * 1024 * 1024;
    let big = exec(
        &harness,
        &[
            "sh",
            "-c",
            &format!("yes 0123456789abcdef | head -c {SIZE}"),
        ],
        None,
    )
    .await;
    assert_eq!(big.stdout.len(), SIZE);
    let pattern = b"0123456789abcdef\n";
    assert!(
        big.stdout
            .chunks(pattern.len())
            .all(|chunk| pattern.starts_with(chunk)),
        "content intact"
    );
    assert_eq!(
        big.status,
        Some(json!({"metadata": {}, "status": "Success"}))
    );
}

#[tokio::test]
async fn exec_processes_die_when_the_client_goes() {
    let harness = harness(None).await;
    let path = exec_path(&["sh", "-c", "sleep 60 & echo $!; wait"], "stdout=1");
    let (mut socket, _) = harness.websocket(&path, "v5.channel.k8s.io").await.unwrap();
    let data = next_binary(&mut socket).await;
    let pid: u32 = String::from_utf8_lossy(&data[1..]).trim().parse().unwrap();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    drop(socket);
    let gone = async {
        while std::path::Path::new(&format!("/proc/{pid}")).exists() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), gone)
        .await
        .expect("the whole process group is killed");
}

#[tokio::test]
async fn exec_of_a_missing_command_fails_like_a_runtime() {
    let harness = harness(None).await;
    let missing = exec(&harness, &["no-such-command"], None).await;
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("exec: \"no-such-command\": executable file not found in $PATH"),
        "{stderr}"
    );
    let status = missing.status.unwrap();
    assert_eq!(status["reason"], "NonZeroExitCode");
    assert_eq!(status["details"]["causes"][0]["message"], "127");
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("executable file not found in $PATH")
    );
}

#[tokio::test]
async fn exec_negotiates_its_subprotocol() {
    let harness = harness(None).await;
    let path = exec_path(&["sh", "-c", "exit 2"], "stdout=1");
    let (socket, protocol) = harness.websocket(&path, "v4.channel.k8s.io").await.unwrap();
    assert_eq!(protocol.as_deref(), Some("v4.channel.k8s.io"));
    assert_eq!(
        read_exec(socket).await.status,
        Some(failure("sh -c exit 2", 2))
    );

    let (socket, protocol) = harness.websocket(&path, "channel.k8s.io").await.unwrap();
    assert_eq!(protocol.as_deref(), Some("channel.k8s.io"));
    let mut socket = socket;
    let status = loop {
        match socket.next().await.unwrap().unwrap() {
            Message::Binary(data) if data[0] == 3 => {
                break String::from_utf8(data[1..].to_vec()).unwrap();
            }
            _ => {}
        }
    };
    assert_eq!(
        status,
        "command terminated with non-zero exit code: error executing command [sh -c exit 2], exit code 2"
    );

    match harness.websocket(&path, "base64.channel.k8s.io").await {
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), StatusCode::BAD_REQUEST)
        }
        other => panic!("expected a 400, got {other:?}"),
    }
}

#[tokio::test]
async fn exec_with_a_tty_runs_under_a_pseudo_terminal_that_resizes() {
    let harness = harness(None).await;
    let path = exec_path(
        &[
            "sh",
            "-c",
            "read line; stty size; test -t 0 && echo is-a-tty",
        ],
        "stdin=1&stdout=1&tty=1",
    );
    let (mut socket, _) = harness.websocket(&path, "v5.channel.k8s.io").await.unwrap();
    let mut resize = vec![4];
    resize.extend_from_slice(br#"{"Width":100,"Height":40}"#);
    socket.send(Message::binary(resize)).await.unwrap();
    socket
        .send(Message::binary(b"\x00go\n".to_vec()))
        .await
        .unwrap();
    let result = read_exec(socket).await;
    let output = result.stdout();
    assert!(output.contains("40 100\r\n"), "{output:?}");
    assert!(output.contains("is-a-tty"), "{output:?}");
    assert!(result.stderr.is_empty());
    assert_eq!(
        result.status,
        Some(json!({"metadata": {}, "status": "Success"}))
    );
}

#[tokio::test]
async fn exec_needs_a_running_container_and_a_websocket() {
    let harness = harness(None).await;
    let (status, _) = harness.get_text(&exec_path(&["true"], "stdout=1")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    match harness
        .websocket(
            &exec_path(&["true"], "stdout=1").replace("/main?", "/other?"),
            "v5.channel.k8s.io",
        )
        .await
    {
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), StatusCode::NOT_FOUND)
        }
        other => panic!("expected a 404, got {other:?}"),
    }
}

/// An echo server on a free loopback port.
async fn echo_server() -> u16 {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut read, mut write) = stream.split();
                let _ = tokio::io::copy(&mut read, &mut write).await;
            });
        }
    });
    port
}

async fn next_binary(socket: &mut Socket) -> Vec<u8> {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .unwrap();
        if let Message::Binary(data) = message.unwrap().unwrap() {
            return data.to_vec();
        }
    }
}

#[tokio::test]
async fn port_forward_over_a_websocket_uses_kube_rs_framing() {
    let echo = echo_server().await;
    let harness = harness(Some(echo)).await;
    // kube-rs offers v5 then v4 and accepts v4, which a kubelet's port-forward speaks.
    let (mut socket, protocol) = harness
        .websocket(
            "/portForward/ns/pod?ports=8080%2C9999",
            "v5.channel.k8s.io, v4.channel.k8s.io",
        )
        .await
        .unwrap();
    assert_eq!(protocol.as_deref(), Some("v4.channel.k8s.io"));
    let mut opened = Vec::new();
    for _ in 0..4 {
        opened.push(next_binary(&mut socket).await);
    }
    let [lo, hi] = 8080u16.to_le_bytes();
    let [lo2, hi2] = 9999u16.to_le_bytes();
    assert_eq!(
        opened,
        [
            vec![0, lo, hi],
            vec![1, lo, hi],
            vec![2, lo2, hi2],
            vec![3, lo2, hi2]
        ]
    );
    let error = next_binary(&mut socket).await;
    assert_eq!(
        error[0], 3,
        "port 9999 has no target: its error channel says so"
    );
    let error = String::from_utf8_lossy(&error[1..]);
    assert!(
        error.starts_with("error forwarding port 9999 to pod ns/pod, uid uid-1:"),
        "{error}"
    );

    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let mut frame = vec![0];
    frame.extend_from_slice(&payload);
    socket.send(Message::binary(frame)).await.unwrap();
    let mut echoed = Vec::new();
    while echoed.len() < payload.len() {
        let data = next_binary(&mut socket).await;
        assert_eq!(data[0], 0);
        echoed.extend_from_slice(&data[1..]);
    }
    assert_eq!(echoed, payload);
    socket.close(None).await.unwrap();
}

#[tokio::test]
async fn port_forward_refuses_spdy_over_websocket_and_accepts_plain_spdy() {
    let harness = harness(None).await;
    match harness
        .websocket(
            "/portForward/ns/pod?ports=8080",
            "SPDY/3.1+portforward.k8s.io",
        )
        .await
    {
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), StatusCode::BAD_REQUEST)
        }
        other => panic!("kubectl must get a non-101 to fall back from, got {other:?}"),
    }
    let mut tls = harness.tls().await;
    tls.write_all(
        b"POST /portForward/ns/pod HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\
          X-Stream-Protocol-Version: portforward.k8s.io\r\nContent-Length: 0\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = vec![0; 1024];
    let read = tls.read(&mut head).await.unwrap();
    let head = String::from_utf8_lossy(&head[..read]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    for header in [
        "connection: upgrade",
        "upgrade: spdy/3.1",
        "x-stream-protocol-version: portforward.k8s.io",
    ] {
        assert!(head.contains(header), "{header} in {head}");
    }
}

#[tokio::test]
async fn container_logs_honour_the_kubelet_parameters() {
    let harness = harness(None).await;
    let log = &harness.pod.container("main").unwrap().log;
    log.append("one").await.unwrap();
    log.append("two").await.unwrap();

    assert_eq!(
        harness.get_text("/containerLogs/ns/pod/main").await,
        (StatusCode::OK, "one\ntwo\n".to_owned())
    );
    let (_, tail) = harness
        .get_text("/containerLogs/ns/pod/main?tailLines=1&timestamps=true")
        .await;
    let (stamp, text) = tail.trim_end().split_once(' ').unwrap();
    assert_eq!(text, "two");
    assert!(
        stamp.parse::<k8s_openapi::jiff::Timestamp>().is_ok(),
        "{stamp}"
    );
    assert_eq!(
        harness
            .get_text("/containerLogs/ns/pod/main?limitBytes=5")
            .await
            .1,
        "one\nt"
    );
    assert_eq!(
        harness
            .get_text("/containerLogs/ns/pod/main?sinceSeconds=3600")
            .await
            .1,
        "one\ntwo\n"
    );

    let (status, message) = harness
        .get_text("/containerLogs/ns/pod/main?previous=true")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        message,
        "previous terminated container \"main\" in pod \"pod\" not found"
    );

    // Following: what is there, then new lines, until the run ends.
    let response = harness
        .get("/containerLogs/ns/pod/main?follow=true&tailLines=1")
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(first, "two\n");
    log.append("three").await.unwrap();
    let next = tokio::time::timeout(Duration::from_secs(5), body.frame())
        .await
        .unwrap();
    assert_eq!(next.unwrap().unwrap().into_data().unwrap(), "three\n");
    log.finish_run();
    let end = tokio::time::timeout(Duration::from_secs(5), body.frame())
        .await
        .unwrap();
    assert!(end.is_none(), "the stream ends with the run");

    // A restart: the last run becomes `previous`.
    log.start_run().await.unwrap();
    log.append("four").await.unwrap();
    assert_eq!(
        harness.get_text("/containerLogs/ns/pod/main").await.1,
        "four\n"
    );
    assert_eq!(
        harness
            .get_text("/containerLogs/ns/pod/main?previous=1")
            .await
            .1,
        "one\ntwo\nthree\n"
    );
}

#[tokio::test]
async fn health_and_unknown_routes() {
    let harness = harness(None).await;
    assert_eq!(
        harness.get_text("/healthz").await,
        (StatusCode::OK, "ok".to_owned())
    );
    assert_eq!(harness.get_text("/metrics").await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        harness.get_text("/containerLogs/ns/other/main").await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn dropping_streams_cuts_the_pods_sessions_and_new_ones_work() {
    let harness = harness(None).await;
    let path = exec_path(&["sleep", "60"], "stdout=1");
    // The session counts from the handshake on.
    let (mut socket, _) = harness.websocket(&path, "v5.channel.k8s.io").await.unwrap();

    let (status, body) = harness
        .text(Method::POST, "/testbed/drop-streams/ns/pod")
        .await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, r#"{"dropped":1}"#)
    );
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match socket.next().await {
                None | Some(Err(_)) => return None,
                Some(Ok(Message::Close(frame))) => return Some(format!("a close frame {frame:?}")),
                Some(Ok(Message::Binary(data))) if data.first() == Some(&3) => {
                    return Some("a status".to_owned());
                }
                Some(Ok(_)) => {}
            }
        }
    })
    .await
    .expect("the session is cut");
    assert_eq!(end, None, "cut without a goodbye");

    let again = exec(&harness, &["echo", "again"], None).await;
    assert_eq!(again.stdout(), "again\n");
    assert_eq!(
        harness
            .text(Method::POST, "/testbed/drop-streams/ns/pod")
            .await
            .1,
        r#"{"dropped":0}"#
    );
    assert_eq!(
        harness
            .text(Method::POST, "/testbed/drop-streams/ns/other")
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}

/// The harness's pod with an init process (as user `nobody`) in namespaces of its own, when
/// running as root.
async fn harness_in_namespaces() -> Option<Harness> {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root for namespaces");
        return None;
    }
    let harness = harness(None).await;
    let pod = &harness.pod;
    let user = PodUser::find("nobody").unwrap();
    let workspace = pod.dir.join("workspaces/project");
    user.own_dir(&workspace).await.unwrap();
    let env = vec![("INIT".to_owned(), "yes".to_owned())];
    let spec = InitSpec {
        user: &user,
        cwd: &workspace,
        env: &env,
        log: &pod.dir.join("init.log"),
    };
    let namespaces = init_process::start(&spec, pod.stop_token()).await.unwrap();
    pod.set_started(Started {
        network: PodNetwork::Namespaces(Arc::new(namespaces)),
        stand_ins: None,
    });
    Some(harness)
}

#[tokio::test]
async fn exec_enters_the_namespaces_of_the_pods_init_process() {
    let Some(harness) = harness_in_namespaces().await else {
        return;
    };
    let inside = exec(
        &harness,
        &[
            "sh",
            "-c",
            "stat -c %U /proc/1; readlink /proc/1/cwd; tr '\\0' '\\n' </proc/1/environ; id -u; pwd; echo $GREETING",
        ],
        None,
    )
    .await;
    let dir = harness.pod.dir.display();
    assert_eq!(
        inside.stdout(),
        format!("nobody\n{dir}/workspaces/project\nINIT=yes\n0\n{dir}/root\nhello\n"),
        "{}",
        String::from_utf8_lossy(&inside.stderr)
    );
    let killed = exec(&harness, &["sh", "-c", "kill -9 $$"], None).await;
    assert_eq!(killed.status, Some(failure("sh -c kill -9 $$", 137)));

    let init = harness.pod.namespaces().unwrap().init_pid();
    harness.pod.shutdown();
    // Gone, or a zombie until whoever inherited it reaps it.
    let running = || {
        std::fs::read_to_string(format!("/proc/{init}/stat")).is_ok_and(|stat| {
            !stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
    };
    let gone = async {
        while running() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), gone)
        .await
        .expect("the init process ends with the pod");
}

#[tokio::test]
async fn port_forward_reaches_any_port_in_the_pods_network_namespace() {
    let Some(harness) = harness_in_namespaces().await else {
        return;
    };
    let namespaces = harness.pod.namespaces().unwrap();
    let listener = namespaces.listen(8081).await.unwrap();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        stream.write_all(b"from the pod").await.unwrap();
    });
    let mut stream = harness.pod.dial(8081).await.unwrap();
    let mut greeting = String::new();
    stream.read_to_string(&mut greeting).await.unwrap();
    assert_eq!(greeting, "from the pod");

    let refused = harness.pod.dial(8082).await.unwrap_err().to_string();
    assert_eq!(
        refused,
        "error forwarding port 8082 to pod ns/pod, uid uid-1: dial tcp 127.0.0.1:8082: connect: \
         connection refused"
    );
}
