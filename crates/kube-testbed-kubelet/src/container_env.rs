//! A container's environment as a kubelet makes it when the container starts: literal values,
//! and `valueFrom` Secret and ConfigMap keys read then (an `optional` one that is missing leaves
//! the variable unset; a required one stops the container with `CreateContainerConfigError`).
//! Other sources (`fieldRef`, `resourceFieldRef`) are not simulated: their variables are unset.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{ConfigMap, EnvVar, Secret};
use kube::{Api, Client};

use crate::error::Error;

const CONFIG_ERROR: &str = "CreateContainerConfigError";

/// Where a variable's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Source {
    Secret,
    ConfigMap,
}

impl Source {
    /// The kind as the kubelet's messages spell it.
    fn kind(self) -> &'static str {
        match self {
            Self::Secret => "Secret",
            Self::ConfigMap => "ConfigMap",
        }
    }
}

/// The literal values of `env`, without reading anything: what is known before the start.
pub(crate) fn literal(env: &[EnvVar]) -> Vec<(String, String)> {
    env.iter()
        .filter_map(|var| Some((var.name.clone(), var.value.clone()?)))
        .collect()
}

/// `base` without the variables `drop` matches or `set` replaces, then `set`: the environment
/// of a process started in the pod.
pub(crate) fn overlay(
    base: &[(String, String)],
    drop: impl Fn(&str) -> bool,
    set: Vec<(&str, String)>,
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = base
        .iter()
        .filter(|(name, _)| !drop(name) && !set.iter().any(|(replaced, _)| replaced == name))
        .cloned()
        .collect();
    env.extend(
        set.into_iter()
            .map(|(name, value)| (name.to_owned(), value)),
    );
    env
}

/// Resolves `env` of a container in `namespace`, reading each Secret and ConfigMap once.
pub(crate) async fn resolve(
    client: &Client,
    namespace: &str,
    env: &[EnvVar],
) -> Result<Vec<(String, String)>, Error> {
    let mut objects = Objects {
        client,
        namespace,
        read: HashMap::new(),
    };
    let mut resolved = Vec::with_capacity(env.len());
    for var in env {
        let reference = var.value_from.as_ref().and_then(|from| {
            let secret = from
                .secret_key_ref
                .as_ref()
                .map(|r| (Source::Secret, r.name.as_str(), r.key.as_str(), r.optional));
            let config_map = from.config_map_key_ref.as_ref().map(|r| {
                (
                    Source::ConfigMap,
                    r.name.as_str(),
                    r.key.as_str(),
                    r.optional,
                )
            });
            secret.or(config_map)
        });
        let value = match (&var.value, reference) {
            (Some(value), _) => Some(value.clone()),
            (None, Some((source, name, key, optional))) => {
                objects
                    .value(source, name, key, optional.unwrap_or(false))
                    .await?
            }
            (None, None) => None,
        };
        if let Some(value) = value {
            resolved.push((var.name.clone(), value));
        }
    }
    Ok(resolved)
}

/// The Secrets and ConfigMaps read so far (`None`: not found).
struct Objects<'a> {
    client: &'a Client,
    namespace: &'a str,
    read: HashMap<(Source, String), Option<BTreeMap<String, String>>>,
}

impl Objects<'_> {
    /// Key `key` of object `name`; `None` when it is missing and `optional`.
    async fn value(
        &mut self,
        source: Source,
        name: &str,
        key: &str,
        optional: bool,
    ) -> Result<Option<String>, Error> {
        let cache_key = (source, name.to_owned());
        if !self.read.contains_key(&cache_key) {
            let data = self.fetch(source, name).await?;
            self.read.insert(cache_key.clone(), data);
        }
        let message = match &self.read[&cache_key] {
            Some(data) => match data.get(key) {
                Some(value) => return Ok(Some(value.clone())),
                None => format!(
                    "couldn't find key {key} in {} {}/{name}",
                    source.kind(),
                    self.namespace
                ),
            },
            None => format!("{} {name:?} not found", source.kind().to_ascii_lowercase()),
        };
        if optional {
            Ok(None)
        } else {
            Err(Error::ContainerStart {
                reason: CONFIG_ERROR,
                message,
            })
        }
    }

    async fn fetch(
        &self,
        source: Source,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, Error> {
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        Ok(match source {
            Source::Secret => Api::<Secret>::namespaced(self.client.clone(), self.namespace)
                .get_opt(name)
                .await?
                .map(|secret| {
                    secret
                        .data
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(key, value)| (key, text(&value.0)))
                        .collect()
                }),
            Source::ConfigMap => Api::<ConfigMap>::namespaced(self.client.clone(), self.namespace)
                .get_opt(name)
                .await?
                .map(|config_map| {
                    let binary = config_map.binary_data.unwrap_or_default();
                    config_map
                        .data
                        .unwrap_or_default()
                        .into_iter()
                        .chain(binary.into_iter().map(|(key, value)| (key, text(&value.0))))
                        .collect()
                }),
        })
    }
}

#[cfg(test)]
mod tests {
    use hyper::{Request, StatusCode, body::Incoming};
    use k8s_openapi::api::core::v1::{ConfigMapKeySelector, EnvVarSource, SecretKeySelector};
    use serde_json::json;
    use tokio::net::TcpListener;

    use super::*;
    use crate::http_server::{self, respond};

    /// A client of an API server that has Secret `creds` (`token`) and ConfigMap `settings`
    /// (`colour`) in namespace `ns`, and nothing else.
    async fn client() -> Client {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(http_server::serve(
            listener,
            None,
            |request: Request<Incoming>| async move {
                let object = match request.uri().path() {
                    "/api/v1/namespaces/ns/secrets/creds" => Some(json!({
                        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
                        "data": {"token": "czNjcjN0"},
                    })),
                    "/api/v1/namespaces/ns/configmaps/settings" => Some(json!({
                        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"},
                        "data": {"colour": "blue"},
                    })),
                    _ => None,
                };
                match object {
                    Some(object) => respond(StatusCode::OK, "application/json", object.to_string()),
                    None => respond(
                        StatusCode::NOT_FOUND,
                        "application/json",
                        json!({
                            "apiVersion": "v1", "kind": "Status", "status": "Failure",
                            "reason": "NotFound", "code": 404, "message": "not found",
                        })
                        .to_string(),
                    ),
                }
            },
        ));
        let config = kube::Config::new(format!("http://127.0.0.1:{port}").parse().unwrap());
        Client::try_from(config).unwrap()
    }

    fn literal_var(name: &str, value: &str) -> EnvVar {
        EnvVar {
            name: name.to_owned(),
            value: Some(value.to_owned()),
            ..EnvVar::default()
        }
    }

    fn secret_var(name: &str, secret: &str, key: &str, optional: Option<bool>) -> EnvVar {
        EnvVar {
            name: name.to_owned(),
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector {
                    name: secret.to_owned(),
                    key: key.to_owned(),
                    optional,
                }),
                ..EnvVarSource::default()
            }),
            ..EnvVar::default()
        }
    }

    fn config_map_var(name: &str, config_map: &str, key: &str) -> EnvVar {
        EnvVar {
            name: name.to_owned(),
            value_from: Some(EnvVarSource {
                config_map_key_ref: Some(ConfigMapKeySelector {
                    name: config_map.to_owned(),
                    key: key.to_owned(),
                    optional: None,
                }),
                ..EnvVarSource::default()
            }),
            ..EnvVar::default()
        }
    }

    #[tokio::test]
    async fn secret_and_config_map_keys_are_read_and_missing_optional_ones_unset() {
        let client = client().await;
        let env = [
            literal_var("GREETING", "hello"),
            secret_var("TOKEN", "creds", "token", None),
            config_map_var("COLOUR", "settings", "colour"),
            secret_var("NO_KEY", "creds", "other", Some(true)),
            secret_var("NO_SECRET", "absent", "token", Some(true)),
            EnvVar {
                name: "FROM_FIELD".to_owned(),
                value_from: Some(EnvVarSource::default()),
                ..EnvVar::default()
            },
        ];
        assert_eq!(literal(&env), [("GREETING".to_owned(), "hello".to_owned())]);
        let resolved = resolve(&client, "ns", &env).await.unwrap();
        let pairs: Vec<(&str, &str)> = resolved
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("GREETING", "hello"),
                ("TOKEN", "s3cr3t"),
                ("COLOUR", "blue")
            ]
        );
    }

    #[tokio::test]
    async fn missing_required_keys_stop_the_container_as_a_kubelet_does() {
        let client = client().await;
        let failure = |env: EnvVar| {
            let client = client.clone();
            async move {
                match resolve(&client, "ns", &[env]).await.unwrap_err() {
                    Error::ContainerStart { reason, message } => (reason, message),
                    other => panic!("unexpected {other}"),
                }
            }
        };
        assert_eq!(
            failure(secret_var("X", "absent", "token", None)).await,
            (CONFIG_ERROR, "secret \"absent\" not found".to_owned())
        );
        assert_eq!(
            failure(secret_var("X", "creds", "other", Some(false))).await,
            (
                CONFIG_ERROR,
                "couldn't find key other in Secret ns/creds".to_owned()
            )
        );
        assert_eq!(
            failure(config_map_var("X", "settings", "size")).await,
            (
                CONFIG_ERROR,
                "couldn't find key size in ConfigMap ns/settings".to_owned()
            )
        );
    }

    #[test]
    fn overlay_replaces_and_drops_variables() {
        let base = vec![
            ("A".to_owned(), "1".to_owned()),
            ("PATH".to_owned(), "/x".to_owned()),
            ("ENVBUILDER_X".to_owned(), "y".to_owned()),
        ];
        assert_eq!(
            overlay(
                &base,
                |name| name.starts_with("ENVBUILDER_"),
                vec![("PATH", "/p".to_owned())]
            ),
            [
                ("A".to_owned(), "1".to_owned()),
                ("PATH".to_owned(), "/p".to_owned())
            ]
        );
    }
}
