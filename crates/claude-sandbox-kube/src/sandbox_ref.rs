//! One Sandbox, in whichever API version the cluster serves.

use claude_sandbox_core::SandboxApiVersion;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{
    Api, ResourceExt,
    api::{
        ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
    },
};
use serde_json::json;

use crate::{
    cluster::Cluster,
    error::Error,
    labels,
    sandbox::{GROUP, SandboxStatus},
};

/// The `Sandbox` resource in `version`.
pub fn sandbox_resource(version: SandboxApiVersion) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(GROUP, version.as_str(), "Sandbox"),
        "sandboxes",
    )
}

/// What we read from a Sandbox.
#[derive(Debug, Clone)]
pub struct SandboxState {
    pub object: DynamicObject,
    pub suspended: bool,
    pub status: SandboxStatus,
}

impl SandboxState {
    pub fn from_object(version: SandboxApiVersion, object: DynamicObject) -> Self {
        let spec = &object.data["spec"];
        let suspended = match version {
            SandboxApiVersion::V1beta1 => spec["operatingMode"] == "Suspended",
            SandboxApiVersion::V1alpha1 => spec["replicas"] == 0,
        };
        let status = serde_json::from_value(object.data["status"].clone()).unwrap_or_default();
        Self {
            object,
            suspended,
            status,
        }
    }

    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        self.status.conditions.iter().find(|c| c.type_ == type_)
    }

    pub fn is_ready(&self) -> bool {
        self.condition("Ready").is_some_and(|c| c.status == "True")
    }

    /// The pod's name: the Sandbox's, unless the controller adopted one from a warm pool.
    pub fn pod_name(&self) -> String {
        self.object
            .annotations()
            .get("agents.x-k8s.io/pod-name")
            .cloned()
            .unwrap_or_else(|| self.object.name_any())
    }
}

/// A handle on one Sandbox by name.
#[derive(Clone)]
pub struct SandboxRef {
    pub api: Api<DynamicObject>,
    pub version: SandboxApiVersion,
    pub name: String,
}

impl SandboxRef {
    pub fn new(cluster: &Cluster, version: SandboxApiVersion, name: &str) -> Self {
        Self {
            api: Api::namespaced_with(
                cluster.client.clone(),
                &cluster.namespace,
                &sandbox_resource(version),
            ),
            version,
            name: name.to_owned(),
        }
    }

    pub async fn get(&self, cluster: &Cluster) -> Result<Option<SandboxState>, Error> {
        let object = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(|e| cluster.error(e))?;
        Ok(object.map(|o| SandboxState::from_object(self.version, o)))
    }

    /// Like `get`, but a missing Sandbox is an error that says where we looked.
    pub async fn require(&self, cluster: &Cluster) -> Result<SandboxState, Error> {
        self.get(cluster).await?.ok_or_else(|| Error::NotFound {
            name: self.name.clone(),
            namespace: cluster.namespace.clone(),
        })
    }

    /// Suspends or resumes: `operatingMode` in v1beta1, `replicas` in v1alpha1. A merge patch,
    /// because an apply patch must repeat the required `podTemplate`.
    pub async fn set_suspended(&self, cluster: &Cluster, suspended: bool) -> Result<(), Error> {
        let spec = match self.version {
            SandboxApiVersion::V1beta1 => {
                json!({"operatingMode": if suspended { "Suspended" } else { "Running" }})
            }
            SandboxApiVersion::V1alpha1 => json!({"replicas": if suspended { 0 } else { 1 }}),
        };
        self.api
            .patch(
                &self.name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "spec": spec })),
            )
            .await
            .map_err(|e| cluster.error(e))?;
        Ok(())
    }

    pub async fn delete(&self, cluster: &Cluster) -> Result<(), Error> {
        match self
            .api
            .delete(&self.name, &DeleteParams::background())
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(e) => Err(cluster.error(e)),
        }
    }
}

/// The sandboxes this tool manages in `namespace` (every namespace when None).
pub async fn list_managed(
    cluster: &Cluster,
    version: SandboxApiVersion,
    namespace: Option<&str>,
) -> Result<Vec<SandboxState>, Error> {
    let selector = format!("{}={}", labels::MANAGED_BY, labels::MANAGED_BY_VALUE);
    list(
        cluster,
        version,
        namespace,
        &ListParams::default().labels(&selector),
    )
    .await
}

/// Every Sandbox in every namespace, whoever made it.
pub async fn list_all(
    cluster: &Cluster,
    version: SandboxApiVersion,
) -> Result<Vec<SandboxState>, Error> {
    list(cluster, version, None, &ListParams::default()).await
}

async fn list(
    cluster: &Cluster,
    version: SandboxApiVersion,
    namespace: Option<&str>,
    params: &ListParams,
) -> Result<Vec<SandboxState>, Error> {
    let resource = sandbox_resource(version);
    let api: Api<DynamicObject> = match namespace {
        Some(ns) => Api::namespaced_with(cluster.client.clone(), ns, &resource),
        None => Api::all_with(cluster.client.clone(), &resource),
    };
    let list = api.list(params).await.map_err(|e| cluster.error(e))?;
    Ok(list
        .items
        .into_iter()
        .map(|o| SandboxState::from_object(version, o))
        .collect())
}
