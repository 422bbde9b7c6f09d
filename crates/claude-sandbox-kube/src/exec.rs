//! Running commands in a sandbox's devcontainer through the API server's exec (WebSocket), and
//! reading how they ended.
//!
//! API servers before Kubernetes 1.30 speak the WebSocket protocol v4, which cannot tell a command
//! that its stdin ended: closing stdin closes the whole session, and the exit status is lost. On
//! those, a stdin whose end matters (a pipe or a file, not a terminal or a tunnel) is framed in
//! band instead: base64 lines, then a `.` line, which a shell pipeline in front of the command
//! decodes (sed and base64, in every Debian image), so the command sees a real end of input.

use std::{
    io::ErrorKind,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use claude_sandbox_core::layout;
use futures::channel::mpsc::Sender;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::api::{AttachParams, AttachedProcess, TerminalSize};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf, ReadHalf, SimplexStream, WriteHalf},
    sync::oneshot,
};
use tokio_util::sync::{CancellationToken, DropGuard, WaitForCancellationFutureOwned};

use crate::{error::Error, sandbox_pod::SandboxPod};

/// Where terminal sizes go.
pub type TerminalSizeSender = Sender<TerminalSize>;

/// Per-stream buffer between the WebSocket and the caller; kube's default (1 KiB) makes bulk
/// transfers (tunnels, `cp`) slow.
const STREAM_BUFFER: usize = 256 * 1024;

/// Which streams an exec session carries.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExecStreams {
    pub stdin: bool,
    /// The command must see stdin end (a pipe or a file; a tunnel ends with its connection).
    pub stdin_end: bool,
    /// A terminal: stdout only, and resizes.
    pub tty: bool,
}

/// What decodes a framed stdin in front of `"$@"` (see the module's comment): the first sed stops
/// at the `.` line, the second drops it.
const FRAMED_STDIN: &str = r#"sed -u '/^\.$/q' | sed '$d' | base64 -d | "$@""#;
/// Input bytes per framed line.
const FRAME: usize = 48 * 1024;

/// What a command printed and how it ended.
#[derive(Debug, Clone)]
pub struct ExecOutput {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl ExecOutput {
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// stderr's last non-empty line: what a failing script said.
    pub fn stderr_line(&self) -> String {
        String::from_utf8_lossy(&self.stderr)
            .lines()
            .rev()
            .find(|line| !line.trim().is_empty())
            .unwrap_or_default()
            .trim()
            .to_owned()
    }
}

impl SandboxPod {
    /// Starts `command` in the devcontainer (as the image's user, with the pod spec's environment).
    pub async fn exec(
        &self,
        command: &[String],
        streams: ExecStreams,
    ) -> Result<ExecProcess, Error> {
        let framed = streams.stdin && streams.stdin_end && !streams.tty && !self.stdin_close;
        tracing::debug!(pod = %self.name, program = ?command.first(), tty = streams.tty, framed, "exec");
        let command: Vec<String> = if framed {
            ["sh", "-c", FRAMED_STDIN, "claude-sandbox-stdin"]
                .into_iter()
                .map(str::to_owned)
                .chain(command.iter().cloned())
                .collect()
        } else {
            command.to_vec()
        };
        let params = AttachParams {
            container: Some(layout::CONTAINER_NAME.to_owned()),
            stdin: streams.stdin,
            stdout: true,
            stderr: !streams.tty,
            tty: streams.tty,
            max_stdin_buf_size: Some(STREAM_BUFFER),
            max_stdout_buf_size: Some(STREAM_BUFFER),
            max_stderr_buf_size: Some(STREAM_BUFFER),
        };
        let process = self
            .api
            .exec(&self.name, command, &params)
            .await
            .map_err(|e| self.stream_error(e, "exec", "exec in"))?;
        Ok(ExecProcess::new(process, &self.sandbox, framed))
    }

    /// Runs `command` to the end with `stdin` as its input, collecting its output.
    pub async fn run(&self, command: &[String], stdin: Option<&[u8]>) -> Result<ExecOutput, Error> {
        let mut process = self
            .exec(
                command,
                ExecStreams {
                    stdin: stdin.is_some(),
                    stdin_end: true,
                    tty: false,
                },
            )
            .await?;
        let writer = process.stdin.take();
        let input = async move {
            if let (Some(mut writer), Some(data)) = (writer, stdin) {
                // The process may exit without reading everything: not an error of ours.
                let _ = writer.write_all(data).await;
                let _ = writer.shutdown().await;
            }
        };
        let mut stdout = process.stdout.take().expect("stdout was asked for");
        let mut stderr = process.stderr.take().expect("stderr was asked for");
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let ((), read_out, read_err) = tokio::join!(
            input,
            stdout.read_to_end(&mut out),
            stderr.read_to_end(&mut err)
        );
        read_out
            .and(read_err)
            .map_err(|e| Error::Access(format!("reading from sandbox {}: {e}", self.sandbox)))?;
        let code = process.exit_code().await?;
        Ok(ExecOutput {
            code,
            stdout: out,
            stderr: err,
        })
    }
}

/// A command running in a sandbox. kube-rs leaves the output streams open when the connection
/// breaks (it only closes them after an exit status), so they end with an error then instead.
pub struct ExecProcess {
    pub stdin: Option<WriteHalf<SimplexStream>>,
    pub stdout: Option<SessionReader>,
    pub stderr: Option<SessionReader>,
    /// Terminal resizes, with a TTY.
    pub terminal_size: Option<TerminalSizeSender>,
    status: oneshot::Receiver<Option<Status>>,
    sandbox: String,
    /// Ends a framed stdin's hold on the session (with the status, or with this process).
    _ended: DropGuard,
    /// The session ends when the process and its readers are all dropped.
    _session: Arc<AttachedProcess>,
}

impl ExecProcess {
    fn new(mut process: AttachedProcess, sandbox: &str, framed: bool) -> Self {
        let lost = CancellationToken::new();
        let ended = CancellationToken::new();
        let (status_tx, status) = oneshot::channel();
        let status_future = process.take_status();
        let on_status = lost.clone();
        let on_end = ended.clone();
        tokio::spawn(async move {
            let status = match status_future {
                Some(future) => future.await,
                None => None,
            };
            if status.is_none() {
                on_status.cancel();
            }
            on_end.cancel();
            let _ = status_tx.send(status);
        });
        let stdin = match process.stdin() {
            Some(writer) if framed => Some(framed_stdin(writer, ended.clone())),
            other => other,
        };
        let (stdout, stderr) = (process.stdout(), process.stderr());
        let terminal_size = process.terminal_size();
        let session = Arc::new(process);
        let reader = |r: Option<ReadHalf<SimplexStream>>| {
            r.map(|inner| SessionReader {
                inner,
                lost: Box::pin(lost.clone().cancelled_owned()),
                _session: session.clone(),
            })
        };
        Self {
            stdin,
            stdout: reader(stdout),
            stderr: reader(stderr),
            terminal_size,
            status,
            sandbox: sandbox.to_owned(),
            _ended: ended.drop_guard(),
            _session: session,
        }
    }

    /// The exit code in the final status: 0 on success, the command's code on failure.
    pub async fn exit_code(self) -> Result<i32, Error> {
        let sandbox = self.sandbox.clone();
        let status = self.status.await.ok().flatten().ok_or_else(|| {
            Error::Access(format!(
                "the exec session in sandbox {sandbox} ended without an exit status (the connection was lost)"
            ))
        })?;
        code_of(&status).map_err(|message| {
            Error::Access(format!("exec in sandbox {sandbox} failed: {message}"))
        })
    }
}

/// The writer of a framed stdin: what is written to it goes to `session` as base64 lines, and its
/// end as a `.` line. `session` itself stays open until `ended`: dropping it would close the
/// whole session (protocol v4).
fn framed_stdin(
    mut session: WriteHalf<SimplexStream>,
    ended: CancellationToken,
) -> WriteHalf<SimplexStream> {
    use base64::Engine;
    let (mut input, writer) = tokio::io::simplex(STREAM_BUFFER);
    tokio::spawn(async move {
        let mut chunk = vec![0; FRAME];
        loop {
            let n = match input.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let mut line = base64::engine::general_purpose::STANDARD.encode(&chunk[..n]);
            line.push('\n');
            if session.write_all(line.as_bytes()).await.is_err() {
                return;
            }
        }
        let _ = session.write_all(b".\n").await;
        let _ = session.flush().await;
        ended.cancelled().await;
    });
    writer
}

/// An output stream of an [`ExecProcess`]: what arrived, then the end, or an error once the
/// connection is lost.
pub struct SessionReader {
    inner: ReadHalf<SimplexStream>,
    lost: Pin<Box<WaitForCancellationFutureOwned>>,
    /// kube-rs closes the stream after the exit status: the session must outlive the status.
    _session: Arc<AttachedProcess>,
}

impl AsyncRead for SessionReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Pending if self.lost.as_mut().poll(cx).is_ready() => {
                Poll::Ready(Err(std::io::Error::new(
                    ErrorKind::ConnectionAborted,
                    "the connection to the sandbox was lost",
                )))
            }
            other => other,
        }
    }
}

/// Reads a kubelet exec `Status`: Success, or Failure with reason NonZeroExitCode and the code
/// as the message of an `ExitCode` cause; any other failure is an error message.
fn code_of(status: &Status) -> Result<i32, String> {
    if status.status.as_deref() == Some("Success") {
        return Ok(0);
    }
    let code = status
        .details
        .as_ref()
        .and_then(|d| d.causes.as_ref())
        .into_iter()
        .flatten()
        .find(|c| c.reason.as_deref() == Some("ExitCode"))
        .and_then(|c| c.message.as_deref()?.parse().ok());
    match (status.reason.as_deref(), code) {
        (Some("NonZeroExitCode"), Some(code)) => Ok(code),
        _ => Err(status
            .message
            .clone()
            .unwrap_or_else(|| "no reason given".to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{StatusCause, StatusDetails};

    use super::*;

    fn failure(reason: &str, code: Option<&str>, message: &str) -> Status {
        Status {
            status: Some("Failure".into()),
            reason: Some(reason.into()),
            message: Some(message.into()),
            details: Some(StatusDetails {
                causes: Some(
                    code.into_iter()
                        .map(|code| StatusCause {
                            reason: Some("ExitCode".into()),
                            message: Some(code.into()),
                            ..StatusCause::default()
                        })
                        .collect(),
                ),
                ..StatusDetails::default()
            }),
            ..Status::default()
        }
    }

    #[test]
    fn statuses_become_exit_codes_or_messages() {
        let success = Status {
            status: Some("Success".into()),
            ..Status::default()
        };
        assert_eq!(code_of(&success), Ok(0));
        assert_eq!(
            code_of(&failure(
                "NonZeroExitCode",
                Some("137"),
                "command terminated with non-zero exit code"
            )),
            Ok(137)
        );
        assert_eq!(
            code_of(&failure(
                "InternalError",
                None,
                "exec: \"x\": executable file not found"
            )),
            Err("exec: \"x\": executable file not found".to_owned())
        );
    }
}
