//! The objects a Sandbox asks for, built as upstream builds them: the pod (its template plus
//! one volume per volume claim template), the PVCs and the headless Service.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::{
    keys::NAME_HASH_LABEL,
    metadata::Map,
    sandbox::model::{Sandbox, Version, VolumeClaimTemplate},
};

/// The pod spec: the template's, with a `persistentVolumeClaim` volume `T` for each volume
/// claim template `T`. v1beta1 replaces a template volume of the same name (upstream
/// `MergeVolumeClaimVolumes`, StatefulSet semantics); v0.1.0 just appended.
pub(crate) fn pod_spec(sandbox: &Sandbox) -> Value {
    let mut spec = sandbox.spec.blueprint.pod_template.spec.clone();
    let claims = &sandbox.spec.blueprint.volume_claim_templates;
    if claims.is_empty() {
        return spec;
    }
    if !spec.is_object() {
        spec = json!({});
    }
    let mut volumes: Vec<Value> = spec
        .get("volumes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if sandbox.version == Version::V1beta1 {
        volumes.retain(|v| {
            !claims
                .iter()
                .any(|c| v.get("name").and_then(Value::as_str) == Some(c.metadata.name.as_str()))
        });
    }
    volumes.extend(claims.iter().map(|claim| {
        json!({
            "name": claim.metadata.name,
            "persistentVolumeClaim": {"claimName": claim.claim_name(sandbox.name())},
        })
    }));
    spec["volumes"] = Value::Array(volumes);
    spec
}

/// A new pod named after the Sandbox.
pub(crate) fn pod(sandbox: &Sandbox, labels: &Map, annotations: &Map) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": sandbox.name(),
            "namespace": sandbox.namespace(),
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [sandbox.owner_reference()],
        },
        "spec": pod_spec(sandbox),
    })
}

/// A PVC from a volume claim template. v1beta1 labels it with the name hash (and the
/// template's labels and annotations); v0.1.0 gave it no metadata.
pub(crate) fn pvc(sandbox: &Sandbox, template: &VolumeClaimTemplate, name_hash: &str) -> Value {
    let mut metadata = json!({
        "name": template.claim_name(sandbox.name()),
        "namespace": sandbox.namespace(),
        "ownerReferences": [sandbox.owner_reference()],
    });
    if sandbox.version == Version::V1beta1 {
        let mut labels = template.metadata.labels.clone();
        labels.insert(NAME_HASH_LABEL.to_owned(), name_hash.to_owned());
        metadata["labels"] = json!(labels);
        if !template.metadata.annotations.is_empty() {
            metadata["annotations"] = json!(template.metadata.annotations);
        }
    }
    json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": metadata, "spec": template.spec})
}

/// The headless Service named after the Sandbox, selecting its pod by the name hash.
pub(crate) fn service(sandbox: &Sandbox, name_hash: &str, ports: &[Value]) -> Value {
    let mut spec = json!({"clusterIP": "None", "selector": {NAME_HASH_LABEL: name_hash}});
    if !ports.is_empty() {
        spec["ports"] = json!(ports);
    }
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": sandbox.name(),
            "namespace": sandbox.namespace(),
            "labels": {NAME_HASH_LABEL: name_hash},
            "ownerReferences": [sandbox.owner_reference()],
        },
        "spec": spec,
    })
}

/// The v1beta1 Service's ports (upstream `servicePortsForSandbox`): one per distinct
/// (port, protocol) of the containers and restartable init containers, sorted, named after the
/// first explicit container port name, else `p-<port>-<protocol>`.
pub(crate) fn service_ports(pod_spec: &Value) -> Vec<Value> {
    let restartable_init = pod_spec
        .get("initContainers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|c| c.get("restartPolicy").and_then(Value::as_str) == Some("Always"));
    let containers = pod_spec
        .get("containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .chain(restartable_init);
    // (port, protocol) → explicit name ("" when none).
    let mut names: BTreeMap<(i64, String), String> = BTreeMap::new();
    let mut reserved: Vec<String> = Vec::new();
    for port in containers.flat_map(|c| {
        c.get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
    }) {
        let number = port
            .get("containerPort")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if number == 0 {
            continue;
        }
        let protocol = port
            .get("protocol")
            .and_then(Value::as_str)
            .unwrap_or("TCP")
            .to_owned();
        let name = names.entry((number, protocol)).or_default();
        let explicit = port.get("name").and_then(Value::as_str).unwrap_or_default();
        if explicit.is_empty() || !name.is_empty() || reserved.iter().any(|r| r == explicit) {
            continue;
        }
        *name = explicit.to_owned();
        reserved.push(explicit.to_owned());
    }
    names
        .into_iter()
        .map(|((port, protocol), explicit)| {
            let name = if explicit.is_empty() {
                let base = format!("p-{port}-{}", protocol.to_lowercase());
                let name = (1..)
                    .map(|n| {
                        if n == 1 {
                            base.clone()
                        } else {
                            format!("{base}-{n}")
                        }
                    })
                    .find(|candidate| !reserved.contains(candidate))
                    .unwrap_or(base);
                reserved.push(name.clone());
                name
            } else {
                explicit
            };
            json!({"name": name, "protocol": protocol, "port": port, "targetPort": port})
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use kube::api::DynamicObject;

    use super::*;

    fn sandbox(version: Version, spec: Value) -> Sandbox {
        let object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "agents.x-k8s.io/v1beta1", "kind": "Sandbox",
            "metadata": {"name": "dev", "namespace": "ns", "uid": "u-1"},
            "spec": spec,
        }))
        .unwrap();
        Sandbox::from_object(&object, version).unwrap()
    }

    fn with_claims() -> Value {
        json!({
            "podTemplate": {"spec": {
                "containers": [{"name": "c", "image": "i"}],
                "volumes": [{"name": "workspace", "emptyDir": {}}, {"name": "cache", "emptyDir": {}}],
            }},
            "volumeClaimTemplates": [{"metadata": {"name": "workspace", "labels": {"tier": "disk"}}, "spec": {"resources": {"requests": {"storage": "1Gi"}}}}],
        })
    }

    #[test]
    fn claim_volumes_replace_template_volumes_in_v1beta1() {
        let spec = pod_spec(&sandbox(Version::V1beta1, with_claims()));
        assert_eq!(
            spec["volumes"],
            json!([{"name": "cache", "emptyDir": {}}, {"name": "workspace", "persistentVolumeClaim": {"claimName": "workspace-dev"}}])
        );
    }

    #[test]
    fn v0_1_appends_claim_volumes() {
        let spec = pod_spec(&sandbox(Version::V1alpha1, with_claims()));
        assert_eq!(spec["volumes"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn pods_are_owned_by_their_sandbox() {
        let sandbox = sandbox(Version::V1beta1, with_claims());
        let pod = pod(&sandbox, &Map::new(), &Map::new());
        assert_eq!(pod["metadata"]["name"], "dev");
        assert_eq!(
            pod["metadata"]["ownerReferences"],
            json!([{"apiVersion": "agents.x-k8s.io/v1beta1", "kind": "Sandbox", "name": "dev", "uid": "u-1", "controller": true, "blockOwnerDeletion": true}])
        );
    }

    #[test]
    fn pvcs_carry_the_name_hash_in_v1beta1_only() {
        let beta = sandbox(Version::V1beta1, with_claims());
        let claim = &beta.spec.blueprint.volume_claim_templates[0];
        let pvc_beta = pvc(&beta, claim, "hash");
        assert_eq!(pvc_beta["metadata"]["name"], "workspace-dev");
        assert_eq!(
            pvc_beta["metadata"]["labels"],
            json!({"tier": "disk", "agents.x-k8s.io/sandbox-name-hash": "hash"})
        );
        assert_eq!(pvc_beta["spec"]["resources"]["requests"]["storage"], "1Gi");
        let alpha = sandbox(Version::V1alpha1, with_claims());
        assert!(
            pvc(&alpha, claim, "hash")["metadata"]
                .get("labels")
                .is_none()
        );
    }

    #[test]
    fn services_are_headless_and_select_the_name_hash() {
        let sandbox = sandbox(Version::V1beta1, with_claims());
        let service = service(&sandbox, "hash", &[]);
        assert_eq!(
            service["spec"],
            json!({"clusterIP": "None", "selector": {"agents.x-k8s.io/sandbox-name-hash": "hash"}})
        );
    }

    #[test]
    fn service_ports_follow_the_containers() {
        let spec = json!({
            "containers": [
                {"name": "a", "ports": [{"containerPort": 13337, "name": "code"}, {"containerPort": 2222}]},
                {"name": "b", "ports": [{"containerPort": 13337, "name": "dup"}, {"containerPort": 53, "protocol": "UDP"}]},
            ],
            "initContainers": [{"name": "side", "restartPolicy": "Always", "ports": [{"containerPort": 9000}]}, {"name": "init", "ports": [{"containerPort": 1}]}],
        });
        assert_eq!(
            service_ports(&spec),
            vec![
                json!({"name": "p-53-udp", "protocol": "UDP", "port": 53, "targetPort": 53}),
                json!({"name": "p-2222-tcp", "protocol": "TCP", "port": 2222, "targetPort": 2222}),
                json!({"name": "p-9000-tcp", "protocol": "TCP", "port": 9000, "targetPort": 9000}),
                json!({"name": "code", "protocol": "TCP", "port": 13337, "targetPort": 13337}),
            ]
        );
    }
}
