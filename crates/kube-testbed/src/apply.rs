//! Multi-document manifests applied server-side, each kind resolved through discovery, CRDs first
//! and waited for until established.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{
    Api, Client, ResourceExt,
    api::{DynamicObject, GroupVersionKind, Patch, PatchParams},
    discovery::{Discovery, Scope},
    runtime::wait::{await_condition, conditions},
};
use serde::Deserialize;
use serde_json::Value;

use crate::{bootstrap::FIELD_MANAGER, crds, error::Error};

const ESTABLISHED_TIMEOUT: Duration = Duration::from_secs(30);

/// One object of a manifest, with the file it came from (for error messages).
#[derive(Debug, Clone)]
pub(crate) struct ManifestObject {
    pub path: PathBuf,
    pub object: Value,
}

impl ManifestObject {
    pub fn kind(&self) -> &str {
        self.object["kind"].as_str().unwrap_or_default()
    }

    pub fn is_crd(&self) -> bool {
        self.kind() == "CustomResourceDefinition"
    }
}

/// The objects of a YAML file, or of every `.yaml`/`.yml`/`.json` file of a directory (by name).
pub(crate) fn load(path: &Path) -> Result<Vec<ManifestObject>, Error> {
    let files = if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(Error::io("reading", path))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension()
                    .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
            })
            .collect();
        files.sort();
        files
    } else {
        vec![path.to_owned()]
    };
    let mut objects = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(Error::io("reading", &file))?;
        let documents =
            serde_saphyr::from_multiple::<Value>(&text).map_err(|e| Error::Manifest {
                path: file.clone(),
                message: e.to_string(),
            })?;
        objects.extend(
            documents
                .into_iter()
                .filter(|d| !d.is_null())
                .map(|object| ManifestObject {
                    path: file.clone(),
                    object,
                }),
        );
    }
    Ok(objects)
}

/// Applies `objects`: the CRDs first (adapted for 1.20), waiting until each is established, then
/// the rest.
pub(crate) async fn apply(client: &Client, objects: &[ManifestObject]) -> Result<(), Error> {
    let (crd_objects, rest): (Vec<&ManifestObject>, Vec<&ManifestObject>) =
        objects.iter().partition(|o| o.is_crd());
    let crd_api = Api::<CustomResourceDefinition>::all(client.clone());
    let params = PatchParams::apply(FIELD_MANAGER).force();
    for manifest in &crd_objects {
        let mut crd = manifest.object.clone();
        crds::adapt(&mut crd);
        let name = crd["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        crd_api
            .patch(&name, &params, &Patch::Apply(&crd))
            .await
            .map_err(|e| failed(manifest, &name, e))?;
    }
    for manifest in &crd_objects {
        let name = manifest.object["metadata"]["name"]
            .as_str()
            .unwrap_or_default();
        let established = await_condition(crd_api.clone(), name, conditions::is_crd_established());
        tokio::time::timeout(ESTABLISHED_TIMEOUT, established)
            .await
            .map_err(|_| {
                Error::timeout(format!("CRD {name} to be established"), ESTABLISHED_TIMEOUT)
            })?
            .map_err(|e| Error::Manifest {
                path: manifest.path.clone(),
                message: format!("waiting for CRD {name}: {e}"),
            })?;
    }
    if rest.is_empty() {
        return Ok(());
    }
    // Namespaces before what goes in them.
    let mut rest = rest;
    rest.sort_by_key(|o| o.kind() != "Namespace");
    let discovery = Discovery::new(client.clone()).run().await?;
    for manifest in rest {
        let object = DynamicObject::deserialize(&manifest.object).map_err(|e| Error::Manifest {
            path: manifest.path.clone(),
            message: e.to_string(),
        })?;
        let name = object.name_any();
        let gvk = object
            .types
            .as_ref()
            .and_then(|t| GroupVersionKind::try_from(t).ok())
            .ok_or_else(|| Error::Manifest {
                path: manifest.path.clone(),
                message: format!("object {name} has no apiVersion/kind"),
            })?;
        let (resource, capabilities) =
            discovery.resolve_gvk(&gvk).ok_or_else(|| Error::Manifest {
                path: manifest.path.clone(),
                message: format!(
                    "the API server does not serve {}/{} {}",
                    gvk.group, gvk.version, gvk.kind
                ),
            })?;
        let api: Api<DynamicObject> = match capabilities.scope {
            Scope::Cluster => Api::all_with(client.clone(), &resource),
            Scope::Namespaced => Api::namespaced_with(
                client.clone(),
                object.namespace().as_deref().unwrap_or("default"),
                &resource,
            ),
        };
        api.patch(&name, &params, &Patch::Apply(&object))
            .await
            .map_err(|e| failed(manifest, &name, e))?;
    }
    Ok(())
}

fn failed(manifest: &ManifestObject, name: &str, error: kube::Error) -> Error {
    Error::Manifest {
        path: manifest.path.clone(),
        message: format!("applying {} {name}: {error}", manifest.kind()),
    }
}
