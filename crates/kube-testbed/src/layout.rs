//! The files of one testbed, all under its directory (so that several testbeds never share
//! anything, and `stop` knows exactly what is its own).

use std::path::{Path, PathBuf};

/// Paths inside a testbed directory.
#[derive(Debug, Clone)]
pub struct Layout {
    dir: PathBuf,
}

impl Layout {
    /// `dir` is made absolute: it appears in every process's command line, which `stop` checks.
    pub fn new(dir: &Path) -> Self {
        let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned());
        Self { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The admin kubeconfig (token in `system:masters`, the CA embedded).
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    pub fn pki(&self) -> PathBuf {
        self.dir.join("pki")
    }

    /// The API server's `--token-auth-file`.
    pub fn tokens(&self) -> PathBuf {
        self.pki().join("tokens.csv")
    }

    pub fn etcd_data(&self) -> PathBuf {
        self.dir.join("etcd")
    }

    pub fn logs(&self) -> PathBuf {
        self.dir.join("logs")
    }

    pub fn log(&self, process: &str) -> PathBuf {
        self.logs().join(format!("{process}.log"))
    }

    /// A process's pid file, at the top of the directory.
    pub fn pid_file(&self, process: &str) -> PathBuf {
        self.dir.join(format!("{process}.pid"))
    }

    /// The fake kubelet's pods (`pods/<namespace>/<pod>/`).
    pub fn pods(&self) -> PathBuf {
        self.dir.join("pods")
    }

    /// The hostPath volumes of provisioned PersistentVolumes.
    pub fn volumes(&self) -> PathBuf {
        self.dir.join("volumes")
    }

    /// The kubelet's kubeconfig (a token of user `system:node:<node>`).
    pub fn kubelet_kubeconfig(&self) -> PathBuf {
        self.pki().join("kubelet.kubeconfig")
    }

    /// A real node's files: containerd's, the kubelet's, the registry's and git server's
    /// configuration, the CNI configuration.
    pub fn node(&self) -> PathBuf {
        self.dir.join("node")
    }

    /// What a shell or a test sources to use the testbed's images and git server.
    pub fn env_file(&self) -> PathBuf {
        self.dir.join("testbed.env")
    }

    /// Kubeconfigs of users made by `create_user`.
    pub fn users(&self) -> PathBuf {
        self.dir.join("users")
    }

    /// Everything a testbed writes here, for `stop` to remove (the directory itself may be the
    /// user's).
    pub fn entries(&self) -> Vec<PathBuf> {
        let mut entries = vec![
            self.kubeconfig(),
            self.pki(),
            self.etcd_data(),
            self.logs(),
            self.pods(),
            self.volumes(),
            self.users(),
            self.node(),
            self.env_file(),
        ];
        entries.extend(
            crate::process::PROCESS_NAMES
                .iter()
                .map(|p| self.pid_file(p)),
        );
        entries
    }

    /// What goes when the testbed goes: the whole directory when the testbed made it, else only
    /// what it wrote there.
    pub fn to_remove(&self, owned: bool) -> Vec<PathBuf> {
        if owned {
            vec![self.dir.clone()]
        } else {
            self.entries()
        }
    }
}
