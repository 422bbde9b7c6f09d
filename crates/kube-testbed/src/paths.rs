//! Where things are outside a testbed's directory: the cached binaries, etcd, and the upstream
//! agent-sandbox manifests (test data beside the repository).

use std::path::{Path, PathBuf};

use crate::error::Error;

/// The Kubernetes version the control plane is built from (Debian bookworm's source package).
pub const KUBERNETES_VERSION: &str = "1.20.2";

/// The programs built from the Kubernetes source in one `make` (the kubelet shares most of its
/// compiled packages with the control plane, so one build is much faster than two).
pub const KUBERNETES_PROGRAMS: [&str; 4] = [
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
];

/// The pod sandbox's `pause` program, compiled statically from the same source tree
/// (`build/pause/linux/pause.c`).
pub const PAUSE_PROGRAM: &str = "pause";

/// Environment variable naming a directory with already-built control-plane binaries.
pub const BIN_DIR_ENV: &str = "KUBE_TESTBED_BIN_DIR";

/// Environment variable naming the upstream agent-sandbox test data (default: `../shared/agent-sandbox`
/// beside the repository).
pub const AGENT_SANDBOX_DATA_ENV: &str = "KUBE_TESTBED_AGENT_SANDBOX_DIR";

/// `${XDG_CACHE_HOME:-$HOME/.cache}/claude-sandbox/kubernetes-1.20.2`: the build's home, outside the
/// repository so that every checkout shares one build.
pub fn cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/root"));
            home.join(".cache")
        });
    base.join("claude-sandbox")
        .join(format!("kubernetes-{KUBERNETES_VERSION}"))
}

/// The directory the control-plane binaries are taken from: `KUBE_TESTBED_BIN_DIR`, else the cache.
pub fn bin_dir() -> PathBuf {
    match std::env::var_os(BIN_DIR_ENV).filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => cache_dir().join("bin"),
    }
}

/// The control-plane binaries, checked to exist.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub etcd: PathBuf,
    pub kube_apiserver: PathBuf,
    pub kube_controller_manager: PathBuf,
    pub kube_scheduler: PathBuf,
    pub kubelet: PathBuf,
    pub pause: PathBuf,
}

impl Binaries {
    /// Finds the binaries in `dir` (see [`bin_dir`]) and etcd on the machine.
    pub fn find(dir: &Path) -> Result<Self, Error> {
        Self::find_control_plane(dir)?;
        Ok(Self {
            etcd: etcd()?,
            kube_apiserver: dir.join("kube-apiserver"),
            kube_controller_manager: dir.join("kube-controller-manager"),
            kube_scheduler: dir.join("kube-scheduler"),
            kubelet: dir.join("kubelet"),
            pause: dir.join(PAUSE_PROGRAM),
        })
    }

    /// Checks that `dir` holds the programs built from the Kubernetes source.
    pub fn find_control_plane(dir: &Path) -> Result<(), Error> {
        if KUBERNETES_PROGRAMS
            .iter()
            .chain([&PAUSE_PROGRAM])
            .all(|p| is_executable(&dir.join(p)))
        {
            Ok(())
        } else {
            Err(Error::BinariesMissing {
                dir: dir.to_owned(),
            })
        }
    }
}

/// etcd 3.4+: Debian's `etcd-server` package, or the first `etcd` on `PATH`.
fn etcd() -> Result<PathBuf, Error> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("etcd"));
    std::iter::once(PathBuf::from("/usr/bin/etcd"))
        .chain(on_path)
        .find(|p| is_executable(p))
        .ok_or_else(|| Error::ProgramMissing {
            program: "etcd".to_owned(),
            hint:
                "run `kube-testbed build` (it installs Debian's etcd-server) or install etcd 3.4+"
                    .to_owned(),
        })
}

pub(crate) fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The upstream agent-sandbox test data: `KUBE_TESTBED_AGENT_SANDBOX_DIR`, else
/// `<repository>/../shared/agent-sandbox` (the repository found from this crate's source path at
/// compile time).
pub fn agent_sandbox_data() -> PathBuf {
    match std::env::var_os(AGENT_SANDBOX_DATA_ENV).filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        // CARGO_MANIFEST_DIR is <repository>/crates/kube-testbed.
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .nth(3)
            .unwrap_or(Path::new("/"))
            .join("shared/agent-sandbox"),
    }
}

/// The CRDs installed by default: upstream's current tree (adapted for 1.20 when applied).
pub fn default_crds_dir() -> PathBuf {
    agent_sandbox_data().join("current/crds")
}

/// The controller installed by default: the release of 2026-08-22 (core and extensions). Only its
/// non-CRD objects are applied; its Deployment's pod, made Ready by the fake kubelet, is what lets
/// the simulated controller run.
pub fn default_controller_manifest() -> PathBuf {
    agent_sandbox_data().join("release-2026-08-22/for-k8s-1.20/sandbox-with-extensions.yaml")
}
