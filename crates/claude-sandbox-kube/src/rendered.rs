use k8s_openapi::api::core::v1::{ConfigMap, Service};
use serde::Serialize;

use crate::sandbox::{v1alpha1, v1beta1};

/// A Sandbox in the API version the cluster serves.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum SandboxObject {
    V1beta1(v1beta1::Sandbox),
    V1alpha1(v1alpha1::Sandbox),
}

/// Every object that makes up one sandbox, in the order they are applied.
#[derive(Clone, Debug)]
pub struct RenderedSandbox {
    /// The bundled devcontainer.json and entrypoint.sh, unless a devcontainer repository brings them.
    pub config_map: Option<ConfigMap>,
    pub sandbox: SandboxObject,
    pub service: Service,
}

impl RenderedSandbox {
    /// Each object as JSON, in apply order.
    pub fn objects(&self) -> Vec<serde_json::Value> {
        let mut objects = Vec::new();
        if let Some(config_map) = &self.config_map {
            objects.push(to_json(config_map));
        }
        objects.push(to_json(&self.sandbox));
        objects.push(to_json(&self.service));
        objects
    }

    /// A multi-document YAML stream, as `kubectl apply -f -` takes it.
    pub fn to_yaml(&self) -> String {
        self.objects()
            .iter()
            .map(|object| serde_saphyr::to_string(object).expect("JSON values serialize to YAML"))
            .collect::<Vec<_>>()
            .join("---\n")
    }

    /// A `v1` `List`, as `kubectl get -o json` prints several objects.
    pub fn to_json(&self) -> String {
        let list = serde_json::json!({
            "apiVersion": "v1",
            "kind": "List",
            "items": self.objects(),
        });
        serde_json::to_string_pretty(&list).expect("JSON values serialize")
    }
}

fn to_json(object: &impl Serialize) -> serde_json::Value {
    serde_json::to_value(object).expect("Kubernetes objects serialize to JSON")
}
