//! Testbed-wide behaviour rules: ConfigMap `kube-testbed-behaviours` in `kube-system`, key
//! `rules.json`, a JSON list of `{"namespace", "podPrefix", "annotations"}`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::{Api, Client};
use serde::Deserialize;

const CONFIG_MAP: &str = "kube-testbed-behaviours";
const NAMESPACE: &str = "kube-system";
const KEY: &str = "rules.json";

/// Annotations given to the pods of a namespace (whose names start with a prefix).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Rule {
    /// Empty: every namespace.
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub pod_prefix: Option<String>,
    /// Names with or without the `testbed.claude-sandbox.dev/` prefix.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

impl Rule {
    pub fn matches(&self, namespace: &str, pod: &str) -> bool {
        (self.namespace.is_empty() || self.namespace == namespace)
            && self
                .pod_prefix
                .as_deref()
                .is_none_or(|prefix| pod.starts_with(prefix))
    }
}

pub(crate) fn parse(json: &str) -> Result<Vec<Rule>, serde_json::Error> {
    serde_json::from_str(json)
}

/// The current rules, read when a pod starts (a read rather than a watch, so that a test that
/// sets rules and then creates a pod always gets them). Missing or broken rules count as none.
pub(crate) async fn fetch(client: &Client) -> Vec<Rule> {
    let config_map = match Api::<ConfigMap>::namespaced(client.clone(), NAMESPACE)
        .get_opt(CONFIG_MAP)
        .await
    {
        Ok(config_map) => config_map,
        Err(error) => {
            tracing::warn!(%error, "reading the behaviour rules ConfigMap {NAMESPACE}/{CONFIG_MAP}");
            return Vec::new();
        }
    };
    let Some(json) = config_map
        .and_then(|c| c.data)
        .and_then(|mut data| data.remove(KEY))
    else {
        return Vec::new();
    };
    parse(&json).unwrap_or_else(|error| {
        tracing::warn!(%error, "ignoring the behaviour rules in {NAMESPACE}/{CONFIG_MAP}: not a list of rules");
        Vec::new()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_as_the_testbed_writes_them() {
        let rules = parse(
            r#"[{"namespace":"ns","annotations":{"start-delay":"2s"}},
                {"namespace":"ns","podPrefix":"web-","annotations":{"crash-loop":"true"}}]"#,
        )
        .unwrap();
        assert_eq!(rules.len(), 2);
        assert!(rules[0].matches("ns", "anything"));
        assert!(!rules[0].matches("other", "anything"));
        assert!(rules[1].matches("ns", "web-1"));
        assert!(!rules[1].matches("ns", "db-1"));
        assert!(Rule::default().matches("any", "pod"));
    }
}
