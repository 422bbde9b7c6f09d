//! One reconcile of a v1alpha1 Sandbox as v0.1.0's controller did it: PVCs; a pod named after
//! the Sandbox (template labels over the name hash, nothing filtered), deleted at `replicas: 0`;
//! a headless Service always; one Ready condition; at `shutdownTime` pod and Service deleted and
//! Ready False `SandboxExpired` (there was no `shutdownPolicy` then).

use k8s_openapi::{
    api::core::v1::{PersistentVolumeClaim, Pod, Service},
    jiff::Timestamp,
};
use kube::{api::DeleteParams, runtime::controller::Action};

use crate::{
    api, conditions,
    error::Error,
    keys::{NAME_HASH_LABEL, name_hash, name_hash_selector},
    metadata::Map,
    sandbox::{
        Context, build, create_params,
        expiry::{self, Expiry},
        model::{Sandbox, SandboxStatus},
        readiness::{self, Observed},
        typed,
    },
    time,
};

pub(super) async fn reconcile(context: &Context, sandbox: Sandbox) -> Result<Action, Error> {
    if sandbox.deleting() {
        return Ok(Action::await_change());
    }
    let mut status = sandbox.status.clone();
    let (result, action) = match expiry::check(sandbox.shutdown_time(), Timestamp::now()) {
        Expiry::Now => (
            expire(context, &sandbox, &mut status).await,
            Action::await_change(),
        ),
        Expiry::Later(after) => (
            children(context, &sandbox, &mut status).await,
            Action::requeue(after),
        ),
        Expiry::Never => (
            children(context, &sandbox, &mut status).await,
            Action::await_change(),
        ),
    };
    let written = context.write_status(&sandbox, &status).await;
    Error::collect(result.err().into_iter().chain(written.err()).collect())?;
    Ok(action)
}

async fn expire(
    context: &Context,
    sandbox: &Sandbox,
    status: &mut SandboxStatus,
) -> Result<(), Error> {
    let params = DeleteParams::default();
    let mut errors = Vec::new();
    if let Err(error) = api::delete(&context.pods(sandbox), sandbox.name(), &params).await {
        errors.push(error.into());
    }
    if let Err(error) = api::delete(&context.services(sandbox), sandbox.name(), &params).await {
        errors.push(error.into());
    }
    readiness::mark_expired(&mut status.conditions, sandbox.generation(), &time::now());
    status.replicas = Some(0);
    status.selector.clear();
    tracing::debug!(
        sandbox = sandbox.name(),
        namespace = sandbox.namespace(),
        "Sandbox expired: pod and Service deleted"
    );
    Error::collect(errors)
}

async fn children(
    context: &Context,
    sandbox: &Sandbox,
    status: &mut SandboxStatus,
) -> Result<(), Error> {
    let hash = name_hash(sandbox.name());
    let mut errors = Vec::new();
    if let Err(error) = pvcs(context, sandbox, &hash).await {
        errors.push(error);
    }
    let pod = pod(context, sandbox, &hash).await.unwrap_or_else(|error| {
        errors.push(error);
        None
    });
    if pod.is_some() {
        // v0.1.0 never set it back to 0 (except on expiry).
        status.replicas = Some(1);
    }
    status.selector = name_hash_selector(sandbox.name());
    let service = service(context, sandbox, &hash, status)
        .await
        .unwrap_or_else(|error| {
            errors.push(error);
            false
        });
    let error = Error::collect(errors).err();
    let seen = Observed {
        pod: pod.as_ref(),
        pod_owned: true,
        pod_failed: false,
        service,
        error: error.as_ref(),
    };
    let ready = readiness::ready_v0_1(&seen, sandbox.suspended(), sandbox.generation());
    conditions::set(&mut status.conditions, ready, &time::now());
    error.map_or(Ok(()), Err)
}

async fn pvcs(context: &Context, sandbox: &Sandbox, hash: &str) -> Result<(), Error> {
    let pvcs = context.pvcs(sandbox);
    for template in &sandbox.spec.blueprint.volume_claim_templates {
        let name = template.claim_name(sandbox.name());
        if pvcs.get_opt(&name).await?.is_none() {
            let pvc: PersistentVolumeClaim = typed(build::pvc(sandbox, template, hash), sandbox)?;
            pvcs.create(&create_params(), &pvc).await?;
            tracing::debug!(sandbox = sandbox.name(), pvc = name, "created PVC");
        }
    }
    Ok(())
}

async fn pod(context: &Context, sandbox: &Sandbox, hash: &str) -> Result<Option<Pod>, Error> {
    let pods = context.pods(sandbox);
    let existing = pods.get_opt(sandbox.name()).await?;
    if sandbox.suspended() {
        if existing
            .as_ref()
            .is_some_and(|p| p.metadata.deletion_timestamp.is_none())
        {
            api::delete(&pods, sandbox.name(), &DeleteParams::default()).await?;
            tracing::debug!(sandbox = sandbox.name(), "deleted pod: replicas is 0");
        }
        return Ok(None);
    }
    if existing.is_some() {
        return Ok(existing);
    }
    let template = &sandbox.spec.blueprint.pod_template.metadata;
    let mut labels = Map::from([(NAME_HASH_LABEL.to_owned(), hash.to_owned())]);
    labels.extend(template.labels.clone());
    let annotations = template.annotations.clone().unwrap_or_default();
    let pod: Pod = typed(build::pod(sandbox, &labels, &annotations), sandbox)?;
    let created = pods.create(&create_params(), &pod).await?;
    tracing::debug!(
        sandbox = sandbox.name(),
        namespace = sandbox.namespace(),
        "created pod"
    );
    Ok(Some(created))
}

/// Creates the Service if missing; an existing one is used as it is.
async fn service(
    context: &Context,
    sandbox: &Sandbox,
    hash: &str,
    status: &mut SandboxStatus,
) -> Result<bool, Error> {
    let services = context.services(sandbox);
    if services.get_opt(sandbox.name()).await?.is_some() {
        return Ok(true);
    }
    let service: Service = typed(build::service(sandbox, hash, &[]), sandbox)?;
    services.create(&create_params(), &service).await?;
    tracing::debug!(
        sandbox = sandbox.name(),
        namespace = sandbox.namespace(),
        "created headless Service"
    );
    status.set_service(sandbox.name(), sandbox.namespace());
    Ok(true)
}
