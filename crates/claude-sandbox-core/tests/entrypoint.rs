//! `k8s/agent-sandbox/entrypoint.sh` and `devcontainer.json`: lint, then the init script run for real
//! against a temporary root (`CLAUDE_SANDBOX_ROOT`) with every system command replaced by a stub
//! that records its call in `calls.log`.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use claude_sandbox_core::layout::{CODE_SERVER_PORT, SECRET_ENV_KEYS, SSH_PORT, USER, env};
use serde_json::Value;
use tempfile::TempDir;

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../k8s/agent-sandbox/entrypoint.sh"
);
const DEVCONTAINER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../k8s/agent-sandbox/devcontainer.json"
);

const PASSWORD: &str = "hunter2-not-for-logs";
/// How long the script may take to do something under a loaded CI machine.
const DEADLINE: Duration = Duration::from_secs(30);
/// How long the script may take to stop after SIGTERM.
const STOP_DEADLINE: Duration = Duration::from_secs(8);

// ---- lint ---------------------------------------------------------------------------------------

#[test]
fn script_parses_with_sh_n() {
    let out = Command::new("sh")
        .args(["-n", SCRIPT])
        .output()
        .expect("run sh -n");
    assert!(
        out.status.success(),
        "sh -n failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn script_passes_shellcheck() {
    let out = Command::new("shellcheck")
        .args(["-s", "sh", SCRIPT])
        .output()
        .expect("shellcheck must be installed (apt-get install -y shellcheck)");
    assert!(
        out.status.success(),
        "shellcheck found problems:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn devcontainer_json_is_plain_json_with_the_expected_setup() {
    let text = fs::read_to_string(DEVCONTAINER).unwrap();
    let json: Value = serde_json::from_str(&text).expect("devcontainer.json must be plain JSON");

    assert_eq!(json["image"], "mcr.microsoft.com/devcontainers/base:ubuntu");
    assert!(json["name"].as_str().is_some_and(|n| !n.is_empty()));
    let features = json["features"].as_object().expect("features");
    let code_server = &features["ghcr.io/coder/devcontainer-features/code-server:1"];
    assert_eq!(code_server["port"], u64::from(CODE_SERVER_PORT));
    assert_eq!(code_server["host"], "0.0.0.0");
    assert_eq!(
        features["ghcr.io/devcontainers/features/sshd:1"],
        serde_json::json!({})
    );
    assert_eq!(
        features["ghcr.io/devcontainers/features/docker-in-docker:2"],
        serde_json::json!({})
    );
    assert_eq!(
        features["ghcr.io/devcontainers/features/node:1"]["version"],
        "lts"
    );
    assert_eq!(features.len(), 4);

    // The init runs as root (no sudo: gVisor cannot give it), everything of the user's as USER.
    assert_eq!(json["remoteUser"], USER);
    assert_eq!(json["containerUser"], "root");
    assert_eq!(json["containerEnv"][env::USER], USER);
    assert_eq!(
        json["containerEnv"]["CLAUDE_CONFIG_DIR"],
        "/workspaces/.claude"
    );
    assert_eq!(json["containerEnv"]["DISABLE_AUTOUPDATER"], "1");
    assert_eq!(
        json["postCreateCommand"],
        r#"sh "$CLAUDE_SANDBOX_DIR/entrypoint.sh" install-claude"#
    );

    for ignored in [
        "appPort",
        "forwardPorts",
        "mounts",
        "runArgs",
        "privileged",
        "capAdd",
        "init",
        "workspaceMount",
        "waitFor",
        "postAttachCommand",
    ] {
        assert!(
            json.get(ignored).is_none(),
            "envbuilder ignores `{ignored}`: leave it out"
        );
    }

    let ours = &json["customizations"]["claude-sandbox"];
    assert_eq!(ours["ports"]["codeServer"], u64::from(CODE_SERVER_PORT));
    assert_eq!(ours["ports"]["ssh"], u64::from(SSH_PORT));
    assert_eq!(
        ours["paths"]["vaultTlsCa"],
        "/etc/claude-sandbox/vault-ca/ca.crt"
    );
    assert_eq!(
        ours["paths"]["vaultSshCa"],
        "/etc/claude-sandbox/vault-ssh-ca/trusted-user-ca-keys.pem"
    );
    let secret_env: BTreeSet<&str> = ours["secretEnv"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for key in SECRET_ENV_KEYS {
        assert!(
            secret_env.contains(key),
            "customizations.claude-sandbox.secretEnv lacks {key}"
        );
    }
}

// ---- fixture ------------------------------------------------------------------------------------

/// What the temporary root holds and how the script is run.
#[derive(Clone, Copy, Debug, Default)]
struct Setup {
    vault_ca: bool,
    ssh_ca: bool,
    password: bool,
    /// `Some(on)`: the docker-in-docker feature is installed, and `CLAUDE_SANDBOX_DOCKER=on`.
    docker: Option<bool>,
    /// The version the stub `claude` prints; `None`: no `claude` on PATH.
    claude: Option<&'static str>,
    claude_code_version: Option<&'static str>,
    curl_fails: bool,
    /// The code-server stub exits at once instead of running like a daemon.
    code_server_crashes: bool,
    restart_delay: Option<u32>,
    /// The script runs as root with CLAUDE_SANDBOX_USER=vscode (uid 1000), as devcontainer.json
    /// has it; else as uid 1000 itself, with sudo.
    root: bool,
}

/// A temporary root (`CLAUDE_SANDBOX_ROOT`) with stub commands first on PATH.
struct Fixture {
    dir: TempDir,
    root: PathBuf,
    bin: PathBuf,
    home: PathBuf,
    workspace: PathBuf,
    state: PathBuf,
    logs: PathBuf,
    calls: PathBuf,
    setup: Setup,
}

/// One line of `calls.log`: `name<TAB>pid<TAB>args<TAB>env`.
#[derive(Debug, Clone)]
struct Call {
    name: String,
    pid: u32,
    args: String,
    env: String,
}

impl Fixture {
    fn new(setup: Setup) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().to_path_buf();
        let fixture = Fixture {
            root: base.join("root"),
            bin: base.join("bin"),
            home: base.join("home"),
            workspace: base.join("workspace"),
            state: base.join("state"),
            logs: base.join("logs"),
            calls: base.join("calls.log"),
            dir,
            setup,
        };
        for dir in [
            &fixture.root,
            &fixture.bin,
            &fixture.home,
            &fixture.workspace,
        ] {
            fs::create_dir_all(dir).unwrap();
        }
        fixture.write_stubs();
        fixture.mount_cas(setup.vault_ca, setup.ssh_ca);
        if setup.docker.is_some() {
            let init = fixture.daemon_stub("docker-init", "");
            write_executable(&fixture.root.join("usr/local/share/docker-init.sh"), &init);
        }
        fixture
    }

    fn vault_ca(&self) -> PathBuf {
        self.root.join("etc/claude-sandbox/vault-ca/ca.crt")
    }

    fn ssh_ca(&self) -> PathBuf {
        self.root
            .join("etc/claude-sandbox/vault-ssh-ca/trusted-user-ca-keys.pem")
    }

    fn installed_ca(&self) -> PathBuf {
        self.root
            .join("usr/local/share/ca-certificates/claude-sandbox-vault-ca.crt")
    }

    fn drop_in(&self) -> String {
        fs::read_to_string(self.root.join("etc/ssh/sshd_config.d/claude-sandbox.conf")).unwrap()
    }

    fn profile(&self) -> String {
        fs::read_to_string(self.root.join("etc/profile.d/claude-sandbox.sh")).unwrap()
    }

    /// Mounts or unmounts the two Vault CAs (as the optional Secret volumes would).
    fn mount_cas(&self, vault_ca: bool, ssh_ca: bool) {
        for (path, mounted, content) in [
            (
                self.vault_ca(),
                vault_ca,
                "-----BEGIN CERTIFICATE-----\nvault\n-----END CERTIFICATE-----\n",
            ),
            (
                self.ssh_ca(),
                ssh_ca,
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI vault-ssh-ca\n",
            ),
        ] {
            if mounted {
                fs::create_dir_all(path.parent().unwrap()).unwrap();
                fs::write(&path, content).unwrap();
            } else if path.exists() {
                fs::remove_file(&path).unwrap();
            }
        }
    }

    /// A stub daemon: records `name pid args env` and then runs until signalled (or exits 3).
    fn daemon_stub(&self, name: &str, env: &str) -> String {
        let tail = if name == "code-server" && self.setup.code_server_crashes {
            "exit 3"
        } else {
            "exec sleep 1000"
        };
        format!(
            "#!/bin/sh\nprintf '{name}\\t%s\\t%s\\t%s\\n' \"$$\" \"$*\" \"{env}\" >>'{calls}'\n{tail}\n",
            calls = self.calls.display()
        )
    }

    fn write_stubs(&self) {
        let calls = self.calls.display();
        let record =
            |name: &str| format!("printf '{name}\\t%s\\t%s\\t\\n' \"$$\" \"$*\" >>'{calls}'\n");
        let password_check = format!(
            "if [ \"${{PASSWORD+x}}\" ]; then pw=set; else pw=unset; fi\n\
             if [ \"${{PASSWORD:-}}\" = '{PASSWORD}' ]; then pw_ok=yes; else pw_ok=no; fi\n\
             if [ \"${{CODE_SERVER_PASSWORD+x}}\" ]; then csp=set; else csp=unset; fi\n"
        );
        let code_server_env = "PASSWORD=$pw PASSWORD_OK=$pw_ok CODE_SERVER_PASSWORD=$csp \
                               NODE_EXTRA_CA_CERTS=${NODE_EXTRA_CA_CERTS:-} VAULT_CACERT=${VAULT_CACERT-unset}";
        let installer = "v=$1; mkdir -p \"$HOME/.local/bin\"; \
                         printf '#!/bin/sh\\necho \"%s (Claude Code)\"\\n' \"$v\" >\"$HOME/.local/bin/claude\"; \
                         chmod +x \"$HOME/.local/bin/claude\"; echo \"installer ran for $v\"";
        let curl_tail = if self.setup.curl_fails {
            "exit 22".to_owned()
        } else {
            format!("cat <<'EOF'\n{installer}\nEOF")
        };

        // As root, setpriv's stub makes `id` answer 1000 for what it runs.
        let id = if self.setup.root {
            "u=${STUB_UID:-0}\ncase \"$1\" in -u | -g) echo \"$u\" ;; *) echo \"uid=$u gid=$u\" ;; esac\n"
        } else {
            "case \"$1\" in -u | -g) echo 1000 ;; *) echo 'uid=1000(vscode) gid=1000(vscode)' ;; esac\n"
        };
        let mut stubs = vec![
            ("id", id.to_owned()),
            (
                "sudo",
                format!("{}[ \"$1\" = -n ] && shift\nexec \"$@\"\n", record("sudo")),
            ),
            (
                "ssh-keygen",
                format!(
                    "{}while [ $# -gt 0 ]; do [ \"$1\" = -f ] && f=$2; shift; done\necho private >\"$f\"\necho public >\"$f.pub\"\n",
                    record("ssh-keygen")
                ),
            ),
            ("update-ca-certificates", record("update-ca-certificates")),
            ("curl", format!("{}{curl_tail}\n", record("curl"))),
        ];
        if self.setup.root {
            stubs.push((
                "setpriv",
                format!(
                    "{}while [ $# -gt 0 ] && [ \"$1\" != -- ]; do shift; done\nshift\nSTUB_UID=1000 exec \"$@\"\n",
                    record("setpriv")
                ),
            ));
            stubs.push((
                "getent",
                format!(
                    "[ \"$1 $2\" = 'passwd vscode' ] || exit 2\necho 'vscode:x:1000:1000::{}:/bin/bash'\n",
                    self.home.display()
                ),
            ));
            stubs.push(("chown", record("chown")));
        }
        stubs.push(("sshd", self.daemon_stub("sshd", "")));
        stubs.push((
            "code-server",
            self.daemon_stub("code-server", code_server_env).replacen(
                '\n',
                &format!("\n{password_check}"),
                1,
            ),
        ));
        if let Some(version) = self.setup.claude {
            stubs.push((
                "claude",
                format!("#!/bin/sh\necho '{version} (Claude Code)'\n"),
            ));
        }
        for (name, body) in stubs {
            let body = if body.starts_with("#!") {
                body
            } else {
                format!("#!/bin/sh\n{body}")
            };
            write_executable(&self.bin.join(name), &body);
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("sh");
        command
            .arg(SCRIPT)
            .args(args)
            .current_dir(&self.workspace)
            .env_clear()
            .env("PATH", format!("{}:/usr/bin:/bin", self.bin.display()))
            .env("HOME", &self.home)
            .env("CLAUDE_SANDBOX_ROOT", &self.root)
            .env("CLAUDE_SANDBOX_LOG_DIR", &self.logs)
            .env("CLAUDE_SANDBOX_STATE_DIR", &self.state)
            .env("CLAUDE_SANDBOX_WORKSPACE", &self.workspace)
            .env("VAULT_CACERT", self.vault_ca())
            .env("CLAUDE_SANDBOX_SSH_CA", self.ssh_ca())
            .env("CLAUDE_CONFIG_DIR", "/workspaces/.claude")
            .env("GITHUB_TOKEN", "ghp_secret_token");
        if self.setup.password {
            command.env("CODE_SERVER_PASSWORD", PASSWORD);
        }
        if let Some(on) = self.setup.docker {
            command.env("CLAUDE_SANDBOX_DOCKER", on.to_string());
        }
        if let Some(version) = self.setup.claude_code_version {
            command.env("CLAUDE_CODE_VERSION", version);
        }
        if let Some(delay) = self.setup.restart_delay {
            command.env("CLAUDE_SANDBOX_RESTART_DELAY", delay.to_string());
        }
        if self.setup.root {
            command
                .env(env::USER, USER)
                .env("HOME", self.root.join("root"));
        }
        command
    }

    /// `entrypoint.sh install-claude`, run to completion.
    fn install_claude(&self) -> Output {
        let out = self.command(&["install-claude"]).output().unwrap();
        assert!(
            out.status.success(),
            "install-claude failed: {}",
            text(&out.stdout)
        );
        out
    }

    /// Starts the init in the background and waits until it has started sshd and code-server.
    fn start_init(&self) -> Init<'_> {
        let _ = fs::remove_file(&self.calls);
        let out = self.dir.path().join("stdout");
        let err = self.dir.path().join("stderr");
        let child = self
            .command(&[])
            .stdin(Stdio::null())
            .stdout(fs::File::create(&out).unwrap())
            .stderr(fs::File::create(&err).unwrap())
            .spawn()
            .unwrap();
        let init = Init {
            fixture: self,
            child: Some(child),
            stdout: out,
            stderr: err,
        };
        init.wait_for("sshd and code-server", |calls| {
            ["sshd", "code-server"]
                .iter()
                .all(|name| calls.iter().any(|c| c.name == *name))
        });
        init.wait_for_stdout("claude-sandbox: ready");
        init
    }

    fn calls(&self) -> Vec<Call> {
        let text = fs::read_to_string(&self.calls).unwrap_or_default();
        text.lines()
            .map(|line| {
                let mut fields = line.splitn(4, '\t');
                let mut next = || fields.next().unwrap_or_default().to_owned();
                Call {
                    name: next(),
                    pid: next().parse().unwrap_or(0),
                    args: next(),
                    env: next(),
                }
            })
            .collect()
    }

    fn calls_named(&self, name: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.name == name)
            .collect()
    }
}

/// A running init script; stopped (and its stubs killed) on drop if a test fails first.
struct Init<'a> {
    fixture: &'a Fixture,
    child: Option<Child>,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Init<'_> {
    fn stdout(&self) -> String {
        fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn wait_for(&self, what: &str, done: impl Fn(&[Call]) -> bool) {
        let start = Instant::now();
        while !done(&self.fixture.calls()) {
            assert!(
                start.elapsed() < DEADLINE,
                "timed out waiting for {what}\ncalls: {:#?}\nstdout:\n{}\nstderr:\n{}",
                self.fixture.calls(),
                self.stdout(),
                self.stderr()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_for_stdout(&self, line: &str) {
        let start = Instant::now();
        while !self.stdout().contains(line) {
            assert!(
                start.elapsed() < DEADLINE,
                "timed out waiting for `{line}`\nstdout:\n{}\nstderr:\n{}",
                self.stdout(),
                self.stderr()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, then the exit status; asserts the script stops in time and takes its daemons along.
    fn stop(mut self) -> ExitStatus {
        signal("TERM", self.child.as_ref().unwrap().id());
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                break status;
            }
            assert!(
                start.elapsed() < STOP_DEADLINE,
                "the init did not stop within {STOP_DEADLINE:?} of SIGTERM\nstdout:\n{}",
                self.stdout()
            );
            thread::sleep(Duration::from_millis(50));
        };
        let left: Vec<Call> = self
            .daemon_calls()
            .into_iter()
            .filter(|c| running(c.pid))
            .collect();
        assert!(
            left.is_empty(),
            "daemons still running after the init stopped: {left:#?}"
        );
        assert!(
            self.stdout().contains("claude-sandbox: stopped"),
            "stdout:\n{}",
            self.stdout()
        );
        status
    }

    fn daemon_calls(&self) -> Vec<Call> {
        let daemons = ["sshd", "code-server", "docker-init"];
        self.fixture
            .calls()
            .into_iter()
            .filter(|c| daemons.contains(&c.name.as_str()))
            .collect()
    }
}

/// Cleans up after a failed test: the script, then any daemon stub it left behind.
impl Drop for Init<'_> {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
        for call in self.daemon_calls() {
            if running(call.pid) {
                signal("KILL", call.pid);
            }
        }
    }
}

fn write_executable(path: &Path, body: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, body).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

fn signal(name: &str, pid: u32) {
    let _ = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status();
}

/// Whether `pid` is a live process (zombies count as gone).
fn running(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The drop-in the script must write: key-only, the SSH CA only when mounted.
fn expected_drop_in(fixture: &Fixture, ssh_ca: bool) -> String {
    let keys = fixture.state.join("ssh");
    let mut expected = format!(
        "# Written by claude-sandbox entrypoint.sh on every start; edits are lost.\n\
         Port 2222\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
         PermitRootLogin no\nHostKey {keys}/ssh_host_ed25519_key\nHostKey {keys}/ssh_host_rsa_key\n",
        keys = keys.display()
    );
    if ssh_ca {
        expected.push_str(&format!(
            "TrustedUserCAKeys {}\n",
            fixture.ssh_ca().display()
        ));
    }
    expected
}

// ---- init ---------------------------------------------------------------------------------------

/// Runs the init with `setup`, checks everything it set up, then stops it.
fn check_init(setup: Setup) {
    let case = format!("{setup:?}");
    let fixture = Fixture::new(setup);
    let init = fixture.start_init();

    // code-server: exact flags, the password only in its environment.
    let code_server = fixture.calls_named("code-server");
    assert_eq!(code_server.len(), 1, "{case}");
    let auth = if setup.password { "password" } else { "none" };
    assert_eq!(
        code_server[0].args,
        format!(
            "--bind-addr 0.0.0.0:13337 --auth {auth} --disable-telemetry {}",
            fixture.workspace.display()
        ),
        "{case}"
    );
    let env = &code_server[0].env;
    let password_env = if setup.password {
        "PASSWORD=set PASSWORD_OK=yes"
    } else {
        "PASSWORD=unset PASSWORD_OK=no"
    };
    assert!(env.contains(password_env), "{case}: {env}");
    assert!(env.contains("CODE_SERVER_PASSWORD=unset"), "{case}: {env}");
    if setup.vault_ca {
        assert!(
            env.contains(&format!(
                "NODE_EXTRA_CA_CERTS={}",
                fixture.vault_ca().display()
            )),
            "{case}: {env}"
        );
        assert!(
            env.contains(&format!("VAULT_CACERT={}", fixture.vault_ca().display())),
            "{case}: {env}"
        );
    } else {
        assert!(env.contains("NODE_EXTRA_CA_CERTS= "), "{case}: {env}");
        assert!(env.contains("VAULT_CACERT=unset"), "{case}: {env}");
    }

    // sshd: as root through sudo, by its absolute path, key-only drop-in, host keys generated.
    let sshd = fixture.bin.join("sshd");
    let sudo: Vec<String> = fixture
        .calls_named("sudo")
        .into_iter()
        .map(|c| c.args)
        .collect();
    assert!(
        sudo.contains(&format!("-n {} -D -e -p 2222", sshd.display())),
        "{case}: {sudo:#?}"
    );
    assert_eq!(
        fixture.calls_named("sshd")[0].args,
        "-D -e -p 2222",
        "{case}"
    );
    assert_eq!(
        fixture.drop_in(),
        expected_drop_in(&fixture, setup.ssh_ca),
        "{case}"
    );
    assert!(
        fixture.state.join("ssh/ssh_host_ed25519_key").is_file(),
        "{case}"
    );
    assert!(
        fixture.state.join("ssh/ssh_host_rsa_key").is_file(),
        "{case}"
    );
    assert!(fixture.root.join("run/sshd").is_dir(), "{case}");

    // Vault TLS CA: installed and trusted, or absent, and the profile script to match.
    let update_ca = fixture.calls_named("update-ca-certificates").len();
    let profile = fixture.profile();
    if setup.vault_ca {
        assert_eq!(
            fs::read_to_string(fixture.installed_ca()).unwrap(),
            fs::read_to_string(fixture.vault_ca()).unwrap()
        );
        assert_eq!(update_ca, 1, "{case}");
        let ca = fixture.vault_ca();
        assert!(
            profile.contains(&format!("export VAULT_CACERT='{}'\n", ca.display())),
            "{case}: {profile}"
        );
        assert!(
            profile.contains(&format!("export NODE_EXTRA_CA_CERTS='{}'\n", ca.display())),
            "{case}: {profile}"
        );
        assert!(
            init.stdout()
                .contains("claude-sandbox: vault TLS CA: installed"),
            "{case}"
        );
    } else {
        assert!(!fixture.installed_ca().exists(), "{case}");
        assert_eq!(update_ca, 0, "{case}");
        assert!(
            profile.contains("\nunset VAULT_CACERT\n"),
            "{case}: {profile}"
        );
        assert!(
            !profile.contains("NODE_EXTRA_CA_CERTS"),
            "{case}: {profile}"
        );
        assert!(
            init.stdout()
                .contains("claude-sandbox: vault TLS CA: not mounted"),
            "{case}"
        );
    }
    assert!(
        profile.contains("export CLAUDE_CONFIG_DIR='/workspaces/.claude'\n"),
        "{case}: {profile}"
    );

    // docker-in-docker: started as root only when asked for.
    if setup.docker == Some(true) {
        init.wait_for("docker-init.sh", |calls| {
            calls.iter().any(|c| c.name == "docker-init")
        });
        let args = &fixture.calls_named("docker-init")[0].args;
        let watch = format!(
            "watch-dockerd {}",
            fixture.root.join("var/run/docker.pid").display()
        );
        assert!(args.ends_with(&watch), "{case}: {args}");
    }
    let docker_init = fixture.root.join("usr/local/share/docker-init.sh");
    let sudo: Vec<String> = fixture
        .calls_named("sudo")
        .into_iter()
        .map(|c| c.args)
        .collect();
    let docker_started = sudo
        .iter()
        .any(|args| args.starts_with(&format!("-n {} ", docker_init.display())));
    assert_eq!(
        docker_started,
        setup.docker == Some(true),
        "{case}: {sudo:#?}"
    );
    let docker_off = init.stdout().contains("claude-sandbox up --docker");
    assert_eq!(docker_off, setup.docker == Some(false), "{case}");

    // Claude Code is already there: the init leaves it alone.
    assert!(fixture.calls_named("curl").is_empty(), "{case}");

    let stdout = init.stdout();
    let stderr = init.stderr();
    assert!(
        stdout.lines().all(|l| l.starts_with("claude-sandbox: ")),
        "{case}: stdout:\n{stdout}"
    );
    let status = init.stop();
    assert_eq!(status.code(), Some(0), "{case}");

    let calls = fs::read_to_string(&fixture.calls).unwrap();
    for (name, output) in [
        ("stdout", &stdout),
        ("stderr", &stderr),
        ("calls.log", &calls),
    ] {
        for secret in [PASSWORD, "ghp_secret_token"] {
            assert!(
                !output.contains(secret),
                "{case}: a secret leaked into {name}"
            );
        }
    }
}

/// As devcontainer.json runs it: as root, so nothing goes through sudo; code-server and Claude
/// Code's install run as the user (setpriv), with the user's home, and the user's folders become
/// theirs.
#[test]
fn a_root_init_runs_the_users_side_as_the_user_without_sudo() {
    let fixture = Fixture::new(Setup {
        root: true,
        vault_ca: true,
        ssh_ca: true,
        password: true,
        claude: Some("1.2.3"),
        ..Setup::default()
    });
    let init = fixture.start_init();
    assert!(
        fixture.calls_named("sudo").is_empty(),
        "{:#?}",
        fixture.calls()
    );
    assert_eq!(fixture.calls_named("sshd")[0].args, "-D -e -p 2222");
    assert_eq!(fixture.drop_in(), expected_drop_in(&fixture, true));

    let switches: Vec<String> = fixture
        .calls_named("setpriv")
        .into_iter()
        .map(|c| c.args)
        .collect();
    let home = fixture.home.display();
    let as_user = format!(
        "--reuid=1000 --regid=1000 --init-groups -- env HOME={home} USER=vscode LOGNAME=vscode PATH={home}/.local/bin:"
    );
    let code_server = switches
        .iter()
        .find(|args| args.contains(" code-server "))
        .unwrap_or_else(|| panic!("code-server not started as the user: {switches:#?}"));
    assert!(code_server.starts_with(&as_user), "{code_server}");
    assert!(
        code_server.ends_with(&format!(
            "code-server --bind-addr 0.0.0.0:13337 --auth password --disable-telemetry {}",
            fixture.workspace.display()
        )),
        "{code_server}"
    );
    // The password reaches code-server through setpriv, in its environment only.
    assert!(
        fixture.calls_named("code-server")[0]
            .env
            .contains("PASSWORD=set PASSWORD_OK=yes")
    );
    let install = switches
        .iter()
        .find(|args| args.ends_with(" install-claude"))
        .unwrap_or_else(|| panic!("Claude Code not installed as the user: {switches:#?}"));
    assert!(install.starts_with(&as_user), "{install}");

    let chowned: Vec<String> = fixture
        .calls_named("chown")
        .into_iter()
        .map(|c| c.args)
        .collect();
    for dir in [&fixture.workspace, &fixture.logs] {
        assert!(
            chowned.contains(&format!("1000:1000 {}", dir.display())),
            "{} not given to the user: {chowned:#?}",
            dir.display()
        );
    }
    assert!(
        init.stdout().contains(
            "claude-sandbox: code-server: started on 0.0.0.0:13337 as vscode, auth password"
        ),
        "{}",
        init.stdout()
    );
    assert_eq!(init.stop().code(), Some(0));
}

#[test]
fn init_sets_up_every_combination_of_cas_and_password() {
    thread::scope(|scope| {
        for vault_ca in [true, false] {
            for ssh_ca in [true, false] {
                for password in [true, false] {
                    let setup = Setup {
                        vault_ca,
                        ssh_ca,
                        password,
                        claude: Some("1.2.3"),
                        ..Setup::default()
                    };
                    scope.spawn(move || check_init(setup));
                }
            }
        }
    });
}

#[test]
fn init_starts_dockerd_only_when_asked() {
    thread::scope(|scope| {
        for on in [true, false] {
            let setup = Setup {
                docker: Some(on),
                claude: Some("1.2.3"),
                ..Setup::default()
            };
            scope.spawn(move || check_init(setup));
        }
    });
}

#[test]
fn init_runs_again_on_stale_state() {
    let fixture = Fixture::new(Setup {
        vault_ca: true,
        ssh_ca: true,
        claude: Some("1.2.3"),
        ..Setup::default()
    });
    assert_eq!(fixture.start_init().stop().code(), Some(0));
    assert!(fixture.installed_ca().exists());
    let first_keys = fs::read(fixture.state.join("ssh/ssh_host_ed25519_key")).unwrap();

    // Restarted with both CAs gone: the drop-in is rewritten, not appended to; the CA is removed.
    fixture.mount_cas(false, false);
    let init = fixture.start_init();
    let drop_in = fixture.drop_in();
    assert_eq!(drop_in, expected_drop_in(&fixture, false));
    let lines: Vec<&str> = drop_in.lines().collect();
    assert_eq!(
        lines.len(),
        lines.iter().collect::<BTreeSet<_>>().len(),
        "duplicated lines:\n{drop_in}"
    );
    assert!(
        !fixture.installed_ca().exists(),
        "the stale CA is still installed"
    );
    assert_eq!(
        fixture.calls_named("update-ca-certificates").len(),
        1,
        "the trust store was not refreshed"
    );
    assert!(fixture.profile().contains("\nunset VAULT_CACERT\n"));
    assert!(
        fixture.calls_named("ssh-keygen").is_empty(),
        "the host keys must survive a restart"
    );
    assert!(
        init.stdout()
            .contains("claude-sandbox: vault TLS CA: not mounted")
    );
    assert_eq!(init.stop().code(), Some(0));
    assert_eq!(
        fs::read(fixture.state.join("ssh/ssh_host_ed25519_key")).unwrap(),
        first_keys
    );

    // And back: the same drop-in as the first start.
    fixture.mount_cas(true, true);
    fixture.start_init().stop();
    assert_eq!(fixture.drop_in(), expected_drop_in(&fixture, true));
    assert!(fixture.installed_ca().exists());
}

#[test]
fn init_restarts_a_daemon_that_exits() {
    let fixture = Fixture::new(Setup {
        code_server_crashes: true,
        restart_delay: Some(1),
        claude: Some("1.2.3"),
        ..Setup::default()
    });
    let started = Instant::now();
    let init = fixture.start_init();
    init.wait_for("code-server to be started three times", |calls| {
        calls.iter().filter(|c| c.name == "code-server").count() >= 3
    });
    // Restarted at most once per CLAUDE_SANDBOX_RESTART_DELAY: no busy loop.
    assert!(
        started.elapsed() >= Duration::from_millis(1900),
        "restarted too fast: {:?}",
        started.elapsed()
    );
    let stdout = init.stdout();
    assert!(
        stdout.contains("claude-sandbox: code-server exited (status 3)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("claude-sandbox: restarting code-server"),
        "{stdout}"
    );
    // sshd keeps running and is not restarted.
    assert_eq!(fixture.calls_named("sshd").len(), 1);
    assert_eq!(init.stop().code(), Some(0));
}

// ---- install-claude -----------------------------------------------------------------------------

#[test]
fn install_claude_keeps_the_pinned_version() {
    let fixture = Fixture::new(Setup {
        claude: Some("1.2.3"),
        claude_code_version: Some("1.2.3"),
        ..Setup::default()
    });
    let out = fixture.install_claude();
    assert!(
        fixture.calls_named("curl").is_empty(),
        "{}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stdout).contains("Claude Code: 1.2.3 (Claude Code) is installed"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn install_claude_replaces_another_version() {
    let fixture = Fixture::new(Setup {
        claude: Some("1.2.3"),
        claude_code_version: Some("1.2.4"),
        ..Setup::default()
    });
    let out = fixture.install_claude();
    assert_installed(&fixture, &out, "1.2.4");
}

#[test]
fn install_claude_installs_when_missing() {
    let fixture = Fixture::new(Setup {
        claude: None,
        ..Setup::default()
    });
    let out = fixture.install_claude();
    assert_installed(&fixture, &out, "stable");
    assert!(fixture.home.join(".local/bin/claude").is_file());
}

#[test]
fn install_claude_failure_is_only_a_warning() {
    let fixture = Fixture::new(Setup {
        claude: None,
        curl_fails: true,
        ..Setup::default()
    });
    let out = fixture.install_claude();
    assert!(
        text(&out.stdout).contains("claude-sandbox: warning: Claude Code could not be installed"),
        "{}",
        text(&out.stdout)
    );
}

fn assert_installed(fixture: &Fixture, out: &Output, version: &str) {
    let curl = fixture.calls_named("curl");
    assert_eq!(curl.len(), 1);
    assert_eq!(curl[0].args, "-fsSL https://claude.ai/install.sh");
    let log = fs::read_to_string(fixture.logs.join("claude-install.log")).unwrap();
    assert!(
        log.contains(&format!("installer ran for {version}")),
        "{log}"
    );
    assert!(
        text(&out.stdout).contains(&format!("Claude Code: installed {version} (Claude Code)")),
        "{}",
        text(&out.stdout)
    );
}
