//! End to end: the real `kubectl port-forward` against a minimal fake API server that answers
//! the SPDY upgrade with `serve_port_forward`, forwarding to local TCP servers.
//!
//! The fake API server speaks plain HTTP/1.1 on 127.0.0.1: discovery, the pod (Running), a
//! refusal of kubectl's WebSocket attempt (so kubectl falls back to SPDY, as it does against
//! an API server of 1.20) and the 101 for `Upgrade: SPDY/3.1`.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::timeout;

use super::serve_port_forward;

const POD_PATH: &str = "/api/v1/namespaces/default/pods/p";
const WAIT: Duration = Duration::from_secs(60);

/// One HTTP request head as the fake API server saw it.
#[derive(Debug, Clone)]
struct Request {
    method: String,
    path: String,
    /// Lowercased names.
    headers: HashMap<String, String>,
}

impl Request {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }
}

/// What the fake API server observed.
#[derive(Default)]
struct Observed {
    requests: Mutex<Vec<Request>>,
}

struct FakeApiServer {
    addr: SocketAddr,
    observed: Arc<Observed>,
    /// What each `serve_port_forward` returned.
    sessions: mpsc::UnboundedReceiver<io::Result<()>>,
}

impl FakeApiServer {
    /// Serves until the test's runtime ends; `ports` maps container ports to local ports.
    async fn start(ports: HashMap<u16, u16>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let observed = Arc::new(Observed::default());
        let (sessions_tx, sessions) = mpsc::unbounded_channel();
        let state = Arc::clone(&observed);
        let ports = Arc::new(ports);
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let (state, ports, sessions) =
                    (Arc::clone(&state), Arc::clone(&ports), sessions_tx.clone());
                tokio::spawn(async move {
                    if let Err(e) = serve_http(conn, &state, ports, sessions).await {
                        eprintln!("fake API server connection: {e}");
                    }
                });
            }
        });
        Self {
            addr,
            observed,
            sessions,
        }
    }

    fn requests(&self) -> Vec<Request> {
        self.observed.requests.lock().unwrap().clone()
    }
}

/// One client connection: requests with keep-alive, until an upgrade takes the connection over.
async fn serve_http(
    conn: TcpStream,
    observed: &Observed,
    ports: Arc<HashMap<u16, u16>>,
    sessions: mpsc::UnboundedSender<io::Result<()>>,
) -> io::Result<()> {
    let mut conn = BufReader::new(conn);
    while let Some(request) = read_request(&mut conn).await? {
        observed.requests.lock().unwrap().push(request.clone());
        let upgrade = request.header("upgrade").to_ascii_lowercase();
        let path = request.path.as_str();
        let (status, body) = match path {
            _ if path == format!("{POD_PATH}/portforward") && upgrade == "spdy/3.1" => {
                conn.write_all(
                    b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\
                      X-Stream-Protocol-Version: portforward.k8s.io\r\n\r\n",
                )
                .await?;
                // The buffered reader goes along: it may already hold the first frames.
                let dial = move |port: u16| {
                    let target = ports.get(&port).copied();
                    async move {
                        let target =
                            target.ok_or_else(|| io::Error::other(format!("no port {port}")))?;
                        TcpStream::connect(("127.0.0.1", target)).await
                    }
                };
                let _ = sessions.send(serve_port_forward(conn, dial).await);
                return Ok(());
            }
            // Like an API server of 1.20, which does not tunnel port-forward over WebSocket.
            _ if upgrade == "websocket" => (
                "400 Bad Request",
                status_json(400, "websocket is not supported"),
            ),
            "/version" => (
                "200 OK",
                json!({"major": "1", "minor": "20", "gitVersion": "v1.20.2"}),
            ),
            "/api" => (
                "200 OK",
                json!({"kind": "APIVersions", "versions": ["v1"],
                    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}),
            ),
            "/apis" => (
                "200 OK",
                json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": []}),
            ),
            "/api/v1" => (
                "200 OK",
                json!({"kind": "APIResourceList", "groupVersion": "v1", "resources": [
                    {"name": "pods", "singularName": "pod", "namespaced": true, "kind": "Pod",
                     "verbs": ["get", "list"], "shortNames": ["po"]},
                    {"name": "pods/portforward", "singularName": "", "namespaced": true,
                     "kind": "PodPortForwardOptions", "verbs": ["create", "get"]}]}),
            ),
            POD_PATH => (
                "200 OK",
                json!({"kind": "Pod", "apiVersion": "v1",
                    "metadata": {"name": "p", "namespace": "default", "uid": "0b9c3f4e-0000-4000-8000-000000000001"},
                    "spec": {"containers": [{"name": "c", "image": "example", "ports": [{"containerPort": 80}]}]},
                    "status": {"phase": "Running"}}),
            ),
            _ => ("404 Not Found", status_json(404, "not found")),
        };
        let body = body.to_string();
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        conn.write_all(head.as_bytes()).await?;
        conn.write_all(body.as_bytes()).await?;
    }
    Ok(())
}

fn status_json(code: u16, message: &str) -> serde_json::Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "code": code})
}

/// Reads a request head (and discards a body); `None` when the client closed the connection.
async fn read_request(conn: &mut BufReader<TcpStream>) -> io::Result<Option<Request>> {
    let mut line = String::new();
    if conn.read_line(&mut line).await? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default();
    let path = target.split('?').next().unwrap_or_default().to_owned();
    let mut headers = HashMap::new();
    loop {
        line.clear();
        conn.read_line(&mut line).await?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    let body_len: u64 = headers
        .get("content-length")
        .map_or(Ok(0), |l| l.parse())
        .map_err(io::Error::other)?;
    tokio::io::copy(&mut (&mut *conn).take(body_len), &mut tokio::io::sink()).await?;
    Ok(Some(Request {
        method,
        path,
        headers,
    }))
}

/// A TCP echo server standing in for the pod's port 80.
async fn echo_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = conn.into_split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    port
}

/// A local port nothing listens on: dialling it is refused.
async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

/// A running `kubectl port-forward` and what it printed.
struct PortForward {
    child: Child,
    stdout: mpsc::UnboundedReceiver<String>,
    stderr: Arc<Mutex<String>>,
    _home: tempfile::TempDir,
}

impl PortForward {
    fn start(api: SocketAddr, ports: &[&str]) -> Self {
        let home = tempfile::tempdir().unwrap();
        let kubeconfig = home.path().join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://{api}\n\
                 contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: nobody\n    namespace: default\n\
                 current-context: fake\nusers:\n- name: nobody\n  user: {{}}\n"
            ),
        )
        .unwrap();
        let mut child = Command::new("kubectl")
            .env("HOME", home.path())
            .env("KUBECONFIG", &kubeconfig)
            .arg("--cache-dir")
            .arg(home.path().join("cache"))
            .args(["port-forward", "--address", "127.0.0.1", "pod/p"])
            .args(ports)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("kubectl is installed");
        let (lines_tx, stdout) = mpsc::unbounded_channel();
        let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
        tokio::spawn(async move {
            while let Ok(Some(line)) = out.next_line().await {
                let _ = lines_tx.send(line);
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err = BufReader::new(child.stderr.take().unwrap()).lines();
        let collected = Arc::clone(&stderr);
        tokio::spawn(async move {
            while let Ok(Some(line)) = err.next_line().await {
                let mut all = collected.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
            }
        });
        Self {
            child,
            stdout,
            stderr,
            _home: home,
        }
    }

    /// Waits for "Forwarding from 127.0.0.1:LOCAL -> REMOTE" for each remote port.
    async fn local_ports(&mut self, remotes: &[u16]) -> HashMap<u16, u16> {
        let mut found = HashMap::new();
        while found.len() < remotes.len() {
            let line = timeout(WAIT, self.stdout.recv())
                .await
                .unwrap_or_else(|_| panic!("kubectl is forwarding; stderr: {}", self.stderr()))
                .unwrap_or_else(|| panic!("kubectl exited; stderr: {}", self.stderr()));
            let Some(rest) = line.strip_prefix("Forwarding from 127.0.0.1:") else {
                continue;
            };
            let (local, remote) = rest.split_once(" -> ").expect("kubectl's format");
            found.insert(remote.parse().unwrap(), local.parse().unwrap());
        }
        found
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until kubectl's stderr contains `text`.
    async fn wait_for_stderr(&self, text: &str) {
        let waited = timeout(WAIT, async {
            while !self.stderr().contains(text) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        assert!(
            waited.is_ok(),
            "kubectl did not print {text:?}; stderr: {}",
            self.stderr()
        );
    }
}

/// Sends `data` through `port`, reading concurrently, half-closes, and returns all read back.
async fn echo_through(port: u16, data: Vec<u8>) -> Vec<u8> {
    let conn = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (mut r, mut w) = conn.into_split();
    let writer = tokio::spawn(async move {
        w.write_all(&data).await.unwrap();
        w.shutdown().await.unwrap();
    });
    let mut back = Vec::new();
    r.read_to_end(&mut back).await.unwrap();
    writer.await.unwrap();
    back
}

fn payload(seed: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 31 + seed * 7) % 256) as u8)
        .collect()
}

/// Several connections at once over kubectl's one SPDY session, each checked byte for byte.
async fn concurrent_round(local: u16, sizes: &[usize]) {
    let mut clients = JoinSet::new();
    for (i, &len) in sizes.iter().enumerate() {
        clients.spawn(async move {
            let sent = payload(i, len);
            let back = echo_through(local, sent.clone()).await;
            assert_eq!(back.len(), sent.len(), "connection {i}: length");
            assert!(back == sent, "connection {i}: content");
        });
    }
    let done = timeout(WAIT, async {
        while let Some(client) = clients.join_next().await {
            client.unwrap();
        }
    })
    .await;
    assert!(done.is_ok(), "all forwarded connections finish");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_port_forward_through_serve_port_forward() {
    let echo = echo_server().await;
    let refused = closed_port().await;
    let mut api = FakeApiServer::start(HashMap::from([(80, echo), (81, refused)])).await;
    let mut kubectl = PortForward::start(api.addr, &[":80", ":81"]);
    let local = kubectl.local_ports(&[80, 81]).await;

    // Several connections at once, one of them over a megabyte, then another round on the
    // same session.
    concurrent_round(local[&80], &[1_500_000, 200_000, 65_536, 16_384, 1, 4_000]).await;
    concurrent_round(local[&80], &[300_000, 70_000, 12]).await;

    let requests = api.requests();
    let portforward: Vec<_> = requests
        .iter()
        .filter(|r| r.path.ends_with("/portforward"))
        .collect();
    assert_eq!(
        portforward.len(),
        2,
        "one WebSocket attempt, one SPDY upgrade: {portforward:#?}"
    );
    assert_eq!(portforward[0].header("upgrade").to_lowercase(), "websocket");
    assert!(
        portforward[0]
            .header("sec-websocket-protocol")
            .contains("portforward.k8s.io")
    );
    let spdy = portforward[1];
    assert_eq!(spdy.method, "POST");
    assert_eq!(spdy.header("upgrade"), "SPDY/3.1");
    assert_eq!(
        spdy.header("x-stream-protocol-version"),
        "portforward.k8s.io"
    );

    // A refused dial: the message arrives through the error stream and kubectl prints it.
    let back = echo_through(local[&81], b"anyone?".to_vec()).await;
    assert!(back.is_empty());
    kubectl
        .wait_for_stderr(&format!(
            "an error occurred forwarding {} -> 81: error forwarding port 81:",
            local[&81]
        ))
        .await;
    assert!(
        kubectl.stderr().to_lowercase().contains("refused"),
        "{}",
        kubectl.stderr()
    );

    // kubectl (since 1.29) closes the whole SPDY connection after an error and exits with
    // "lost connection to pod"; the session ends cleanly when it does.
    let session = timeout(WAIT, api.sessions.recv())
        .await
        .expect("session ends")
        .unwrap();
    session.expect("a client close is a clean end");
    let status = timeout(WAIT, kubectl.child.wait())
        .await
        .expect("kubectl exits")
        .unwrap();
    assert!(!status.success());
    kubectl.wait_for_stderr("lost connection to pod").await;
}
