//! `connect`: a local port tunnelled to code-server until Ctrl-C; each connection gets its own
//! stream, so one that drops (a kubelet or API server restart, a new pod) does not end the others.

use std::{io::ErrorKind, sync::Arc};

use claude_sandbox_core::layout;
use claude_sandbox_kube::sandbox_pod::SandboxPod;
use tokio::net::TcpListener;

use super::tunnel_args;
use crate::{
    cli::{ConnectArgs, GlobalArgs},
    error::{Error, Exit},
    terminal,
};

/// How many ports after `--port` are tried when it is taken.
const PORT_ATTEMPTS: u16 = 100;

pub async fn run(args: &ConnectArgs, global: &GlobalArgs) -> Result<Exit, Error> {
    let (_, tunnel) = tunnel_args::open(
        global,
        &args.sandbox.name,
        layout::CODE_SERVER_PORT,
        &args.tunnel,
    )
    .await?;
    let listener = bind(args.port).await?;
    let port = listener.local_addr()?.port();
    let url = format!("http://localhost:{port}/");
    let transport = tunnel.transport().await;
    let password = tunnel
        .pod()
        .await
        .map(|pod| password_source(&pod))
        .unwrap_or_default();
    terminal::write_stdout(&format!(
        "code-server of sandbox {} at {url} (via {transport}){password}\nPress Ctrl-C to stop.\n",
        args.sandbox.name
    ))?;
    if args.open {
        open_browser(&url);
    }
    let tunnel = Arc::new(tunnel);
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            accepted = listener.accept() => {
                let (mut local, peer) = accepted?;
                let tunnel = tunnel.clone();
                tokio::spawn(async move {
                    if let Err(error) = tunnel.carry(&mut local).await {
                        terminal::print_warning(format!("connection from {peer}: {error}; the next one reconnects"));
                    }
                });
            }
        }
    }
    Ok(Exit::Success)
}

/// Listens on 127.0.0.1:`port`, or the next free port (any free port for 0).
async fn bind(port: u16) -> Result<TcpListener, Error> {
    if port == 0 {
        return Ok(TcpListener::bind(("127.0.0.1", 0)).await?);
    }
    let mut last = None;
    for candidate in port..=port.saturating_add(PORT_ATTEMPTS) {
        match TcpListener::bind(("127.0.0.1", candidate)).await {
            Ok(listener) => return Ok(listener),
            Err(e) if e.kind() == ErrorKind::AddrInUse => last = Some(e),
            Err(e) => return Err(e.into()),
        }
    }
    Err(last
        .unwrap_or_else(|| std::io::Error::new(ErrorKind::AddrInUse, "no free port"))
        .into())
}

/// Where code-server's password comes from, when it wants one: the Secret key, never the value.
fn password_source(pod: &SandboxPod) -> String {
    let secret = pod
        .secret_env()
        .into_iter()
        .find(|e| e.variable == layout::env::CODE_SERVER_PASSWORD)
        .map(|e| e.secret);
    match secret {
        Some(secret) => format!(
            "\nPassword: key {key} of Secret {secret} (kubectl get secret {secret} -o jsonpath='{{.data.{key}}}' | base64 -d)",
            key = layout::env::CODE_SERVER_PASSWORD
        ),
        None => String::new(),
    }
}

/// Opens `url` with the desktop's handler; says so when there is none.
fn open_browser(url: &str) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let opened = std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if let Err(error) = opened {
        terminal::print_warning(format!(
            "cannot open a browser ({opener}: {error}); open {url} yourself"
        ));
    }
}
