//! Stage three: executing a parsed, validated command.

mod claude;
mod completions;
mod connect;
mod cp;
mod down;
mod exec;
mod lint;
mod list;
mod logs;
mod proxy;
mod render;
mod session;
mod shell;
mod ssh;
mod status;
mod suspend;
mod tunnel_args;
mod up;
mod verify;

use claude_sandbox_core::{Field, SandboxApiVersion, SandboxName};
use claude_sandbox_kube::{
    Error as ClusterError, agent_sandbox,
    cluster::{Cluster, ConnectOptions},
    sandbox_ref::SandboxRef,
};

use crate::{
    cli::{Cli, Command, GlobalArgs},
    error::{Error, Exit},
};

pub fn run(cli: Cli) -> Result<Exit, Error> {
    let global = cli.global;
    match cli.command {
        Command::Render(args) => render::run(&args, global.namespace.as_deref()),
        Command::Lint(args) => lint::run(&args),
        Command::Completions { shell } => completions::run(shell),
        command => {
            let runtime = tokio::runtime::Runtime::new()?;
            let result = runtime.block_on(run_on_cluster(command, &global));
            // A read of our stdin may still block a thread (`exec`, `proxy`): do not wait for it.
            runtime.shutdown_background();
            result
        }
    }
}

async fn run_on_cluster(command: Command, global: &GlobalArgs) -> Result<Exit, Error> {
    match command {
        Command::Up(args) => up::run(&args, global).await,
        Command::Status(args) => status::run(&args, global).await,
        Command::List(args) => list::run(&args, global).await,
        Command::Logs(args) => logs::run(&args, global).await,
        Command::Suspend(args) => suspend::suspend(&args, global).await,
        Command::Resume(args) => suspend::resume(&args, global).await,
        Command::Down(args) => down::run(&args, global).await,
        Command::Connect(args) => connect::run(&args, global).await,
        Command::Shell(args) => shell::run(&args, global).await,
        Command::Claude(args) => claude::run(&args, global).await,
        Command::Exec(args) => exec::run(&args, global).await,
        Command::Cp(args) => cp::run(&args, global).await,
        Command::Ssh(args) => ssh::run(&args, global).await,
        Command::SshConfig(args) => ssh::config(&args, global).await,
        Command::Proxy(args) => proxy::run(&args, global).await,
        Command::Verify(args) => verify::run(&args, global).await,
        Command::Render(_) | Command::Lint(_) | Command::Completions { .. } => {
            unreachable!("handled without a cluster")
        }
    }
}

/// Connects as kubectl would, to `namespace` (or the context's).
async fn connect(global: &GlobalArgs, namespace: Option<String>) -> Result<Cluster, Error> {
    Ok(Cluster::connect(&ConnectOptions {
        kubeconfig: global.kubeconfig.clone(),
        context: global.context.clone(),
        namespace: namespace.or_else(|| global.namespace.clone()),
    })
    .await?)
}

/// The served Sandbox API version; agent-sandbox must be installed.
async fn served_version(cluster: &Cluster) -> Result<SandboxApiVersion, Error> {
    agent_sandbox::served_version(cluster).await?.ok_or_else(|| {
        ClusterError::Prerequisite(
            "agent-sandbox is not installed on this cluster (no agents.x-k8s.io Sandbox API); `claude-sandbox up` installs it".to_owned(),
        )
        .into()
    })
}

/// A validated sandbox name and a handle on it.
async fn existing_sandbox(global: &GlobalArgs, name: &str) -> Result<(Cluster, SandboxRef), Error> {
    let name = SandboxName::parse(Field::new("NAME", "name"), name)?;
    let cluster = connect(global, None).await?;
    let version = served_version(&cluster).await?;
    let sandbox = SandboxRef::new(&cluster, version, name.as_str());
    Ok((cluster, sandbox))
}
