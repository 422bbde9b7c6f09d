//! `exec`, `cp`, `connect`, `proxy`, `ssh`, `ssh-config`, `shell`, `claude` and `verify`: the real
//! binary through a real API server to the sandbox's pod — on the testbed's real node (kubelet,
//! containerd, runc; the devcontainer image with real sshd, code-server and Claude Code, envbuilder
//! the stand-in), or with KUBE_TESTBED_NODE=simulated on the simulated kubelet (stand-in daemons,
//! and the faults only it can make), or the cluster of CLAUDE_SANDBOX_TEST_KUBECONFIG.

mod support;

use std::{os::unix::fs::PermissionsExt, path::Path, time::Duration};

use kube_testbed::{BehaviourRule, TestCluster};
use support::{SshHome, add_behaviour_rules, cli, cli_with_input, command};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The default sandbox's workspace folder (nothing cloned: the bundled devcontainer).
const WORKSPACE: &str = "/workspaces/workspace";
const SECRET_VALUE: &str = "ghp_AccessTestSecretValue";

/// The devcontainer's user: vscode in a real sandbox, the testbed's pod user here.
fn sandbox_user(cluster: &TestCluster) -> &'static str {
    if cluster.is_simulated() {
        kube_testbed::POD_USER
    } else {
        claude_sandbox_core::layout::USER
    }
}

/// A namespace with a ready sandbox `box` whose pod behaves as `behaviours` say (simulated node
/// only). It asks for a quarter of a core, so that several fit on a two-core node.
async fn ready_sandbox(cluster: &TestCluster, prefix: &str, behaviours: &[(&str, &str)]) -> String {
    let ns = cluster.create_namespace(prefix).await.unwrap();
    if let Some(testbed) = cluster.testbed().filter(|_| cluster.is_simulated()) {
        // Ready once the init script runs (the envbuilder script takes 1.6 s), as code-server's
        // readiness probe would have it.
        let mut rule = BehaviourRule::namespace(&ns)
            .annotation("log-script", "envbuilder")
            .annotation("ready-delay", "3s");
        for (key, value) in behaviours {
            rule = rule.annotation(*key, *value);
        }
        add_behaviour_rules(testbed, vec![rule]).await;
    }
    cli(
        cluster.kubeconfig(),
        &[
            "up",
            "box",
            "-n",
            &ns,
            "--secret-env",
            "GITHUB_TOKEN",
            "--requests",
            "cpu=250m,memory=1Gi",
            "--timeout",
            "20m",
        ],
        &[("GITHUB_TOKEN", SECRET_VALUE)],
    )
    .await
    .expect_code(0);
    ns
}

async fn shared_sandbox() -> (&'static TestCluster, &'static str) {
    static SANDBOX: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    let cluster = TestCluster::shared().await.unwrap();
    let ns = SANDBOX
        .get_or_init(|| ready_sandbox(cluster, "access", &[]))
        .await;
    (cluster, ns.as_str())
}

#[tokio::test]
async fn exec_streams_output_input_and_exit_codes() {
    let (cluster, ns) = shared_sandbox().await;
    let kubeconfig = cluster.kubeconfig();
    let exec = |command: &'static [&'static str]| async move {
        let mut args = vec!["exec", "box", "-n", ns, "--"];
        args.extend(command);
        cli(kubeconfig, &args, &[]).await
    };

    let out = exec(&["sh", "-c", "echo out; echo err >&2; exit 3"]).await;
    out.expect_code(3);
    assert_eq!(out.stdout(), "out\n");
    assert_eq!(out.stderr(), "err\n");
    exec(&["true"]).await.expect_code(0);
    // Killed by a signal: 128 + SIGKILL, as kubectl exec reports it.
    exec(&["sh", "-c", "kill -9 $$"]).await.expect_code(137);

    let who = exec(&["sh", "-c", "id -un; pwd; echo \"$HOME\""]).await;
    let lines: Vec<String> = who
        .expect_code(0)
        .stdout()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(lines[0], sandbox_user(cluster), "{lines:?}");
    assert!(lines[1].ends_with(WORKSPACE), "{lines:?}");
    let root = cli(
        kubeconfig,
        &[
            "exec",
            "box",
            "-n",
            ns,
            "--user",
            "root",
            "--workdir",
            "/tmp",
            "--",
            "sh",
            "-c",
            "id -un; pwd",
        ],
        &[],
    )
    .await;
    assert_eq!(root.expect_code(0).stdout(), "root\n/tmp\n");
    // The image's environment: the Secret's variable is there, as for the init process.
    let env = exec(&["sh", "-c", "test -n \"$GITHUB_TOKEN\" && echo set"]).await;
    assert_eq!(env.expect_code(0).stdout(), "set\n");

    // 10 MB of noise through stdin and back through stdout, intact.
    let input: Vec<u8> = (0..10 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let echoed = cli_with_input(
        kubeconfig,
        &["exec", "box", "-n", ns, "--", "cat"],
        input.clone(),
    )
    .await;
    echoed.expect_code(0);
    assert_eq!(echoed.0.stdout.len(), input.len());
    assert!(echoed.0.stdout == input, "10 MB came back changed");

    let bad = cli(
        kubeconfig,
        &["exec", "box", "-n", ns, "--user", "a;b", "--", "true"],
        &[],
    )
    .await;
    bad.expect_code(2);
    assert!(bad.stderr().contains("--user"), "{}", bad.stderr());
    let missing = cli(kubeconfig, &["exec", "nope", "-n", ns, "--", "true"], &[]).await;
    missing.expect_code(8);
}

/// Files and folders with their modes, relative to `root`.
fn tree(root: &Path) -> Vec<(String, u32, Vec<u8>)> {
    let mut entries = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let relative = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let mode = meta.permissions().mode() & 0o7777;
            if meta.is_dir() {
                stack.push(path);
                entries.push((relative, mode, Vec::new()));
            } else {
                entries.push((relative, mode, std::fs::read(&path).unwrap()));
            }
        }
    }
    entries.sort();
    entries
}

fn write_file(path: &Path, content: &[u8], mode: u32) {
    std::fs::write(path, content).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[tokio::test]
async fn cp_copies_trees_both_ways_keeping_modes() {
    let (cluster, ns) = shared_sandbox().await;
    let kubeconfig = cluster.kubeconfig();
    let local = tempfile::tempdir().unwrap();
    let source = local.path().join("project");
    std::fs::create_dir_all(source.join("src/nested")).unwrap();
    std::fs::create_dir(source.join("empty")).unwrap();
    write_file(&source.join("run.sh"), b"#!/bin/sh\necho hi\n", 0o755);
    write_file(&source.join("private.key"), b"not really\n", 0o600);
    write_file(&source.join("src/main.rs"), b"fn main() {}\n", 0o644);
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    write_file(&source.join("src/nested/blob.bin"), &big, 0o640);
    std::fs::set_permissions(
        source.join("src/nested"),
        std::fs::Permissions::from_mode(0o750),
    )
    .unwrap();

    // Up into the workspace (a relative sandbox path), then back into a new local folder.
    let up = cli(
        kubeconfig,
        &["cp", source.to_str().unwrap(), "box:copied", "-n", ns],
        &[],
    )
    .await;
    up.expect_code(0);
    let listed = cli(
        kubeconfig,
        &[
            "exec",
            "box",
            "-n",
            ns,
            "--",
            "stat",
            "-c",
            "%a %n",
            "copied/run.sh",
            "copied/private.key",
        ],
        &[],
    )
    .await;
    assert_eq!(
        listed.expect_code(0).stdout(),
        "755 copied/run.sh\n600 copied/private.key\n"
    );
    let back = local.path().join("back");
    cli(
        kubeconfig,
        &["cp", "-n", ns, "box:copied", back.to_str().unwrap()],
        &[],
    )
    .await
    .expect_code(0);
    assert_eq!(tree(&back), tree(&source));

    // A file into an existing folder keeps its name; a missing source is named.
    write_file(&local.path().join("notes.md"), b"# notes\n", 0o644);
    cli(
        kubeconfig,
        &[
            "cp",
            "-n",
            ns,
            local.path().join("notes.md").to_str().unwrap(),
            "box:copied/src",
        ],
        &[],
    )
    .await
    .expect_code(0);
    cli(
        kubeconfig,
        &[
            "cp",
            "-n",
            ns,
            "box:copied/src/notes.md",
            back.to_str().unwrap(),
        ],
        &[],
    )
    .await
    .expect_code(0);
    assert_eq!(std::fs::read(back.join("notes.md")).unwrap(), b"# notes\n");
    let missing = cli(
        kubeconfig,
        &[
            "cp",
            "-n",
            ns,
            "box:/no/such",
            local.path().to_str().unwrap(),
        ],
        &[],
    )
    .await;
    missing.expect_error(1, "/no/such: no such file");
    let neither = cli(kubeconfig, &["cp", "-n", ns, "a", "b"], &[]).await;
    neither.expect_code(2);
}

async fn connect(kubeconfig: &Path, ns: &str, via: &str) -> support::Connect {
    let connect = support::connect(kubeconfig, "box", ns, &["--via", via]).await;
    let expected = if via == "exec" {
        "(via exec (bash /dev/tcp))"
    } else {
        "(via port-forward)"
    };
    assert!(connect.said.contains(expected), "{}", connect.said);
    connect
}

/// One `GET /healthz` on its own connection: the status line.
async fn health(port: u16) -> String {
    tokio::time::timeout(Duration::from_secs(60), health_once(port))
        .await
        .expect("an answer within a minute")
}

async fn health_once(port: u16) -> String {
    support::http_get(port, "/healthz").await.0
}

#[tokio::test]
async fn connect_carries_parallel_requests_over_both_transports_and_reconnects() {
    // A sandbox of its own: dropping every stream of its pod must not cut the other tests'.
    let cluster = TestCluster::shared().await.unwrap();
    let ns = &ready_sandbox(cluster, "connect", &[]).await;
    for via in ["port-forward", "exec"] {
        let connect = connect(cluster.kubeconfig(), ns, via).await;
        let statuses = futures::future::join_all((0..24).map(|_| health(connect.port))).await;
        for status in &statuses {
            assert_eq!(status, "HTTP/1.1 200 OK", "via {via}: {statuses:?}");
        }
        // Only the simulated kubelet cuts one pod's streams (the real one restarting would cut the
        // other tests' too: faults.rs does that on a testbed of its own).
        let Some(testbed) = cluster.testbed().filter(|_| cluster.is_simulated()) else {
            continue;
        };
        // A connection that is open when the kubelet drops every stream is closed; the next works.
        let mut open = support::answered_open_connection(connect.port).await;
        let dropped =
            tokio::time::timeout(Duration::from_secs(60), testbed.drop_streams(ns, "box"))
                .await
                .expect("the kubelet drops the streams within a minute")
                .unwrap();
        assert!(dropped >= 1, "via {via}: nothing to drop");
        let mut rest = Vec::new();
        let closed =
            tokio::time::timeout(Duration::from_secs(20), open.read_to_end(&mut rest)).await;
        assert!(
            closed.is_ok(),
            "via {via}: the dropped connection stayed open"
        );
        assert_eq!(
            health(connect.port).await,
            "HTTP/1.1 200 OK",
            "via {via}: no reconnect"
        );
    }
    // An exec whose session is cut ends with an error instead of waiting for ever.
    let Some(testbed) = cluster.testbed().filter(|_| cluster.is_simulated()) else {
        return;
    };
    let sleeping = command(
        cluster.kubeconfig(),
        &["exec", "box", "-n", ns, "--", "sleep", "100"],
        &[],
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    testbed.drop_streams(ns, "box").await.unwrap();
    let cut = tokio::time::timeout(Duration::from_secs(20), sleeping.wait_with_output())
        .await
        .expect("exec ends when its session is cut")
        .unwrap();
    assert_eq!(cut.status.code(), Some(1));
    let said = String::from_utf8_lossy(&cut.stderr);
    assert!(said.contains("the connection was lost"), "{said}");
}

#[tokio::test]
async fn ssh_logs_in_with_an_installed_key_through_the_tunnel() {
    let (cluster, ns) = shared_sandbox().await;
    let kubeconfig = cluster.kubeconfig();
    let home = SshHome::new();
    let home_env = home.env();
    let (key, public) = (&home.key, &home.public);
    let ssh_options = [
        "-i",
        key.to_str().unwrap(),
        "-o",
        "BatchMode=yes",
        "-o",
        "IdentitiesOnly=yes",
    ];

    let mut args = vec!["ssh", "box", "-n", ns, "--install-key", &public, "--"];
    args.extend(ssh_options);
    args.extend(["sh", "-c", "'id -un; exit 5'"]);
    let login = cli(kubeconfig, &args, &home_env).await;
    login.expect_code(5);
    assert_eq!(login.stdout(), format!("{}\n", sandbox_user(cluster)));
    assert!(
        login.stderr().contains("installed for"),
        "{}",
        login.stderr()
    );
    // The host key was pinned on first use, under this sandbox's alias.
    let known_hosts =
        std::fs::read_to_string(home.dir.path().join(".config/claude-sandbox/known_hosts"))
            .unwrap();
    assert!(
        known_hosts.starts_with(&format!("box.{ns}.claude-sandbox ")),
        "{known_hosts}"
    );

    let again = cli(
        kubeconfig,
        &[
            "ssh",
            "box",
            "-n",
            ns,
            "--install-key",
            public,
            "--via",
            "exec",
            "--",
            ssh_options[0],
            ssh_options[1],
            "true",
        ],
        &home_env,
    )
    .await;
    again.expect_error(0, "already installed");

    // ssh-config's block works for plain ssh (and so for VS Code Remote-SSH).
    let config = cli(kubeconfig, &["ssh-config", "box", "-n", ns], &home_env).await;
    let block = config.expect_code(0).stdout();
    assert!(
        block.contains(&format!("Host box.{ns}.claude-sandbox\n")),
        "{block}"
    );
    assert!(block.contains("ProxyCommand "), "{block}");
    let config_file = home.dir.path().join("ssh_config");
    std::fs::write(&config_file, &block).unwrap();
    let plain = tokio::process::Command::new("ssh")
        .arg("-F")
        .arg(&config_file)
        .args(ssh_options)
        .arg(format!("box.{ns}.claude-sandbox"))
        .arg("pwd")
        .env("HOME", home.dir.path())
        .output()
        .await
        .unwrap();
    assert!(
        plain.status.success(),
        "{}",
        String::from_utf8_lossy(&plain.stderr)
    );

    let no_key = cli(
        kubeconfig,
        &["ssh", "box", "-n", ns, "--install-key", "/nonexistent.pub"],
        &home_env,
    )
    .await;
    no_key.expect_error(2, "--install-key /nonexistent.pub");
}

/// Runs `claude-sandbox ARGS` under a pseudo-terminal of `rows`×`cols`, typing `input`; returns
/// what the terminal showed and the exit code.
async fn under_pty(
    kubeconfig: &Path,
    args: &[&str],
    script: &[(&str, Option<(u16, u16)>)],
) -> (String, i32) {
    let (pty, pts) = pty_process::open().unwrap();
    pty.resize(pty_process::Size::new(40, 100)).unwrap();
    let mut child = pty_process::Command::new(env!("CARGO_BIN_EXE_claude-sandbox"))
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .env("TERM", "xterm")
        .spawn(pts)
        .unwrap();
    let (mut read, mut write) = pty.into_split();
    let reader = tokio::spawn(async move {
        let mut seen = Vec::new();
        let mut buffer = [0u8; 4096];
        // EIO once the child has exited and the terminal is gone.
        while let Ok(n) = read.read(&mut buffer).await {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buffer[..n]);
        }
        String::from_utf8_lossy(&seen).into_owned()
    });
    for (line, resize) in script {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        if let Some((rows, cols)) = resize {
            write.resize(pty_process::Size::new(*rows, *cols)).unwrap();
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        write.write_all(line.as_bytes()).await.unwrap();
    }
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .expect("the session ends")
        .unwrap();
    drop(write);
    let seen = tokio::time::timeout(Duration::from_secs(10), reader)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    (seen, status.code().unwrap_or(-1))
}

#[tokio::test]
async fn shell_and_claude_run_as_the_devcontainer_user_in_a_terminal() {
    let (cluster, ns) = shared_sandbox().await;
    let kubeconfig = cluster.kubeconfig();
    let (seen, code) = under_pty(
        kubeconfig,
        &["shell", "box", "-n", ns],
        &[
            (
                "echo \"who=$(id -un) dir=$(pwd) tty=$(tty) size=$(stty size)\"\n",
                None,
            ),
            ("echo \"resized=$(stty size)\"\n", Some((50, 120))),
            ("exit 7\n", None),
        ],
    )
    .await;
    assert_eq!(code, 7, "{seen}");
    let user = sandbox_user(cluster);
    assert!(seen.contains(&format!("who={user} dir=")), "{seen}");
    assert!(
        seen.contains(&format!("{WORKSPACE} tty=/dev/pts/")),
        "{seen}"
    );
    assert!(seen.contains("size=40 100"), "{seen}");
    assert!(seen.contains("resized=50 120"), "{seen}");

    let (seen, code) = under_pty(
        kubeconfig,
        &["claude", "box", "-n", ns, "--", "--version"],
        &[],
    )
    .await;
    assert_eq!(code, 0, "{seen}");
    assert!(seen.contains("(Claude Code)"), "{seen}");
    // Without a terminal: arguments and output pass straight through.
    let piped = cli(
        kubeconfig,
        &["claude", "box", "-n", ns, "--", "-p", "two words"],
        &[],
    )
    .await;
    if cluster.is_simulated() {
        // The stand-in claude echoes its arguments.
        assert_eq!(piped.expect_code(0).stdout(), "-p two words\n");
    }
}

#[tokio::test]
async fn verify_passes_on_a_healthy_sandbox() {
    let (cluster, ns) = shared_sandbox().await;
    let kubeconfig = cluster.kubeconfig();
    let home = SshHome::new();
    let home_env = home.env();
    let (key, public) = (&home.key, &home.public);
    cli(
        kubeconfig,
        &[
            "ssh",
            "box",
            "-n",
            ns,
            "--install-key",
            public,
            "--",
            "-i",
            key.to_str().unwrap(),
            "-o",
            "BatchMode=yes",
            "true",
        ],
        &home_env,
    )
    .await
    .expect_code(0);

    let verify = cli(
        kubeconfig,
        &["verify", "box", "-n", ns, "-i", key.to_str().unwrap()],
        &home_env,
    )
    .await;
    let checklist = verify.expect_code(0).stdout();
    for check in [
        "sandbox",
        "pod",
        "envbuilder",
        "code-server",
        "claude",
        "ssh",
        "secrets",
    ] {
        assert!(
            checklist
                .lines()
                .any(|l| l.trim_start().starts_with("ok") && l.contains(check)),
            "{check} did not pass:\n{checklist}"
        );
    }
    assert!(checklist.contains("set: GITHUB_TOKEN"), "{checklist}");
    assert!(checklist.contains("ran `true`"), "{checklist}");
    assert!(
        !verify.all().contains(SECRET_VALUE),
        "a secret leaked:\n{}",
        verify.all()
    );

    let json = cli(
        kubeconfig,
        &["verify", "box", "-n", ns, "-o", "json", "--via", "exec"],
        &home_env,
    )
    .await
    .expect_code(0)
    .json();
    assert_eq!(json["passed"], true);
    let code_server = json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "code-server")
        .unwrap();
    assert_eq!(code_server["outcome"], "pass");
    assert!(
        code_server["detail"].as_str().unwrap().contains("via exec"),
        "{code_server}"
    );
}

/// A sandbox prefix, its pod's behaviours, the check that must fail and what it must say.
type BrokenCase = (
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static str,
    &'static str,
);

/// One broken part per sandbox: verify fails and names it.
#[tokio::test]
async fn verify_names_what_is_broken() {
    let cluster = TestCluster::shared().await.unwrap();
    if !cluster.is_simulated() {
        return; // the faults are simulated
    }
    let cases: [BrokenCase; 4] = [
        (
            "no-code-server",
            &[("stand-in-code-server", "false")],
            "code-server",
            "refused",
        ),
        (
            "no-marker",
            &[(
                "log-script",
                "0 envbuilder v1.3.0 - Build development environments from repositories in a container\n100 🏗️ Building image...",
            )],
            "envbuilder",
            "has not finished",
        ),
        (
            "no-claude",
            &[("missing-programs", "claude,tar")],
            "claude",
            "exited with",
        ),
        ("no-sshd", &[("stand-in-sshd", "false")], "ssh", "port 2222"),
    ];
    let setups = cases
        .iter()
        .map(|(prefix, behaviours, _, _)| ready_sandbox(cluster, prefix, behaviours));
    let namespaces = futures::future::join_all(setups).await;
    for ((prefix, _, check, detail), ns) in cases.iter().zip(&namespaces) {
        let verify = cli(
            cluster.kubeconfig(),
            &["verify", "box", "-n", ns, "-o", "json"],
            &[],
        )
        .await;
        verify.expect_code(1);
        assert!(
            verify
                .stderr()
                .contains(&format!("failed verification: {check}")),
            "{prefix}: {}",
            verify.stderr()
        );
        let json = verify.json();
        assert_eq!(json["passed"], false);
        let failed: Vec<&serde_json::Value> = json["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["outcome"] == "fail")
            .collect();
        assert_eq!(failed.len(), 1, "{prefix}: {failed:?}");
        assert_eq!(failed[0]["name"], *check, "{prefix}");
        assert!(
            failed[0]["detail"].as_str().unwrap().contains(detail),
            "{prefix}: {}",
            failed[0]
        );
    }
    // The image without tar: cp says so.
    let no_tar = cli(
        cluster.kubeconfig(),
        &["cp", "-n", &namespaces[2], "Cargo.toml", "box:x"],
        &[],
    )
    .await;
    no_tar.expect_error(1, "has no tar");
    // And --via exec on an image with no relay program says what to do.
    let no_relay = tokio::time::timeout(Duration::from_secs(30), async {
        let ns = ready_sandbox(
            cluster,
            "no-relay",
            &[("missing-programs", "bash,socat,nc")],
        )
        .await;
        cli(
            cluster.kubeconfig(),
            &["verify", "box", "-n", &ns, "--via", "exec"],
            &[],
        )
        .await
    })
    .await
    .unwrap();
    no_relay.expect_code(1);
    assert!(
        no_relay.stdout().contains("none of bash, socat or nc"),
        "{}",
        no_relay.stdout()
    );
}
