//! Stage one: the command line, as clap parses it. No validation beyond shape here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use clap_complete::Shell;

use crate::output::OutputFormat;

/// Isolated Claude Code environments on Kubernetes.
///
/// Each sandbox is an agent-sandbox `Sandbox` whose pod runs envbuilder: it builds the
/// devcontainer in k8s/agent-sandbox at start-up, then serves a browser IDE (code-server),
/// SSH and a shell with Claude Code installed, fed with the team's secrets.
#[derive(Debug, Parser)]
#[command(
    name = "claude-sandbox",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// More output on stderr: -v for this tool's traces, -vv for every library's.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the Kubernetes objects of a sandbox as YAML (or JSON), without touching a cluster.
    ///
    /// With no flags the output is exactly what `kubectl kustomize k8s/agent-sandbox/base`
    /// gives; pipe it to `kubectl apply -f -` to deploy. Secret values never appear: only the
    /// names of the Secret keys the pod reads.
    #[command(after_help = RENDER_EXAMPLES)]
    Render(Box<RenderArgs>),
    /// Check a devcontainer.json for fields envbuilder ignores.
    ///
    /// envbuilder builds the devcontainer inside the pod and silently skips what only Docker or
    /// VS Code can do (appPort, runArgs, privileged, mounts…). Exit code 1 when there is a finding.
    Lint(LintArgs),
    /// Print a shell completion script, e.g. `claude-sandbox completions bash > /etc/bash_completion.d/claude-sandbox`.
    Completions {
        /// The shell to complete for.
        shell: Shell,
    },
}

const RENDER_EXAMPLES: &str = "\
Examples:
  claude-sandbox render                                   # the kustomize base
  claude-sandbox render dev --runtime gvisor -n team-a    # a gVisor sandbox named dev
  claude-sandbox render --repo https://github.com/acme/app.git#main   # project mode
  claude-sandbox render -c sandbox.yaml --api-version v1alpha1 | kubectl apply -f -";

#[derive(Debug, Args)]
pub struct RenderArgs {
    #[command(flatten)]
    pub sandbox: SandboxArgs,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct LintArgs {
    /// A devcontainer.json, or a folder holding one (directly or in .devcontainer/).
    /// Default: the current folder.
    pub path: Option<PathBuf>,
}

/// Everything that describes a sandbox. Flags override the config file key by key.
#[derive(Debug, Args)]
pub struct SandboxArgs {
    /// The sandbox's name [default: claude-code-sandbox].
    pub name: Option<String>,

    /// A YAML file with any of the settings below, as camelCase keys (workspaceSize, vaultCa, …).
    #[arg(short = 'c', long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// The namespace [default: the kubeconfig context's; none in rendered YAML].
    #[arg(short, long)]
    pub namespace: Option<String>,

    /// Container runtime: runc (the cluster default), gvisor or kata (RuntimeClass kata-qemu).
    #[arg(long, value_name = "RUNTIME", help_heading = "Sandbox")]
    pub runtime: Option<String>,

    /// Size of the persistent /workspaces volume [default: 10Gi].
    #[arg(long, value_name = "QUANTITY", help_heading = "Sandbox")]
    pub workspace_size: Option<String>,

    /// StorageClass of the workspace volume [default: the cluster's default].
    #[arg(long, value_name = "NAME", help_heading = "Sandbox")]
    pub storage_class: Option<String>,

    /// Resource requests, kubectl style [default: cpu=1,memory=4Gi,ephemeral-storage=8Gi].
    #[arg(long, value_name = "NAME=QUANTITY,…", help_heading = "Sandbox")]
    pub requests: Option<String>,

    /// Resource limits [default: cpu=4,memory=8Gi,ephemeral-storage=16Gi].
    #[arg(long, value_name = "NAME=QUANTITY,…", help_heading = "Sandbox")]
    pub limits: Option<String>,

    /// Run the Docker daemon (docker-in-docker). Makes the pod privileged: use only when needed.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", help_heading = "Sandbox")]
    pub docker: Option<bool>,

    /// Your project to clone as the workspace; the devcontainer definition then comes from this
    /// binary (project mode). URL[#BRANCH].
    #[arg(long, value_name = "URL", help_heading = "Devcontainer")]
    pub repo: Option<String>,

    /// The repository holding k8s/agent-sandbox that envbuilder clones and builds, URL[#BRANCH]
    /// [default: this project's].
    #[arg(long, value_name = "URL", help_heading = "Devcontainer")]
    pub devcontainer_repo: Option<String>,

    /// In project mode, ship this devcontainer.json instead of the bundled one.
    #[arg(long, value_name = "FILE", help_heading = "Devcontainer")]
    pub devcontainer_json: Option<PathBuf>,

    /// The envbuilder image [default: ghcr.io/coder/envbuilder:1.3.0].
    #[arg(long, value_name = "IMAGE", help_heading = "Devcontainer")]
    pub image: Option<String>,

    /// Claude Code to install: stable, latest or an exact version [default: stable].
    #[arg(long, value_name = "VERSION", help_heading = "Devcontainer")]
    pub claude_version: Option<String>,

    /// code-server login: none, or password from the Secret key CODE_SERVER_PASSWORD [default: none].
    #[arg(long, value_name = "AUTH", help_heading = "Devcontainer")]
    pub code_server_auth: Option<String>,

    /// The Secret whose keys (GITHUB_TOKEN, ANTHROPIC_API_KEY, …; all optional) become
    /// environment variables [default: NAME-secrets].
    #[arg(long, value_name = "NAME", help_heading = "Secrets")]
    pub secret: Option<String>,

    /// Vault TLS CA (key ca.crt), trusted system-wide when present [default: secret/NAME-vault-ca].
    #[arg(
        long,
        value_name = "secret/NAME|configmap/NAME",
        help_heading = "Secrets"
    )]
    pub vault_ca: Option<String>,

    /// Vault SSH user CA (key trusted-user-ca-keys.pem), trusted by sshd when present
    /// [default: secret/NAME-vault-ssh-ca].
    #[arg(
        long,
        value_name = "secret/NAME|configmap/NAME",
        help_heading = "Secrets"
    )]
    pub vault_ssh_ca: Option<String>,

    /// The agent-sandbox API to write for: v1beta1 (v1.0 and later) or v1alpha1 (v0.1–v0.5)
    /// [default: v1beta1].
    #[arg(long, value_name = "VERSION", help_heading = "Cluster")]
    pub api_version: Option<String>,
}
