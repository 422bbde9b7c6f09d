//! `cp`: files and folders to and from a sandbox as a tar stream over exec, run as the
//! devcontainer's user in the workspace folder (so relative sandbox paths start there).

use std::path::{Path, PathBuf};

use claude_sandbox_core::{
    ConfigError, Field, SandboxName,
    remote::{self, Session},
};
use claude_sandbox_kube::{
    Error as ClusterError,
    exec::{ExecProcess, ExecStreams},
    sandbox_pod::SandboxPod,
};
use tokio::{io::AsyncReadExt, task::JoinHandle};
use tokio_util::io::SyncIoBridge;

use super::session::running_pod;
use crate::{
    cli::{CpArgs, GlobalArgs},
    error::{Error, Exit},
};

/// One side of a copy.
#[derive(Debug, PartialEq, Eq)]
enum Location {
    Local(PathBuf),
    Sandbox { name: String, path: String },
}

impl Location {
    /// `NAME:PATH` is a sandbox path when NAME is a sandbox name; anything else is local
    /// (write `./a:b` for a local file with a colon).
    fn parse(value: &str) -> Self {
        match value.split_once(':') {
            Some((name, path))
                if SandboxName::parse(Field::new("SOURCE", "source"), name).is_ok() =>
            {
                Self::Sandbox {
                    name: name.to_owned(),
                    path: if path.is_empty() {
                        ".".to_owned()
                    } else {
                        path.to_owned()
                    },
                }
            }
            _ => Self::Local(PathBuf::from(value)),
        }
    }
}

pub async fn run(args: &CpArgs, global: &GlobalArgs) -> Result<Exit, Error> {
    match (
        Location::parse(&args.source),
        Location::parse(&args.destination),
    ) {
        (Location::Local(source), Location::Sandbox { name, path }) => {
            let name_in_archive = archive_name(&source)?;
            let (_, pod) = running_pod(global, &name).await?;
            upload(&pod, source, &path, &name_in_archive).await?;
        }
        (Location::Sandbox { name, path }, Location::Local(destination)) => {
            let (_, pod) = running_pod(global, &name).await?;
            download(&pod, &path, destination).await?;
        }
        _ => {
            return Err(ConfigError::Usage(
                "cp needs exactly one side in a sandbox, as NAME:PATH (e.g. `claude-sandbox cp ./src dev:src`)".to_owned(),
            )
            .into());
        }
    }
    Ok(Exit::Success)
}

/// The top-level entry's name: the source's last component.
fn archive_name(source: &Path) -> Result<String, Error> {
    let absolute = std::path::absolute(source)?;
    if !absolute.exists() {
        return Err(
            ConfigError::Usage(format!("{}: no such file or folder", source.display())).into(),
        );
    }
    let canonical = absolute.canonicalize()?;
    Ok(canonical
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| ".".to_owned()))
}

async fn upload(pod: &SandboxPod, source: PathBuf, dest: &str, name: &str) -> Result<(), Error> {
    let name = name.to_owned();
    run_script(pod, &remote::cp_upload(dest, &name), true, move |process| {
        let stdin = process.stdin.take().expect("stdin was asked for");
        tokio::task::spawn_blocking(move || {
            let mut builder = tar::Builder::new(SyncIoBridge::new(stdin));
            builder.follow_symlinks(false);
            if source.is_dir() {
                builder.append_dir_all(&name, &source)?;
            } else {
                builder.append_path_with_name(&source, &name)?;
            }
            builder.into_inner()?.shutdown()
        })
    })
    .await
}

async fn download(pod: &SandboxPod, source: &str, destination: PathBuf) -> Result<(), Error> {
    run_script(pod, &remote::cp_download(source), false, move |process| {
        let stdout = process.stdout.take().expect("stdout was asked for");
        tokio::task::spawn_blocking(move || unpack(SyncIoBridge::new(stdout), &destination))
    })
    .await
}

/// Runs a cp script as the devcontainer's user while `transfer` moves the tar stream through
/// the process's stdin or stdout; the script's own message wins over the transfer's error.
async fn run_script(
    pod: &SandboxPod,
    script: &[String],
    stdin: bool,
    transfer: impl FnOnce(&mut ExecProcess) -> JoinHandle<std::io::Result<()>>,
) -> Result<(), Error> {
    let command = Session::default().command(script);
    let mut process = pod
        .exec(
            &command,
            ExecStreams {
                stdin,
                stdin_end: true,
                tty: false,
            },
        )
        .await?;
    let mut stderr = process.stderr.take().expect("stderr was asked for");
    let transferred = transfer(&mut process);
    let mut said = Vec::new();
    let (transferred, _) = tokio::join!(transferred, stderr.read_to_end(&mut said));
    finish(pod, process, &said).await?;
    transferred.expect("the tar task does not panic")?;
    Ok(())
}

/// Unpacks into `destination` when it is a folder, else as `destination` itself.
fn unpack(stream: impl std::io::Read, destination: &Path) -> std::io::Result<()> {
    let mut archive = tar::Archive::new(stream);
    archive.set_preserve_permissions(true);
    archive.set_preserve_mtime(true);
    if destination.is_dir() {
        return archive.unpack(destination);
    }
    let parent = match destination.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    // Unpacked aside, then renamed, so a failed copy leaves nothing half-written in its place.
    let staging = tempfile::Builder::new()
        .prefix(".claude-sandbox-cp.")
        .tempdir_in(&parent)?;
    archive.unpack(staging.path())?;
    let root = std::fs::read_dir(staging.path())?
        .next()
        .transpose()?
        .ok_or_else(|| std::io::Error::other("the sandbox sent an empty archive"))?;
    std::fs::rename(root.path(), destination)
}

/// The copy's outcome: the script's own message when it failed.
async fn finish(pod: &SandboxPod, process: ExecProcess, said: &[u8]) -> Result<(), Error> {
    let code = process.exit_code().await?;
    if code == 0 {
        return Ok(());
    }
    let said = String::from_utf8_lossy(said);
    let message = said
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.trim().trim_start_matches("claude-sandbox: ").to_owned())
        .unwrap_or_else(|| format!("tar exited with code {code}"));
    Err(ClusterError::Access(format!("cp in sandbox {}: {message}", pod.sandbox)).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_paths_are_name_colon_path() {
        assert_eq!(
            Location::parse("dev:/tmp/x"),
            Location::Sandbox {
                name: "dev".into(),
                path: "/tmp/x".into()
            }
        );
        assert_eq!(
            Location::parse("dev:"),
            Location::Sandbox {
                name: "dev".into(),
                path: ".".into()
            }
        );
        assert_eq!(Location::parse("./a:b"), Location::Local("./a:b".into()));
        assert_eq!(Location::parse("/tmp/x"), Location::Local("/tmp/x".into()));
        assert_eq!(Location::parse("C:x"), Location::Local("C:x".into()));
    }
}
