//! Stand-in services for a pod, in place of what its container would run: code-server's HTTP
//! server on container port 13337, a real OpenSSH sshd on 2222, and a `claude` command on the
//! exec `PATH`. They listen on free loopback ports and stop with the pod.

mod claude;
mod code_server;
mod sshd;

use std::path::Path;

use tokio_util::sync::CancellationToken;

use crate::error::Error;

/// code-server's port in the sandbox pod.
const CODE_SERVER_PORT: u16 = 13337;
/// sshd's port in the sandbox pod.
const SSH_PORT: u16 = 2222;

#[derive(Debug)]
pub(crate) struct StandIns {
    code_server: u16,
    /// sshd's port, or why it is not running.
    sshd: Result<u16, String>,
}

impl StandIns {
    /// Starts the stand-ins of the pod in `dir`; they stop when `stop` is cancelled. A missing
    /// sshd is logged and reported to whoever forwards port 2222, not fatal to the pod.
    pub async fn start(dir: &Path, stop: CancellationToken) -> Result<Self, Error> {
        claude::install(&dir.join("bin")).await?;
        let code_server = code_server::start(stop.clone()).await?;
        let sshd = sshd::start(dir, stop).await.map_err(|error| {
            tracing::error!(%error, dir = %dir.display(), "the sshd stand-in did not start");
            format!("the sshd stand-in is not running: {error}")
        });
        Ok(Self { code_server, sshd })
    }

    /// The local port behind container port `port`, if a stand-in serves it.
    pub fn port_for(&self, port: u16) -> Option<Result<u16, String>> {
        match port {
            CODE_SERVER_PORT => Some(Ok(self.code_server)),
            SSH_PORT => Some(self.sshd.clone()),
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
        let stand_ins = StandIns::start(dir.path(), stop.clone()).await.unwrap();

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
                "AuthorizedKeysFile {}/authorized_keys",
                dir.path().display()
            )));
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
}
