//! Small helpers over kube's API calls and owner references.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::{
    Api,
    api::{DeleteParams, Patch, PatchParams},
};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Map as JsonMap, Value};

fn has_code(error: &kube::Error, code: u16) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == code)
}

pub(crate) fn is_not_found(error: &kube::Error) -> bool {
    has_code(error, 404)
}

pub(crate) fn is_conflict(error: &kube::Error) -> bool {
    has_code(error, 409)
}

/// Deletes `name`; an object already gone is fine. Returns whether a delete was issued.
pub(crate) async fn delete<K>(
    api: &Api<K>,
    name: &str,
    params: &DeleteParams,
) -> Result<bool, kube::Error>
where
    K: Clone + DeserializeOwned + std::fmt::Debug,
{
    match api.delete(name, params).await {
        Ok(_) => Ok(true),
        Err(error) if is_not_found(&error) => Ok(false),
        Err(error) => Err(error),
    }
}

/// A JSON merge patch (what controller-runtime's `client.MergeFrom` sends).
pub(crate) async fn merge_patch<K, P>(api: &Api<K>, name: &str, patch: &P) -> Result<K, kube::Error>
where
    K: Clone + DeserializeOwned + std::fmt::Debug,
    P: Serialize + std::fmt::Debug,
{
    api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
}

/// The JSON merge patch (RFC 7386) that turns object `old` into `new`: changed and new members
/// with their values (objects on both sides as a patch of their own), removed ones as `null`.
/// `None` when nothing changed.
pub(crate) fn diff(old: &Value, new: &Value) -> Option<Value> {
    let empty = JsonMap::new();
    let old = old.as_object().unwrap_or(&empty);
    let new = new.as_object().unwrap_or(&empty);
    let mut patch = JsonMap::new();
    for (key, value) in new {
        match old.get(key) {
            Some(before) if before == value => {}
            Some(before) if before.is_object() && value.is_object() => {
                patch.extend(diff(before, value).map(|p| (key.clone(), p)));
            }
            _ => {
                patch.insert(key.clone(), value.clone());
            }
        }
    }
    patch.extend(
        old.keys()
            .filter(|k| !new.contains_key(*k))
            .map(|k| (k.clone(), Value::Null)),
    );
    (!patch.is_empty()).then_some(Value::Object(patch))
}

/// Writes `new` to the status subresource if it differs from `old`, as a merge patch without a
/// resource version (upstream does the same: each object has one status writer). An object
/// deleted meanwhile is fine.
pub(crate) async fn write_status<K, T>(
    api: &Api<K>,
    name: &str,
    old: &T,
    new: &T,
) -> Result<(), kube::Error>
where
    K: Clone + DeserializeOwned + std::fmt::Debug,
    T: Serialize,
{
    let old = serde_json::to_value(old).unwrap_or_default();
    let new = serde_json::to_value(new).unwrap_or_default();
    let Some(patch) = diff(&old, &new) else {
        return Ok(());
    };
    tracing::debug!(name, %patch, "writing status");
    let patch = serde_json::json!({ "status": patch });
    match api
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(error) if is_not_found(&error) => Ok(()),
        Err(error) => Err(error),
    }
}

/// The owner reference marked `controller: true`, if any (`metav1.GetControllerOf`).
pub(crate) fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))
}

/// Whether `meta`'s controller is the object with `uid` (`metav1.IsControlledBy`).
pub(crate) fn is_controlled_by(meta: &ObjectMeta, uid: &str) -> bool {
    controller_of(meta).is_some_and(|r| r.uid == uid)
}

/// The API group of an `apiVersion` (`""` for the core group).
pub(crate) fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(group, _)| group)
}

/// Whether `meta`'s controller is of `group` and `kind`, any version.
pub(crate) fn controller_kind<'a>(
    meta: &'a ObjectMeta,
    group: &str,
    kind: &str,
) -> Option<&'a OwnerReference> {
    controller_of(meta).filter(|r| r.kind == kind && group_of(&r.api_version) == group)
}

/// A controller reference (`controllerutil.SetControllerReference`): `controller` and
/// `blockOwnerDeletion` set, so garbage collection removes the child with its owner.
pub(crate) fn controller_reference(
    api_version: &str,
    kind: &str,
    name: &str,
    uid: &str,
) -> OwnerReference {
    OwnerReference {
        api_version: api_version.to_owned(),
        kind: kind.to_owned(),
        name: name.to_owned(),
        uid: uid.to_owned(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// `refs` with `owner` as the controller: an existing reference to the same object is replaced,
/// other owners are kept.
pub(crate) fn with_controller(
    refs: Option<&Vec<OwnerReference>>,
    owner: OwnerReference,
) -> Vec<OwnerReference> {
    let mut refs: Vec<OwnerReference> = refs
        .into_iter()
        .flatten()
        .filter(|r| r.uid != owner.uid)
        .cloned()
        .collect();
    refs.push(owner);
    refs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controller_references_match_group_and_kind_in_any_version() {
        let meta = ObjectMeta {
            owner_references: Some(vec![
                controller_reference("v1", "Other", "x", "1"),
                OwnerReference {
                    controller: None,
                    ..controller_reference("agents.x-k8s.io/v1alpha1", "Sandbox", "y", "2")
                },
            ]),
            ..Default::default()
        };
        assert_eq!(controller_of(&meta).unwrap().uid, "1");
        assert!(controller_kind(&meta, "", "Other").is_some());
        assert!(controller_kind(&meta, "agents.x-k8s.io", "Sandbox").is_none());
        assert_eq!(group_of("agents.x-k8s.io/v1beta1"), "agents.x-k8s.io");
        assert_eq!(group_of("v1"), "");
    }

    #[test]
    fn diff_sets_changes_and_nulls_removals() {
        let old = serde_json::json!({"a": 1, "b": [1], "c": "x"});
        let new = serde_json::json!({"a": 1, "b": [2], "d": true});
        assert_eq!(
            diff(&old, &new),
            Some(serde_json::json!({"b": [2], "d": true, "c": null}))
        );
        assert_eq!(diff(&new, &new), None);
        let old = serde_json::json!({"sandbox": {"name": "a", "podIPs": ["1"]}, "n": {"x": 1}});
        let new = serde_json::json!({"sandbox": {}, "n": 2});
        assert_eq!(
            diff(&old, &new),
            Some(serde_json::json!({"sandbox": {"name": null, "podIPs": null}, "n": 2}))
        );
        assert_eq!(diff(&Value::Null, &serde_json::json!({})), None);
    }

    #[test]
    fn with_controller_replaces_the_same_owner() {
        let old = controller_reference("a/v1", "A", "a", "1");
        let refs = with_controller(
            Some(&vec![old]),
            controller_reference("a/v2", "A", "a", "1"),
        );
        assert_eq!(refs.len(), 1);
        assert_eq!(refs[0].api_version, "a/v2");
    }
}
