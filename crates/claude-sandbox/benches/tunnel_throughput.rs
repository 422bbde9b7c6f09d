//! Tunnels through the testbed's real kubelet, next to `kubectl port-forward` on the same node; and
//! how long `up` takes to Ready and `verify` to pass, under runc and gVisor.
//!
//! `cargo bench -p claude-sandbox --bench tunnel_throughput [-- MEGABYTES [ROUNDS]]` (as root,
//! after `cargo run -p kube-testbed -- build`) starts a testbed with a real node, deploys one
//! sandbox per runtime, runs a data source in each pod (Node.js of the devcontainer image, started
//! with `claude-sandbox exec`, listening on the pod's loopback) and downloads from it through each
//! transport that works there. It prints MB/s, the ratio to kubectl and the timings: figures,
//! never assertions.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use claude_sandbox_core::Via;
use claude_sandbox_kube::{
    agent_sandbox,
    cluster::{Cluster, ConnectOptions},
    sandbox_ref::SandboxRef,
    tunnel::Tunnel,
};
use kube_testbed::{NodeKind, Testbed, TestbedOptions};
use tokio::{
    io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader},
    net::TcpStream,
};

/// The data source's port inside the pod.
const SOURCE_PORT: u16 = 9000;
const NAMESPACE: &str = "bench";
/// Each connection sends a big-endian u64 byte count and gets that many bytes.
const SOURCE: &str = "const net = require('net'); const block = Buffer.alloc(1 << 20, 7); \
net.createServer((s) => { let head = Buffer.alloc(0); let left = -1; \
  const pump = () => { while (left > 0) { const n = Math.min(left, block.length); left -= n; \
    if (!s.write(n === block.length ? block : block.subarray(0, n))) { s.once('drain', pump); return; } } \
    s.end(); }; \
  s.on('data', (d) => { if (left >= 0) return; head = Buffer.concat([head, d]); if (head.length < 8) return; \
    left = Number(head.readBigUInt64BE(0)); pump(); }); \
}).listen(9000, '127.0.0.1', () => console.log('serving'));";

#[tokio::main]
async fn main() {
    let numbers: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let megabytes = numbers.first().copied().unwrap_or(64);
    let rounds = numbers.get(1).copied().unwrap_or(3);

    let testbed = Testbed::start_with(TestbedOptions::default().node(NodeKind::Real))
        .await
        .expect("a testbed with a real node (run `cargo run -p kube-testbed -- build` first)");
    let kubeconfig = testbed.kubeconfig();
    let namespace: k8s_openapi::api::core::v1::Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": NAMESPACE}})).unwrap();
    kube::Api::<k8s_openapi::api::core::v1::Namespace>::all(testbed.client().unwrap())
        .create(&Default::default(), &namespace)
        .await
        .unwrap();
    kube_testbed::wait_for_default_service_account(&testbed.client().unwrap(), NAMESPACE, true)
        .await
        .unwrap();

    let cluster = Cluster::connect(&ConnectOptions {
        kubeconfig: Some(kubeconfig.clone()),
        context: None,
        namespace: Some(NAMESPACE.to_owned()),
    })
    .await
    .unwrap();
    let version = agent_sandbox::served_version(&cluster)
        .await
        .unwrap()
        .unwrap();
    let bytes = megabytes * 1024 * 1024;
    let mut kubectl = None;
    println!("| runtime | `up` to Ready | `verify` |");
    println!("| --- | --- | --- |");
    let mut rates = Vec::new();
    for (name, runtime) in [("runc-box", "runc"), ("gvisor-box", "gvisor")] {
        let started = Instant::now();
        run(
            &kubeconfig,
            &[
                "up",
                name,
                "-n",
                NAMESPACE,
                "--runtime",
                runtime,
                "--requests",
                "cpu=250m,memory=1Gi",
                "--timeout",
                "5m",
            ],
        )
        .await;
        let up = started.elapsed();
        let started = Instant::now();
        run(&kubeconfig, &["verify", name, "-n", NAMESPACE]).await;
        let verify = started.elapsed();
        println!(
            "| {runtime} | {:.1} s | {:.1} s |",
            up.as_secs_f64(),
            verify.as_secs_f64()
        );
        let _source = start_source(&kubeconfig, name).await;
        let sandbox = SandboxRef::new(&cluster, version, name);
        if runtime == "runc" {
            // gVisor's network stack is not the pod's: kubectl port-forward finds nothing there.
            let rate = best_of(rounds, || async {
                let (mut forward, port) = kubectl_port_forward(&kubeconfig, name).await;
                let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
                let rate = download(stream, bytes).await;
                let _ = forward.kill().await;
                rate
            })
            .await;
            kubectl = Some(rate);
            rates.push((runtime, "kubectl port-forward", rate));
        }
        let vias: &[(&str, Via)] = if runtime == "runc" {
            &[
                ("claude-sandbox --via port-forward", Via::PortForward),
                ("claude-sandbox --via exec", Via::Exec),
            ]
        } else {
            &[("claude-sandbox --via exec", Via::Exec)]
        };
        for (label, via) in vias {
            let tunnel = Tunnel::new(&cluster, &sandbox, SOURCE_PORT, *via)
                .await
                .unwrap();
            let rate = best_of(rounds, || async {
                download(tunnel.open().await.unwrap(), bytes).await
            })
            .await;
            rates.push((runtime, label, rate));
        }
    }
    let kubectl = kubectl.expect("measured under runc");
    println!();
    println!(
        "Downloading {megabytes} MB, best of {rounds}, through kube-apiserver to the real kubelet:"
    );
    println!();
    println!("| runtime | transport | MB/s | vs kubectl (runc) |");
    println!("| --- | --- | --- | --- |");
    for (runtime, label, rate) in rates {
        println!(
            "| {runtime} | {label} | {rate:.1} | {:.2}× |",
            rate / kubectl
        );
    }
}

async fn best_of<F, Fut>(rounds: usize, mut measure: F) -> f64
where
    F: FnMut() -> Fut,
    Fut: Future<Output = f64>,
{
    let mut best: f64 = 0.0;
    for _ in 0..rounds {
        best = best.max(measure().await);
    }
    best
}

/// Asks the source for `bytes` and reads them: MB/s.
async fn download(mut stream: impl AsyncRead + AsyncWrite + Unpin, bytes: usize) -> f64 {
    let started = Instant::now();
    stream
        .write_all(&(bytes as u64).to_be_bytes())
        .await
        .unwrap();
    let mut buffer = vec![0u8; 256 * 1024];
    let mut received = 0;
    while received < bytes {
        let n = stream.read(&mut buffer).await.unwrap();
        assert!(n > 0, "the stream ended after {received} of {bytes} bytes");
        received += n;
    }
    bytes as f64 / (1024.0 * 1024.0) / started.elapsed().as_secs_f64()
}

/// Runs `claude-sandbox ARGS` to success.
async fn run(kubeconfig: &Path, args: &[&str]) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_claude-sandbox"))
        .args(args)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The data source in sandbox `name`'s pod, until the exec session ends.
async fn start_source(kubeconfig: &Path, name: &str) -> tokio::process::Child {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_claude-sandbox"))
        .args(["exec", name, "-n", NAMESPACE, "--kubeconfig"])
        .arg(kubeconfig)
        .args(["--", "node", "-e", SOURCE])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = tokio::time::timeout(Duration::from_secs(60), lines.next_line()).await;
    assert!(
        matches!(ready, Ok(Ok(Some(_)))),
        "the data source did not start"
    );
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    child
}

/// `kubectl port-forward` to the source on a free local port.
async fn kubectl_port_forward(kubeconfig: &Path, pod: &str) -> (tokio::process::Child, u16) {
    let mut child = tokio::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args([
            "-n",
            NAMESPACE,
            "port-forward",
            &format!("pod/{pod}"),
            &format!("0:{SOURCE_PORT}"),
        ])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("kubectl runs");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .expect("kubectl says where it listens");
    // "Forwarding from 127.0.0.1:PORT -> 9000"
    let port = line
        .split("127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("unexpected kubectl output {line:?}"));
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, port)
}
