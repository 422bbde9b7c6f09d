//! The Debian side of the build: recognising the system, running apt-get as root (directly or
//! through sudo), adding the deb-src entry the Kubernetes source comes from.

use std::{
    cell::Cell,
    io::Write,
    os::unix::fs::MetadataExt,
    path::Path,
    process::{Command, Stdio},
};

use super::step;
use crate::{POD_USER, error::Error};

/// The suite whose source package is Kubernetes 1.20.2 (later suites dropped it).
const SUITE: &str = "bookworm";
/// The deb-src entry we add, derived from the machine's own first `deb` entry so that no archive
/// address is written here.
const SOURCE_ENTRY: &str = "/etc/apt/sources.list.d/claude-sandbox-src.sources";
const DEB822_SOURCES: &str = "/etc/apt/sources.list.d/debian.sources";
const ONE_LINE_SOURCES: &str = "/etc/apt/sources.list";
/// `useradd`'s options for the pod user.
const POD_USER_ADD: [&str; 5] = ["--create-home", "--shell", "/bin/bash", "--password", "*"];

/// A Debian machine we may install packages on.
pub(super) struct System {
    /// Not root: prefix privileged commands with `sudo`.
    sudo: bool,
    /// `apt-get update` ran in this build (once is enough).
    updated: Cell<bool>,
}

impl System {
    /// Checks that this is a Debian system with apt-get and a way to become root. `missing_runtime`,
    /// `cached` and `pod_user_missing` only shape the error for other systems, which must be told
    /// what to install.
    pub(super) fn detect(
        missing_runtime: &[&str],
        cached: bool,
        pod_user_missing: bool,
    ) -> Result<Self, Error> {
        let help =
            |reason: &str| other_system_help(reason, missing_runtime, cached, pod_user_missing);
        let os_release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
        let field = |key: &str| {
            os_release
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{key}=")))
                .map(|v| v.trim_matches('"').to_owned())
                .unwrap_or_default()
        };
        let (id, like, codename) = (field("ID"), field("ID_LIKE"), field("VERSION_CODENAME"));
        let debian = id == "debian" || like.split_whitespace().any(|l| l == "debian");
        if !debian || !Path::new("/usr/bin/apt-get").exists() {
            return Err(Error::UnsupportedSystem(help(&format!(
                "this is not a Debian system (os-release ID={id:?})"
            ))));
        }
        if !cached && codename != SUITE {
            return Err(Error::UnsupportedSystem(help(&format!(
                "building needs Debian {SUITE} (its Go and Kubernetes 1.20.2 source), this is {codename:?}"
            ))));
        }
        let root = std::fs::metadata("/proc/self")
            .map(|m| m.uid() == 0)
            .unwrap_or(false);
        let sudo = !root;
        if sudo && !crate::paths::is_executable(Path::new("/usr/bin/sudo")) {
            return Err(Error::UnsupportedSystem(
                "installing Debian packages needs root: run `kube-testbed build` as root or install sudo".to_owned(),
            ));
        }
        Ok(Self {
            sudo,
            updated: Cell::new(false),
        })
    }

    /// The packages of `wanted` that are not installed.
    pub(super) fn missing_packages<'a>(&self, wanted: &[&'a str]) -> Result<Vec<&'a str>, Error> {
        let mut missing = Vec::new();
        for package in wanted {
            let output = Command::new("dpkg-query")
                .args(["-W", "-f=${Status}", package])
                .stderr(Stdio::null())
                .output()
                .map_err(Error::io("running dpkg-query for", *package))?;
            if !String::from_utf8_lossy(&output.stdout).contains("install ok installed") {
                missing.push(*package);
            }
        }
        Ok(missing)
    }

    /// Installs `packages` (non-interactively, without recommendations).
    pub(super) fn install(&self, packages: &[&str]) -> Result<(), Error> {
        self.update_once()?;
        let mut command = self.root_command("apt-get");
        command
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(packages);
        run("apt-get install", command)
    }

    /// `apt-get update`, once per build.
    pub(super) fn update_once(&self) -> Result<(), Error> {
        if self.updated.replace(true) {
            return Ok(());
        }
        step("updating the Debian package lists");
        let mut command = self.root_command("apt-get");
        command.args(["update", "-qq"]);
        run("apt-get update", command)
    }

    /// Adds a `deb-src` entry for bookworm's main component unless one exists. Derived from the
    /// machine's first `deb` entry (its mirror, keyring and components), in either sources format.
    pub(super) fn ensure_source_entry(&self) -> Result<(), Error> {
        if has_source_entry() {
            return Ok(());
        }
        let entry = if let Ok(deb822) = std::fs::read_to_string(DEB822_SOURCES) {
            source_stanza(&deb822)
        } else {
            std::fs::read_to_string(ONE_LINE_SOURCES)
                .ok()
                .and_then(|list| source_line(&list))
                .map(|line| one_line_as_deb822(&line))
        };
        let Some(entry) = entry else {
            return Err(Error::UnsupportedSystem(format!(
                "no Debian archive entry found in {DEB822_SOURCES} or {ONE_LINE_SOURCES}: add a `deb-src` entry \
                 for {SUITE} main, then run `kube-testbed build` again"
            )));
        };
        step(&format!(
            "adding a deb-src entry for {SUITE} ({SOURCE_ENTRY})"
        ));
        let mut command = self.root_command("tee");
        command
            .arg(SOURCE_ENTRY)
            .stdout(Stdio::null())
            .stdin(Stdio::piped());
        let mut child = command
            .spawn()
            .map_err(Error::io("writing", SOURCE_ENTRY))?;
        child
            .stdin
            .take()
            .expect("stdin is piped")
            .write_all(entry.as_bytes())
            .map_err(Error::io("writing", SOURCE_ENTRY))?;
        let status = child.wait().map_err(Error::io("writing", SOURCE_ENTRY))?;
        if !status.success() {
            return Err(Error::Build {
                step: "add deb-src entry".to_owned(),
                message: format!("writing {SOURCE_ENTRY} failed ({status})"),
            });
        }
        // The new entry is only seen after an update.
        self.updated.set(false);
        Ok(())
    }

    /// Creates the user pods' init processes run as: a login shell and a home, and a password
    /// that matches nothing without locking the account (sshd refuses locked accounts).
    pub(super) fn create_pod_user(&self) -> Result<(), Error> {
        step(&format!("creating user {POD_USER}"));
        let mut command = self.root_command("useradd");
        command.args(POD_USER_ADD).arg(POD_USER);
        run("useradd", command)
    }

    /// A command that runs as root.
    pub(super) fn root_command(&self, program: &str) -> Command {
        if self.sudo {
            let mut command = Command::new("sudo");
            // sudo drops the environment: pass the one variable apt needs through it.
            command.args(["--preserve-env=DEBIAN_FRONTEND", program]);
            command
        } else {
            Command::new(program)
        }
    }
}

/// Whether some configured source already offers deb-src for the suite.
fn has_source_entry() -> bool {
    let mut files = vec![Path::new(ONE_LINE_SOURCES).to_owned()];
    if let Ok(entries) = std::fs::read_dir("/etc/apt/sources.list.d") {
        files.extend(entries.filter_map(|e| e.ok()).map(|e| e.path()));
    }
    files
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .any(|text| {
            text.split("\n\n").any(|stanza| {
                let lines: Vec<&str> = stanza
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.starts_with('#'))
                    .collect();
                let deb822 = lines
                    .iter()
                    .any(|l| l.starts_with("Types:") && l.contains("deb-src"))
                    && lines.iter().any(|l| {
                        l.starts_with("Suites:") && l.split_whitespace().any(|s| s == SUITE)
                    });
                let one_line = lines
                    .iter()
                    .any(|l| l.starts_with("deb-src ") && l.split_whitespace().any(|s| s == SUITE));
                deb822 || one_line
            })
        })
}

/// The first stanza of a deb822 sources file, turned into a deb-src entry for the suite.
fn source_stanza(sources: &str) -> Option<String> {
    let stanza = sources
        .split("\n\n")
        .find(|s| s.lines().any(|l| l.starts_with("Types:")))?;
    let lines: Vec<String> = stanza
        .lines()
        .map(|line| {
            if line.starts_with("Types:") {
                "Types: deb-src".to_owned()
            } else if line.starts_with("Suites:") {
                format!("Suites: {SUITE}")
            } else if line.starts_with("Components:") {
                "Components: main".to_owned()
            } else {
                line.to_owned()
            }
        })
        .collect();
    Some(lines.join("\n") + "\n")
}

/// The first `deb` line of a one-line-style sources list.
fn source_line(list: &str) -> Option<String> {
    list.lines()
        .map(str::trim)
        .find(|l| l.starts_with("deb "))
        .map(str::to_owned)
}

/// `deb [options] URI suite components` as a deb822 deb-src stanza for the suite.
fn one_line_as_deb822(line: &str) -> String {
    let rest = line.trim_start_matches("deb ").trim();
    let (options, rest) = match rest.strip_prefix('[') {
        Some(after) => after
            .split_once(']')
            .map_or(("", rest), |(o, r)| (o, r.trim())),
        None => ("", rest),
    };
    let uri = rest.split_whitespace().next().unwrap_or_default();
    let mut stanza = format!("Types: deb-src\nURIs: {uri}\nSuites: {SUITE}\nComponents: main\n");
    if let Some(keyring) = options
        .split_whitespace()
        .find_map(|o| o.strip_prefix("signed-by="))
    {
        stanza.push_str(&format!("Signed-By: {keyring}\n"));
    }
    stanza
}

/// Runs `command`, its output kept for the error message.
fn run(step_name: &str, mut command: Command) -> Result<(), Error> {
    let output = command.output().map_err(|e| Error::Build {
        step: step_name.to_owned(),
        message: e.to_string(),
    })?;
    if output.status.success() {
        return Ok(());
    }
    Err(Error::Build {
        step: step_name.to_owned(),
        message: format!(
            "{}\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    })
}

/// Runs `command` with its output appended to `log`; on failure the error holds the log's tail.
pub(super) fn run_logged(step_name: &str, mut command: Command, log: &Path) -> Result<(), Error> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(Error::io("opening", log))?;
    let stderr = file.try_clone().map_err(Error::io("opening", log))?;
    let status = command
        .stdout(file)
        .stderr(stderr)
        .stdin(Stdio::null())
        .status()
        .map_err(|e| Error::Build {
            step: step_name.to_owned(),
            message: e.to_string(),
        })?;
    if status.success() {
        return Ok(());
    }
    Err(Error::Build {
        step: step_name.to_owned(),
        message: format!(
            "{status}; the end of {}:\n{}",
            log.display(),
            crate::process::log_tail(log)
        ),
    })
}

/// What to install by hand on a system `kube-testbed build` cannot provision.
fn other_system_help(
    reason: &str,
    missing_runtime: &[&str],
    cached: bool,
    pod_user_missing: bool,
) -> String {
    let mut needed = Vec::new();
    if !cached {
        needed.push(format!(
            "kube-apiserver, kube-controller-manager and kube-scheduler {} in one directory, named by {}",
            crate::paths::KUBERNETES_VERSION,
            crate::paths::BIN_DIR_ENV
        ));
    }
    for package in missing_runtime {
        needed.push(match *package {
            "etcd-server" => "etcd 3.4 or later on PATH".to_owned(),
            "openssh-server" => {
                "OpenSSH's sshd at /usr/sbin/sshd (for the stand-in SSH servers)".to_owned()
            }
            "iproute2" => "iproute2's ip (for pods' network namespaces)".to_owned(),
            other => other.to_owned(),
        });
    }
    if pod_user_missing {
        let options = POD_USER_ADD.map(|option| if option == "*" { "'*'" } else { option });
        needed.push(format!(
            "a user {POD_USER} (useradd {} {POD_USER})",
            options.join(" ")
        ));
    }
    format!(
        "{reason}; `kube-testbed build` installs with apt-get on Debian {SUITE}. Install instead: {}",
        needed.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deb822_first_stanza_becomes_a_source_entry() {
        let sources = "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n\
                       Components: main contrib\nSigned-By: /usr/share/keyrings/k.gpg\n\n\
                       Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n";
        assert_eq!(
            source_stanza(sources).unwrap(),
            "Types: deb-src\nURIs: http://mirror.example/debian\nSuites: bookworm\nComponents: main\n\
             Signed-By: /usr/share/keyrings/k.gpg\n"
        );
    }

    #[test]
    fn one_line_entry_becomes_a_source_entry() {
        let list = "# comment\ndeb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bookworm main\n";
        assert_eq!(
            one_line_as_deb822(&source_line(list).unwrap()),
            "Types: deb-src\nURIs: http://mirror.example/debian\nSuites: bookworm\nComponents: main\nSigned-By: /k.gpg\n"
        );
    }

    #[test]
    fn other_systems_are_told_what_to_install() {
        let help = other_system_help(
            "this is not a Debian system",
            &["etcd-server", "openssh-server"],
            false,
            true,
        );
        assert!(help.starts_with("this is not a Debian system; "), "{help}");
        for needed in [
            "kube-apiserver",
            "KUBE_TESTBED_BIN_DIR",
            "etcd 3.4",
            "/usr/sbin/sshd",
            "useradd --create-home --shell /bin/bash --password '*' kube-testbed-user",
        ] {
            assert!(help.contains(needed), "{help}");
        }
        let cached = other_system_help("no apt-get", &["openssh-server"], true, false);
        assert!(
            !cached.contains("kube-apiserver") && cached.contains("sshd"),
            "{cached}"
        );
        assert!(!cached.contains("useradd"), "{cached}");
    }
}
