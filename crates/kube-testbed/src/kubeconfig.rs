//! Kubeconfig files for token users (the testbed's admin and users made by `create_user`), and
//! clients from kubeconfig files.

use std::path::Path;

use base64::Engine;
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::json;

use crate::error::Error;

/// The server a token kubeconfig points at and how clients trust it.
#[derive(Debug, Clone)]
pub(crate) struct ClusterAccess {
    pub server: String,
    /// PEM certificates of the cluster's CA; `None` with `insecure` for a cluster that has none.
    pub ca_pem: Option<String>,
    pub insecure: bool,
}

impl ClusterAccess {
    /// The server and CA of an existing client configuration (a real cluster's kubeconfig).
    pub fn of(config: &kube::Config) -> Self {
        let ca_pem = config
            .root_cert
            .as_ref()
            .map(|certs| certs.iter().map(|der| pem_certificate(der)).collect());
        Self {
            server: config
                .cluster_url
                .to_string()
                .trim_end_matches('/')
                .to_owned(),
            ca_pem,
            insecure: config.accept_invalid_certs,
        }
    }

    /// Writes a kubeconfig for `user` authenticating with `token` (mode 0600: it holds the token).
    pub fn write_kubeconfig(&self, path: &Path, user: &str, token: &str) -> Result<(), Error> {
        let mut cluster = json!({ "server": self.server });
        if let Some(ca) = &self.ca_pem {
            cluster["certificate-authority-data"] =
                json!(base64::engine::general_purpose::STANDARD.encode(ca));
        }
        if self.insecure {
            cluster["insecure-skip-tls-verify"] = json!(true);
        }
        let kubeconfig = json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{ "name": "kube-testbed", "cluster": cluster }],
            "users": [{ "name": user, "user": { "token": token } }],
            "contexts": [{ "name": user, "context": { "cluster": "kube-testbed", "user": user } }],
            "current-context": user,
        });
        let text =
            serde_saphyr::to_string(&kubeconfig).map_err(|e| Error::Kubeconfig(e.to_string()))?;
        write_private(path, &text)
    }
}

/// A client configuration from a kubeconfig file (its current context).
pub(crate) async fn load(path: &Path) -> Result<kube::Config, Error> {
    let kubeconfig = Kubeconfig::read_from(path)
        .map_err(|e| Error::Kubeconfig(format!("{}: {e}", path.display())))?;
    kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|e| Error::Kubeconfig(format!("{}: {e}", path.display())))
}

/// A client for `config`, made in the calling runtime (a client's connection pool belongs to the
/// runtime that made it).
pub(crate) fn client(config: &kube::Config) -> Result<kube::Client, Error> {
    Ok(kube::Client::try_from(config.clone())?)
}

fn pem_certificate(der: &[u8]) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = encoded
        .as_bytes()
        .chunks(64)
        .map(|chunk| std::str::from_utf8(chunk).expect("base64 is ASCII"))
        .collect();
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    )
}

fn write_private(path: &Path, text: &str) -> Result<(), Error> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(Error::io("creating", parent))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(Error::io("writing", path))?;
    file.write_all(text.as_bytes())
        .map_err(Error::io("writing", path))
}

/// A random token (128 bits, hex) for the API server's token file.
pub(crate) fn random_token() -> Result<String, Error> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(Error::io("reading", "/dev/urandom"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
