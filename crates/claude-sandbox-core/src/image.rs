use std::fmt;

use crate::error::{ConfigError, Field};

/// A container image reference such as `ghcr.io/coder/envbuilder:1.3.0` or `repo@sha256:…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef(String);

impl ImageRef {
    pub fn parse(field: Field, value: &str) -> Result<Self, ConfigError> {
        let (name, digest) = match value.split_once('@') {
            Some((name, digest)) => (name, Some(digest)),
            None => (value, None),
        };
        // A ':' after the last '/' starts the tag; one before it is a registry port.
        let (repository, tag) = match name.rfind(':') {
            Some(i) if !name[i..].contains('/') => (&name[..i], Some(&name[i + 1..])),
            _ => (name, None),
        };
        let repository_ok = !repository.is_empty()
            && !repository.starts_with('/')
            && !repository.ends_with('/')
            && !repository.contains("//")
            && repository
                .split('/')
                .skip(usize::from(has_registry(repository)))
                .all(|part| {
                    part.bytes().all(|b| {
                        b.is_ascii_lowercase()
                            || b.is_ascii_digit()
                            || matches!(b, b'.' | b'_' | b'-')
                    })
                })
            && repository.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/' | b':')
            });
        let tag_ok = tag.is_none_or(|t| {
            !t.is_empty()
                && t.len() <= 128
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        });
        let digest_ok = digest.is_none_or(|d| {
            d.split_once(':').is_some_and(|(algo, hex)| {
                !algo.is_empty() && hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())
            })
        });
        if repository_ok && tag_ok && digest_ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(ConfigError::invalid(
                field,
                value,
                "is not a container image reference",
                "write REGISTRY/REPOSITORY:TAG or REPOSITORY@sha256:DIGEST, e.g. ghcr.io/coder/envbuilder:1.3.0",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Docker's rule: the first component names a registry when it has a '.' or ':' or is localhost.
fn has_registry(repository: &str) -> bool {
    match repository.split_once('/') {
        Some((first, _)) => first.contains(['.', ':']) || first == "localhost",
        None => false,
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: Field = Field::new("--image", "image");

    #[test]
    fn accepts_tags_digests_and_registry_ports() {
        for good in [
            "ghcr.io/coder/envbuilder:1.3.0",
            "ghcr.io/coder/envbuilder",
            "localhost:5000/envbuilder:dev",
            "Registry.Example.com/team/envbuilder:1",
            "envbuilder@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert!(ImageRef::parse(F, good).is_ok(), "{good}");
        }
    }

    #[test]
    fn rejects_malformed_references() {
        for bad in [
            "",
            "ghcr.io/Coder/envbuilder",
            "Envbuilder",
            "ghcr.io/coder/envbuilder:",
            "ghcr.io//envbuilder",
            "envbuilder@sha256:xyz",
            "envbuilder:1.0 --privileged",
        ] {
            assert!(ImageRef::parse(F, bad).is_err(), "{bad}");
        }
    }
}
