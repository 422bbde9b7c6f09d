//! Local processes for exec, the init process and the sshd stand-in: spawned in their own process
//! group (or session, under a pseudo-terminal) so that everything they start is killed with them.

use std::{
    ffi::OsString,
    os::unix::{fs::PermissionsExt, process::ExitStatusExt},
    path::{Path, PathBuf},
    process::{ExitStatus, Stdio},
};

use nix::{
    sys::signal::{Signal, killpg},
    unistd::Pid,
};
use pty_process::{OwnedReadPty, OwnedWritePty};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout};
use tokio_util::sync::CancellationToken;

use crate::{
    network::{Enter, PodNamespaces},
    programs,
};

/// Kills a process group when dropped.
#[derive(Debug)]
pub(crate) struct ProcessGroup(Option<Pid>);

impl ProcessGroup {
    /// The group led by `child` (spawned with `process_group(0)` or in a new session).
    pub fn of(child: &Child) -> Self {
        Self(
            child
                .id()
                .and_then(|pid| i32::try_from(pid).ok())
                .map(Pid::from_raw),
        )
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        if let Some(group) = self.0 {
            // ESRCH (the group is gone) is the usual case and fine.
            let _ = killpg(group, Signal::SIGKILL);
        }
    }
}

/// Keeps `child` running until `stop` is cancelled, then kills its process group; an exit before
/// that is logged as `what`'s.
pub(crate) fn kill_on_stop(mut child: Child, stop: CancellationToken, what: String) {
    let group = ProcessGroup::of(&child);
    tokio::spawn(async move {
        tokio::select! {
            () = stop.cancelled() => {}
            status = child.wait() => tracing::warn!(?status, "{what} exited"),
        }
        drop(group);
    });
}

/// The exit code a shell would report: the code, or 128 + the signal that killed the process.
pub(crate) fn exit_code(status: ExitStatus) -> i32 {
    status
        .code()
        .or_else(|| status.signal().map(|signal| 128 + signal))
        .unwrap_or(128)
}

/// A command that could not be started, with the exit code and message a container runtime gives.
#[derive(Debug)]
pub(crate) struct SpawnError {
    /// 127: not found; 126: found but not executable.
    pub exit_code: i32,
    /// runc's wording, e.g. `exec: "x": executable file not found in $PATH`.
    pub message: String,
}

impl SpawnError {
    fn new(exit_code: i32, program: &str, reason: impl std::fmt::Display) -> Self {
        Self {
            exit_code,
            message: format!("exec: {program:?}: {reason}"),
        }
    }
}

/// What exec runs and how.
pub(crate) struct ExecCommand<'a> {
    pub command: &'a [String],
    pub cwd: &'a Path,
    /// The complete environment (nothing is inherited from the kubelet).
    pub env: &'a [(String, String)],
    /// The pod's namespaces, entered through `nsenter`, if it has them.
    pub namespaces: Option<&'a PodNamespaces>,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

/// The streams of a running exec process.
pub(crate) enum ExecIo {
    Pipes {
        stdin: Option<ChildStdin>,
        stdout: Option<ChildStdout>,
        stderr: Option<ChildStderr>,
    },
    /// Under a pseudo-terminal: one output stream, and a window size.
    Pty {
        read: OwnedReadPty,
        write: OwnedWritePty,
    },
}

pub(crate) struct ExecProcess {
    pub child: Child,
    pub io: ExecIo,
    pub group: ProcessGroup,
}

/// What is started for an exec: the program itself, or `nsenter` running it in the pod's namespaces.
struct Launch {
    program: OsString,
    arg0: OsString,
    args: Vec<OsString>,
}

impl ExecCommand<'_> {
    pub fn spawn(&self) -> Result<ExecProcess, SpawnError> {
        let program = self.command.first().map(String::as_str).unwrap_or_default();
        let path = self
            .env
            .iter()
            .find(|(name, _)| name == "PATH")
            .map(|(_, value)| value.as_str());
        let executable = resolve(program, path.unwrap_or_default(), self.cwd)?;
        let spawn_failed = |error: &dyn std::fmt::Display| SpawnError::new(126, program, error);
        let launch = self
            .launch(program, executable)
            .map_err(|e| spawn_failed(&e))?;
        if self.tty {
            let (pty, pts) = pty_process::open().map_err(|e| spawn_failed(&e))?;
            // A usable size until the client sends its own.
            pty.resize(pty_process::Size::new(24, 80))
                .map_err(|e| spawn_failed(&e))?;
            let child = pty_process::Command::new(&launch.program)
                .arg0(&launch.arg0)
                .args(&launch.args)
                .env_clear()
                .envs(self.env.iter().cloned())
                .current_dir(self.cwd)
                .kill_on_drop(true)
                .spawn(pts)
                .map_err(|e| spawn_failed(&e))?;
            let (read, write) = pty.into_split();
            let group = ProcessGroup::of(&child);
            return Ok(ExecProcess {
                child,
                io: ExecIo::Pty { read, write },
                group,
            });
        }
        let piped = |wanted: bool| {
            if wanted {
                Stdio::piped()
            } else {
                Stdio::null()
            }
        };
        let mut child = tokio::process::Command::new(&launch.program)
            .arg0(&launch.arg0)
            .args(&launch.args)
            .env_clear()
            .envs(self.env.iter().cloned())
            .current_dir(self.cwd)
            .stdin(piped(self.stdin))
            .stdout(piped(self.stdout))
            .stderr(piped(self.stderr))
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| spawn_failed(&e))?;
        let io = ExecIo::Pipes {
            stdin: child.stdin.take(),
            stdout: child.stdout.take(),
            stderr: child.stderr.take(),
        };
        let group = ProcessGroup::of(&child);
        Ok(ExecProcess { child, io, group })
    }

    /// The resolved `executable` with the command's arguments, through `nsenter` when the pod has
    /// namespaces (which forks it into the PID namespace: PID 1 there is the pod's init).
    fn launch(&self, program: &str, executable: PathBuf) -> Result<Launch, crate::error::Error> {
        let args = self.command[1..].iter().map(OsString::from);
        let Some(namespaces) = self.namespaces else {
            return Ok(Launch {
                program: executable.into_os_string(),
                arg0: program.into(),
                args: args.collect(),
            });
        };
        let mut wd = OsString::from("--wd=");
        wd.push(self.cwd);
        let mut nsenter_args = namespaces.nsenter_args(Enter::All);
        nsenter_args.extend([wd, "--".into(), executable.into_os_string()]);
        nsenter_args.extend(args);
        Ok(Launch {
            program: programs::NSENTER.find()?.into_os_string(),
            arg0: "nsenter".into(),
            args: nsenter_args,
        })
    }
}

/// Finds `program` as a container runtime would: a path (relative to `cwd`) when it has a slash,
/// else the first executable file of that name on `path`.
fn resolve(program: &str, path: &str, cwd: &Path) -> Result<PathBuf, SpawnError> {
    if program.contains('/') {
        let candidate = cwd.join(program);
        let metadata = std::fs::metadata(&candidate).map_err(|error| {
            SpawnError::new(
                127,
                program,
                format!("stat {program}: {}", os_error_text(&error)),
            )
        })?;
        if metadata.is_file() && metadata.permissions().mode() & 0o111 != 0 {
            return Ok(candidate);
        }
        return Err(SpawnError::new(126, program, "permission denied"));
    }
    std::env::split_paths(&OsString::from(path))
        .filter(|_| !program.is_empty())
        .map(|dir| cwd.join(dir).join(program))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .ok_or_else(|| SpawnError::new(127, program, "executable file not found in $PATH"))
}

/// `no such file or directory`, as Go prints errno texts (without Rust's " (os error 2)").
pub(crate) fn os_error_text(error: &std::io::Error) -> String {
    let text = error.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    text.to_ascii_lowercase()
}

/// Runs `command` to its end without input; a failure is an error naming `what` with its stderr.
pub(crate) async fn run_checked(
    mut command: tokio::process::Command,
    what: &str,
) -> Result<(), crate::error::Error> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| crate::error::Error::io(format!("running {what}"), e))?;
    if output.status.success() {
        return Ok(());
    }
    Err(crate::error::Error::Process(format!(
        "{what} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_resolve_like_a_runtime() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        std::fs::write(bin.join("tool"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(bin.join("tool"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(bin.join("data"), "").unwrap();
        let path = format!("{}:/usr/bin:/bin", bin.display());

        assert_eq!(
            resolve("tool", &path, dir.path()).unwrap(),
            bin.join("tool")
        );
        assert_eq!(
            resolve("sh", &path, dir.path()).unwrap(),
            Path::new("/usr/bin/sh")
        );
        let missing = resolve("nope", &path, dir.path()).unwrap_err();
        assert_eq!(
            (missing.exit_code, missing.message.as_str()),
            (127, "exec: \"nope\": executable file not found in $PATH")
        );
        let data = resolve("data", &path, dir.path()).unwrap_err();
        assert_eq!(
            data.exit_code, 127,
            "a non-executable file on PATH is skipped"
        );
        let explicit = resolve("bin/data", &path, dir.path()).unwrap_err();
        assert_eq!(
            (explicit.exit_code, explicit.message.as_str()),
            (126, "exec: \"bin/data\": permission denied")
        );
        let gone = resolve("/no/such", &path, dir.path()).unwrap_err();
        assert_eq!(
            gone.message,
            "exec: \"/no/such\": stat /no/such: no such file or directory"
        );
    }
}
