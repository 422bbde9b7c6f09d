//! Helpers of the cluster tests: the shared cluster, kubectl, waiting.

use std::{
    future::Future,
    path::Path,
    process::Output,
    time::{Duration, Instant},
};

use kube_testbed::TestCluster;

/// The cluster shared by this binary's tests (each keeps to namespaces of its own): these test the
/// testbed with its simulated kubelet (the real node has `real_node.rs`), unless
/// CLAUDE_SANDBOX_TEST_KUBECONFIG names a cluster.
pub async fn cluster() -> &'static TestCluster {
    match TestCluster::shared_simulated().await {
        Ok(cluster) => cluster,
        Err(error) => panic!("starting the test cluster: {error}"),
    }
}

/// Runs the real `kubectl` against `kubeconfig`.
pub async fn kubectl_as(kubeconfig: &Path, args: &[&str]) -> Output {
    tokio::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .expect("kubectl runs")
}

/// `kubectl` as the cluster's admin.
pub async fn kubectl(cluster: &TestCluster, args: &[&str]) -> Output {
    kubectl_as(cluster.kubeconfig(), args).await
}

/// `kubectl` as the admin, which must succeed; returns its stdout.
pub async fn kubectl_ok(cluster: &TestCluster, args: &[&str]) -> String {
    let output = kubectl(cluster, args).await;
    assert!(
        output.status.success(),
        "kubectl {} failed: {}",
        args.join(" "),
        describe(&output)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn describe(output: &Output) -> String {
    format!(
        "{}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Polls `check` every 200 ms until it returns `Some`, for at most `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A `kubectl get -o jsonpath` value ("" when the object or field is missing).
pub async fn jsonpath(cluster: &TestCluster, namespace: &str, object: &str, path: &str) -> String {
    let output = kubectl(
        cluster,
        &[
            "get",
            "-n",
            namespace,
            object,
            "-o",
            &format!("jsonpath={path}"),
            "--ignore-not-found",
        ],
    )
    .await;
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Skips the rest of a test on a real cluster (for cases that need the testbed's simulation).
#[macro_export]
macro_rules! simulated_only {
    ($cluster:expr) => {
        if !$cluster.is_simulated() {
            eprintln!("skipped: needs the testbed's simulation (not a real cluster)");
            return;
        }
    };
}

/// Skips the rest of a test unless pods get namespaces of their own: a testbed whose kubelet runs
/// as root (this process).
#[macro_export]
macro_rules! pod_namespaces_only {
    ($cluster:expr) => {
        $crate::simulated_only!($cluster);
        if !nix::unistd::geteuid().is_root() {
            eprintln!(
                "skipped: pods get namespaces of their own only when the kubelet runs as root"
            );
            return;
        }
    };
}

/// `kubectl port-forward` of `port` of pod `pod` to a free local port, until the process is
/// dropped; returns it and the local port.
pub async fn port_forward(
    cluster: &TestCluster,
    namespace: &str,
    pod: &str,
    port: u16,
) -> (tokio::process::Child, u16) {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let mut forward = tokio::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(cluster.kubeconfig())
        .args([
            "port-forward",
            "-n",
            namespace,
            &format!("pod/{pod}"),
            &format!(":{port}"),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("kubectl runs");
    let mut lines = BufReader::new(forward.stdout.take().expect("stdout is piped")).lines();
    let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("kubectl port-forward reports its port")
        .expect("reading kubectl's output")
        .expect("a line from kubectl port-forward");
    // kubectl reports each connection on stdout: a closed pipe would kill it (SIGPIPE).
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    // "Forwarding from 127.0.0.1:PORT -> 13337"
    let local = first
        .split_once("127.0.0.1:")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected port-forward output: {first}"));
    (forward, local)
}

/// The whole response to `GET path` on the local `port` (HTTP/1.1, `Connection: close`).
pub async fn http_get(port: u16, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("the forwarded port accepts");
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(
        Duration::from_secs(20),
        stream.read_to_string(&mut response),
    )
    .await
    .expect("an answer in time")
    .unwrap();
    response
}

/// `kubectl apply -f -` of `yaml` in `namespace`.
pub async fn apply(cluster: &TestCluster, namespace: &str, yaml: &str) {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(cluster.kubeconfig())
        .args(["apply", "-n", namespace, "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("kubectl runs");
    let mut stdin = child.stdin.take().expect("stdin is piped");
    stdin
        .write_all(yaml.as_bytes())
        .await
        .expect("kubectl reads the manifest");
    drop(stdin);
    let output = child.wait_with_output().await.expect("kubectl runs");
    assert!(
        output.status.success(),
        "kubectl apply failed: {}\n{yaml}",
        describe(&output)
    );
}

/// Waits (with `kubectl wait`) until `object` in `namespace` has `condition`.
pub async fn wait_condition(cluster: &TestCluster, namespace: &str, object: &str, condition: &str) {
    kubectl_ok(
        cluster,
        &[
            "wait",
            "-n",
            namespace,
            object,
            &format!("--for=condition={condition}"),
            "--timeout=60s",
        ],
    )
    .await;
}
