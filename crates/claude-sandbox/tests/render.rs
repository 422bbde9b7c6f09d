//! `claude-sandbox render`, run as a user runs it.

use std::{collections::BTreeMap, path::PathBuf, process::Command};

use assert_cmd::cargo::cargo_bin_cmd;
use serde_json::Value;

fn repo_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// Parses a multi-document YAML stream into objects keyed by kind and name.
fn objects_by_key(yaml: &str) -> BTreeMap<(String, String), Value> {
    serde_saphyr::from_multiple::<Value>(yaml)
        .expect("valid YAML")
        .into_iter()
        .filter(|o| !o.is_null())
        .map(|o| {
            let key = (
                o["kind"].as_str().unwrap().to_owned(),
                o["metadata"]["name"].as_str().unwrap().to_owned(),
            );
            (key, o)
        })
        .collect()
}

fn render(args: &[&str]) -> String {
    let output = cargo_bin_cmd!("claude-sandbox")
        .arg("render")
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Lists every path where two JSON values differ, so a mismatch says exactly which field.
fn differences(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for key in x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))) {
                let (va, vb) = (
                    x.get(key).unwrap_or(&Value::Null),
                    y.get(key).unwrap_or(&Value::Null),
                );
                differences(&format!("{path}.{key}"), va, vb, out);
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                differences(&format!("{path}[{i}]"), va, vb, out);
            }
        }
        _ if a != b => out.push(format!("{path}: kustomize {a} / render {b}")),
        _ => {}
    }
}

#[test]
fn render_agrees_with_kustomize_field_by_field() {
    for (dir, runtime) in [
        ("base", "runc"),
        ("overlays/gvisor", "gvisor"),
        ("overlays/kata", "kata"),
    ] {
        let path = repo_root().join("k8s/agent-sandbox").join(dir);
        let kustomize = Command::new("kubectl")
            .arg("kustomize")
            .arg(&path)
            .output()
            .expect("kubectl is installed");
        assert!(
            kustomize.status.success(),
            "{}",
            String::from_utf8_lossy(&kustomize.stderr)
        );
        let expected = objects_by_key(&String::from_utf8(kustomize.stdout).unwrap());
        // The base builds from a devcontainer repository (the plan's way), whose URL users patch
        // to their fork: render the same way, from the URL the base holds.
        let sandbox = &expected[&("Sandbox".to_owned(), "claude-code-sandbox".to_owned())];
        let repo = sandbox["spec"]["podTemplate"]["spec"]["containers"][0]["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == "ENVBUILDER_GIT_URL")
            .and_then(|e| e["value"].as_str())
            .expect("the base names the repository envbuilder clones");
        let actual = objects_by_key(&render(&[
            "--runtime",
            runtime,
            "--devcontainer-repo",
            repo,
        ]));
        assert_eq!(
            expected.keys().collect::<Vec<_>>(),
            actual.keys().collect::<Vec<_>>(),
            "{dir}: different objects"
        );
        for (key, object) in &expected {
            let mut diffs = Vec::new();
            differences("", object, &actual[key], &mut diffs);
            assert!(
                diffs.is_empty(),
                "{dir} {key:?} differs:\n{}",
                diffs.join("\n")
            );
        }
    }
}

#[test]
fn json_output_is_a_list_of_the_same_objects() {
    let json: Value = serde_json::from_str(&render(&["dev", "-o", "json"])).unwrap();
    assert_eq!(json["kind"], "List");
    let from_json: Vec<&str> = json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(from_json, ["ConfigMap", "Sandbox", "Service"]);
    let yaml = objects_by_key(&render(&["dev"]));
    for item in json["items"].as_array().unwrap() {
        let key = (
            item["kind"].as_str().unwrap().to_owned(),
            item["metadata"]["name"].as_str().unwrap().to_owned(),
        );
        assert_eq!(&yaml[&key], item);
    }
}

#[test]
fn config_file_and_flags_combine() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sandbox.yaml");
    std::fs::write(
        &config,
        "name: team-box\nnamespace: team-a\nruntime: gvisor\nworkspaceSize: 50Gi\nlimits:\n  memory: 16Gi\n",
    )
    .unwrap();
    let objects = objects_by_key(&render(&[
        "-c",
        config.to_str().unwrap(),
        "--runtime",
        "kata",
    ]));
    let sandbox = &objects[&("Sandbox".to_owned(), "team-box".to_owned())];
    assert_eq!(sandbox["metadata"]["namespace"], "team-a");
    let pod = &sandbox["spec"]["podTemplate"]["spec"];
    assert_eq!(
        pod["runtimeClassName"], "kata-qemu",
        "the flag wins over the file"
    );
    assert_eq!(
        pod["containers"][0]["resources"]["limits"]["memory"],
        "16Gi"
    );
    assert_eq!(
        sandbox["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"],
        "50Gi"
    );
}

#[test]
fn bad_input_is_one_clear_line_exit_2_and_nothing_on_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let unknown_key = dir.path().join("unknown.yaml");
    std::fs::write(&unknown_key, "name: dev\nruntimeClass: gvisor\n").unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["Bad_Name"], "NAME"),
        (vec!["-n", "Team"], "--namespace"),
        (
            vec!["--runtime", "docker"],
            "use one of: runc, gvisor, kata",
        ),
        (vec!["--workspace-size", "10GB"], "--workspace-size"),
        (vec!["--requests", "cpu=lots"], "--requests"),
        (vec!["--requests", "cpu=8"], "more than the limit"),
        (vec!["--repo", "github.com/acme/app"], "--repo"),
        (
            vec!["--devcontainer-repo", "ftp://x/y.git"],
            "--devcontainer-repo",
        ),
        (vec!["--api-version", "v2"], "--api-version"),
        (
            vec!["--vault-ca", "vault-ca"],
            "secret/NAME or configmap/NAME",
        ),
        (vec!["-c", unknown_key.to_str().unwrap()], "runtimeClass"),
        (
            vec!["-c", "/nonexistent/sandbox.yaml"],
            "/nonexistent/sandbox.yaml",
        ),
        (vec!["--docker", "maybe"], "--docker"),
    ];
    for (args, expected) in cases {
        let output = cargo_bin_cmd!("claude-sandbox")
            .arg("render")
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{args:?} printed to stdout");
        assert!(
            stderr.contains(expected),
            "{args:?}: {stderr:?} does not mention {expected:?}"
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn render_warns_about_fields_envbuilder_ignores() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("devcontainer.json");
    std::fs::write(&json, r#"{"image": "ubuntu", "runArgs": ["--privileged"]}"#).unwrap();
    let output = cargo_bin_cmd!("claude-sandbox")
        .args([
            "render",
            "--repo",
            "https://github.com/acme/app.git",
            "--devcontainer-json",
        ])
        .arg(&json)
        .output()
        .unwrap();
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("warning:") && stderr.contains("runArgs"),
        "{stderr}"
    );
    let objects = objects_by_key(&String::from_utf8(output.stdout).unwrap());
    let config_map = &objects[&(
        "ConfigMap".to_owned(),
        "claude-code-sandbox-devcontainer".to_owned(),
    )];
    assert_eq!(
        config_map["data"]["devcontainer.json"],
        std::fs::read_to_string(&json).unwrap()
    );
}
