//! A pod's init process: PID 1 of PID, mount and network namespaces of its own, standing in for
//! the devcontainer's (envbuilder execs the init script as PID 1, as the devcontainer's user, in
//! the workspace folder, with the image's environment).
//!
//! `setpriv --pdeathsig KILL -- unshare --pid --mount --net --fork --mount-proc --kill-child --
//! setpriv --reuid … --pdeathsig KILL -- sleep infinity`, each step `exec`ing the next so that
//! `sleep` is PID 1 with exactly the environment given (no shell in between adds `PWD`); then, as
//! root, `nsenter --net … ip link set lo up`. Whoever dies first takes the rest along: the kubelet
//! (the outer `--pdeathsig`), `unshare` (`--kill-child`, renewed by the inner `setpriv` after the
//! user switch cleared it), the init (the kernel kills its whole PID namespace).

use std::{
    ffi::OsString,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

use crate::{
    error::Error,
    network::{Enter, PodNamespaces},
    pod_user::PodUser,
    process::{kill_on_stop, run_checked},
    programs::{IP, NSENTER, SETPRIV, SLEEP, UNSHARE},
};

/// How long the init process may take to be PID 1 of its namespaces.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
const READY_POLL: Duration = Duration::from_millis(10);

/// What the init process is started with.
pub(crate) struct InitSpec<'a> {
    pub user: &'a PodUser,
    /// Its working directory (the workspace folder).
    pub cwd: &'a Path,
    /// Its complete environment.
    pub env: &'a [(String, String)],
    /// Where the output of its start-up goes.
    pub log: &'a Path,
}

/// Starts the init process; it runs until `stop` is cancelled. Returns its namespaces.
pub(crate) async fn start(
    spec: &InitSpec<'_>,
    stop: CancellationToken,
) -> Result<PodNamespaces, Error> {
    let sleep = SLEEP.find()?;
    let mut launcher = command(spec, &sleep)?
        .spawn()
        .map_err(|e| Error::io("starting the pod's init process", e))?;
    let ready = tokio::time::timeout(READY_TIMEOUT, wait_until_pid_1(&mut launcher, &sleep)).await;
    let why = match ready {
        Ok(Ok(pid)) => return running(pid, launcher, stop).await,
        Ok(Err(why)) => why,
        Err(_) => format!(
            "it was not running {} within {READY_TIMEOUT:?}",
            sleep.display()
        ),
    };
    let output = tokio::fs::read_to_string(spec.log)
        .await
        .unwrap_or_default();
    Err(Error::Process(format!(
        "the pod's init process did not start: {why}; its output: {}",
        output.trim()
    )))
}

/// The init process `pid` is PID 1: its loopback interface comes up, then it runs until `stop`.
async fn running(
    pid: Pid,
    launcher: Child,
    stop: CancellationToken,
) -> Result<PodNamespaces, Error> {
    let namespaces = PodNamespaces::of(pid)
        .map_err(|e| Error::io(format!("opening the namespaces of process {pid}"), e))?;
    // On failure the launcher is dropped, which kills it and so the init.
    loopback_up(&namespaces).await?;
    kill_on_stop(launcher, stop, format!("the init process {pid}"));
    Ok(namespaces)
}

/// Brings up the loopback interface of the namespace (down in a new one).
async fn loopback_up(namespaces: &PodNamespaces) -> Result<(), Error> {
    let mut command = Command::new(NSENTER.find()?);
    command
        .args(namespaces.nsenter_args(Enter::Network))
        .arg("--")
        .arg(IP.find()?)
        .args(["link", "set", "lo", "up"]);
    run_checked(command, "bringing up the pod's loopback interface").await
}

fn command(spec: &InitSpec<'_>, sleep: &Path) -> Result<Command, Error> {
    let open_log = || {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(spec.log)
            .map_err(|e| Error::io(format!("opening {}", spec.log.display()), e))
    };
    let setpriv = SETPRIV.find()?;
    let mut command = Command::new(&setpriv);
    command
        .args(["--pdeathsig", "KILL", "--"])
        .arg(UNSHARE.find()?)
        .args([
            "--pid",
            "--mount",
            "--net",
            "--fork",
            "--mount-proc",
            "--kill-child",
            "--",
        ])
        .arg(&setpriv)
        .args(user_switch(spec.user))
        .args(["--pdeathsig", "KILL", "--"])
        .arg(sleep)
        .arg("infinity")
        // setpriv and unshare pass the environment on: the init gets exactly this one.
        .env_clear()
        .envs(spec.env.iter().cloned())
        .current_dir(spec.cwd)
        .stdin(Stdio::null())
        .stdout(open_log()?)
        .stderr(open_log()?)
        .process_group(0)
        .kill_on_drop(true);
    Ok(command)
}

fn user_switch(user: &PodUser) -> [OsString; 3] {
    [
        format!("--reuid={}", user.uid).into(),
        format!("--regid={}", user.gid).into(),
        "--init-groups".into(),
    ]
}

/// The host PID of the launcher's child once it runs `sleep`: the end of the chain, PID 1 of
/// the namespaces. An error says why the launcher exited.
async fn wait_until_pid_1(launcher: &mut Child, sleep: &Path) -> Result<Pid, String> {
    let launcher_pid = launcher.id().ok_or("it exited at once")?;
    let children = format!("/proc/{launcher_pid}/task/{launcher_pid}/children");
    let sleep = std::fs::canonicalize(sleep).unwrap_or_else(|_| sleep.to_owned());
    loop {
        if let Ok(Some(status)) = launcher.try_wait() {
            return Err(format!("it exited ({status})"));
        }
        let child = tokio::fs::read_to_string(&children)
            .await
            .ok()
            .and_then(|pids| pids.split_whitespace().next()?.parse::<i32>().ok());
        if let Some(child) = child {
            let exe: Option<PathBuf> = tokio::fs::read_link(format!("/proc/{child}/exe"))
                .await
                .ok();
            if exe.as_deref() == Some(sleep.as_path()) {
                return Ok(Pid::from_raw(child));
            }
        }
        tokio::time::sleep(READY_POLL).await;
    }
}
