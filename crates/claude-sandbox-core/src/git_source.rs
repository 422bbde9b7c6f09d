use std::fmt;

use crate::error::{ConfigError, Field};

/// A git repository for envbuilder to clone: `URL[#REF]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitSource {
    url: String,
    reference: Option<String>,
}

const FIX: &str = "write an https://, http:// or ssh:// URL (or git@host:path), optionally followed by #BRANCH or #refs/heads/BRANCH";

impl GitSource {
    pub fn parse(field: Field, value: &str) -> Result<Self, ConfigError> {
        let (url, reference) = match value.split_once('#') {
            Some((url, reference)) => (url, Some(reference)),
            None => (value, None),
        };
        let invalid = |problem: &str| ConfigError::invalid(field, value, problem, FIX);
        check_url(url).map_err(&invalid)?;
        let reference = match reference {
            None => None,
            Some("") => return Err(invalid("has an empty reference after '#'")),
            Some(r) if !is_ref_name(r) => return Err(invalid("has an invalid git reference")),
            // envbuilder only understands full reference names.
            Some(r) if r.starts_with("refs/") => Some(r.to_owned()),
            Some(r) => Some(format!("refs/heads/{r}")),
        };
        Ok(Self {
            url: url.to_owned(),
            reference,
        })
    }

    /// The value of `ENVBUILDER_GIT_URL`.
    pub fn envbuilder_url(&self) -> String {
        match &self.reference {
            Some(r) => format!("{}#{r}", self.url),
            None => self.url.clone(),
        }
    }

    /// The repository's name, which is the folder it is cloned into under `/workspaces`.
    pub fn repository_name(&self) -> &str {
        let path = self.url.trim_end_matches('/');
        let last = path.rsplit(['/', ':']).next().unwrap_or(path);
        last.strip_suffix(".git").unwrap_or(last)
    }
}

fn check_url(url: &str) -> Result<(), &'static str> {
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("contains white space");
    }
    let path = if let Some((user_host, path)) = scp_like(url) {
        if user_host.is_empty() {
            return Err("has no host");
        }
        path.to_owned()
    } else {
        let parsed = url::Url::parse(url).map_err(|_| "is not a URL")?;
        if !matches!(parsed.scheme(), "https" | "http" | "ssh") {
            return Err("uses an unsupported scheme");
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err("has no host");
        }
        parsed.path().to_owned()
    };
    let name = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    let name = name.strip_suffix(".git").unwrap_or(name);
    let name_ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if name_ok {
        Ok(())
    } else {
        Err("does not end in a repository name")
    }
}

/// `git@github.com:org/repo.git` → (`git@github.com`, `org/repo.git`).
fn scp_like(url: &str) -> Option<(&str, &str)> {
    if url.contains("://") {
        return None;
    }
    let (user_host, path) = url.split_once(':')?;
    (!user_host.contains('/')).then_some((user_host, path))
}

fn is_ref_name(r: &str) -> bool {
    !r.starts_with(['/', '-'])
        && !r.ends_with(['/', '.'])
        && !r.contains("..")
        && !r.contains("//")
        && r.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'_' | b'-'))
}

impl fmt::Display for GitSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.envbuilder_url())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: Field = Field::new("--repo", "repo");

    fn parse(s: &str) -> GitSource {
        GitSource::parse(F, s).unwrap()
    }

    #[test]
    fn branch_names_become_full_references() {
        assert_eq!(
            parse("https://github.com/acme/app.git#main").envbuilder_url(),
            "https://github.com/acme/app.git#refs/heads/main"
        );
        assert_eq!(
            parse("https://github.com/acme/app#refs/tags/v1").envbuilder_url(),
            "https://github.com/acme/app#refs/tags/v1"
        );
        assert_eq!(
            parse("https://github.com/acme/app").envbuilder_url(),
            "https://github.com/acme/app"
        );
    }

    #[test]
    fn repository_name_is_the_clone_folder() {
        assert_eq!(
            parse("https://github.com/acme/app.git").repository_name(),
            "app"
        );
        assert_eq!(
            parse("git@github.com:acme/my_app.git#dev").repository_name(),
            "my_app"
        );
        assert_eq!(parse("ssh://git@host:22/x/tool/").repository_name(), "tool");
    }

    #[test]
    fn rejects_what_envbuilder_cannot_clone() {
        for bad in [
            "",
            "github.com/acme/app",
            "ftp://host/app.git",
            "https:///app.git",
            "https://github.com/",
            "https://github.com/acme/app#",
            "https://github.com/acme/app#../x",
            "https://github.com/acme/app with space",
            "file:///srv/app.git",
        ] {
            let err = GitSource::parse(F, bad).unwrap_err().to_string();
            assert!(err.contains("--repo"), "{bad}: {err}");
        }
    }
}
