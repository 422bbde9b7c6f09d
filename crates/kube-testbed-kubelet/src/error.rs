//! The crate's one error type.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("the pod watch ended")]
    WatchEnded,
    #[error("generating the kubelet's certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    #[error(
        "{program} not found: install Debian's `{package}` package (apt-get install {package})"
    )]
    MissingProgram {
        program: PathBuf,
        package: &'static str,
    },
    /// A process the kubelet runs (a pod's init process, sshd) did not start.
    #[error("{0}")]
    Process(String),
    #[error(
        "user {0} does not exist: run `kube-testbed build` (as root), which creates the user pods' \
         init processes run as"
    )]
    PodUserMissing(String),
    /// A container that cannot start, with the waiting reason and message its status shows.
    #[error("{reason}: {message}")]
    ContainerStart {
        reason: &'static str,
        message: String,
    },
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}
