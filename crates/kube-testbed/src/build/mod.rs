//! `kube-testbed build`: REFERENCE §6 automated. Debian bookworm ships the Kubernetes 1.20.2 source
//! but no server binaries, so the control plane is compiled once from that source and cached outside
//! the repository; later runs only check that the cache and the runtime packages are there.

mod debian;
mod images;
mod kubernetes;

pub use images::{ENVBUILDER_UPSTREAM, TestImages, registry_config};

use std::path::{Path, PathBuf};

use crate::{
    error::Error,
    paths::{self, BIN_DIR_ENV, Binaries},
};

/// Debian packages the testbed runs (not only builds with), with a file each installs: etcd, the
/// sshd of the stand-ins, `ip` (pods' network namespaces, the real node's bridge); the real node's
/// containerd, runc, runsc (gVisor), CNI plugins, registry and git server; and the clients its
/// tests use (curl, ssh).
const RUNTIME_PACKAGES: [(&str, &str); 11] = [
    ("etcd-server", "/usr/bin/etcd"),
    ("openssh-server", "/usr/sbin/sshd"),
    ("iproute2", "/sbin/ip"),
    ("containerd", "/usr/bin/containerd"),
    ("runc", "/usr/sbin/runc"),
    ("runsc", "/usr/bin/runsc"),
    ("containernetworking-plugins", "/usr/lib/cni/bridge"),
    ("docker-registry", "/usr/bin/docker-registry"),
    ("git", "/usr/bin/git"),
    ("curl", "/usr/bin/curl"),
    ("openssh-client", "/usr/bin/ssh"),
];

/// Debian packages the build needs (REFERENCE §6 step 1; `make` and `dpkg-dev` for the source,
/// `gcc` and `libc6-dev` for the static `pause`).
const BUILD_PACKAGES: [&str; 8] = [
    "gcc",
    "libc6-dev",
    "golang-go",
    "golang-github-modern-go-reflect2-dev",
    "make",
    "rsync",
    "jq",
    "dpkg-dev",
];

/// Makes sure the control-plane binaries, the runtime packages and the pod user are there,
/// building or creating what is missing. Returns the directory holding the binaries. Prints one
/// line per step on stderr.
pub fn build() -> Result<PathBuf, Error> {
    let bin_dir = paths::bin_dir();
    let from_env = std::env::var_os(BIN_DIR_ENV).is_some_and(|v| !v.is_empty());
    if from_env {
        // Binaries the user names are used, never built.
        Binaries::find_control_plane(&bin_dir)?;
    }
    let cached = Binaries::find_control_plane(&bin_dir).is_ok();
    let missing_runtime: Vec<&str> = RUNTIME_PACKAGES
        .iter()
        .filter(|(_, file)| !Path::new(file).exists())
        .map(|(package, _)| *package)
        .collect();
    let pod_user_missing = !pod_user_exists();
    // Made when something has to be installed or built (the test images too, below).
    let mut system = None;
    if !cached || !missing_runtime.is_empty() || pod_user_missing {
        let system = system.insert(debian::System::detect(
            &missing_runtime,
            cached,
            pod_user_missing,
        )?);
        let mut wanted = missing_runtime;
        if !cached {
            wanted.extend(BUILD_PACKAGES);
            // The Kubernetes source comes from a deb-src entry, which a default install lacks.
            system.ensure_source_entry()?;
        }
        let missing = system.missing_packages(&wanted)?;
        if !missing.is_empty() {
            step(&format!(
                "installing Debian packages: {}",
                missing.join(" ")
            ));
            system.install(&missing)?;
        }
        if pod_user_missing {
            system.create_pod_user()?;
        }
        if !cached {
            kubernetes::build_into(system, &bin_dir)?;
        }
    }
    Binaries::find(&bin_dir)?;
    let origin = if from_env {
        format!(" ({BIN_DIR_ENV})")
    } else {
        String::new()
    };
    step(&format!(
        "using the control-plane binaries in {}{origin}",
        bin_dir.display()
    ));
    // The test images (their pause is the one just checked): built when missing.
    match TestImages::find() {
        Ok(images) => step(&format!(
            "using the cached test images in {} ({}, {}, {}, {}, {} mirroring {})",
            images.registry_root.display(),
            images.pause,
            images.tools,
            images.devcontainer,
            images.envbuilder,
            images.controller,
            if images.mirrored.is_empty() {
                "nothing".to_owned()
            } else {
                images.mirrored.join(", ")
            }
        )),
        Err(_) => {
            let system = match system {
                Some(system) => system,
                None => debian::System::detect(&[], true, false).map_err(|e| match e {
                    Error::UnsupportedSystem(why) => Error::UnsupportedSystem(format!(
                        "the test images need Debian's debootstrap, umoci, skopeo, docker-registry: {why}"
                    )),
                    other => other,
                })?,
            };
            images::ensure(&system, &bin_dir)?;
        }
    }
    Ok(bin_dir)
}

/// Whether the user pods' init processes run as exists.
fn pod_user_exists() -> bool {
    nix::unistd::User::from_name(crate::POD_USER).is_ok_and(|user| user.is_some())
}

fn step(message: &str) {
    eprintln!("==> {message}");
}
