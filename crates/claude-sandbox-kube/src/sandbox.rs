//! The agent-sandbox `Sandbox` resource (`agents.x-k8s.io`), in the two API versions we speak.
//! Only the fields we write or read are modelled; the CRDs in `shared/agent-sandbox` are the truth
//! and the tests check our objects against them.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::core::v1::{PersistentVolumeClaimSpec, PodSpec},
    apimachinery::pkg::apis::meta::v1::Condition,
};
use serde::{Deserialize, Serialize};

pub const GROUP: &str = "agents.x-k8s.io";

/// `spec.podTemplate`: labels, annotations and a pod spec.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct PodTemplate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<EmbeddedMetadata>,
    pub spec: PodSpec,
}

/// `spec.volumeClaimTemplates[]`: the controller makes PVC `<name>-<sandbox>` from each.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct VolumeClaimTemplate {
    pub metadata: EmbeddedMetadata,
    pub spec: PersistentVolumeClaimSpec,
}

/// The metadata the CRD allows inside a template.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct EmbeddedMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// What the controller reports; the union of both versions' fields.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SandboxStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_fqdn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pod_ips: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    /// v1alpha1 only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
}

/// `spec.operatingMode` (v1beta1).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OperatingMode {
    Running,
    Suspended,
}

pub mod v1beta1 {
    use kube::CustomResource;

    use super::*;

    /// agent-sandbox v1.0 and later (served also by v0.5.x).
    #[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
    #[kube(
        group = "agents.x-k8s.io",
        version = "v1beta1",
        kind = "Sandbox",
        namespaced,
        status = "SandboxStatus",
        schema = "disabled"
    )]
    #[serde(rename_all = "camelCase")]
    pub struct SandboxSpec {
        pub pod_template: PodTemplate,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub volume_claim_templates: Vec<VolumeClaimTemplate>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub operating_mode: Option<OperatingMode>,
    }
}

pub mod v1alpha1 {
    use kube::CustomResource;

    use super::*;

    /// agent-sandbox v0.1 to v0.5. Only the fields v0.1.0 already had.
    #[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
    #[kube(
        group = "agents.x-k8s.io",
        version = "v1alpha1",
        kind = "Sandbox",
        namespaced,
        status = "SandboxStatus",
        schema = "disabled"
    )]
    #[serde(rename_all = "camelCase")]
    pub struct SandboxSpec {
        pub pod_template: PodTemplate,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub volume_claim_templates: Vec<VolumeClaimTemplate>,
        /// 1 = running, 0 = suspended.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub replicas: Option<i32>,
    }
}
