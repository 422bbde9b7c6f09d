//! A pod's container-like environment on the testbed (its kubelet runs as root), through the real
//! API server with kubectl: the init process in the pod's namespaces, exec inside them, the
//! stand-ins' ports there, behaviours that take programs or stand-ins away, and sessions cut on
//! demand.

use std::{path::Path, process::Stdio, time::Duration};

use kube_testbed::{POD_USER, TestCluster};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

use crate::common::{
    apply, cluster, describe, http_get, kubectl, kubectl_ok, port_forward, wait_condition,
};

/// A devcontainer-like pod: envbuilder's variables, a Secret's key, an optional one that is
/// missing, stand-ins (the shared testbed's default) with `annotations` added.
fn dev_pod(annotations: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: dev
  annotations:
    testbed.claude-sandbox.dev/stand-ins: "true"
{annotations}
spec:
  containers:
  - name: main
    image: ghcr.io/coder/envbuilder:1.3.0
    env:
    - name: ENVBUILDER_WORKSPACE_FOLDER
      value: /workspaces/claude-sandbox
    - name: ENVBUILDER_INIT_SCRIPT
      value: sleep infinity
    - name: GREETING
      value: hello
    - name: GITHUB_TOKEN
      valueFrom:
        secretKeyRef: {{name: creds, key: token}}
    - name: ABSENT_TOKEN
      valueFrom:
        secretKeyRef: {{name: creds, key: absent, optional: true}}
    ports:
    - containerPort: 13337
    - containerPort: 2222
"#
    )
}

/// A namespace with Secret `creds` and pod `dev` (see [`dev_pod`]), Ready.
async fn dev_pod_in(cluster: &TestCluster, prefix: &str, annotations: &str) -> String {
    let ns = cluster.create_namespace(prefix).await.unwrap();
    kubectl_ok(
        cluster,
        &[
            "create",
            "secret",
            "generic",
            "creds",
            "-n",
            &ns,
            "--from-literal=token=s3cr3t",
        ],
    )
    .await;
    apply(cluster, &ns, &dev_pod(annotations)).await;
    wait_condition(cluster, &ns, "pod/dev", "Ready").await;
    ns
}

/// `kubectl exec dev -- command…`, which must succeed; its stdout.
async fn exec_ok(cluster: &TestCluster, ns: &str, command: &[&str]) -> String {
    let mut args = vec!["exec", "-n", ns, "dev", "--"];
    args.extend(command);
    kubectl_ok(cluster, &args).await
}

/// Fetches `/healthz` through a bash relay run by exec: `/dev/tcp` inside the pod's network.
const RELAY_HEALTHZ: &str =
    r#"exec 3<>/dev/tcp/127.0.0.1/13337; printf 'GET /healthz HTTP/1.0\r\n\r\n' >&3; cat <&3"#;

#[tokio::test]
async fn exec_runs_beside_a_devcontainer_init_process_in_the_pods_namespaces() {
    let cluster = cluster().await;
    crate::pod_namespaces_only!(cluster);
    let ns = dev_pod_in(cluster, "devcontainer", "").await;
    let pod_dir = cluster.testbed().unwrap().pod_dir(&ns, "dev");

    assert_eq!(
        exec_ok(cluster, &ns, &["stat", "-c", "%U", "/proc/1"])
            .await
            .trim(),
        POD_USER
    );
    assert_eq!(exec_ok(cluster, &ns, &["id", "-un"]).await.trim(), "root");
    assert_eq!(
        exec_ok(cluster, &ns, &["readlink", "/proc/1/cwd"])
            .await
            .trim(),
        pod_dir
            .join("workspaces/claude-sandbox")
            .display()
            .to_string()
    );
    let environ = exec_ok(cluster, &ns, &["cat", "/proc/1/environ"]).await;
    let environ: Vec<&str> = environ.split('\0').collect();
    let home = format!("HOME={}", pod_dir.join("home").display());
    for expected in [
        "GREETING=hello",
        "GITHUB_TOKEN=s3cr3t",
        &format!("USER={POD_USER}"),
        &home,
    ] {
        assert!(environ.contains(&expected), "{expected} in {environ:?}");
    }
    assert!(
        !environ
            .iter()
            .any(|var| var.starts_with("ENVBUILDER_") || var.starts_with("ABSENT_TOKEN")),
        "{environ:?}"
    );
    assert_eq!(
        exec_ok(cluster, &ns, &["printenv", "GITHUB_TOKEN"])
            .await
            .trim(),
        "s3cr3t",
        "exec gets the Secret's value too"
    );

    let relayed = exec_ok(cluster, &ns, &["bash", "-c", RELAY_HEALTHZ]).await;
    assert!(relayed.starts_with("HTTP/1.0 200 OK"), "{relayed}");
    assert!(relayed.contains(r#"{"status":"alive"}"#), "{relayed}");
    let (_forward, port) = port_forward(cluster, &ns, "dev", 13337).await;
    let forwarded = http_get(port, "/healthz").await;
    assert!(forwarded.starts_with("HTTP/1.1 200"), "{forwarded}");

    // A key added from inside the pod, as the pod user, lets ssh log in as that user.
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("id_ed25519");
    let keygen = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(keygen.success());
    let public_key = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let install = format!(
        "exec setpriv --reuid={POD_USER} --regid={POD_USER} --init-groups -- sh -c \
         'home=$(tr \"\\0\" \"\\n\" </proc/1/environ | sed -n \"s/^HOME=//p\"); \
          mkdir -p \"$home/.ssh\" && printf \"%s\\n\" \"$1\" >>\"$home/.ssh/authorized_keys\"' sh '{}'",
        public_key.trim()
    );
    exec_ok(cluster, &ns, &["sh", "-c", &install]).await;
    let (_ssh_forward, ssh_port) = port_forward(cluster, &ns, "dev", 2222).await;
    let login = ssh(&key, ssh_port, &["id", "-un"]).await;
    assert!(login.status.success(), "{}", describe(&login));
    assert_eq!(String::from_utf8_lossy(&login.stdout).trim(), POD_USER);
}

/// `ssh` as the pod user to the local `port`, with `key`, running `command`.
async fn ssh(key: &Path, port: u16, command: &[&str]) -> std::process::Output {
    tokio::process::Command::new("ssh")
        .arg("-i")
        .arg(key)
        .args([
            "-p",
            &port.to_string(),
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
        ])
        .args(["-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"])
        .arg(format!("{POD_USER}@127.0.0.1"))
        .args(command)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .unwrap()
}

#[tokio::test]
async fn behaviours_take_programs_and_stand_ins_away() {
    let cluster = cluster().await;
    crate::pod_namespaces_only!(cluster);
    let ns = dev_pod_in(
        cluster,
        "missing",
        r#"    testbed.claude-sandbox.dev/missing-programs: "tar,claude"
    testbed.claude-sandbox.dev/stand-in-sshd: "false""#,
    )
    .await;
    let exec = |shell: &'static str, command: &'static str| {
        let ns = ns.clone();
        async move {
            kubectl(
                cluster,
                &["exec", "-n", &ns, "dev", "--", shell, "-c", command],
            )
            .await
        }
    };

    let tar = exec("sh", "command -v tar").await;
    assert!(!tar.status.success(), "tar is missing: {}", describe(&tar));
    let claude = exec("sh", "command -v claude").await;
    assert!(
        !claude.status.success(),
        "so is claude: {}",
        describe(&claude)
    );
    let sh = exec("sh", "command -v sh && command -v bash").await;
    assert!(sh.status.success(), "{}", describe(&sh));

    let ssh_port = exec("bash", "exec 3<>/dev/tcp/127.0.0.1/2222").await;
    assert!(
        !ssh_port.status.success(),
        "no sshd: {}",
        describe(&ssh_port)
    );
    assert!(
        String::from_utf8_lossy(&ssh_port.stderr).contains("Connection refused"),
        "{}",
        describe(&ssh_port)
    );
    let relayed = exec_ok(cluster, &ns, &["bash", "-c", RELAY_HEALTHZ]).await;
    assert!(
        relayed.starts_with("HTTP/1.0 200 OK"),
        "code-server still runs: {relayed}"
    );
}

#[tokio::test]
async fn dropping_streams_ends_exec_and_port_forward_sessions() {
    let cluster = cluster().await;
    crate::pod_namespaces_only!(cluster);
    let ns = dev_pod_in(cluster, "drop", "").await;

    let mut sleeper = tokio::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(cluster.kubeconfig())
        .args([
            "exec",
            "-n",
            &ns,
            "dev",
            "--",
            "sh",
            "-c",
            "echo started; exec sleep 100",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut started = BufReader::new(sleeper.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), started.next_line())
        .await
        .expect("the exec starts")
        .unwrap();
    assert_eq!(line.as_deref(), Some("started"));

    let (_forward, port) = port_forward(cluster, &ns, "dev", 2222).await;
    let mut connection = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut banner = [0; 8];
    tokio::time::timeout(Duration::from_secs(20), connection.read_exact(&mut banner))
        .await
        .expect("sshd's banner in time")
        .unwrap();
    assert_eq!(&banner, b"SSH-2.0-");

    let dropped = cluster
        .testbed()
        .unwrap()
        .drop_streams(&ns, "dev")
        .await
        .unwrap();
    assert_eq!(dropped, 2, "the exec and the port-forward");
    let exited = tokio::time::timeout(Duration::from_secs(20), sleeper.wait())
        .await
        .expect("kubectl exec ends")
        .unwrap();
    assert!(!exited.success(), "{exited}");
    let mut rest = Vec::new();
    // Ended, cleanly or not: sshd itself would wait for our banner for minutes.
    let _ = tokio::time::timeout(Duration::from_secs(20), connection.read_to_end(&mut rest))
        .await
        .expect("the forwarded connection ends");

    assert_eq!(exec_ok(cluster, &ns, &["echo", "again"]).await, "again\n");
}
