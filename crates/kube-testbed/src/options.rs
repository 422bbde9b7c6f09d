//! What a testbed starts with.

use std::path::PathBuf;

use crate::{error::Error, paths};

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

    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    pub fn bin_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.bin_dir = Some(dir.into());
        self
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
