//! Values for the sandbox Secret, from the environment or an env file. They are never printed:
//! `Debug` shows key names only.

use std::{collections::BTreeMap, fmt, path::Path};

use crate::{
    error::{ConfigError, Field},
    layout::{SECRET_ENV_KEYS, SECRET_GIT_CREDENTIALS, env::CODE_SERVER_PASSWORD},
};

/// A secret value. Its `Debug` and `Display` are redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(String);

impl SecretValue {
    /// The value itself, for the one place that must send it: the Secret's data.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Keys and values to put in the sandbox Secret.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretValues(BTreeMap<String, SecretValue>);

const SECRET_ENV: Field = Field::new("--secret-env", "secretEnv");
const ENV_FILE: Field = Field::new("--env-file", "envFile");

impl SecretValues {
    /// Every key the sandbox reads from its Secret.
    pub fn known_keys() -> impl Iterator<Item = &'static str> {
        SECRET_ENV_KEYS
            .into_iter()
            .chain(SECRET_GIT_CREDENTIALS.iter().map(|(_, key)| *key))
            .chain([CODE_SERVER_PASSWORD])
    }

    /// Reads `env_keys` from the environment (`lookup`) and every `KEY=VALUE` line of `env_file`;
    /// a key given both ways takes the env file's value.
    pub fn from_sources(
        env_keys: &[String],
        env_file: Option<&Path>,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut values = BTreeMap::new();
        for key in env_keys {
            check_key(SECRET_ENV, key)?;
            let value = lookup(key).filter(|v| !v.is_empty()).ok_or_else(|| {
                ConfigError::invalid(
                    SECRET_ENV,
                    key,
                    "is not set in the environment",
                    format!("export {key}=… first, or put it in an --env-file"),
                )
            })?;
            values.insert(key.clone(), SecretValue(value));
        }
        if let Some(path) = env_file {
            let shown = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
                path: shown.clone(),
                source,
            })?;
            for (number, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let line = line.strip_prefix("export ").unwrap_or(line);
                let Some((key, value)) = line.split_once('=') else {
                    return Err(ConfigError::ParseFile {
                        path: shown,
                        message: format!("line {} is not KEY=VALUE", number + 1),
                    });
                };
                let key = key.trim();
                check_key(ENV_FILE, key)?;
                values.insert(
                    key.to_owned(),
                    SecretValue(unquote(value.trim()).to_owned()),
                );
            }
        }
        Ok(Self(values))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &SecretValue)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }
}

fn check_key(field: Field, key: &str) -> Result<(), ConfigError> {
    if SecretValues::known_keys().any(|known| known == key) {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            field,
            key,
            "is not a key the sandbox reads",
            format!(
                "use one of: {}",
                SecretValues::known_keys().collect::<Vec<_>>().join(", ")
            ),
        ))
    }
}

fn unquote(value: &str) -> &str {
    for quote in ['"', '\''] {
        if let Some(inner) = value
            .strip_prefix(quote)
            .and_then(|v| v.strip_suffix(quote))
        {
            return inner;
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_environment_and_env_files_without_showing_values() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sandbox.env");
        std::fs::write(
            &file,
            "# team secrets\nexport TFE_TOKEN=\"tfe-value\"\n\nGITHUB_TOKEN=file-value\n",
        )
        .unwrap();
        let values = SecretValues::from_sources(
            &["GITHUB_TOKEN".to_owned(), "ANTHROPIC_API_KEY".to_owned()],
            Some(&file),
            |key| Some(format!("env-{key}")),
        )
        .unwrap();
        let pairs: Vec<(&str, &str)> = values.iter().map(|(k, v)| (k, v.expose())).collect();
        assert_eq!(
            pairs,
            [
                ("ANTHROPIC_API_KEY", "env-ANTHROPIC_API_KEY"),
                ("GITHUB_TOKEN", "file-value"),
                ("TFE_TOKEN", "tfe-value"),
            ]
        );
        let debug = format!("{values:?}");
        assert!(!debug.contains("value"), "{debug}");
        assert!(debug.contains("GITHUB_TOKEN"));
    }

    #[test]
    fn unknown_or_missing_keys_are_refused_by_name() {
        let err =
            SecretValues::from_sources(&["AWS_SECRET".to_owned()], None, |_| Some("x".into()))
                .unwrap_err()
                .to_string();
        assert!(
            err.contains("AWS_SECRET") && err.contains("GITHUB_TOKEN"),
            "{err}"
        );
        let err = SecretValues::from_sources(&["GITHUB_TOKEN".to_owned()], None, |_| None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not set in the environment"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.env");
        std::fs::write(&file, "GITHUB_TOKEN\n").unwrap();
        let err = SecretValues::from_sources(&[], Some(&file), |_| None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 1") && !err.contains("GITHUB_TOKEN\n"),
            "{err}"
        );
    }
}
