//! The contract between the pod spec and what runs inside it (`entrypoint.sh`, `devcontainer.json`):
//! ports, paths and environment variable names. Change one side, change the other.

/// code-server's port, as the devcontainer feature is configured and the init script starts it.
pub const CODE_SERVER_PORT: u16 = 13337;
/// The sshd feature's port (not 22).
pub const SSH_PORT: u16 = 2222;
/// The port the Service offers SSH on.
pub const SSH_SERVICE_PORT: u16 = 22;

/// The name of the sandbox's one container.
pub const CONTAINER_NAME: &str = "devcontainer";
/// The devcontainer's non-root user (`remoteUser`/`containerUser`).
pub const USER: &str = "vscode";

/// Where the workspace volume is mounted; envbuilder clones into a folder below it.
pub const WORKSPACES_DIR: &str = "/workspaces";
/// The volume claim template's name; the controller names the PVC `workspaces-<sandbox>`.
pub const WORKSPACE_VOLUME: &str = "workspaces";
/// The workspace folder when nothing is cloned (the bundled devcontainer, no `--repo`).
pub const BUNDLED_WORKSPACE: &str = "/workspaces/workspace";
/// Claude Code's settings and sessions, on the workspace volume so they survive restarts.
pub const CLAUDE_CONFIG_DIR: &str = "/workspaces/.claude";

/// The folder inside the repository that holds devcontainer.json and entrypoint.sh.
pub const REPO_ASSETS_DIR: &str = "k8s/agent-sandbox";
/// Where the bundled devcontainer.json and entrypoint.sh are mounted (a ConfigMap).
pub const BUNDLED_ASSETS_DIR: &str = "/etc/claude-sandbox/devcontainer";
/// Where the Vault TLS CA volume is mounted, and the file in it.
pub const VAULT_CA_DIR: &str = "/etc/claude-sandbox/vault-ca";
pub const VAULT_CA_FILE: &str = "ca.crt";
/// Where the Vault SSH user CA volume is mounted, and the file in it.
pub const VAULT_SSH_CA_DIR: &str = "/etc/claude-sandbox/vault-ssh-ca";
pub const VAULT_SSH_CA_FILE: &str = "trusted-user-ca-keys.pem";
/// docker-in-docker's data root: an emptyDir, because overlayfs cannot stack on the container's.
pub const DOCKER_DATA_DIR: &str = "/var/lib/docker";
/// The paths envbuilder leaves out of the image build by default; setting
/// `ENVBUILDER_IGNORE_PATHS` replaces them, so they are always listed first.
pub const ENVBUILDER_DEFAULT_IGNORE_PATHS: [&str; 3] =
    ["/var/run", "/product_uuid", "/product_name"];

/// The file name of the init script in an assets folder.
pub const ENTRYPOINT_FILE: &str = "entrypoint.sh";
/// The file name of the devcontainer definition in an assets folder.
pub const DEVCONTAINER_FILE: &str = "devcontainer.json";

/// Environment variables the init script reads.
pub mod env {
    /// The user a root init runs the IDE, Claude Code and sessions as (devcontainer.json's
    /// containerEnv; the session launcher reads it from PID 1's environment).
    pub const USER: &str = "CLAUDE_SANDBOX_USER";
    pub const ASSETS_DIR: &str = "CLAUDE_SANDBOX_DIR";
    pub const WORKSPACE: &str = "CLAUDE_SANDBOX_WORKSPACE";
    pub const DOCKER: &str = "CLAUDE_SANDBOX_DOCKER";
    pub const SSH_CA: &str = "CLAUDE_SANDBOX_SSH_CA";
    pub const VAULT_CACERT: &str = "VAULT_CACERT";
    pub const CLAUDE_CODE_VERSION: &str = "CLAUDE_CODE_VERSION";
    pub const CLAUDE_CONFIG_DIR: &str = "CLAUDE_CONFIG_DIR";
    pub const CODE_SERVER_PASSWORD: &str = "CODE_SERVER_PASSWORD";
}

/// Keys of the sandbox Secret, all optional, that become environment variables of the same name.
pub const SECRET_ENV_KEYS: [&str; 8] = [
    "GITHUB_TOKEN",
    "TFE_TOKEN",
    "LANGFUSE_PUBLIC_KEY",
    "LANGFUSE_SECRET_KEY",
    "LANGFUSE_HOST",
    "ANTHROPIC_API_KEY",
    "CLAUDE_CODE_OAUTH_TOKEN",
    "VAULT_ADDR",
];

/// Keys of the sandbox Secret, all optional, that give envbuilder git credentials for private
/// repositories: (environment variable, Secret key). envbuilder unsets them before any user code runs.
pub const SECRET_GIT_CREDENTIALS: [(&str, &str); 2] = [
    ("ENVBUILDER_GIT_USERNAME", "GIT_USERNAME"),
    ("ENVBUILDER_GIT_PASSWORD", "GIT_PASSWORD"),
];

/// The envbuilder image, pinned.
pub const DEFAULT_ENVBUILDER_IMAGE: &str = "ghcr.io/coder/envbuilder:1.3.0";
