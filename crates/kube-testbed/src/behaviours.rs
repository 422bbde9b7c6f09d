//! Testbed-wide behaviour rules of the fake kubelet: ConfigMap `kube-testbed-behaviours` in
//! `kube-system`, key `rules.json`. A pod's own `testbed.claude-sandbox.dev/…` annotations win over
//! the rules that match it.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Api, Client,
    api::{Patch, PatchParams},
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{bootstrap::FIELD_MANAGER, error::Error};

pub const BEHAVIOURS_CONFIG_MAP: &str = "kube-testbed-behaviours";
pub const BEHAVIOURS_NAMESPACE: &str = "kube-system";
pub const BEHAVIOURS_KEY: &str = "rules.json";

/// One rule: the annotations given to pods of `namespace` (whose names start with `pod_prefix`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BehaviourRule {
    /// Empty: every namespace.
    pub namespace: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_prefix: Option<String>,
    /// Annotation names without the `testbed.claude-sandbox.dev/` prefix (`start-delay`,
    /// `crash-loop`, `log-script`…) and their values.
    pub annotations: BTreeMap<String, String>,
}

impl BehaviourRule {
    /// A rule for every pod of `namespace`.
    pub fn namespace(namespace: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            ..Self::default()
        }
    }

    /// Only pods whose names start with `prefix`.
    pub fn pod_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.pod_prefix = Some(prefix.into());
        self
    }

    /// Adds an annotation (name without the prefix).
    pub fn annotation(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.annotations.insert(name.into(), value.into());
        self
    }
}

/// Replaces the testbed-wide rules.
pub async fn set_rules(client: &Client, rules: &[BehaviourRule]) -> Result<(), Error> {
    let rules = serde_json::to_string(rules).expect("rules serialize");
    let config_map = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": { "name": BEHAVIOURS_CONFIG_MAP, "namespace": BEHAVIOURS_NAMESPACE },
        "data": { BEHAVIOURS_KEY: rules },
    });
    Api::<ConfigMap>::namespaced(client.clone(), BEHAVIOURS_NAMESPACE)
        .patch(
            BEHAVIOURS_CONFIG_MAP,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&config_map),
        )
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_serialize_as_the_kubelet_reads_them() {
        let rules = vec![
            BehaviourRule::namespace("ns").annotation("start-delay", "2s"),
            BehaviourRule::namespace("ns")
                .pod_prefix("web-")
                .annotation("crash-loop", "true"),
        ];
        assert_eq!(
            serde_json::to_value(&rules).unwrap(),
            json!([
                {"namespace": "ns", "annotations": {"start-delay": "2s"}},
                {"namespace": "ns", "podPrefix": "web-", "annotations": {"crash-loop": "true"}},
            ])
        );
    }
}
