//! containerd's configuration for a real node (CRI v1alpha2, config version 2, REFERENCE §7): its
//! own root, state and socket under the testbed directory, runtimes `runc` and `runsc` (gVisor
//! through runc's shim and our wrapper), the testbed's CNI network and registry.

use std::path::Path;

/// What the configuration names.
pub(crate) struct ContainerdConfig<'a> {
    pub root: &'a Path,
    pub state: &'a Path,
    pub socket: &'a Path,
    pub cni_conf_dir: &'a Path,
    /// `hosts.toml` files, one folder per registry.
    pub registry_hosts: &'a Path,
    pub pause_image: &'a str,
    /// runc's state folder (its `--root`), so that a testbed's containers are listed apart.
    pub runc_root: &'a Path,
    /// The wrapper around `runsc` that runc's shim calls (see `runsc-wrapper.sh`).
    pub runsc_wrapper: &'a Path,
    pub runsc_root: &'a Path,
}

impl ContainerdConfig<'_> {
    pub fn render(&self) -> String {
        let p = |path: &Path| toml_string(&path.display().to_string());
        format!(
            r#"# Written by kube-testbed for one testbed; see real_node/containerd.rs.
version = 2
root = {root}
state = {state}
# Snapshotters and plugins this node does not use (some would look at /var/lib).
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = {socket}

[plugins."io.containerd.internal.v1.opt"]
  path = {opt}

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = {pause}
  # Exec, attach and port-forward streams: the kubelet proxies them (its default), on loopback.
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  # Without it every pod fails here: runc cannot lower oom_score_adj (REFERENCE §7).
  restrict_oom_score_adj = true
  # Pod network namespaces under our state, not the machine's /run/netns.
  netns_mounts_under_state_dir = true
  enable_selinux = false
  max_container_log_line_size = 16384

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "runc"
        Root = {runc_root}
        SystemdCgroup = false

    # gVisor: Debian ships no containerd-shim-runsc-v1, so runc's shim drives runsc through a
    # wrapper that smooths the four differences REFERENCE §7 lists.
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runsc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runsc.options]
        BinaryName = {runsc_wrapper}
        Root = {runsc_root}
        SystemdCgroup = false

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = {cni}
    max_conf_num = 1

  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = {hosts}
"#,
            root = p(self.root),
            state = p(self.state),
            socket = p(self.socket),
            opt = p(&self.root.join("opt")),
            pause = toml_string(self.pause_image),
            runc_root = p(self.runc_root),
            runsc_wrapper = p(self.runsc_wrapper),
            runsc_root = p(self.runsc_root),
            cni = p(self.cni_conf_dir),
            hosts = p(self.registry_hosts),
        )
    }
}

/// `hosts.toml` sending a registry's pulls to a plain-HTTP registry on loopback (`host` is
/// `127.0.0.1:PORT`): written in the folder of that registry itself, and of each upstream registry
/// whose images it mirrors.
pub(crate) fn registry_hosts(host: &str) -> String {
    format!(
        "server = {server}\n\n[host.{server}]\n  capabilities = [\"pull\", \"resolve\"]\n",
        server = toml_string(&format!("http://{host}"))
    )
}

/// A TOML basic string.
fn toml_string(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_keeps_to_the_testbed() {
        let dir = Path::new("/tmp/tb/node");
        let config = ContainerdConfig {
            root: &dir.join("root"),
            state: &dir.join("state"),
            socket: &dir.join("containerd.sock"),
            cni_conf_dir: &dir.join("cni"),
            registry_hosts: &dir.join("certs.d"),
            pause_image: "127.0.0.1:5000/pause:abc",
            runc_root: &dir.join("runc"),
            runsc_wrapper: &dir.join("bin/runsc"),
            runsc_root: &dir.join("runsc"),
        }
        .render();
        for line in [
            "root = \"/tmp/tb/node/root\"",
            "address = \"/tmp/tb/node/containerd.sock\"",
            "restrict_oom_score_adj = true",
            "netns_mounts_under_state_dir = true",
            "sandbox_image = \"127.0.0.1:5000/pause:abc\"",
            "BinaryName = \"/tmp/tb/node/bin/runsc\"",
            "config_path = \"/tmp/tb/node/certs.d\"",
        ] {
            assert!(config.contains(line), "{line} missing from\n{config}");
        }
        assert_eq!(
            registry_hosts("127.0.0.1:5000"),
            "server = \"http://127.0.0.1:5000\"\n\n[host.\"http://127.0.0.1:5000\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
        );
    }
}
