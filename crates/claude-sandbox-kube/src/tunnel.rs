//! Tunnels: TCP streams to a port inside a sandbox, carried by the API server's port-forward or by
//! a relay process run through exec (for gVisor, where port-forward fails).

use std::{pin::Pin, time::Duration};

use claude_sandbox_core::{Via, remote::Relay};
use futures::{FutureExt, future::BoxFuture};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite},
    sync::Mutex,
};

use crate::{
    cluster::Cluster, error::Error, exec::ExecStreams, sandbox_pod::SandboxPod,
    sandbox_ref::SandboxRef,
};

/// How long [`Tunnel::open`] keeps retrying a stream the cluster refuses for now.
const REOPEN_FOR: Duration = Duration::from_secs(20);
/// How long `auto` waits for a first port-forward to report a failure before trusting it: the
/// kubelet dials the port as the session opens and reports a failed dial at once.
const PORT_FORWARD_TRIAL: Duration = Duration::from_millis(500);
/// How long a stream that ended early is given to say why.
const FAILURE_WAIT: Duration = Duration::from_secs(5);

/// What carries a tunnel's connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    PortForward,
    Exec(Relay),
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::PortForward => f.write_str("port-forward"),
            Self::Exec(relay) => write!(f, "exec ({relay})"),
        }
    }
}

/// One stream through a tunnel.
pub struct TunnelStream {
    io: Pin<Box<dyn AsyncReadWrite>>,
    /// Resolves when the transport reports a failure (or with None when it closes without one).
    /// It owns the exec session, so the stream lives as long as it does.
    failure: BoxFuture<'static, Option<String>>,
}

trait AsyncReadWrite: AsyncRead + AsyncWrite + Send {}
impl<T: AsyncRead + AsyncWrite + Send> AsyncReadWrite for T {}

impl TunnelStream {
    /// Why the transport ended the stream, if it says; call after the stream closed early.
    pub async fn failure(self) -> Option<String> {
        drop(self.io);
        tokio::time::timeout(FAILURE_WAIT, self.failure)
            .await
            .ok()
            .flatten()
    }
}

impl AsyncRead for TunnelStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.io.as_mut().poll_read(cx, buf)
    }
}

impl AsyncWrite for TunnelStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.io.as_mut().poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.io.as_mut().poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.io.as_mut().poll_shutdown(cx)
    }
}

/// Opens streams to one port of one sandbox, following its pod when it is replaced.
pub struct Tunnel {
    cluster: Cluster,
    sandbox: SandboxRef,
    port: u16,
    state: Mutex<State>,
}

struct State {
    pod: Option<SandboxPod>,
    transport: Transport,
    /// `auto`: a port-forward worked once, so failures are the target's, not the transport's.
    trusted: bool,
}

impl Tunnel {
    /// Finds the sandbox's pod and picks the transport (probing for a relay when exec is chosen).
    pub async fn new(
        cluster: &Cluster,
        sandbox: &SandboxRef,
        port: u16,
        via: Via,
    ) -> Result<Self, Error> {
        let pod = SandboxPod::resolve(cluster, sandbox).await?;
        let transport = match via {
            Via::Exec => Transport::Exec(probe_relay(&pod).await?),
            Via::Auto if pod.is_gvisor() => Transport::Exec(probe_relay(&pod).await?),
            Via::Auto | Via::PortForward => Transport::PortForward,
        };
        tracing::debug!(%transport, port, "tunnel");
        Ok(Self {
            cluster: cluster.clone(),
            sandbox: sandbox.clone(),
            port,
            state: Mutex::new(State {
                pod: Some(pod),
                transport,
                trusted: via != Via::Auto,
            }),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The sandbox's pod as last found.
    pub async fn pod(&self) -> Option<SandboxPod> {
        self.state.lock().await.pod.clone()
    }

    /// The transport in use now (`auto` may switch from port-forward to exec once).
    pub async fn transport(&self) -> Transport {
        self.state.lock().await.transport
    }

    /// Opens one stream. While the API server or the kubelet refuses (a kubelet restarting says
    /// for a while that the pod does not exist; a resumed sandbox has a new pod), the pod is looked
    /// up again and the stream retried, for up to [`REOPEN_FOR`]. A sandbox that is gone or not
    /// running fails at once.
    pub async fn open(&self) -> Result<TunnelStream, Error> {
        let deadline = tokio::time::Instant::now() + REOPEN_FOR;
        let mut delay = Duration::from_millis(250);
        loop {
            match self.open_once().await {
                Ok(stream) => return Ok(stream),
                Err(error @ (Error::Access(_) | Error::Api(_)))
                    if tokio::time::Instant::now() + delay < deadline =>
                {
                    tracing::debug!(%error, "reconnecting: looking the pod up again");
                    self.state.lock().await.pod = None;
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn open_once(&self) -> Result<TunnelStream, Error> {
        let mut state = self.state.lock().await;
        let pod = match &state.pod {
            Some(pod) => pod.clone(),
            None => {
                let pod = SandboxPod::resolve(&self.cluster, &self.sandbox).await?;
                state.pod = Some(pod.clone());
                pod
            }
        };
        match state.transport {
            Transport::Exec(relay) => {
                drop(state);
                open_exec(&pod, relay, self.port).await
            }
            Transport::PortForward if state.trusted => {
                drop(state);
                open_port_forward(&pod, self.port).await
            }
            Transport::PortForward => {
                // `auto`'s first stream decides, holding the lock so that others wait for it.
                let mut stream = open_port_forward(&pod, self.port).await?;
                match tokio::time::timeout(PORT_FORWARD_TRIAL, &mut stream.failure).await {
                    Err(_) => {
                        state.trusted = true;
                        Ok(stream)
                    }
                    Ok(failure) => {
                        let why = failure.unwrap_or_else(|| "it closed at once".to_owned());
                        tracing::info!(why, "port-forward failed; switching to an exec tunnel");
                        let relay = probe_relay(&pod).await.map_err(|e| {
                            Error::Access(format!("port-forward failed ({why}) and {e}"))
                        })?;
                        state.transport = Transport::Exec(relay);
                        drop(state);
                        open_exec(&pod, relay, self.port).await
                    }
                }
            }
        }
    }

    /// Carries `local` through a new stream until both sides are done; a stream that ends before
    /// the sandbox said anything reports why.
    pub async fn carry(
        &self,
        local: &mut (impl AsyncRead + AsyncWrite + Unpin),
    ) -> Result<(), Error> {
        let TunnelStream {
            mut io,
            mut failure,
        } = self.open().await?;
        let failed = |why: String| {
            Error::Access(format!(
                "the tunnel to port {} of sandbox {} failed: {why}",
                self.port, self.sandbox.name
            ))
        };
        let copied = {
            let mut copy = std::pin::pin!(tokio::io::copy_bidirectional(local, &mut io));
            tokio::select! {
                copied = &mut copy => copied,
                // A broken session does not end its streams: stop copying. A clean end does, so
                // the copy finishes what is in flight.
                ended = &mut failure => match ended {
                    Some(why) => return Err(failed(why)),
                    None => return copy.await.map(|_| ()).map_err(|e| failed(e.to_string())),
                },
            }
        };
        match copied {
            Ok((_, 0)) | Err(_) => {
                drop(io);
                match tokio::time::timeout(FAILURE_WAIT, failure)
                    .await
                    .ok()
                    .flatten()
                {
                    Some(why) => Err(failed(why)),
                    None => copied.map(|_| ()).map_err(|e| failed(e.to_string())),
                }
            }
            Ok(_) => Ok(()),
        }
    }
}

async fn open_port_forward(pod: &SandboxPod, port: u16) -> Result<TunnelStream, Error> {
    let mut forwarder = pod
        .api
        .portforward(&pod.name, &[port])
        .await
        .map_err(|e| pod.stream_error(e, "portforward", "port-forward to"))?;
    let io = forwarder
        .take_stream(port)
        .expect("the forwarder has the port it was asked for");
    let failure = forwarder
        .take_error(port)
        .expect("the forwarder has the port it was asked for");
    Ok(TunnelStream {
        io: Box::pin(io),
        failure: failure.boxed(),
    })
}

async fn open_exec(pod: &SandboxPod, relay: Relay, port: u16) -> Result<TunnelStream, Error> {
    let mut process = pod
        .exec(
            &relay.command(port),
            ExecStreams {
                stdin: true,
                // The connection's end ends the relay.
                stdin_end: false,
                tty: false,
            },
        )
        .await?;
    let reader = process.stdout.take().expect("stdout was asked for");
    let writer = process.stdin.take().expect("stdin was asked for");
    let mut stderr = process.stderr.take().expect("stderr was asked for");
    // Before Kubernetes 1.30 the local side's end closes the whole session (see exec.rs): a
    // missing exit status is then how every connection ends, not a failure.
    let status_expected = pod.stdin_close;
    let failure = async move {
        let mut said = Vec::new();
        let (_, code) = tokio::join!(stderr.read_to_end(&mut said), process.exit_code());
        let said = String::from_utf8_lossy(&said).trim().to_owned();
        match code {
            Ok(0) => None,
            Ok(code) if said.is_empty() => Some(format!("the relay exited with code {code}")),
            Ok(_) => Some(said),
            Err(_) if !status_expected && said.is_empty() => None,
            Err(error) => Some(error.to_string()),
        }
    };
    Ok(TunnelStream {
        io: Box::pin(tokio::io::join(reader, writer)),
        failure: failure.boxed(),
    })
}

/// Asks the image which relay program it has.
async fn probe_relay(pod: &SandboxPod) -> Result<Relay, Error> {
    let output = pod.run(&Relay::probe_command(), None).await?;
    Relay::from_probe(&output.stdout_text()).ok_or_else(|| Error::Access(Relay::MISSING.to_owned()))
}
