//! The git server of a real node: a snapshot of a repository (its checked-out files, uncommitted
//! and untracked-but-not-ignored ones included) as a one-commit bare repository, served read-only
//! by `git daemon` on the node's bridge address, where pods (the envbuilder stand-in) clone it.

use std::{
    net::Ipv4Addr,
    path::{Path, PathBuf},
    process::Command,
};

use crate::error::Error;

/// The branch the snapshot is on.
pub(crate) const BRANCH: &str = "main";

/// Snapshots the repository holding `source` into `<served>/<name>.git`; returns `name` (the
/// repository folder's name).
pub(crate) fn snapshot(source: &Path, served: &Path) -> Result<String, Error> {
    let top = git(source, &["rev-parse", "--show-toplevel"], &[]).map_err(|message| {
        Error::State(format!(
            "the git server serves a git repository, and {} is in none ({message}); pass --git-repo",
            source.display()
        ))
    })?;
    let top = PathBuf::from(top.trim());
    let name = top
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "repository".to_owned());
    let bare = served.join(format!("{name}.git"));
    let _ = std::fs::remove_dir_all(&bare);
    std::fs::create_dir_all(served).map_err(Error::io("creating", served))?;
    let step = |args: &[&str], env: &[(&str, &Path)]| {
        git(&top, args, env).map_err(|message| Error::Build {
            step: format!("git {}", args.join(" ")),
            message,
        })
    };
    let bare_str = bare.display().to_string();
    step(
        &[
            "init",
            "--quiet",
            "--bare",
            "--initial-branch",
            BRANCH,
            &bare_str,
        ],
        &[],
    )?;
    // The source's work tree with the snapshot's own git directory: its .gitignore files apply,
    // and nothing is written into the source repository.
    let env = [
        ("GIT_DIR", bare.as_path()),
        ("GIT_WORK_TREE", top.as_path()),
    ];
    step(&["add", "--all"], &env)?;
    step(
        &[
            "-c",
            "user.name=kube-testbed",
            "-c",
            "user.email=kube-testbed@localhost",
            "commit",
            "--quiet",
            "--no-verify",
            "--message",
            "kube-testbed snapshot of the working tree",
        ],
        &env,
    )?;
    // A bare repository keeps no index; git daemon exports only what says so.
    let _ = std::fs::remove_file(bare.join("index"));
    std::fs::write(bare.join("git-daemon-export-ok"), "")
        .map_err(Error::io("writing", bare.join("git-daemon-export-ok")))?;
    Ok(name)
}

/// `git daemon`'s arguments: read-only (upload-pack only), `served` as base path.
pub(crate) fn daemon_args(served: &Path, address: Ipv4Addr, port: u16) -> Vec<String> {
    vec![
        "daemon".to_owned(),
        "--reuseaddr".to_owned(),
        "--informative-errors".to_owned(),
        format!("--base-path={}", served.display()),
        format!("--listen={address}"),
        format!("--port={port}"),
        served.display().to_string(),
    ]
}

/// The clone URL pods use.
pub(crate) fn clone_url(address: Ipv4Addr, port: u16, name: &str) -> String {
    format!("git://{address}:{port}/{name}.git")
}

fn git(dir: &Path, args: &[&str], env: &[(&str, &Path)]) -> Result<String, String> {
    let mut command = Command::new("git");
    command.current_dir(dir).args(args);
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().map_err(|e| format!("running git: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_owned())
    }
}
