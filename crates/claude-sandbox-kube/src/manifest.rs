//! Applying a multi-document manifest (the agent-sandbox release) with server-side apply,
//! resolving each kind through discovery, CRDs first.

use std::path::PathBuf;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{
    Api, ResourceExt,
    api::{DynamicObject, GroupVersionKind, Patch, PatchParams},
    discovery::{Discovery, Scope},
    runtime::wait::{await_condition, conditions},
};
use serde::Deserialize;

use crate::{cluster::Cluster, error::Error};

/// The field manager of everything this tool applies.
pub const FIELD_MANAGER: &str = "claude-sandbox";

/// Where a manifest comes from.
#[derive(Debug, Clone)]
pub enum ManifestSource {
    Path(PathBuf),
    Url(String),
}

impl ManifestSource {
    pub fn parse(text: &str) -> Self {
        if text.starts_with("https://") || text.starts_with("http://") {
            Self::Url(text.to_owned())
        } else {
            Self::Path(PathBuf::from(text))
        }
    }

    fn name(&self) -> String {
        self.to_string()
    }

    /// The manifest's objects, in file order.
    pub async fn load(&self) -> Result<Vec<DynamicObject>, Error> {
        let failed = |message: String| Error::Manifest {
            source_name: self.name(),
            message,
        };
        let text = match self {
            Self::Path(path) => tokio::fs::read_to_string(path)
                .await
                .map_err(|e| failed(e.to_string()))?,
            Self::Url(url) => {
                let url = url.clone();
                tokio::task::spawn_blocking(move || -> Result<String, String> {
                    let mut response = ureq::get(&url).call().map_err(|e| e.to_string())?;
                    response
                        .body_mut()
                        .read_to_string()
                        .map_err(|e| e.to_string())
                })
                .await
                .map_err(|e| failed(e.to_string()))?
                .map_err(failed)?
            }
        };
        let mut objects = Vec::new();
        for document in serde_saphyr::from_multiple::<serde_json::Value>(&text)
            .map_err(|e| failed(e.to_string()))?
        {
            if document.is_null() {
                continue;
            }
            objects.push(DynamicObject::deserialize(document).map_err(|e| failed(e.to_string()))?);
        }
        if objects.is_empty() {
            return Err(failed("it holds no Kubernetes objects".to_owned()));
        }
        Ok(objects)
    }
}

impl std::fmt::Display for ManifestSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Path(path) => write!(f, "{}", path.display()),
            Self::Url(url) => f.write_str(url),
        }
    }
}

fn gvk_of(object: &DynamicObject) -> Result<GroupVersionKind, Error> {
    let types = object.types.as_ref().ok_or_else(|| Error::Manifest {
        source_name: object.name_any(),
        message: "an object has no apiVersion/kind".to_owned(),
    })?;
    GroupVersionKind::try_from(types).map_err(|e| Error::Manifest {
        source_name: object.name_any(),
        message: e.to_string(),
    })
}

/// Server-side applies `objects`: CRDs first, waiting until they are established, then the rest.
pub async fn apply_all(cluster: &Cluster, objects: &[DynamicObject]) -> Result<(), Error> {
    let (crds, rest): (Vec<&DynamicObject>, Vec<&DynamicObject>) = objects.iter().partition(|o| {
        o.types
            .as_ref()
            .is_some_and(|t| t.kind == "CustomResourceDefinition")
    });
    apply_batch(cluster, &crds).await?;
    let crd_api = Api::<CustomResourceDefinition>::all(cluster.client.clone());
    for crd in &crds {
        let name = crd.name_any();
        await_condition(crd_api.clone(), &name, conditions::is_crd_established())
            .await
            .map_err(|e| {
                Error::Prerequisite(format!("CRD {name} did not become established: {e}"))
            })?;
    }
    apply_batch(cluster, &rest).await
}

async fn apply_batch(cluster: &Cluster, objects: &[&DynamicObject]) -> Result<(), Error> {
    if objects.is_empty() {
        return Ok(());
    }
    let discovery = Discovery::new(cluster.client.clone())
        .run()
        .await
        .map_err(|e| cluster.error(e))?;
    let params = PatchParams::apply(FIELD_MANAGER).force();
    for object in objects {
        let gvk = gvk_of(object)?;
        let api = api_for(cluster, &discovery, &gvk, object).ok_or_else(|| Error::Manifest {
            source_name: object.name_any(),
            message: format!(
                "the cluster does not serve {}/{} {}",
                gvk.group, gvk.version, gvk.kind
            ),
        })?;
        let name = object.name_any();
        tracing::debug!(kind = %gvk.kind, %name, "applying");
        api.patch(&name, &params, &Patch::Apply(object))
            .await
            .map_err(|e| cluster.error(e))?;
    }
    Ok(())
}

/// Deletes `objects` (those that exist), in reverse order: the rest before the CRDs, and waits
/// until each is gone.
pub async fn delete_all(cluster: &Cluster, objects: &[DynamicObject]) -> Result<(), Error> {
    let discovery = Discovery::new(cluster.client.clone())
        .run()
        .await
        .map_err(|e| cluster.error(e))?;
    let mut deleted = Vec::new();
    for object in objects.iter().rev() {
        let gvk = gvk_of(object)?;
        let Some(api) = api_for(cluster, &discovery, &gvk, object) else {
            continue;
        };
        let name = object.name_any();
        let Some(live) = api.get_opt(&name).await.map_err(|e| cluster.error(e))? else {
            continue;
        };
        match api.delete(&name, &Default::default()).await {
            Ok(_) => tracing::debug!(kind = %gvk.kind, %name, "deleting"),
            Err(kube::Error::Api(status)) if status.code == 404 => continue,
            Err(e) => return Err(cluster.error(e)),
        }
        deleted.push((api, name, live.uid().unwrap_or_default()));
    }
    for (api, name, uid) in deleted {
        await_condition(api, &name, conditions::is_deleted(&uid))
            .await
            .map_err(|e| {
                Error::Prerequisite(format!("waiting for {name} to be deleted failed: {e}"))
            })?;
    }
    Ok(())
}

/// The API for `object`'s kind, in its namespace, if the cluster serves the kind.
fn api_for(
    cluster: &Cluster,
    discovery: &Discovery,
    gvk: &GroupVersionKind,
    object: &DynamicObject,
) -> Option<Api<DynamicObject>> {
    let (resource, capabilities) = discovery.resolve_gvk(gvk)?;
    Some(match capabilities.scope {
        Scope::Cluster => Api::all_with(cluster.client.clone(), &resource),
        Scope::Namespaced => Api::namespaced_with(
            cluster.client.clone(),
            object.namespace().as_deref().unwrap_or("default"),
            &resource,
        ),
    })
}
