//! One reconcile of a v1beta1 Sandbox (upstream `SandboxReconciler.Reconcile`): children and
//! status while it lives; at `shutdownTime` its pod and Service go (PVCs stay), it is marked
//! `SandboxExpired`, and `shutdownPolicy: Delete` deletes it.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::{api::DeleteParams, runtime::controller::Action};

use crate::{
    api::{self, is_controlled_by},
    error::Error,
    sandbox::{
        Context, children,
        expiry::{self, Expiry},
        model::{Sandbox, SandboxStatus},
        readiness,
    },
    time,
};

/// Upstream requeues "immediately" (1 ms) after marking a Sandbox expired.
const IMMEDIATE: Duration = Duration::from_millis(1);

pub(super) async fn reconcile(context: &Context, sandbox: Sandbox) -> Result<Action, Error> {
    if sandbox.deleting() {
        return Ok(Action::await_change());
    }
    let mut status = sandbox.status.clone();
    let now = Timestamp::now();
    let mut action = Action::await_change();
    let result = if expiry::check(sandbox.shutdown_time(), now) == Expiry::Now {
        if !readiness::marked_expired(&status.conditions) {
            tracing::debug!(
                sandbox = sandbox.name(),
                namespace = sandbox.namespace(),
                "Sandbox expired"
            );
            readiness::mark_expired(
                &mut status.conditions,
                sandbox.generation(),
                &time::format(now),
            );
            context.write_status(&sandbox, &status).await?;
            return Ok(Action::requeue(IMMEDIATE));
        }
        match expire(context, &sandbox, &mut status).await {
            Ok(Expired::Deleted) => return Ok(Action::await_change()),
            Ok(Expired::Retained) => Ok(()),
            Err(error) => Err(error),
        }
    } else {
        let result = children::reconcile(context, &sandbox, &mut status, &time::format(now)).await;
        match expiry::check(sandbox.shutdown_time(), Timestamp::now()) {
            Expiry::Never => {}
            Expiry::Later(after) => action = Action::requeue(after),
            Expiry::Now => {
                readiness::mark_expired(&mut status.conditions, sandbox.generation(), &time::now());
                action = Action::requeue(IMMEDIATE);
            }
        }
        result
    };
    let written = context.write_status(&sandbox, &status).await;
    Error::collect(result.err().into_iter().chain(written.err()).collect())?;
    Ok(action)
}

enum Expired {
    Deleted,
    Retained,
}

/// Deletes the pod and Service the Sandbox controls, then the Sandbox itself under
/// `shutdownPolicy: Delete`; otherwise keeps only its conditions in the status, Ready False
/// `SandboxExpired` (upstream `handleSandboxExpiry`).
async fn expire(
    context: &Context,
    sandbox: &Sandbox,
    status: &mut SandboxStatus,
) -> Result<Expired, Error> {
    let mut errors = Vec::new();
    let params = DeleteParams::default();
    let pods = context.pods(sandbox);
    match pods.get_opt(sandbox.pod_name()).await {
        Ok(Some(pod)) if is_controlled_by(&pod.metadata, sandbox.uid()) => {
            if let Err(error) = api::delete(&pods, sandbox.pod_name(), &params).await {
                errors.push(error.into());
            }
            tracing::debug!(
                sandbox = sandbox.name(),
                pod = sandbox.pod_name(),
                "deleted the expired Sandbox's pod"
            );
        }
        Ok(Some(_)) => tracing::debug!(
            pod = sandbox.pod_name(),
            "not deleting a pod this Sandbox does not control"
        ),
        Ok(None) => {}
        Err(error) => errors.push(error.into()),
    }
    let services = context.services(sandbox);
    match services.get_opt(sandbox.name()).await {
        Ok(Some(service)) if is_controlled_by(&service.metadata, sandbox.uid()) => {
            if let Err(error) = api::delete(&services, sandbox.name(), &params).await {
                errors.push(error.into());
            }
            tracing::debug!(
                sandbox = sandbox.name(),
                "deleted the expired Sandbox's Service"
            );
        }
        Ok(Some(_)) => tracing::debug!(
            service = sandbox.name(),
            "not deleting a Service this Sandbox does not control"
        ),
        Ok(None) => {}
        Err(error) => errors.push(error.into()),
    }
    if sandbox.spec.shutdown_policy.as_deref() == Some("Delete") {
        match api::delete(&context.sandboxes(sandbox), sandbox.name(), &params).await {
            Ok(_) => {
                tracing::debug!(
                    sandbox = sandbox.name(),
                    "deleted the expired Sandbox (shutdownPolicy Delete)"
                );
                return Ok(Expired::Deleted);
            }
            Err(error) => errors.push(error.into()),
        }
    }
    if errors.is_empty() {
        *status = SandboxStatus {
            conditions: std::mem::take(&mut status.conditions),
            ..SandboxStatus::default()
        };
        readiness::mark_expired(&mut status.conditions, sandbox.generation(), &time::now());
    }
    Error::collect(errors).map(|()| Expired::Retained)
}
