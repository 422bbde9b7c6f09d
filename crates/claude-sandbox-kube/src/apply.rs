//! Applying a rendered sandbox: server-side apply, only where something would change, so that
//! running `up` twice writes nothing the second time.

use claude_sandbox_core::{SandboxConfig, SecretValues};
use k8s_openapi::{
    ByteString,
    api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service},
    apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference},
};
use kube::{
    Api, Resource, ResourceExt,
    api::{ApiResource, DeleteParams, DynamicObject, Patch, PatchParams},
};
use serde::Serialize;
use serde_json::Value;

use crate::{
    cluster::Cluster, error::Error, labels, manifest::FIELD_MANAGER, rendered::RenderedSandbox,
    sandbox_ref::sandbox_resource,
};

/// What `apply_sandbox` did.
#[derive(Debug, Default)]
pub struct ApplyOutcome {
    /// `Kind/name` of each object written.
    pub changed: Vec<String>,
    /// The Sandbox existed before this run.
    pub existed: bool,
    /// Its pod template changed: a running pod keeps the old one until restarted.
    pub pod_template_changed: bool,
}

/// Applies the Sandbox, then the objects it owns (ConfigMap, Service, and the Secret when we
/// create it). When the Sandbox is new and a later object fails, the Sandbox is removed again.
pub async fn apply_sandbox(
    cluster: &Cluster,
    config: &SandboxConfig,
    rendered: &RenderedSandbox,
    secret_values: &SecretValues,
) -> Result<ApplyOutcome, Error> {
    let sandbox_api: Api<DynamicObject> = Api::namespaced_with(
        cluster.client.clone(),
        &cluster.namespace,
        &sandbox_resource(config.api_version),
    );
    let live = sandbox_api
        .get_opt(config.name.as_str())
        .await
        .map_err(|e| cluster.error(e))?;
    let mut outcome = ApplyOutcome {
        existed: live.is_some(),
        ..ApplyOutcome::default()
    };
    let desired = with_namespace(to_dynamic(&rendered.sandbox), &cluster.namespace);
    if let Some(live) = &live {
        outcome.pod_template_changed =
            live.data["spec"]["podTemplate"] != desired.data["spec"]["podTemplate"];
    }
    if apply_if_changed(cluster, &sandbox_api, &desired).await? {
        outcome.changed.push(format!("Sandbox/{}", config.name));
    }
    let owned = match sandbox_api.get(config.name.as_str()).await {
        Ok(sandbox) => {
            apply_owned(
                cluster,
                config,
                &sandbox,
                rendered,
                secret_values,
                &mut outcome,
            )
            .await
        }
        Err(e) => Err(cluster.error(e)),
    };
    if let Err(error) = owned {
        if !outcome.existed {
            tracing::debug!("removing the new Sandbox after a failure");
            let _ = sandbox_api
                .delete(config.name.as_str(), &DeleteParams::background())
                .await;
        }
        return Err(error);
    }
    Ok(outcome)
}

async fn apply_owned(
    cluster: &Cluster,
    config: &SandboxConfig,
    sandbox: &DynamicObject,
    rendered: &RenderedSandbox,
    secret_values: &SecretValues,
    outcome: &mut ApplyOutcome,
) -> Result<(), Error> {
    let owner = OwnerReference {
        api_version: format!("{}/{}", crate::sandbox::GROUP, config.api_version),
        kind: "Sandbox".to_owned(),
        name: sandbox.name_any(),
        uid: sandbox.uid().unwrap_or_default(),
        block_owner_deletion: Some(true),
        controller: Some(false),
    };
    // (object, its resource, whether it goes with the Sandbox)
    let mut owned = Vec::new();
    if let Some(config_map) = &rendered.config_map {
        owned.push((
            to_dynamic(config_map),
            ApiResource::erase::<ConfigMap>(&()),
            true,
        ));
    }
    owned.push((
        to_dynamic(&rendered.service),
        ApiResource::erase::<Service>(&()),
        true,
    ));
    if !secret_values.is_empty() {
        let secrets = Api::<Secret>::namespaced(cluster.client.clone(), &cluster.namespace);
        let existing = secrets
            .get_opt(config.secret.as_str())
            .await
            .map_err(|e| cluster.error(e))?;
        // A Secret the user made stays theirs: only one we create goes with the Sandbox.
        let ours = existing.is_none_or(|s| s.owner_references().iter().any(|o| o.uid == owner.uid));
        owned.push((
            to_dynamic(&secret_object(config, secret_values)),
            ApiResource::erase::<Secret>(&()),
            ours,
        ));
    }
    for (mut object, resource, goes_with_sandbox) in owned {
        if goes_with_sandbox {
            object.metadata.owner_references = Some(vec![owner.clone()]);
        }
        let object = with_namespace(object, &cluster.namespace);
        let api: Api<DynamicObject> =
            Api::namespaced_with(cluster.client.clone(), &cluster.namespace, &resource);
        if apply_if_changed(cluster, &api, &object).await? {
            outcome
                .changed
                .push(format!("{}/{}", resource.kind, object.name_any()));
        }
    }
    Ok(())
}

/// The Secret holding the values given with `--secret-env`/`--env-file`.
pub fn secret_object(config: &SandboxConfig, values: &SecretValues) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(config.secret.to_string()),
            labels: Some(labels::object_labels(&config.name)),
            ..ObjectMeta::default()
        },
        data: Some(
            values
                .iter()
                .map(|(key, value)| {
                    (
                        key.to_owned(),
                        ByteString(value.expose().as_bytes().to_vec()),
                    )
                })
                .collect(),
        ),
        type_: Some("Opaque".to_owned()),
        ..Secret::default()
    }
}

fn to_dynamic(object: &impl Serialize) -> DynamicObject {
    serde_json::from_value(serde_json::to_value(object).expect("objects serialize"))
        .expect("objects are dynamic objects")
}

fn with_namespace(mut object: DynamicObject, namespace: &str) -> DynamicObject {
    object.metadata.namespace = Some(namespace.to_owned());
    object
}

/// Server-side applies `object` unless a dry run shows the live object would not change.
/// Returns whether it wrote.
async fn apply_if_changed(
    cluster: &Cluster,
    api: &Api<DynamicObject>,
    object: &DynamicObject,
) -> Result<bool, Error> {
    let name = object.name_any();
    let params = PatchParams::apply(FIELD_MANAGER).force();
    if let Some(live) = api.get_opt(&name).await.map_err(|e| cluster.error(e))? {
        let mut dry_run = params.clone();
        dry_run.dry_run = true;
        let would_be = api
            .patch(&name, &dry_run, &Patch::Apply(object))
            .await
            .map_err(|e| cluster.error(e))?;
        if comparable(&would_be) == comparable(&live) {
            tracing::debug!(%name, "unchanged");
            return Ok(false);
        }
    }
    let applied = match api.patch(&name, &params, &Patch::Apply(object)).await {
        // Applying to a missing object creates it, and fails when another client (a controller
        // making the same Service) created it meanwhile: apply again, as an update.
        Err(kube::Error::Api(status)) if status.code == 409 && status.reason == "AlreadyExists" => {
            tracing::debug!(%name, "created meanwhile: applying again");
            api.patch(&name, &params, &Patch::Apply(object)).await
        }
        other => other,
    };
    applied.map_err(|e| cluster.error(e))?;
    tracing::debug!(%name, "applied");
    Ok(true)
}

/// The parts of an object a user's change can touch: labels, annotations, owners, and everything
/// outside metadata but the status.
fn comparable(object: &DynamicObject) -> Value {
    let mut data = object.data.clone();
    if let Some(map) = data.as_object_mut() {
        map.remove("status");
    }
    serde_json::json!({
        "labels": object.metadata.labels,
        "annotations": object.metadata.annotations,
        "ownerReferences": object.metadata.owner_references,
        "data": data,
    })
}

/// Removes the workspace PVC's owner reference, so that deleting the Sandbox keeps the volume.
pub async fn release_volume(cluster: &Cluster, pvc: &str) -> Result<bool, Error> {
    let pvcs = Api::<PersistentVolumeClaim>::namespaced(cluster.client.clone(), &cluster.namespace);
    let Some(claim) = pvcs.get_opt(pvc).await.map_err(|e| cluster.error(e))? else {
        return Ok(false);
    };
    if claim
        .meta()
        .owner_references
        .as_ref()
        .is_some_and(|o| !o.is_empty())
    {
        let patch = serde_json::json!({"metadata": {"ownerReferences": null}});
        pvcs.patch(pvc, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| cluster.error(e))?;
    }
    Ok(true)
}
