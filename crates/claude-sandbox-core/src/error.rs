use std::fmt;

/// A setting, named the way a user wrote it: its flag and its config-file key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub flag: &'static str,
    pub key: &'static str,
}

impl Field {
    pub const fn new(flag: &'static str, key: &'static str) -> Self {
        Self { flag, key }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.flag.is_empty() {
            write!(f, "`{}`", self.key)
        } else {
            write!(f, "{} (config key `{}`)", self.flag, self.key)
        }
    }
}

/// Why a sandbox configuration was refused. Each message names the setting and the fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid {field}: {value:?} {problem}; {fix}")]
    Invalid {
        field: Field,
        value: String,
        problem: String,
        fix: String,
    },
    #[error("{first} and {second} cannot be used together; {fix}")]
    Conflict {
        first: Field,
        second: Field,
        fix: &'static str,
    },
    #[error("cannot read config file {path}: {source}")]
    ReadFile {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    ParseFile { path: String, message: String },
    #[error("invalid devcontainer.json {path}: {message}")]
    Devcontainer { path: String, message: String },
    /// Arguments that do not fit together; the message says how to write them.
    #[error("{0}")]
    Usage(String),
}

impl ConfigError {
    pub(crate) fn invalid(
        field: Field,
        value: impl Into<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self::Invalid {
            field,
            value: value.into(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }
}
