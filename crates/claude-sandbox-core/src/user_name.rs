use std::fmt;

use crate::error::{ConfigError, Field};

/// A POSIX user name in the sandbox (`--user`): what `useradd` accepts by default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserName(String);

const MAX: usize = 32;

impl UserName {
    pub fn parse(field: Field, value: &str) -> Result<Self, ConfigError> {
        let valid = value.len() <= MAX
            && value.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        if valid {
            Ok(Self(value.to_owned()))
        } else {
            Err(ConfigError::invalid(
                field,
                value,
                "is not a user name",
                format!(
                    "use up to {MAX} letters, digits, '.', '_' or '-', starting with a letter, e.g. vscode or root"
                ),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_are_posix_names() {
        let field = || Field::new("--user", "user");
        for good in ["vscode", "root", "_apt", "kube-testbed-user", "a.b"] {
            assert!(UserName::parse(field(), good).is_ok(), "{good}");
        }
        for bad in ["", "1abc", "a b", "a;rm", "-x", &"x".repeat(33)] {
            assert!(UserName::parse(field(), bad).is_err(), "{bad}");
        }
    }
}
