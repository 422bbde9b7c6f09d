//! Stage two: flags and config file → a validated `SandboxConfig`.

use claude_sandbox_core::{ConfigError, Field, ResourceInput, SandboxConfig, SandboxInput};

use crate::cli::SandboxArgs;

impl SandboxArgs {
    /// The validated sandbox; `namespace` is the global `-n`.
    pub fn to_config(&self, namespace: Option<&str>) -> Result<SandboxConfig, ConfigError> {
        let file = match &self.config {
            Some(path) => SandboxInput::from_file(path)?,
            None => SandboxInput::default(),
        };
        let config = SandboxConfig::from_input(file.overlay(self.to_input(namespace)?))?;
        tracing::debug!(name = %config.name, runtime = %config.runtime, api = %config.api_version, "validated sandbox config");
        Ok(config)
    }

    fn to_input(&self, namespace: Option<&str>) -> Result<SandboxInput, ConfigError> {
        let resources = |text: &Option<String>, field| {
            text.as_deref().map_or(Ok(ResourceInput::default()), |t| {
                ResourceInput::parse_assignments(field, t)
            })
        };
        Ok(SandboxInput {
            name: self.name.clone(),
            namespace: namespace.map(str::to_owned),
            runtime: self.runtime.clone(),
            api_version: self.api_version.clone(),
            workspace_size: self.workspace_size.clone(),
            storage_class: self.storage_class.clone(),
            requests: resources(&self.requests, Field::new("--requests", "requests"))?,
            limits: resources(&self.limits, Field::new("--limits", "limits"))?,
            image: self.image.clone(),
            devcontainer_repo: self.devcontainer_repo.clone(),
            repo: self.repo.clone(),
            devcontainer_json: self.devcontainer_json.clone(),
            docker: self.docker,
            secret: self.secret.clone(),
            vault_ca: self.vault_ca.clone(),
            vault_ssh_ca: self.vault_ssh_ca.clone(),
            claude_code_version: self.claude_version.clone(),
            code_server_auth: self.code_server_auth.clone(),
        })
    }
}
