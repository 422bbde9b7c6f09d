//! `up`, `status`, `list`, `logs`, `suspend`, `resume`, `down`: the real binary against a real
//! API server (kube-testbed, or the cluster of CLAUDE_SANDBOX_TEST_KUBECONFIG). These still run on
//! the simulated kubelet: their failures (crash loops, pull errors, build errors, slow starts)
//! come from its behaviour rules, which the real node cannot follow; phase7.rs and access.rs run on
//! the real node.

mod support;

use std::time::Duration;

use k8s_openapi::api::{
    core::v1::{ConfigMap, PersistentVolumeClaim, Pod, Secret, Service},
    rbac::v1::PolicyRule,
};
use kube::{Api, Client, ResourceExt};
use kube_testbed::{BehaviourRule, NodeKind, TestCluster, Testbed, TestbedOptions};
use support::{
    add_behaviour_rules, cli, create_namespace, current_release, names, sandboxes, shared,
};

const SECRET_VALUE: &str = "ghp_Sup3rSecretTokenValue";
const SECRET_BASE64: &str = "Z2hwX1N1cDNyU2VjcmV0VG9rZW5WYWx1ZQ";

/// The testbed these tests share, on the simulated kubelet (see the module's comment), or the
/// cluster of CLAUDE_SANDBOX_TEST_KUBECONFIG.
async fn shared_cluster() -> &'static TestCluster {
    TestCluster::shared_simulated()
        .await
        .expect("a test cluster")
}

/// Resource versions of the objects `up` writes, to prove a second `up` writes nothing.
async fn resource_versions(client: &Client, namespace: &str, name: &str) -> Vec<String> {
    let mut versions: Vec<String> = sandboxes(client, namespace, "v1beta1")
        .await
        .iter()
        .filter_map(|s| s.resource_version())
        .collect();
    let service = Api::<Service>::namespaced(client.clone(), namespace)
        .get(name)
        .await
        .unwrap();
    versions.extend(service.resource_version());
    if let Some(secret) = Api::<Secret>::namespaced(client.clone(), namespace)
        .get_opt(&format!("{name}-secrets"))
        .await
        .unwrap()
    {
        versions.extend(secret.resource_version());
    }
    versions
}

fn assert_no_secret(output: &str) {
    assert!(
        !output.contains(SECRET_VALUE),
        "the secret value leaked:\n{output}"
    );
    assert!(
        !output.contains(SECRET_BASE64),
        "the secret value leaked (base64):\n{output}"
    );
}

#[tokio::test]
async fn up_installs_agent_sandbox_then_status_list_logs_and_down() {
    if std::env::var_os(kube_testbed::TEST_KUBECONFIG_ENV).is_some() {
        return; // needs a cluster without agent-sandbox
    }
    let testbed = Testbed::start_with(TestbedOptions::default().no_crds().stand_ins(true))
        .await
        .unwrap();
    let kubeconfig = testbed.kubeconfig();
    let client = testbed.client().unwrap();
    let ns = "team-a";
    create_namespace(&client, ns).await;
    testbed
        // Ready once the init script runs, as code-server's readiness probe would have it.
        .set_behaviour_rules(&[BehaviourRule::namespace(ns)
            .annotation("log-script", "envbuilder")
            .annotation("ready-delay", "4s")])
        .await
        .unwrap();
    let release = current_release();
    let env = [("GITHUB_TOKEN", SECRET_VALUE)];
    let up_args = [
        "up",
        "dev",
        "-n",
        ns,
        "--secret-env",
        "GITHUB_TOKEN",
        "--timeout",
        "3m",
        "-v",
        "--controller-manifest",
        release.to_str().unwrap(),
    ];

    let up = cli(&kubeconfig, &up_args, &env).await;
    up.expect_code(0);
    assert_no_secret(&up.all());
    let stderr = up.stderr();
    assert!(stderr.contains("installing agent-sandbox"), "{stderr}");
    for phase in [
        "cloning the repository",
        "building the devcontainer image",
        "starting sshd and code-server",
    ] {
        assert!(
            stderr.contains(phase),
            "phase {phase:?} not shown:\n{stderr}"
        );
    }
    assert!(
        up.stdout()
            .contains("Sandbox dev is ready in namespace team-a"),
        "{}",
        up.stdout()
    );

    let status = cli(&kubeconfig, &["status", "dev", "-n", ns, "-o", "json"], &[]).await;
    let status = status.expect_code(0).json();
    assert_eq!(status["ready"], true);
    assert_eq!(status["phase"], "Running");
    assert_eq!(status["workspace"]["claim"], "workspaces-dev");
    assert_eq!(status["workspace"]["phase"], "Bound");
    assert_eq!(status["envbuilderPhase"], "starting sshd and code-server");
    let list = cli(&kubeconfig, &["list", "-A", "-o", "json"], &[])
        .await
        .expect_code(0)
        .json();
    assert_eq!(list[0]["name"], "dev");
    assert_eq!(list[0]["ready"], true);
    let logs = cli(&kubeconfig, &["logs", "dev", "-n", ns, "--tail", "3"], &[]).await;
    assert!(
        logs.expect_code(0)
            .stdout()
            .contains("Running init command"),
        "{}",
        logs.stdout()
    );

    let before = resource_versions(&client, ns, "dev").await;
    let again = cli(&kubeconfig, &up_args, &env).await;
    again.expect_error(0, "sandbox dev is up to date");
    assert_eq!(
        resource_versions(&client, ns, "dev").await,
        before,
        "the second up wrote"
    );

    let down = cli(&kubeconfig, &["down", "dev", "-n", ns], &[]).await;
    assert!(
        down.expect_code(0)
            .stdout()
            .contains("workspace volume PVC workspaces-dev is kept")
    );
    assert!(sandboxes(&client, ns, "v1beta1").await.is_empty());
    assert!(names::<Pod>(&client, ns).await.is_empty());
    assert!(names::<Service>(&client, ns).await.is_empty());
    assert!(names::<Secret>(&client, ns).await.is_empty());
    assert!(names::<ConfigMap>(&client, ns).await.is_empty());
    assert_eq!(
        names::<PersistentVolumeClaim>(&client, ns).await,
        ["workspaces-dev"]
    );

    // The kept volume comes back with the sandbox, and goes when asked.
    cli(&kubeconfig, &up_args, &env).await.expect_code(0);
    let down = cli(
        &kubeconfig,
        &["down", "dev", "-n", ns, "--delete-volume"],
        &[],
    )
    .await;
    down.expect_code(0);
    assert!(names::<PersistentVolumeClaim>(&client, ns).await.is_empty());
    assert!(names::<Secret>(&client, ns).await.is_empty());

    let uninstall = cli(
        &kubeconfig,
        &[
            "down",
            "--all",
            "-n",
            ns,
            "--uninstall-controller",
            "--controller-manifest",
            release.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    uninstall.expect_code(0);
    let served = client.list_api_groups().await.unwrap();
    assert!(
        !served.groups.iter().any(|g| g.name == "agents.x-k8s.io"),
        "CRDs left behind"
    );
}

#[tokio::test]
async fn a_v0_1_0_controller_gets_v1alpha1_sandboxes() {
    if std::env::var_os(kube_testbed::TEST_KUBECONFIG_ENV).is_some() {
        return;
    }
    let testbed = Testbed::start_with(TestbedOptions::default().no_crds().stand_ins(true))
        .await
        .unwrap();
    let kubeconfig = testbed.kubeconfig();
    let client = testbed.client().unwrap();
    let manifest = shared("release-v0.1.0/for-k8s-1.20/manifest.yaml");
    let up = cli(
        &kubeconfig,
        &[
            "up",
            "old",
            "-n",
            "default",
            "--timeout",
            "3m",
            "--controller-manifest",
            manifest.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    up.expect_code(0);
    let sandbox = &sandboxes(&client, "default", "v1alpha1").await[0];
    assert_eq!(sandbox.data["spec"]["replicas"], 1);
    assert!(sandbox.data["spec"].get("operatingMode").is_none());

    let claim = Api::<PersistentVolumeClaim>::namespaced(client.clone(), "default");
    let uid = claim.get("workspaces-old").await.unwrap().uid();
    cli(&kubeconfig, &["suspend", "old", "-n", "default"], &[])
        .await
        .expect_code(0);
    assert_eq!(
        sandboxes(&client, "default", "v1alpha1").await[0].data["spec"]["replicas"],
        0
    );
    assert!(names::<Pod>(&client, "default").await.is_empty());
    assert_eq!(
        claim.get("workspaces-old").await.unwrap().uid(),
        uid,
        "the workspace volume survives"
    );
    let status = cli(
        &kubeconfig,
        &["status", "old", "-n", "default", "-o", "json"],
        &[],
    )
    .await;
    assert_eq!(status.expect_code(0).json()["phase"], "Suspended");

    cli(
        &kubeconfig,
        &["resume", "old", "-n", "default", "--timeout", "2m"],
        &[],
    )
    .await
    .expect_code(0);
    let pod = Api::<Pod>::namespaced(client.clone(), "default")
        .get("old")
        .await
        .unwrap();
    let volumes = pod.spec.unwrap().volumes.unwrap();
    assert!(volumes.iter().any(|v| {
        v.persistent_volume_claim
            .as_ref()
            .is_some_and(|c| c.claim_name == "workspaces-old")
    }));
    assert_eq!(claim.get("workspaces-old").await.unwrap().uid(), uid);
    cli(&kubeconfig, &["down", "old", "-n", "default"], &[])
        .await
        .expect_code(0);
}

/// A fault the testbed injects, and what `up` must say about it.
struct FailureCase {
    name: &'static str,
    annotations: &'static [(&'static str, &'static str)],
    timeout: &'static str,
    exit_code: i32,
    message: &'static str,
}

const FAILURES: [FailureCase; 4] = [
    FailureCase {
        name: "pull",
        annotations: &[("image-pull-failure", "true")],
        timeout: "2m",
        exit_code: 6,
        message: "ImagePullBackOff",
    },
    // A crashing or failing container dies before a readiness probe could pass.
    FailureCase {
        name: "crash",
        annotations: &[("crash-loop", "true"), ("ready-delay", "30s")],
        timeout: "2m",
        exit_code: 6,
        message: "CrashLoopBackOff",
    },
    FailureCase {
        name: "build",
        annotations: &[("log-script", "envbuilder-error"), ("ready-delay", "30s")],
        timeout: "2m",
        exit_code: 6,
        message: "the devcontainer build failed: error:",
    },
    FailureCase {
        name: "slow",
        annotations: &[("never-ready", "true")],
        timeout: "8s",
        exit_code: 5,
        message: "timed out after",
    },
];

/// Each failure: its message, its exit code, and no object left half-made.
#[tokio::test]
async fn failures_are_named_with_their_exit_codes() {
    let cluster = shared_cluster().await;
    let Some(testbed) = cluster.testbed() else {
        return;
    };
    let kubeconfig = cluster.kubeconfig();
    let client = cluster.client().unwrap();
    let mut namespaces = Vec::new();
    let mut rules = Vec::new();
    for case in &FAILURES {
        let ns = cluster.create_namespace(case.name).await.unwrap();
        let mut rule = BehaviourRule::namespace(&ns);
        for (key, value) in case.annotations {
            rule = rule.annotation(*key, *value);
        }
        rules.push(rule);
        namespaces.push(ns);
    }
    add_behaviour_rules(testbed, rules).await;
    let runs = FAILURES
        .iter()
        .zip(&namespaces)
        .map(|(case, ns)| async move {
            cli(
                kubeconfig,
                &["up", "box", "-n", ns, "--timeout", case.timeout],
                &[],
            )
            .await
        });
    let outputs = futures::future::join_all(runs).await;
    for (case, output) in FAILURES.iter().zip(outputs) {
        assert_eq!(
            output.code(),
            Some(case.exit_code),
            "{}: {}",
            case.name,
            output.stderr()
        );
        assert!(
            output.stderr().contains(case.message),
            "{}: {}",
            case.name,
            output.stderr()
        );
        assert!(
            output.stdout().is_empty(),
            "{} printed to stdout",
            case.name
        );
    }
    // The failed sandboxes are whole: Sandbox and Service both exist, for `status` and `down`.
    for ns in &namespaces {
        assert_eq!(sandboxes(&client, ns, "v1beta1").await.len(), 1);
        assert_eq!(names::<Service>(&client, ns).await, ["box"]);
        cli(kubeconfig, &["down", "box", "-n", ns], &[])
            .await
            .expect_code(0);
    }
}

#[tokio::test]
async fn bad_input_unreachable_and_forbidden_change_nothing() {
    let cluster = shared_cluster().await;
    let kubeconfig = cluster.kubeconfig();
    let client = cluster.client().unwrap();
    let ns = cluster.create_namespace("refused").await.unwrap();

    let bad = cli(kubeconfig, &["up", "Bad_Name", "-n", &ns], &[]).await;
    bad.expect_code(2);
    assert!(bad.stderr().contains("NAME"));
    let missing = cli(
        kubeconfig,
        &["up", "box", "-n", &ns, "--secret-env", "NOT_A_KEY"],
        &[],
    )
    .await;
    missing.expect_code(2);

    let text = std::fs::read_to_string(kubeconfig).unwrap();
    let server = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: "))
        .unwrap()
        .to_owned();
    let dir = tempfile::tempdir().unwrap();
    let unreachable = dir.path().join("kubeconfig");
    std::fs::write(&unreachable, text.replace(&server, "https://127.0.0.1:9")).unwrap();
    let down = cli(&unreachable, &["up", "box", "-n", &ns], &[]).await;
    down.expect_code(3);
    assert!(
        down.stderr()
            .contains("cannot reach the Kubernetes API server at https://127.0.0.1:9")
    );

    let reader = PolicyRule {
        api_groups: Some(vec!["agents.x-k8s.io".into()]),
        resources: Some(vec!["sandboxes".into()]),
        verbs: vec!["get".into(), "list".into(), "watch".into()],
        ..PolicyRule::default()
    };
    let user = cluster.create_user("reader", &ns, &[reader]).await.unwrap();
    let forbidden = cli(
        &user,
        &["up", "box", "-n", &ns, "--secret-env", "GITHUB_TOKEN"],
        &[("GITHUB_TOKEN", SECRET_VALUE)],
    )
    .await;
    forbidden.expect_code(4);
    assert!(
        forbidden
            .stderr()
            .contains("you may not create sandboxes.agents.x-k8s.io in namespace"),
        "{}",
        forbidden.stderr()
    );
    assert_no_secret(&forbidden.all());

    assert!(sandboxes(&client, &ns, "v1beta1").await.is_empty());
    assert!(names::<Service>(&client, &ns).await.is_empty());
    assert!(
        !names::<Secret>(&client, &ns)
            .await
            .contains(&"box-secrets".to_owned())
    );
}

#[tokio::test]
async fn a_namespace_user_with_the_documented_role_runs_every_command() {
    let cluster = shared_cluster().await;
    let kubeconfig = cluster.kubeconfig();
    let ns = cluster.create_namespace("role").await.unwrap();
    let role_file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../k8s/agent-sandbox/rbac/sandbox-user.yaml"
    );
    let role: serde_json::Value =
        serde_saphyr::from_str(&std::fs::read_to_string(role_file).unwrap()).unwrap();
    let rules: Vec<PolicyRule> = serde_json::from_value(role["rules"].clone()).unwrap();
    let user = cluster.create_user("alice", &ns, &rules).await.unwrap();
    let env = [("ANTHROPIC_API_KEY", SECRET_VALUE)];
    let up = cli(
        &user,
        &[
            "up",
            "box",
            "-n",
            &ns,
            "--secret-env",
            "ANTHROPIC_API_KEY",
            "--timeout",
            "2m",
            "-vv",
        ],
        &env,
    )
    .await;
    up.expect_code(0);
    assert_no_secret(&up.all());
    for args in [
        vec!["status", "box", "-n", &ns],
        vec!["list", "-n", &ns],
        vec!["logs", "box", "-n", &ns],
        vec!["exec", "box", "-n", &ns, "--", "true"],
        vec!["ssh-config", "box", "-n", &ns],
        vec!["proxy", "box", "2222", "-n", &ns, "--via", "port-forward"],
        vec!["suspend", "box", "-n", &ns],
        vec!["resume", "box", "-n", &ns, "--timeout", "2m"],
        vec!["down", "box", "-n", &ns, "--delete-volume"],
    ] {
        let output = cli(&user, &args, &[]).await;
        output.expect_code(0);
        assert_no_secret(&output.all());
    }
    let _ = kubeconfig;
}

#[tokio::test]
async fn the_wait_survives_an_api_server_restart() {
    // A testbed of its own: the restart would cut the other tests' calls in flight.
    let cluster = TestCluster::from_env_or_start_with(
        TestbedOptions::default()
            .stand_ins(true)
            .node(NodeKind::Simulated),
    )
    .await
    .unwrap();
    let cluster = &cluster;
    let Some(testbed) = cluster.testbed() else {
        return;
    };
    let ns = cluster.create_namespace("restart").await.unwrap();
    add_behaviour_rules(
        testbed,
        vec![
            BehaviourRule::namespace(&ns)
                .annotation("start-delay", "6s")
                .annotation("log-script", "envbuilder"),
        ],
    )
    .await;
    let kubeconfig = cluster.kubeconfig().to_owned();
    let args = ["up", "box", "-n", ns.as_str(), "--timeout", "3m"].map(str::to_owned);
    let up = tokio::spawn(async move {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        cli(&kubeconfig, &args, &[]).await
    });
    tokio::time::sleep(Duration::from_secs(3)).await;
    testbed.restart_apiserver().await.unwrap();
    let up = up.await.unwrap();
    up.expect_code(0);
    cli(cluster.kubeconfig(), &["down", "box", "-n", &ns], &[])
        .await
        .expect_code(0);
}

#[tokio::test]
async fn a_controller_that_never_gets_ready_is_reported_and_nothing_is_applied() {
    if std::env::var_os(kube_testbed::TEST_KUBECONFIG_ENV).is_some() {
        return;
    }
    let testbed = Testbed::start_with(TestbedOptions::default().no_crds())
        .await
        .unwrap();
    let client = testbed.client().unwrap();
    testbed
        .set_behaviour_rules(&[BehaviourRule::namespace("agent-sandbox-system")
            .annotation("image-pull-failure", "true")])
        .await
        .unwrap();
    let refused = cli(
        &testbed.kubeconfig(),
        &["up", "box", "-n", "default", "--no-install"],
        &[],
    )
    .await;
    refused.expect_error(7, "agent-sandbox is not installed");
    let release = current_release();
    let up = cli(
        &testbed.kubeconfig(),
        &[
            "up",
            "box",
            "-n",
            "default",
            "--timeout",
            "20s",
            "--controller-manifest",
            release.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    up.expect_code(7);
    let stderr = up.stderr();
    assert!(
        stderr.contains("agent-sandbox controller") && stderr.contains("ImagePullBackOff"),
        "{stderr}"
    );
    assert!(sandboxes(&client, "default", "v1beta1").await.is_empty());
    assert!(
        names::<Service>(&client, "default")
            .await
            .iter()
            .all(|n| n == "kubernetes")
    );
}
