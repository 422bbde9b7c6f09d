//! Commands run inside a sandbox through exec: sessions as the devcontainer's user, TCP relays for
//! tunnels, and the sides of `cp` and `ssh --install-key`. Each is a script bundled here and passed
//! as an argument (`sh -c SCRIPT NAME ARGS…`), so the image needs no helper installed.

mod relay;
mod session;

pub use relay::Relay;
pub use session::Session;

const CP_UPLOAD: &str = include_str!("cp-upload.sh");
const CP_DOWNLOAD: &str = include_str!("cp-download.sh");
const INSTALL_KEY: &str = include_str!("install-key.sh");

/// The exit status of the bundled scripts when they cannot do their job (the reason on stderr).
pub const SETUP_FAILED: i32 = 125;

fn sh(script: &str, name: &str, args: &[&str]) -> Vec<String> {
    ["sh", "-c", script, name]
        .iter()
        .chain(args)
        .map(|s| (*s).to_owned())
        .collect()
}

/// Unpacks a tar stream on stdin (one top-level entry, `name`) into or as `dest`.
pub fn cp_upload(dest: &str, name: &str) -> Vec<String> {
    sh(CP_UPLOAD, "claude-sandbox-cp", &[dest, name])
}

/// Writes a tar stream of `source` to stdout.
pub fn cp_download(source: &str) -> Vec<String> {
    sh(CP_DOWNLOAD, "claude-sandbox-cp", &[source])
}

/// Adds `public_key` to `~/.ssh/authorized_keys` unless it is there; prints `added` or `unchanged`.
pub fn install_key(public_key: &str) -> Vec<String> {
    sh(INSTALL_KEY, "claude-sandbox-install-key", &[public_key])
}

/// Prints those of `names` that are set in the environment, one per line; never their values.
pub fn set_variables(names: &[&str]) -> Vec<String> {
    sh(
        r#"for name; do case $name in ''|[0-9]*|*[!A-Za-z0-9_]*) continue ;; esac; eval "[ -n \"\${$name+set}\" ]" && printf '%s\n' "$name"; done; exit 0"#,
        "claude-sandbox-env",
        names,
    )
}

/// Exits 0 when every path is a non-empty file.
pub fn files_present(paths: &[&str]) -> Vec<String> {
    sh(
        r#"for path; do [ -s "$path" ] || { printf '%s\n' "$path"; exit 1; }; done"#,
        "claude-sandbox-files",
        paths,
    )
}

/// Every bundled script, by file name, for linting.
pub const SCRIPTS: [(&str, &str); 6] = [
    ("session.sh", session::SCRIPT),
    ("relay-probe.sh", relay::PROBE),
    ("relay.bash", relay::BASH_RELAY),
    ("cp-upload.sh", CP_UPLOAD),
    ("cp-download.sh", CP_DOWNLOAD),
    ("install-key.sh", INSTALL_KEY),
];
