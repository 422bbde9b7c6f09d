//! Real faults on the testbed's real node, on a testbed of this binary's own (a kubelet restart
//! cuts every stream of the node, so no other test binary may share it): an image that cannot be
//! pulled, a clone that fails in envbuilder (the stand-in), the kubelet restarted while `connect`
//! carries connections and while `exec` runs. Each ends with the documented exit code and message,
//! nothing hangs, nothing is left half-made, and what comes after works.

mod support;

use std::{process::Stdio, time::Duration};

use k8s_openapi::api::core::v1::Service;
use kube_testbed::TestCluster;
use support::{answered_open_connection, cli, command, connect, http_get, names, sandboxes};
use tokio::io::AsyncReadExt;

/// Kubelet restarts (write) must not fall into the other tests' waits (read).
static RESTARTS: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// A testbed with a real node (or nothing to do: these faults need one) and a ready sandbox `box`.
async fn real_node_sandbox() -> Option<(&'static TestCluster, String)> {
    let cluster = TestCluster::shared().await.unwrap();
    cluster.node_env()?;
    let ns = cluster.create_namespace("faults").await.unwrap();
    up(cluster, &ns, &[]).await.expect_code(0);
    Some((cluster, ns))
}

/// `claude-sandbox up box -n NS EXTRA…` asking for a quarter of a core (sandboxes share two).
async fn up(cluster: &TestCluster, ns: &str, extra: &[&str]) -> support::CliOutput {
    let mut args = vec![
        "up",
        "box",
        "-n",
        ns,
        "--requests",
        "cpu=250m,memory=1Gi",
        "--timeout",
        "4m",
    ];
    args.extend_from_slice(extra);
    cli(cluster.kubeconfig(), &args, &[]).await
}

/// The kubelet restarting cuts what `connect` carries: an open connection is closed (it does not
/// hang), and the next connection is tunnelled again, over each transport; an `exec` running
/// then ends with exit 1 and says the connection was lost.
#[tokio::test(flavor = "multi_thread")]
async fn a_kubelet_restart_cuts_connect_and_exec_cleanly() {
    let Some((cluster, ns)) = real_node_sandbox().await else {
        eprintln!("skipped: needs the testbed's real node");
        return;
    };
    let testbed = cluster.testbed().unwrap();
    let kubeconfig = cluster.kubeconfig();
    for via in ["port-forward", "exec"] {
        let connect = connect(kubeconfig, "box", &ns, &["--via", via]).await;
        let port = connect.port;
        assert_eq!(http_get(port, "/healthz").await.0, "HTTP/1.1 200 OK");
        // A connection open across the restart.
        let mut open = answered_open_connection(port).await;

        {
            let _alone = RESTARTS.write().await;
            testbed.restart_kubelet().await.unwrap();
        }

        let mut rest = Vec::new();
        let closed =
            tokio::time::timeout(Duration::from_secs(30), open.read_to_end(&mut rest)).await;
        assert!(closed.is_ok(), "via {via}: the cut connection stayed open");
        let again = tokio::time::timeout(Duration::from_secs(60), http_get(port, "/healthz"))
            .await
            .unwrap_or_else(|_| panic!("via {via}: no answer after the restart"));
        assert_eq!(again.0, "HTTP/1.1 200 OK", "via {via}: no reconnect");
    }

    let sleeping = command(
        kubeconfig,
        &["exec", "box", "-n", &ns, "--", "sleep", "100"],
        &[],
    )
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    {
        let _alone = RESTARTS.write().await;
        testbed.restart_kubelet().await.unwrap();
    }
    let cut = tokio::time::timeout(Duration::from_secs(30), sleeping.wait_with_output())
        .await
        .expect("exec ends when the kubelet restarts")
        .unwrap();
    let said = String::from_utf8_lossy(&cut.stderr);
    assert_eq!(cut.status.code(), Some(1), "{said}");
    assert!(said.contains("the connection was lost"), "{said}");

    // The sandbox itself never stopped: its container kept running through both restarts.
    let restarts = cli(
        kubeconfig,
        &["exec", "box", "-n", &ns, "--", "cat", "/proc/1/cmdline"],
        &[],
    )
    .await;
    assert!(
        restarts.expect_code(0).stdout().contains("entrypoint.sh"),
        "{}",
        restarts.stdout()
    );
}

/// `up` meets real failures: a tag the registry lacks (the kubelet's ErrImagePull, then
/// ImagePullBackOff) and a repository envbuilder cannot clone (the stand-in's `error:` line, then
/// a crash loop). Each ends with exit 6 and its cause, prints nothing on stdout, and leaves a whole
/// sandbox that `down` removes.
#[tokio::test(flavor = "multi_thread")]
async fn up_names_real_failures_with_exit_6() {
    let _steady = RESTARTS.read().await;
    let cluster = TestCluster::shared().await.unwrap();
    let Some(node) = cluster.node_env() else {
        eprintln!("skipped: needs the testbed's real node");
        return;
    };
    let kubeconfig = cluster.kubeconfig();
    let client = cluster.client().unwrap();
    // Nothing listens on port 1 of the node: the clone is refused at once.
    let unreachable_repo = format!("http://{}:1/missing.git", node.node_ip);
    let cases: [(&str, Vec<&str>, &[&str]); 2] = [
        (
            "pull",
            vec!["--image", "ghcr.io/coder/envbuilder:0.0.0-missing"],
            &["ErrImagePull", "ImagePullBackOff"],
        ),
        (
            "clone",
            vec!["--repo", &unreachable_repo],
            &["the devcontainer build failed: error:"],
        ),
    ];
    for (name, flags, causes) in cases {
        let ns = cluster.create_namespace(name).await.unwrap();
        let up = tokio::time::timeout(Duration::from_secs(300), up(cluster, &ns, &flags))
            .await
            .unwrap_or_else(|_| panic!("{name}: up hung"));
        up.expect_code(6);
        assert!(
            causes.iter().any(|cause| up.stderr().contains(cause)),
            "{name}: {}",
            up.stderr()
        );
        assert!(up.stdout().is_empty(), "{name} printed to stdout");
        assert_eq!(sandboxes(&client, &ns, "v1beta1").await.len(), 1, "{name}");
        assert_eq!(names::<Service>(&client, &ns).await, ["box"], "{name}");
        cli(kubeconfig, &["down", "box", "-n", &ns], &[])
            .await
            .expect_code(0);
        assert!(
            sandboxes(&client, &ns, "v1beta1").await.is_empty(),
            "{name}"
        );
    }
}
