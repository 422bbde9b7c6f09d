//! `ssh` and `ssh-config`: the system OpenSSH client, reaching sshd through `claude-sandbox proxy`
//! (a tunnel), with the host key pinned per sandbox in a known_hosts file of our own.

use std::path::{Path, PathBuf};

use claude_sandbox_core::{
    ConfigError, Field, UserName, layout,
    remote::{self, Session},
};
use claude_sandbox_kube::{Error as ClusterError, cluster::Cluster, sandbox_pod::SandboxPod};

use super::{session::running_pod, tunnel_args};
use crate::{
    cli::{GlobalArgs, SshArgs, SshConfigArgs, TunnelArgs},
    error::{Error, Exit},
    known_hosts, terminal,
};

/// Public keys `--install-key` looks for, in order.
const DEFAULT_KEYS: [&str; 3] = ["id_ed25519.pub", "id_ecdsa.pub", "id_rsa.pub"];

/// Everything ssh needs to reach one sandbox.
pub(super) struct SshTarget {
    pub alias: String,
    pub user: String,
    proxy_command: String,
    known_hosts: PathBuf,
}

impl SshTarget {
    pub(super) async fn new(
        global: &GlobalArgs,
        cluster: &Cluster,
        pod: &SandboxPod,
        user: Option<&str>,
        tunnel: &TunnelArgs,
    ) -> Result<Self, Error> {
        let via = tunnel_args::via(tunnel)?;
        let user = match user {
            Some(user) => UserName::parse(Field::new("--user", "user"), user)?.to_string(),
            None => devcontainer_user(pod).await?,
        };
        let executable = std::env::current_exe()?;
        let mut proxy = vec![executable.to_string_lossy().into_owned()];
        if let Some(kubeconfig) = &global.kubeconfig {
            proxy.push("--kubeconfig".into());
            proxy.push(
                std::path::absolute(kubeconfig)?
                    .to_string_lossy()
                    .into_owned(),
            );
        }
        if let Some(context) = &global.context {
            proxy.push("--context".into());
            proxy.push(context.clone());
        }
        proxy.extend([
            "--namespace".into(),
            cluster.namespace.clone(),
            "proxy".into(),
            pod.sandbox.clone(),
            layout::SSH_PORT.to_string(),
            "--via".into(),
            via.to_string(),
        ]);
        Ok(Self {
            alias: known_hosts::alias(&pod.sandbox, &cluster.namespace),
            user,
            proxy_command: proxy
                .iter()
                .map(|a| shell_quote(a))
                .collect::<Vec<_>>()
                .join(" "),
            known_hosts: known_hosts_file()?,
        })
    }

    /// `-o` options, as for the command line.
    pub(super) fn options(&self) -> Vec<(&'static str, String)> {
        vec![
            ("User", self.user.clone()),
            ("ProxyCommand", self.proxy_command.clone()),
            ("HostKeyAlias", self.alias.clone()),
            (
                "UserKnownHostsFile",
                self.known_hosts.to_string_lossy().into_owned(),
            ),
            // Pinned on first use, refused when it changes (the key lives on the workspace volume).
            ("StrictHostKeyChecking", "accept-new".to_owned()),
            // Our own file, one line per sandbox alias: plain, so that it can be read and pruned.
            ("HashKnownHosts", "no".to_owned()),
        ]
    }
}

pub async fn run(args: &SshArgs, global: &GlobalArgs) -> Result<Exit, Error> {
    let (cluster, pod) = running_pod(global, &args.sandbox.name).await?;
    let target = SshTarget::new(global, &cluster, &pod, args.user.as_deref(), &args.tunnel).await?;
    if let Some(key) = &args.install_key {
        install_key(&pod, &target.user, key).await?;
    }
    let mut command = std::process::Command::new("ssh");
    for (name, value) in target.options() {
        command.arg("-o").arg(format!("{name}={value}"));
    }
    // OpenSSH reads options after the destination too, so the user's come last.
    command.arg(&target.alias).args(&args.ssh_args);
    tracing::debug!(?command, "running ssh");
    let status = command.status().map_err(|e| {
        ClusterError::Prerequisite(format!(
            "cannot run ssh ({e}); install the OpenSSH client (e.g. apt-get install openssh-client)"
        ))
    })?;
    Ok(match status.code() {
        Some(code) => Exit::remote(code),
        None => Exit::Failure,
    })
}

pub async fn config(args: &SshConfigArgs, global: &GlobalArgs) -> Result<Exit, Error> {
    let (cluster, pod) = running_pod(global, &args.sandbox.name).await?;
    let target = SshTarget::new(global, &cluster, &pod, args.user.as_deref(), &args.tunnel).await?;
    let mut block = format!(
        "# claude-sandbox: sandbox {} in namespace {}\nHost {}\n",
        pod.sandbox, cluster.namespace, target.alias
    );
    for (name, value) in target.options() {
        block += &format!("  {name} {value}\n");
    }
    terminal::write_stdout(&block)?;
    Ok(Exit::Success)
}

/// The devcontainer's user, as sessions pick it: the one SSH logins use.
async fn devcontainer_user(pod: &SandboxPod) -> Result<String, Error> {
    // The session launcher decides who the devcontainer's user is; ask it.
    let command = Session::default().command(&["id".to_owned(), "-un".to_owned()]);
    let output = pod.run(&command, None).await?;
    let user = output.stdout_text().trim().to_owned();
    if output.code != 0 || user.is_empty() {
        return Err(ClusterError::Access(format!(
            "cannot tell the devcontainer's user in sandbox {} ({}); name one with --user",
            pod.sandbox,
            output.stderr_line()
        ))
        .into());
    }
    Ok(user)
}

/// Adds the public key at `path` (or a default one) to `user`'s authorized_keys in the sandbox.
async fn install_key(pod: &SandboxPod, user: &str, path: &str) -> Result<(), Error> {
    let path = if path.is_empty() {
        default_key()?
    } else {
        PathBuf::from(path)
    };
    let key = read_public_key(&path)?;
    let session = Session {
        user: Some(user.to_owned()),
        ..Session::default()
    };
    let output = pod
        .run(&session.command(&remote::install_key(&key)), None)
        .await?;
    if output.code != 0 {
        return Err(ClusterError::Access(format!(
            "cannot install {} for {user} in sandbox {}: {}",
            path.display(),
            pod.sandbox,
            output.stderr_line()
        ))
        .into());
    }
    let outcome = if output.stdout_text().trim() == "added" {
        "installed"
    } else {
        "already installed"
    };
    anstream::eprintln!(
        "{} {outcome} for {user} in sandbox {}",
        path.display(),
        pod.sandbox
    );
    Ok(())
}

fn default_key() -> Result<PathBuf, Error> {
    let ssh_dir = home_dir()?.join(".ssh");
    DEFAULT_KEYS
        .iter()
        .map(|name| ssh_dir.join(name))
        .find(|path| path.is_file())
        .ok_or_else(|| {
            ConfigError::Usage(format!(
                "--install-key: no public key in {} ({}); make one with `ssh-keygen -t ed25519` or name one",
                ssh_dir.display(),
                DEFAULT_KEYS.join(", ")
            ))
            .into()
        })
}

/// One OpenSSH public key line: type, base64 key, optional comment.
fn read_public_key(path: &Path) -> Result<String, Error> {
    let invalid = |problem: &str| -> Error {
        ConfigError::Usage(format!(
            "--install-key {}: {problem}; give the .pub file of an OpenSSH key",
            path.display()
        ))
        .into()
    };
    let text = std::fs::read_to_string(path).map_err(|e| invalid(&e.to_string()))?;
    let line = text.trim();
    let mut fields = line.split_whitespace();
    let kind = fields.next().unwrap_or_default();
    let blob = fields.next().unwrap_or_default();
    let is_key_type =
        kind.starts_with("ssh-") || kind.starts_with("ecdsa-") || kind.starts_with("sk-");
    if line.lines().count() != 1 || !is_key_type || blob.is_empty() {
        return Err(invalid("not a public key"));
    }
    Ok(line.to_owned())
}

fn home_dir() -> Result<PathBuf, Error> {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .ok_or_else(no_home)
}

fn no_home() -> Error {
    ConfigError::Usage("HOME is not set".to_owned()).into()
}

/// Our known_hosts file, its folder created.
fn known_hosts_file() -> Result<PathBuf, Error> {
    let path = known_hosts::path().ok_or_else(no_home)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    Ok(path)
}

/// Quotes for the POSIX shell ssh runs ProxyCommand with.
fn shell_quote(arg: &str) -> String {
    if !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-=:,@".contains(c))
    {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_arguments_are_quoted_for_the_shell() {
        assert_eq!(
            shell_quote("/usr/bin/claude-sandbox"),
            "/usr/bin/claude-sandbox"
        );
        assert_eq!(shell_quote("my dir/x"), "'my dir/x'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn public_keys_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("id.pub");
        std::fs::write(&good, "ssh-ed25519 AAAAC3Nza me@host\n").unwrap();
        assert_eq!(
            read_public_key(&good).unwrap(),
            "ssh-ed25519 AAAAC3Nza me@host"
        );
        let private = dir.path().join("id");
        std::fs::write(
            &private,
            "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n",
        )
        .unwrap();
        assert!(
            read_public_key(&private)
                .unwrap_err()
                .to_string()
                .contains("not a public key")
        );
        assert!(read_public_key(&dir.path().join("missing.pub")).is_err());
    }
}
