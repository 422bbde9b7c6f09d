//! The namespaces of a pod's init process (PID, mount, network): exec enters all three, the
//! stand-ins listen in its network namespace and port-forward connects there.

use std::{ffi::OsString, fs::File, io, sync::Arc};

use nix::{
    sched::{CloneFlags, setns},
    unistd::Pid,
};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::oneshot,
};

#[derive(Debug)]
pub(crate) struct PodNamespaces {
    init: Pid,
    /// Held open: sockets can be made in the namespace without racing the init's end.
    net: Arc<File>,
}

/// Which namespaces `nsenter` enters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Enter {
    /// PID, mount and network: a process as if started in the container.
    All,
    /// The network only: a process that serves the pod's ports.
    Network,
}

impl PodNamespaces {
    pub fn of(init: Pid) -> io::Result<Self> {
        let net = File::open(format!("/proc/{init}/ns/net"))?;
        Ok(Self {
            init,
            net: Arc::new(net),
        })
    }

    #[cfg(test)]
    pub fn init_pid(&self) -> Pid {
        self.init
    }

    /// `nsenter`'s arguments (before the command) to enter the init's namespaces.
    pub fn nsenter_args(&self, enter: Enter) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec!["--target".into(), self.init.to_string().into()];
        if enter == Enter::All {
            args.extend(["--pid".into(), "--mount".into()]);
        }
        args.push("--net".into());
        args
    }

    /// Connects to `127.0.0.1:port` in the namespace.
    pub async fn connect(&self, port: u16) -> io::Result<TcpStream> {
        let stream = self
            .run_inside(move || std::net::TcpStream::connect(("127.0.0.1", port)))
            .await?;
        stream.set_nonblocking(true)?;
        TcpStream::from_std(stream)
    }

    /// Listens on `127.0.0.1:port` in the namespace.
    pub async fn listen(&self, port: u16) -> io::Result<TcpListener> {
        let listener = self
            .run_inside(move || std::net::TcpListener::bind(("127.0.0.1", port)))
            .await?;
        listener.set_nonblocking(true)?;
        TcpListener::from_std(listener)
    }

    /// Runs `make` on a thread of its own that enters the namespace first, and ends with it: no
    /// thread of the runtime ever changes namespace. Sockets stay in the namespace they were made in.
    async fn run_inside<T: Send + 'static>(
        &self,
        make: impl FnOnce() -> io::Result<T> + Send + 'static,
    ) -> io::Result<T> {
        let net = self.net.clone();
        let (made, result) = oneshot::channel();
        std::thread::Builder::new()
            .name("pod-netns".to_owned())
            .spawn(move || {
                let inside = setns(&*net, CloneFlags::CLONE_NEWNET)
                    .map_err(io::Error::from)
                    .and_then(|()| make());
                let _ = made.send(inside);
            })?;
        result
            .await
            .unwrap_or_else(|_| Err(io::Error::other("the namespace thread panicked")))
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A process in a network namespace of its own, killed when dropped.
    struct Isolated(std::process::Child);

    impl Isolated {
        fn start() -> Self {
            Self(
                std::process::Command::new("unshare")
                    .args([
                        "--net",
                        "--",
                        "sh",
                        "-c",
                        "ip link set lo up && exec sleep 60",
                    ])
                    .spawn()
                    .unwrap(),
            )
        }

        async fn namespaces(&self) -> PodNamespaces {
            let pid = Pid::from_raw(i32::try_from(self.0.id()).unwrap());
            // Until the loopback interface is up: the shell has exec'd sleep.
            for _ in 0..200 {
                let command = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                if command.starts_with(b"sleep") {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            PodNamespaces::of(pid).unwrap()
        }
    }

    impl Drop for Isolated {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    #[tokio::test]
    async fn sockets_made_in_the_namespace_stay_there() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root for network namespaces");
            return;
        }
        let isolated = Isolated::start();
        let namespaces = isolated.namespaces().await;
        let listener = namespaces.listen(0).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            drop(listener);
            stream.write_all(b"inside").await.unwrap();
        });

        let mut stream = namespaces.connect(port).await.unwrap();
        let mut greeting = String::new();
        stream.read_to_string(&mut greeting).await.unwrap();
        assert_eq!(greeting, "inside");
        assert!(
            TcpStream::connect(("127.0.0.1", port)).await.is_err(),
            "the host's loopback does not have the port"
        );
        let refused = namespaces.connect(port).await.unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
        assert_eq!(
            namespaces.nsenter_args(Enter::Network),
            ["--target", &namespaces.init.to_string(), "--net"]
        );
    }
}
