//! The fake node: a Node object pointing the API server at the fake kubelet (REFERENCE §6 step 6).

use k8s_openapi::api::core::v1::Node;
use kube::{
    Api, Client,
    api::{Patch, PatchParams},
};
use serde_json::json;

use crate::{bootstrap::FIELD_MANAGER, error::Error};

/// The one node of a testbed.
pub const NODE_NAME: &str = "testbed-node";

/// Creates or updates the Node: Ready, InternalIP 127.0.0.1, the kubelet's port, a roomy capacity;
/// then removes the `not-ready` taint that admission puts on new nodes (the node lifecycle
/// controller that would lift it is off).
pub(crate) async fn register(client: &Client, kubelet_port: u16) -> Result<(), Error> {
    let nodes = Api::<Node>::all(client.clone());
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let node = json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": NODE_NAME,
            "labels": {
                "kubernetes.io/hostname": NODE_NAME,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "node-role.kubernetes.io/testbed": "",
            },
        },
    });
    nodes
        .patch(NODE_NAME, &params, &Patch::Apply(&node))
        .await?;

    let now = k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let capacity =
        json!({ "cpu": "32", "memory": "128Gi", "ephemeral-storage": "1Ti", "pods": "250" });
    let condition = |type_: &str, status: &str, reason: &str, message: &str| {
        json!({
            "type": type_, "status": status, "reason": reason, "message": message,
            "lastHeartbeatTime": now, "lastTransitionTime": now,
        })
    };
    let status = json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": { "name": NODE_NAME },
        "status": {
            "capacity": capacity,
            "allocatable": capacity,
            "addresses": [
                { "type": "InternalIP", "address": "127.0.0.1" },
                { "type": "Hostname", "address": NODE_NAME },
            ],
            "daemonEndpoints": { "kubeletEndpoint": { "Port": kubelet_port } },
            "conditions": [
                condition("Ready", "True", "KubeletReady", "kube-testbed's fake kubelet is posting ready status"),
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            ],
            "nodeInfo": {
                "machineID": "kube-testbed", "systemUUID": "kube-testbed", "bootID": "kube-testbed",
                "kernelVersion": "", "osImage": "kube-testbed", "operatingSystem": "linux",
                "architecture": "amd64", "containerRuntimeVersion": "kube-testbed://1",
                "kubeletVersion": "v1.20.2", "kubeProxyVersion": "v1.20.2",
            },
        },
    });
    nodes
        .patch_status(NODE_NAME, &params, &Patch::Apply(&status))
        .await?;

    // Taints set by admission belong to no field manager of ours: remove them with a merge patch.
    let untaint = json!({ "spec": { "taints": null } });
    nodes
        .patch(NODE_NAME, &PatchParams::default(), &Patch::Merge(&untaint))
        .await?;
    Ok(())
}
