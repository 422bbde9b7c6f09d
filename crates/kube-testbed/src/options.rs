//! What a testbed starts with.

use std::path::PathBuf;

use crate::{error::Error, paths};

/// Which node runs the pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum NodeKind {
    /// The simulated kubelet of `kube-testbed-kubelet`: pods are processes on this machine.
    #[default]
    Simulated,
    /// A real kubelet with containerd, runc and gVisor's runsc, images from the testbed's registry.
    Real,
}

/// Options of [`Testbed::start_with`](crate::Testbed::start_with) and `kube-testbed start`.
#[derive(Debug, Clone)]
pub struct TestbedOptions {
    /// The testbed directory; `None`: a new temporary directory, removed when the testbed stops.
    pub dir: Option<PathBuf>,
    /// The control-plane binaries; `None`: `KUBE_TESTBED_BIN_DIR`, else the build cache.
    pub bin_dir: Option<PathBuf>,
    /// The agent-sandbox CRDs (a directory or file), adapted for 1.20; `None`: no CRDs (and no
    /// controller), so that an installer can be tested.
    pub crds: Option<PathBuf>,
    /// The agent-sandbox release manifest whose non-CRD objects (namespace, RBAC, Deployment) are
    /// applied; `None`: no controller, so the simulated controller stays idle.
    pub controller_manifest: Option<PathBuf>,
    /// Stand-in services for every pod: code-server's `/healthz` on container port 13337, a real
    /// sshd on 2222, a stub `claude` on the exec `PATH`.
    pub stand_ins: bool,
    /// The node kind.
    pub node: NodeKind,
    /// The git repository a real node's git server serves (read-only, at its checked-out commit
    /// with uncommitted changes); `None`: the repository of the current directory.
    pub git_repo: Option<PathBuf>,
}

/// Environment variable choosing the node kind of the testbed [`TestCluster`](crate::TestCluster)
/// starts: `real` (the default) or `simulated`.
pub const NODE_ENV: &str = "KUBE_TESTBED_NODE";

impl NodeKind {
    /// The kind [`NODE_ENV`] names, real when it names none; an error for another value.
    pub fn from_env() -> Result<Self, Error> {
        match std::env::var(NODE_ENV).as_deref() {
            Err(_) | Ok("") | Ok("real") => Ok(Self::Real),
            Ok("simulated") => Ok(Self::Simulated),
            Ok(other) => Err(Error::State(format!(
                "{NODE_ENV}={other:?}: use `real` or `simulated`"
            ))),
        }
    }
}

impl Default for TestbedOptions {
    /// The upstream CRDs and controller, no stand-ins.
    fn default() -> Self {
        Self {
            dir: None,
            bin_dir: None,
            crds: Some(paths::default_crds_dir()),
            controller_manifest: Some(paths::default_controller_manifest()),
            stand_ins: false,
            node: NodeKind::Simulated,
            git_repo: None,
        }
    }
}

impl TestbedOptions {
    /// Neither CRDs nor controller.
    pub fn no_crds(mut self) -> Self {
        self.crds = None;
        self.controller_manifest = None;
        self
    }

    /// CRDs without the controller.
    pub fn no_controller(mut self) -> Self {
        self.controller_manifest = None;
        self
    }

    pub fn crds(mut self, path: impl Into<PathBuf>) -> Self {
        self.crds = Some(path.into());
        self
    }

    pub fn controller_manifest(mut self, path: impl Into<PathBuf>) -> Self {
        self.controller_manifest = Some(path.into());
        self
    }

    pub fn stand_ins(mut self, on: bool) -> Self {
        self.stand_ins = on;
        self
    }

    pub fn node(mut self, node: NodeKind) -> Self {
        self.node = node;
        self
    }

    pub fn git_repo(mut self, repo: impl Into<PathBuf>) -> Self {
        self.git_repo = Some(repo.into());
        self
    }

    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    pub fn bin_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.bin_dir = Some(dir.into());
        self
    }

    /// The repository the git server serves: `git_repo`, else the current directory (whose
    /// repository the snapshot finds).
    pub(crate) fn git_repo_or_current(&self) -> Result<PathBuf, Error> {
        match &self.git_repo {
            Some(repo) => Ok(repo.clone()),
            None => std::env::current_dir().map_err(Error::io("reading", ".")),
        }
    }

    /// A controller without CRDs cannot work: the manifest is only applied with CRDs.
    pub(crate) fn effective_controller_manifest(&self) -> Option<&std::path::Path> {
        self.crds.as_ref().and(self.controller_manifest.as_deref())
    }

    /// An error naming a manifest path that does not exist, before anything is started.
    pub(crate) fn check_paths(&self) -> Result<(), Error> {
        let paths = [self.crds.as_deref(), self.effective_controller_manifest()];
        match paths.into_iter().flatten().find(|p| !p.exists()) {
            None => Ok(()),
            Some(path) => Err(Error::Manifest {
                path: path.to_owned(),
                message: format!(
                    "not found (the upstream agent-sandbox test data is looked for in {}; {} moves it)",
                    paths::agent_sandbox_data().display(),
                    paths::AGENT_SANDBOX_DATA_ENV
                ),
            }),
        }
    }
}
