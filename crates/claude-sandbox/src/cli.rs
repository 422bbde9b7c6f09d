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

    /// The kubeconfig file [default: $KUBECONFIG, ~/.kube/config, or the in-cluster account].
    #[arg(long, global = true, value_name = "FILE", help_heading = "Cluster")]
    pub kubeconfig: Option<PathBuf>,

    /// The kubeconfig context to use [default: the current context].
    #[arg(long, global = true, value_name = "NAME", help_heading = "Cluster")]
    pub context: Option<String>,

    /// The namespace [default: the context's; none in rendered YAML].
    #[arg(
        short,
        long,
        global = true,
        value_name = "NAME",
        help_heading = "Cluster"
    )]
    pub namespace: Option<String>,
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
    /// Deploy a sandbox and wait until it is ready; installs agent-sandbox when it is missing.
    ///
    /// Checks first (cluster reachable, permissions, RuntimeClass, StorageClass), then applies
    /// the Secret (from --secret-env/--env-file), ConfigMap, Sandbox and Service with server-side
    /// apply, and follows the start-up (envbuilder's phases) until the sandbox is ready. Running
    /// it again on an unchanged sandbox writes nothing.
    #[command(after_help = UP_EXAMPLES)]
    Up(Box<UpArgs>),
    /// Show a sandbox: conditions, phase, node, IPs, runtime, workspace volume, endpoints.
    Status(StatusArgs),
    /// List the sandboxes this tool manages.
    List(ListArgs),
    /// Print the sandbox container's log: envbuilder's build, then the init script.
    Logs(LogsArgs),
    /// Stop a sandbox's pod; its workspace volume stays.
    Suspend(NameArg),
    /// Start a suspended sandbox again and wait until it is ready.
    Resume(ResumeArgs),
    /// Delete a sandbox and what it owns, and wait until it is gone. The workspace volume stays
    /// unless --delete-volume.
    Down(DownArgs),
    /// Open the browser IDE: a local port tunnelled to code-server, until Ctrl-C.
    #[command(after_help = CONNECT_EXAMPLES)]
    Connect(ConnectArgs),
    /// An interactive login shell in the sandbox, as the devcontainer's user, in the workspace.
    Shell(ShellArgs),
    /// Run Claude Code in the sandbox, as the devcontainer's user, in the workspace.
    ///
    /// With a terminal it is interactive; without one (a pipe, CI) use `-- -p "…"` and stdin and
    /// stdout are passed through.
    #[command(after_help = CLAUDE_EXAMPLES)]
    Claude(ClaudeArgs),
    /// Run a command in the sandbox; its exit code becomes this one's.
    ///
    /// Runs as the devcontainer's user in the workspace, with the image's environment (what
    /// `shell` gets); stdin, stdout and stderr are streamed.
    #[command(after_help = EXEC_EXAMPLES)]
    Exec(ExecArgs),
    /// Copy files or folders to or from a sandbox (NAME:PATH on one side), keeping modes.
    ///
    /// A relative sandbox path is relative to the workspace folder. The sandbox image needs tar.
    #[command(after_help = CP_EXAMPLES)]
    Cp(CpArgs),
    /// SSH into the sandbox with the system ssh, tunnelled (no Service or LoadBalancer needed).
    ///
    /// The host key is pinned per sandbox on first use (~/.config/claude-sandbox/known_hosts).
    /// Without a Vault SSH CA, --install-key puts your public key in the sandbox first.
    #[command(after_help = SSH_EXAMPLES)]
    Ssh(SshArgs),
    /// Print a Host block for ~/.ssh/config (VS Code Remote-SSH, JetBrains Gateway, scp, rsync).
    SshConfig(SshConfigArgs),
    /// Carry stdin/stdout to a port in the sandbox: ssh's ProxyCommand.
    Proxy(ProxyArgs),
    /// Check that a sandbox works end to end: Ready, pod, build, code-server, Claude Code, SSH,
    /// secrets; exit code 1 naming the checks that fail.
    Verify(VerifyArgs),
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

const UP_EXAMPLES: &str = "\
Examples:
  claude-sandbox up                                        # the default sandbox, current namespace
  claude-sandbox up dev -n team-a --runtime gvisor --secret-env GITHUB_TOKEN,ANTHROPIC_API_KEY
  claude-sandbox up --repo https://github.com/acme/app.git#main --env-file team.env
  claude-sandbox up dev --detach -o json                   # apply, don't wait, print a summary";

#[derive(Debug, Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub sandbox: SandboxArgs,
    /// Put these variables of your environment into the sandbox Secret (e.g. GITHUB_TOKEN,ANTHROPIC_API_KEY).
    #[arg(
        long,
        value_name = "KEY,…",
        value_delimiter = ',',
        help_heading = "Secrets"
    )]
    pub secret_env: Vec<String>,
    /// Put the KEY=VALUE lines of this file into the sandbox Secret.
    #[arg(long, value_name = "FILE", help_heading = "Secrets")]
    pub env_file: Option<PathBuf>,
    #[command(flatten)]
    pub install: InstallArgs,
    #[command(flatten)]
    pub wait: WaitArgs,
    /// Return once the objects are applied, without waiting.
    #[arg(long)]
    pub detach: bool,
    /// Print a machine-readable summary instead of instructions.
    #[arg(short, long, value_enum)]
    pub output: Option<OutputFormat>,
}

#[derive(Debug, Args)]
pub struct InstallArgs {
    /// Where to install agent-sandbox from when the cluster lacks it (a file or an https URL)
    /// [default: the pinned upstream release].
    #[arg(long, value_name = "PATH|URL", help_heading = "agent-sandbox")]
    pub controller_manifest: Option<String>,
    /// Fail instead of installing agent-sandbox when it is missing.
    #[arg(long, help_heading = "agent-sandbox")]
    pub no_install: bool,
}

#[derive(Debug, Args)]
pub struct WaitArgs {
    /// How long to wait for the sandbox (first builds take 5–15 minutes), e.g. 90s, 20m.
    #[arg(long, value_name = "DURATION", default_value = "20m", value_parser = humantime::parse_duration)]
    pub timeout: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct NameArg {
    /// The sandbox's name.
    #[arg(default_value = claude_sandbox_core::DEFAULT_NAME)]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub sandbox: NameArg,
    /// Output format [default: a readable summary].
    #[arg(short, long, value_enum)]
    pub output: Option<OutputFormat>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Output format [default: a table].
    #[arg(short, long, value_enum)]
    pub output: Option<OutputFormat>,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    #[command(flatten)]
    pub sandbox: NameArg,
    /// Keep printing new lines.
    #[arg(short, long)]
    pub follow: bool,
    /// Only the last N lines.
    #[arg(long, value_name = "N")]
    pub tail: Option<i64>,
}

#[derive(Debug, Args)]
pub struct ResumeArgs {
    #[command(flatten)]
    pub sandbox: NameArg,
    #[command(flatten)]
    pub wait: WaitArgs,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    /// The sandbox's name (default claude-code-sandbox).
    #[arg(conflicts_with = "all")]
    pub name: Option<String>,
    /// Every sandbox this tool manages in the namespace.
    #[arg(long)]
    pub all: bool,
    /// Delete the workspace volume too (its data is lost).
    #[arg(long)]
    pub delete_volume: bool,
    /// Then remove agent-sandbox (controller and CRDs), if no Sandbox remains anywhere.
    #[arg(long)]
    pub uninstall_controller: bool,
    /// The manifest agent-sandbox was installed from [default: the pinned upstream release].
    #[arg(long, value_name = "PATH|URL")]
    pub controller_manifest: Option<String>,
    /// How long to wait for everything to be gone.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = humantime::parse_duration)]
    pub timeout: std::time::Duration,
}

const CONNECT_EXAMPLES: &str = "\
Examples:
  claude-sandbox connect --open                  # http://localhost:13337 in your browser
  claude-sandbox connect dev -n team-a --port 8080
  claude-sandbox connect --via exec              # gVisor, or wherever port-forward fails";

/// How tunnels reach the sandbox.
#[derive(Debug, Args)]
pub struct TunnelArgs {
    /// auto (exec under gVisor, else port-forward with a switch to exec if it fails),
    /// port-forward, or exec (a relay in the container: bash, socat or nc).
    #[arg(long, value_name = "VIA", default_value = "auto")]
    pub via: String,
}

#[derive(Debug, Args)]
pub struct ConnectArgs {
    #[command(flatten)]
    pub sandbox: NameArg,
    /// The local port; the next free one when it is taken (0: any free port).
    #[arg(long, value_name = "N", default_value_t = claude_sandbox_core::layout::CODE_SERVER_PORT)]
    pub port: u16,
    /// Open the browser too.
    #[arg(long)]
    pub open: bool,
    #[command(flatten)]
    pub tunnel: TunnelArgs,
}

/// Who and where a command runs as in the sandbox.
#[derive(Debug, Args)]
pub struct SessionArgs {
    /// The user to run as [default: the devcontainer's, e.g. vscode].
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// The working folder [default: the workspace folder].
    #[arg(long, value_name = "PATH")]
    pub workdir: Option<String>,
}

#[derive(Debug, Args)]
pub struct ShellArgs {
    #[command(flatten)]
    pub sandbox: NameArg,
    #[command(flatten)]
    pub session: SessionArgs,
}

const CLAUDE_EXAMPLES: &str = "\
Examples:
  claude-sandbox claude                                   # interactive
  claude-sandbox claude dev -- -p \"summarise the README\"  # one prompt, output on stdout
  git diff | claude-sandbox claude -- -p \"review this\"";

#[derive(Debug, Args)]
pub struct ClaudeArgs {
    #[command(flatten)]
    pub sandbox: NameArg,
    /// Arguments for claude.
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<String>,
}

const EXEC_EXAMPLES: &str = "\
Examples:
  claude-sandbox exec -- git status
  claude-sandbox exec dev --workdir /tmp -- sh -c 'df -h .'
  claude-sandbox exec --user root -- apt-get install -y jq
  tar -c src | claude-sandbox exec -- tar -x -C /tmp";

#[derive(Debug, Args)]
pub struct ExecArgs {
    #[command(flatten)]
    pub sandbox: NameArg,
    #[command(flatten)]
    pub session: SessionArgs,
    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

const CP_EXAMPLES: &str = "\
Examples:
  claude-sandbox cp ./src claude-code-sandbox:src        # into the workspace folder
  claude-sandbox cp dev:/tmp/report.html .               # from the sandbox
  claude-sandbox cp -n team-a notes.md dev:/workspaces/notes.md";

#[derive(Debug, Args)]
pub struct CpArgs {
    /// A local path, or NAME:PATH in the sandbox.
    pub source: String,
    /// A local path, or NAME:PATH in the sandbox.
    pub destination: String,
}

const SSH_EXAMPLES: &str = "\
Examples:
  claude-sandbox ssh --install-key                # put ~/.ssh/id_ed25519.pub in, then log in
  claude-sandbox ssh dev -- -L 3000:localhost:3000
  claude-sandbox ssh -- git -C /workspaces/app log -1
  claude-sandbox ssh-config dev >> ~/.ssh/config  # then: ssh dev.default.claude-sandbox";

#[derive(Debug, Args)]
pub struct SshArgs {
    #[command(flatten)]
    pub sandbox: NameArg,
    /// The user to log in as [default: the devcontainer's].
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// First add this public key to the user's ~/.ssh/authorized_keys in the sandbox
    /// [default: ~/.ssh/id_ed25519.pub, id_ecdsa.pub or id_rsa.pub].
    #[arg(long, value_name = "PATH", num_args = 0..=1, default_missing_value = "")]
    pub install_key: Option<String>,
    #[command(flatten)]
    pub tunnel: TunnelArgs,
    /// Options and a command for ssh, e.g. `-- -i KEY -L 3000:localhost:3000 uptime`.
    #[arg(last = true, value_name = "SSH ARGS")]
    pub ssh_args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct SshConfigArgs {
    #[command(flatten)]
    pub sandbox: NameArg,
    /// The user to log in as [default: the devcontainer's].
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    #[command(flatten)]
    pub tunnel: TunnelArgs,
}

#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// The sandbox's name.
    pub name: String,
    /// The port in the sandbox.
    #[arg(default_value_t = claude_sandbox_core::layout::SSH_PORT)]
    pub port: u16,
    #[command(flatten)]
    pub tunnel: TunnelArgs,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub sandbox: NameArg,
    /// Also log in over SSH with this private key and run `true`.
    #[arg(long, short = 'i', value_name = "FILE")]
    pub identity: Option<PathBuf>,
    #[command(flatten)]
    pub tunnel: TunnelArgs,
    /// Output format [default: a checklist].
    #[arg(short, long, value_enum)]
    pub output: Option<OutputFormat>,
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

    /// A repository holding k8s/agent-sandbox (your fork of this project) that envbuilder clones
    /// and builds from, URL[#BRANCH] [default: none; the bundled definition, empty workspace].
    #[arg(long, value_name = "URL", help_heading = "Devcontainer")]
    pub devcontainer_repo: Option<String>,

    /// Ship this devcontainer.json instead of the bundled one (not with --devcontainer-repo).
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
