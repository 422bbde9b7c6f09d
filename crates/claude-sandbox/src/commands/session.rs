//! Running a command in the sandbox with the local stdio attached: `shell`, `claude`, `exec`.

use claude_sandbox_core::{Field, UserName, remote::Session};
use claude_sandbox_kube::{cluster::Cluster, exec::ExecStreams, sandbox_pod::SandboxPod};
use futures::SinkExt;
use kube::api::TerminalSize;
use tokio::io::{AsyncWriteExt, copy};

use super::existing_sandbox;
use crate::{
    cli::{GlobalArgs, SessionArgs},
    error::{Error, Exit},
    tty::{self, RawMode},
};

/// The running pod of sandbox `name`.
pub async fn running_pod(global: &GlobalArgs, name: &str) -> Result<(Cluster, SandboxPod), Error> {
    let (cluster, sandbox) = existing_sandbox(global, name).await?;
    let pod = SandboxPod::resolve(&cluster, &sandbox).await?;
    Ok((cluster, pod))
}

/// `--user` and `--workdir`, checked.
pub fn session(args: &SessionArgs) -> Result<Session, Error> {
    if let Some(user) = &args.user {
        UserName::parse(Field::new("--user", "user"), user)?;
    }
    Ok(Session {
        user: args.user.clone(),
        workdir: args.workdir.clone(),
        term: None,
    })
}

/// Runs `command` in `session`, with a remote terminal when `tty` and ours is one; returns its
/// exit code.
pub async fn run(
    pod: &SandboxPod,
    session: Session,
    command: &[String],
    tty: bool,
) -> Result<Exit, Error> {
    let interactive = tty && tty::is_interactive();
    let session = Session {
        term: interactive
            .then(|| std::env::var("TERM").unwrap_or_else(|_| "xterm-256color".to_owned())),
        ..session
    };
    let mut process = pod
        .exec(
            &session.command(command),
            ExecStreams {
                stdin: true,
                stdin_end: true,
                tty: interactive,
            },
        )
        .await?;
    let _raw = interactive.then(RawMode::enable).transpose()?;
    if let Some(mut sizes) = process.terminal_size.take() {
        tokio::spawn(async move {
            let Ok(mut resized) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
            else {
                return;
            };
            loop {
                if let Some((width, height)) = tty::size()
                    && sizes.send(TerminalSize { width, height }).await.is_err()
                {
                    return;
                }
                if resized.recv().await.is_none() {
                    return;
                }
            }
        });
    }
    let mut remote_stdin = process.stdin.take().expect("stdin was asked for");
    // Input ends when ours does; a process that exits first simply stops reading it.
    tokio::spawn(async move {
        let _ = copy(&mut tokio::io::stdin(), &mut remote_stdin).await;
        let _ = remote_stdin.shutdown().await;
    });
    let mut remote_stdout = process.stdout.take().expect("stdout was asked for");
    let stdout = async {
        let mut local = tokio::io::stdout();
        copy(&mut remote_stdout, &mut local).await?;
        local.flush().await
    };
    let remote_stderr = process.stderr.take();
    let stderr = async {
        match remote_stderr {
            Some(mut remote) => {
                let mut local = tokio::io::stderr();
                copy(&mut remote, &mut local).await?;
                local.flush().await
            }
            None => Ok(()),
        }
    };
    let (out, err) = tokio::join!(stdout, stderr);
    // A lost connection breaks the copies too: the session's own error says it best.
    let code = process.exit_code().await?;
    out.and(err)?;
    Ok(Exit::remote(code))
}
