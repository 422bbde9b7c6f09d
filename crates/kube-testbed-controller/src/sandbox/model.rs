//! The `Sandbox` resource as this controller reads it: one model for both API versions (the
//! fields of v1beta1 and v1alpha1 differ only in `operatingMode` vs `replicas` and a few status
//! fields), with the pod spec kept as raw JSON so nothing the user wrote is lost.

use k8s_openapi::{
    apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference},
    jiff::Timestamp,
};
use kube::api::DynamicObject;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    api::controller_reference,
    conditions::Condition,
    error::Error,
    keys::{GROUP, POD_NAME_ANNOTATION},
    metadata::Map,
    time,
};

/// The served API version the controller works in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    /// Current releases (storage version): `operatingMode`, opt-in `service`.
    V1beta1,
    /// Only served on its own by v0.1.0's CRDs, so it means v0.1.0's controller: `replicas`, a
    /// Service always, a Ready condition only.
    V1alpha1,
}

impl Version {
    /// Most preferred first.
    pub(crate) const PREFERRED: [Version; 2] = [Version::V1beta1, Version::V1alpha1];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Version::V1beta1 => "v1beta1",
            Version::V1alpha1 => "v1alpha1",
        }
    }
}

/// Labels and annotations of a pod template.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct PodMetadata {
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub labels: Map,
    /// `None` and empty differ upstream: only a present map is propagated to existing pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<Map>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct PodTemplate {
    #[serde(default)]
    pub metadata: PodMetadata,
    #[serde(default)]
    pub spec: Value,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct ClaimTemplateMetadata {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub labels: Map,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub annotations: Map,
}

/// A `volumeClaimTemplates` entry: PVC `<name>-<sandbox>`, pod volume `<name>`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct VolumeClaimTemplate {
    #[serde(default)]
    pub metadata: ClaimTemplateMetadata,
    #[serde(default)]
    pub spec: Value,
}

impl VolumeClaimTemplate {
    pub(crate) fn claim_name(&self, sandbox: &str) -> String {
        format!("{}-{sandbox}", self.metadata.name)
    }
}

/// What a Sandbox shares with a SandboxTemplate (upstream `SandboxBlueprint`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Blueprint {
    #[serde(default)]
    pub pod_template: PodTemplate,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volume_claim_templates: Vec<VolumeClaimTemplate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SandboxSpec {
    #[serde(flatten)]
    pub blueprint: Blueprint,
    pub shutdown_time: Option<String>,
    pub shutdown_policy: Option<String>,
    /// v1beta1.
    pub operating_mode: Option<String>,
    /// v1alpha1; unset means 1.
    pub replicas: Option<i32>,
}

/// Both versions' status fields; empty ones are not written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SandboxStatus {
    #[serde(
        rename = "serviceFQDN",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub service_fqdn: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub selector: String,
    #[serde(rename = "podIPs", default, skip_serializing_if = "Vec::is_empty")]
    pub pod_ips: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node_name: String,
    /// v1alpha1 (the scale subresource's status path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
}

impl SandboxStatus {
    pub(crate) fn set_service(&mut self, name: &str, namespace: &str) {
        self.service = name.to_owned();
        self.service_fqdn = format!("{name}.{namespace}.svc.cluster.local");
    }

    pub(crate) fn clear_service(&mut self) {
        self.service.clear();
        self.service_fqdn.clear();
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Sandbox {
    pub meta: ObjectMeta,
    pub spec: SandboxSpec,
    pub status: SandboxStatus,
    pub version: Version,
}

impl Sandbox {
    pub(crate) fn from_object(object: &DynamicObject, version: Version) -> Result<Self, Error> {
        let invalid = |source| Error::Invalid {
            kind: "Sandbox",
            name: object.metadata.name.clone().unwrap_or_default(),
            source,
        };
        Ok(Self {
            meta: object.metadata.clone(),
            spec: serde_json::from_value(object.data.get("spec").cloned().unwrap_or_default())
                .map_err(invalid)?,
            status: match object.data.get("status") {
                Some(status) if !status.is_null() => {
                    serde_json::from_value(status.clone()).map_err(invalid)?
                }
                _ => SandboxStatus::default(),
            },
            version,
        })
    }

    pub(crate) fn name(&self) -> &str {
        self.meta.name.as_deref().unwrap_or_default()
    }

    pub(crate) fn namespace(&self) -> &str {
        self.meta.namespace.as_deref().unwrap_or_default()
    }

    pub(crate) fn uid(&self) -> &str {
        self.meta.uid.as_deref().unwrap_or_default()
    }

    pub(crate) fn generation(&self) -> i64 {
        self.meta.generation.unwrap_or_default()
    }

    pub(crate) fn annotation(&self, key: &str) -> Option<&str> {
        self.meta.annotations.as_ref()?.get(key).map(String::as_str)
    }

    pub(crate) fn deleting(&self) -> bool {
        self.meta.deletion_timestamp.is_some()
    }

    /// `operatingMode: Suspended` (v1beta1) or `replicas: 0` (v1alpha1).
    pub(crate) fn suspended(&self) -> bool {
        match self.version {
            Version::V1beta1 => self.spec.operating_mode.as_deref() == Some("Suspended"),
            Version::V1alpha1 => self.spec.replicas == Some(0),
        }
    }

    pub(crate) fn shutdown_time(&self) -> Option<Timestamp> {
        time::parse(self.spec.shutdown_time.as_deref())
    }

    /// The pod's name: the Sandbox's, or a legacy adopted pod's from the annotation.
    pub(crate) fn pod_name(&self) -> &str {
        self.annotation(POD_NAME_ANNOTATION)
            .filter(|n| !n.is_empty())
            .unwrap_or(self.name())
    }

    /// The controller reference its children carry.
    pub(crate) fn owner_reference(&self) -> OwnerReference {
        let api_version = format!("{GROUP}/{}", self.version.as_str());
        controller_reference(&api_version, "Sandbox", self.name(), self.uid())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(spec: Value) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "agents.x-k8s.io/v1beta1",
            "kind": "Sandbox",
            "metadata": {"name": "s", "namespace": "ns", "uid": "u", "generation": 2,
                         "annotations": {"agents.x-k8s.io/pod-name": "warm-abc"}},
            "spec": spec,
        }))
        .unwrap()
    }

    #[test]
    fn reads_both_versions_suspension() {
        let spec = json!({"podTemplate": {"spec": {"containers": []}}, "operatingMode": "Suspended", "replicas": 1});
        let beta = Sandbox::from_object(&object(spec.clone()), Version::V1beta1).unwrap();
        assert!(beta.suspended());
        let alpha = Sandbox::from_object(&object(spec), Version::V1alpha1).unwrap();
        assert!(!alpha.suspended());
        assert_eq!(alpha.pod_name(), "warm-abc");
        assert_eq!(
            alpha.owner_reference().api_version,
            "agents.x-k8s.io/v1alpha1"
        );
        assert_eq!(alpha.generation(), 2);
    }

    #[test]
    fn status_serializes_only_what_is_set() {
        let mut status = SandboxStatus::default();
        status.set_service("s", "ns");
        assert_eq!(
            serde_json::to_value(&status).unwrap(),
            json!({"service": "s", "serviceFQDN": "s.ns.svc.cluster.local"})
        );
    }
}
