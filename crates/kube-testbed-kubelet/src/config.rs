//! What a [`crate::Kubelet`] is told.

use std::path::{Path, PathBuf};

/// Configuration of the fake kubelet.
#[derive(Debug, Clone)]
pub struct KubeletConfig {
    /// The node whose pods this kubelet runs (`testbed-node`).
    pub node_name: String,
    /// `<testbed dir>/pods`; per pod `pods/<ns>/<pod>/{bin/,root/,<container>.log}`.
    pub pods_dir: PathBuf,
    /// Whether pods get stand-in services (code-server, sshd, `claude`); a pod's
    /// `testbed.claude-sandbox.dev/stand-ins` annotation overrides it.
    pub stand_ins: bool,
}

/// Per-pod directory (for tests that put stub commands on a pod's exec `PATH`): `pods_dir/<ns>/<pod>`.
pub fn pod_dir(pods_dir: &Path, namespace: &str, pod: &str) -> PathBuf {
    pods_dir.join(namespace).join(pod)
}
