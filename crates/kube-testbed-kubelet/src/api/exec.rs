//! `GET|POST /exec/{ns}/{pod}/{container}?command=…&stdin=1&stdout=1&stderr=1&tty=1` over a
//! WebSocket (`v5.channel.k8s.io`, `v4.channel.k8s.io`, `channel.k8s.io`): the command runs as
//! root in the pod's `root/` (in the pod's namespaces when it has an init process, else as a
//! plain local process), its streams framed by channel, its exit reported as a `metav1.Status` on
//! channel 3.

use std::{sync::Arc, time::Duration};

use futures::{SinkExt, StreamExt, future::join_all, stream::SplitStream};
use hyper::{Request, Response, StatusCode, body::Incoming};
use serde::Deserialize;
use serde_json::json;
use tokio::{
    io::{AsyncRead, AsyncWriteExt},
    sync::{mpsc, oneshot},
};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use super::{
    query::Query,
    upgrade::{WebSocket, accept_websocket, choose_protocol, wants_upgrade_to},
    ws_channels::{close, copy_out, frame, write_out},
};
use crate::{
    container_env,
    container_log::RunPhase,
    http_server::{Body, text},
    pod_runtime::PodRuntime,
    process::{ExecCommand, ExecIo, SpawnError, exit_code},
};

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const STATUS: u8 = 3;
const RESIZE: u8 = 4;
/// v5: `[255, stream]` closes a stream (for stdin: EOF).
const CLOSE_STREAM: u8 = 255;

/// In the kubelet's order of preference; the first the client offers wins.
const PROTOCOLS: [&str; 3] = ["v5.channel.k8s.io", "v4.channel.k8s.io", "channel.k8s.io"];
/// Output still arriving after the process exited (from children it left behind holding its
/// streams) is read for this long, no longer.
const OUTPUT_GRACE: Duration = Duration::from_secs(2);
/// Messages queued towards the client before the output readers wait.
const OUTPUT_QUEUE: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// `channel.k8s.io`: errors as plain text on channel 3, nothing on success.
    V1,
    /// `v4.channel.k8s.io`: a JSON `Status` on channel 3.
    V4,
    /// `v5.channel.k8s.io`: v4 plus closing streams.
    V5,
}

impl Framing {
    fn of(protocol: Option<&str>) -> Self {
        match protocol {
            Some("v5.channel.k8s.io") => Self::V5,
            Some("v4.channel.k8s.io") => Self::V4,
            _ => Self::V1,
        }
    }
}

#[derive(Debug, Clone)]
struct ExecOptions {
    command: Vec<String>,
    stdin: bool,
    stdout: bool,
    stderr: bool,
    tty: bool,
}

impl ExecOptions {
    /// The API's names (`stdin`, `stdout`, `stderr`) and the kubelet's (`input`, `output`, `error`).
    fn parse(query: &Query) -> Self {
        let tty = query.flag(&["tty"]);
        Self {
            command: query.all("command").map(str::to_owned).collect(),
            stdin: query.flag(&["stdin", "input"]),
            stdout: query.flag(&["stdout", "output"]),
            // A terminal has one output stream.
            stderr: query.flag(&["stderr", "error"]) && !tty,
            tty,
        }
    }
}

/// How the command ended.
enum Outcome {
    Exited(i32),
    NotStarted(SpawnError),
}

pub(super) fn handle(
    request: Request<Incoming>,
    pod: Arc<PodRuntime>,
    container: &str,
    shutdown: &CancellationToken,
) -> Response<Body> {
    if !wants_upgrade_to(&request, "websocket") {
        return text(
            StatusCode::BAD_REQUEST,
            format!("exec needs a WebSocket upgrade with one of the subprotocols {PROTOCOLS:?}"),
        );
    }
    let options = ExecOptions::parse(&Query::of(request.uri()));
    if options.command.is_empty() {
        return text(
            StatusCode::BAD_REQUEST,
            "you must specify at least one command for the container",
        );
    }
    let running = pod
        .container(container)
        .is_some_and(|c| c.log.state().phase == RunPhase::Running);
    if !running {
        return text(
            StatusCode::NOT_FOUND,
            format!("container not found ({container:?})"),
        );
    }
    let protocol = match choose_protocol(&request, &PROTOCOLS) {
        Ok(protocol) => protocol,
        Err(response) => return *response,
    };
    let framing = Framing::of(protocol);
    let container = container.to_owned();
    let ticket = pod.open_session();
    accept_websocket(
        request,
        protocol,
        shutdown,
        ticket,
        move |socket| async move {
            session(socket, framing, options, pod, container).await;
        },
    )
}

async fn session(
    socket: WebSocket,
    framing: Framing,
    options: ExecOptions,
    pod: Arc<PodRuntime>,
    container: String,
) {
    let (mut sink, mut incoming) = socket.split();
    let env = environment(&pod, &container, options.tty);
    let root = pod.root_dir();
    let command = ExecCommand {
        command: &options.command,
        cwd: &root,
        env: &env,
        namespaces: pod.namespaces(),
        stdin: options.stdin,
        stdout: options.stdout,
        stderr: options.stderr,
        tty: options.tty,
    };
    let (queue, queued) = mpsc::channel(OUTPUT_QUEUE);
    let outcome = tokio::select! {
        (outcome, _) = async { tokio::join!(run(&command, &options, framing, queue, &mut incoming), write_out(&mut sink, queued)) } => outcome,
        () = pod.stopped() => None,
    };
    // Without an outcome the client went away, or the pod did: the process is killed, there is
    // no status to report.
    if let Some(status) =
        outcome.and_then(|outcome| status_message(&outcome, &options.command, framing))
    {
        let _ = sink.send(frame(STATUS, status.as_bytes())).await;
    }
    close(sink, incoming).await;
}

/// Runs the command with the client's streams; `None` if the client went away first (the process
/// and its group are then killed as they are dropped).
async fn run(
    command: &ExecCommand<'_>,
    options: &ExecOptions,
    framing: Framing,
    queue: mpsc::Sender<Message>,
    incoming: &mut SplitStream<WebSocket>,
) -> Option<Outcome> {
    let process = match command.spawn() {
        Ok(process) => process,
        Err(error) => {
            // Where the runtime's complaint shows up, as with a real container runtime.
            let channel = if options.stderr { STDERR } else { STDOUT };
            if options.stderr || options.stdout {
                let line = format!(
                    "OCI runtime exec failed: exec failed: unable to start container process: {}: unknown\r\n",
                    error.message
                );
                let _ = queue.send(frame(channel, line.as_bytes())).await;
            }
            return Some(Outcome::NotStarted(error));
        }
    };
    let mut child = process.child;
    let _group = process.group;
    let (input, outputs): (Input, Vec<Output>) = match process.io {
        ExecIo::Pipes {
            stdin,
            stdout,
            stderr,
        } => {
            let mut outputs: Vec<Output> = Vec::new();
            if let Some(stdout) = stdout {
                outputs.push((STDOUT, Box::new(stdout)));
            }
            if let Some(stderr) = stderr {
                outputs.push((STDERR, Box::new(stderr)));
            }
            (stdin.map_or(Input::None, Input::Pipe), outputs)
        }
        ExecIo::Pty { read, write } => (Input::Pty(write), vec![(STDOUT, Box::new(read))]),
    };
    let (exited, on_exit) = oneshot::channel::<()>();
    let copy = async {
        let all = join_all(
            outputs
                .into_iter()
                .map(|(channel, reader)| copy_out(channel, reader, queue.clone())),
        );
        tokio::select! {
            _ = all => {}
            _ = async { let _ = on_exit.await; tokio::time::sleep(OUTPUT_GRACE).await } => {}
        }
    };
    let wait = async {
        let status = child.wait().await;
        let _ = exited.send(());
        status
    };
    tokio::select! {
        (status, ()) = async { tokio::join!(wait, copy) } => {
            Some(Outcome::Exited(status.map_or(128, exit_code)))
        }
        () = pump_input(incoming, input, framing) => None,
    }
}

/// A process output stream and its channel.
type Output = (u8, Box<dyn AsyncRead + Unpin + Send>);

/// Where stdin and resize messages go.
enum Input {
    None,
    Pipe(tokio::process::ChildStdin),
    Pty(pty_process::OwnedWritePty),
}

impl Input {
    /// Writes to the process's stdin; once that fails (the process is gone) input is dropped.
    async fn write(&mut self, data: &[u8]) {
        let written = match self {
            Self::None => return,
            Self::Pipe(stdin) => stdin.write_all(data).await,
            Self::Pty(pty) => pty.write_all(data).await,
        };
        if written.is_err() {
            *self = Self::None;
        }
    }

    fn resize(&self, size: &[u8]) {
        if let Self::Pty(pty) = self
            && let Ok(size) = serde_json::from_slice::<TerminalSize>(size)
        {
            let _ = pty.resize(pty_process::Size::new(size.height, size.width));
        }
    }

    /// EOF on stdin; a terminal has no such thing, its process reads on.
    fn close(&mut self) {
        if let Self::Pipe(_) = self {
            *self = Self::None;
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TerminalSize {
    width: u16,
    height: u16,
}

/// Feeds the client's stdin and resize messages to the process; returns when the client closes
/// the connection or it breaks.
async fn pump_input(incoming: &mut SplitStream<WebSocket>, mut input: Input, framing: Framing) {
    while let Some(message) = incoming.next().await {
        let data = match message {
            Ok(Message::Binary(data)) => data,
            Ok(Message::Close(_)) | Err(_) => return,
            Ok(_) => continue,
        };
        match data.first().copied() {
            Some(STDIN) => input.write(&data[1..]).await,
            Some(RESIZE) => input.resize(&data[1..]),
            Some(CLOSE_STREAM) if framing == Framing::V5 && data.get(1) == Some(&STDIN) => {
                input.close()
            }
            _ => {}
        }
    }
}

/// The process environment, as root's in the container: the container's `env`, then the pod's
/// `PATH` and `HOME` = the pod's `root/` (these two always: the container's own paths do not
/// exist here).
fn environment(pod: &PodRuntime, container: &str, tty: bool) -> Vec<(String, String)> {
    let env = pod
        .container(container)
        .map(|c| c.env())
        .unwrap_or_default();
    let mut set = vec![
        ("PATH", pod.path().to_owned()),
        ("HOME", pod.root_dir().display().to_string()),
        ("HOSTNAME", pod.name.clone()),
    ];
    if tty {
        set.push(("TERM", "xterm".to_owned()));
    }
    container_env::overlay(&env, |_| false, set)
}

/// What channel 3 carries at the end, as the kubelet writes it (v1: the error text only).
fn status_message(outcome: &Outcome, command: &[String], framing: Framing) -> Option<String> {
    let command = format!("[{}]", command.join(" "));
    let (code, reason) = match outcome {
        Outcome::Exited(0) => {
            return (framing != Framing::V1)
                .then(|| json!({"metadata": {}, "status": "Success"}).to_string());
        }
        Outcome::Exited(code) => (*code, String::new()),
        Outcome::NotStarted(error) => (error.exit_code, format!(": {}", error.message)),
    };
    let message = format!(
        "command terminated with non-zero exit code: error executing command {command}{reason}, exit code {code}"
    );
    if framing == Framing::V1 {
        return Some(message);
    }
    Some(
        json!({
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
        })
        .to_string(),
    )
}
