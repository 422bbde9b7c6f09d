//! The Sandbox controller (upstream `controllers/sandbox_controller.go`; v0.1.0's for
//! v1alpha1): pod, PVCs and Service per Sandbox, and its status.

mod build;
mod children;
mod expiry;
pub(crate) mod model;
pub(crate) mod readiness;
mod v0_1;
mod v1beta1;

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Service};
use kube::{
    Api, Client,
    api::{ApiResource, DynamicObject, PostParams},
    runtime::watcher,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

pub(crate) use model::Version;

use crate::{
    api,
    error::Error,
    keys::{GROUP, NAME_HASH_LABEL},
    runner,
    sandbox::model::{Sandbox, SandboxStatus},
};

/// The `Sandbox` resource in `version`.
pub(crate) fn resource(version: Version) -> ApiResource {
    runner::resource(GROUP, version.as_str(), "Sandbox", "sandboxes")
}

/// Reconciles every Sandbox in `version`, triggered by changes to it and to the pods, Services
/// and PVCs it controls, until the watches end.
pub(crate) async fn run(client: Client, version: Version) {
    let resource = resource(version);
    let labelled = watcher::Config::default().labels(NAME_HASH_LABEL);
    let controller = runner::controller(&client, &resource);
    let controller = runner::owns::<Pod>(controller, &client, &resource, labelled.clone());
    let controller = runner::owns::<Service>(controller, &client, &resource, labelled);
    let controller = runner::owns::<PersistentVolumeClaim>(
        controller,
        &client,
        &resource,
        watcher::Config::default(),
    );
    let context = Context { client, resource };
    runner::drive(
        controller,
        "Sandbox",
        context,
        move |object, context| async move {
            let sandbox = Sandbox::from_object(&object, version)?;
            match version {
                Version::V1beta1 => v1beta1::reconcile(&context, sandbox).await,
                Version::V1alpha1 => v0_1::reconcile(&context, sandbox).await,
            }
        },
    )
    .await;
}

pub(crate) struct Context {
    client: Client,
    resource: ApiResource,
}

impl Context {
    fn pods(&self, sandbox: &Sandbox) -> Api<Pod> {
        Api::namespaced(self.client.clone(), sandbox.namespace())
    }

    fn services(&self, sandbox: &Sandbox) -> Api<Service> {
        Api::namespaced(self.client.clone(), sandbox.namespace())
    }

    fn pvcs(&self, sandbox: &Sandbox) -> Api<PersistentVolumeClaim> {
        Api::namespaced(self.client.clone(), sandbox.namespace())
    }

    fn sandboxes(&self, sandbox: &Sandbox) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), sandbox.namespace(), &self.resource)
    }

    /// Writes `status` if it differs from what the Sandbox had.
    async fn write_status(&self, sandbox: &Sandbox, status: &SandboxStatus) -> Result<(), Error> {
        Ok(api::write_status(
            &self.sandboxes(sandbox),
            sandbox.name(),
            &sandbox.status,
            status,
        )
        .await?)
    }
}

/// Creates as upstream's `sandboxControllerFieldOwner`.
fn create_params() -> PostParams {
    PostParams {
        field_manager: Some("sandbox-controller".to_owned()),
        ..PostParams::default()
    }
}

/// A built child object as its typed form.
fn typed<K: DeserializeOwned>(value: Value, sandbox: &Sandbox) -> Result<K, Error> {
    serde_json::from_value(value).map_err(|source| Error::Invalid {
        kind: "Sandbox",
        name: sandbox.name().to_owned(),
        source,
    })
}
