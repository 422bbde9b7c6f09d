//! `down`: delete sandboxes and wait until they and what they own are gone; keep the workspace
//! volume unless asked; optionally remove agent-sandbox when nothing uses it any more.

use claude_sandbox_core::{Field, SandboxName, layout::WORKSPACE_VOLUME};
use claude_sandbox_kube::{
    Error as ClusterError, agent_sandbox, apply,
    cluster::Cluster,
    manifest::ManifestSource,
    sandbox_ref::{self, SandboxRef},
};
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod, Secret, Service};
use kube::{
    Api, Resource, ResourceExt,
    api::DeleteParams,
    runtime::wait::{await_condition, conditions},
};
use serde::de::DeserializeOwned;

use super::{connect, served_version};
use crate::{
    cli::{DownArgs, GlobalArgs},
    error::{Error, Exit},
    known_hosts,
    terminal::{self, ProgressLine},
};

pub async fn run(args: &DownArgs, global: &GlobalArgs) -> Result<Exit, Error> {
    let name = match (&args.name, args.all) {
        (Some(name), _) => Some(SandboxName::parse(Field::new("NAME", "name"), name)?),
        (None, true) => None,
        (None, false) => Some(SandboxName::parse(
            Field::new("NAME", "name"),
            claude_sandbox_core::DEFAULT_NAME,
        )?),
    };
    let cluster = connect(global, None).await?;
    let version = match agent_sandbox::served_version(&cluster).await? {
        Some(version) => version,
        // Nothing can be left of a sandbox on a cluster without agent-sandbox.
        None => {
            terminal::write_stdout("agent-sandbox is not installed here: no sandbox to remove.\n")?;
            return Ok(Exit::Success);
        }
    };
    let names: Vec<String> = match &name {
        Some(name) => vec![name.to_string()],
        None => sandbox_ref::list_managed(&cluster, version, Some(&cluster.namespace))
            .await?
            .iter()
            .map(|s| s.object.name_any())
            .collect(),
    };
    let progress = ProgressLine::new();
    let mut summary = String::new();
    for name in &names {
        let sandbox = SandboxRef::new(&cluster, version, name);
        let deleted = tokio::time::timeout(
            args.timeout,
            remove(&cluster, &sandbox, args.delete_volume, &progress),
        )
        .await;
        summary += &match deleted {
            Err(_) => {
                return Err(ClusterError::Timeout {
                    after: args.timeout,
                    what: format!("sandbox {name} to be deleted"),
                    details: String::new(),
                }
                .into());
            }
            Ok(outcome) => outcome?,
        };
    }
    if args.uninstall_controller {
        progress.update("checking that no Sandbox remains");
        tokio::time::timeout(args.timeout, uninstall(&cluster, args))
            .await
            .map_err(|_| ClusterError::Timeout {
                after: args.timeout,
                what: "agent-sandbox to be removed".to_owned(),
                details: String::new(),
            })??;
        summary += "agent-sandbox removed (controller and CRDs).\n";
    }
    progress.finish();
    if summary.is_empty() {
        summary = format!("No sandbox to remove in namespace {}.\n", cluster.namespace);
    }
    terminal::write_stdout(&summary)?;
    Ok(Exit::Success)
}

/// Deletes one sandbox and waits for it and everything it owns; returns the summary line.
async fn remove(
    cluster: &Cluster,
    sandbox: &SandboxRef,
    delete_volume: bool,
    progress: &ProgressLine,
) -> Result<String, Error> {
    let Some(state) = sandbox.get(cluster).await? else {
        return Ok(format!(
            "Sandbox {} does not exist in namespace {}.\n",
            sandbox.name, cluster.namespace
        ));
    };
    let claim = format!("{WORKSPACE_VOLUME}-{}", sandbox.name);
    // The controller makes the Sandbox own its PVC: release it first, or garbage collection takes it.
    let kept = !delete_volume && apply::release_volume(cluster, &claim).await?;
    let uid = state.object.uid().unwrap_or_default();
    let owned = owned_names(cluster, &uid).await?;
    progress.update(&format!("deleting sandbox {}", sandbox.name));
    sandbox.delete(cluster).await?;
    wait_gone(cluster, &sandbox.api, &sandbox.name, &uid).await?;
    wait_gone_typed::<Pod>(cluster, &state.pod_name()).await?;
    for (kind, name) in &owned {
        match *kind {
            "Service" => wait_gone_typed::<Service>(cluster, name).await?,
            "ConfigMap" => wait_gone_typed::<ConfigMap>(cluster, name).await?,
            _ => wait_gone_typed::<Secret>(cluster, name).await?,
        }
    }
    if delete_volume {
        // A new volume means a new host key: a pinned old one would make ssh refuse it.
        if let Err(error) =
            known_hosts::forget(&known_hosts::alias(&sandbox.name, &cluster.namespace))
        {
            tracing::warn!(%error, "cannot prune the pinned SSH host key");
        }
        let claims =
            Api::<PersistentVolumeClaim>::namespaced(cluster.client.clone(), &cluster.namespace);
        match claims.delete(&claim, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(e) => return Err(cluster.error(e).into()),
        }
        wait_gone_typed::<PersistentVolumeClaim>(cluster, &claim).await?;
        return Ok(format!(
            "Sandbox {} deleted, with its workspace volume.\n",
            sandbox.name
        ));
    }
    Ok(if kept {
        format!(
            "Sandbox {} deleted; its workspace volume PVC {claim} is kept (`claude-sandbox up {}` reuses it; `kubectl -n {} delete pvc {claim}` removes it).\n",
            sandbox.name, sandbox.name, cluster.namespace
        )
    } else {
        format!("Sandbox {} deleted.\n", sandbox.name)
    })
}

/// The Service, ConfigMap and Secret that garbage collection removes with the Sandbox `uid`.
async fn owned_names(cluster: &Cluster, uid: &str) -> Result<Vec<(&'static str, String)>, Error> {
    let mut owned = Vec::new();
    owned.extend(
        owned_by::<Service>(cluster, uid)
            .await?
            .into_iter()
            .map(|n| ("Service", n)),
    );
    owned.extend(
        owned_by::<ConfigMap>(cluster, uid)
            .await?
            .into_iter()
            .map(|n| ("ConfigMap", n)),
    );
    owned.extend(
        owned_by::<Secret>(cluster, uid)
            .await?
            .into_iter()
            .map(|n| ("Secret", n)),
    );
    Ok(owned)
}

async fn owned_by<K>(cluster: &Cluster, uid: &str) -> Result<Vec<String>, Error>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
    <K as Resource>::DynamicType: Default,
{
    let selector = format!(
        "{}={}",
        claude_sandbox_kube::labels::MANAGED_BY,
        claude_sandbox_kube::labels::MANAGED_BY_VALUE
    );
    let api = Api::<K>::namespaced(cluster.client.clone(), &cluster.namespace);
    let list = api
        .list(&kube::api::ListParams::default().labels(&selector))
        .await
        .map_err(|e| cluster.error(e))?;
    Ok(list
        .items
        .iter()
        .filter(|o| o.owner_references().iter().any(|r| r.uid == uid))
        .map(ResourceExt::name_any)
        .collect())
}

async fn wait_gone_typed<K>(cluster: &Cluster, name: &str) -> Result<(), Error>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + 'static,
    <K as Resource>::DynamicType: Default,
{
    let api = Api::<K>::namespaced(cluster.client.clone(), &cluster.namespace);
    let Some(object) = api.get_opt(name).await.map_err(|e| cluster.error(e))? else {
        return Ok(());
    };
    wait_gone(cluster, &api, name, &object.uid().unwrap_or_default()).await
}

async fn wait_gone<K>(cluster: &Cluster, api: &Api<K>, name: &str, uid: &str) -> Result<(), Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    await_condition(api.clone(), name, conditions::is_deleted(uid))
        .await
        .map_err(|e| {
            ClusterError::Prerequisite(format!("watching {name} failed on {}: {e}", cluster.server))
        })?;
    Ok(())
}

async fn uninstall(cluster: &Cluster, args: &DownArgs) -> Result<(), Error> {
    let version = served_version(cluster).await?;
    let everywhere = Cluster {
        namespace: String::new(),
        ..cluster.clone()
    };
    let remaining = sandbox_ref::list_all(&everywhere, version).await?;
    if !remaining.is_empty() {
        let names: Vec<String> = remaining
            .iter()
            .map(|s| {
                format!(
                    "{}/{}",
                    s.object.namespace().unwrap_or_default(),
                    s.object.name_any()
                )
            })
            .collect();
        return Err(ClusterError::Prerequisite(format!(
            "not removing agent-sandbox: {} Sandbox(es) remain ({})",
            names.len(),
            names.join(", ")
        ))
        .into());
    }
    let manifest = args
        .controller_manifest
        .as_deref()
        .map_or_else(agent_sandbox::default_manifest, ManifestSource::parse);
    agent_sandbox::uninstall(cluster, &manifest).await?;
    Ok(())
}
