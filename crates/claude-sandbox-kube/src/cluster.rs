//! Connecting to a cluster the way kubectl does: `--kubeconfig`, `KUBECONFIG`, `--context`,
//! `-n`, or the in-cluster service account.

use std::{path::PathBuf, time::Duration};

use kube::{
    Client, Config,
    config::{KubeConfigOptions, Kubeconfig},
};

use crate::error::Error;

/// How to reach the cluster, as the user said it.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub namespace: Option<String>,
}

/// A client and the namespace commands work in.
#[derive(Clone)]
pub struct Cluster {
    pub client: Client,
    pub namespace: String,
    /// The API server's URL, for messages.
    pub server: String,
    /// Whether exec can tell a command that its stdin ended (WebSocket protocol v5, served from
    /// Kubernetes 1.30 on); see [`crate::exec`].
    pub stdin_close: bool,
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

impl Cluster {
    /// Builds a client and checks that the API server answers.
    pub async fn connect(options: &ConnectOptions) -> Result<Self, Error> {
        let config = load_config(options).await?;
        let server = config.cluster_url.to_string();
        let namespace = options
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        let client = Client::try_from(config).map_err(|e| Error::Kubeconfig(e.to_string()))?;
        let version =
            client
                .apiserver_version()
                .await
                .map_err(|e| match Error::from_kube(e, &server) {
                    Error::Api(e) => Error::Unreachable {
                        server: server.clone(),
                        cause: e.to_string(),
                    },
                    other => other,
                })?;
        let stdin_close = serves_stdin_close(&version.major, &version.minor);
        tracing::debug!(%server, version = %version.git_version, %namespace, stdin_close, "connected");
        Ok(Self {
            client,
            namespace,
            server,
            stdin_close,
        })
    }

    pub fn error(&self, error: kube::Error) -> Error {
        Error::from_kube(error, &self.server)
    }
}

/// Kubernetes 1.30 and later serve exec's WebSocket protocol v5, which can close stdin alone.
/// Minor versions may carry a suffix (`"20+"` on some managed clusters).
fn serves_stdin_close(major: &str, minor: &str) -> bool {
    let number = |s: &str| {
        s.trim_end_matches(|c: char| !c.is_ascii_digit())
            .parse::<u32>()
            .ok()
    };
    match (number(major), number(minor)) {
        (Some(major), Some(minor)) => (major, minor) >= (1, 30),
        // An unreadable version: assume a current server.
        _ => true,
    }
}

async fn load_config(options: &ConnectOptions) -> Result<Config, Error> {
    let kube_options = KubeConfigOptions {
        context: options.context.clone(),
        ..KubeConfigOptions::default()
    };
    let mut config = match &options.kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path)
                .map_err(|e| Error::Kubeconfig(format!("{}: {e}", path.display())))?;
            Config::from_custom_kubeconfig(kubeconfig, &kube_options)
                .await
                .map_err(|e| Error::Kubeconfig(format!("{}: {e}", path.display())))?
        }
        None if options.context.is_some() => Config::from_kubeconfig(&kube_options)
            .await
            .map_err(|e| Error::Kubeconfig(e.to_string()))?,
        None => Config::infer().await.map_err(|e| {
            Error::Kubeconfig(format!(
                "{e}; point --kubeconfig or KUBECONFIG at a kubeconfig file, or run inside a cluster"
            ))
        })?,
    };
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    Ok(config)
}

#[cfg(test)]
mod tests {
    #[test]
    fn stdin_close_needs_kubernetes_1_30() {
        assert!(!super::serves_stdin_close("1", "20"));
        assert!(!super::serves_stdin_close("1", "29+"));
        assert!(super::serves_stdin_close("1", "30"));
        assert!(super::serves_stdin_close("1", "33+"));
        assert!(super::serves_stdin_close("", ""));
    }
}
