//! `SandboxConfig` → the typed objects of one sandbox. Pure: no cluster access.

use std::collections::BTreeMap;

use claude_sandbox_core::{
    CaSource, CaSourceKind, CodeServerAuth, ResourceList, SandboxApiVersion, SandboxConfig, assets,
    layout::{self, env},
};
use k8s_openapi::{
    api::core::v1::{
        ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource, EnvVar,
        EnvVarSource, HTTPGetAction, PersistentVolumeClaimSpec, PodSpec, Probe,
        ResourceRequirements, SecretKeySelector, SecretVolumeSource, SecurityContext, Service,
        ServicePort, ServiceSpec, Volume, VolumeMount, VolumeResourceRequirements,
    },
    apimachinery::pkg::{
        api::resource::Quantity, apis::meta::v1::ObjectMeta, util::intstr::IntOrString,
    },
};

use crate::{
    labels,
    rendered::{RenderedSandbox, SandboxObject},
    sandbox::{
        EmbeddedMetadata, OperatingMode, PodTemplate, VolumeClaimTemplate, v1alpha1, v1beta1,
    },
};

/// Volume names in the pod spec.
const VAULT_CA_VOLUME: &str = "vault-ca";
const VAULT_SSH_CA_VOLUME: &str = "vault-ssh-ca";
const BUNDLED_ASSETS_VOLUME: &str = "devcontainer";
const DOCKER_DATA_VOLUME: &str = "docker-data";

/// First builds take 5 to 15 minutes; the startup probe allows 20 before the kubelet gives up.
const STARTUP_PROBE_PERIOD_SECONDS: i32 = 10;
const STARTUP_PROBE_FAILURES: i32 = 120;

/// Renders every object of the sandbox `config` describes.
pub fn render(config: &SandboxConfig) -> RenderedSandbox {
    let metadata = ObjectMeta {
        name: Some(config.name.to_string()),
        namespace: config.namespace.as_ref().map(ToString::to_string),
        labels: Some(labels::object_labels(&config.name)),
        ..ObjectMeta::default()
    };
    RenderedSandbox {
        config_map: bundled_assets_config_map(config, &metadata),
        sandbox: sandbox(config, metadata.clone()),
        service: service(config, metadata),
    }
}

/// The name of the ConfigMap that carries the bundled devcontainer files (unless they come from a
/// cloned devcontainer repository).
pub fn bundled_assets_config_map_name(config: &SandboxConfig) -> String {
    format!("{}-devcontainer", config.name)
}

fn sandbox(config: &SandboxConfig, metadata: ObjectMeta) -> SandboxObject {
    let pod_template = PodTemplate {
        metadata: Some(EmbeddedMetadata {
            labels: Some(labels::selector(&config.name)),
            ..EmbeddedMetadata::default()
        }),
        spec: pod_spec(config),
    };
    let volume_claim_templates = vec![workspace_claim_template(config)];
    match config.api_version {
        SandboxApiVersion::V1beta1 => SandboxObject::V1beta1(v1beta1::Sandbox {
            metadata,
            spec: v1beta1::SandboxSpec {
                pod_template,
                volume_claim_templates,
                operating_mode: Some(OperatingMode::Running),
            },
            status: None,
        }),
        SandboxApiVersion::V1alpha1 => SandboxObject::V1alpha1(v1alpha1::Sandbox {
            metadata,
            spec: v1alpha1::SandboxSpec {
                pod_template,
                volume_claim_templates,
                replicas: Some(1),
            },
            status: None,
        }),
    }
}

fn workspace_claim_template(config: &SandboxConfig) -> VolumeClaimTemplate {
    VolumeClaimTemplate {
        metadata: EmbeddedMetadata {
            name: Some(layout::WORKSPACE_VOLUME.to_owned()),
            ..EmbeddedMetadata::default()
        },
        spec: PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".to_owned()]),
            storage_class_name: config.storage_class.as_ref().map(ToString::to_string),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_owned(),
                    Quantity(config.workspace_size.to_string()),
                )])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        },
    }
}

fn pod_spec(config: &SandboxConfig) -> PodSpec {
    let mounts = mounts(config);
    PodSpec {
        runtime_class_name: config.runtime.runtime_class().map(str::to_owned),
        containers: vec![Container {
            name: layout::CONTAINER_NAME.to_owned(),
            image: Some(config.image.to_string()),
            env: Some(env_vars(config, &mounts)),
            ports: Some(vec![
                container_port("code-server", layout::CODE_SERVER_PORT),
                container_port("ssh", layout::SSH_PORT),
            ]),
            resources: Some(ResourceRequirements {
                requests: Some(resource_map(&config.resources.requests)),
                limits: Some(resource_map(&config.resources.limits)),
                ..ResourceRequirements::default()
            }),
            startup_probe: Some(Probe {
                period_seconds: Some(STARTUP_PROBE_PERIOD_SECONDS),
                failure_threshold: Some(STARTUP_PROBE_FAILURES),
                ..code_server_health_probe()
            }),
            readiness_probe: Some(Probe {
                period_seconds: Some(10),
                failure_threshold: Some(3),
                ..code_server_health_probe()
            }),
            // docker-in-docker needs a privileged pod, which defeats the sandbox: only on request.
            security_context: config.docker.then(|| SecurityContext {
                privileged: Some(true),
                ..SecurityContext::default()
            }),
            volume_mounts: Some(mounts.iter().map(|m| m.volume_mount.clone()).collect()),
            ..Container::default()
        }],
        volumes: Some(mounts.into_iter().filter_map(|m| m.volume).collect()),
        ..PodSpec::default()
    }
}

/// A mount of the sandbox container, with the pod volume behind it (none for the workspace,
/// whose volume the controller adds from the volume claim template).
struct Mount {
    volume_mount: VolumeMount,
    volume: Option<Volume>,
}

fn mounts(config: &SandboxConfig) -> Vec<Mount> {
    let mount = |name: &str, path: &str, read_only: bool, volume: Option<Volume>| Mount {
        volume_mount: VolumeMount {
            name: name.to_owned(),
            mount_path: path.to_owned(),
            read_only: read_only.then_some(true),
            ..VolumeMount::default()
        },
        volume,
    };
    let mut mounts = vec![
        mount(
            layout::WORKSPACE_VOLUME,
            layout::WORKSPACES_DIR,
            false,
            None,
        ),
        mount(
            VAULT_CA_VOLUME,
            layout::VAULT_CA_DIR,
            true,
            Some(optional_ca_volume(VAULT_CA_VOLUME, &config.vault_ca)),
        ),
        mount(
            VAULT_SSH_CA_VOLUME,
            layout::VAULT_SSH_CA_DIR,
            true,
            Some(optional_ca_volume(
                VAULT_SSH_CA_VOLUME,
                &config.vault_ssh_ca,
            )),
        ),
    ];
    if config.source.bundled_devcontainer_json().is_some() {
        mounts.push(mount(
            BUNDLED_ASSETS_VOLUME,
            layout::BUNDLED_ASSETS_DIR,
            true,
            Some(Volume {
                name: BUNDLED_ASSETS_VOLUME.to_owned(),
                config_map: Some(ConfigMapVolumeSource {
                    name: bundled_assets_config_map_name(config),
                    ..ConfigMapVolumeSource::default()
                }),
                ..Volume::default()
            }),
        ));
    }
    if config.docker {
        mounts.push(mount(
            DOCKER_DATA_VOLUME,
            layout::DOCKER_DATA_DIR,
            false,
            Some(Volume {
                name: DOCKER_DATA_VOLUME.to_owned(),
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..Volume::default()
            }),
        ));
    }
    mounts
}

/// A CA volume that may be missing: the pod starts without it and the init script skips the CA.
fn optional_ca_volume(name: &str, source: &CaSource) -> Volume {
    let (secret, config_map) = match source.kind {
        CaSourceKind::Secret => (
            Some(SecretVolumeSource {
                secret_name: Some(source.name.to_string()),
                optional: Some(true),
                ..SecretVolumeSource::default()
            }),
            None,
        ),
        CaSourceKind::ConfigMap => (
            None,
            Some(ConfigMapVolumeSource {
                name: source.name.to_string(),
                optional: Some(true),
                ..ConfigMapVolumeSource::default()
            }),
        ),
    };
    Volume {
        name: name.to_owned(),
        secret,
        config_map,
        ..Volume::default()
    }
}

fn env_vars(config: &SandboxConfig, mounts: &[Mount]) -> Vec<EnvVar> {
    let source = &config.source;
    let assets_dir = source.assets_dir();
    // Everything mounted into the container stays out of the image envbuilder builds.
    let ignore_paths: Vec<&str> = layout::ENVBUILDER_DEFAULT_IGNORE_PATHS
        .into_iter()
        .chain(
            mounts
                .iter()
                .map(|m| m.volume_mount.mount_path.as_str())
                .filter(|path| *path != layout::WORKSPACES_DIR),
        )
        .collect();
    // Without a repository envbuilder clones nothing and builds the bundled definition.
    let mut vars: Vec<EnvVar> = source
        .repo()
        .into_iter()
        .flat_map(|repo| {
            [
                value("ENVBUILDER_GIT_URL", &repo.envbuilder_url()),
                value("ENVBUILDER_GIT_CLONE_SINGLE_BRANCH", "true"),
            ]
        })
        .collect();
    vars.extend([
        value("ENVBUILDER_WORKSPACE_FOLDER", &source.workspace_folder()),
        value("ENVBUILDER_DEVCONTAINER_DIR", &source.devcontainer_dir()),
        value(
            "ENVBUILDER_INIT_SCRIPT",
            &format!("exec /bin/sh {assets_dir}/{}", layout::ENTRYPOINT_FILE),
        ),
        value("ENVBUILDER_IGNORE_PATHS", &ignore_paths.join(",")),
    ]);
    // Clone credentials, only when there is something to clone.
    if source.repo().is_some() {
        vars.extend(
            layout::SECRET_GIT_CREDENTIALS
                .iter()
                .map(|(name, key)| from_secret(name, config.secret.as_str(), key, true)),
        );
    }
    vars.extend([
        value(env::ASSETS_DIR, &assets_dir),
        value(env::WORKSPACE, &source.workspace_folder()),
        value(
            env::CLAUDE_CODE_VERSION,
            config.claude_code_version.as_str(),
        ),
        value(env::CLAUDE_CONFIG_DIR, layout::CLAUDE_CONFIG_DIR),
        value("DISABLE_AUTOUPDATER", "1"),
        value(
            env::VAULT_CACERT,
            &format!("{}/{}", layout::VAULT_CA_DIR, layout::VAULT_CA_FILE),
        ),
        value(
            env::SSH_CA,
            &format!("{}/{}", layout::VAULT_SSH_CA_DIR, layout::VAULT_SSH_CA_FILE),
        ),
    ]);
    if config.docker {
        vars.push(value(env::DOCKER, "true"));
    }
    vars.extend(
        layout::SECRET_ENV_KEYS
            .iter()
            .map(|key| from_secret(key, config.secret.as_str(), key, true)),
    );
    if config.code_server_auth == CodeServerAuth::Password {
        // Asked-for password auth must not quietly fall back to none: the key is required.
        vars.push(from_secret(
            env::CODE_SERVER_PASSWORD,
            config.secret.as_str(),
            env::CODE_SERVER_PASSWORD,
            false,
        ));
    }
    vars
}

fn value(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: Some(value.to_owned()),
        ..EnvVar::default()
    }
}

fn from_secret(name: &str, secret: &str, key: &str, optional: bool) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.to_owned(),
                key: key.to_owned(),
                optional: Some(optional),
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

fn container_port(name: &str, port: u16) -> ContainerPort {
    ContainerPort {
        name: Some(name.to_owned()),
        container_port: i32::from(port),
        protocol: Some("TCP".to_owned()),
        ..ContainerPort::default()
    }
}

fn code_server_health_probe() -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some("/healthz".to_owned()),
            port: IntOrString::Int(i32::from(layout::CODE_SERVER_PORT)),
            ..HTTPGetAction::default()
        }),
        ..Probe::default()
    }
}

fn resource_map(list: &ResourceList) -> BTreeMap<String, Quantity> {
    list.entries()
        .into_iter()
        .map(|(name, quantity)| (name.to_owned(), Quantity(quantity.to_string())))
        .collect()
}

fn service(config: &SandboxConfig, metadata: ObjectMeta) -> Service {
    let port = |name: &str, port: u16, target: u16| ServicePort {
        name: Some(name.to_owned()),
        port: i32::from(port),
        target_port: Some(IntOrString::Int(i32::from(target))),
        protocol: Some("TCP".to_owned()),
        ..ServicePort::default()
    };
    Service {
        metadata,
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".to_owned()),
            selector: Some(labels::selector(&config.name)),
            ports: Some(vec![
                port(
                    "code-server",
                    layout::CODE_SERVER_PORT,
                    layout::CODE_SERVER_PORT,
                ),
                port("ssh", layout::SSH_SERVICE_PORT, layout::SSH_PORT),
            ]),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

fn bundled_assets_config_map(config: &SandboxConfig, metadata: &ObjectMeta) -> Option<ConfigMap> {
    let devcontainer_json = config.source.bundled_devcontainer_json()?;
    Some(ConfigMap {
        metadata: ObjectMeta {
            name: Some(bundled_assets_config_map_name(config)),
            ..metadata.clone()
        },
        data: Some(BTreeMap::from([
            (
                layout::DEVCONTAINER_FILE.to_owned(),
                devcontainer_json.to_owned(),
            ),
            (
                layout::ENTRYPOINT_FILE.to_owned(),
                assets::ENTRYPOINT_SH.to_owned(),
            ),
        ])),
        ..ConfigMap::default()
    })
}
