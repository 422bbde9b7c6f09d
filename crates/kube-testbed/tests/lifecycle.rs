//! Testbeds of their own: two side by side, an API server restart, and the CLI's start and stop.
//! One test at a time (each starts control planes of its own: etcd + API server ≈ 0.5 GB).

use std::{
    path::Path,
    process::{Command, Stdio},
};

use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::{
    Api,
    api::PostParams,
    runtime::wait::{await_condition, conditions::is_pod_running},
};
use kube_testbed::{NODE_NAME, Testbed, TestbedOptions};

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Processes (other than zombies) whose command line names `dir`.
fn processes_naming(dir: &Path) -> Vec<String> {
    let dir = dir.display().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().filter_map(|e| e.ok()) {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let is_self = entry.file_name().to_string_lossy() == std::process::id().to_string();
        if !is_self && cmdline.contains(&dir) {
            found.push(format!(
                "{}: {cmdline}",
                entry.file_name().to_string_lossy()
            ));
        }
    }
    found
}

fn namespace(name: &str) -> Namespace {
    serde_json::from_value(serde_json::json!({ "metadata": { "name": name } })).unwrap()
}

#[tokio::test]
async fn two_testbeds_run_side_by_side_and_survive_an_api_server_restart() {
    let _one = ONE_AT_A_TIME.lock().await;
    let options = TestbedOptions::default().no_crds();
    let (a, b) = tokio::try_join!(
        Testbed::start_with(options.clone()),
        Testbed::start_with(options)
    )
    .unwrap();
    assert_ne!(a.config().cluster_url, b.config().cluster_url);
    let (a_client, b_client) = (a.client().unwrap(), b.client().unwrap());
    Api::<Namespace>::all(a_client.clone())
        .create(&PostParams::default(), &namespace("only-in-a"))
        .await
        .unwrap();
    assert!(
        Api::<Namespace>::all(b_client.clone())
            .get_opt("only-in-a")
            .await
            .unwrap()
            .is_none()
    );
    for client in [&a_client, &b_client] {
        let node = Api::<Node>::all(client.clone())
            .get(NODE_NAME)
            .await
            .unwrap();
        assert!(
            node.spec
                .and_then(|s| s.taints)
                .unwrap_or_default()
                .is_empty()
        );
    }

    a.restart_apiserver().await.unwrap();
    assert!(
        Api::<Namespace>::all(a_client.clone())
            .get_opt("only-in-a")
            .await
            .unwrap()
            .is_some()
    );
    // The fake kubelet's watches came back: a pod made after the restart runs.
    let pods = Api::<Pod>::namespaced(a_client, "default");
    let pod = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "after-restart" },
        "spec": { "containers": [{ "name": "main", "image": "busybox:1.36" }] },
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let running = await_condition(pods, "after-restart", is_pod_running());
    tokio::time::timeout(std::time::Duration::from_secs(60), running)
        .await
        .expect("the pod runs within a minute")
        .unwrap();
    assert!(
        Api::<Namespace>::all(b_client)
            .get_opt("default")
            .await
            .unwrap()
            .is_some()
    );

    let dirs = [a.dir().to_owned(), b.dir().to_owned()];
    drop(a);
    drop(b);
    for dir in dirs {
        assert!(!dir.exists(), "{} was not removed", dir.display());
        assert_eq!(processes_naming(&dir), Vec::<String>::new());
    }
}

/// Runs `kubectl` against `kubeconfig` with `input` on stdin; it must succeed. Returns stdout.
fn kubectl(kubeconfig: &str, args: &[&str], input: &str) -> String {
    use std::io::Write;
    let mut child = Command::new("kubectl")
        .args(["--kubeconfig", kubeconfig])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "kubectl {args:?}: {stderr}");
    String::from_utf8(output.stdout).unwrap()
}

/// Stops the CLI's testbed in `dir` should the test fail before its own `stop`: its processes
/// outlive the test.
struct StopOnPanic<'a>(&'a Path);

impl Drop for StopOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = Command::new(PROGRAM)
                .args(["stop", "--dir"])
                .arg(self.0)
                .status();
        }
    }
}

const PROGRAM: &str = env!("CARGO_BIN_EXE_kube-testbed");

const SSH_POD: &str = r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "ssh"},
  "spec": {"containers": [{"name": "main", "image": "envbuilder", "ports": [{"containerPort": 2222}]}]}}"#;

#[tokio::test]
async fn cli_start_then_stop_leaves_no_process_behind() {
    let _one = ONE_AT_A_TIME.lock().await;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("testbed");
    let _stop_on_panic = StopOnPanic(&dir);

    let start = Command::new(PROGRAM)
        .args(["start", "--stand-ins", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        start.status.success(),
        "start: {}",
        String::from_utf8_lossy(&start.stderr)
    );
    let kubeconfig = String::from_utf8(start.stdout).unwrap();
    let kubeconfig = kubeconfig.trim();
    assert_eq!(Path::new(kubeconfig), dir.join("kubeconfig"));

    // It works after `start` returned: the controller's pod was made Ready, a new pod runs and
    // gets its stand-in sshd (a process of the testbed's too).
    let available = kubectl(
        kubeconfig,
        &[
            "get",
            "deployment",
            "-n",
            "agent-sandbox-system",
            "agent-sandbox-controller",
            "-o",
            "jsonpath={.status.availableReplicas}",
        ],
        "",
    );
    assert_eq!(available, "1");
    kubectl(kubeconfig, &["apply", "-n", "default", "-f", "-"], SSH_POD);
    kubectl(
        kubeconfig,
        &[
            "wait",
            "-n",
            "default",
            "pod/ssh",
            "--for=condition=Ready",
            "--timeout=60s",
        ],
        "",
    );
    let pod_dir = dir.join("pods/default/ssh").display().to_string();
    let running = processes_naming(&dir);
    assert!(
        running
            .iter()
            .any(|p| p.contains("sshd") && p.contains(&pod_dir)),
        "no stand-in sshd: {running:?}"
    );

    let again = Command::new(PROGRAM)
        .args(["start", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        !again.status.success(),
        "a second start in the same directory must refuse"
    );
    assert!(String::from_utf8_lossy(&again.stderr).contains("already runs"));

    let stop = Command::new(PROGRAM)
        .args(["stop", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        stop.status.success(),
        "stop: {}",
        String::from_utf8_lossy(&stop.stderr)
    );
    assert_eq!(processes_naming(&dir), Vec::<String>::new());
    assert!(!dir.exists(), "stop removes the testbed's files");
}
