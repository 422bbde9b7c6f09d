use std::time::Duration;

/// Why a cluster operation stopped. Each kind has its own exit code in the CLI.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid kubeconfig: {0}")]
    Kubeconfig(String),
    #[error(
        "cannot reach the Kubernetes API server at {server}: {cause}; check that the cluster is running and that --kubeconfig/--context point at it"
    )]
    Unreachable { server: String, cause: String },
    #[error(
        "permission denied: you may not {verb} {resource}{scope}; ask a cluster admin for the Role in the README (claude-sandbox needs it to manage sandboxes)"
    )]
    Forbidden {
        verb: String,
        resource: String,
        /// ` in namespace X`, or empty for cluster-scoped resources.
        scope: String,
    },
    /// The cluster lacks something the sandbox needs (a RuntimeClass, a StorageClass, agent-sandbox).
    #[error("{0}")]
    Prerequisite(String),
    #[error("timed out after {}s waiting for {what}{details}", .after.as_secs())]
    Timeout {
        after: Duration,
        what: String,
        /// What was seen last, to say why.
        details: String,
    },
    #[error("sandbox {name} failed: {reason}{details}")]
    SandboxFailed {
        name: String,
        reason: String,
        details: String,
    },
    #[error("cannot read the controller manifest {source_name}: {message}")]
    Manifest {
        source_name: String,
        message: String,
    },
    #[error(
        "sandbox {name} not found in namespace {namespace}; `claude-sandbox list -A` shows every sandbox"
    )]
    NotFound { name: String, namespace: String },
    /// The sandbox exists but cannot be reached now (suspended, starting, failed).
    #[error("sandbox {name} is not running: {reason}")]
    NotRunning { name: String, reason: String },
    /// Exec, a tunnel or a copy failed inside the sandbox, or its stream broke.
    #[error("{0}")]
    Access(String),
    #[error("Kubernetes API error: {0}")]
    Api(kube::Error),
}

impl Error {
    /// Sorts a client error into what the user can act on.
    pub fn from_kube(error: kube::Error, server: &str) -> Self {
        match &error {
            kube::Error::Api(status) if status.code == 403 => Self::Forbidden {
                verb: "do".to_owned(),
                resource: "this".to_owned(),
                scope: format!(" ({})", status.message),
            },
            kube::Error::HyperError(_) | kube::Error::Service(_) => Self::Unreachable {
                server: server.to_owned(),
                cause: root_cause(&error),
            },
            _ => Self::Api(error),
        }
    }
}

fn root_cause(error: &dyn std::error::Error) -> String {
    let mut cause = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        cause = inner.to_string();
        source = inner.source();
    }
    cause
}
