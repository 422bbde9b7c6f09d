//! Running the real `claude-sandbox` binary against a test cluster.

#![allow(dead_code)] // each test binary uses its own part

pub mod browser;

use std::{
    path::{Path, PathBuf},
    process::Output,
};

use kube::{Api, Client, api::DynamicObject, discovery::ApiResource};

/// The upstream test data beside the repository.
pub fn shared(path: &str) -> PathBuf {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/agent-sandbox"
    ))
    .join(path)
}

/// The current release asset, adapted for the 1.20 test API server.
pub fn current_release() -> PathBuf {
    shared("release-2026-08-22/for-k8s-1.20/sandbox-with-extensions.yaml")
}

/// Runs `claude-sandbox ARGS` (as a script would: no terminal) with `kubeconfig` and `env`.
pub async fn cli(kubeconfig: &Path, args: &[&str], env: &[(&str, &str)]) -> CliOutput {
    CliOutput(
        command(kubeconfig, args, env)
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .expect("the binary runs"),
    )
}

/// Like [`cli`], with `input` on stdin.
pub async fn cli_with_input(kubeconfig: &Path, args: &[&str], input: Vec<u8>) -> CliOutput {
    use tokio::io::AsyncWriteExt;
    let mut child = command(kubeconfig, args, &[])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let mut stdin = child.stdin.take().unwrap();
    let feed = tokio::spawn(async move {
        let _ = stdin.write_all(&input).await;
    });
    let output = child.wait_with_output().await.expect("the binary runs");
    feed.await.unwrap();
    CliOutput(output)
}

/// The `claude-sandbox ARGS` command, not started.
pub fn command(kubeconfig: &Path, args: &[&str], env: &[(&str, &str)]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_claude-sandbox"));
    // Before ARGS: a `--` in them passes the rest to the sandbox.
    command
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .env_remove("KUBECONFIG")
        .env_remove("RUST_LOG")
        .kill_on_drop(true);
    for (key, value) in env {
        command.env(key, value);
    }
    command
}

pub struct CliOutput(pub Output);

impl CliOutput {
    pub fn code(&self) -> Option<i32> {
        self.0.status.code()
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }
    pub fn all(&self) -> String {
        self.stdout() + &self.stderr()
    }
    /// Asserts the exit code, showing the output when it differs.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code(),
            Some(code),
            "stdout:\n{}\nstderr:\n{}",
            self.stdout(),
            self.stderr()
        );
        self
    }
    /// Asserts the exit code and that stderr says `message`.
    #[track_caller]
    pub fn expect_error(&self, code: i32, message: &str) -> &Self {
        self.expect_code(code);
        assert!(self.stderr().contains(message), "{}", self.stderr());
        self
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout()).unwrap_or_else(|e| panic!("{e}: {}", self.stdout()))
    }
}

/// The Sandboxes in `namespace`, in `version`.
pub async fn sandboxes(client: &Client, namespace: &str, version: &str) -> Vec<DynamicObject> {
    let resource = ApiResource::from_gvk_with_plural(
        &kube::api::GroupVersionKind::gvk("agents.x-k8s.io", version, "Sandbox"),
        "sandboxes",
    );
    Api::<DynamicObject>::namespaced_with(client.clone(), namespace, &resource)
        .list(&Default::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
}

/// Names of the objects of kind `K` in `namespace`, without the ones every namespace has.
pub async fn names<K>(client: &Client, namespace: &str) -> Vec<String>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    Api::<K>::namespaced(client.clone(), namespace)
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|o| o.meta().name.clone().unwrap_or_default())
        .filter(|n| n != "kube-root-ca.crt" && !n.starts_with("default-token-"))
        .collect()
}

/// Adds behaviour rules to the testbed's, keeping the other tests' rules (they share a testbed).
pub async fn add_behaviour_rules(
    testbed: &kube_testbed::Testbed,
    rules: Vec<kube_testbed::BehaviourRule>,
) {
    static RULES: tokio::sync::Mutex<Vec<kube_testbed::BehaviourRule>> =
        tokio::sync::Mutex::const_new(Vec::new());
    let mut all = RULES.lock().await;
    all.extend(rules);
    testbed.set_behaviour_rules(&all).await.expect("rules set");
}

/// Creates namespace `name`.
pub async fn create_namespace(client: &Client, name: &str) {
    let namespace: k8s_openapi::api::core::v1::Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap();
    Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone())
        .create(&Default::default(), &namespace)
        .await
        .expect("namespace created");
}

/// A home folder of its own (for the known_hosts file) with a new ed25519 key pair.
pub struct SshHome {
    pub dir: tempfile::TempDir,
    pub key: PathBuf,
    pub public: String,
}

impl SshHome {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("id_ed25519");
        let made = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "access-test", "-f"])
            .arg(&key)
            .status()
            .unwrap();
        assert!(made.success());
        let public = format!("{}.pub", key.display());
        Self { dir, key, public }
    }

    /// The environment that makes the CLI and ssh use this home.
    pub fn env(&self) -> [(&str, &str); 2] {
        [
            ("HOME", self.dir.path().to_str().unwrap()),
            ("XDG_CONFIG_HOME", ""),
        ]
    }
}

/// One `GET PATH` to `127.0.0.1:PORT` on its own connection (HTTP/1.1, `Connection: close`): the
/// status line and the rest of the response (headers and body).
pub async fn http_get(port: u16, path: &str) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8_lossy(&response).into_owned();
    match response.split_once("\r\n") {
        Some((status, rest)) => (status.to_owned(), rest.to_owned()),
        None => (response, String::new()),
    }
}

/// `kubectl --kubeconfig KUBECONFIG -n NAMESPACE ARGS`, not started.
pub fn kubectl(kubeconfig: &Path, namespace: &str, args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new("kubectl");
    command
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["-n", namespace])
        .args(args)
        .kill_on_drop(true);
    command
}

/// A running `claude-sandbox connect`: the local port and the first line it printed (the URL and
/// the transport). Stopped when dropped.
pub struct Connect {
    _child: tokio::process::Child,
    pub port: u16,
    pub said: String,
}

/// `claude-sandbox connect SANDBOX -n NAMESPACE --port 0 EXTRA…`, once it has printed its URL.
pub async fn connect(kubeconfig: &Path, sandbox: &str, namespace: &str, extra: &[&str]) -> Connect {
    use tokio::io::AsyncBufReadExt;
    let mut args = vec!["connect", sandbox, "-n", namespace, "--port", "0"];
    args.extend_from_slice(extra);
    let mut child = command(kubeconfig, &args, &[])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let said = tokio::time::timeout(std::time::Duration::from_secs(60), lines.next_line())
        .await
        .expect("connect prints its URL")
        .unwrap()
        .expect("a first line");
    let port = said
        .split("http://localhost:")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("no URL in {said:?}"));
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Connect {
        _child: child,
        port,
        said,
    }
}

/// A connection to `127.0.0.1:PORT` kept open after one `GET /healthz` was answered (the start of
/// the answer is read): for checking what happens to it when its stream is cut.
pub async fn answered_open_connection(port: u16) -> tokio::net::TcpStream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut open = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    open.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 12];
    tokio::time::timeout(
        std::time::Duration::from_secs(60),
        open.read_exact(&mut first),
    )
    .await
    .expect("an answer on the kept-open connection")
    .unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    open
}
