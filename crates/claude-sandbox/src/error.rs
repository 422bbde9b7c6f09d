use claude_sandbox_core::ConfigError;
use claude_sandbox_kube::Error as ClusterError;

/// How the process ends. Scripts can tell these apart; each is documented in the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Success = 0,
    /// The command failed for another reason, or found problems (`lint`).
    Failure = 1,
    /// The input was invalid: flags, config file, kubeconfig, devcontainer.json. Nothing changed.
    BadInput = 2,
    /// The API server could not be reached.
    Unreachable = 3,
    /// The user lacks a permission.
    Forbidden = 4,
    /// The sandbox did not become ready in time.
    Timeout = 5,
    /// The sandbox failed: image pull, crash loop, build error.
    SandboxFailed = 6,
    /// The cluster lacks something: agent-sandbox, its controller, a RuntimeClass, a StorageClass.
    Prerequisite = 7,
    /// No such sandbox.
    NotFound = 8,
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> Self {
        Self::from(exit as u8)
    }
}

/// Everything that stops a command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
}

impl Error {
    pub fn exit_code(&self) -> Exit {
        match self {
            Self::Config(_) => Exit::BadInput,
            Self::Cluster(error) => match error {
                ClusterError::Kubeconfig(_) | ClusterError::Manifest { .. } => Exit::BadInput,
                ClusterError::Unreachable { .. } => Exit::Unreachable,
                ClusterError::Forbidden { .. } => Exit::Forbidden,
                ClusterError::Timeout { .. } => Exit::Timeout,
                ClusterError::SandboxFailed { .. } => Exit::SandboxFailed,
                ClusterError::Prerequisite(_) => Exit::Prerequisite,
                ClusterError::NotFound { .. } => Exit::NotFound,
                ClusterError::Api(_) => Exit::Failure,
            },
            // A full disk or a closed terminal: the input was fine, the command did not finish.
            Self::Output(_) => Exit::Failure,
        }
    }
}
