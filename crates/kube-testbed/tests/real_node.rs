//! The real node: kubelet 1.20.2, containerd, runc and gVisor's runsc, images pulled from the
//! testbed's registry. Everything here goes through the real API server and `kubectl`, as a user
//! of any cluster would; nothing is simulated but the agent-sandbox controller, whose pod runs the
//! upstream image name, pulled from the testbed's mirror.
//!
//! The pod tests share one testbed (without agent-sandbox); the tests of the controller, of `stop`
//! and of the sweep after a crash start testbeds of their own.

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use kube_testbed::{NodeEnv, NodeKind, Testbed, TestbedOptions};

/// One testbed with a real node for the pod tests, started by the first test that asks; its git
/// server serves [`served_repository`].
async fn shared() -> &'static Testbed {
    static SHARED: tokio::sync::OnceCell<Testbed> = tokio::sync::OnceCell::const_new();
    SHARED
        .get_or_init(|| async {
            Testbed::start_with(real_node_options().git_repo(served_repository()))
                .await
                .expect("a testbed with a real node")
        })
        .await
}

/// A repository `project` with a committed devcontainer.json and README, then a changed README,
/// an untracked file and an ignored one: the git server serves the working tree as it is.
fn served_repository() -> PathBuf {
    let parent = tempfile::tempdir().unwrap().keep();
    let repo = parent.join("project");
    std::fs::create_dir_all(&repo).unwrap();
    let git = |args: &[&str]| {
        let status = Command::new("git")
            .current_dir(&repo)
            .args(["-c", "user.name=t", "-c", "user.email=t@localhost"])
            .args(args)
            .output()
            .unwrap();
        assert!(status.status.success(), "git {args:?}: {status:?}");
    };
    git(&["init", "--quiet"]);
    std::fs::write(
        repo.join("devcontainer.json"),
        r#"{
  // JSONC, as devcontainer.json files are
  "image": "ignored-by-the-stand-in",
  "containerUser": "vscode",
  "containerEnv": { "GREETING": "hello from ${containerWorkspaceFolderBasename}" },
  "postCreateCommand": "echo \"hook ran as $(id -un)\" > /tmp/hook",
}"#,
    )
    .unwrap();
    std::fs::write(repo.join("README"), "committed\n").unwrap();
    std::fs::write(repo.join(".gitignore"), "*.log\n").unwrap();
    git(&["add", "."]);
    git(&["commit", "--quiet", "-m", "first"]);
    std::fs::write(repo.join("README"), "changed, not committed\n").unwrap();
    std::fs::write(repo.join("untracked.txt"), "new\n").unwrap();
    std::fs::write(repo.join("ignored.log"), "never served\n").unwrap();
    repo
}

/// A real node without agent-sandbox (these tests run plain pods).
fn real_node_options() -> TestbedOptions {
    TestbedOptions::default().no_crds().node(NodeKind::Real)
}

fn env(testbed: &Testbed) -> &NodeEnv {
    testbed.node_env().expect("a real node")
}

/// `kubectl` against one namespace of a testbed.
struct Kubectl {
    kubeconfig: PathBuf,
    namespace: String,
}

impl Kubectl {
    /// A new namespace `<prefix>-<n>` whose `default` ServiceAccount exists.
    fn new_namespace(testbed: &Testbed, prefix: &str) -> Self {
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let kubectl = Self {
            kubeconfig: testbed.kubeconfig(),
            namespace: format!("{prefix}-{n}"),
        };
        kubectl.ok(&["create", "namespace", &kubectl.namespace.clone()], "");
        kubectl.eventually(
            "the default ServiceAccount",
            Duration::from_secs(30),
            || {
                kubectl
                    .run(&["get", "serviceaccount", "default"], "")
                    .status
                    .success()
            },
        );
        kubectl
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("kubectl");
        command
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(["-n", &self.namespace])
            .args(args);
        command
    }

    fn run(&self, args: &[&str], input: &str) -> Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl runs");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    /// Runs kubectl, which must succeed; returns its stdout.
    fn ok(&self, args: &[&str], input: &str) -> String {
        let output = self.run(args, input);
        assert!(
            output.status.success(),
            "kubectl {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn apply(&self, manifest: &serde_json::Value) {
        self.ok(&["apply", "-f", "-"], &manifest.to_string());
    }

    fn jsonpath(&self, object: &str, path: &str) -> String {
        self.ok(&["get", object, "-o", &format!("jsonpath={path}")], "")
    }

    /// `jsonpath` of an object that may not exist yet (a controller has still to create it).
    fn jsonpath_if_present(&self, object: &str, path: &str) -> Option<String> {
        let output = self.run(&["get", object, "-o", &format!("jsonpath={path}")], "");
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
    }

    fn wait_ready(&self, pod: &str) {
        self.ok(
            &[
                "wait",
                "--for=condition=Ready",
                "--timeout=120s",
                &format!("pod/{pod}"),
            ],
            "",
        );
    }

    fn eventually(&self, what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + timeout;
        while !done() {
            if Instant::now() > deadline {
                let pods = self.run(&["describe", "pods"], "");
                panic!(
                    "timed out after {timeout:?} waiting for {what}; pods:\n{}",
                    String::from_utf8_lossy(&pods.stdout)
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// `kubectl port-forward pod/POD :PORT` until dropped; returns the local port.
    fn port_forward(&self, target: &str, port: u16) -> PortForward {
        let mut child = self
            .command(&["port-forward", target, &format!(":{port}")])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
        // "Forwarding from 127.0.0.1:PORT -> 8080"
        let local = line
            .split_once("127.0.0.1:")
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("port-forward said {line:?}"));
        PortForward {
            child,
            local,
            _stdout: stdout,
        }
    }
}

struct PortForward {
    child: std::process::Child,
    local: u16,
    _stdout: std::io::BufReader<std::process::ChildStdout>,
}

impl PortForward {
    /// `GET path` through the tunnel: the response, or the error curl gives.
    fn get(&self, path: &str) -> Result<String, String> {
        let output = Command::new("curl")
            .args(["-sSL", "--max-time", "10"])
            .arg(format!("http://127.0.0.1:{}{path}", self.local))
            .output()
            .unwrap();
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        }
    }

    /// What kubectl printed on stderr once it is stopped.
    fn stop(mut self) -> String {
        let _ = self.child.kill();
        let mut stderr = String::new();
        if let Some(mut pipe) = self.child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
        }
        let _ = self.child.wait();
        stderr
    }
}

impl Drop for PortForward {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A pod of the tools image (busybox) running `script`.
fn tools_pod(env: &NodeEnv, name: &str, script: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": { "name": name },
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": "main",
                "image": env.tools_image,
                "command": ["sh", "-c", script],
            }],
        },
    })
}

/// Serves `/www` (its index says `served by POD`) on port 8080 with busybox's httpd.
const HTTPD: &str = "mkdir -p /www && echo \"served by $HOSTNAME\" > /www/index.html && exec httpd -f -p 8080 -h /www";

#[tokio::test(flavor = "multi_thread")]
async fn runc_pods_log_exec_and_port_forward() {
    let testbed = shared().await;
    let env = env(testbed);
    let k = Kubectl::new_namespace(testbed, "runc");
    k.apply(&tools_pod(
        env,
        "web",
        &format!("echo started as $(id -u); {HTTPD}"),
    ));
    k.wait_ready("web");

    assert_eq!(k.ok(&["logs", "web"], ""), "started as 0\n");
    let exec = k.run(
        &[
            "exec",
            "web",
            "--",
            "sh",
            "-c",
            "echo out; echo err >&2; exit 3",
        ],
        "",
    );
    assert_eq!(exec.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&exec.stdout), "out\n");
    assert!(String::from_utf8_lossy(&exec.stderr).starts_with("err\n"));
    assert_eq!(
        k.ok(&["exec", "-i", "web", "--", "cat"], "through stdin"),
        "through stdin"
    );

    let forward = k.port_forward("pod/web", 8080);
    assert_eq!(forward.get("/").unwrap(), "served by web\n");

    // The pod network ends at the bridge: no default route, the node's address reachable.
    let routes = k.ok(&["exec", "web", "--", "ip", "route"], "");
    assert!(!routes.contains("default"), "{routes}");
    let node = k.ok(
        &[
            "exec",
            "web",
            "--",
            "sh",
            "-c",
            &format!(
                "nc -z -w 3 {} 22 ; ip route get {}",
                env.node_ip, env.node_ip
            ),
        ],
        "",
    );
    assert!(node.contains(&env.node_ip.to_string()), "{node}");
}

#[tokio::test(flavor = "multi_thread")]
async fn volumes_keep_data_across_restarts() {
    let testbed = shared().await;
    let env = env(testbed);
    let k = Kubectl::new_namespace(testbed, "volumes");
    k.apply(&serde_json::json!({
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": { "name": "data" },
        "spec": { "accessModes": ["ReadWriteOnce"], "resources": { "requests": { "storage": "1Gi" } } },
    }));
    // Runs until /tmp/stop exists (in the container's own filesystem, new at each start).
    let pod = |name: &str| {
        let mut pod = tools_pod(env, name, "while [ ! -e /tmp/stop ]; do sleep 0.2; done");
        pod["spec"]["volumes"] = serde_json::json!([
            { "name": "scratch", "emptyDir": {} },
            { "name": "data", "persistentVolumeClaim": { "claimName": "data" } },
        ]);
        pod["spec"]["containers"][0]["volumeMounts"] = serde_json::json!([
            { "name": "scratch", "mountPath": "/scratch" },
            { "name": "data", "mountPath": "/data" },
        ]);
        pod
    };
    k.apply(&pod("first"));
    k.wait_ready("first");
    k.ok(
        &[
            "exec",
            "first",
            "--",
            "sh",
            "-c",
            "echo kept > /scratch/f && echo kept > /data/f",
        ],
        "",
    );

    // The container exits and is restarted: the emptyDir outlives it.
    k.ok(&["exec", "first", "--", "touch", "/tmp/stop"], "");
    k.eventually("the container to restart", Duration::from_secs(60), || {
        k.jsonpath("pod/first", "{.status.containerStatuses[0].restartCount}") == "1"
    });
    k.wait_ready("first");
    assert_eq!(
        k.ok(&["exec", "first", "--", "cat", "/scratch/f"], ""),
        "kept\n"
    );

    // A new pod on the same claim (the default StorageClass's volume) sees the data.
    k.ok(&["delete", "pod", "first", "--wait"], "");
    k.apply(&pod("second"));
    k.wait_ready("second");
    assert_eq!(
        k.ok(&["exec", "second", "--", "cat", "/data/f"], ""),
        "kept\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_readiness_probe_gates_ready() {
    let testbed = shared().await;
    let env = env(testbed);
    let k = Kubectl::new_namespace(testbed, "probe");
    // The server starts only once /go exists.
    let mut pod = tools_pod(
        env,
        "late",
        &format!("while [ ! -e /go ]; do sleep 0.2; done; {HTTPD}"),
    );
    pod["spec"]["containers"][0]["readinessProbe"] = serde_json::json!({
        "httpGet": { "path": "/", "port": 8080 },
        "periodSeconds": 1,
    });
    k.apply(&pod);
    k.eventually("the container to run", Duration::from_secs(60), || {
        !k.jsonpath(
            "pod/late",
            "{.status.containerStatuses[0].state.running.startedAt}",
        )
        .is_empty()
    });
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        k.jsonpath(
            "pod/late",
            "{.status.conditions[?(@.type==\"Ready\")].status}"
        ),
        "False"
    );
    k.ok(&["exec", "late", "--", "touch", "/go"], "");
    k.wait_ready("late");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_security_context_is_really_applied() {
    let testbed = shared().await;
    let env = env(testbed);
    let k = Kubectl::new_namespace(testbed, "hardened");
    let mut pod = tools_pod(env, "locked", "sleep 3600");
    pod["spec"]["automountServiceAccountToken"] = serde_json::json!(false);
    pod["spec"]["containers"][0]["securityContext"] = serde_json::json!({
        "runAsUser": 1000,
        "runAsGroup": 1000,
        "allowPrivilegeEscalation": false,
        "capabilities": { "drop": ["ALL"] },
        "seccompProfile": { "type": "RuntimeDefault" },
    });
    k.apply(&pod);
    k.wait_ready("locked");
    let status = k.ok(&["exec", "locked", "--", "cat", "/proc/1/status"], "");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|| panic!("{name} missing from\n{status}"))
    };
    assert_eq!(field("Uid"), "1000 1000 1000 1000");
    assert_eq!(field("CapEff"), "0000000000000000");
    assert_eq!(field("CapBnd"), "0000000000000000");
    assert_eq!(field("Seccomp"), "2");
    assert_eq!(field("NoNewPrivs"), "1");
    let token = k.run(
        &[
            "exec",
            "locked",
            "--",
            "ls",
            "/var/run/secrets/kubernetes.io/serviceaccount",
        ],
        "",
    );
    assert!(!token.status.success(), "a token is mounted");
}

#[tokio::test(flavor = "multi_thread")]
async fn image_pull_failures_and_crash_loops_are_real() {
    let testbed = shared().await;
    let env = env(testbed);
    let k = Kubectl::new_namespace(testbed, "faults");
    let mut missing = tools_pod(env, "missing", "true");
    missing["spec"]["containers"][0]["image"] =
        serde_json::json!(format!("{}/tools:no-such-tag", env.registry));
    k.apply(&missing);
    // Both states, in order, each with its own message.
    let mut seen: Vec<(String, String)> = Vec::new();
    k.eventually("ImagePullBackOff", Duration::from_secs(90), || {
        let waiting = k.jsonpath(
            "pod/missing",
            "{.status.containerStatuses[0].state.waiting.reason}|{.status.containerStatuses[0].state.waiting.message}",
        );
        let (reason, message) = waiting.split_once('|').unwrap_or_default();
        if !reason.is_empty() && !seen.iter().any(|(r, _)| r == reason) {
            seen.push((reason.to_owned(), message.to_owned()));
        }
        reason == "ImagePullBackOff"
    });
    let pull_error = seen
        .iter()
        .find(|(reason, _)| reason == "ErrImagePull")
        .unwrap_or_else(|| panic!("no ErrImagePull before the back-off: {seen:?}"));
    assert!(pull_error.1.contains("not found"), "{seen:?}");

    k.apply(&tools_pod(env, "crasher", "echo crashing; exit 1"));
    k.eventually("CrashLoopBackOff", Duration::from_secs(90), || {
        k.jsonpath(
            "pod/crasher",
            "{.status.containerStatuses[0].state.waiting.reason}",
        ) == "CrashLoopBackOff"
    });
    assert_eq!(
        k.jsonpath(
            "pod/crasher",
            "{.status.containerStatuses[0].lastState.terminated.exitCode}"
        ),
        "1"
    );
    assert_eq!(k.ok(&["logs", "crasher", "--previous"], ""), "crashing\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn gvisor_pods_run_inside_gvisor() {
    let testbed = shared().await;
    let env = env(testbed);
    let k = Kubectl::new_namespace(testbed, "gvisor");
    let mut pod = tools_pod(env, "sandboxed", &format!("uname -r; {HTTPD}"));
    pod["spec"]["runtimeClassName"] = serde_json::json!("gvisor");
    k.apply(&pod);
    k.wait_ready("sandboxed");

    // gVisor's kernel: its own version and boot messages.
    assert_eq!(k.ok(&["logs", "sandboxed"], ""), "4.4.0\n");
    let dmesg = k.ok(&["exec", "sandboxed", "--", "dmesg"], "");
    assert!(dmesg.contains("Starting gVisor"), "{dmesg}");
    let exec = k.run(
        &[
            "exec",
            "sandboxed",
            "--",
            "sh",
            "-c",
            "echo in-gvisor; exit 3",
        ],
        "",
    );
    assert_eq!(exec.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&exec.stdout), "in-gvisor\n");

    // gVisor's own network stack (as GKE Sandbox runs it): the kubelet's port-forward enters the
    // pod's network namespace, where nothing listens, so it fails as on real clusters
    // (agent-sandbox #158/#170). Recorded as observed.
    let forward = k.port_forward("pod/sandboxed", 8080);
    let error = forward.get("/").expect_err("port-forward under gVisor");
    let said = forward.stop();
    assert!(
        said.contains("failed to connect to localhost:8080 inside namespace"),
        "curl: {error}; kubectl: {said}"
    );
    // exec reaches it: the way claude-sandbox's `--via exec` tunnels.
    assert_eq!(
        k.ok(
            &[
                "exec",
                "sandboxed",
                "--",
                "wget",
                "-q",
                "-O-",
                "http://127.0.0.1:8080/"
            ],
            ""
        ),
        "served by sandboxed\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn kata_pods_fail_with_the_runtimes_error() {
    let testbed = shared().await;
    let env = env(testbed);
    let k = Kubectl::new_namespace(testbed, "kata");
    let mut pod = tools_pod(env, "kata", "true");
    pod["spec"]["runtimeClassName"] = serde_json::json!("kata-qemu");
    k.apply(&pod);
    k.eventually("the sandbox to fail", Duration::from_secs(60), || {
        let events = k.ok(&["get", "events", "-o", "jsonpath={.items[*].message}"], "");
        events.contains("no runtime for \"kata-qemu\" is configured")
    });
}

/// The devcontainer image with the repository's own init script as its command: the image holds
/// what `devcontainer.json` asks for, and the init starts it.
#[tokio::test(flavor = "multi_thread")]
async fn the_devcontainer_image_runs_claude_code_server_and_sshd() {
    let testbed = shared().await;
    let env = env(testbed);
    let k = Kubectl::new_namespace(testbed, "devcontainer");
    let entrypoint =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../k8s/agent-sandbox/entrypoint.sh");
    k.ok(
        &[
            "create",
            "configmap",
            "init",
            &format!("--from-file=entrypoint.sh={}", entrypoint.display()),
        ],
        "",
    );
    k.apply(&serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": { "name": "dev" },
        "spec": {
            "terminationGracePeriodSeconds": 5,
            "volumes": [
                { "name": "init", "configMap": { "name": "init" } },
                { "name": "workspaces", "emptyDir": {} },
            ],
            "containers": [{
                "name": "dev",
                "image": env.devcontainer_image,
                "command": ["sh", "/etc/claude-sandbox/init/entrypoint.sh"],
                "workingDir": "/workspaces",
                "securityContext": { "runAsUser": 1000, "runAsGroup": 1000 },
                "env": [
                    { "name": "CLAUDE_CONFIG_DIR", "value": "/workspaces/.claude" },
                    { "name": "DISABLE_AUTOUPDATER", "value": "1" },
                ],
                "volumeMounts": [
                    { "name": "init", "mountPath": "/etc/claude-sandbox/init" },
                    { "name": "workspaces", "mountPath": "/workspaces" },
                ],
                "readinessProbe": { "httpGet": { "path": "/healthz", "port": 13337 }, "periodSeconds": 2 },
            }],
        },
    }));
    k.wait_ready("dev");

    let version = k.ok(&["exec", "dev", "--", "claude", "--version"], "");
    assert!(version.trim_end().ends_with("(Claude Code)"), "{version}");
    assert_eq!(k.ok(&["exec", "dev", "--", "id", "-un"], ""), "vscode\n");

    let code_server = k.port_forward("pod/dev", 13337);
    let health = code_server.get("/healthz").unwrap();
    assert!(health.contains("\"status\""), "{health}");
    let page = code_server.get("/").unwrap();
    assert!(
        page.contains("vs/workbench") || page.contains("workbench"),
        "{page}"
    );

    // sshd runs with the configuration the init wrote, and takes a key.
    k.ok(
        &["exec", "dev", "--", "sudo", "-n", "/usr/sbin/sshd", "-t"],
        "",
    );
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("id");
    let generated = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", ""])
        .arg("-f")
        .arg(&key)
        .status()
        .unwrap();
    assert!(generated.success());
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    k.ok(
        &["exec", "-i", "dev", "--", "sh", "-c", "mkdir -p ~/.ssh && cat > ~/.ssh/authorized_keys && chmod 700 ~/.ssh && chmod 600 ~/.ssh/authorized_keys"],
        &public,
    );
    let ssh = k.port_forward("pod/dev", 2222);
    let login = Command::new("ssh")
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
        ])
        .arg("-i")
        .arg(&key)
        .args([
            "-p",
            &ssh.local.to_string(),
            "vscode@127.0.0.1",
            "id -un; exit 4",
        ])
        .output()
        .unwrap();
    assert_eq!(
        login.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&login.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&login.stdout), "vscode\n");
}

/// The envbuilder stand-in clones the git server's snapshot for real, runs the hook and then the
/// init script as the container user, in the workspace folder, with containerEnv applied.
#[tokio::test(flavor = "multi_thread")]
async fn the_envbuilder_stand_in_clones_the_served_working_tree() {
    let testbed = shared().await;
    let env = env(testbed);
    let k = Kubectl::new_namespace(testbed, "envbuilder");
    k.apply(&serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": { "name": "build" },
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": "build",
                "image": env.envbuilder_image,
                "env": [
                    { "name": "ENVBUILDER_GIT_URL", "value": env.git_url },
                    { "name": "ENVBUILDER_INIT_SCRIPT", "value": "echo \"init: $(id -un) in $PWD, $GREETING, envbuilder variables: $(env | grep -c ^ENVBUILDER_)\"; cat README /tmp/hook; ls; exec sleep 3600" },
                ],
            }],
        },
    }));
    k.wait_ready("build");
    let deadline = Instant::now() + Duration::from_secs(60);
    let log = loop {
        let log = k.ok(&["logs", "build"], "");
        if log.contains("hook ran as") || Instant::now() > deadline {
            break log;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    let markers = [
        "envbuilder v",
        &format!("📦 Cloning {}", env.git_url),
        "📦 Cloned repository!",
        "=== Running postCreateCommand as the \"vscode\" user...",
        "=== Running init command as user \"vscode\"",
        "init: vscode in /workspaces/project, hello from project, envbuilder variables: 0",
        "changed, not committed",
        "hook ran as vscode",
        "untracked.txt",
    ];
    let mut at = 0;
    for marker in markers {
        let found = log[at..]
            .find(marker)
            .unwrap_or_else(|| panic!("{marker:?} missing (in order) from\n{log}"));
        at += found;
    }
    assert!(!log.contains("ignored.log"), "{log}");
}

/// The documents of a multi-document manifest.
fn documents(manifest: &str) -> Vec<&str> {
    manifest
        .split("\n---\n")
        .filter(|d| d.lines().any(|l| l.starts_with("kind:")))
        .collect()
}

/// The top-level `kind` of a manifest document.
fn kind_of(document: &str) -> &str {
    document
        .lines()
        .find_map(|l| l.strip_prefix("kind:"))
        .map(str::trim)
        .unwrap_or_default()
}

/// The image of the controller workload (Deployment or StatefulSet) of a release manifest, as
/// written there: the upstream registry's name, which no test spells out.
fn controller_image(manifest: &Path) -> String {
    let text = std::fs::read_to_string(manifest).unwrap();
    documents(&text)
        .into_iter()
        .filter(|d| matches!(kind_of(d), "Deployment" | "StatefulSet"))
        .flat_map(|d| d.lines())
        .find_map(|l| {
            l.trim_start()
                .trim_start_matches("- ")
                .strip_prefix("image:")
        })
        .map(|image| image.trim().to_owned())
        .unwrap_or_else(|| panic!("no controller image in {}", manifest.display()))
}

/// The controller's pod in `agent-sandbox-system` (its only pod): it has the upstream image
/// name, runs the placeholder (as the image's non-root user, with upstream's arguments), and
/// stops at once when asked.
fn check_controller_pod(testbed: &Testbed, upstream_image: &str, args: &str) {
    let system = Kubectl {
        kubeconfig: testbed.kubeconfig(),
        namespace: "agent-sandbox-system".to_owned(),
    };
    let pod = system.jsonpath("pods", "{.items[0].metadata.name}");
    assert_eq!(
        system.jsonpath(&format!("pod/{pod}"), "{.spec.containers[0].image}"),
        upstream_image
    );
    assert_eq!(
        system.jsonpath(
            &format!("pod/{pod}"),
            "{.status.containerStatuses[0].image}"
        ),
        upstream_image
    );
    let log = system.ok(&["logs", &pod], "");
    assert_eq!(
        log,
        format!(
            "kube-testbed: placeholder for the agent-sandbox controller, which the testbed \
             simulates in its own process (crates/kube-testbed-controller)\n\
             kube-testbed: arguments: {args}\n"
        )
    );
    assert_eq!(system.ok(&["exec", &pod, "--", "id", "-u"], ""), "65532\n");

    // TERM ends it at once (the grace period is upstream's default, 30 s).
    let started = Instant::now();
    system.ok(&["delete", "pod", &pod, "--wait"], "");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the placeholder took {:?} to stop",
        started.elapsed()
    );
}

/// The default controller manifest on a real node: the testbed applies it as written, containerd
/// pulls its upstream image name from the testbed's registry (the controller placeholder), and the
/// Deployment becomes available, which sets the simulated controller to work.
#[tokio::test(flavor = "multi_thread")]
async fn the_controller_deployment_runs_the_mirrored_upstream_image() {
    let testbed = Testbed::start_with(TestbedOptions::default().node(NodeKind::Real))
        .await
        .unwrap();
    let env = env(&testbed);
    let upstream = controller_image(&kube_testbed::paths::default_controller_manifest());
    let (host, _) = upstream.split_once('/').unwrap();
    assert!(!upstream.starts_with(&env.registry), "{upstream}");

    // containerd sends the upstream host's pulls to the testbed's registry.
    let hosts = std::fs::read_to_string(
        testbed
            .dir()
            .join("node/certs.d")
            .join(host)
            .join("hosts.toml"),
    )
    .unwrap();
    assert!(
        hosts.starts_with(&format!("server = \"http://{}\"\n", env.registry)),
        "{hosts}"
    );

    let system = Kubectl {
        kubeconfig: testbed.kubeconfig(),
        namespace: "agent-sandbox-system".to_owned(),
    };
    assert_eq!(
        system.jsonpath(
            "deployment/agent-sandbox-controller",
            "{.status.availableReplicas}"
        ),
        "1"
    );
    check_controller_pod(&testbed, &upstream, "--leader-elect=true --extensions");
}

/// An installer's way: a real node with the CRDs only, then the v0.1.0 release's other objects
/// applied with kubectl as written. Its StatefulSet's pod pulls the upstream image through the
/// mirror and becomes Ready, and the simulated controller then reconciles a Sandbox into a pod
/// running on the real node.
#[tokio::test(flavor = "multi_thread")]
async fn an_installed_release_controller_gets_ready_and_sandboxes_run_on_the_real_node() {
    let testbed = Testbed::start_with(
        TestbedOptions::default()
            .no_controller()
            .node(NodeKind::Real),
    )
    .await
    .unwrap();
    let env = env(&testbed);
    let release =
        kube_testbed::paths::agent_sandbox_data().join("release-v0.1.0/for-k8s-1.20/manifest.yaml");
    let upstream = controller_image(&release);
    let text = std::fs::read_to_string(&release).unwrap();
    let objects: Vec<&str> = documents(&text)
        .into_iter()
        .filter(|d| kind_of(d) != "CustomResourceDefinition")
        .collect();
    let system = Kubectl {
        kubeconfig: testbed.kubeconfig(),
        namespace: "agent-sandbox-system".to_owned(),
    };
    system.ok(&["apply", "-f", "-"], &objects.join("\n---\n"));
    system.ok(
        &[
            "rollout",
            "status",
            "statefulset/agent-sandbox-controller",
            "--timeout=120s",
        ],
        "",
    );
    assert_eq!(
        system.jsonpath(
            "statefulset/agent-sandbox-controller",
            "{.status.readyReplicas}"
        ),
        "1"
    );

    let k = Kubectl::new_namespace(&testbed, "installed");
    k.apply(&serde_json::json!({
        "apiVersion": "agents.x-k8s.io/v1alpha1",
        "kind": "Sandbox",
        "metadata": { "name": "sleeper" },
        "spec": {
            "podTemplate": {
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{
                        "name": "main",
                        "image": env.tools_image,
                        "command": ["sleep", "3600"],
                    }],
                },
            },
        },
    }));
    k.eventually("the Sandbox's pod to run", Duration::from_secs(90), || {
        k.jsonpath_if_present("pod/sleeper", "{.status.phase}")
            .as_deref()
            == Some("Running")
    });
    assert_eq!(
        k.jsonpath("pod/sleeper", "{.metadata.ownerReferences[0].kind}"),
        "Sandbox"
    );
    assert_eq!(k.jsonpath("pod/sleeper", "{.spec.nodeName}"), env.node_name);
    k.ok(
        &[
            "wait",
            "--for=condition=Ready",
            "--timeout=60s",
            "sandbox/sleeper",
        ],
        "",
    );
    assert_eq!(
        k.ok(&["exec", "sleeper", "--", "cat", "/proc/1/cmdline"], ""),
        "sleep\x003600\x00"
    );

    check_controller_pod(&testbed, &upstream, "");
}

/// A controller manifest whose image the mirror lacks fails a real node's start at once, saying
/// so, instead of a controller that never gets Ready.
#[tokio::test(flavor = "multi_thread")]
async fn an_unmirrored_controller_image_is_refused_before_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("controller.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: agent-sandbox-controller\n  \
         namespace: agent-sandbox-system\nspec:\n  template:\n    spec:\n      containers:\n      \
         - name: c\n        image: ko://example.test/cmd/agent-sandbox-controller\n",
    )
    .unwrap();
    let started = Instant::now();
    let error = Testbed::start_with(
        TestbedOptions::default()
            .controller_manifest(&manifest)
            .node(NodeKind::Real),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("a real node cannot pull its controller image ko://"),
        "{error}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// Everything a real node makes outside its directory, by the names its record uses.
fn leftovers(dir: &Path) -> Vec<String> {
    let dir_text = dir.display().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().filter_map(|e| e.ok()) {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if pid == std::process::id().to_string() {
            continue;
        }
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(&dir_text) {
            found.push(format!("process {pid}: {cmdline}"));
        }
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    found.extend(
        mountinfo
            .lines()
            .filter(|l| l.contains(&format!(" {dir_text}/")))
            .map(|l| format!("mount: {l}")),
    );
    found
}

/// The node's bridge, cgroup and record, named after the testbed's pod subnet's bridge.
fn node_resources(bridge: &str) -> Vec<String> {
    let id = bridge.trim_start_matches("ktb-");
    let mut found = Vec::new();
    let links = Command::new("ip").args(["-o", "link"]).output().unwrap();
    for line in String::from_utf8_lossy(&links.stdout).lines() {
        if line.contains(bridge) {
            found.push(format!("link: {line}"));
        }
    }
    for hierarchy in std::fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .filter_map(|e| e.ok())
    {
        let cgroup = hierarchy.path().join(format!("kube-testbed-{id}"));
        if cgroup.exists() {
            found.push(format!("cgroup: {}", cgroup.display()));
        }
    }
    let record = PathBuf::from(format!("/run/kube-testbed/{id}.json"));
    if record.exists() {
        found.push(format!("record: {}", record.display()));
    }
    let leases = PathBuf::from(format!("/var/lib/cni/networks/kube-testbed-{id}"));
    if leases.exists() {
        found.push(format!("CNI leases: {}", leases.display()));
    }
    found
}

/// The bridge of the testbed whose node has address `node_ip`.
fn bridge_of(node_ip: &std::net::Ipv4Addr) -> String {
    let output = Command::new("ip")
        .args(["-4", "-o", "addr"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find(|l| l.contains(&format!("inet {node_ip}/")))
        .and_then(|l| l.split_whitespace().nth(1))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no interface has {node_ip}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn stop_leaves_nothing_behind() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("testbed");
    let testbed = Testbed::start_with(real_node_options().dir(&dir))
        .await
        .unwrap();
    let env = env(&testbed).clone();
    let bridge = bridge_of(&env.node_ip);
    let k = Kubectl::new_namespace(&testbed, "stop");
    k.apply(&tools_pod(&env, "runc", "sleep 3600"));
    let mut gvisor = tools_pod(&env, "gvisor", "sleep 3600");
    gvisor["spec"]["runtimeClassName"] = serde_json::json!("gvisor");
    k.apply(&gvisor);
    k.wait_ready("runc");
    k.wait_ready("gvisor");
    assert!(
        !leftovers(&dir).is_empty(),
        "the node's processes and mounts are there"
    );
    assert!(!node_resources(&bridge).is_empty());

    drop(testbed);
    assert_eq!(leftovers(&dir), Vec::<String>::new());
    assert_eq!(node_resources(&bridge), Vec::<String>::new());
    let listening = Command::new("ss").args(["-Hltn"]).output().unwrap();
    let listening = String::from_utf8_lossy(&listening.stdout);
    assert!(!listening.contains(&env.node_ip.to_string()), "{listening}");
    assert!(!listening.contains(&env.registry), "{listening}");
}

const PROGRAM: &str = env!("CARGO_BIN_EXE_kube-testbed");

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_testbed_is_swept_by_the_next_start() {
    let parent = tempfile::tempdir().unwrap();
    let dead = parent.path().join("dead");
    let start = Command::new(PROGRAM)
        .args(["start", "--no-crds", "--node", "real", "--dir"])
        .arg(&dead)
        .output()
        .unwrap();
    assert!(
        start.status.success(),
        "{}",
        String::from_utf8_lossy(&start.stderr)
    );
    let env_file = std::fs::read_to_string(dead.join("testbed.env")).unwrap();
    let node_ip: std::net::Ipv4Addr = env_file
        .lines()
        .find_map(|l| l.strip_prefix("export NODE_IP='"))
        .and_then(|v| v.strip_suffix('\''))
        .unwrap()
        .parse()
        .unwrap();
    let bridge = bridge_of(&node_ip);
    let k = Kubectl {
        kubeconfig: dead.join("kubeconfig"),
        namespace: "default".to_owned(),
    };
    let tools = env_file
        .lines()
        .find_map(|l| l.strip_prefix("export TOOLS_IMAGE='"))
        .and_then(|v| v.strip_suffix('\''))
        .unwrap()
        .to_owned();
    k.ok(
        &["run", "victim", "--image", &tools, "--", "sleep", "3600"],
        "",
    );
    k.wait_ready("victim");

    // Killed abruptly, as a killed CI job leaves it: everything naming the directory, at once.
    for line in leftovers(&dead)
        .iter()
        .filter(|l| l.starts_with("process "))
    {
        let pid = line["process ".len()..].split(':').next().unwrap();
        let _ = Command::new("kill").args(["-KILL", pid]).status();
    }
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        !node_resources(&bridge).is_empty(),
        "the dead node left its bridge and cgroup"
    );

    // The next real node's start sweeps them.
    let next = Testbed::start_with(real_node_options()).await.unwrap();
    assert_eq!(node_resources(&bridge), Vec::<String>::new());
    assert_eq!(leftovers(&dead), Vec::<String>::new());
    drop(next);
}
