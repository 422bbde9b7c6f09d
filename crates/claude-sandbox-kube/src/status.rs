//! What `status` and `list` show about a sandbox, gathered from the Sandbox, its pod, its
//! workspace volume and its log.

use claude_sandbox_core::{
    envbuilder_log::phase_of_log,
    layout::{CODE_SERVER_PORT, SSH_SERVICE_PORT, WORKSPACE_VOLUME},
};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::{Api, ResourceExt};
use serde::Serialize;

use crate::{cluster::Cluster, diagnosis, error::Error, sandbox_ref::SandboxState};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxReport {
    pub name: String,
    pub namespace: String,
    pub api_version: String,
    pub ready: bool,
    /// Suspended, Pending, Running, Failed…, with the container's problem when there is one.
    pub phase: String,
    /// What envbuilder is doing, read from the log (status only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub envbuilder_phase: Option<String>,
    pub created: Option<String>,
    pub runtime: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    pub pod_ips: Vec<String>,
    pub conditions: Vec<ConditionReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspace: Option<VolumeReport>,
    pub endpoints: Endpoints,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConditionReport {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    pub reason: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeReport {
    pub claim: String,
    pub capacity: Option<String>,
    pub phase: Option<String>,
    pub storage_class: Option<String>,
}

/// Where the sandbox answers inside the cluster.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoints {
    pub service: String,
    pub code_server: String,
    pub ssh: String,
}

/// Gathers the report of one sandbox; `with_log` also reads the log for envbuilder's phase.
pub async fn report(
    cluster: &Cluster,
    state: &SandboxState,
    with_log: bool,
) -> Result<SandboxReport, Error> {
    let name = state.object.name_any();
    let namespace = state
        .object
        .namespace()
        .unwrap_or_else(|| cluster.namespace.clone());
    let pods = Api::<Pod>::namespaced(cluster.client.clone(), &namespace);
    let pod = pods
        .get_opt(&state.pod_name())
        .await
        .map_err(|e| cluster.error(e))?;
    let claims = Api::<PersistentVolumeClaim>::namespaced(cluster.client.clone(), &namespace);
    let claim_name = format!("{WORKSPACE_VOLUME}-{name}");
    let claim = claims
        .get_opt(&claim_name)
        .await
        .map_err(|e| cluster.error(e))?;
    let envbuilder_phase = match (&pod, with_log) {
        (Some(pod), true) => {
            let cluster = Cluster {
                namespace: namespace.clone(),
                ..cluster.clone()
            };
            let log = diagnosis::last_log_lines(&cluster, &pod.name_any(), 500)
                .await
                .join("\n");
            phase_of_log(&log).map(|p| p.to_string())
        }
        _ => None,
    };
    let service = format!("{name}.{namespace}.svc");
    Ok(SandboxReport {
        api_version: state
            .object
            .types
            .as_ref()
            .map(|t| t.api_version.clone())
            .unwrap_or_default(),
        ready: state.is_ready(),
        phase: phase(state, pod.as_ref()),
        envbuilder_phase,
        created: state.object.creation_timestamp().map(|t| t.0.to_string()),
        runtime: state.object.data["spec"]["podTemplate"]["spec"]["runtimeClassName"]
            .as_str()
            .unwrap_or("runc (cluster default)")
            .to_owned(),
        node: state
            .status
            .node_name
            .clone()
            .or_else(|| pod.as_ref()?.spec.as_ref()?.node_name.clone()),
        pod_ips: state.status.pod_ips.clone(),
        conditions: state
            .status
            .conditions
            .iter()
            .map(|c| ConditionReport {
                type_: c.type_.clone(),
                status: c.status.clone(),
                reason: c.reason.clone(),
                message: c.message.clone(),
            })
            .collect(),
        workspace: claim.map(|c| VolumeReport {
            claim: claim_name,
            capacity: c
                .status
                .as_ref()
                .and_then(|s| s.capacity.as_ref())
                .and_then(|c| c.get("storage"))
                .map(|q| q.0.clone()),
            phase: c.status.as_ref().and_then(|s| s.phase.clone()),
            storage_class: c.spec.as_ref().and_then(|s| s.storage_class_name.clone()),
        }),
        endpoints: Endpoints {
            code_server: format!("http://{service}:{CODE_SERVER_PORT}"),
            ssh: format!("ssh://{service}:{SSH_SERVICE_PORT}"),
            service,
        },
        name,
        namespace,
    })
}

fn phase(state: &SandboxState, pod: Option<&Pod>) -> String {
    if state.suspended {
        return "Suspended".to_owned();
    }
    let Some(pod) = pod else {
        return "Pending".to_owned();
    };
    let pod_phase = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_else(|| "Pending".to_owned());
    match diagnosis::container_problem(pod) {
        Some(problem) => format!("{pod_phase}: {problem}"),
        None => pod_phase,
    }
}
