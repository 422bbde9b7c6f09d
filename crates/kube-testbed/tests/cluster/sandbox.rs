//! agent-sandbox `Sandbox` objects reconciled by the (simulated, or on a real cluster the real)
//! controller.

use std::path::PathBuf;

use kube_testbed::TestCluster;

use crate::common::{apply, cluster, jsonpath, kubectl, kubectl_ok, wait_condition, wait_for};
use std::time::Duration;

const SANDBOX: &str = "sandboxes.agents.x-k8s.io";

/// Upstream's name-hash label value: FNV-1a (32 bit) of the Sandbox name, 8 hex digits.
fn name_hash(name: &str) -> String {
    let hash = name.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    });
    format!("{hash:08x}")
}

fn example_dir() -> PathBuf {
    kube_testbed::paths::agent_sandbox_data().join("example-vscode-sandbox/base")
}

#[tokio::test]
async fn the_upstream_example_sandbox_becomes_ready_suspends_and_resumes() {
    let cluster = cluster().await;
    let ns = cluster.create_namespace("example").await.unwrap();
    let example = example_dir();
    kubectl_ok(
        cluster,
        &["apply", "-n", &ns, "-k", &example.display().to_string()],
    )
    .await;
    let sandbox = format!("{SANDBOX}/sandbox-example");
    wait_condition(cluster, &ns, &sandbox, "Ready").await;

    let label = jsonpath(
        cluster,
        &ns,
        "pod/sandbox-example",
        r"{.metadata.labels.agents\.x-k8s\.io/sandbox-name-hash}",
    )
    .await;
    assert_eq!(label, name_hash("sandbox-example"));
    assert_eq!(
        jsonpath(
            cluster,
            &ns,
            "pod/sandbox-example",
            "{.metadata.ownerReferences[0].kind}"
        )
        .await,
        "Sandbox"
    );
    assert_eq!(
        jsonpath(
            cluster,
            &ns,
            "pvc/workspaces-pvc-sandbox-example",
            "{.status.phase}"
        )
        .await,
        "Bound"
    );
    assert!(
        !jsonpath(cluster, &ns, &sandbox, "{.status.podIPs[0]}")
            .await
            .is_empty()
    );
    let first_pod = jsonpath(cluster, &ns, "pod/sandbox-example", "{.metadata.uid}").await;

    set_operating_mode(cluster, &ns, &sandbox, "Suspended").await;
    wait_condition(cluster, &ns, &sandbox, "Suspended").await;
    wait_for(
        "the suspended Sandbox's pod to go",
        Duration::from_secs(60),
        || async {
            jsonpath(cluster, &ns, "pod/sandbox-example", "{.metadata.name}")
                .await
                .is_empty()
                .then_some(())
        },
    )
    .await;
    assert_eq!(
        jsonpath(
            cluster,
            &ns,
            &sandbox,
            "{.status.conditions[?(@.type==\"Ready\")].status}"
        )
        .await,
        "False"
    );
    assert_eq!(
        jsonpath(
            cluster,
            &ns,
            "pvc/workspaces-pvc-sandbox-example",
            "{.status.phase}"
        )
        .await,
        "Bound"
    );

    set_operating_mode(cluster, &ns, &sandbox, "Running").await;
    wait_condition(cluster, &ns, &sandbox, "Ready").await;
    let second_pod = jsonpath(cluster, &ns, "pod/sandbox-example", "{.metadata.uid}").await;
    assert!(
        !second_pod.is_empty() && second_pod != first_pod,
        "a fresh pod: {first_pod} then {second_pod}"
    );
    assert_eq!(
        jsonpath(
            cluster,
            &ns,
            "pod/sandbox-example",
            "{.spec.volumes[0].persistentVolumeClaim.claimName}"
        )
        .await,
        "workspaces-pvc-sandbox-example"
    );
}

fn expired_sandbox(name: &str, policy: &str) -> String {
    format!(
        r#"
apiVersion: agents.x-k8s.io/v1beta1
kind: Sandbox
metadata:
  name: {name}
spec:
  shutdownTime: "2020-01-01T00:00:00Z"
  shutdownPolicy: {policy}
  podTemplate:
    spec:
      containers:
      - name: main
        image: busybox:1.36
        command: [sleep, "3600"]
"#
    )
}

#[tokio::test]
async fn a_sandbox_past_its_shutdown_time_expires_with_either_policy() {
    let cluster = cluster().await;
    let ns = cluster.create_namespace("expiry").await.unwrap();
    apply(cluster, &ns, &expired_sandbox("kept", "Retain")).await;
    apply(cluster, &ns, &expired_sandbox("gone", "Delete")).await;

    let reason = r#"{.status.conditions[?(@.type=="Ready")].reason}"#;
    wait_for(
        "the Retain Sandbox to report SandboxExpired",
        Duration::from_secs(60),
        || async {
            (jsonpath(cluster, &ns, &format!("{SANDBOX}/kept"), reason).await == "SandboxExpired")
                .then_some(())
        },
    )
    .await;
    assert_eq!(
        jsonpath(cluster, &ns, "pod/kept", "{.metadata.name}").await,
        ""
    );

    wait_for(
        "the Delete Sandbox to be deleted",
        Duration::from_secs(60),
        || async {
            let get = kubectl(
                cluster,
                &[
                    "get",
                    "-n",
                    &ns,
                    &format!("{SANDBOX}/gone"),
                    "--ignore-not-found",
                    "-o",
                    "name",
                ],
            )
            .await;
            (get.status.success() && get.stdout.is_empty()).then_some(())
        },
    )
    .await;
    assert_eq!(
        jsonpath(cluster, &ns, &format!("{SANDBOX}/kept"), "{.metadata.name}").await,
        "kept"
    );
}

/// Suspends or resumes `sandbox` the way a user would, with `kubectl patch`.
async fn set_operating_mode(cluster: &TestCluster, ns: &str, sandbox: &str, mode: &str) {
    let patch = format!(r#"{{"spec":{{"operatingMode":"{mode}"}}}}"#);
    kubectl_ok(
        cluster,
        &["patch", "-n", ns, sandbox, "--type=merge", "-p", &patch],
    )
    .await;
}
