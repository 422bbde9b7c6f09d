//! A stub `claude` command: enough for `claude --version` checks.

use std::{os::unix::fs::PermissionsExt, path::Path};

use crate::error::Error;

const SCRIPT: &str = r#"#!/bin/sh
# kube-testbed stand-in for Claude Code.
if [ "$1" = "--version" ]; then
  echo "2.0.14 (Claude Code)"
  exit 0
fi
echo "$@"
"#;

/// Puts the stub in `bin` when `wanted`, unless a test already put its own `claude` there; else
/// removes the stub an earlier pod of the same name left.
pub(super) async fn install(bin: &Path, wanted: bool) -> Result<(), Error> {
    let path = bin.join("claude");
    let existing = match tokio::fs::read(&path).await {
        Ok(content) => Some(content),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
        Err(error) => return Err(Error::io(format!("checking {}", path.display()), error)),
    };
    if !wanted {
        if existing.is_some_and(|content| content == SCRIPT.as_bytes()) {
            tokio::fs::remove_file(&path)
                .await
                .map_err(|e| Error::io(format!("removing {}", path.display()), e))?;
        }
        return Ok(());
    }
    if existing.is_none() {
        tokio::fs::write(&path, SCRIPT)
            .await
            .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
        tokio::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .await
            .map_err(|e| Error::io(format!("making {} executable", path.display()), e))?;
    }
    Ok(())
}
