//! The testbed's processes: started with their output in `logs/` and a pid file, stopped with
//! TERM then KILL, and found again from pid files by `kube-testbed stop` — only when the pid's
//! command line still names the testbed directory (a recycled pid is never signalled).

use std::{
    ffi::OsStr,
    fs::File,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use nix::{sys::signal::Signal, unistd::Pid};

use crate::{error::Error, layout::Layout};

pub(crate) const ETCD: &str = "etcd";
pub(crate) const APISERVER: &str = "kube-apiserver";
pub(crate) const CONTROLLER_MANAGER: &str = "kube-controller-manager";
pub(crate) const SCHEDULER: &str = "kube-scheduler";
/// The `kube-testbed agent` process of a testbed started by the CLI.
pub(crate) const AGENT: &str = "agent";

/// The testbed's own processes, in the order they are stopped (clients before the API server,
/// the API server before etcd).
pub(crate) const PROCESS_NAMES: [&str; 5] = [AGENT, SCHEDULER, CONTROLLER_MANAGER, APISERVER, ETCD];

/// How long a process gets to exit after TERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether a started process outlives the one that started it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Stays in our process group (a terminal's Ctrl-C reaches it too); stopped by its owner.
    Attached,
    /// In a process group of its own, left running when `kube-testbed start` returns.
    Detached,
}

/// A running process of the testbed.
#[derive(Debug)]
pub(crate) struct Process {
    name: String,
    pid: u32,
    /// Our child (reaped by us), or `None` for a process found from its pid file.
    child: Option<Child>,
    log: PathBuf,
    pid_file: PathBuf,
}

impl Process {
    /// Starts `program` with stdout and stderr appended to `logs/<name>.log`, and writes
    /// `<name>.pid`.
    pub fn spawn<I, S>(
        layout: &Layout,
        name: &str,
        program: &Path,
        args: I,
        mode: Mode,
    ) -> Result<Self, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let log = layout.log(name);
        std::fs::create_dir_all(layout.logs()).map_err(Error::io("creating", layout.logs()))?;
        let out = File::options()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(Error::io("opening", &log))?;
        let err = out.try_clone().map_err(Error::io("opening", &log))?;
        let mut command = Command::new(program);
        command
            .args(args)
            .current_dir(layout.dir())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        if mode == Mode::Detached {
            use std::os::unix::process::CommandExt;
            command.process_group(0);
        }
        let child = command.spawn().map_err(|e| Error::Component {
            component: name.to_owned(),
            message: format!("could not be started ({}): {e}", program.display()),
            log: log.clone(),
            log_tail: String::new(),
        })?;
        let pid_file = layout.pid_file(name);
        std::fs::write(&pid_file, format!("{}\n", child.id()))
            .map_err(Error::io("writing", &pid_file))?;
        tracing::debug!(name, pid = child.id(), "started");
        Ok(Self {
            name: name.to_owned(),
            pid: child.id(),
            child: Some(child),
            log,
            pid_file,
        })
    }

    /// The process of `pid_file`, if it runs and its command line names `dir`.
    pub fn from_pid_file(pid_file: &Path, dir: &Path) -> Option<Self> {
        let pid: u32 = std::fs::read_to_string(pid_file)
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let dir = dir.as_os_str().as_encoded_bytes();
        if !is_alive(pid) || !cmdline.windows(dir.len()).any(|w| w == dir) {
            return None;
        }
        let name = pid_file.file_stem()?.to_string_lossy().into_owned();
        let log = pid_file.parent()?.join("logs").join(format!("{name}.log"));
        Some(Self {
            name,
            pid,
            child: None,
            log,
            pid_file: pid_file.to_owned(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// `Some(description)` once the process has exited.
    pub fn exited(&mut self) -> Option<String> {
        match &mut self.child {
            Some(child) => child
                .try_wait()
                .ok()
                .flatten()
                .map(|status| status.to_string()),
            None => (!is_alive(self.pid)).then(|| "exited".to_owned()),
        }
    }

    /// An error about this process, with the end of its log.
    pub fn error(&self, message: impl Into<String>) -> Error {
        Error::Component {
            component: self.name.clone(),
            message: message.into(),
            log: self.log.clone(),
            log_tail: log_tail(&self.log),
        }
    }

    /// TERM, then KILL after a timeout; waits until it is gone and removes its pid file.
    pub fn stop(self) {
        self.stop_within(STOP_TIMEOUT);
    }

    /// TERM, then KILL after `grace`.
    pub fn stop_within(mut self, grace: Duration) {
        if self.exited().is_none() {
            tracing::debug!(name = %self.name, pid = self.pid, "stopping");
            self.signal(Signal::SIGTERM);
            if !self.wait_exit(grace) {
                tracing::warn!(name = %self.name, pid = self.pid, "did not stop in time: killing it");
                self.signal(Signal::SIGKILL);
                self.wait_exit(STOP_TIMEOUT);
            }
        }
        let _ = std::fs::remove_file(&self.pid_file);
    }

    fn signal(&self, signal: Signal) {
        let Ok(pid) = i32::try_from(self.pid) else {
            return;
        };
        let _ = nix::sys::signal::kill(Pid::from_raw(pid), signal);
    }

    fn wait_exit(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.exited().is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

/// Whether `pid` runs (a zombie, exited but not yet reaped by its parent, does not).
pub(crate) fn is_alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // "pid (comm) S …": the state follows the last ')', as comm may hold one.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next())
        .is_some_and(|state| state != 'Z' && state != 'X')
}

/// Stops every process with a pid file anywhere under `layout`'s directory whose command line
/// names the directory: the testbed's own first, in [`PROCESS_NAMES`] order, then others such as
/// the stand-in sshd servers in pod directories. Returns the names of those stopped.
pub(crate) fn stop_all(layout: &Layout) -> Vec<String> {
    let mut pid_files: Vec<PathBuf> = PROCESS_NAMES
        .iter()
        .map(|name| layout.pid_file(name))
        .collect();
    collect_pid_files(layout.dir(), &layout.etcd_data(), &mut pid_files);
    let mut stopped = Vec::new();
    for pid_file in pid_files {
        if let Some(process) = Process::from_pid_file(&pid_file, layout.dir()) {
            stopped.push(process.name().to_owned());
            process.stop();
        }
    }
    stopped
}

/// The pid files under `dir`, but not in `skip` (etcd's data: large, and holds none).
fn collect_pid_files(dir: &Path, skip: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(|e| e.ok()) {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            if path != skip {
                collect_pid_files(&path, skip, found);
            }
        } else if path.extension().is_some_and(|e| e == "pid") && !found.contains(&path) {
            found.push(path);
        }
    }
}

/// The last lines of a log, for error messages.
pub(crate) fn log_tail(log: &Path) -> String {
    const LINES: usize = 25;
    let text = std::fs::read(log).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(LINES)..].join("\n")
}
