//! Tunnel throughput through the API server, next to `kubectl port-forward` on the same testbed.
//!
//! `cargo bench -p claude-sandbox --bench tunnel_throughput [-- MEGABYTES [ROUNDS]]` starts a
//! kube-testbed, deploys a sandbox, runs a data source inside its pod (this binary, started through
//! `claude-sandbox exec` so that it listens in the pod's network namespace) and downloads from it
//! through each transport. It prints MB/s and the ratio to kubectl: figures, never assertions.

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
use kube_testbed::{BehaviourRule, Testbed, TestbedOptions};
use tokio::{
    io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
};

/// The data source's port inside the pod.
const SOURCE_PORT: u16 = 9000;
const NAMESPACE: &str = "bench";
const SERVE_FLAG: &str = "--serve-data";

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == SERVE_FLAG) {
        return serve_data().await;
    }
    let numbers: Vec<usize> = args.iter().skip(1).filter_map(|a| a.parse().ok()).collect();
    let megabytes = numbers.first().copied().unwrap_or(64);
    let rounds = numbers.get(1).copied().unwrap_or(3);

    let testbed = Testbed::start_with(TestbedOptions::default().stand_ins(true))
        .await
        .expect("a testbed (run `cargo run -p kube-testbed -- build` first)");
    let kubeconfig = testbed.kubeconfig();
    testbed
        .set_behaviour_rules(&[
            BehaviourRule::namespace(NAMESPACE).annotation("log-script", "envbuilder")
        ])
        .await
        .unwrap();
    let namespace: k8s_openapi::api::core::v1::Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": NAMESPACE}})).unwrap();
    kube::Api::<k8s_openapi::api::core::v1::Namespace>::all(testbed.client().unwrap())
        .create(&Default::default(), &namespace)
        .await
        .unwrap();
    run(
        &kubeconfig,
        &["up", "box", "-n", NAMESPACE, "--timeout", "3m"],
    )
    .await;
    let _source = start_source(&kubeconfig).await;

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
    let sandbox = SandboxRef::new(&cluster, version, "box");
    let bytes = megabytes * 1024 * 1024;
    println!(
        "Downloading {megabytes} MB, best of {rounds}, through kube-apiserver to the testbed kubelet:"
    );

    let kubectl = best_of(rounds, || async {
        let (mut forward, port) = kubectl_port_forward(&kubeconfig).await;
        let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let rate = download(stream, bytes).await;
        let _ = forward.kill().await;
        rate
    })
    .await;
    report("kubectl port-forward", kubectl, kubectl);
    for (label, via) in [
        ("claude-sandbox --via port-forward", Via::PortForward),
        ("claude-sandbox --via exec", Via::Exec),
    ] {
        let tunnel = Tunnel::new(&cluster, &sandbox, SOURCE_PORT, via)
            .await
            .unwrap();
        let rate = best_of(rounds, || async {
            download(tunnel.open().await.unwrap(), bytes).await
        })
        .await;
        report(label, rate, kubectl);
    }
}

fn report(label: &str, rate: f64, kubectl: f64) {
    println!(
        "  {label:<36} {rate:>8.1} MB/s   {:>5.2}× kubectl",
        rate / kubectl
    );
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

/// This binary, serving data inside the pod until the exec session ends.
async fn start_source(kubeconfig: &Path) -> tokio::process::Child {
    let me = std::env::current_exe().unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_claude-sandbox"))
        .args([
            "exec",
            "box",
            "-n",
            NAMESPACE,
            "--user",
            "root",
            "--kubeconfig",
        ])
        .arg(kubeconfig)
        .arg("--")
        .arg(me)
        .arg(SERVE_FLAG)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await;
    assert!(
        matches!(ready, Ok(Ok(Some(_)))),
        "the data source did not start"
    );
    child
}

/// `--serve-data`: on 127.0.0.1:SOURCE_PORT, each connection names a byte count and gets that many.
async fn serve_data() {
    let listener = TcpListener::bind(("127.0.0.1", SOURCE_PORT)).await.unwrap();
    println!("serving");
    let block: std::sync::Arc<Vec<u8>> = std::sync::Arc::new(
        (0..1024 * 1024u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
            .collect(),
    );
    // Ends with the exec session: stdin closes.
    let mut stdin = tokio::io::stdin();
    loop {
        tokio::select! {
            _ = stdin.read_u8() => return,
            accepted = listener.accept() => {
                let (mut stream, _) = accepted.unwrap();
                let block = block.clone();
                tokio::spawn(async move {
                    let Ok(mut left) = stream.read_u64().await else { return };
                    while left > 0 {
                        let n = left.min(block.len() as u64) as usize;
                        if stream.write_all(&block[..n]).await.is_err() {
                            return;
                        }
                        left -= n as u64;
                    }
                    let _ = stream.shutdown().await;
                });
            }
        }
    }
}

/// `kubectl port-forward` to the source on a free local port.
async fn kubectl_port_forward(kubeconfig: &Path) -> (tokio::process::Child, u16) {
    let mut child = tokio::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args([
            "-n",
            NAMESPACE,
            "port-forward",
            "pod/box",
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
