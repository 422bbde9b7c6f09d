//! The scripts `remote` runs inside a sandbox, linted and run here against local files and ports.
//! (The session launcher needs a container's PID 1: the CLI's testbed tests run it.)

use std::{
    io::{Read, Write},
    net::TcpListener,
    os::unix::fs::PermissionsExt,
    path::Path,
    process::{Command, Output, Stdio},
};

use claude_sandbox_core::remote::{self, Relay, SCRIPTS};

/// Runs an exec command line locally in `dir`, with `input` on stdin and `env` added.
fn run(argv: &[String], dir: &Path, input: &[u8], env: &[(&str, &str)]) -> Output {
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .current_dir(dir)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let output = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    output
}

#[test]
fn scripts_parse_and_pass_shellcheck() {
    let dir = tempfile::tempdir().unwrap();
    for (name, script) in SCRIPTS {
        let shell = if name.ends_with(".bash") || name == "session.sh" {
            "bash"
        } else {
            "sh"
        };
        let path = dir.path().join(name);
        std::fs::write(&path, script).unwrap();
        let parsed = Command::new(shell).arg("-n").arg(&path).output().unwrap();
        assert!(
            parsed.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&parsed.stderr)
        );
        let checked = Command::new("shellcheck")
            .args(["-s", shell])
            .arg(&path)
            .output()
            .expect("shellcheck must be installed (apt-get install -y shellcheck)");
        assert!(
            checked.status.success(),
            "{name}:\n{}",
            String::from_utf8_lossy(&checked.stdout)
        );
    }
}

#[test]
fn cp_scripts_round_trip_a_tree_with_modes() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("src");
    std::fs::create_dir_all(source.join("sub")).unwrap();
    std::fs::write(source.join("sub/run.sh"), "echo hi\n").unwrap();
    std::fs::set_permissions(
        source.join("sub/run.sh"),
        std::fs::Permissions::from_mode(0o751),
    )
    .unwrap();

    let archive = run(&remote::cp_download("src"), dir.path(), b"", &[]);
    assert!(
        archive.status.success(),
        "{}",
        String::from_utf8_lossy(&archive.stderr)
    );
    // Into a new name, then into an existing folder.
    let unpacked = run(
        &remote::cp_upload("copy", "src"),
        dir.path(),
        &archive.stdout,
        &[],
    );
    assert!(
        unpacked.status.success(),
        "{}",
        String::from_utf8_lossy(&unpacked.stderr)
    );
    let copied = std::fs::metadata(dir.path().join("copy/sub/run.sh")).unwrap();
    assert_eq!(copied.permissions().mode() & 0o777, 0o751);
    std::fs::create_dir(dir.path().join("into")).unwrap();
    let unpacked = run(
        &remote::cp_upload("into", "src"),
        dir.path(),
        &archive.stdout,
        &[],
    );
    assert!(unpacked.status.success());
    assert!(dir.path().join("into/src/sub/run.sh").is_file());
    // No staging folder is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".claude-sandbox-cp")
        })
        .collect();
    assert!(leftovers.is_empty());

    let missing = run(&remote::cp_download("nope"), dir.path(), b"", &[]);
    assert_eq!(missing.status.code(), Some(remote::SETUP_FAILED));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("nope: no such file or folder"));
    let no_parent = run(
        &remote::cp_upload("a/b/c", "src"),
        dir.path(),
        &archive.stdout,
        &[],
    );
    assert_eq!(no_parent.status.code(), Some(remote::SETUP_FAILED));
    assert!(String::from_utf8_lossy(&no_parent.stderr).contains("a/b: no such folder"));
}

#[test]
fn install_key_adds_a_key_once() {
    let home = tempfile::tempdir().unwrap();
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFake me@host";
    let home_env = [("HOME", home.path().to_str().unwrap())];
    let first = run(&remote::install_key(key), home.path(), b"", &home_env);
    assert_eq!(String::from_utf8_lossy(&first.stdout), "added\n");
    let second = run(&remote::install_key(key), home.path(), b"", &home_env);
    assert_eq!(String::from_utf8_lossy(&second.stdout), "unchanged\n");
    let file = home.path().join(".ssh/authorized_keys");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), format!("{key}\n"));
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(home.path().join(".ssh"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
}

#[test]
fn environment_and_file_checks_name_never_show_values() {
    let dir = tempfile::tempdir().unwrap();
    let set = run(
        &remote::set_variables(&["GITHUB_TOKEN", "TFE_TOKEN", "bad-name", "x;id"]),
        dir.path(),
        b"",
        &[("GITHUB_TOKEN", "ghp_value")],
    );
    assert!(set.status.success());
    assert_eq!(String::from_utf8_lossy(&set.stdout), "GITHUB_TOKEN\n");
    std::fs::write(dir.path().join("ca.crt"), "---").unwrap();
    std::fs::write(dir.path().join("empty.crt"), "").unwrap();
    let present = run(&remote::files_present(&["ca.crt"]), dir.path(), b"", &[]);
    assert!(present.status.success());
    let absent = run(
        &remote::files_present(&["ca.crt", "empty.crt"]),
        dir.path(),
        b"",
        &[],
    );
    assert!(!absent.status.success());
    assert_eq!(String::from_utf8_lossy(&absent.stdout), "empty.crt\n");
}

#[test]
fn the_bash_relay_carries_both_directions_and_ends_with_either_side() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // An echo server that closes after one line: the relay must end by itself.
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while stream.read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {
            line.push(byte[0]);
        }
        stream.write_all(b"echo: ").unwrap();
        stream.write_all(&line).unwrap();
        stream.write_all(b"\n").unwrap();
    });
    let dir = tempfile::tempdir().unwrap();
    let mut relay = Command::new("bash");
    let argv = Relay::Bash.command(port);
    relay
        .args(&argv[1..])
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    let mut child = relay.spawn().unwrap();
    // stdin stays open: only the server's close can end the relay.
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"hello\n").unwrap();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert_eq!(out, "echo: hello\n");
    assert!(child.wait().unwrap().success());
    server.join().unwrap();

    let refused = run(&Relay::Bash.command(port), dir.path(), b"", &[]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("refused"));
}

#[test]
fn the_probe_names_a_relay_this_machine_has() {
    let dir = tempfile::tempdir().unwrap();
    let probe = run(&Relay::probe_command(), dir.path(), b"", &[]);
    assert_eq!(
        Relay::from_probe(&String::from_utf8_lossy(&probe.stdout)),
        Some(Relay::Bash)
    );
    // An image with none of them: the shell found by its path, nothing on PATH.
    let mut argv = Relay::probe_command();
    argv[0] = "/bin/sh".to_owned();
    let none = run(&argv, dir.path(), b"", &[("PATH", "/nonexistent")]);
    assert_eq!(none.status.code(), Some(1));
    assert!(none.stdout.is_empty());
}
