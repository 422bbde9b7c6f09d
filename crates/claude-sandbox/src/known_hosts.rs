//! The SSH host keys of sandboxes, pinned on first use in a known_hosts file of our own, one line
//! per `NAME.NAMESPACE.claude-sandbox` alias. The key lives on the workspace volume, so it is
//! forgotten when that volume is deleted.

use std::path::PathBuf;

/// `$XDG_CONFIG_HOME/claude-sandbox/known_hosts`, else `~/.config/…`.
pub fn path() -> Option<PathBuf> {
    let config = match std::env::var_os("XDG_CONFIG_HOME") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(std::env::var_os("HOME")?).join(".config"),
    };
    Some(config.join("claude-sandbox").join("known_hosts"))
}

/// The host alias of sandbox `name` in `namespace`.
pub fn alias(name: &str, namespace: &str) -> String {
    format!("{name}.{namespace}.claude-sandbox")
}

/// Drops the pinned key of `alias`; returns whether there was one.
pub fn forget(alias: &str) -> std::io::Result<bool> {
    let Some(path) = path() else {
        return Ok(false);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    match without(&text, alias) {
        Some(kept) => std::fs::write(&path, kept).map(|()| true),
        None => Ok(false),
    }
}

/// `text` without the lines of `alias`, if it had any.
fn without(text: &str, alias: &str) -> Option<String> {
    let prefix = format!("{alias} ");
    let kept: String = text
        .lines()
        .filter(|line| !line.starts_with(&prefix))
        .map(|line| format!("{line}\n"))
        .collect();
    (kept.len() != text.len()).then_some(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_aliases_lines_go() {
        let text = "a.ns.claude-sandbox ssh-ed25519 AAA\nab.ns.claude-sandbox ssh-ed25519 BBB\n";
        assert_eq!(
            without(text, "a.ns.claude-sandbox").as_deref(),
            Some("ab.ns.claude-sandbox ssh-ed25519 BBB\n")
        );
        assert_eq!(without(text, "c.ns.claude-sandbox"), None);
    }
}
