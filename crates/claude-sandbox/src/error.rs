use claude_sandbox_core::ConfigError;
use claude_sandbox_kube::Error as ClusterError;

/// How the process ends. Scripts can tell these apart; each is documented in the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Success,
    /// The command failed for another reason, or found problems (`lint`, `verify`).
    Failure,
    /// The input was invalid: flags, config file, kubeconfig, devcontainer.json. Nothing changed.
    BadInput,
    /// The API server could not be reached.
    Unreachable,
    /// The user lacks a permission.
    Forbidden,
    /// The sandbox did not become ready in time.
    Timeout,
    /// The sandbox failed: image pull, crash loop, build error.
    SandboxFailed,
    /// The cluster lacks something: agent-sandbox, its controller, a RuntimeClass, a StorageClass.
    Prerequisite,
    /// No such sandbox.
    NotFound,
    /// The sandbox exists but is not running (suspended, starting).
    NotRunning,
    /// The exit code of a command run in the sandbox (`exec`, `shell`, `claude`, `ssh`).
    Remote(u8),
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Self::Success => 0,
            Self::Failure => 1,
            Self::BadInput => 2,
            Self::Unreachable => 3,
            Self::Forbidden => 4,
            Self::Timeout => 5,
            Self::SandboxFailed => 6,
            Self::Prerequisite => 7,
            Self::NotFound => 8,
            Self::NotRunning => 9,
            Self::Remote(code) => code,
        }
    }

    /// A remote exit status as ours; codes outside 0-255 (never seen from Linux) become 255.
    pub fn remote(code: i32) -> Self {
        Self::Remote(u8::try_from(code).unwrap_or(u8::MAX))
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> Self {
        Self::from(exit.code())
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
                ClusterError::NotRunning { .. } => Exit::NotRunning,
                ClusterError::Api(_) | ClusterError::Access(_) => Exit::Failure,
            },
            // A full disk or a closed terminal: the input was fine, the command did not finish.
            Self::Output(_) => Exit::Failure,
        }
    }
}
