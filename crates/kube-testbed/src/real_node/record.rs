//! What a real node puts outside its testbed directory — a bridge, a cgroup, CNI address leases —
//! written down in `/run/kube-testbed/<id>.json` before it is made. A testbed
//! whose processes were killed cannot clean up after itself: the next start reads the records
//! whose testbed no longer runs and removes what they name ([`sweep`]), the same teardown a
//! normal stop runs ([`teardown`]).

use std::{
    fs::File,
    net::Ipv4Addr,
    path::{Path, PathBuf},
};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use super::{cgroups, network};
use crate::{error::Error, layout::Layout, process::Process};

/// Where the records live: a tmpfs, emptied at boot together with everything they name.
const RECORDS: &str = "/run/kube-testbed";

/// The folders CNI writes outside any configurable root (REFERENCE §7; the pod-log folders the
/// kubelet hard-codes are the testbed's own in the node's mount namespace).
const CNI_LEASES: &str = "/var/lib/cni/networks";
const CNI_RESULTS: &str = "/var/lib/cni/results";

/// A real node's resources outside its directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Record {
    /// The testbed directory (absolute).
    pub dir: PathBuf,
    /// Eight hex digits derived from `dir`.
    pub id: String,
    /// The pod subnet's number (`10.213.N.0/24`).
    pub subnet: u8,
    /// The process that started the node: while it lives, the node counts as running even before
    /// its containerd and kubelet are up (0 when unknown).
    #[serde(default)]
    pub owner: u32,
}

impl Record {
    pub fn new(layout: &Layout, subnet: u8) -> Self {
        Self {
            dir: layout.dir().to_owned(),
            id: id_of(layout.dir()),
            subnet,
            owner: std::process::id(),
        }
    }

    /// The bridge (at most 15 characters, as Linux wants).
    pub fn bridge(&self) -> String {
        format!("ktb-{}", self.id)
    }

    /// The cgroup under every hierarchy's root, the kubelet's `cgroupRoot`.
    pub fn cgroup(&self) -> String {
        format!("kube-testbed-{}", self.id)
    }

    /// The CNI network's name (its address leases are kept under this name).
    pub fn cni_network(&self) -> String {
        format!("kube-testbed-{}", self.id)
    }

    /// For the guard of the testbed in `layout`, before its node exists: the cgroup, the bridge,
    /// the CNI lease folder and the record's path.
    pub fn names_of(layout: &Layout) -> [String; 4] {
        let record = Self::new(layout, 0);
        [
            record.cgroup(),
            record.bridge(),
            Path::new(CNI_LEASES)
                .join(record.cni_network())
                .display()
                .to_string(),
            record.path().display().to_string(),
        ]
    }

    pub fn node_ip(&self) -> Ipv4Addr {
        network::node_ip(self.subnet)
    }

    fn path(&self) -> PathBuf {
        Path::new(RECORDS).join(format!("{}.json", self.id))
    }

    pub fn save(&self) -> Result<(), Error> {
        let path = self.path();
        let text = serde_json::to_string_pretty(self).expect("JSON");
        std::fs::write(&path, text).map_err(Error::io("writing", &path))
    }

    fn load(path: &Path) -> Option<Self> {
        serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
    }
}

/// FNV-1a (32 bits) of the directory, in hex: stable, short enough for a bridge name.
fn id_of(dir: &Path) -> String {
    let hash = dir
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0x811c_9dc5_u32, |h, b| {
            (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
        });
    format!("{hash:08x}")
}

/// Holds `/run/kube-testbed/.lock` while alive: records are read and subnets chosen one testbed at
/// a time.
pub(crate) struct RecordsLock {
    _lock: Flock<File>,
}

impl RecordsLock {
    pub fn acquire() -> Result<Self, Error> {
        std::fs::create_dir_all(RECORDS).map_err(Error::io("creating", RECORDS))?;
        let path = Path::new(RECORDS).join(".lock");
        let file = File::create(&path).map_err(Error::io("creating", &path))?;
        let lock = Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, e)| Error::io("locking", &path)(e.into()))?;
        Ok(Self { _lock: lock })
    }

    /// The records of every testbed with a real node.
    pub fn records(&self) -> Vec<Record> {
        std::fs::read_dir(RECORDS)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                    .filter_map(|e| Record::load(&e.path()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Whether the testbed of `record` still runs: the process that started it, or its containerd or
/// kubelet, is alive.
pub(crate) fn is_running(record: &Record) -> bool {
    if crate::process::is_alive(record.owner) {
        return true;
    }
    let layout = Layout::new(&record.dir);
    [super::CONTAINERD, super::KUBELET]
        .iter()
        .any(|name| Process::from_pid_file(&layout.pid_file(name), &record.dir).is_some())
}

/// Tears down what the records of dead testbeds name; returns their directories.
pub(crate) fn sweep(lock: &RecordsLock) -> Vec<PathBuf> {
    let mut swept = Vec::new();
    for record in lock.records() {
        if !is_running(&record) {
            tracing::info!(dir = %record.dir.display(), "removing what a dead testbed left");
            teardown(&record);
            swept.push(record.dir);
        }
    }
    swept
}

/// Stops and removes everything of a real node: its processes (the node's own from their pid
/// files, containerd's shims, every process in its cgroup — its mount namespace goes with the
/// last of them), any mount below its directory, its bridge, cgroup and CNI leases, and finally
/// its record. Safe to run on a half-made or already removed node.
pub(crate) fn teardown(record: &Record) {
    let layout = Layout::new(&record.dir);
    // The kubelet first (it would restart what we kill), then containerd.
    for name in super::NODE_PROCESSES {
        if let Some(process) = Process::from_pid_file(&layout.pid_file(name), &record.dir) {
            process.stop();
        }
    }
    kill_shims(&record.dir);
    cgroups::kill_all(&record.cgroup());
    unmount_under(&record.dir);
    network::delete_bridge(&record.bridge());
    cgroups::remove(&record.cgroup());
    remove_cni_state(&record.cni_network());
    let _ = std::fs::remove_file(record.path());
}

/// containerd's shims outlive containerd: those of this testbed name its socket, which lies in
/// the testbed directory.
fn kill_shims(dir: &Path) {
    let dir = dir.as_os_str().as_encoded_bytes();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.filter_map(|e| e.ok()) {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        // The kernel keeps 15 characters of a program's name: containerd-shim-runc-v2's.
        let is_shim = std::fs::read(entry.path().join("comm"))
            .is_ok_and(|comm| comm.trim_ascii_end() == b"containerd-shim");
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if is_shim && cmdline.windows(dir.len()).any(|w| w == dir) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// Detaches every mount below `dir`, deepest first: container root filesystems, volumes, network
/// namespaces, the kubelet's bind mount of its own root.
pub(crate) fn unmount_under(dir: &Path) {
    let prefix = format!("{}/", dir.display());
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut points: Vec<String> = mountinfo
        .lines()
        .filter_map(|line| line.split_whitespace().nth(4))
        .map(unescape_mount_path)
        .filter(|point| point.starts_with(&prefix))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    points.dedup();
    for point in points {
        if let Err(error) = nix::mount::umount2(point.as_str(), nix::mount::MntFlags::MNT_DETACH) {
            tracing::debug!(%point, %error, "unmounting");
        }
    }
}

/// mountinfo writes space, tab, newline and backslash as octal escapes.
fn unescape_mount_path(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let digits: String = chars.by_ref().take(3).collect();
            match u8::from_str_radix(&digits, 8) {
                Ok(byte) => out.push(char::from(byte)),
                Err(_) => {
                    out.push('\\');
                    out.push_str(&digits);
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn remove_cni_state(network: &str) {
    let _ = std::fs::remove_dir_all(Path::new(CNI_LEASES).join(network));
    if let Ok(entries) = std::fs::read_dir(CNI_RESULTS) {
        let prefix = format!("{network}-");
        for entry in entries.filter_map(|e| e.ok()) {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_linux_limits_and_differ_by_directory() {
        let a = Record::new(&Layout::new(Path::new("/tmp/kube-testbed-a")), 3);
        let b = Record::new(&Layout::new(Path::new("/tmp/kube-testbed-b")), 4);
        assert!(a.bridge().len() <= 15, "{}", a.bridge());
        assert_ne!(a.bridge(), b.bridge());
        assert_eq!(a.node_ip().to_string(), "10.213.3.1");
    }

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape_mount_path(r"/tmp/a\040b"), "/tmp/a b");
        assert_eq!(unescape_mount_path("/plain"), "/plain");
    }
}
