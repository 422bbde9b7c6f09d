use crate::{
    git_source::GitSource,
    layout::{BUNDLED_ASSETS_DIR, BUNDLED_WORKSPACE, REPO_ASSETS_DIR, WORKSPACES_DIR},
};

/// Where envbuilder finds the devcontainer definition and the init script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DevcontainerSource {
    /// The default: nothing is cloned; the devcontainer definition and init script come from the
    /// binary, delivered in a ConfigMap, and the workspace starts empty. Needs no repository, so
    /// it works on any cluster that can pull the images.
    Bundled {
        /// The devcontainer.json text to ship: the bundled one, or the user's `--devcontainer-json`.
        devcontainer_json: String,
    },
    /// The original plan: envbuilder clones a repository holding `k8s/agent-sandbox` (a fork of
    /// this project) and builds from there.
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
    /// The repository envbuilder clones, if any.
    pub fn repo(&self) -> Option<&GitSource> {
        match self {
            Self::Bundled { .. } => None,
            Self::Repository { repo } | Self::Project { repo, .. } => Some(repo),
        }
    }

    /// The folder shells and the IDE start in: the clone, or the empty workspace.
    pub fn workspace_folder(&self) -> String {
        match self.repo() {
            Some(repo) => format!("{WORKSPACES_DIR}/{}", repo.repository_name()),
            None => BUNDLED_WORKSPACE.to_owned(),
        }
    }

    /// `ENVBUILDER_DEVCONTAINER_DIR`: relative to the clone, or absolute for the bundled files.
    pub fn devcontainer_dir(&self) -> String {
        match self {
            Self::Repository { .. } => REPO_ASSETS_DIR.to_owned(),
            Self::Bundled { .. } | Self::Project { .. } => BUNDLED_ASSETS_DIR.to_owned(),
        }
    }

    /// The absolute folder holding `entrypoint.sh` inside the running sandbox.
    pub fn assets_dir(&self) -> String {
        match self {
            Self::Repository { .. } => format!("{}/{REPO_ASSETS_DIR}", self.workspace_folder()),
            Self::Bundled { .. } | Self::Project { .. } => BUNDLED_ASSETS_DIR.to_owned(),
        }
    }

    /// The devcontainer.json shipped in the ConfigMap (with the init script), unless the
    /// definition comes from a cloned repository.
    pub fn bundled_devcontainer_json(&self) -> Option<&str> {
        match self {
            Self::Repository { .. } => None,
            Self::Bundled { devcontainer_json }
            | Self::Project {
                devcontainer_json, ..
            } => Some(devcontainer_json),
        }
    }
}
