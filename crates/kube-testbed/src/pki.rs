//! The testbed's keys and certificates, generated per testbed: a CA, the API server's serving
//! certificate for 127.0.0.1 (so clients verify TLS as with a real cluster) and the
//! service-account signing key.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

use crate::error::Error;

/// Files written by [`Pki::generate`].
#[derive(Debug, Clone)]
pub(crate) struct Pki {
    pub ca_cert: PathBuf,
    pub serving_cert: PathBuf,
    pub serving_key: PathBuf,
    pub service_account_key: PathBuf,
    pub service_account_pub: PathBuf,
    /// The API server's client certificate towards kubelets (in `system:masters`, so a real
    /// kubelet's webhook authorization lets it exec, port-forward and read logs).
    pub kubelet_client_cert: PathBuf,
    pub kubelet_client_key: PathBuf,
    /// The CA certificate (PEM), for kubeconfigs.
    pub ca_pem: String,
}

impl Pki {
    /// Generates everything into `dir` (ECDSA P-256 keys, which Kubernetes 1.20 accepts everywhere).
    pub fn generate(dir: &Path) -> Result<Self, Error> {
        std::fs::create_dir_all(dir).map_err(Error::io("creating", dir))?;
        let pki = Self::paths(dir);

        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::default();
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "kube-testbed CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let ca = Issuer::new(ca_params, ca_key);

        let serving_key = KeyPair::generate()?;
        let mut serving_params = CertificateParams::new(vec![
            "127.0.0.1".to_owned(),
            "localhost".to_owned(),
            "kubernetes".to_owned(),
            "kubernetes.default".to_owned(),
            "kubernetes.default.svc".to_owned(),
            "kubernetes.default.svc.cluster.local".to_owned(),
        ])?;
        serving_params
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        let serving_cert = serving_params.signed_by(&serving_key, &ca)?;

        let service_account = KeyPair::generate()?;

        let kubelet_client_key = KeyPair::generate()?;
        let mut kubelet_client_params = CertificateParams::default();
        kubelet_client_params
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver-kubelet-client");
        kubelet_client_params
            .distinguished_name
            .push(DnType::OrganizationName, "system:masters");
        let kubelet_client_cert = kubelet_client_params.signed_by(&kubelet_client_key, &ca)?;

        let ca_pem = ca_cert.pem();
        write(&pki.ca_cert, &ca_pem)?;
        write(&pki.serving_cert, &serving_cert.pem())?;
        write(&pki.serving_key, &serving_key.serialize_pem())?;
        write(&pki.service_account_key, &service_account.serialize_pem())?;
        // The public half separately: 1.20 reads EC public keys from PKIX PEM, not from PKCS#8.
        write(&pki.service_account_pub, &service_account.public_key_pem())?;
        write(&pki.kubelet_client_cert, &kubelet_client_cert.pem())?;
        write(&pki.kubelet_client_key, &kubelet_client_key.serialize_pem())?;
        Ok(Self { ca_pem, ..pki })
    }

    /// The files' paths in `dir`.
    pub(crate) fn paths(dir: &Path) -> Self {
        Self {
            ca_cert: dir.join("ca.crt"),
            serving_cert: dir.join("apiserver.crt"),
            serving_key: dir.join("apiserver.key"),
            service_account_key: dir.join("service-account.key"),
            service_account_pub: dir.join("service-account.pub"),
            kubelet_client_cert: dir.join("apiserver-kubelet-client.crt"),
            kubelet_client_key: dir.join("apiserver-kubelet-client.key"),
            ca_pem: String::new(),
        }
    }
}

fn write(path: &Path, contents: &str) -> Result<(), Error> {
    std::fs::write(path, contents).map_err(Error::io("writing", path))
}
