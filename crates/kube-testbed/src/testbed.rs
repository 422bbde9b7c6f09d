//! [`Testbed`]: a control plane with the simulated kubelet, controller and provisioner running in
//! this process, stopped when dropped.

use std::{
    io::Write,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use k8s_openapi::api::rbac::v1::PolicyRule;
use kube::Client;
use tempfile::TempDir;
use tokio::runtime::Runtime;

use crate::{
    agent::Agent,
    agent_sandbox::{self, Workload},
    behaviours::{self, BehaviourRule},
    bootstrap,
    build::TestImages,
    control_plane::ControlPlane,
    error::Error,
    guard::Guard,
    kubeconfig::{self, ClusterAccess},
    kubelet_api,
    layout::Layout,
    options::{NodeKind, TestbedOptions},
    paths::{self, Binaries},
    process::{self, Mode},
    real_node::{NodeEnv, NodeStart, RealNode},
    users,
};

/// Set to `1` to keep a testbed's directory (logs, etcd data) after it stops.
pub const KEEP_ENV: &str = "KUBE_TESTBED_KEEP";

/// A running testbed. Dropping it stops every process it started and removes its directory
/// (unless `KUBE_TESTBED_KEEP=1`); a guard process does the same if this process dies first.
pub struct Testbed {
    layout: Layout,
    /// The directory when the testbed made it.
    temp_dir: Option<TempDir>,
    control_plane: tokio::sync::Mutex<ControlPlane>,
    config: kube::Config,
    /// Runs the kubelet, controller and provisioner: a runtime of the testbed's own, so that a
    /// testbed shared by tests outlives each test's runtime.
    runtime: Option<Runtime>,
    /// The real node, when asked for.
    node: Option<RealNode>,
    guard: Option<Guard>,
}

impl std::fmt::Debug for Testbed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Testbed")
            .field("dir", &self.layout.dir())
            .finish_non_exhaustive()
    }
}

impl Testbed {
    /// Starts a testbed with the default options: the upstream CRDs and controller, no stand-ins.
    pub async fn start() -> Result<Self, Error> {
        Self::start_with(TestbedOptions::default()).await
    }

    /// Starts a testbed and waits until it is ready: API server ready, `default` ServiceAccount
    /// there, node registered, CRDs established, the controller's pod Ready.
    pub async fn start_with(options: TestbedOptions) -> Result<Self, Error> {
        options.check_paths()?;
        let binaries = Binaries::find(&options.bin_dir.clone().unwrap_or_else(paths::bin_dir))?;
        let images = match options.node {
            NodeKind::Real => Some(TestImages::find_for(&options)?),
            NodeKind::Simulated => None,
        };
        let (layout, temp_dir) = match &options.dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(Error::io("creating", dir))?;
                (Layout::new(dir), None)
            }
            None => {
                let temp = TempDir::with_prefix("kube-testbed-")
                    .map_err(Error::io("creating", std::env::temp_dir()))?;
                // Passable (not readable) by others: the pod user's processes reach their pod's
                // files inside.
                std::fs::set_permissions(temp.path(), std::fs::Permissions::from_mode(0o711))
                    .map_err(Error::io("changing the permissions of", temp.path()))?;
                (Layout::new(temp.path()), Some(temp))
            }
        };
        let keep = keep();
        let remove = if keep {
            Vec::new()
        } else {
            layout.to_remove(temp_dir.is_some())
        };
        let guard = Guard::start(&layout, &remove)?;
        let control_plane = match ControlPlane::start(
            &layout,
            binaries.clone(),
            Mode::Attached,
            options.node,
        )
        .await
        {
            Ok(control_plane) => control_plane,
            Err(error) => {
                guard.release();
                return Err(error);
            }
        };
        let config = control_plane.config().clone();
        // From here on, dropping the testbed cleans up after a failed start too.
        let mut testbed = Self {
            layout,
            temp_dir,
            control_plane: tokio::sync::Mutex::new(control_plane),
            config,
            runtime: None,
            node: None,
            guard: Some(guard),
        };
        if let Some(images) = &images {
            let git_repo = options.git_repo_or_current()?;
            let node = RealNode::start(
                &testbed.client()?,
                NodeStart {
                    layout: &testbed.layout,
                    binaries: &binaries,
                    images,
                    git_repo: &git_repo,
                    mode: Mode::Attached,
                },
            )
            .await?;
            testbed.node = Some(node);
        }
        testbed.start_simulation(&options).await?;
        Ok(testbed)
    }

    async fn start_simulation(&mut self, options: &TestbedOptions) -> Result<(), Error> {
        let client = self.client()?;
        let controller = install_cluster_objects(&client, options).await?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("kube-testbed")
            .enable_all()
            .build()
            .map_err(Error::io("starting a runtime for", self.layout.dir()))?;
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let (config, layout, stand_ins, node_kind) = (
            self.config.clone(),
            self.layout.clone(),
            options.stand_ins,
            options.node,
        );
        runtime.spawn(async move {
            let started = match kubeconfig::client(&config) {
                Ok(client) => Agent::start(client, &layout, stand_ins, node_kind).await,
                Err(error) => Err(error),
            };
            match started {
                Ok(agent) => {
                    let _ = started_tx.send(Ok(()));
                    if let Err(error) = agent.run().await {
                        log_agent_failure(&layout, &error);
                    }
                }
                Err(error) => {
                    let _ = started_tx.send(Err(error));
                }
            }
        });
        self.runtime = Some(runtime);
        started_rx.await.map_err(|_| {
            Error::Task("the kubelet, controller and provisioner task ended".to_owned())
        })??;
        if let Some(controller) = controller {
            controller.wait_ready(&client).await?;
        }
        Ok(())
    }

    /// The admin kubeconfig (for `kubectl --kubeconfig` and `KUBECONFIG`).
    pub fn kubeconfig(&self) -> PathBuf {
        self.layout.kubeconfig()
    }

    /// The testbed directory (logs in `logs/`).
    pub fn dir(&self) -> &Path {
        self.layout.dir()
    }

    /// The admin client configuration.
    pub fn config(&self) -> &kube::Config {
        &self.config
    }

    /// A new admin client, for the calling runtime.
    pub fn client(&self) -> Result<Client, Error> {
        kubeconfig::client(&self.config)
    }

    /// The real node's images, registry and git server (`None` on a simulated node).
    pub fn node_env(&self) -> Option<&NodeEnv> {
        self.node.as_ref().map(RealNode::env)
    }

    /// The fake kubelet's directory of a pod: its `bin/` is first on the exec `PATH`, so tests put
    /// stub commands there.
    pub fn pod_dir(&self, namespace: &str, pod: &str) -> PathBuf {
        kube_testbed_kubelet::pod_dir(&self.layout.pods(), namespace, pod)
    }

    /// A user allowed exactly `rules` in `namespace`; returns its kubeconfig.
    pub async fn create_user(
        &self,
        name: &str,
        namespace: &str,
        rules: &[PolicyRule],
    ) -> Result<PathBuf, Error> {
        let access = ClusterAccess::of(&self.config);
        users::create_user(
            &self.client()?,
            &access,
            &self.layout.users(),
            name,
            namespace,
            rules,
        )
        .await
    }

    /// Cuts every live exec and port-forward session of pod `namespace/pod` abruptly, as a kubelet
    /// restart would (new sessions work); returns how many there were.
    pub async fn drop_streams(&self, namespace: &str, pod: &str) -> Result<usize, Error> {
        kubelet_api::drop_streams(&self.client()?, namespace, pod).await
    }

    /// Restarts the real node's kubelet (see [`NodeKind::Real`](crate::NodeKind)), returning once
    /// the node is Ready again: containers keep running, every stream through the kubelet is cut.
    /// An error on a simulated node.
    pub async fn restart_kubelet(&self) -> Result<(), Error> {
        let node = self.node.as_ref().ok_or_else(|| {
            Error::State("restart_kubelet needs a real node (`NodeKind::Real`)".to_owned())
        })?;
        node.restart_kubelet(&self.client()?).await
    }

    /// Replaces the testbed-wide behaviour rules of the fake kubelet.
    pub async fn set_behaviour_rules(&self, rules: &[BehaviourRule]) -> Result<(), Error> {
        behaviours::set_rules(&self.client()?, rules).await
    }

    /// Stops the API server and starts it again on the same port and data, returning once it is
    /// ready again.
    pub async fn restart_apiserver(&self) -> Result<(), Error> {
        self.control_plane.lock().await.restart_apiserver().await
    }

    /// An error if a control-plane process has died.
    pub async fn check_running(&self) -> Result<(), Error> {
        self.control_plane.lock().await.check_running()
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
        if let Some(node) = self.node.take() {
            node.stop();
        }
        self.control_plane.get_mut().stop();
        // Whatever else left a pid file (the stand-in sshd servers).
        process::stop_all(&self.layout);
        if keep() {
            eprintln!(
                "kube-testbed: kept {} ({KEEP_ENV}=1)",
                self.layout.dir().display()
            );
            if let Some(temp_dir) = self.temp_dir.take() {
                let _ = temp_dir.keep();
            }
        } else {
            match self.temp_dir.take() {
                // Dropping it removes the directory.
                Some(temp_dir) => drop(temp_dir),
                None => remove_paths(&self.layout.to_remove(false)),
            }
        }
        if let Some(guard) = self.guard.take() {
            guard.release();
        }
    }
}

/// What follows the control plane's start, for the library and the CLI alike: the default
/// objects, the `default` ServiceAccount, agent-sandbox. Returns the controller to wait for.
pub(crate) async fn install_cluster_objects(
    client: &Client,
    options: &TestbedOptions,
) -> Result<Option<Workload>, Error> {
    let install = async {
        bootstrap::install(client).await?;
        agent_sandbox::install(
            client,
            options.crds.as_deref(),
            options.effective_controller_manifest(),
        )
        .await
    };
    // The controller manager makes the account meanwhile.
    let (controller, ()) = tokio::try_join!(
        install,
        bootstrap::wait_for_default_service_account(client, "default", true)
    )?;
    Ok(controller)
}

pub(crate) fn remove_paths(paths: &[PathBuf]) {
    for path in paths {
        let _ = std::fs::remove_dir_all(path).or_else(|_| std::fs::remove_file(path));
    }
}

fn keep() -> bool {
    std::env::var(KEEP_ENV).is_ok_and(|v| v == "1")
}

/// The in-process agent has no log of its own: its failure goes where the CLI's agent logs.
fn log_agent_failure(layout: &Layout, error: &Error) {
    let line = format!("kube-testbed agent failed: {error}\n");
    let appended = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(layout.log(process::AGENT))
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if appended.is_err() {
        eprint!("{line}");
    }
}
