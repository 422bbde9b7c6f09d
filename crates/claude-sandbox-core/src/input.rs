//! What a user says about a sandbox, before validation: a config file and flags, merged.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{ConfigError, Field};

/// Every setting of a sandbox, each optional. A config file deserializes into this (unknown keys
/// are refused); flags fill one too; `overlay` lets the flags win.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SandboxInput {
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub runtime: Option<String>,
    pub api_version: Option<String>,
    pub workspace_size: Option<String>,
    pub storage_class: Option<String>,
    #[serde(default)]
    pub requests: ResourceInput,
    #[serde(default)]
    pub limits: ResourceInput,
    pub image: Option<String>,
    pub devcontainer_repo: Option<String>,
    pub repo: Option<String>,
    pub devcontainer_json: Option<PathBuf>,
    pub docker: Option<bool>,
    pub secret: Option<String>,
    pub vault_ca: Option<String>,
    pub vault_ssh_ca: Option<String>,
    pub claude_code_version: Option<String>,
    pub code_server_auth: Option<String>,
}

/// Requests or limits as written: `cpu=2,memory=8Gi` on the command line, a map in a file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceInput {
    pub cpu: Option<String>,
    pub memory: Option<String>,
    pub ephemeral_storage: Option<String>,
}

impl ResourceInput {
    /// Parses kubectl's `cpu=2,memory=8Gi,ephemeral-storage=20Gi` form.
    pub fn parse_assignments(field: Field, text: &str) -> Result<Self, ConfigError> {
        let mut input = Self::default();
        for assignment in text.split(',').filter(|a| !a.is_empty()) {
            let Some((key, value)) = assignment.split_once('=') else {
                return Err(ConfigError::invalid(
                    field,
                    assignment,
                    "is not NAME=QUANTITY",
                    "write e.g. cpu=2,memory=8Gi,ephemeral-storage=20Gi",
                ));
            };
            let slot = match key {
                "cpu" => &mut input.cpu,
                "memory" => &mut input.memory,
                "ephemeral-storage" => &mut input.ephemeral_storage,
                _ => {
                    return Err(ConfigError::invalid(
                        field,
                        key,
                        "is not a resource this sandbox sets",
                        "use cpu, memory or ephemeral-storage",
                    ));
                }
            };
            *slot = Some(value.to_owned());
        }
        Ok(input)
    }

    fn overlay(self, over: Self) -> Self {
        Self {
            cpu: over.cpu.or(self.cpu),
            memory: over.memory.or(self.memory),
            ephemeral_storage: over.ephemeral_storage.or(self.ephemeral_storage),
        }
    }
}

impl SandboxInput {
    /// Reads a YAML config file. A relative `devcontainerJson` is taken from the file's folder.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
            path: shown.clone(),
            source,
        })?;
        let mut input: Self = if text.trim().is_empty() {
            Self::default()
        } else {
            serde_saphyr::from_str(&text).map_err(|e| ConfigError::ParseFile {
                path: shown,
                message: e.to_string(),
            })?
        };
        if let (Some(json), Some(dir)) = (&input.devcontainer_json, path.parent()) {
            input.devcontainer_json = Some(dir.join(json));
        }
        Ok(input)
    }

    /// These settings, with every one that `over` sets replaced by its value.
    pub fn overlay(self, over: Self) -> Self {
        Self {
            name: over.name.or(self.name),
            namespace: over.namespace.or(self.namespace),
            runtime: over.runtime.or(self.runtime),
            api_version: over.api_version.or(self.api_version),
            workspace_size: over.workspace_size.or(self.workspace_size),
            storage_class: over.storage_class.or(self.storage_class),
            requests: self.requests.overlay(over.requests),
            limits: self.limits.overlay(over.limits),
            image: over.image.or(self.image),
            devcontainer_repo: over.devcontainer_repo.or(self.devcontainer_repo),
            repo: over.repo.or(self.repo),
            devcontainer_json: over.devcontainer_json.or(self.devcontainer_json),
            docker: over.docker.or(self.docker),
            secret: over.secret.or(self.secret),
            vault_ca: over.vault_ca.or(self.vault_ca),
            vault_ssh_ca: over.vault_ssh_ca.or(self.vault_ssh_ca),
            claude_code_version: over.claude_code_version.or(self.claude_code_version),
            code_server_auth: over.code_server_auth.or(self.code_server_auth),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: Field = Field::new("--limits", "limits");

    #[test]
    fn assignments_fill_named_resources() {
        let input = ResourceInput::parse_assignments(F, "cpu=2,ephemeral-storage=20Gi").unwrap();
        assert_eq!(input.cpu.as_deref(), Some("2"));
        assert_eq!(input.memory, None);
        assert_eq!(input.ephemeral_storage.as_deref(), Some("20Gi"));
        assert!(
            ResourceInput::parse_assignments(F, "gpu=1")
                .unwrap_err()
                .to_string()
                .contains("cpu, memory")
        );
        assert!(ResourceInput::parse_assignments(F, "cpu").is_err());
    }

    #[test]
    fn flags_win_over_the_file_key_by_key() {
        let file = SandboxInput {
            name: Some("from-file".into()),
            runtime: Some("gvisor".into()),
            requests: ResourceInput {
                cpu: Some("1".into()),
                memory: Some("2Gi".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let flags = SandboxInput {
            runtime: Some("kata".into()),
            requests: ResourceInput {
                cpu: Some("3".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let merged = file.overlay(flags);
        assert_eq!(merged.name.as_deref(), Some("from-file"));
        assert_eq!(merged.runtime.as_deref(), Some("kata"));
        assert_eq!(merged.requests.cpu.as_deref(), Some("3"));
        assert_eq!(merged.requests.memory.as_deref(), Some("2Gi"));
    }

    #[test]
    fn config_files_refuse_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sandbox.yaml");
        std::fs::write(&path, "name: dev\nruntime: gvisor\nworkspacesize: 1Gi\n").unwrap();
        let err = SandboxInput::from_file(&path).unwrap_err().to_string();
        assert!(err.contains("workspacesize"), "{err}");
        assert!(err.contains("sandbox.yaml"), "{err}");

        std::fs::write(&path, "name: dev\ndevcontainerJson: dc/devcontainer.json\n").unwrap();
        let input = SandboxInput::from_file(&path).unwrap();
        assert_eq!(
            input.devcontainer_json,
            Some(dir.path().join("dc/devcontainer.json"))
        );
    }
}
