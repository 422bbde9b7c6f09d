//! Is agent-sandbox installed, which API version does it serve, is its controller ready; and
//! installing it when it is missing.

use std::time::Duration;

use claude_sandbox_core::SandboxApiVersion;
use k8s_openapi::api::{
    apps::v1::{Deployment, StatefulSet},
    core::v1::Pod,
};
use kube::{
    Api,
    api::ListParams,
    runtime::wait::{Condition, await_condition},
};

use crate::{cluster::Cluster, error::Error, manifest::ManifestSource, sandbox::GROUP};

/// The agent-sandbox release installed when a cluster has none. One place to bump it.
pub const RELEASE: &str = "v1.0.2";
pub const CONTROLLER_NAMESPACE: &str = "agent-sandbox-system";
pub const CONTROLLER_NAME: &str = "agent-sandbox-controller";

/// The release asset `up` installs by default.
pub fn default_manifest() -> ManifestSource {
    ManifestSource::Url(format!(
        "https://github.com/kubernetes-sigs/agent-sandbox/releases/download/{RELEASE}/sandbox.yaml"
    ))
}

/// The `Sandbox` API version the cluster serves (v1beta1 preferred), or None when agent-sandbox
/// is not installed.
pub async fn served_version(cluster: &Cluster) -> Result<Option<SandboxApiVersion>, Error> {
    let groups = cluster
        .client
        .list_api_groups()
        .await
        .map_err(|e| cluster.error(e))?;
    let Some(group) = groups.groups.iter().find(|g| g.name == GROUP) else {
        return Ok(None);
    };
    let served: Vec<&str> = group.versions.iter().map(|v| v.version.as_str()).collect();
    tracing::debug!(?served, "agent-sandbox API versions");
    for version in [SandboxApiVersion::V1beta1, SandboxApiVersion::V1alpha1] {
        if served.contains(&version.as_str()) && serves_sandboxes(cluster, version).await? {
            return Ok(Some(version));
        }
    }
    Ok(None)
}

async fn serves_sandboxes(cluster: &Cluster, version: SandboxApiVersion) -> Result<bool, Error> {
    let resources = cluster
        .client
        .list_api_group_resources(&format!("{GROUP}/{version}"))
        .await
        .map_err(|e| cluster.error(e))?;
    Ok(resources.resources.iter().any(|r| r.name == "sandboxes"))
}

/// Installs agent-sandbox from `manifest`.
pub async fn install(cluster: &Cluster, manifest: &ManifestSource) -> Result<(), Error> {
    let objects = manifest.load().await?;
    tracing::debug!(objects = objects.len(), "installing agent-sandbox");
    crate::manifest::apply_all(cluster, &objects).await
}

/// Removes what `manifest` installs.
pub async fn uninstall(cluster: &Cluster, manifest: &ManifestSource) -> Result<(), Error> {
    let objects = manifest.load().await?;
    crate::manifest::delete_all(cluster, &objects).await
}

/// Waits until the controller's Deployment (or, in v0.1.0, StatefulSet) has a ready replica.
pub async fn wait_controller_ready(cluster: &Cluster, timeout: Duration) -> Result<(), Error> {
    let deployments = Api::<Deployment>::namespaced(cluster.client.clone(), CONTROLLER_NAMESPACE);
    let stateful_sets =
        Api::<StatefulSet>::namespaced(cluster.client.clone(), CONTROLLER_NAMESPACE);
    let has_deployment = match deployments.get_opt(CONTROLLER_NAME).await {
        Ok(deployment) => deployment.is_some(),
        // Namespace users may not read the controller's namespace; the Sandbox's own readiness
        // then tells whether the controller works.
        Err(kube::Error::Api(status)) if status.code == 403 => {
            tracing::debug!("may not read {CONTROLLER_NAMESPACE}: not checking the controller");
            return Ok(());
        }
        Err(e) => return Err(cluster.error(e)),
    };
    let ready = async {
        if has_deployment {
            await_condition(deployments, CONTROLLER_NAME, deployment_ready())
                .await
                .map(|_| ())
        } else {
            await_condition(stateful_sets, CONTROLLER_NAME, stateful_set_ready())
                .await
                .map(|_| ())
        }
    };
    match tokio::time::timeout(timeout, ready).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(Error::Prerequisite(format!(
            "watching the agent-sandbox controller failed: {e}"
        ))),
        Err(_) => Err(Error::Prerequisite(format!(
            "the agent-sandbox controller in namespace {CONTROLLER_NAMESPACE} did not become ready within {}s{}; check `kubectl -n {CONTROLLER_NAMESPACE} describe pods`",
            timeout.as_secs(),
            controller_pod_problem(cluster).await
        ))),
    }
}

fn deployment_ready() -> impl Condition<Deployment> {
    |d: Option<&Deployment>| {
        d.and_then(|d| d.status.as_ref())
            .and_then(|s| s.ready_replicas)
            .is_some_and(|n| n >= 1)
    }
}

fn stateful_set_ready() -> impl Condition<StatefulSet> {
    |s: Option<&StatefulSet>| {
        s.and_then(|s| s.status.as_ref())
            .and_then(|s| s.ready_replicas)
            .is_some_and(|n| n >= 1)
    }
}

/// Why the controller's pod is not ready, as `: reason` for a message, or empty.
async fn controller_pod_problem(cluster: &Cluster) -> String {
    let pods = Api::<Pod>::namespaced(cluster.client.clone(), CONTROLLER_NAMESPACE);
    let Ok(list) = pods.list(&ListParams::default()).await else {
        return String::new();
    };
    list.items
        .iter()
        .find_map(crate::diagnosis::pod_problem)
        .map(|p| format!(": its pod is {p}"))
        .unwrap_or_default()
}
