//! A live v1beta1 Sandbox's children (upstream `reconcileChildResources`): PVCs, the pod (by
//! its tracked name, adopted when it is unowned but marked for it, deleted while suspended),
//! the Service, and the status they add up to. An existing pod's spec is never changed, and
//! a pod that ended is not replaced.

use k8s_openapi::{
    api::core::v1::{PersistentVolumeClaim, Pod, Service, ServiceSpec},
    apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference},
};
use kube::api::{DeleteParams, ListParams};
use serde_json::{Value, json};

use crate::{
    api::{self, controller_of, diff, is_controlled_by, with_controller},
    error::Error,
    keys::{ADOPTABLE_LABEL, NAME_HASH_LABEL, POD_NAME_ANNOTATION, name_hash, name_hash_selector},
    metadata::{Map, PodMetadataSource},
    sandbox::{
        Context, build, create_params,
        model::{Sandbox, SandboxStatus},
        readiness::{self, Observed},
        typed,
    },
};

pub(super) async fn reconcile(
    context: &Context,
    sandbox: &Sandbox,
    status: &mut SandboxStatus,
    now: &str,
) -> Result<(), Error> {
    let hash = name_hash(sandbox.name());
    let mut errors = Vec::new();
    if let Err(error) = pvcs(context, sandbox, &hash).await {
        errors.push(error);
    }
    let (pod, pod_error) = match pod(context, sandbox, &hash).await {
        Ok(pod) => (pod, None),
        Err((pod, error)) => (pod, Some(error)),
    };
    let pod_owned = pod
        .as_ref()
        .is_some_and(|p| is_controlled_by(&p.metadata, sandbox.uid()));
    match &pod {
        None => {
            status.pod_ips.clear();
            status.node_name.clear();
        }
        Some(pod) => {
            status.selector = name_hash_selector(sandbox.name());
            let pod_status = pod.status.as_ref().filter(|_| pod_owned);
            status.pod_ips = pod_status
                .and_then(|s| s.pod_ips.as_ref())
                .into_iter()
                .flatten()
                .map(|ip| ip.ip.clone())
                .collect();
            status.node_name = pod
                .spec
                .as_ref()
                .filter(|_| pod_owned)
                .and_then(|s| s.node_name.clone())
                .unwrap_or_default();
        }
    }
    let pod_failed = pod_error.is_some();
    // While the pod mapping is ambiguous the Service is left alone for an operator to inspect.
    let multiple_pods = matches!(pod_error, Some(Error::MultiplePods(_)));
    errors.extend(pod_error);
    let service = if multiple_pods {
        false
    } else {
        match service(context, sandbox, &hash, status).await {
            Ok(service) => service,
            Err(error) => {
                errors.push(error);
                false
            }
        }
    };
    let error = Error::collect(errors).err();
    let seen = Observed {
        pod: pod.as_ref(),
        pod_owned,
        pod_failed,
        service,
        error: error.as_ref(),
    };
    readiness::apply(
        &mut status.conditions,
        &seen,
        sandbox.suspended(),
        sandbox.spec.blueprint.service,
        sandbox.generation(),
        now,
    );
    // An ambiguous pod mapping is reported in the conditions, not retried.
    match error {
        Some(Error::MultiplePods(_)) | None => Ok(()),
        Some(error) => Err(error),
    }
}

/// How a child relates to the Sandbox (upstream `checkOwnership`).
enum Ownership<'a> {
    Owned,
    Unowned,
    Other(&'a OwnerReference),
}

fn ownership<'a>(meta: &'a ObjectMeta, sandbox: &Sandbox) -> Ownership<'a> {
    match controller_of(meta) {
        None => Ownership::Unowned,
        Some(owner) if owner.uid == sandbox.uid() => Ownership::Owned,
        Some(owner) => Ownership::Other(owner),
    }
}

fn owned_by_other(what: &str, name: &str, owner: &OwnerReference, sandbox: &Sandbox) -> Error {
    Error::Ownership(format!(
        "{what} {name:?} is owned by {}/{} (UID: {}), not by sandbox {:?}",
        owner.kind,
        owner.name,
        owner.uid,
        sandbox.name()
    ))
}

/// Whether an unowned child may be adopted: marked adoptable, or carrying this Sandbox's hash.
fn adoptable(meta: &ObjectMeta, hash: &str) -> bool {
    let labels = meta.labels.as_ref();
    labels
        .and_then(|l| l.get(ADOPTABLE_LABEL))
        .is_some_and(|v| v == "true")
        || labels
            .and_then(|l| l.get(NAME_HASH_LABEL))
            .is_some_and(|v| v == hash)
}

fn cannot_adopt(what: &str, name: &str) -> Error {
    Error::Ownership(format!(
        "cannot adopt unowned {what} {name:?}: missing required pool authorization label ({ADOPTABLE_LABEL:?}) or sandbox tracking label ({NAME_HASH_LABEL:?})"
    ))
}

/// PVC `<template>-<sandbox>` for each volume claim template (upstream `reconcilePVCs`).
async fn pvcs(context: &Context, sandbox: &Sandbox, hash: &str) -> Result<(), Error> {
    let pvcs = context.pvcs(sandbox);
    for template in &sandbox.spec.blueprint.volume_claim_templates {
        let name = template.claim_name(sandbox.name());
        let Some(pvc) = pvcs.get_opt(&name).await? else {
            let pvc: PersistentVolumeClaim = typed(build::pvc(sandbox, template, hash), sandbox)?;
            pvcs.create(&create_params(), &pvc).await?;
            tracing::debug!(sandbox = sandbox.name(), pvc = name, "created PVC");
            continue;
        };
        match ownership(&pvc.metadata, sandbox) {
            Ownership::Owned => {}
            Ownership::Other(owner) => return Err(owned_by_other("PVC", &name, owner, sandbox)),
            Ownership::Unowned if !adoptable(&pvc.metadata, hash) => {
                return Err(cannot_adopt("PVC", &name));
            }
            Ownership::Unowned => {
                let refs = with_controller(
                    pvc.metadata.owner_references.as_ref(),
                    sandbox.owner_reference(),
                );
                api::merge_patch(
                    &pvcs,
                    &name,
                    &json!({"metadata": {"ownerReferences": refs}}),
                )
                .await?;
                tracing::debug!(sandbox = sandbox.name(), pvc = name, "adopted PVC");
            }
        }
    }
    Ok(())
}

type PodResult = Result<Option<Pod>, (Option<Pod>, Error)>;

/// The Sandbox's pod (upstream `reconcilePod`); on failure, whatever pod was found with the error.
async fn pod(context: &Context, sandbox: &Sandbox, hash: &str) -> PodResult {
    let pods = context.pods(sandbox);
    let fail = |pod: Option<Pod>| move |error: kube::Error| (pod, Error::from(error));
    let listed = pods
        .list(&ListParams::default().labels(&format!("{NAME_HASH_LABEL}={hash}")))
        .await
        .map_err(fail(None))?;
    let mut owned: Vec<Pod> = listed
        .items
        .into_iter()
        .filter(|p| is_controlled_by(&p.metadata, sandbox.uid()))
        .collect();
    let tracked_name = sandbox.pod_name().to_owned();
    let annotated = sandbox.annotation(POD_NAME_ANNOTATION).is_some();
    let mut pod = pods.get_opt(&tracked_name).await.map_err(fail(None))?;
    if pod.is_none() && annotated {
        tracing::debug!(
            sandbox = sandbox.name(),
            pod = tracked_name,
            "tracked pod is gone; clearing the pod-name annotation"
        );
        clear_pod_name(context, sandbox)
            .await
            .map_err(|e| (None, e))?;
    }
    if let Some(found) = pod
        .as_ref()
        .filter(|p| is_controlled_by(&p.metadata, sandbox.uid()))
        && !owned.iter().any(|o| o.metadata.name == found.metadata.name)
    {
        owned.push(found.clone());
    }
    if owned.len() > 1 {
        return Err((None, Error::MultiplePods(owned.len())));
    }
    // The owner UID is authoritative over the name annotation.
    if let Some(only) = owned
        .pop()
        .filter(|o| pod.as_ref().map(|p| &p.metadata.name) != Some(&o.metadata.name))
    {
        if annotated {
            clear_pod_name(context, sandbox)
                .await
                .map_err(|e| (None, e))?;
        }
        pod = Some(only);
    }
    if sandbox.suspended() {
        if let Some(found) = &pod {
            match ownership(&found.metadata, sandbox) {
                Ownership::Owned if found.metadata.deletion_timestamp.is_none() => {
                    let name = found.metadata.name.clone().unwrap_or_default();
                    api::delete(&pods, &name, &DeleteParams::default())
                        .await
                        .map_err(fail(pod.clone()))?;
                    tracing::debug!(
                        sandbox = sandbox.name(),
                        pod = name,
                        "deleted pod: the Sandbox is suspended"
                    );
                }
                Ownership::Owned => {}
                _ => tracing::debug!(
                    sandbox = sandbox.name(),
                    "not deleting a pod this Sandbox does not control"
                ),
            }
        }
        if annotated {
            clear_pod_name(context, sandbox)
                .await
                .map_err(|e| (pod.clone(), e))?;
        }
        return Ok(pod);
    }
    if let Some(found) = pod {
        return existing_pod(context, sandbox, hash, found)
            .await
            .map(Some)
            .map_err(|e| (None, e));
    }
    let source = pod_metadata(sandbox, hash);
    let (labels, annotations) = source.new_pod();
    let new: Pod =
        typed(build::pod(sandbox, &labels, &annotations), sandbox).map_err(|e| (None, e))?;
    match pods.create(&create_params(), &new).await {
        Ok(created) => {
            tracing::debug!(
                sandbox = sandbox.name(),
                namespace = sandbox.namespace(),
                "created pod"
            );
            Ok(Some(created))
        }
        Err(error) if error_code(&error) == Some(409) => {
            let found = pods.get(sandbox.name()).await.map_err(fail(None))?;
            existing_pod(context, sandbox, hash, found)
                .await
                .map(Some)
                .map_err(|e| (None, e))
        }
        Err(error) => Err((None, error.into())),
    }
}

fn error_code(error: &kube::Error) -> Option<u16> {
    match error {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

fn pod_metadata<'a>(sandbox: &'a Sandbox, hash: &'a str) -> PodMetadataSource<'a> {
    let template = &sandbox.spec.blueprint.pod_template.metadata;
    PodMetadataSource {
        template_labels: &template.labels,
        template_annotations: template.annotations.as_ref(),
        sandbox_labels: sandbox.meta.labels.as_ref().unwrap_or(&EMPTY),
        controller: controller_of(&sandbox.meta),
        name_hash: hash,
    }
}

static EMPTY: Map = Map::new();

/// Adopts an unowned pod if it may, and keeps its labels and annotations in line with the
/// template; its spec is left as it is.
async fn existing_pod(
    context: &Context,
    sandbox: &Sandbox,
    hash: &str,
    pod: Pod,
) -> Result<Pod, Error> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let mut patch = json!({});
    match ownership(&pod.metadata, sandbox) {
        Ownership::Owned => {}
        Ownership::Other(owner) => {
            let error = owned_by_other("pod", &name, owner, sandbox);
            if sandbox.annotation(POD_NAME_ANNOTATION).is_some() {
                clear_pod_name(context, sandbox).await?;
            }
            return Err(error);
        }
        Ownership::Unowned if !adoptable(&pod.metadata, hash) => {
            return Err(cannot_adopt("pod", &name));
        }
        Ownership::Unowned => {
            patch["ownerReferences"] = json!(with_controller(
                pod.metadata.owner_references.as_ref(),
                sandbox.owner_reference()
            ));
            tracing::debug!(sandbox = sandbox.name(), pod = name, "adopting pod");
        }
    }
    let old_labels = pod.metadata.labels.clone().unwrap_or_default();
    let old_annotations = pod.metadata.annotations.clone().unwrap_or_default();
    let (mut labels, mut annotations) = (old_labels.clone(), old_annotations.clone());
    if pod_metadata(sandbox, hash).update_pod(&mut labels, &mut annotations) {
        if let Some(labels) = diff(&json!(old_labels), &json!(labels)) {
            patch["labels"] = labels;
        }
        if let Some(annotations) = diff(&json!(old_annotations), &json!(annotations)) {
            patch["annotations"] = annotations;
        }
    }
    if patch.as_object().is_some_and(|p| p.is_empty()) {
        return Ok(pod);
    }
    tracing::debug!(sandbox = sandbox.name(), pod = name, %patch, "patching pod metadata");
    Ok(api::merge_patch(&context.pods(sandbox), &name, &json!({ "metadata": patch })).await?)
}

async fn clear_pod_name(context: &Context, sandbox: &Sandbox) -> Result<(), Error> {
    let patch = json!({"metadata": {"annotations": {POD_NAME_ANNOTATION: null}}});
    api::merge_patch(&context.sandboxes(sandbox), sandbox.name(), &patch).await?;
    Ok(())
}

/// The headless Service (upstream `reconcileService`): `service: true` creates or adopts it,
/// `false` deletes it, unset keeps one that exists without creating one. Returns whether the
/// Sandbox has one.
async fn service(
    context: &Context,
    sandbox: &Sandbox,
    hash: &str,
    status: &mut SandboxStatus,
) -> Result<bool, Error> {
    let wanted = sandbox.spec.blueprint.service;
    let ports = build::service_ports(&sandbox.spec.blueprint.pod_template.spec);
    let services = context.services(sandbox);
    let name = sandbox.name();
    let Some(existing) = services.get_opt(name).await? else {
        if wanted != Some(true) {
            status.clear_service();
            return Ok(false);
        }
        let service: Service = typed(build::service(sandbox, hash, &ports), sandbox)?;
        services.create(&create_params(), &service).await?;
        tracing::debug!(
            sandbox = name,
            namespace = sandbox.namespace(),
            "created headless Service"
        );
        status.set_service(name, sandbox.namespace());
        return Ok(true);
    };
    let owned = ownership(&existing.metadata, sandbox);
    if wanted == Some(false) {
        if matches!(owned, Ownership::Owned) {
            api::delete(&services, name, &DeleteParams::default()).await?;
            tracing::debug!(
                sandbox = name,
                "deleted Service: the Sandbox does not want one"
            );
        }
        status.clear_service();
        return Ok(false);
    }
    let selector = json!({ NAME_HASH_LABEL: hash });
    let spec = existing.spec.clone().unwrap_or_default();
    match owned {
        Ownership::Other(owner) => return Err(owned_by_other("service", name, owner, sandbox)),
        Ownership::Unowned if wanted.is_none() => {
            status.clear_service();
            return Ok(false);
        }
        Ownership::Unowned => {
            if !adoptable(&existing.metadata, hash) {
                return Err(cannot_adopt("service", name));
            }
            let cluster_ip = spec.cluster_ip.as_deref().unwrap_or_default();
            if !cluster_ip.is_empty() && cluster_ip != "None" {
                return Err(Error::Ownership(format!(
                    "cannot adopt service {name:?}: ClusterIP is {cluster_ip:?} (expected \"None\", field is immutable)"
                )));
            }
            let patch = json!({
                "metadata": {
                    "labels": { NAME_HASH_LABEL: hash },
                    "ownerReferences": with_controller(existing.metadata.owner_references.as_ref(), sandbox.owner_reference()),
                },
                "spec": { "selector": selector, "ports": ports },
            });
            api::merge_patch(&services, name, &patch).await?;
            tracing::debug!(sandbox = name, "adopted Service");
        }
        Ownership::Owned => {
            let mut patch = json!({});
            if existing
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(NAME_HASH_LABEL))
                .map(String::as_str)
                != Some(hash)
            {
                patch["metadata"] = json!({ "labels": { NAME_HASH_LABEL: hash } });
            }
            // Exactly the name-hash selector: other keys are removed.
            if let Some(selector) = diff(&json!(spec.selector), &selector) {
                patch["spec"] = json!({ "selector": selector });
            }
            if wanted == Some(true) && json!(ports_of(&spec)) != json!(ports) {
                patch["spec"]["ports"] = json!(ports);
            }
            if patch.as_object().is_some_and(|p| !p.is_empty()) {
                tracing::debug!(sandbox = name, %patch, "correcting Service drift");
                api::merge_patch(&services, name, &patch).await?;
            }
        }
    }
    status.set_service(name, sandbox.namespace());
    Ok(true)
}

/// An existing Service's ports in the shape `build::service_ports` makes.
fn ports_of(spec: &ServiceSpec) -> Vec<Value> {
    spec.ports
        .iter()
        .flatten()
        .map(|p| {
            json!({
                "name": p.name.clone().unwrap_or_default(),
                "protocol": p.protocol.clone().unwrap_or_else(|| "TCP".to_owned()),
                "port": p.port,
                "targetPort": p.target_port,
            })
        })
        .collect()
}
