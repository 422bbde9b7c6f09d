//! The devcontainer image's Debian root filesystem: `debootstrap --variant=minbase` with the
//! recipe's package list, from the mirror this machine's apt uses, cached as a tar archive keyed by
//! that list (so that a change elsewhere in the recipe does not bootstrap again).

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use super::{DEVCONTAINER_PACKAGES, Dirs, SUITE, recipe_hash, remove_file};
use crate::{
    build::{
        debian::{System, run_logged},
        step,
    },
    error::Error,
};

const DEB822_DIR: &str = "/etc/apt/sources.list.d";
const ONE_LINE_SOURCES: &str = "/etc/apt/sources.list";
const VARIANT: &str = "minbase";

/// The packages of a `packages.txt`: one a line, `#` comments and blank lines skipped.
pub(super) fn package_list(text: &str) -> Vec<&str> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .filter(|l| !l.is_empty())
        .collect()
}

/// The cached debootstrap archive of the current package list, bootstrapped when missing.
pub(super) fn base_tarball(system: &System, dirs: &Dirs) -> Result<PathBuf, Error> {
    let packages = package_list(DEVCONTAINER_PACKAGES);
    let key = recipe_hash(&[
        ("suite", SUITE.as_bytes()),
        ("variant", VARIANT.as_bytes()),
        ("packages", packages.join(",").as_bytes()),
    ]);
    let tarball = dirs
        .base
        .join(format!("debootstrap-{SUITE}-{}.tar", &key[..16]));
    if tarball.is_file() {
        step(&format!(
            "using the cached Debian root filesystem {}",
            tarball.display()
        ));
        return Ok(tarball);
    }
    let (mirror, keyring) = mirror()?;
    let target = dirs.work.join("debootstrap");
    remove_root_dir(system, &target, &dirs.log)?;
    step(&format!(
        "debootstrap --variant={VARIANT} {SUITE} with {} packages from {mirror} (1–2 minutes; log: {})",
        packages.len(),
        dirs.log.display()
    ));
    let mut debootstrap = system.root_command("debootstrap");
    debootstrap
        .arg(format!("--variant={VARIANT}"))
        .arg(format!("--include={}", packages.join(",")))
        .arg("--components=main");
    if let Some(keyring) = keyring {
        debootstrap.arg(format!("--keyring={}", keyring.display()));
    }
    debootstrap.arg(SUITE).arg(&target).arg(&mirror);
    run_logged("debootstrap", debootstrap, &dirs.log)?;

    // The package lists and downloaded packages are not part of the cache (nor of the image).
    let mut clean = system.root_command("sh");
    clean.args([
        "-c",
        r#"rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/archives/*.deb "$1"/var/cache/apt/*.bin"#,
        "clean",
    ]);
    clean.arg(&target);
    run_logged("clean the debootstrap result", clean, &dirs.log)?;

    let partial = tarball.with_extension("tar.partial");
    let mut tar = system.root_command("tar");
    tar.arg("-C")
        .arg(&target)
        .args(["--numeric-owner", "-cf"])
        .arg(&partial)
        .arg(".");
    run_logged("archive the debootstrap result", tar, &dirs.log)?;
    std::fs::rename(&partial, &tarball).map_err(Error::io("renaming", &partial))?;
    remove_root_dir(system, &target, &dirs.log)?;
    // Older archives (other package lists) go.
    if let Ok(entries) = std::fs::read_dir(&dirs.base) {
        for entry in entries.filter_map(|e| e.ok()) {
            if entry.path() != tarball {
                remove_file(&entry.path())?;
            }
        }
    }
    Ok(tarball)
}

/// Unpacks `tarball` into a fresh `dir`, as root (owners and modes kept).
pub(super) fn unpack(system: &System, tarball: &Path, dir: &Path, log: &Path) -> Result<(), Error> {
    remove_root_dir(system, dir, log)?;
    std::fs::create_dir_all(dir).map_err(Error::io("creating", dir))?;
    let mut tar = system.root_command("tar");
    tar.arg("-C")
        .arg(dir)
        .args(["--numeric-owner", "--same-permissions", "-xf"])
        .arg(tarball);
    run_logged("unpack the Debian root filesystem", tar, log)
}

/// Removes a folder that root owns parts of (a root filesystem), as root.
pub(super) fn remove_root_dir(system: &System, dir: &Path, log: &Path) -> Result<(), Error> {
    if !dir.exists() {
        return Ok(());
    }
    let mut rm = system.root_command("rm");
    rm.args(["-rf", "--one-file-system"]).arg(dir);
    run_logged("remove a root filesystem", rm, log)
}

/// The Debian mirror (and keyring, when named) of this machine's first `deb` entry for the suite,
/// in either sources format: the same archive apt installs from, which no code here names.
fn mirror() -> Result<(String, Option<PathBuf>), Error> {
    let mut deb822_files: Vec<PathBuf> = std::fs::read_dir(DEB822_DIR)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "sources"))
                .collect()
        })
        .unwrap_or_default();
    deb822_files.sort();
    for file in &deb822_files {
        if let Some(found) = std::fs::read_to_string(file)
            .ok()
            .and_then(|text| deb822_mirror(&text))
        {
            return Ok(found);
        }
    }
    let mut one_line_files = vec![PathBuf::from(ONE_LINE_SOURCES)];
    let mut lists: Vec<PathBuf> = std::fs::read_dir(DEB822_DIR)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "list"))
                .collect()
        })
        .unwrap_or_default();
    lists.sort();
    one_line_files.extend(lists);
    for file in &one_line_files {
        if let Some(found) = std::fs::read_to_string(file)
            .ok()
            .and_then(|text| one_line_mirror(&text))
        {
            return Ok(found);
        }
    }
    Err(Error::UnsupportedSystem(format!(
        "no `deb` entry for Debian {SUITE} in {ONE_LINE_SOURCES} or {DEB822_DIR}: debootstrap needs a mirror"
    )))
}

/// The first stanza offering `deb` for the suite: its first URI and its Signed-By file.
fn deb822_mirror(text: &str) -> Option<(String, Option<PathBuf>)> {
    text.split("\n\n").find_map(|stanza| {
        let field = |key: &str| {
            stanza
                .lines()
                .filter(|l| !l.trim_start().starts_with('#'))
                .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_owned()))
        };
        let types = field("Types:")?;
        let suites = field("Suites:")?;
        if !types.split_whitespace().any(|t| t == "deb")
            || !suites.split_whitespace().any(|s| s == SUITE)
            || field("Enabled:").is_some_and(|v| v == "no")
        {
            return None;
        }
        let uri = field("URIs:")?.split_whitespace().next()?.to_owned();
        let keyring = field("Signed-By:")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute());
        Some((uri, keyring))
    })
}

/// The first `deb [options] URI SUITE …` line for the suite.
fn one_line_mirror(text: &str) -> Option<(String, Option<PathBuf>)> {
    text.lines().map(str::trim).find_map(|line| {
        let rest = line.strip_prefix("deb ")?.trim();
        let (options, rest) = match rest.strip_prefix('[') {
            Some(after) => after.split_once(']').map(|(o, r)| (o, r.trim()))?,
            None => ("", rest),
        };
        let mut words = rest.split_whitespace();
        let uri = words.next()?;
        if words.next()? != SUITE {
            return None;
        }
        let keyring = options
            .split_whitespace()
            .find_map(|o| o.strip_prefix("signed-by="))
            .map(PathBuf::from);
        Some((uri.to_owned(), keyring))
    })
}

/// Runs an embedded recipe script as root: `sh -c SCRIPT NAME ARGS…` (arguments, not environment
/// variables: sudo would drop those).
pub(super) fn run_root_script(
    system: &System,
    name: &str,
    script: &str,
    args: &[&Path],
    log: &Path,
) -> Result<(), Error> {
    let mut sh = system.root_command("sh");
    sh.args(["-c", script, name]).args(args);
    run_logged(name, sh, log)
}

/// Runs an embedded recipe script as this user.
pub(super) fn run_script(
    name: &str,
    script: &str,
    args: &[&Path],
    log: &Path,
) -> Result<(), Error> {
    let mut sh = Command::new("sh");
    sh.args(["-c", script, name]).args(args);
    run_logged(name, sh, log)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_lists_skip_comments() {
        assert_eq!(
            package_list("# head\nbash\n\n  git  # for the clone\n#x\ncurl\n"),
            ["bash", "git", "curl"]
        );
    }

    #[test]
    fn the_mirror_comes_from_the_sources() {
        let deb822 = "Types: deb-src\nURIs: http://src.example/debian\nSuites: bookworm\n\n\
                      Types: deb\n# a comment\nURIs: http://mirror.example/debian http://other.example/\n\
                      Suites: bookworm bookworm-updates\nComponents: main\n\
                      Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n\
                      Types: deb\nURIs: http://security.example/debian-security\nSuites: bookworm-security\n";
        assert_eq!(
            deb822_mirror(deb822),
            Some((
                "http://mirror.example/debian".to_owned(),
                Some(PathBuf::from(
                    "/usr/share/keyrings/debian-archive-keyring.gpg"
                ))
            ))
        );
        assert_eq!(
            deb822_mirror("Types: deb\nURIs: http://x/\nSuites: trixie\n"),
            None
        );
        let list = "# deb http://old.example/ bookworm main\n\
                    deb http://security.example/ bookworm-security main\n\
                    deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bookworm main\n";
        assert_eq!(
            one_line_mirror(list),
            Some((
                "http://mirror.example/debian".to_owned(),
                Some(PathBuf::from("/k.gpg"))
            ))
        );
    }
}
