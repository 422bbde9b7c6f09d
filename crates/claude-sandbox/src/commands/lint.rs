use std::path::{Path, PathBuf};

use claude_sandbox_core::{ConfigError, lint};

use crate::{
    cli::LintArgs,
    error::{Error, Exit},
    terminal,
};

/// Where a devcontainer.json lives in a folder, in the order the devcontainer spec looks.
const CANDIDATES: [&str; 3] = [
    ".devcontainer/devcontainer.json",
    ".devcontainer.json",
    "devcontainer.json",
];

pub fn run(args: &LintArgs) -> Result<Exit, Error> {
    let path = locate(args.path.as_deref().unwrap_or(Path::new(".")))?;
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::ReadFile {
        path: shown.clone(),
        source,
    })?;
    let warnings = lint::lint_devcontainer(&text).map_err(|message| ConfigError::Devcontainer {
        path: shown.clone(),
        message,
    })?;
    let report: String = warnings.iter().map(|w| format!("{shown}: {w}\n")).collect();
    terminal::write_stdout(&report)?;
    if warnings.is_empty() {
        tracing::debug!(path = %shown, "no findings");
        Ok(Exit::Success)
    } else {
        Ok(Exit::Failure)
    }
}

fn locate(path: &Path) -> Result<PathBuf, ConfigError> {
    if !path.is_dir() {
        return Ok(path.to_owned());
    }
    CANDIDATES
        .iter()
        .map(|candidate| path.join(candidate))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| ConfigError::ReadFile {
            path: path.display().to_string(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!(
                    "no {} in this folder; name the file",
                    CANDIDATES.join(" or ")
                ),
            ),
        })
}
