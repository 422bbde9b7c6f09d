use std::path::PathBuf;

/// Everything that can go wrong while building, starting, using or stopping a testbed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The control-plane binaries are not there: they have to be built first.
    #[error(
        "the Kubernetes 1.20.2 control-plane binaries are missing in {dir}: run `kube-testbed build` \
         (or point KUBE_TESTBED_BIN_DIR at a directory holding kube-apiserver, kube-controller-manager \
         and kube-scheduler)"
    )]
    BinariesMissing { dir: PathBuf },

    /// The test images of the current recipes are not all in the cache's registry folder.
    #[error(
        "the test images {missing} are not in {}: run `kube-testbed build`",
        root.display()
    )]
    ImagesMissing { root: PathBuf, missing: String },

    /// A program the testbed runs is not installed.
    #[error("{program} is not installed: {hint}")]
    ProgramMissing { program: String, hint: String },

    /// `kube-testbed build` cannot build on this machine.
    #[error("{0}")]
    UnsupportedSystem(String),

    /// A build step failed.
    #[error("build step `{step}` failed: {message}")]
    Build { step: String, message: String },

    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    /// A control-plane process could not be started or exited early.
    #[error("{component} {message}; its log {}:\n{log_tail}", log.display())]
    Component {
        component: String,
        message: String,
        log: PathBuf,
        log_tail: String,
    },

    /// Something did not happen in time.
    #[error("timed out after {seconds} s waiting for {what}")]
    Timeout { what: String, seconds: u64 },

    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),

    #[error("kubeconfig: {0}")]
    Kubeconfig(String),

    /// A manifest (CRDs, controller) could not be read or applied.
    #[error("manifest {}: {message}", path.display())]
    Manifest { path: PathBuf, message: String },

    #[error("certificates: {0}")]
    Certificates(#[from] rcgen::Error),

    #[error("the fake kubelet: {0}")]
    Kubelet(#[from] kube_testbed_kubelet::Error),

    /// The fake kubelet's API could not be found or used.
    #[error("the fake kubelet's API: {0}")]
    KubeletApi(String),

    #[error("the simulated agent-sandbox controller: {0}")]
    Controller(#[from] kube_testbed_controller::Error),

    /// `start` found a testbed already running, or `stop` found something unexpected.
    #[error("{0}")]
    State(String),

    #[error("a background task failed: {0}")]
    Task(String),
}

impl Error {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    }

    pub(crate) fn timeout(what: impl Into<String>, timeout: std::time::Duration) -> Error {
        Error::Timeout {
            what: what.into(),
            seconds: timeout.as_secs(),
        }
    }
}
