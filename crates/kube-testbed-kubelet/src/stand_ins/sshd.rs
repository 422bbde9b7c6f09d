//! A real OpenSSH sshd (Debian's `openssh-server`) for the pod, as the current user, configured by
//! a file in the pod directory: per-pod host key, `<pod dir>/authorized_keys`, pid file and log.

use std::{path::Path, process::Stdio, time::Duration};

use tokio::{net::TcpStream, process::Child};
use tokio_util::sync::CancellationToken;

use crate::{error::Error, process::ProcessGroup};

const SSHD: &str = "/usr/sbin/sshd";
/// util-linux's `setpriv`: sshd gets SIGKILL if the kubelet dies without cleaning up.
const SETPRIV: &str = "/usr/bin/setpriv";
const SSH_KEYGEN: &str = "/usr/bin/ssh-keygen";
/// sshd's privilege separation directory, required when it runs as root.
const PRIVSEP_DIR: &str = "/run/sshd";
/// The free port is picked before sshd binds it; another process may take it in between.
const ATTEMPTS: usize = 3;
const READY_TIMEOUT: Duration = Duration::from_secs(5);
const READY_POLL: Duration = Duration::from_millis(25);

/// Starts sshd on a free loopback port until `stop` is cancelled; returns the port.
pub(super) async fn start(dir: &Path, stop: CancellationToken) -> Result<u16, Error> {
    for (program, package) in [(SSHD, "openssh-server"), (SSH_KEYGEN, "openssh-client")] {
        if !Path::new(program).exists() {
            return Err(Error::MissingProgram {
                program: program.into(),
                package,
            });
        }
    }
    let host_key = dir.join("ssh_host_ed25519_key");
    if !host_key.exists() {
        generate_host_key(&host_key).await?;
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
        let port = free_port().await?;
        tokio::fs::write(&config, config_file(dir, &host_key, port))
            .await
            .map_err(|e| Error::io(format!("writing {}", config.display()), e))?;
        let mut child = spawn(&config, &log)?;
        if wait_until_listening(port, &mut child).await {
            let group = ProcessGroup::of(&child);
            tokio::spawn(async move {
                tokio::select! {
                    () = stop.cancelled() => {}
                    status = child.wait() => tracing::warn!(?status, "the sshd stand-in exited"),
                }
                drop(group);
            });
            return Ok(port);
        }
    }
    Err(Error::StandIn(format!(
        "sshd did not start listening (see {})",
        log.display()
    )))
}

fn config_file(dir: &Path, host_key: &Path, port: u16) -> String {
    let dir = dir.display();
    format!(
        "# kube-testbed: the pod's sshd stand-in.\n\
         Port {port}\n\
         ListenAddress 127.0.0.1\n\
         HostKey {host_key}\n\
         PidFile {dir}/sshd.pid\n\
         AuthorizedKeysFile {dir}/authorized_keys\n\
         StrictModes no\n\
         UsePAM no\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         PermitRootLogin prohibit-password\n\
         PrintMotd no\n\
         SetEnv PATH={dir}/bin:/usr/local/bin:/usr/bin:/bin\n\
         Subsystem sftp internal-sftp\n",
        host_key = host_key.display(),
    )
}

async fn generate_host_key(path: &Path) -> Result<(), Error> {
    let output = tokio::process::Command::new(SSH_KEYGEN)
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "kube-testbed", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| Error::io("running ssh-keygen", e))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(Error::StandIn(format!(
            "ssh-keygen failed for {}: {}",
            path.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}

async fn free_port() -> Result<u16, Error> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
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

fn spawn(config: &Path, log: &Path) -> Result<Child, Error> {
    let open_log = || {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| Error::io(format!("opening {}", log.display()), e))
    };
    let mut command = if Path::new(SETPRIV).exists() {
        let mut command = tokio::process::Command::new(SETPRIV);
        command.args(["--pdeathsig", "KILL", SSHD]);
        command
    } else {
        tokio::process::Command::new(SSHD)
    };
    command
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
async fn wait_until_listening(port: u16, child: &mut Child) -> bool {
    let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
    while tokio::time::Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
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
