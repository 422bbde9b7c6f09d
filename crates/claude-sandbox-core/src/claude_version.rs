use std::fmt;

use crate::error::{ConfigError, Field};

/// The Claude Code release the native installer puts in the sandbox: a channel or an exact version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaudeCodeVersion(String);

impl ClaudeCodeVersion {
    pub fn parse(field: Field, value: &str) -> Result<Self, ConfigError> {
        let is_channel = matches!(value, "stable" | "latest");
        let parts: Vec<&str> = value.split('.').collect();
        let is_version = parts.len() == 3
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        if is_channel || is_version {
            Ok(Self(value.to_owned()))
        } else {
            Err(ConfigError::invalid(
                field,
                value,
                "is not a Claude Code version",
                "use stable, latest or an exact version such as 2.0.14",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for ClaudeCodeVersion {
    fn default() -> Self {
        Self("stable".to_owned())
    }
}

impl fmt::Display for ClaudeCodeVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: Field = Field::new("--claude-version", "claudeCodeVersion");

    #[test]
    fn channels_and_exact_versions() {
        for good in ["stable", "latest", "2.0.14", "10.20.30"] {
            assert!(ClaudeCodeVersion::parse(F, good).is_ok(), "{good}");
        }
        for bad in ["", "v2.0.14", "2.0", "2.0.x", "beta", "2.0.14; rm -rf /"] {
            assert!(ClaudeCodeVersion::parse(F, bad).is_err(), "{bad}");
        }
    }
}
