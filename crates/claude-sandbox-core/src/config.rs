use std::path::Path;

use crate::{
    assets,
    ca_source::CaSource,
    claude_version::ClaudeCodeVersion,
    code_server_auth::CodeServerAuth,
    devcontainer_source::DevcontainerSource,
    error::{ConfigError, Field},
    git_source::GitSource,
    image::ImageRef,
    input::SandboxInput,
    layout::DEFAULT_ENVBUILDER_IMAGE,
    lint::{self, LintWarning},
    names::{Namespace, ObjectName, SandboxName},
    quantity::Quantity,
    resources::Resources,
    runtime::Runtime,
    sandbox_api_version::SandboxApiVersion,
};

/// A validated sandbox: everything needed to render its Kubernetes objects.
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxConfig {
    pub name: SandboxName,
    /// None: the namespace of the context (and, in rendered YAML, no namespace at all).
    pub namespace: Option<Namespace>,
    pub runtime: Runtime,
    pub api_version: SandboxApiVersion,
    pub workspace_size: Quantity,
    /// None: the cluster's default StorageClass.
    pub storage_class: Option<ObjectName>,
    pub resources: Resources,
    pub image: ImageRef,
    pub source: DevcontainerSource,
    /// docker-in-docker: runs the daemon, which needs a privileged pod.
    pub docker: bool,
    /// The Secret whose keys become environment variables (every key optional).
    pub secret: ObjectName,
    pub vault_ca: CaSource,
    pub vault_ssh_ca: CaSource,
    pub claude_code_version: ClaudeCodeVersion,
    pub code_server_auth: CodeServerAuth,
}

pub const DEFAULT_NAME: &str = "claude-code-sandbox";
pub const DEFAULT_WORKSPACE_SIZE: &str = "10Gi";

mod fields {
    use super::Field;
    pub const NAME: Field = Field::new("NAME", "name");
    pub const NAMESPACE: Field = Field::new("--namespace", "namespace");
    pub const RUNTIME: Field = Field::new("--runtime", "runtime");
    pub const API_VERSION: Field = Field::new("--api-version", "apiVersion");
    pub const WORKSPACE_SIZE: Field = Field::new("--workspace-size", "workspaceSize");
    pub const STORAGE_CLASS: Field = Field::new("--storage-class", "storageClass");
    pub const IMAGE: Field = Field::new("--image", "image");
    pub const DEVCONTAINER_REPO: Field = Field::new("--devcontainer-repo", "devcontainerRepo");
    pub const REPO: Field = Field::new("--repo", "repo");
    pub const DEVCONTAINER_JSON: Field = Field::new("--devcontainer-json", "devcontainerJson");
    pub const SECRET: Field = Field::new("--secret", "secret");
    pub const VAULT_CA: Field = Field::new("--vault-ca", "vaultCa");
    pub const VAULT_SSH_CA: Field = Field::new("--vault-ssh-ca", "vaultSshCa");
    pub const CLAUDE_VERSION: Field = Field::new("--claude-version", "claudeCodeVersion");
    pub const CODE_SERVER_AUTH: Field = Field::new("--code-server-auth", "codeServerAuth");
}

impl SandboxConfig {
    /// Validates what the user said. Reads the `devcontainerJson` file when one is named.
    pub fn from_input(input: SandboxInput) -> Result<Self, ConfigError> {
        use fields::*;
        let name = SandboxName::parse(NAME, input.name.as_deref().unwrap_or(DEFAULT_NAME))?;
        let parse_opt =
            |value: Option<&str>, field| value.map(|v| ObjectName::parse(field, v)).transpose();
        let workspace_size = Quantity::parse(
            WORKSPACE_SIZE,
            input
                .workspace_size
                .as_deref()
                .unwrap_or(DEFAULT_WORKSPACE_SIZE),
        )?;
        if workspace_size.value() < 1.0 {
            return Err(ConfigError::invalid(
                WORKSPACE_SIZE,
                workspace_size.as_str(),
                "is too small for a workspace",
                "give a size such as 10Gi",
            ));
        }
        let ca = |value: Option<&str>, field, suffix| match value {
            Some(v) => CaSource::parse(field, v),
            None => Ok(CaSource::secret(ObjectName::derived(&name, suffix))),
        };
        Ok(Self {
            namespace: input
                .namespace
                .as_deref()
                .map(|n| Namespace::parse(NAMESPACE, n))
                .transpose()?,
            runtime: input
                .runtime
                .as_deref()
                .map_or(Ok(Runtime::Runc), |r| Runtime::parse(RUNTIME, r))?,
            api_version: input
                .api_version
                .as_deref()
                .map_or(Ok(SandboxApiVersion::V1beta1), |v| {
                    SandboxApiVersion::parse(API_VERSION, v)
                })?,
            workspace_size,
            storage_class: parse_opt(input.storage_class.as_deref(), STORAGE_CLASS)?,
            resources: Resources::from_input(&input.requests, &input.limits)?,
            image: ImageRef::parse(
                IMAGE,
                input.image.as_deref().unwrap_or(DEFAULT_ENVBUILDER_IMAGE),
            )?,
            source: source_from_input(&input)?,
            docker: input.docker.unwrap_or(false),
            secret: match input.secret.as_deref() {
                Some(s) => ObjectName::parse(SECRET, s)?,
                None => ObjectName::derived(&name, "secrets"),
            },
            vault_ca: ca(input.vault_ca.as_deref(), VAULT_CA, "vault-ca")?,
            vault_ssh_ca: ca(input.vault_ssh_ca.as_deref(), VAULT_SSH_CA, "vault-ssh-ca")?,
            claude_code_version: input
                .claude_code_version
                .as_deref()
                .map_or(Ok(ClaudeCodeVersion::default()), |v| {
                    ClaudeCodeVersion::parse(CLAUDE_VERSION, v)
                })?,
            code_server_auth: input
                .code_server_auth
                .as_deref()
                .map_or(Ok(CodeServerAuth::None), |a| {
                    CodeServerAuth::parse(CODE_SERVER_AUTH, a)
                })?,
            name,
        })
    }

    /// What envbuilder would silently ignore in the devcontainer.json this sandbox ships.
    pub fn lint(&self) -> Vec<LintWarning> {
        match self.source.bundled_devcontainer_json() {
            Some(json) => lint::lint_devcontainer(json).unwrap_or_default(),
            None => Vec::new(),
        }
    }
}

fn source_from_input(input: &SandboxInput) -> Result<DevcontainerSource, ConfigError> {
    use fields::*;
    let devcontainer_json = || match &input.devcontainer_json {
        Some(path) => read_devcontainer_json(path),
        None => Ok(assets::DEVCONTAINER_JSON.to_owned()),
    };
    match (&input.repo, &input.devcontainer_repo) {
        (Some(_), Some(_)) => Err(ConfigError::Conflict {
            first: REPO,
            second: DEVCONTAINER_REPO,
            fix: "--repo clones your project and ships the devcontainer definition itself; choose one",
        }),
        (Some(repo), None) => Ok(DevcontainerSource::Project {
            repo: GitSource::parse(REPO, repo)?,
            devcontainer_json: devcontainer_json()?,
        }),
        (None, Some(repo)) => {
            if input.devcontainer_json.is_some() {
                return Err(ConfigError::Conflict {
                    first: DEVCONTAINER_JSON,
                    second: DEVCONTAINER_REPO,
                    fix: "the devcontainer repository brings its own devcontainer.json: commit it there, or drop --devcontainer-repo to ship this one",
                });
            }
            Ok(DevcontainerSource::Repository {
                repo: GitSource::parse(DEVCONTAINER_REPO, repo)?,
            })
        }
        (None, None) => Ok(DevcontainerSource::Bundled {
            devcontainer_json: devcontainer_json()?,
        }),
    }
}

fn read_devcontainer_json(path: &Path) -> Result<String, ConfigError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
        path: shown.clone(),
        source,
    })?;
    lint::lint_devcontainer(&text).map_err(|message| ConfigError::Devcontainer {
        path: shown,
        message,
    })?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CaSourceKind, ResourceInput};

    fn config(input: SandboxInput) -> Result<SandboxConfig, String> {
        SandboxConfig::from_input(input).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_make_the_documented_sandbox() {
        let c = config(SandboxInput::default()).unwrap();
        assert_eq!(c.name.as_str(), "claude-code-sandbox");
        assert_eq!(c.namespace, None);
        assert_eq!(c.runtime, Runtime::Runc);
        assert_eq!(c.api_version, SandboxApiVersion::V1beta1);
        assert_eq!(c.workspace_size.as_str(), "10Gi");
        assert_eq!(c.image.as_str(), DEFAULT_ENVBUILDER_IMAGE);
        assert_eq!(c.secret.as_str(), "claude-code-sandbox-secrets");
        assert_eq!(
            c.vault_ca.to_string(),
            "secret/claude-code-sandbox-vault-ca"
        );
        assert_eq!(
            c.vault_ssh_ca.to_string(),
            "secret/claude-code-sandbox-vault-ssh-ca"
        );
        assert_eq!(c.code_server_auth, CodeServerAuth::None);
        assert_eq!(c.claude_code_version.as_str(), "stable");
        assert!(!c.docker);
        // No repository of ours: the bundled definition and an empty workspace.
        assert_eq!(c.source.repo(), None);
        assert_eq!(c.source.workspace_folder(), "/workspaces/workspace");
        assert_eq!(
            c.source.devcontainer_dir(),
            "/etc/claude-sandbox/devcontainer"
        );
        assert_eq!(c.source.assets_dir(), "/etc/claude-sandbox/devcontainer");
        assert_eq!(
            c.source.bundled_devcontainer_json(),
            Some(assets::DEVCONTAINER_JSON)
        );
        assert_eq!(c.resources.requests.cpu.as_str(), "1");
        assert_eq!(c.resources.limits.memory.as_str(), "8Gi");
    }

    #[test]
    fn derived_names_follow_the_sandbox_name() {
        let c = config(SandboxInput {
            name: Some("dev".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.secret.as_str(), "dev-secrets");
        assert_eq!(c.vault_ca.name.as_str(), "dev-vault-ca");
    }

    #[test]
    fn project_mode_ships_the_bundled_devcontainer() {
        let c = config(SandboxInput {
            repo: Some("https://github.com/acme/app.git#dev".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            c.source.repo().unwrap().envbuilder_url(),
            "https://github.com/acme/app.git#refs/heads/dev"
        );
        assert_eq!(c.source.workspace_folder(), "/workspaces/app");
        assert_eq!(
            c.source.devcontainer_dir(),
            "/etc/claude-sandbox/devcontainer"
        );
        assert_eq!(
            c.source.bundled_devcontainer_json(),
            Some(assets::DEVCONTAINER_JSON)
        );
        assert!(c.lint().is_empty(), "{:?}", c.lint());
    }

    #[test]
    fn a_devcontainer_repository_brings_its_own_definition() {
        let c = config(SandboxInput {
            devcontainer_repo: Some("https://github.com/acme/claude-sandbox.git".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            c.source.repo().unwrap().envbuilder_url(),
            "https://github.com/acme/claude-sandbox.git"
        );
        assert_eq!(c.source.workspace_folder(), "/workspaces/claude-sandbox");
        assert_eq!(c.source.devcontainer_dir(), "k8s/agent-sandbox");
        assert_eq!(
            c.source.assets_dir(),
            "/workspaces/claude-sandbox/k8s/agent-sandbox"
        );
        assert_eq!(c.source.bundled_devcontainer_json(), None);
    }

    #[test]
    fn every_setting_is_validated_and_named() {
        let cases: Vec<(SandboxInput, &str)> = vec![
            (
                SandboxInput {
                    name: Some("My_Box".into()),
                    ..Default::default()
                },
                "NAME (config key `name`)",
            ),
            (
                SandboxInput {
                    namespace: Some("Dev".into()),
                    ..Default::default()
                },
                "--namespace",
            ),
            (
                SandboxInput {
                    runtime: Some("gvisr".into()),
                    ..Default::default()
                },
                "use one of: runc, gvisor, kata",
            ),
            (
                SandboxInput {
                    api_version: Some("v1".into()),
                    ..Default::default()
                },
                "--api-version",
            ),
            (
                SandboxInput {
                    workspace_size: Some("10GB".into()),
                    ..Default::default()
                },
                "--workspace-size",
            ),
            (
                SandboxInput {
                    workspace_size: Some("0".into()),
                    ..Default::default()
                },
                "too small",
            ),
            (
                SandboxInput {
                    storage_class: Some("Fast".into()),
                    ..Default::default()
                },
                "--storage-class",
            ),
            (
                SandboxInput {
                    requests: ResourceInput {
                        cpu: Some("8".into()),
                        ..Default::default()
                    },
                    ..Default::default()
                },
                "more than the limit cpu=4",
            ),
            (
                SandboxInput {
                    limits: ResourceInput {
                        memory: Some("lots".into()),
                        ..Default::default()
                    },
                    ..Default::default()
                },
                "--limits",
            ),
            (
                SandboxInput {
                    image: Some("Envbuilder".into()),
                    ..Default::default()
                },
                "--image",
            ),
            (
                SandboxInput {
                    devcontainer_repo: Some("not a url".into()),
                    ..Default::default()
                },
                "--devcontainer-repo",
            ),
            (
                SandboxInput {
                    repo: Some("ftp://x/y".into()),
                    ..Default::default()
                },
                "--repo",
            ),
            (
                SandboxInput {
                    repo: Some("https://h/a".into()),
                    devcontainer_repo: Some("https://h/b".into()),
                    ..Default::default()
                },
                "cannot be used together",
            ),
            (
                SandboxInput {
                    devcontainer_repo: Some("https://h/b".into()),
                    devcontainer_json: Some("x.json".into()),
                    ..Default::default()
                },
                "brings its own devcontainer.json",
            ),
            (
                SandboxInput {
                    devcontainer_json: Some("/nonexistent/y.json".into()),
                    ..Default::default()
                },
                "/nonexistent/y.json",
            ),
            (
                SandboxInput {
                    repo: Some("https://h/a".into()),
                    devcontainer_json: Some("/nonexistent/x.json".into()),
                    ..Default::default()
                },
                "/nonexistent/x.json",
            ),
            (
                SandboxInput {
                    secret: Some("-x".into()),
                    ..Default::default()
                },
                "--secret",
            ),
            (
                SandboxInput {
                    vault_ca: Some("vault".into()),
                    ..Default::default()
                },
                "secret/NAME or configmap/NAME",
            ),
            (
                SandboxInput {
                    vault_ssh_ca: Some("pod/x".into()),
                    ..Default::default()
                },
                "--vault-ssh-ca",
            ),
            (
                SandboxInput {
                    claude_code_version: Some("v2".into()),
                    ..Default::default()
                },
                "--claude-version",
            ),
            (
                SandboxInput {
                    code_server_auth: Some("token".into()),
                    ..Default::default()
                },
                "use one of: none, password",
            ),
        ];
        for (input, expected) in cases {
            let err = config(input.clone()).expect_err(&format!("{input:?} was accepted"));
            assert!(
                err.contains(expected),
                "{err:?} does not mention {expected:?}"
            );
        }
    }

    #[test]
    fn a_custom_devcontainer_json_is_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("devcontainer.json");
        std::fs::write(
            &path,
            r#"{ "image": "ubuntu", // comment
            "appPort": [13337], }"#,
        )
        .unwrap();
        let c = config(SandboxInput {
            repo: Some("https://h/a".into()),
            devcontainer_json: Some(path.clone()),
            vault_ca: Some("configmap/ca".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.vault_ca.kind, CaSourceKind::ConfigMap);
        assert!(c.lint().iter().any(|w| w.field == "appPort"));
        std::fs::write(&path, "{ not json").unwrap();
        let err = config(SandboxInput {
            repo: Some("https://h/a".into()),
            devcontainer_json: Some(path),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.contains("invalid devcontainer.json"), "{err}");
    }
}
