//! A real node's cgroup: `/<name>` in every hierarchy, the kubelet's `cgroupRoot`, so that every
//! pod of the testbed lives under it and nothing else does (REFERENCE §7: create it first, and give
//! cpuset its CPUs and memory nodes).

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use nix::{sys::signal::Signal, unistd::Pid};

use crate::error::Error;

/// The mount points of the cgroup hierarchies (v1 controllers and a v2 tree, if mounted).
fn hierarchies() -> Vec<PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    mountinfo
        .lines()
        .filter_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            let fstype = after.split_whitespace().next()?;
            let point = before.split_whitespace().nth(4)?;
            (fstype == "cgroup" || fstype == "cgroup2").then(|| PathBuf::from(point))
        })
        .collect()
}

/// Creates `/<name>` in every hierarchy.
pub(crate) fn create(name: &str) -> Result<(), Error> {
    for hierarchy in hierarchies() {
        let dir = hierarchy.join(name);
        std::fs::create_dir_all(&dir).map_err(Error::io("creating", &dir))?;
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let parent = hierarchy.join(file);
            if let Ok(value) = std::fs::read_to_string(&parent) {
                let child = dir.join(file);
                if std::fs::read_to_string(&child).is_ok_and(|v| v.trim().is_empty()) {
                    std::fs::write(&child, value.trim()).map_err(Error::io("writing", &child))?;
                }
            }
        }
    }
    Ok(())
}

/// Every process in `/<name>` and below.
pub(crate) fn processes(name: &str) -> Vec<i32> {
    let mut pids = Vec::new();
    for hierarchy in hierarchies() {
        collect_processes(&hierarchy.join(name), &mut pids);
    }
    pids.sort_unstable();
    pids.dedup();
    pids
}

fn collect_processes(dir: &Path, pids: &mut Vec<i32>) {
    if let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) {
        pids.extend(procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    }
    for child in subdirectories(dir) {
        collect_processes(&child, pids);
    }
}

/// Kills every process of the cgroup until none is left (at most a few seconds).
pub(crate) fn kill_all(name: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let pids = processes(name);
        if pids.is_empty() || Instant::now() > deadline {
            return;
        }
        for pid in pids {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Removes `/<name>` and its children from every hierarchy (deepest first; a cgroup with
/// processes left cannot go and stays).
pub(crate) fn remove(name: &str) {
    for hierarchy in hierarchies() {
        remove_tree(&hierarchy.join(name));
    }
}

fn remove_tree(dir: &Path) {
    for child in subdirectories(dir) {
        remove_tree(&child);
    }
    let _ = std::fs::remove_dir(dir);
}

fn subdirectories(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}
