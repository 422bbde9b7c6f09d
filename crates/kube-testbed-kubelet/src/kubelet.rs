//! [`Kubelet`]: the API bound first (so the Node can point at its port), then served together with
//! the pod lifecycle.

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::{
    api, config::KubeletConfig, error::Error, lifecycle::Lifecycle, pod_runtime::PodRegistry, tls,
};

/// The fake kubelet of one node.
pub struct Kubelet {
    config: KubeletConfig,
    client: kube::Client,
    listener: TcpListener,
    tls: TlsAcceptor,
    port: u16,
}

impl std::fmt::Debug for Kubelet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kubelet")
            .field("config", &self.config)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Kubelet {
    /// Binds the kubelet API (HTTPS, self-signed cert, 127.0.0.1, free port).
    pub async fn bind(config: KubeletConfig, client: kube::Client) -> Result<Kubelet, Error> {
        tokio::fs::create_dir_all(&config.pods_dir)
            .await
            .map_err(|e| Error::io(format!("creating {}", config.pods_dir.display()), e))?;
        let (tls, _certificate) = tls::self_signed()?;
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| Error::io("binding the kubelet API", e))?;
        let port = listener
            .local_addr()
            .map_err(|e| Error::io("reading the kubelet API's port", e))?
            .port();
        Ok(Self {
            config,
            client,
            listener,
            tls,
            port,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves the API and runs the pod lifecycle until the future is dropped (which stops the
    /// pods' processes and stand-ins) or the pod watch fails for good.
    pub async fn run(self) -> Result<(), Error> {
        let registry = Arc::new(PodRegistry::default());
        let namespaces = nix::unistd::geteuid().is_root();
        if !namespaces {
            tracing::info!(
                "not running as root: pods get no namespaces of their own (no init process; exec \
                 runs host processes, stand-ins listen on free host ports)"
            );
        }
        let lifecycle = Lifecycle::new(
            self.client,
            Arc::new(self.config),
            registry.clone(),
            namespaces,
        );
        tokio::select! {
            () = api::serve(self.listener, self.tls, registry) => Ok(()),
            result = lifecycle.run() => result,
        }
    }
}
