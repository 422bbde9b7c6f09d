use crate::{
    git_source::GitSource,
    layout::{BUNDLED_ASSETS_DIR, REPO_ASSETS_DIR, WORKSPACES_DIR},
};

/// Where envbuilder finds the devcontainer definition and the init script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DevcontainerSource {
    /// The original plan: envbuilder clones a repository holding `k8s/agent-sandbox`
    /// (this project's by default) and builds from there.
    Repository { repo: GitSource },
    /// Project mode: envbuilder clones the user's project as the workspace; the devcontainer
    /// definition and init script come from the binary, delivered in a ConfigMap.
    Project {
        repo: GitSource,
        /// The devcontainer.json text to ship: the bundled one, or the user's `--devcontainer-json`.
        devcontainer_json: String,
    },
}

impl DevcontainerSource {
    /// The repository envbuilder clones.
    pub fn repo(&self) -> &GitSource {
        match self {
            Self::Repository { repo } | Self::Project { repo, .. } => repo,
        }
    }

    /// The folder the repository is cloned into, where shells and the IDE start.
    pub fn workspace_folder(&self) -> String {
        format!("{WORKSPACES_DIR}/{}", self.repo().repository_name())
    }

    /// `ENVBUILDER_DEVCONTAINER_DIR`: relative to the clone, or absolute for the bundled files.
    pub fn devcontainer_dir(&self) -> String {
        match self {
            Self::Repository { .. } => REPO_ASSETS_DIR.to_owned(),
            Self::Project { .. } => BUNDLED_ASSETS_DIR.to_owned(),
        }
    }

    /// The absolute folder holding `entrypoint.sh` inside the running sandbox.
    pub fn assets_dir(&self) -> String {
        match self {
            Self::Repository { .. } => format!("{}/{REPO_ASSETS_DIR}", self.workspace_folder()),
            Self::Project { .. } => BUNDLED_ASSETS_DIR.to_owned(),
        }
    }

    /// The devcontainer.json shipped in the ConfigMap, in project mode.
    pub fn bundled_devcontainer_json(&self) -> Option<&str> {
        match self {
            Self::Repository { .. } => None,
            Self::Project {
                devcontainer_json, ..
            } => Some(devcontainer_json),
        }
    }
}
