//! The extensions resources (`extensions.agents.x-k8s.io/v1beta1`) as this controller reads them.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{ApiResource, DynamicObject};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::Value;

use crate::{
    api::controller_reference,
    conditions::Condition,
    error::Error,
    keys::{EXTENSIONS_GROUP, EXTENSIONS_VERSION},
    runner,
    sandbox::model::{Blueprint, PodMetadata, VolumeClaimTemplate},
};

fn resource(kind: &str, plural: &str) -> ApiResource {
    runner::resource(EXTENSIONS_GROUP, EXTENSIONS_VERSION, kind, plural)
}

pub(crate) fn templates() -> ApiResource {
    resource("SandboxTemplate", "sandboxtemplates")
}

pub(crate) fn warm_pools() -> ApiResource {
    resource("SandboxWarmPool", "sandboxwarmpools")
}

pub(crate) fn claims() -> ApiResource {
    resource("SandboxClaim", "sandboxclaims")
}

/// An object with a typed spec and status.
#[derive(Debug, Clone)]
pub(crate) struct Object<Spec, Status> {
    pub meta: ObjectMeta,
    pub spec: Spec,
    pub status: Status,
}

impl<Spec: DeserializeOwned + Default, Status: DeserializeOwned + Default> Object<Spec, Status> {
    pub(crate) fn from_object(object: &DynamicObject, kind: &'static str) -> Result<Self, Error> {
        let field = |name: &str| object.data.get(name).filter(|v| !v.is_null()).cloned();
        let invalid = |source| Error::Invalid {
            kind,
            name: object.metadata.name.clone().unwrap_or_default(),
            source,
        };
        Ok(Self {
            meta: object.metadata.clone(),
            spec: field("spec")
                .map(serde_json::from_value)
                .transpose()
                .map_err(invalid)?
                .unwrap_or_default(),
            status: field("status")
                .map(serde_json::from_value)
                .transpose()
                .map_err(invalid)?
                .unwrap_or_default(),
        })
    }
}

impl<Spec, Status> Object<Spec, Status> {
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

    pub(crate) fn deleting(&self) -> bool {
        self.meta.deletion_timestamp.is_some()
    }

    /// A controller reference to this object, of `kind`.
    pub(crate) fn owner_reference(&self, kind: &str) -> OwnerReference {
        let api_version = format!("{EXTENSIONS_GROUP}/{EXTENSIONS_VERSION}");
        controller_reference(&api_version, kind, self.name(), self.uid())
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct NameRef {
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct NetworkPolicyRules {
    pub ingress: Option<Value>,
    pub egress: Option<Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TemplateSpec {
    #[serde(flatten)]
    pub blueprint: Blueprint,
    pub network_policy: Option<NetworkPolicyRules>,
    /// `Managed` (default) or `Unmanaged`.
    pub network_policy_management: Option<String>,
    /// `Disallowed` (default), `Allowed` or `Overrides`.
    pub env_vars_injection_policy: Option<String>,
    /// `Disallowed` (default), `Allowed` or `Overrides`.
    pub volume_claim_templates_policy: Option<String>,
}

impl TemplateSpec {
    /// The template manages the default ("secure by default") NetworkPolicy.
    pub(crate) fn secure_by_default(&self) -> bool {
        self.network_policy_management
            .as_deref()
            .unwrap_or("Managed")
            == "Managed"
            && self.network_policy.is_none()
    }
}

pub(crate) type Template = Object<TemplateSpec, Value>;

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct UpdateStrategy {
    #[serde(rename = "type")]
    pub type_: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WarmPoolSpec {
    pub replicas: Option<i32>,
    #[serde(default)]
    pub sandbox_template_ref: NameRef,
    pub update_strategy: Option<UpdateStrategy>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WarmPoolStatus {
    #[serde(default)]
    pub replicas: i32,
    #[serde(default)]
    pub ready_replicas: i32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub selector: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

pub(crate) type WarmPool = Object<WarmPoolSpec, WarmPoolStatus>;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Lifecycle {
    pub shutdown_time: Option<String>,
    /// `Retain` (default), `Delete` or `DeleteForeground`.
    pub shutdown_policy: Option<String>,
    pub ttl_seconds_after_finished: Option<i32>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EnvVar {
    pub name: String,
    #[serde(default)]
    pub value: String,
    #[serde(default)]
    pub container_name: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ClaimSpec {
    #[serde(default)]
    pub warm_pool_ref: NameRef,
    pub lifecycle: Option<Lifecycle>,
    #[serde(default)]
    pub additional_pod_metadata: PodMetadata,
    #[serde(default)]
    pub env: Vec<EnvVar>,
    #[serde(default)]
    pub volume_claim_templates: Vec<VolumeClaimTemplate>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct ClaimedSandbox {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(rename = "podIPs", default, skip_serializing_if = "Vec::is_empty")]
    pub pod_ips: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct ClaimStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default)]
    pub sandbox: ClaimedSandbox,
}

pub(crate) type Claim = Object<ClaimSpec, ClaimStatus>;
