//! OCI plumbing of the image build: layer archives (GNU tar), the OCI layout (umoci), the push
//! (skopeo into a docker-registry started for it) and the registry folder's upkeep.

use std::{
    collections::BTreeMap,
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use super::{super::debian::run_logged, registry_config_with};
use crate::{build::debian::System, error::Error};

/// How long a started registry has to answer.
const REGISTRY_START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a stopped registry has to exit before it is killed.
const REGISTRY_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// An uncompressed layer archive of `dir`'s content (entries relative to it, numeric owners),
/// written by GNU tar: `umoci insert` 0.4.7 writes archives without their end (and the last
/// file's padding), which stricter readers refuse. With `root_owned`, every entry belongs to
/// root; else owners are kept (a root filesystem made as root, then `system` runs tar as root).
pub(super) fn layer_tar(
    system: Option<&System>,
    dir: &Path,
    out: &Path,
    root_owned: bool,
    log: &Path,
) -> Result<(), Error> {
    let mut entries: Vec<String> = std::fs::read_dir(dir)
        .map_err(Error::io("reading", dir))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    let mut tar = match system {
        Some(system) => system.root_command("tar"),
        None => Command::new("tar"),
    };
    tar.arg("-C")
        .arg(dir)
        .args(["--numeric-owner", "--sort=name", "-cf"])
        .arg(out);
    if root_owned {
        tar.args(["--owner=0", "--group=0"]);
    }
    tar.arg("--").args(&entries);
    run_logged("tar a layer", tar, log)
}

/// An OCI image layout handled with umoci.
pub(super) struct Layout {
    dir: PathBuf,
}

impl Layout {
    /// The layout at `dir`, created when missing.
    pub(super) fn open(dir: &Path, log: &Path) -> Result<Self, Error> {
        if !dir.join("index.json").exists() {
            if let Some(parent) = dir.parent() {
                std::fs::create_dir_all(parent).map_err(Error::io("creating", parent))?;
            }
            super::remove_dir(dir)?;
            let mut init = Command::new("umoci");
            init.args(["init", "--layout"]).arg(dir);
            run_logged("umoci init", init, log)?;
        }
        Ok(Self {
            dir: dir.to_owned(),
        })
    }

    fn image(&self, reference: &str) -> String {
        format!("{}:{reference}", self.dir.display())
    }

    /// The references of the layout's index.
    fn references(&self) -> Vec<String> {
        let index = self.dir.join("index.json");
        let Ok(text) = std::fs::read_to_string(&index) else {
            return Vec::new();
        };
        let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) else {
            return Vec::new();
        };
        value["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str())
            .map(str::to_owned)
            .collect()
    }

    pub(super) fn has(&self, reference: &str) -> bool {
        self.references().iter().any(|r| r == reference)
    }

    /// A new empty image (replacing one of the same reference).
    pub(super) fn new_image(&self, reference: &str, log: &Path) -> Result<(), Error> {
        self.remove(reference, log)?;
        let mut new = Command::new("umoci");
        new.args(["new", "--image", &self.image(reference)]);
        run_logged("umoci new", new, log)
    }

    /// `to` as a copy of `from` (the same manifest under a second reference).
    pub(super) fn copy_image(&self, from: &str, to: &str, log: &Path) -> Result<(), Error> {
        self.remove(to, log)?;
        let mut tag = Command::new("umoci");
        tag.args(["tag", "--image", &self.image(from), to]);
        run_logged("umoci tag", tag, log)
    }

    /// Appends the layer archive `tar` to the image.
    pub(super) fn add_layer(
        &self,
        reference: &str,
        tar: &Path,
        what: &str,
        log: &Path,
    ) -> Result<(), Error> {
        let mut add = Command::new("umoci");
        add.args(["raw", "add-layer", "--image", &self.image(reference)])
            .arg(format!("--history.created_by=kube-testbed build: {what}"))
            .arg(tar);
        run_logged(&format!("umoci raw add-layer ({what})"), add, log)
    }

    /// Applies `umoci config` arguments to the image.
    pub(super) fn configure(
        &self,
        reference: &str,
        args: &[String],
        log: &Path,
    ) -> Result<(), Error> {
        let mut config = Command::new("umoci");
        config
            .args(["config", "--image", &self.image(reference)])
            .arg("--history.created_by=kube-testbed build: image configuration")
            .args(args);
        run_logged("umoci config", config, log)
    }

    fn remove(&self, reference: &str, log: &Path) -> Result<(), Error> {
        if !self.has(reference) {
            return Ok(());
        }
        let mut remove = Command::new("umoci");
        remove.args(["rm", "--image", &self.image(reference)]);
        run_logged("umoci rm", remove, log)
    }

    /// Removes every other reference and the blobs only they used.
    pub(super) fn keep_only(&self, keep: &[String], log: &Path) -> Result<(), Error> {
        let stale: Vec<String> = self
            .references()
            .into_iter()
            .filter(|r| !keep.contains(r))
            .collect();
        for reference in &stale {
            self.remove(reference, log)?;
        }
        let mut gc = Command::new("umoci");
        gc.args(["gc", "--layout"]).arg(&self.dir);
        run_logged("umoci gc", gc, log)
    }
}

/// `skopeo copy` of the layout's `reference` to `name:tag` in the registry at `addr`.
pub(super) fn push(
    layout: &Layout,
    reference: &str,
    addr: &str,
    name_tag: &str,
    log: &Path,
) -> Result<(), Error> {
    let mut copy = Command::new("skopeo");
    // Local images to a local registry: no signature policy to apply, plain HTTP.
    copy.args([
        "--insecure-policy",
        "copy",
        "--dest-tls-verify=false",
        "--quiet",
    ])
    .arg(format!("oci:{}", layout.image(reference)))
    .arg(format!("docker://{addr}/{name_tag}"));
    run_logged(&format!("skopeo copy {name_tag}"), copy, log)
}

/// The digest of the manifest `name:tag` names in the registry folder `root`, when it holds both
/// (the tag link and the manifest).
pub(super) fn manifest_digest(root: &Path, name: &str, tag: &str) -> Option<String> {
    let link = repositories(root)
        .join(name)
        .join("_manifests/tags")
        .join(tag)
        .join("current/link");
    let digest = std::fs::read_to_string(link).ok()?;
    let digest = digest.trim();
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() > 2 && hex.chars().all(|c| c.is_ascii_hexdigit()) && blob_data(root, hex).is_file())
        .then(|| digest.to_owned())
}

fn repositories(root: &Path) -> PathBuf {
    root.join("docker/registry/v2/repositories")
}

fn blob_data(root: &Path, hex: &str) -> PathBuf {
    root.join("docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .join("data")
}

/// Keeps only the `current` (repository, tag) pairs: other tags of these repositories are removed,
/// then docker-registry's garbage collector deletes the manifests and blobs nothing uses any more.
/// The registry must not be running.
pub(super) fn prune_registry(
    root: &Path,
    current: &[(&str, &str)],
    config: &Path,
    log: &Path,
) -> Result<(), Error> {
    let mut removed = false;
    // A repository may keep several tags (the mirrored ones).
    let mut kept: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (name, tag) in current {
        kept.entry(name).or_default().push(tag);
    }
    for (name, tags_kept) in &kept {
        let tags = repositories(root).join(name).join("_manifests/tags");
        let Ok(entries) = std::fs::read_dir(&tags) else {
            continue;
        };
        for entry in entries.filter_map(|e| e.ok()) {
            if !tags_kept.contains(&&*entry.file_name().to_string_lossy()) {
                super::remove_dir(&entry.path())?;
                removed = true;
            }
        }
    }
    if !removed {
        return Ok(());
    }
    std::fs::write(config, registry_config_with(root, "127.0.0.1:0", false))
        .map_err(Error::io("writing", config))?;
    let mut gc = Command::new("docker-registry");
    gc.args(["garbage-collect", "--delete-untagged"])
        .arg(config);
    run_logged("docker-registry garbage-collect", gc, log)
}

/// A docker-registry serving the registry folder, writable, on a free loopback port, for the push.
pub(super) struct Registry {
    child: Option<Child>,
    addr: String,
}

impl Registry {
    pub(super) fn start(root: &Path, log: &Path) -> Result<Self, Error> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(Error::io("finding a free port for", root))?
            .port();
        let addr = format!("127.0.0.1:{port}");
        let config = log.with_file_name("registry-push.yml");
        std::fs::write(&config, registry_config_with(root, &addr, false))
            .map_err(Error::io("writing", &config))?;
        let out = std::fs::File::create(log).map_err(Error::io("creating", log))?;
        let err = out.try_clone().map_err(Error::io("opening", log))?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| Error::Build {
                step: "start docker-registry".to_owned(),
                message: e.to_string(),
            })?;
        let mut registry = Self {
            child: Some(child),
            addr,
        };
        let started = Instant::now();
        loop {
            if registry.answers() {
                return Ok(registry);
            }
            let exited = registry
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || started.elapsed() > REGISTRY_START_TIMEOUT {
                let why = match exited {
                    Some(status) => format!("exited ({status})"),
                    None => format!(
                        "did not answer on {} within {} s",
                        registry.addr,
                        REGISTRY_START_TIMEOUT.as_secs()
                    ),
                };
                registry.stop_now();
                return Err(Error::Build {
                    step: "start docker-registry".to_owned(),
                    message: format!(
                        "it {why}; the end of {}:\n{}",
                        log.display(),
                        crate::process::log_tail(log)
                    ),
                });
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub(super) fn addr(&self) -> &str {
        &self.addr
    }

    /// `GET /v2/` answers 200.
    fn answers(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(&self.addr) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let request = format!(
            "GET /v2/ HTTP/1.0\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        );
        if stream.write_all(request.as_bytes()).is_err() {
            return false;
        }
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).is_ok() && head.ends_with(b" 200")
    }

    /// TERM, then KILL after a timeout.
    pub(super) fn stop(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(pid) = i32::try_from(child.id()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let started = Instant::now();
        while started.elapsed() < REGISTRY_STOP_TIMEOUT {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop_now();
    }
}
