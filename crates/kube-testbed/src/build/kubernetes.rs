//! Compiling kube-apiserver, kube-controller-manager, kube-scheduler and the kubelet from Debian's
//! `kubernetes` source package (REFERENCE §6 steps 2–4, §7), and the pod sandbox's static `pause`
//! from the same tree, into the cache.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use super::{
    debian::{System, run_logged},
    step,
};
use crate::{
    error::Error,
    paths::{KUBERNETES_PROGRAMS, KUBERNETES_VERSION, PAUSE_PROGRAM, cache_dir},
};

/// Debian's Go 1.19 crashes Kubernetes 1.20 binaries in map hashing unless the vendored
/// modern-go/reflect2 is 1.0.2, which Debian packages here.
const REFLECT2: &str = "/usr/share/gocode/src/github.com/modern-go/reflect2";

/// Builds the programs and installs them into `bin_dir` (all at once: a half-built cache
/// is never seen as complete).
pub(super) fn build_into(system: &System, bin_dir: &Path) -> Result<(), Error> {
    let work = cache_dir().join("build");
    std::fs::create_dir_all(&work).map_err(Error::io("creating", &work))?;
    let log = work.join("build.log");
    let tarball = source_tarball(system, &work, &log)?;

    let src = work.join("src");
    step(&format!("unpacking {}", file_name(&tarball)));
    remove_dir(&src)?;
    std::fs::create_dir_all(&src).map_err(Error::io("creating", &src))?;
    let mut tar = Command::new("tar");
    tar.arg("-xzf")
        .arg(&tarball)
        .arg("-C")
        .arg(&src)
        .arg("--strip-components=1");
    run_logged("unpack the Kubernetes source", tar, &log)?;

    step("replacing the vendored modern-go/reflect2 with Debian's 1.0.2 (Go 1.19 fix)");
    let vendored = src.join("vendor/github.com/modern-go/reflect2");
    remove_dir(&vendored)?;
    let mut copy = Command::new("cp");
    copy.arg("-r").arg(REFLECT2).arg(&vendored);
    run_logged("copy reflect2", copy, &log)?;
    let go_mod = vendored.join("go.mod");
    if go_mod.exists() {
        std::fs::remove_file(&go_mod).map_err(Error::io("removing", &go_mod))?;
    }

    // The 1.20 build expects the source at $GOPATH/src/k8s.io/kubernetes.
    let gopath = src.join(".go");
    let link_parent = gopath.join("src/k8s.io");
    std::fs::create_dir_all(&link_parent).map_err(Error::io("creating", &link_parent))?;
    let link = link_parent.join("kubernetes");
    std::os::unix::fs::symlink(&src, &link).map_err(Error::io("linking", &link))?;

    step(&format!(
        "compiling {} {KUBERNETES_VERSION} (about 5 minutes on 2 cores with an empty Go cache; log: {})",
        KUBERNETES_PROGRAMS.join(", "),
        log.display()
    ));
    let mut make = Command::new("make");
    make.current_dir(&link)
        .arg(format!(
            "WHAT={}",
            KUBERNETES_PROGRAMS.map(|p| format!("cmd/{p}")).join(" ")
        ))
        .env("GOPATH", &gopath)
        .env("CGO_ENABLED", "0")
        .env("GO111MODULE", "off")
        .env("GOFLAGS", "-mod=vendor");
    run_logged("make", make, &log)?;

    let built = src.join("_output/local/bin/linux/amd64");
    step("compiling pause (static)");
    let mut gcc = Command::new("gcc");
    gcc.args(["-Os", "-static", "-o"])
        .arg(built.join(PAUSE_PROGRAM))
        .arg(src.join("build/pause/linux/pause.c"));
    run_logged("compile pause", gcc, &log)?;
    install(&built, bin_dir)?;
    step(&format!("cached the binaries in {}", bin_dir.display()));
    // The unpacked tree is about 1 GB and no longer needed; the tarball stays for a rebuild.
    remove_dir(&src)
}

/// The `.orig.tar.gz` of Debian's kubernetes source package, downloaded unless already there.
fn source_tarball(system: &System, work: &Path, log: &Path) -> Result<PathBuf, Error> {
    if let Some(tarball) = find_tarball(work)? {
        step(&format!(
            "using the downloaded source {}",
            file_name(&tarball)
        ));
        return Ok(tarball);
    }
    system.update_once()?;
    step("downloading Debian's kubernetes source package");
    let mut download = Command::new("apt-get");
    download
        .current_dir(work)
        .args(["source", "--download-only", "kubernetes"]);
    run_logged("apt-get source kubernetes", download, log)?;
    find_tarball(work)?.ok_or_else(|| Error::Build {
        step: "apt-get source kubernetes".to_owned(),
        message: format!(
            "no kubernetes_*.orig.tar.gz for {KUBERNETES_VERSION} in {}",
            work.display()
        ),
    })
}

fn find_tarball(work: &Path) -> Result<Option<PathBuf>, Error> {
    let entries = std::fs::read_dir(work).map_err(Error::io("reading", work))?;
    Ok(entries.filter_map(|e| e.ok()).map(|e| e.path()).find(|p| {
        let name = file_name(p);
        name.starts_with("kubernetes_")
            && name.ends_with(".orig.tar.gz")
            && name.contains(KUBERNETES_VERSION)
    }))
}

/// Copies the programs into a fresh directory beside `bin_dir`, then renames it into place.
fn install(built: &Path, bin_dir: &Path) -> Result<(), Error> {
    let staging = bin_dir.with_extension("new");
    remove_dir(&staging)?;
    std::fs::create_dir_all(&staging).map_err(Error::io("creating", &staging))?;
    for program in KUBERNETES_PROGRAMS.iter().chain([&PAUSE_PROGRAM]) {
        let from = built.join(program);
        std::fs::copy(&from, staging.join(program)).map_err(Error::io("copying", &from))?;
    }
    remove_dir(bin_dir)?;
    std::fs::rename(&staging, bin_dir).map_err(Error::io("renaming", &staging))
}

fn remove_dir(dir: &Path) -> Result<(), Error> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io("removing", dir)(e)),
        _ => Ok(()),
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
