//! The CLI's testbeds: `kube-testbed start` leaves the control plane and a `kube-testbed agent`
//! process running in the background (pid files in the directory) and returns; `kube-testbed stop`
//! stops exactly those processes and removes what the testbed wrote.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use k8s_openapi::api::core::v1::Node;
use kube::{Api, Client};

use crate::{
    agent::Agent,
    build::TestImages,
    control_plane::ControlPlane,
    error::Error,
    kubeconfig,
    layout::Layout,
    node::NODE_NAME,
    options::{NodeKind, TestbedOptions},
    paths::{self, Binaries},
    process::{self, Mode, PROCESS_NAMES, Process},
    real_node::{NodeStart, RealNode},
    testbed::{install_cluster_objects, remove_paths},
};

const AGENT_TIMEOUT: Duration = Duration::from_secs(30);

/// Starts a testbed in `options.dir` whose simulation runs in `agent_program agent --dir DIR`
/// (this binary). Returns the admin kubeconfig once everything is ready.
pub async fn start(options: &TestbedOptions, agent_program: &Path) -> Result<PathBuf, Error> {
    let dir = options
        .dir
        .as_deref()
        .ok_or_else(|| Error::State("kube-testbed start needs --dir".to_owned()))?;
    options.check_paths()?;
    let layout = Layout::new(dir);
    if let Some(process) = running(&layout) {
        return Err(Error::State(format!(
            "a testbed already runs in {} ({} has pid {}): run `kube-testbed stop --dir {}` first",
            layout.dir().display(),
            process.name(),
            process.pid(),
            layout.dir().display()
        )));
    }
    std::fs::create_dir_all(layout.dir()).map_err(Error::io("creating", layout.dir()))?;
    // Whatever a crashed earlier run left.
    remove_paths(&layout.entries());
    let binaries = Binaries::find(&options.bin_dir.clone().unwrap_or_else(paths::bin_dir))?;
    let images = match options.node {
        NodeKind::Real => Some(TestImages::find_for(options)?),
        NodeKind::Simulated => None,
    };
    let mut control_plane =
        ControlPlane::start(&layout, binaries.clone(), Mode::Detached, options.node).await?;
    let started = async {
        let node = match &images {
            Some(images) => Some(
                RealNode::start(
                    &kubeconfig::client(control_plane.config())?,
                    NodeStart {
                        layout: &layout,
                        binaries: &binaries,
                        images,
                        git_repo: &options.git_repo_or_current()?,
                        mode: Mode::Detached,
                    },
                )
                .await?,
            ),
            None => None,
        };
        let started = start_simulation(&layout, &control_plane, options, agent_program).await;
        if let (Err(_), Some(node)) = (&started, &node) {
            node.stop();
        }
        started
    };
    if let Err(error) = started.await {
        control_plane.stop();
        process::stop_all(&layout);
        // The logs stay, to tell what went wrong; `stop` removes them.
        let logs = layout.logs();
        remove_paths(
            &layout
                .entries()
                .into_iter()
                .filter(|p| *p != logs)
                .collect::<Vec<_>>(),
        );
        return Err(error);
    }
    Ok(layout.kubeconfig())
}

async fn start_simulation(
    layout: &Layout,
    control_plane: &ControlPlane,
    options: &TestbedOptions,
    agent_program: &Path,
) -> Result<(), Error> {
    let client = kubeconfig::client(control_plane.config())?;
    let controller = install_cluster_objects(&client, options).await?;
    let mut args = vec![
        "agent".to_owned(),
        "--dir".to_owned(),
        layout.dir().display().to_string(),
    ];
    if options.stand_ins {
        args.push("--stand-ins".to_owned());
    }
    if options.node == NodeKind::Real {
        args.push("--real-node".to_owned());
    }
    let mut agent = Process::spawn(layout, process::AGENT, agent_program, &args, Mode::Detached)?;
    wait_for_node(&client, &mut agent).await?;
    if let Some(controller) = controller {
        controller.wait_ready(&client).await?;
    }
    Ok(())
}

/// Waits until the agent has registered the node with its kubelet's port.
async fn wait_for_node(client: &Client, agent: &mut Process) -> Result<(), Error> {
    let nodes = Api::<Node>::all(client.clone());
    let deadline = Instant::now() + AGENT_TIMEOUT;
    loop {
        if let Some(status) = agent.exited() {
            return Err(agent.error(format!("exited ({status})")));
        }
        let port = nodes
            .get_opt(NODE_NAME)
            .await?
            .and_then(|n| n.status)
            .and_then(|s| s.daemon_endpoints)
            .and_then(|d| d.kubelet_endpoint)
            .map_or(0, |e| e.port);
        if port > 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(agent.error(format!(
                "did not register node {NODE_NAME} within {} s",
                AGENT_TIMEOUT.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Stops the testbed in `dir`: every process with a pid file there whose command line names the
/// directory (TERM, then KILL after a timeout), then removes what the testbed wrote (and the
/// directory if that leaves it empty). Returns the names of the processes stopped.
pub fn stop(dir: &Path) -> Result<Vec<String>, Error> {
    let layout = Layout::new(dir);
    let is_testbed = [layout.kubeconfig(), layout.logs()]
        .iter()
        .any(|p| p.exists())
        || PROCESS_NAMES.iter().any(|p| layout.pid_file(p).exists());
    if !is_testbed {
        return Err(Error::State(format!(
            "no testbed in {}",
            layout.dir().display()
        )));
    }
    RealNode::stop_in(&layout);
    let stopped = process::stop_all(&layout);
    remove_paths(&layout.entries());
    // Only succeeds when empty: a directory holding anything else is the user's.
    let _ = std::fs::remove_dir(layout.dir());
    Ok(stopped)
}

/// `kube-testbed agent`: the kubelet, controller and provisioner of the testbed in `dir`, until
/// TERM or INT.
pub async fn run_agent(dir: &Path, stand_ins: bool, node_kind: NodeKind) -> Result<(), Error> {
    use tokio::signal::unix::{SignalKind, signal};
    let layout = Layout::new(dir);
    let config = kubeconfig::load(&layout.kubeconfig()).await?;
    let agent = Agent::start(kubeconfig::client(&config)?, &layout, stand_ins, node_kind).await?;
    let mut terminate =
        signal(SignalKind::terminate()).map_err(Error::io("handling signals in", layout.dir()))?;
    let mut interrupt =
        signal(SignalKind::interrupt()).map_err(Error::io("handling signals in", layout.dir()))?;
    tracing::info!(dir = %layout.dir().display(), "agent running");
    // Returning drops the kubelet, which stops the pods' stand-in services.
    tokio::select! {
        result = agent.run() => result,
        _ = terminate.recv() => Ok(()),
        _ = interrupt.recv() => Ok(()),
    }
}

/// A live process of the testbed in `layout`, if any.
fn running(layout: &Layout) -> Option<Process> {
    PROCESS_NAMES
        .iter()
        .find_map(|name| Process::from_pid_file(&layout.pid_file(name), layout.dir()))
}
