//! The renderer, per runtime, API version and devcontainer source: snapshots of the whole output,
//! and assertions on the fields that decide whether the sandbox works.

use claude_sandbox_core::{ResourceInput, SandboxConfig, SandboxInput};
use claude_sandbox_kube::{RenderedSandbox, render};
use serde_json::Value;

fn rendered(input: SandboxInput) -> RenderedSandbox {
    render(&SandboxConfig::from_input(input).expect("valid input"))
}

fn sandbox_json(input: SandboxInput) -> Value {
    let rendered = rendered(input);
    rendered
        .objects()
        .into_iter()
        .find(|o| o["kind"] == "Sandbox")
        .expect("a Sandbox")
}

fn container(sandbox: &Value) -> &Value {
    &sandbox["spec"]["podTemplate"]["spec"]["containers"][0]
}

fn env<'a>(sandbox: &'a Value, name: &str) -> Option<&'a Value> {
    container(sandbox)["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
}

fn env_value<'a>(sandbox: &'a Value, name: &str) -> &'a str {
    env(sandbox, name)
        .and_then(|e| e["value"].as_str())
        .unwrap_or_else(|| panic!("no literal env {name}"))
}

#[test]
fn default_sandbox_snapshot() {
    let mut rendered = rendered(SandboxInput::default());
    // The ConfigMap's data is the bundled files, compared in
    // `the_default_ships_the_bundled_devcontainer_and_clones_nothing`, not snapshotted.
    let config_map = rendered.config_map.as_mut().expect("the bundled files");
    for text in config_map.data.as_mut().unwrap().values_mut() {
        *text = "(the bundled file)".to_owned();
    }
    insta::assert_snapshot!(rendered.to_yaml());
}

#[test]
fn the_default_ships_the_bundled_devcontainer_and_clones_nothing() {
    let objects = rendered(SandboxInput::default()).objects();
    let config_map = &objects[0];
    assert_eq!(config_map["kind"], "ConfigMap");
    assert_eq!(
        config_map["metadata"]["name"],
        "claude-code-sandbox-devcontainer"
    );
    assert_eq!(
        config_map["data"]["devcontainer.json"],
        claude_sandbox_core::assets::DEVCONTAINER_JSON
    );
    assert_eq!(
        config_map["data"]["entrypoint.sh"],
        claude_sandbox_core::assets::ENTRYPOINT_SH
    );
    let sandbox = sandbox_json(SandboxInput::default());
    // No URL: envbuilder clones nothing (and needs no repository of ours).
    assert!(env(&sandbox, "ENVBUILDER_GIT_URL").is_none());
    assert!(env(&sandbox, "ENVBUILDER_GIT_CLONE_SINGLE_BRANCH").is_none());
    assert_eq!(
        env_value(&sandbox, "ENVBUILDER_WORKSPACE_FOLDER"),
        "/workspaces/workspace"
    );
    assert_eq!(
        env_value(&sandbox, "CLAUDE_SANDBOX_WORKSPACE"),
        "/workspaces/workspace"
    );
    assert_eq!(
        env_value(&sandbox, "ENVBUILDER_DEVCONTAINER_DIR"),
        "/etc/claude-sandbox/devcontainer"
    );
    assert_eq!(
        env_value(&sandbox, "ENVBUILDER_INIT_SCRIPT"),
        "exec /bin/sh /etc/claude-sandbox/devcontainer/entrypoint.sh"
    );
    let volumes = &sandbox["spec"]["podTemplate"]["spec"]["volumes"];
    assert_eq!(
        volumes[2]["configMap"]["name"],
        "claude-code-sandbox-devcontainer"
    );
}

#[test]
fn a_devcontainer_repository_is_cloned_and_built_from() {
    let input = SandboxInput {
        devcontainer_repo: Some("https://github.com/acme/claude-sandbox.git#team".into()),
        ..Default::default()
    };
    let objects = rendered(input.clone()).objects();
    let kinds: Vec<&str> = objects
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["Sandbox", "Service"],
        "the repository brings the files"
    );
    let sandbox = sandbox_json(input);
    assert_eq!(
        env_value(&sandbox, "ENVBUILDER_GIT_URL"),
        "https://github.com/acme/claude-sandbox.git#refs/heads/team"
    );
    assert_eq!(
        env_value(&sandbox, "ENVBUILDER_WORKSPACE_FOLDER"),
        "/workspaces/claude-sandbox"
    );
    assert_eq!(
        env_value(&sandbox, "ENVBUILDER_DEVCONTAINER_DIR"),
        "k8s/agent-sandbox"
    );
    assert_eq!(
        env_value(&sandbox, "ENVBUILDER_INIT_SCRIPT"),
        "exec /bin/sh /workspaces/claude-sandbox/k8s/agent-sandbox/entrypoint.sh"
    );
    assert_eq!(
        env_value(&sandbox, "ENVBUILDER_IGNORE_PATHS"),
        "/var/run,/product_uuid,/product_name,/etc/claude-sandbox/vault-ca,/etc/claude-sandbox/vault-ssh-ca"
    );
}

#[test]
fn runtimes_set_only_the_runtime_class() {
    let base = sandbox_json(SandboxInput::default());
    assert!(
        base["spec"]["podTemplate"]["spec"]
            .get("runtimeClassName")
            .is_none()
    );
    for (runtime, class) in [("gvisor", "gvisor"), ("kata", "kata-qemu")] {
        let mut sandbox = sandbox_json(SandboxInput {
            runtime: Some(runtime.into()),
            ..Default::default()
        });
        let pod_spec = &mut sandbox["spec"]["podTemplate"]["spec"];
        assert_eq!(pod_spec["runtimeClassName"], class);
        pod_spec.as_object_mut().unwrap().remove("runtimeClassName");
        assert_eq!(
            sandbox, base,
            "{runtime} changes more than the runtime class"
        );
    }
}

#[test]
fn the_default_pod_follows_upstream_facts() {
    let sandbox = sandbox_json(SandboxInput::default());
    assert_eq!(sandbox["apiVersion"], "agents.x-k8s.io/v1beta1");
    assert_eq!(sandbox["spec"]["operatingMode"], "Running");
    let c = container(&sandbox);
    assert_eq!(c["image"], "ghcr.io/coder/envbuilder:1.3.0");
    let ports: Vec<(i64, &str)> = c["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["containerPort"].as_i64().unwrap(),
                p["name"].as_str().unwrap(),
            )
        })
        .collect();
    // sshd's feature listens on 2222, code-server on the port the devcontainer sets.
    assert_eq!(ports, [(13337, "code-server"), (2222, "ssh")]);
    // Unprivileged unless docker is asked for.
    assert!(c.get("securityContext").is_none());
    // envbuilder's defaults stay, and every mount is ignored by the build.
    assert_eq!(
        env_value(&sandbox, "ENVBUILDER_IGNORE_PATHS"),
        "/var/run,/product_uuid,/product_name,/etc/claude-sandbox/vault-ca,/etc/claude-sandbox/vault-ssh-ca,/etc/claude-sandbox/devcontainer"
    );
    // The startup probe outlasts a 15-minute first build.
    let startup = &c["startupProbe"];
    let budget =
        startup["periodSeconds"].as_i64().unwrap() * startup["failureThreshold"].as_i64().unwrap();
    assert!(budget >= 15 * 60, "startup budget {budget}s");
    assert_eq!(startup["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["port"], 13337);
    // The workspace claim is what the controller turns into PVC workspaces-<name>.
    let claim = &sandbox["spec"]["volumeClaimTemplates"][0];
    assert_eq!(claim["metadata"]["name"], "workspaces");
    assert_eq!(claim["spec"]["resources"]["requests"]["storage"], "10Gi");
    assert_eq!(c["volumeMounts"][0]["mountPath"], "/workspaces");
    assert_eq!(c["volumeMounts"][0]["name"], "workspaces");
}

#[test]
fn secrets_are_references_never_values() {
    let sandbox = sandbox_json(SandboxInput {
        code_server_auth: Some("password".into()),
        ..Default::default()
    });
    for key in [
        "GITHUB_TOKEN",
        "TFE_TOKEN",
        "LANGFUSE_PUBLIC_KEY",
        "LANGFUSE_SECRET_KEY",
        "LANGFUSE_HOST",
        "ANTHROPIC_API_KEY",
        "CLAUDE_CODE_OAUTH_TOKEN",
        "VAULT_ADDR",
    ] {
        let var = env(&sandbox, key).unwrap_or_else(|| panic!("{key} missing"));
        assert!(var.get("value").is_none());
        let reference = &var["valueFrom"]["secretKeyRef"];
        assert_eq!(reference["name"], "claude-code-sandbox-secrets");
        assert_eq!(reference["key"], key);
        assert_eq!(reference["optional"], true, "{key} must be optional");
    }
    let password = &env(&sandbox, "CODE_SERVER_PASSWORD").unwrap()["valueFrom"]["secretKeyRef"];
    assert_eq!(
        password["optional"], false,
        "asked-for password auth must not fall back to none"
    );
    let project = sandbox_json(SandboxInput {
        repo: Some("https://github.com/acme/app.git".into()),
        ..Default::default()
    });
    let git_user = &env(&project, "ENVBUILDER_GIT_USERNAME").unwrap()["valueFrom"]["secretKeyRef"];
    assert_eq!(git_user["key"], "GIT_USERNAME");
    let none = sandbox_json(SandboxInput::default());
    assert!(env(&none, "CODE_SERVER_PASSWORD").is_none());
    assert!(
        env(&none, "ENVBUILDER_GIT_USERNAME").is_none(),
        "nothing to clone, no clone credentials"
    );
}

#[test]
fn docker_makes_the_pod_privileged_with_its_own_data_volume() {
    let sandbox = sandbox_json(SandboxInput {
        docker: Some(true),
        ..Default::default()
    });
    let c = container(&sandbox);
    assert_eq!(c["securityContext"]["privileged"], true);
    assert_eq!(env_value(&sandbox, "CLAUDE_SANDBOX_DOCKER"), "true");
    assert!(env_value(&sandbox, "ENVBUILDER_IGNORE_PATHS").ends_with(",/var/lib/docker"));
    let volumes = sandbox["spec"]["podTemplate"]["spec"]["volumes"]
        .as_array()
        .unwrap();
    assert!(
        volumes
            .iter()
            .any(|v| v["name"] == "docker-data" && v.get("emptyDir").is_some())
    );
}

#[test]
fn v1alpha1_uses_replicas_and_nothing_v0_1_0_lacks() {
    let sandbox = sandbox_json(SandboxInput {
        api_version: Some("v1alpha1".into()),
        ..Default::default()
    });
    assert_eq!(sandbox["apiVersion"], "agents.x-k8s.io/v1alpha1");
    let spec = sandbox["spec"].as_object().unwrap();
    assert_eq!(spec["replicas"], 1);
    let mut keys: Vec<&str> = spec.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["podTemplate", "replicas", "volumeClaimTemplates"]);
    let v1beta1 = sandbox_json(SandboxInput::default());
    assert_eq!(
        sandbox["spec"]["podTemplate"],
        v1beta1["spec"]["podTemplate"]
    );
}

#[test]
fn project_mode_ships_the_devcontainer_in_a_config_map() {
    let input = SandboxInput {
        name: Some("app-box".into()),
        namespace: Some("team-a".into()),
        repo: Some("https://github.com/acme/app.git#main".into()),
        workspace_size: Some("20Gi".into()),
        storage_class: Some("fast".into()),
        requests: ResourceInput {
            cpu: Some("2".into()),
            ..Default::default()
        },
        vault_ca: Some("configmap/corp-ca".into()),
        ..Default::default()
    };
    let objects = rendered(input.clone()).objects();
    // The ConfigMap's data is the bundled files, compared below, not snapshotted.
    insta::assert_yaml_snapshot!(objects[1..]);
    let kinds: Vec<&str> = objects
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["ConfigMap", "Sandbox", "Service"]);
    let config_map = &objects[0];
    assert_eq!(config_map["metadata"]["name"], "app-box-devcontainer");
    assert_eq!(config_map["metadata"]["namespace"], "team-a");
    assert_eq!(
        config_map["data"]["devcontainer.json"],
        claude_sandbox_core::assets::DEVCONTAINER_JSON
    );
    assert_eq!(
        config_map["data"]["entrypoint.sh"],
        claude_sandbox_core::assets::ENTRYPOINT_SH
    );

    let sandbox = sandbox_json(input);
    assert_eq!(
        env_value(&sandbox, "ENVBUILDER_GIT_URL"),
        "https://github.com/acme/app.git#refs/heads/main"
    );
    assert_eq!(
        env_value(&sandbox, "ENVBUILDER_WORKSPACE_FOLDER"),
        "/workspaces/app"
    );
    assert_eq!(
        env_value(&sandbox, "ENVBUILDER_DEVCONTAINER_DIR"),
        "/etc/claude-sandbox/devcontainer"
    );
    assert_eq!(
        env_value(&sandbox, "ENVBUILDER_INIT_SCRIPT"),
        "exec /bin/sh /etc/claude-sandbox/devcontainer/entrypoint.sh"
    );
    assert!(
        env_value(&sandbox, "ENVBUILDER_IGNORE_PATHS").contains("/etc/claude-sandbox/devcontainer")
    );
    let volumes = &sandbox["spec"]["podTemplate"]["spec"]["volumes"];
    assert_eq!(volumes[0]["configMap"]["name"], "corp-ca");
    assert_eq!(volumes[0]["configMap"]["optional"], true);
    assert_eq!(volumes[2]["configMap"]["name"], "app-box-devcontainer");
    let claim = &sandbox["spec"]["volumeClaimTemplates"][0]["spec"];
    assert_eq!(claim["storageClassName"], "fast");
    assert_eq!(claim["resources"]["requests"]["storage"], "20Gi");
    assert_eq!(container(&sandbox)["resources"]["requests"]["cpu"], "2");
}

#[test]
fn the_service_selects_this_sandbox_only() {
    let objects = rendered(SandboxInput {
        name: Some("dev".into()),
        ..Default::default()
    })
    .objects();
    let service = objects.iter().find(|o| o["kind"] == "Service").unwrap();
    let sandbox = objects.iter().find(|o| o["kind"] == "Sandbox").unwrap();
    let selector = service["spec"]["selector"].as_object().unwrap();
    let pod_labels = sandbox["spec"]["podTemplate"]["metadata"]["labels"]
        .as_object()
        .unwrap();
    assert_eq!(selector["app.kubernetes.io/instance"], "dev");
    for (key, value) in selector {
        assert_eq!(&pod_labels[key], value, "pod lacks selector label {key}");
        assert!(!key.starts_with("agents.x-k8s.io/"));
    }
    let ports: Vec<(i64, i64)> = service["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["port"].as_i64().unwrap(),
                p["targetPort"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(ports, [(13337, 13337), (22, 2222)]);
}
