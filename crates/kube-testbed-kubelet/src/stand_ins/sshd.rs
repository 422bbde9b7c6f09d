//! A real OpenSSH sshd (Debian's `openssh-server`) for the pod, as the kubelet's user, in the pod's
//! network, configured by a file in the pod directory: per-pod host key, the pod user's
//! `<pod dir>/home/.ssh/authorized_keys`, pid file and log.

use std::{ffi::OsString, path::Path, process::Stdio, time::Duration};

use tokio::process::Child;
use tokio_util::sync::CancellationToken;

use super::{SSH_PORT, Setting};
use crate::{
    error::Error,
    network::PodNetwork,
    process::{kill_on_stop, run_checked},
    programs::{SETPRIV, SSH_KEYGEN, SSHD},
};

/// sshd's privilege separation directory, required when it runs as root.
const PRIVSEP_DIR: &str = "/run/sshd";
/// On the host, the free port is picked before sshd binds it; another process may take it in
/// between.
const ATTEMPTS: usize = 3;
const READY_TIMEOUT: Duration = Duration::from_secs(5);
const READY_POLL: Duration = Duration::from_millis(25);

/// Starts sshd in the pod's network until `stop` is cancelled; returns its port there.
pub(super) async fn start(setting: &Setting<'_>, stop: CancellationToken) -> Result<u16, Error> {
    let (dir, network) = (setting.dir, setting.network);
    let sshd = SSHD.find()?;
    let host_key = dir.join("ssh_host_ed25519_key");
    if !host_key.exists() {
        generate_host_key(&SSH_KEYGEN.find()?, &host_key).await?;
    }
    if nix::unistd::geteuid().is_root() {
        tokio::fs::create_dir_all(PRIVSEP_DIR)
            .await
            .map_err(|e| Error::io(format!("creating {PRIVSEP_DIR}"), e))?;
    }
    let log = dir.join("sshd.log");
    let config = dir.join("sshd_config");
    stop_stale(dir, &config).await;
    for _ in 0..ATTEMPTS {
        let port = free_port(network).await?;
        tokio::fs::write(&config, config_file(dir, &host_key, port, setting.path))
            .await
            .map_err(|e| Error::io(format!("writing {}", config.display()), e))?;
        let mut child = spawn(&sshd, network, &config, &log)?;
        if wait_until_listening(network, port, &mut child).await {
            kill_on_stop(child, stop, "the sshd stand-in".to_owned());
            return Ok(port);
        }
    }
    Err(Error::Process(format!(
        "sshd did not start listening (see {})",
        log.display()
    )))
}

fn config_file(dir: &Path, host_key: &Path, port: u16, path: &str) -> String {
    let dir = dir.display();
    format!(
        "# kube-testbed: the pod's sshd stand-in.\n\
         Port {port}\n\
         ListenAddress 127.0.0.1\n\
         HostKey {host_key}\n\
         PidFile {dir}/sshd.pid\n\
         AuthorizedKeysFile {dir}/home/.ssh/authorized_keys\n\
         StrictModes no\n\
         UsePAM no\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         PermitRootLogin prohibit-password\n\
         PrintMotd no\n\
         SetEnv PATH={path}\n\
         Subsystem sftp internal-sftp\n",
        host_key = host_key.display(),
    )
}

async fn generate_host_key(ssh_keygen: &Path, path: &Path) -> Result<(), Error> {
    let mut command = tokio::process::Command::new(ssh_keygen);
    command
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "kube-testbed", "-f"])
        .arg(path);
    run_checked(command, &format!("ssh-keygen for {}", path.display())).await
}

/// sshd's port in the pod's network: 2222 in its namespace (checked to be free), a free port on
/// the host.
async fn free_port(network: &PodNetwork) -> Result<u16, Error> {
    let listener = network
        .listen(SSH_PORT)
        .await
        .map_err(|e| Error::io("finding a free port for sshd", e))?;
    listener
        .local_addr()
        .map(|address| address.port())
        .map_err(|e| Error::io("finding a free port for sshd", e))
}

/// Kills the sshd an earlier kubelet process left for this pod (after a crash or a kill), found
/// by its pid file and recognised by its config file.
async fn stop_stale(dir: &Path, config: &Path) {
    let Ok(pid) = tokio::fs::read_to_string(dir.join("sshd.pid")).await else {
        return;
    };
    let Ok(pid) = pid.trim().parse::<i32>() else {
        return;
    };
    let command_line = tokio::fs::read(format!("/proc/{pid}/cmdline"))
        .await
        .unwrap_or_default();
    let config = config.as_os_str().as_encoded_bytes();
    if command_line
        .windows(config.len())
        .any(|window| window == config)
    {
        tracing::debug!(pid, "stopping a stale sshd stand-in");
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

fn spawn(sshd: &Path, network: &PodNetwork, config: &Path, log: &Path) -> Result<Child, Error> {
    let open_log = || {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| Error::io(format!("opening {}", log.display()), e))
    };
    // setpriv: sshd gets SIGKILL if the kubelet dies without cleaning up.
    let mut program: Vec<OsString> = match SETPRIV.find() {
        Ok(setpriv) => vec![
            setpriv.into(),
            "--pdeathsig".into(),
            "KILL".into(),
            "--".into(),
        ],
        Err(_) => Vec::new(),
    };
    program.extend(network.command_prefix()?);
    program.push(sshd.into());
    let mut command = tokio::process::Command::new(&program[0]);
    command
        .args(&program[1..])
        .arg("-D")
        .arg("-e")
        .arg("-f")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(open_log()?)
        .stderr(open_log()?)
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| Error::io("starting sshd", e))
}

/// Whether sshd accepts connections on `port` before it exits or the time runs out.
async fn wait_until_listening(network: &PodNetwork, port: u16, child: &mut Child) -> bool {
    let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
    while tokio::time::Instant::now() < deadline {
        if network.connect(port).await.is_ok() {
            return true;
        }
        if let Ok(Some(status)) = child.try_wait() {
            tracing::debug!(?status, port, "sshd exited at start-up");
            return false;
        }
        tokio::time::sleep(READY_POLL).await;
    }
    false
}
