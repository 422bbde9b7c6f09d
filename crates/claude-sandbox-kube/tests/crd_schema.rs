//! Every rendered Sandbox is accepted by the upstream CRD schema of the version it is written
//! for: no field would be pruned, enums and types hold.

mod support;

use std::path::{Path, PathBuf};

use claude_sandbox_core::{SandboxConfig, SandboxInput};
use claude_sandbox_kube::render;
use serde_json::Value;
use support::structural::{crd_version_schema, validate};

fn shared(path: &str) -> PathBuf {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/agent-sandbox"
    ))
    .join(path)
}

fn rendered_sandbox(input: SandboxInput) -> Value {
    let config = SandboxConfig::from_input(input).expect("valid input");
    render(&config)
        .objects()
        .into_iter()
        .find(|o| o["kind"] == "Sandbox")
        .expect("a Sandbox")
}

/// Every combination of the settings that change the Sandbox's shape.
fn variants(api_version: &str) -> Vec<(String, SandboxInput)> {
    let mut variants = Vec::new();
    for runtime in ["runc", "gvisor", "kata"] {
        for project in [false, true] {
            for extras in [false, true] {
                let input = SandboxInput {
                    api_version: Some(api_version.into()),
                    runtime: Some(runtime.into()),
                    repo: project.then(|| "https://github.com/acme/app.git#main".into()),
                    docker: Some(extras),
                    code_server_auth: extras.then(|| "password".into()),
                    vault_ca: extras.then(|| "configmap/corp-ca".into()),
                    storage_class: extras.then(|| "fast".into()),
                    namespace: extras.then(|| "team-a".into()),
                    ..Default::default()
                };
                variants.push((
                    format!("{runtime} project={project} extras={extras}"),
                    input,
                ));
            }
        }
    }
    variants
}

fn assert_valid(crd: &str, version: &str) {
    let schema = crd_version_schema(&shared(crd), version);
    for (label, input) in variants(version) {
        let sandbox = rendered_sandbox(input);
        assert_eq!(sandbox["apiVersion"], format!("agents.x-k8s.io/{version}"));
        let problems = validate(&schema, &sandbox);
        assert!(
            problems.is_empty(),
            "{version} {label}:\n{}",
            problems.join("\n")
        );
    }
}

#[test]
fn v1beta1_sandboxes_fit_the_current_crd() {
    assert_valid("current/crds/agents.x-k8s.io_sandboxes.yaml", "v1beta1");
}

#[test]
fn v1alpha1_sandboxes_fit_the_v0_1_0_crd() {
    assert_valid("v0.1.0/crds/agents.x-k8s.io_sandboxes.yaml", "v1alpha1");
}

#[test]
fn v1alpha1_sandboxes_fit_the_current_crd_too() {
    assert_valid("current/crds/agents.x-k8s.io_sandboxes.yaml", "v1alpha1");
}

#[test]
fn a_v1beta1_sandbox_would_lose_fields_on_v0_1_0() {
    // Why the renderer must know the served version: v0.1.0 prunes operatingMode.
    let schema = crd_version_schema(
        &shared("v0.1.0/crds/agents.x-k8s.io_sandboxes.yaml"),
        "v1alpha1",
    );
    let problems = validate(&schema, &rendered_sandbox(SandboxInput::default()));
    assert!(
        problems.iter().any(|p| p.contains("operatingMode")),
        "{problems:?}"
    );
}
