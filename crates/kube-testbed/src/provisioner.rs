//! A volume provisioner for the `standard` StorageClass, so that PVCs bind at once: for each pending
//! claim it creates a hostPath PersistentVolume under the testbed's `volumes/`, pre-bound to the
//! claim (the controller manager's binder then completes the binding, as with any external
//! provisioner), and it deletes the volumes that deleted claims release.

use std::path::{Path, PathBuf};

use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, PostParams},
    runtime::{WatchStreamExt, watcher},
};
use serde_json::json;

use crate::{bootstrap::STORAGE_CLASS, error::Error};

/// The provisioner name of the default StorageClass.
pub const PROVISIONER: &str = "kube-testbed.claude-sandbox.dev/fake";
const PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";
const DEFAULT_SIZE: &str = "1Gi";

enum Change {
    Claim(Box<PersistentVolumeClaim>),
    Volume(Box<PersistentVolume>),
}

/// Runs until dropped; watch errors (an API server restart) are retried with backoff.
pub(crate) async fn run(client: Client, volumes: PathBuf) -> Result<(), Error> {
    let claims = watcher(
        Api::<PersistentVolumeClaim>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .applied_objects()
    .map_ok(|c| Change::Claim(Box::new(c)));
    let pvs = watcher(
        Api::<PersistentVolume>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .applied_objects()
    .map_ok(|v| Change::Volume(Box::new(v)));
    let mut changes = std::pin::pin!(stream::select(claims, pvs));
    while let Some(change) = changes.next().await {
        let handled = match change {
            Ok(Change::Claim(claim)) => provision(&client, &volumes, &claim).await,
            Ok(Change::Volume(volume)) => reclaim(&client, &volumes, &volume).await,
            Err(error) => {
                tracing::debug!(%error, "provisioner watch interrupted");
                Ok(())
            }
        };
        if let Err(error) = handled {
            tracing::warn!(%error, "provisioner");
        }
    }
    Ok(())
}

/// The class a claim is provisioned with, if the claim is ours to provision: pending, unbound, of
/// the default class or of none.
fn wanted_class(claim: &PersistentVolumeClaim) -> Option<String> {
    let spec = claim.spec.as_ref()?;
    let pending = claim
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .is_none_or(|p| p == "Pending");
    let unbound = spec.volume_name.as_deref().is_none_or(str::is_empty);
    if !pending || !unbound || claim.metadata.deletion_timestamp.is_some() {
        return None;
    }
    match spec.storage_class_name.as_deref() {
        None => Some(String::new()),
        Some(STORAGE_CLASS) => Some(STORAGE_CLASS.to_owned()),
        Some(_) => None,
    }
}

async fn provision(
    client: &Client,
    volumes: &Path,
    claim: &PersistentVolumeClaim,
) -> Result<(), Error> {
    let Some(class) = wanted_class(claim) else {
        return Ok(());
    };
    let (Some(namespace), Some(uid)) = (claim.namespace(), claim.uid()) else {
        return Ok(());
    };
    let spec = claim.spec.as_ref().expect("wanted_class checked the spec");
    let name = format!("pvc-{uid}");
    let path = volumes.join(&name);
    std::fs::create_dir_all(&path).map_err(Error::io("creating", &path))?;
    let size = spec
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .map_or(DEFAULT_SIZE.to_owned(), |q| q.0.clone());
    let access_modes = spec
        .access_modes
        .clone()
        .unwrap_or_else(|| vec!["ReadWriteOnce".to_owned()]);
    let volume: PersistentVolume = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": { "name": name, "annotations": { PROVISIONED_BY: PROVISIONER } },
        "spec": {
            "capacity": { "storage": size },
            "accessModes": access_modes,
            "persistentVolumeReclaimPolicy": "Delete",
            "storageClassName": class,
            "volumeMode": spec.volume_mode.as_deref().unwrap_or("Filesystem"),
            "hostPath": { "path": path, "type": "DirectoryOrCreate" },
            "claimRef": {
                "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "namespace": namespace, "name": claim.name_any(), "uid": uid,
            },
        },
    }))
    .expect("a valid PersistentVolume");
    match Api::<PersistentVolume>::all(client.clone())
        .create(&PostParams::default(), &volume)
        .await
    {
        Ok(_) => {
            tracing::debug!(volume = %name, claim = %claim.name_any(), %namespace, "provisioned");
            Ok(())
        }
        // Seen again (a relist, a status change): it is provisioned already.
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(error) => Err(error.into()),
    }
}

/// Deletes a volume of ours that its deleted claim released, and its directory.
async fn reclaim(client: &Client, volumes: &Path, volume: &PersistentVolume) -> Result<(), Error> {
    let ours = volume
        .annotations()
        .get(PROVISIONED_BY)
        .is_some_and(|p| p == PROVISIONER);
    let released = volume.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Released");
    if !ours || !released || volume.metadata.deletion_timestamp.is_some() {
        return Ok(());
    }
    match Api::<PersistentVolume>::all(client.clone())
        .delete(&volume.name_any(), &DeleteParams::default())
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 404 => {}
        Err(error) => return Err(error.into()),
    }
    // Only ever a directory we made.
    let path = volumes.join(volume.name_any());
    if path.exists() {
        std::fs::remove_dir_all(&path).map_err(Error::io("removing", &path))?;
    }
    tracing::debug!(volume = %volume.name_any(), "reclaimed");
    Ok(())
}
