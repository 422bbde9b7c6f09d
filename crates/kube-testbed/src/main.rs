//! `kube-testbed`: build the control-plane binaries, start a testbed that keeps running in the
//! background, stop it.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use kube_testbed::{Error, NodeKind, TestbedOptions, build, detached, paths};

#[derive(Parser)]
#[command(
    version,
    about = "A real Kubernetes 1.20 control plane with a simulated or real node and a simulated agent-sandbox controller, for tests"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Builds kube-apiserver, kube-controller-manager, kube-scheduler and the kubelet 1.20.2 (and a
    /// static pause) from Debian's source, installs the Debian packages a testbed runs (etcd,
    /// containerd, runc, runsc, CNI plugins, docker-registry…) and builds the test images; reuses
    /// what is there.
    Build,
    /// Starts a testbed in DIR, waits until it is ready, prints its kubeconfig path and returns,
    /// leaving it running.
    Start {
        /// The testbed directory (kubeconfig, logs/, pid files).
        #[arg(long)]
        dir: PathBuf,
        /// The agent-sandbox CRDs to install (a directory of YAML files), adapted for 1.20.
        /// Default: ../shared/agent-sandbox/current/crds beside the repository.
        #[arg(long, conflicts_with = "no_crds")]
        crds: Option<PathBuf>,
        /// Installs neither the CRDs nor the controller.
        #[arg(long)]
        no_crds: bool,
        /// The agent-sandbox release manifest whose controller objects (namespace, RBAC,
        /// Deployment) are applied. Default: the 2026-08-22 release beside the repository.
        #[arg(long, conflicts_with = "no_controller")]
        controller_manifest: Option<PathBuf>,
        /// Leaves the controller out: Sandboxes are stored but nothing reconciles them.
        #[arg(long)]
        no_controller: bool,
        /// Gives pods stand-in services: an HTTP server for container port 13337 (code-server's
        /// /healthz), a real sshd for 2222, a stub `claude` on the exec PATH.
        #[arg(long)]
        stand_ins: bool,
        /// The node: `simulated` (the fake kubelet, pods as processes on this machine) or `real`
        /// (kubelet, containerd, runc and gVisor, with the images of `kube-testbed build`, a
        /// registry and a git server; needs root). Writes DIR/testbed.env for a real node.
        #[arg(long, value_enum, default_value = "simulated")]
        node: NodeKind,
        /// The git repository a real node's git server serves (read-only, its working tree as
        /// it is now). Default: the repository of the current directory.
        #[arg(long)]
        git_repo: Option<PathBuf>,
    },
    /// Stops the testbed in DIR (exactly the processes of its pid files) and removes its files.
    Stop {
        #[arg(long)]
        dir: PathBuf,
    },
    /// Runs the fake kubelet, the simulated controller and the volume provisioner of the testbed
    /// in DIR (started by `start`).
    #[command(hide = true)]
    Agent {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        stand_ins: bool,
        #[arg(long)]
        real_node: bool,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "kube_testbed=info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run(Cli::parse().command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("kube-testbed: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<(), Error> {
    let runtime = || {
        tokio::runtime::Runtime::new()
            .map_err(|e| Error::Task(format!("starting the async runtime: {e}")))
    };
    match command {
        Command::Build => build::build().map(|_| ()),
        Command::Start {
            dir,
            crds,
            no_crds,
            controller_manifest,
            no_controller,
            stand_ins,
            node,
            git_repo,
        } => {
            let mut options = TestbedOptions::default()
                .dir(&dir)
                .stand_ins(stand_ins)
                .node(node);
            options.git_repo = git_repo;
            options.crds = crds.or(options.crds);
            options.controller_manifest = controller_manifest.or(options.controller_manifest);
            if no_controller {
                options = options.no_controller();
            }
            if no_crds {
                options = options.no_crds();
            }
            let agent = std::env::current_exe()
                .map_err(|e| Error::Task(format!("finding this program: {e}")))?;
            eprintln!(
                "kube-testbed: starting a testbed in {} (binaries: {})",
                dir.display(),
                paths::bin_dir().display()
            );
            let kubeconfig = runtime()?
                .block_on(detached::start(&options, &agent))
                .inspect_err(|_| {
                    if dir.join("logs").exists() {
                        eprintln!(
                            "kube-testbed: the logs are in {}",
                            dir.join("logs").display()
                        );
                    }
                })?;
            eprintln!(
                "kube-testbed: ready; use it with `export KUBECONFIG={}`, stop it with `kube-testbed stop --dir {}`",
                kubeconfig.display(),
                dir.display()
            );
            if node == NodeKind::Real {
                eprintln!(
                    "kube-testbed: images, registry and git server: `. {}`",
                    dir.join("testbed.env").display()
                );
            }
            println!("{}", kubeconfig.display());
            Ok(())
        }
        Command::Stop { dir } => {
            let stopped = detached::stop(&dir)?;
            eprintln!(
                "kube-testbed: stopped {}",
                if stopped.is_empty() {
                    "nothing (no process was running)".to_owned()
                } else {
                    stopped.join(", ")
                }
            );
            Ok(())
        }
        Command::Agent {
            dir,
            stand_ins,
            real_node,
        } => {
            let node = if real_node {
                NodeKind::Real
            } else {
                NodeKind::Simulated
            };
            runtime()?.block_on(detached::run_agent(&dir, stand_ins, node))
        }
    }
}
