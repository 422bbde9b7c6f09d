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

/// Puts the stub in `bin`, unless a test already put its own `claude` there.
pub(super) async fn install(bin: &Path) -> Result<(), Error> {
    let path = bin.join("claude");
    let exists = tokio::fs::try_exists(&path)
        .await
        .map_err(|e| Error::io(format!("checking {}", path.display()), e))?;
    if !exists {
        tokio::fs::write(&path, SCRIPT)
            .await
            .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
        tokio::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .await
            .map_err(|e| Error::io(format!("making {} executable", path.display()), e))?;
    }
    Ok(())
}
