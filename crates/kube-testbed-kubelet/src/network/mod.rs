//! Where a pod's ports are: in its own network namespace when the kubelet runs as root (any
//! container port, as in a real pod), else on the host's loopback, where each stand-in gets a free
//! port of its own.

mod namespaces;

use std::{ffi::OsString, io, sync::Arc};

use tokio::net::{TcpListener, TcpStream};

pub(crate) use namespaces::{Enter, PodNamespaces};

use crate::{error::Error, programs};

#[derive(Debug, Clone)]
pub(crate) enum PodNetwork {
    Host,
    Namespaces(Arc<PodNamespaces>),
}

impl PodNetwork {
    /// A listener for container port `port`: that port in the pod's namespace, or a free port on
    /// the host.
    pub async fn listen(&self, port: u16) -> io::Result<TcpListener> {
        match self {
            Self::Host => TcpListener::bind(("127.0.0.1", 0)).await,
            Self::Namespaces(namespaces) => namespaces.listen(port).await,
        }
    }

    /// Connects to `127.0.0.1:port` in the pod's network; errors read like Go's (`dial tcp
    /// 127.0.0.1:2222: connect: connection refused`), as the kubelet's do.
    pub async fn connect(&self, port: u16) -> io::Result<TcpStream> {
        let connected = match self {
            Self::Host => TcpStream::connect(("127.0.0.1", port)).await,
            Self::Namespaces(namespaces) => namespaces.connect(port).await,
        };
        connected.map_err(|error| {
            io::Error::new(
                error.kind(),
                format!(
                    "dial tcp 127.0.0.1:{port}: connect: {}",
                    crate::process::os_error_text(&error)
                ),
            )
        })
    }

    /// The program and arguments that run a command (appended) in the pod's network.
    pub fn command_prefix(&self) -> Result<Vec<OsString>, Error> {
        match self {
            Self::Host => Ok(Vec::new()),
            Self::Namespaces(namespaces) => {
                let mut prefix = vec![programs::NSENTER.find()?.into_os_string()];
                prefix.extend(namespaces.nsenter_args(Enter::Network));
                prefix.push("--".into());
                Ok(prefix)
            }
        }
    }
}
