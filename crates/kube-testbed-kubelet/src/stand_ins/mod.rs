//! Stand-in services for a pod, in place of what its container would run: code-server's HTTP
//! server on container port 13337, a real OpenSSH sshd on 2222, and a `claude` command on the
//! pod's `PATH`. They listen in the pod's network (its namespace, or free host loopback ports)
//! and stop with the pod.

mod claude;
mod code_server;
mod sshd;

use std::path::Path;

use tokio_util::sync::CancellationToken;

use crate::{error::Error, network::PodNetwork};

/// code-server's port in the sandbox pod.
const CODE_SERVER_PORT: u16 = 13337;
/// sshd's port in the sandbox pod.
const SSH_PORT: u16 = 2222;

/// Which stand-ins a pod gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Wanted {
    pub code_server: bool,
    pub sshd: bool,
    pub claude: bool,
}

#[derive(Debug)]
pub(crate) struct StandIns {
    /// code-server's port in the pod's network, when it runs.
    code_server: Option<u16>,
    /// sshd's port in the pod's network, or why it is not running; `None` when not wanted.
    sshd: Option<Result<u16, String>>,
}

/// What the stand-ins are started with.
pub(crate) struct Setting<'a> {
    /// The pod directory.
    pub dir: &'a Path,
    pub network: &'a PodNetwork,
    /// The `PATH` of the pod's processes (sshd sessions get it too).
    pub path: &'a str,
    pub wanted: Wanted,
}

impl StandIns {
    /// Starts the wanted stand-ins; they stop when `stop` is cancelled. A missing sshd is logged
    /// and reported to whoever forwards port 2222, not fatal to the pod.
    pub async fn start(setting: &Setting<'_>, stop: CancellationToken) -> Result<Self, Error> {
        let dir = setting.dir;
        claude::install(&dir.join("bin"), setting.wanted.claude).await?;
        let code_server = if setting.wanted.code_server {
            Some(code_server::start(setting.network, stop.clone()).await?)
        } else {
            None
        };
        let sshd = if setting.wanted.sshd {
            Some(sshd::start(setting, stop).await.map_err(|error| {
                tracing::error!(%error, dir = %dir.display(), "the sshd stand-in did not start");
                format!("the sshd stand-in is not running: {error}")
            }))
        } else {
            None
        };
        Ok(Self { code_server, sshd })
    }

    /// The port in the pod's network behind container port `port`, if a stand-in serves it.
    pub fn port_for(&self, port: u16) -> Option<Result<u16, String>> {
        match port {
            CODE_SERVER_PORT => self.code_server.map(Ok),
            SSH_PORT => self.sshd.clone(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpStream,
    };

    use super::*;

    async fn get(port: u16, path: &str) -> String {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response
    }

    #[tokio::test]
    async fn stand_ins_serve_their_ports_and_stop_with_the_pod() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("bin")).unwrap();
        let stop = CancellationToken::new();
        let setting = Setting {
            dir: dir.path(),
            network: &PodNetwork::Host,
            path: "/usr/bin:/bin",
            wanted: Wanted {
                code_server: true,
                sshd: true,
                claude: true,
            },
        };
        let stand_ins = StandIns::start(&setting, stop.clone()).await.unwrap();

        let code_server = stand_ins.port_for(CODE_SERVER_PORT).unwrap().unwrap();
        let health = get(code_server, "/healthz").await;
        assert!(health.starts_with("HTTP/1.1 200"), "{health}");
        assert!(health.ends_with(r#"{"status":"alive"}"#), "{health}");
        assert!(get(code_server, "/").await.contains("<html>"));
        assert!(get(code_server, "/nope").await.starts_with("HTTP/1.1 404"));
        assert_eq!(stand_ins.port_for(8080), None);

        let claude = std::process::Command::new(dir.path().join("bin/claude"))
            .arg("--version")
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&claude.stdout),
            "2.0.14 (Claude Code)\n"
        );

        let sshd = stand_ins.port_for(SSH_PORT).unwrap();
        if std::path::Path::new("/usr/sbin/sshd").exists() {
            let port = sshd.unwrap();
            let mut banner = [0; 8];
            let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            stream.read_exact(&mut banner).await.unwrap();
            assert_eq!(&banner, b"SSH-2.0-");
            let config = std::fs::read_to_string(dir.path().join("sshd_config")).unwrap();
            assert!(config.contains(&format!(
                "AuthorizedKeysFile {}/home/.ssh/authorized_keys",
                dir.path().display()
            )));
            assert!(config.contains("SetEnv PATH=/usr/bin:/bin\n"));
            assert!(dir.path().join("ssh_host_ed25519_key").exists());

            stop.cancel();
            let gone = async {
                while TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            };
            tokio::time::timeout(Duration::from_secs(5), gone)
                .await
                .expect("sshd stops with the pod");
        } else {
            // Without the package, forwarding port 2222 explains what to install.
            let error = sshd.unwrap_err();
            assert!(error.contains("openssh-server"), "{error}");
        }
    }

    #[tokio::test]
    async fn unwanted_stand_ins_are_not_started() {
        let dir = tempfile::tempdir().unwrap();
        let bin = &dir.path().join("bin");
        std::fs::create_dir(bin).unwrap();
        let wanted = |claude| Wanted {
            code_server: false,
            sshd: false,
            claude,
        };
        let start = |wanted| async move {
            let setting = Setting {
                dir: bin.parent().unwrap(),
                network: &PodNetwork::Host,
                path: "/usr/bin:/bin",
                wanted,
            };
            StandIns::start(&setting, CancellationToken::new())
                .await
                .unwrap()
        };
        let stand_ins = start(wanted(true)).await;
        assert_eq!(stand_ins.port_for(CODE_SERVER_PORT), None);
        assert_eq!(stand_ins.port_for(SSH_PORT), None);
        assert!(bin.join("claude").exists());
        start(wanted(false)).await;
        assert!(
            !bin.join("claude").exists(),
            "the stub goes when claude is missing"
        );
        std::fs::write(bin.join("claude"), "#!/bin/sh\necho a test's own\n").unwrap();
        start(wanted(false)).await;
        assert!(bin.join("claude").exists(), "a test's own claude stays");
    }
}
