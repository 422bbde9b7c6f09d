//! `claude-sandbox lint`, run as a user runs it.

use assert_cmd::cargo::cargo_bin_cmd;

#[test]
fn findings_exit_1_clean_exits_0_unreadable_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join(".devcontainer");
    std::fs::create_dir(&folder).unwrap();
    let file = folder.join("devcontainer.json");

    std::fs::write(
        &file,
        "{\n  // comments are fine\n  \"image\": \"ubuntu\",\n  \"appPort\": [8080],\n}\n",
    )
    .unwrap();
    let output = cargo_bin_cmd!("claude-sandbox")
        .arg("lint")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("devcontainer.json: `appPort`: ignored by envbuilder"),
        "{stdout}"
    );

    std::fs::write(&file, r#"{"image": "ubuntu"}"#).unwrap();
    let output = cargo_bin_cmd!("claude-sandbox")
        .arg("lint")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert!(output.stdout.is_empty());

    std::fs::write(&file, "{ image: ubuntu }").unwrap();
    let output = cargo_bin_cmd!("claude-sandbox")
        .arg("lint")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("invalid devcontainer.json"));

    let empty = tempfile::tempdir().unwrap();
    let output = cargo_bin_cmd!("claude-sandbox")
        .arg("lint")
        .arg(empty.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no .devcontainer/devcontainer.json"));
}

#[test]
fn the_shipped_devcontainer_is_clean() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../k8s/agent-sandbox/devcontainer.json"
    );
    cargo_bin_cmd!("claude-sandbox")
        .args(["lint", path])
        .assert()
        .success();
}

#[test]
fn completions_and_help_are_there() {
    let output = cargo_bin_cmd!("claude-sandbox")
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("claude-sandbox"));
    let help = cargo_bin_cmd!("claude-sandbox")
        .args(["render", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--runtime",
        "--repo",
        "--devcontainer-repo",
        "--api-version",
        "--vault-ca",
        "Examples:",
    ] {
        assert!(help.contains(flag), "render --help lacks {flag}");
    }
}
