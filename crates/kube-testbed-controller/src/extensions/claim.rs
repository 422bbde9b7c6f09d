//! The SandboxClaim controller (upstream `sandboxclaim_controller.go`): gives each claim a
//! Sandbox (see [`claim_sandbox`](super::claim_sandbox)), keeps its pod metadata in line with
//! the template and the claim, mirrors its Ready and Finished conditions, and applies the
//! claim's `lifecycle` (at `shutdownTime`, or `ttlSecondsAfterFinished` after Finished: the
//! claim is deleted under `Delete`/`DeleteForeground`, only its Sandbox under `Retain`).

use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, DynamicObject, PropagationPolicy},
    runtime::{controller::Action, reflector::ObjectRef, watcher},
};
use serde_json::{Value, json};

use crate::{
    api::{self, diff, is_controlled_by},
    conditions::{self, Condition},
    error::Error,
    extensions::{
        claim_rules,
        claim_sandbox::Sandboxes,
        model::{self, Claim, ClaimStatus, ClaimedSandbox},
    },
    keys::{CLAIM_UID_LABEL, CREATED_BY_LABEL, TEMPLATE_REF_HASH_LABEL, name_hash},
    runner,
    sandbox::{
        self, Version,
        model::{PodMetadata, Sandbox},
        readiness::{FINISHED, READY, SANDBOX_EXPIRED},
    },
    time,
};

const CLAIM_EXPIRED: &str = "ClaimExpired";
/// Upstream requeues "immediately" (1 ms) after marking a claim expired.
const IMMEDIATE: Duration = Duration::from_millis(1);
/// How soon a claim whose warm pool or template is missing looks again.
const MISSING_DEPENDENCY_RETRY: Duration = Duration::from_secs(60);

pub(crate) async fn run(client: Client) {
    let resource = model::claims();
    let sandboxes = sandbox::resource(Version::V1beta1);
    let pools = model::warm_pools();
    let controller = runner::controller(&client, &resource);
    let claims = controller.store();
    let controller = controller
        .watches_with(
            Api::all_with(client.clone(), &sandboxes),
            sandboxes,
            watcher::Config::default(),
            runner::owned_by::<DynamicObject>(&resource),
        )
        .watches_with(
            Api::all_with(client.clone(), &pools),
            pools,
            watcher::Config::default(),
            move |pool: DynamicObject| {
                // The claims drawing on a pool are reconciled when it changes.
                let namespace = pool.namespace().unwrap_or_default();
                claims
                    .state()
                    .into_iter()
                    .filter(|claim| {
                        claim.namespace().as_deref() == Some(namespace.as_str())
                            && claim
                                .data
                                .pointer("/spec/warmPoolRef/name")
                                .and_then(Value::as_str)
                                == Some(pool.name_any().as_str())
                    })
                    .map(|claim| {
                        ObjectRef::new_with(&claim.name_any(), resource.clone()).within(&namespace)
                    })
                    .collect::<Vec<_>>()
            },
        );
    runner::drive(
        controller,
        "SandboxClaim",
        client,
        |object, client| async move { reconcile(&client, &object).await },
    )
    .await;
}

async fn reconcile(client: &Client, object: &DynamicObject) -> Result<Action, Error> {
    let claim = Claim::from_object(object, "SandboxClaim")?;
    if claim.deleting() {
        return Ok(Action::await_change());
    }
    let namespace = claim.namespace();
    let in_namespace =
        |resource| Api::<DynamicObject>::namespaced_with(client.clone(), namespace, &resource);
    let (sandbox_api, claims, templates, pools) = (
        in_namespace(sandbox::resource(Version::V1beta1)),
        in_namespace(model::claims()),
        in_namespace(model::templates()),
        in_namespace(model::warm_pools()),
    );
    let sandboxes = Sandboxes {
        api: &sandbox_api,
        claims: &claims,
        templates: &templates,
        pools: &pools,
    };
    let mut status = claim.status.clone();
    let generation = claim.generation();
    let expired = matches!(
        time_left(&claim, &status, Timestamp::now()),
        TimeLeft::Expired
    );
    if expired && !claim_expired(&status) {
        tracing::debug!(claim = claim.name(), namespace, "claim expired");
        conditions::set(
            &mut status.conditions,
            expired_condition(generation),
            &time::now(),
        );
        api::write_status(&claims, claim.name(), &claim.status, &status).await?;
        return Ok(Action::requeue(IMMEDIATE));
    }
    let policy = claim
        .spec
        .lifecycle
        .as_ref()
        .and_then(|l| l.shutdown_policy.as_deref());
    if expired && matches!(policy, Some("Delete" | "DeleteForeground")) {
        let params = DeleteParams {
            propagation_policy: (policy == Some("DeleteForeground"))
                .then_some(PropagationPolicy::Foreground),
            ..DeleteParams::default()
        };
        api::delete(&claims, claim.name(), &params).await?;
        tracing::debug!(
            claim = claim.name(),
            namespace,
            ?policy,
            "deleted the expired claim"
        );
        return Ok(Action::await_change());
    }
    let result = if expired {
        expired_sandbox(&sandboxes, &claim).await
    } else {
        active_sandbox(&sandboxes, &claim).await
    };
    let (sandbox, error) = match result {
        Ok(sandbox) => (sandbox, None),
        Err(error) => (None, Some(error)),
    };
    set_status(
        &mut status,
        &claim,
        sandbox.as_ref(),
        error.as_ref(),
        expired,
    );
    let mut action = Action::await_change();
    match time_left(&claim, &status, Timestamp::now()) {
        TimeLeft::Expired if !claim_expired(&status) => {
            conditions::set(
                &mut status.conditions,
                expired_condition(generation),
                &time::now(),
            );
            action = Action::requeue(IMMEDIATE);
        }
        TimeLeft::Left(left) if !expired => action = Action::requeue(left),
        _ => {}
    }
    api::write_status(&claims, claim.name(), &claim.status, &status).await?;
    match error {
        None => Ok(action),
        // Missing dependencies are looked for again later, without an error.
        Some(Error::WarmPoolNotFound(_) | Error::TemplateNotFound(_)) => {
            Ok(Action::requeue(MISSING_DEPENDENCY_RETRY))
        }
        // User errors are reported in the status only.
        Some(
            Error::InvalidMetadata(_)
            | Error::SandboxNotOwned(_)
            | Error::EnvVarsRejected(_)
            | Error::VolumeClaimTemplates(_),
        ) => Ok(action),
        Some(error) => Err(error),
    }
}

enum TimeLeft {
    Never,
    Left(Duration),
    Expired,
}

/// When the claim expires: at its `shutdownTime`, or `ttlSecondsAfterFinished` after its
/// Finished condition turned True, whichever is first (upstream `lifecycle.TimeLeft`).
fn time_left(claim: &Claim, status: &ClaimStatus, now: Timestamp) -> TimeLeft {
    let Some(lifecycle) = &claim.spec.lifecycle else {
        return TimeLeft::Never;
    };
    let shutdown = time::parse(lifecycle.shutdown_time.as_deref());
    let finished_at = conditions::find(&status.conditions, FINISHED)
        .filter(|c| c.is_true())
        .and_then(|c| time::parse(Some(&c.last_transition_time)));
    let ttl_expiry = lifecycle
        .ttl_seconds_after_finished
        .zip(finished_at)
        .and_then(|(ttl, at)| {
            at.checked_add(SignedDuration::from_secs(i64::from(ttl)))
                .ok()
        });
    let Some(expire_at) = [shutdown, ttl_expiry].into_iter().flatten().min() else {
        return TimeLeft::Never;
    };
    if now >= expire_at {
        return TimeLeft::Expired;
    }
    Duration::try_from(expire_at.duration_since(now)).map_or(TimeLeft::Expired, TimeLeft::Left)
}

fn claim_expired(status: &ClaimStatus) -> bool {
    conditions::find(&status.conditions, READY).is_some_and(|c| c.reason == CLAIM_EXPIRED)
}

fn expired_condition(generation: i64) -> Condition {
    Condition::new(
        READY,
        false,
        CLAIM_EXPIRED,
        "Claim expired. Sandbox cleanup initiated.",
        generation,
    )
}

/// Under `Retain` an expired claim keeps nothing but itself: its Sandbox is deleted.
async fn expired_sandbox(
    sandboxes: &Sandboxes<'_>,
    claim: &Claim,
) -> Result<Option<Sandbox>, Error> {
    let name = if claim.status.sandbox.name.is_empty() {
        claim.name()
    } else {
        &claim.status.sandbox.name
    };
    let Some(object) = sandboxes.api.get_opt(name).await? else {
        return Ok(None);
    };
    let sandbox = Sandbox::from_object(&object, Version::V1beta1)?;
    if !is_controlled_by(&sandbox.meta, claim.uid()) {
        return Err(Error::SandboxNotOwned(format!(
            "sandbox {name:?} is not owned by claim {:?}",
            claim.name()
        )));
    }
    if !sandbox.deleting() {
        api::delete(sandboxes.api, name, &DeleteParams::default()).await?;
        tracing::debug!(
            claim = claim.name(),
            sandbox = name,
            "deleted the expired claim's Sandbox"
        );
    }
    Ok(Some(sandbox))
}

/// The live claim's Sandbox, found, adopted or created; its pod metadata kept in line.
async fn active_sandbox(
    sandboxes: &Sandboxes<'_>,
    claim: &Claim,
) -> Result<Option<Sandbox>, Error> {
    let extra = &claim.spec.additional_pod_metadata;
    claim_rules::validate_metadata(extra)?;
    let Some(sandbox) = sandboxes.find_or_adopt(claim).await? else {
        let template = sandboxes.template(claim).await?;
        return sandboxes.create(claim, &template).await.map(Some);
    };
    let template = match sandboxes.template(claim).await {
        Ok(template) => template,
        Err(error)
            if !extra.labels.is_empty()
                || extra.annotations.as_ref().is_some_and(|a| !a.is_empty()) =>
        {
            return Err(Error::Retry(format!(
                "failed to get template for metadata propagation: {error}"
            )));
        }
        Err(_) => return Ok(Some(sandbox)),
    };
    let template_hash = name_hash(template.name());
    let created_by = claim
        .meta
        .labels
        .as_ref()
        .and_then(|l| l.get(CREATED_BY_LABEL))
        .filter(|v| !v.is_empty());
    let mut wanted = template.spec.blueprint.pod_template.metadata.clone();
    wanted
        .labels
        .insert(CLAIM_UID_LABEL.to_owned(), claim.uid().to_owned());
    wanted
        .labels
        .insert(TEMPLATE_REF_HASH_LABEL.to_owned(), template_hash.clone());
    match created_by {
        Some(value) => wanted
            .labels
            .insert(CREATED_BY_LABEL.to_owned(), value.clone()),
        None => wanted.labels.remove(CREATED_BY_LABEL),
    };
    claim_rules::merge_metadata(&mut wanted, extra)?;
    let old_labels = sandbox.meta.labels.clone().unwrap_or_default();
    let mut labels = old_labels.clone();
    labels.insert(TEMPLATE_REF_HASH_LABEL.to_owned(), template_hash);
    match created_by {
        Some(value) => labels.insert(CREATED_BY_LABEL.to_owned(), value.clone()),
        None => labels.remove(CREATED_BY_LABEL),
    };
    let current = &sandbox.spec.blueprint.pod_template.metadata;
    if same_metadata(current, &wanted) && labels == old_labels {
        return Ok(Some(sandbox));
    }
    let mut pod_metadata = json!({});
    if let Some(patch) = diff(&json!(current.labels), &json!(wanted.labels)) {
        pod_metadata["labels"] = patch;
    }
    if let Some(patch) = diff(&json!(current.annotations), &json!(wanted.annotations)) {
        pod_metadata["annotations"] = patch;
    }
    let mut metadata = json!({ "resourceVersion": sandbox.meta.resource_version });
    if let Some(patch) = diff(&json!(old_labels), &json!(labels)) {
        metadata["labels"] = patch;
    }
    let patch =
        json!({ "metadata": metadata, "spec": { "podTemplate": { "metadata": pod_metadata } } });
    tracing::debug!(
        claim = claim.name(),
        sandbox = sandbox.name(),
        "updating the Sandbox's pod metadata to match the claim"
    );
    let updated = api::merge_patch(sandboxes.api, sandbox.name(), &patch).await?;
    Sandbox::from_object(&updated, Version::V1beta1).map(Some)
}

/// Equal labels and annotations, an absent map being an empty one.
fn same_metadata(a: &PodMetadata, b: &PodMetadata) -> bool {
    a.labels == b.labels
        && a.annotations.clone().unwrap_or_default() == b.annotations.clone().unwrap_or_default()
}

/// The claim's status from its Sandbox (upstream `computeAndSetStatus`).
fn set_status(
    status: &mut ClaimStatus,
    claim: &Claim,
    sandbox: Option<&Sandbox>,
    error: Option<&Error>,
    expired: bool,
) {
    let now = time::now();
    conditions::set(
        &mut status.conditions,
        ready_condition(claim, sandbox, error, expired),
        &now,
    );
    match sandbox.map(|s| conditions::find(&s.status.conditions, FINISHED)) {
        Some(Some(finished)) => conditions::set(&mut status.conditions, finished.clone(), &now),
        Some(None) => conditions::remove(&mut status.conditions, FINISHED),
        None if !expired => conditions::remove(&mut status.conditions, FINISHED),
        None => {}
    }
    status.sandbox = ClaimedSandbox {
        name: sandbox.map(|s| s.name().to_owned()).unwrap_or_default(),
        pod_ips: sandbox
            .map(|s| s.status.pod_ips.clone())
            .unwrap_or_default(),
    };
}

fn ready_condition(
    claim: &Claim,
    sandbox: Option<&Sandbox>,
    error: Option<&Error>,
    expired: bool,
) -> Condition {
    let generation = claim.generation();
    let not_ready =
        |reason: &str, message: String| Condition::new(READY, false, reason, message, generation);
    if let Some(error) = error {
        return match error {
            Error::TemplateNotFound(_) => not_ready("TemplateNotFound", error.to_string()),
            Error::WarmPoolNotFound(_) => not_ready("WarmPoolNotFound", error.to_string()),
            Error::InvalidMetadata(_) => not_ready("InvalidMetadata", error.to_string()),
            Error::EnvVarsRejected(_) => not_ready("EnvVarsInjectionRejected", error.to_string()),
            Error::SandboxNotOwned(_) => not_ready(
                CLAIM_EXPIRED,
                format!("Claim expired. {error}; deletion skipped."),
            ),
            Error::VolumeClaimTemplates(_) => {
                not_ready("VolumeClaimTemplatesError", error.to_string())
            }
            _ => not_ready("ReconcilerError", format!("Error seen: {error}")),
        };
    }
    if expired {
        return expired_condition(generation);
    }
    let Some(sandbox) = sandbox else {
        return not_ready("SandboxMissing", "Sandbox does not exist".to_owned());
    };
    match conditions::find(&sandbox.status.conditions, READY) {
        Some(ready) if ready.reason == SANDBOX_EXPIRED => not_ready(
            SANDBOX_EXPIRED,
            "Underlying Sandbox resource has expired independently of the Claim.".to_owned(),
        ),
        Some(ready) => ready.clone(),
        None => not_ready("SandboxNotReady", "Sandbox is not ready".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(lifecycle: Value) -> Claim {
        let object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "extensions.agents.x-k8s.io/v1beta1", "kind": "SandboxClaim",
            "metadata": {"name": "c", "namespace": "ns", "uid": "u", "generation": 1},
            "spec": {"warmPoolRef": {"name": "pool"}, "lifecycle": lifecycle},
        }))
        .unwrap();
        Claim::from_object(&object, "SandboxClaim").unwrap()
    }

    fn finished_at(at: &str) -> ClaimStatus {
        let mut finished = Condition::new(FINISHED, true, "PodSucceeded", "", 1);
        finished.last_transition_time = at.to_owned();
        ClaimStatus {
            conditions: vec![finished],
            ..ClaimStatus::default()
        }
    }

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn claims_expire_at_their_shutdown_time() {
        let claim = claim(json!({"shutdownTime": "2026-01-01T00:10:00Z"}));
        let status = ClaimStatus::default();
        assert!(
            matches!(time_left(&claim, &status, at("2026-01-01T00:00:00Z")), TimeLeft::Left(d) if d == Duration::from_secs(600))
        );
        assert!(matches!(
            time_left(&claim, &status, at("2026-01-01T00:10:00Z")),
            TimeLeft::Expired
        ));
    }

    #[test]
    fn finished_claims_expire_after_their_ttl() {
        let claim = claim(json!({"ttlSecondsAfterFinished": 30}));
        assert!(matches!(
            time_left(&claim, &ClaimStatus::default(), at("2030-01-01T00:00:00Z")),
            TimeLeft::Never
        ));
        let status = finished_at("2026-01-01T00:00:00Z");
        assert!(
            matches!(time_left(&claim, &status, at("2026-01-01T00:00:10Z")), TimeLeft::Left(d) if d == Duration::from_secs(20))
        );
        assert!(matches!(
            time_left(&claim, &status, at("2026-01-01T00:00:30Z")),
            TimeLeft::Expired
        ));
    }

    #[test]
    fn the_claim_forwards_its_sandboxs_readiness() {
        let claim = claim(Value::Null);
        assert_eq!(
            ready_condition(&claim, None, None, false).reason,
            "SandboxMissing"
        );
        assert_eq!(
            ready_condition(&claim, None, None, true).reason,
            CLAIM_EXPIRED
        );
        let error = Error::WarmPoolNotFound("pool".into());
        let condition = ready_condition(&claim, None, Some(&error), false);
        assert_eq!(
            (condition.reason.as_str(), condition.message.as_str()),
            ("WarmPoolNotFound", "SandboxWarmPool \"pool\" not found")
        );

        let object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "agents.x-k8s.io/v1beta1", "kind": "Sandbox",
            "metadata": {"name": "pool-abcde", "namespace": "ns"},
            "spec": {"podTemplate": {"spec": {}}},
            "status": {"podIPs": ["127.1.0.9"], "conditions": [
                {"type": "Ready", "status": "True", "reason": "DependenciesReady", "message": "Pod is Ready", "lastTransitionTime": "t", "observedGeneration": 4},
                {"type": "Finished", "status": "True", "reason": "PodSucceeded", "message": "", "lastTransitionTime": "t"},
            ]},
        }))
        .unwrap();
        let sandbox = Sandbox::from_object(&object, Version::V1beta1).unwrap();
        let mut status = ClaimStatus::default();
        set_status(&mut status, &claim, Some(&sandbox), None, false);
        let ready = conditions::find(&status.conditions, READY).unwrap();
        assert_eq!(
            (
                ready.status.as_str(),
                ready.reason.as_str(),
                ready.observed_generation
            ),
            ("True", "DependenciesReady", 4)
        );
        assert!(conditions::find(&status.conditions, FINISHED).is_some());
        assert_eq!(status.sandbox.name, "pool-abcde");
        assert_eq!(status.sandbox.pod_ips, vec!["127.1.0.9"]);
    }
}
