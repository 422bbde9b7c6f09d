//! The SandboxWarmPool controller (upstream `sandboxwarmpool_controller.go`): keeps
//! `spec.replicas` Sandboxes made from the pool's template, labelled as the pool's, ready for
//! claims to adopt; replaces members that are stale (under the `Recreate` strategy, or orphans)
//! or stuck unready for five minutes; reports `replicas`, `readyReplicas` and the `selector` the
//! scale subresource serves.

use std::{cmp::Reverse, time::Duration};

use k8s_openapi::{apimachinery::pkg::apis::meta::v1::ObjectMeta, jiff::Timestamp};
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, DynamicObject, ListParams, PostParams},
    runtime::{controller::Action, reflector::ObjectRef, watcher},
};
use serde_json::{Value, json};

use crate::{
    api::{self, controller_of, is_not_found, with_controller},
    conditions,
    error::Error,
    extensions::{
        model::{self, Template, WarmPool},
        template::apply_secure_defaults,
    },
    keys::{
        CREATED_BY_LABEL, LAUNCH_TYPE_LABEL, POD_TEMPLATE_HASH_LABEL, TEMPLATE_HASH_LABEL,
        TEMPLATE_REF_ANNOTATION, TEMPLATE_REF_HASH_LABEL, WARM_POOL_LABEL, name_hash,
    },
    metadata::Map,
    runner,
    sandbox::{self, Version, model::Sandbox, readiness::READY},
};

/// How long a member may stay unready before it is replaced.
const READINESS_GRACE: Duration = Duration::from_secs(5 * 60);

pub(crate) async fn run(client: Client) {
    let resource = model::warm_pools();
    let sandboxes = sandbox::resource(Version::V1beta1);
    let templates = model::templates();
    let controller = runner::controller(&client, &resource);
    let pools = controller.store();
    let controller = controller
        .watches_with(
            Api::all_with(client.clone(), &sandboxes),
            sandboxes,
            watcher::Config::default().labels(WARM_POOL_LABEL),
            runner::owned_by::<DynamicObject>(&resource),
        )
        .watches_with(
            Api::all_with(client.clone(), &templates),
            templates,
            watcher::Config::default(),
            move |template: DynamicObject| {
                // The pools using a template are reconciled when it changes.
                pools
                    .state()
                    .into_iter()
                    .filter(|pool| {
                        pool.metadata.namespace == template.metadata.namespace
                            && pool
                                .data
                                .pointer("/spec/sandboxTemplateRef/name")
                                .and_then(Value::as_str)
                                == template.metadata.name.as_deref()
                    })
                    .map(|pool| {
                        ObjectRef::new_with(&pool.name_any(), resource.clone())
                            .within(template.metadata.namespace.as_deref().unwrap_or_default())
                    })
                    .collect::<Vec<_>>()
            },
        );
    runner::drive(
        controller,
        "SandboxWarmPool",
        client,
        |object, client| async move { reconcile(&client, &object).await },
    )
    .await;
}

/// A member of the pool.
struct Member {
    sandbox: Sandbox,
}

impl Member {
    fn name(&self) -> &str {
        self.sandbox.name()
    }

    fn ready(&self) -> bool {
        conditions::is_true(&self.sandbox.status.conditions, READY)
    }

    fn created(&self) -> Option<Timestamp> {
        self.sandbox.meta.creation_timestamp.as_ref().map(|t| t.0)
    }
}

async fn reconcile(client: &Client, object: &DynamicObject) -> Result<Action, Error> {
    let pool = WarmPool::from_object(object, "SandboxWarmPool")?;
    if pool.deleting() {
        return Ok(Action::await_change());
    }
    let sandboxes = Api::<DynamicObject>::namespaced_with(
        client.clone(),
        pool.namespace(),
        &sandbox::resource(Version::V1beta1),
    );
    let pool_hash = name_hash(pool.name());
    let selector = format!("{WARM_POOL_LABEL}={pool_hash}");
    let mut errors = Vec::new();
    let template_name = pool.spec.sandbox_template_ref.name.clone();
    let templates = Api::<DynamicObject>::namespaced_with(
        client.clone(),
        pool.namespace(),
        &model::templates(),
    );
    let template = match templates.get_opt(&template_name).await {
        Ok(found) => found
            .map(|t| Template::from_object(&t, "SandboxTemplate"))
            .transpose(),
        Err(error) => Err(error.into()),
    };
    let template = template.unwrap_or_else(|error| {
        errors.push(error);
        None
    });
    let listed = sandboxes
        .list(&ListParams::default().labels(&selector))
        .await?;
    let mut members = Vec::new();
    for object in listed.items {
        match member(&sandboxes, &pool, template.as_ref(), object).await {
            Ok(Some(member)) => members.push(member),
            Ok(None) => {}
            Err(error) => errors.push(error),
        }
    }

    // Members unready for too long are replaced; the others are looked at again then.
    let now = Timestamp::now();
    let mut next_check: Option<Duration> = None;
    let mut active = Vec::new();
    for member in members {
        let age = member
            .created()
            .and_then(|c| Duration::try_from(now.duration_since(c)).ok())
            .unwrap_or_default();
        if member.ready() || member.created().is_none() {
            active.push(member);
        } else if age > READINESS_GRACE {
            tracing::debug!(
                pool = pool.name(),
                sandbox = member.name(),
                "deleting a warm Sandbox stuck unready"
            );
            if let Err(error) =
                api::delete(&sandboxes, member.name(), &DeleteParams::default()).await
            {
                errors.push(error.into());
            }
        } else {
            let left = READINESS_GRACE - age + Duration::from_secs(1);
            next_check = Some(next_check.map_or(left, |n| n.min(left)));
            active.push(member);
        }
    }

    let desired = pool.spec.replicas.unwrap_or(1).max(0) as usize;
    let status = model::WarmPoolStatus {
        replicas: active.len() as i32,
        ready_replicas: active.iter().filter(|m| m.ready()).count() as i32,
        selector,
        observed_generation: pool.meta.generation,
    };
    if active.len() < desired {
        if let Some(template) = &template {
            let member = warm_sandbox(&pool, &pool_hash, template);
            for _ in active.len()..desired {
                match sandboxes.create(&PostParams::default(), &member).await {
                    Ok(created) => {
                        tracing::debug!(pool = pool.name(), sandbox = ?created.metadata.name, "created warm Sandbox")
                    }
                    Err(error) => {
                        errors.push(error.into());
                        break;
                    }
                }
            }
        }
    } else if active.len() > desired {
        // Unready ones go first, newest first within each group.
        active.sort_by_key(|m| (m.ready(), Reverse(m.created())));
        for member in &active[..active.len() - desired] {
            tracing::debug!(
                pool = pool.name(),
                sandbox = member.name(),
                "deleting excess warm Sandbox"
            );
            if let Err(error) =
                api::delete(&sandboxes, member.name(), &DeleteParams::default()).await
            {
                errors.push(error.into());
            }
        }
    }
    let pools = Api::<DynamicObject>::namespaced_with(
        client.clone(),
        pool.namespace(),
        &model::warm_pools(),
    );
    if let Err(error) = api::write_status(&pools, pool.name(), &pool.status, &status).await {
        errors.push(error.into());
    }
    Error::collect(errors)?;
    Ok(next_check.map_or_else(Action::await_change, Action::requeue))
}

/// Sorts one listed Sandbox: a member (adopting an orphan), or `None` when it is being deleted,
/// belongs to someone else, or is stale and so deleted.
async fn member(
    sandboxes: &Api<DynamicObject>,
    pool: &WarmPool,
    template: Option<&Template>,
    object: DynamicObject,
) -> Result<Option<Member>, Error> {
    let sandbox = Sandbox::from_object(&object, Version::V1beta1)?;
    if sandbox.deleting() {
        return Ok(None);
    }
    let orphan = match controller_of(&sandbox.meta) {
        None => true,
        Some(owner) if owner.uid == pool.uid() => false,
        Some(_) => return Ok(None),
    };
    let recreate = pool
        .spec
        .update_strategy
        .as_ref()
        .and_then(|s| s.type_.as_deref())
        == Some("Recreate");
    if let Some(template) = template.filter(|_| orphan || recreate)
        && stale(&sandbox, template)
    {
        tracing::debug!(
            pool = pool.name(),
            sandbox = sandbox.name(),
            orphan,
            "deleting stale warm Sandbox"
        );
        match api::delete(sandboxes, sandbox.name(), &DeleteParams::default()).await {
            Ok(_) => return Ok(None),
            Err(error) if is_not_found(&error) => return Ok(None),
            Err(error) => return Err(error.into()),
        }
    }
    let launch_type_wrong = sandbox
        .meta
        .labels
        .as_ref()
        .and_then(|l| l.get(LAUNCH_TYPE_LABEL))
        .map(String::as_str)
        != Some("warm");
    if orphan || launch_type_wrong {
        let mut metadata = json!({ "labels": { LAUNCH_TYPE_LABEL: "warm" } });
        if orphan {
            metadata["ownerReferences"] = json!(with_controller(
                sandbox.meta.owner_references.as_ref(),
                pool.owner_reference("SandboxWarmPool")
            ));
            tracing::debug!(
                pool = pool.name(),
                sandbox = sandbox.name(),
                "adopting orphaned warm Sandbox"
            );
        }
        let patched =
            api::merge_patch(sandboxes, sandbox.name(), &json!({ "metadata": metadata })).await?;
        return Ok(Some(Member {
            sandbox: Sandbox::from_object(&patched, Version::V1beta1)?,
        }));
    }
    Ok(Some(Member { sandbox }))
}

/// Made from another template, or from another version of this one.
fn stale(sandbox: &Sandbox, template: &Template) -> bool {
    let labels = sandbox.meta.labels.clone().unwrap_or_default();
    labels.get(TEMPLATE_REF_HASH_LABEL) != Some(&name_hash(template.name()))
        || labels.get(TEMPLATE_HASH_LABEL) != Some(&blueprint_hash(template))
}

/// The hash of a template's blueprint (labels `sandbox-template-hash`); the values differ from
/// upstream's (Go and serde_json order JSON keys differently) but serve the same comparisons.
fn blueprint_hash(template: &Template) -> String {
    name_hash(&serde_json::to_string(&template.spec.blueprint).unwrap_or_default())
}

/// A new member: the template's blueprint with the secure defaults, labelled as the pool's.
fn warm_sandbox(pool: &WarmPool, pool_hash: &str, template: &Template) -> DynamicObject {
    let template_ref_hash = name_hash(template.name());
    let pod_template_hash = name_hash(
        &serde_json::to_string(&template.spec.blueprint.pod_template).unwrap_or_default(),
    );
    let blueprint_hash = blueprint_hash(template);
    let pool_labels = Map::from([
        (WARM_POOL_LABEL.to_owned(), pool_hash.to_owned()),
        (TEMPLATE_REF_HASH_LABEL.to_owned(), template_ref_hash),
        (POD_TEMPLATE_HASH_LABEL.to_owned(), pod_template_hash),
        (TEMPLATE_HASH_LABEL.to_owned(), blueprint_hash),
    ]);
    let mut labels = pool_labels.clone();
    labels.insert(LAUNCH_TYPE_LABEL.to_owned(), "warm".to_owned());
    labels.insert(CREATED_BY_LABEL.to_owned(), "controller".to_owned());
    let mut blueprint = template.spec.blueprint.clone();
    blueprint.pod_template.metadata.labels.extend(pool_labels);
    apply_secure_defaults(&template.spec, &mut blueprint.pod_template.spec);
    let resource = sandbox::resource(Version::V1beta1);
    let mut sandbox = DynamicObject::new("", &resource)
        .within(pool.namespace())
        .data(json!({ "spec": blueprint }));
    sandbox.metadata = ObjectMeta {
        generate_name: Some(format!("{}-", pool.name())),
        namespace: Some(pool.namespace().to_owned()),
        labels: Some(labels),
        annotations: Some(Map::from([(
            TEMPLATE_REF_ANNOTATION.to_owned(),
            template.name().to_owned(),
        )])),
        owner_references: Some(vec![pool.owner_reference("SandboxWarmPool")]),
        ..ObjectMeta::default()
    };
    sandbox
}
