//! Ordinary workloads through the real API server: Deployments, namespace deletion, and the
//! kubelet API the API server proxies to (logs, exec, port-forward).

use std::time::Duration;

use crate::common::{
    apply, cluster, describe, http_get, jsonpath, kubectl, kubectl_ok, port_forward,
    wait_condition, wait_for,
};
use kube_testbed::TestCluster;

/// A pod that behaves the same on the testbed (log script) and on a real cluster (busybox).
const SHELL_POD: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: shell
  annotations:
    testbed.claude-sandbox.dev/log-script: "0 first line\n100 second line"
spec:
  containers:
  - name: main
    image: busybox:1.36
    command: [sh, -c, "echo first line; echo second line; sleep 3600"]
"#;

/// `kubectl create deployment web` with two replicas, waited on until Available.
async fn create_available_deployment(cluster: &TestCluster, ns: &str) {
    kubectl_ok(
        cluster,
        &[
            "create",
            "deployment",
            "web",
            "-n",
            ns,
            "--image=nginx:1.27",
            "--replicas=2",
        ],
    )
    .await;
    wait_condition(cluster, ns, "deployment/web", "Available").await;
}

#[tokio::test]
async fn a_deployment_from_kubectl_create_becomes_available() {
    let cluster = cluster().await;
    let ns = cluster.create_namespace("deploy").await.unwrap();
    create_available_deployment(cluster, &ns).await;
    assert_eq!(
        jsonpath(
            cluster,
            &ns,
            "deployment/web",
            "{.status.availableReplicas}"
        )
        .await,
        "2"
    );
}

#[tokio::test]
async fn deleting_a_namespace_removes_its_pods() {
    let cluster = cluster().await;
    let ns = cluster.create_namespace("gc").await.unwrap();
    create_available_deployment(cluster, &ns).await;
    let pods = kubectl_ok(cluster, &["get", "pods", "-n", &ns, "-o", "name"]).await;
    assert_eq!(pods.lines().count(), 2, "{pods}");

    kubectl_ok(
        cluster,
        &["delete", "namespace", &ns, "--wait=true", "--timeout=90s"],
    )
    .await;
    let left = kubectl(cluster, &["get", "namespace", &ns]).await;
    assert!(
        !left.status.success(),
        "the namespace is still there: {}",
        describe(&left)
    );
    let pods = kubectl_ok(
        cluster,
        &[
            "get",
            "pods",
            "-A",
            "-o",
            "name",
            "--field-selector",
            &format!("metadata.namespace={ns}"),
        ],
    )
    .await;
    assert!(pods.trim().is_empty(), "pods left: {pods}");
}

#[tokio::test]
async fn kubectl_logs_reads_the_container_log() {
    let cluster = cluster().await;
    let ns = cluster.create_namespace("logs").await.unwrap();
    apply(cluster, &ns, SHELL_POD).await;
    wait_condition(cluster, &ns, "pod/shell", "Ready").await;
    let logs = wait_for("both log lines", Duration::from_secs(20), || async {
        let logs = kubectl_ok(cluster, &["logs", "-n", &ns, "shell"]).await;
        logs.contains("second line").then_some(logs)
    })
    .await;
    assert_eq!(
        logs.lines().collect::<Vec<_>>(),
        ["first line", "second line"]
    );
    let tail = kubectl_ok(cluster, &["logs", "-n", &ns, "shell", "--tail=1"]).await;
    assert_eq!(tail.trim(), "second line");
}

#[tokio::test]
async fn kubectl_exec_returns_output_and_exit_code() {
    let cluster = cluster().await;
    let ns = cluster.create_namespace("exec").await.unwrap();
    apply(cluster, &ns, SHELL_POD).await;
    wait_condition(cluster, &ns, "pod/shell", "Ready").await;

    let hi = kubectl(cluster, &["exec", "-n", &ns, "shell", "--", "echo", "hi"]).await;
    assert!(hi.status.success(), "{}", describe(&hi));
    assert_eq!(String::from_utf8_lossy(&hi.stdout), "hi\n");

    let failing = kubectl(
        cluster,
        &[
            "exec",
            "-n",
            &ns,
            "shell",
            "--",
            "sh",
            "-c",
            "echo oops >&2; exit 3",
        ],
    )
    .await;
    assert_eq!(failing.status.code(), Some(3), "{}", describe(&failing));
    assert!(
        String::from_utf8_lossy(&failing.stderr).contains("oops"),
        "{}",
        describe(&failing)
    );
}

#[tokio::test]
async fn kubectl_port_forward_reaches_the_stand_in_code_server() {
    let cluster = cluster().await;
    crate::simulated_only!(cluster);
    let ns = cluster.create_namespace("forward").await.unwrap();
    apply(
        cluster,
        &ns,
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: ide
  annotations:
    testbed.claude-sandbox.dev/stand-ins: "true"
spec:
  containers:
  - name: main
    image: ghcr.io/coder/envbuilder:1.3.0
    ports:
    - containerPort: 13337
"#,
    )
    .await;
    wait_condition(cluster, &ns, "pod/ide", "Ready").await;

    let (mut forward, port) = port_forward(cluster, &ns, "ide", 13337).await;
    let response = http_get(port, "/healthz").await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains(r#"{"status":"alive"}"#), "{response}");
    forward.kill().await.unwrap();
}
