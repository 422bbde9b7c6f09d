//! Running a kube-runtime `Controller` over a custom resource read as `DynamicObject`s (this
//! crate models the agent-sandbox API itself rather than sharing anyone's typed client).

use std::{fmt::Debug, future::Future, sync::Arc};

use futures::StreamExt;
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{ApiResource, DynamicObject, GroupVersionKind},
    runtime::{Controller, controller::Action, reflector::ObjectRef, watcher},
};
use serde::de::DeserializeOwned;

use crate::{api::controller_kind, error::Error, requeue::Backoff};

/// A namespaced custom resource.
pub(crate) fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

/// A controller of `resource` objects in every namespace.
pub(crate) fn controller(client: &Client, resource: &ApiResource) -> Controller<DynamicObject> {
    Controller::new_with(
        Api::all_with(client.clone(), resource),
        watcher::Config::default(),
        resource.clone(),
    )
}

/// Triggers the reconcile of the `owner` (of any version) that controls each watched object,
/// like controller-runtime's `Owns`.
pub(crate) fn owned_by<Child>(
    owner: &ApiResource,
) -> impl Fn(Child) -> Option<ObjectRef<DynamicObject>> + Send + Sync + 'static
where
    Child: Resource,
{
    let owner = owner.clone();
    move |child: Child| {
        let reference = controller_kind(child.meta(), &owner.group, &owner.kind)?;
        Some(ObjectRef::new_with(&reference.name, owner.clone()).within(&child.namespace()?))
    }
}

/// Watches `Child` objects matching `config` in every namespace and reconciles their owners.
pub(crate) fn owns<Child>(
    controller: Controller<DynamicObject>,
    client: &Client,
    owner: &ApiResource,
    config: watcher::Config,
) -> Controller<DynamicObject>
where
    Child: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + 'static,
{
    controller.watches(
        Api::<Child>::all(client.clone()),
        config,
        owned_by::<Child>(owner),
    )
}

/// Runs `controller` with `reconcile` until its watches end; failed reconciles are retried
/// with a per-object backoff, and every outcome is traced at debug level.
pub(crate) async fn drive<C, F, Fut>(
    controller: Controller<DynamicObject>,
    what: &'static str,
    context: C,
    mut reconcile: F,
) where
    C: Send + Sync + 'static,
    F: FnMut(Arc<DynamicObject>, Arc<C>) -> Fut,
    Fut: Future<Output = Result<Action, Error>> + Send + 'static,
{
    let shared = Arc::new(Shared {
        context: Arc::new(context),
        backoff: Backoff::default(),
    });
    controller
        .run(
            move |object, shared: Arc<Shared<C>>| {
                let reconciled = reconcile(object.clone(), shared.context.clone());
                async move {
                    let result = reconciled.await;
                    if result.is_ok() {
                        shared.backoff.succeeded(&key(&object));
                    }
                    result
                }
            },
            move |object, error, shared| {
                tracing::debug!(what, object = %key(&object), %error, "reconcile failed; will retry");
                shared.backoff.failed(key(&object))
            },
            shared,
        )
        .for_each(|outcome| {
            match outcome {
                Ok((object, action)) => tracing::trace!(what, %object, ?action, "reconciled"),
                Err(error) => tracing::debug!(what, %error, "controller event"),
            }
            futures::future::ready(())
        })
        .await;
}

struct Shared<C> {
    context: Arc<C>,
    backoff: Backoff,
}

fn key(object: &DynamicObject) -> String {
    format!(
        "{}/{}",
        object.namespace().unwrap_or_default(),
        object.name_any()
    )
}
