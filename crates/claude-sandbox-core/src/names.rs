//! Kubernetes object names, checked the way the API server checks them.

use std::fmt;

use crate::error::{ConfigError, Field};

/// A Sandbox name. The Sandbox's pod, its Service and its hostname all take this name, so it must
/// be a DNS-1035 label: a Service name is the strictest of the three.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SandboxName(String);

/// A namespace name: a DNS-1123 label.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Namespace(String);

/// The name of a Secret or ConfigMap: a DNS-1123 subdomain.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectName(String);

const LABEL_MAX: usize = 63;
const SUBDOMAIN_MAX: usize = 253;

impl SandboxName {
    pub fn parse(field: Field, value: &str) -> Result<Self, ConfigError> {
        check_label(field, value, true)?;
        Ok(Self(value.to_owned()))
    }
}

impl Namespace {
    pub fn parse(field: Field, value: &str) -> Result<Self, ConfigError> {
        check_label(field, value, false)?;
        Ok(Self(value.to_owned()))
    }
}

impl ObjectName {
    pub fn parse(field: Field, value: &str) -> Result<Self, ConfigError> {
        let fix = "use lowercase letters, digits, '-' and '.', starting and ending with a letter or digit";
        if value.is_empty() || value.len() > SUBDOMAIN_MAX {
            return Err(ConfigError::invalid(
                field,
                value,
                format!("must be 1 to {SUBDOMAIN_MAX} characters long"),
                fix,
            ));
        }
        for part in value.split('.') {
            if !is_label(part) {
                return Err(ConfigError::invalid(
                    field,
                    value,
                    "is not a valid Kubernetes object name",
                    fix,
                ));
            }
        }
        Ok(Self(value.to_owned()))
    }

    /// A name derived from a valid sandbox name and a short fixed suffix, which is always valid.
    pub(crate) fn derived(sandbox: &SandboxName, suffix: &str) -> Self {
        Self(format!("{sandbox}-{suffix}"))
    }
}

fn is_label(s: &str) -> bool {
    let bytes = s.as_bytes();
    let inner_ok = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-';
    let edge_ok = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    !bytes.is_empty()
        && bytes.len() <= LABEL_MAX
        && bytes.iter().all(inner_ok)
        && edge_ok(&bytes[0])
        && edge_ok(&bytes[bytes.len() - 1])
}

fn check_label(field: Field, value: &str, must_start_with_letter: bool) -> Result<(), ConfigError> {
    let rule = if must_start_with_letter {
        "use at most 63 lowercase letters, digits and '-', starting with a letter and ending with a letter or digit (e.g. my-sandbox)"
    } else {
        "use at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit"
    };
    let starts_ok = !must_start_with_letter || value.starts_with(|c: char| c.is_ascii_lowercase());
    if is_label(value) && starts_ok {
        Ok(())
    } else {
        let problem = if value.is_empty() {
            "is empty".to_owned()
        } else if value.len() > LABEL_MAX {
            format!("is {} characters long", value.len())
        } else {
            "is not a valid name".to_owned()
        };
        Err(ConfigError::invalid(field, value, problem, rule))
    }
}

macro_rules! name_traits {
    ($($ty:ty),*) => {$(
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl $ty {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
    )*};
}
name_traits!(SandboxName, Namespace, ObjectName);

#[cfg(test)]
mod tests {
    use super::*;

    const F: Field = Field::new("NAME", "name");

    #[test]
    fn sandbox_names_follow_dns_1035() {
        for good in ["a", "claude-code-sandbox", "dev-1", &"a".repeat(63)] {
            assert!(SandboxName::parse(F, good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "1dev",
            "Dev",
            "dev-",
            "-dev",
            "dev_1",
            "dev.1",
            &"a".repeat(64),
        ] {
            let err = SandboxName::parse(F, bad).unwrap_err().to_string();
            assert!(err.contains("NAME (config key `name`)"), "{err}");
        }
    }

    #[test]
    fn namespaces_may_start_with_a_digit() {
        assert!(Namespace::parse(F, "1team").is_ok());
        assert!(Namespace::parse(F, "Team").is_err());
        assert!(Namespace::parse(F, "team.a").is_err());
    }

    #[test]
    fn object_names_are_subdomains() {
        assert!(ObjectName::parse(F, "vault.ca-bundle").is_ok());
        assert!(ObjectName::parse(F, "vault..ca").is_err());
        assert!(ObjectName::parse(F, "Vault").is_err());
        assert!(ObjectName::parse(F, &"a".repeat(254)).is_err());
    }
}
