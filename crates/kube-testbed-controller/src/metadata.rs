//! Pod labels and annotations from a Sandbox's pod template (upstream `reconcilePod` and
//! `updatePodMetadata`): user keys under the reserved prefixes are dropped, the name-hash label
//! is always the controller's, and the propagated keys are recorded so that keys removed from
//! the template are removed from the pod too.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use crate::{
    api::group_of,
    keys::{
        CLAIM_UID_LABEL, CREATED_BY_LABEL, EXTENSIONS_GROUP, NAME_HASH_LABEL,
        PROPAGATED_ANNOTATIONS_ANNOTATION, PROPAGATED_LABELS_ANNOTATION, TEMPLATE_REF_HASH_LABEL,
        WARM_POOL_LABEL,
    },
};

pub(crate) type Map = BTreeMap<String, String>;

/// Keys only the sandbox system may set (upstream `hasSystemReservedPrefix`).
pub(crate) fn is_reserved(key: &str) -> bool {
    key.starts_with("agents.x-k8s.io/") || key.starts_with("extensions.agents.x-k8s.io/")
}

/// Upstream's allow-list for the `created-by` label on pods (`NormalizeCreatedBy`).
pub(crate) fn normalize_created_by(value: &str) -> &str {
    match value {
        "go-client" | "python-client" | "controller" => value,
        _ => "unknown",
    }
}

/// The extension labels the controller copies from an extension-owned Sandbox to its pod
/// (upstream `computeExtensionPodLabels`): the claim UID for a claimed Sandbox, the pool hash
/// for a warm one, and the template ref hash for either.
fn extension_labels(sandbox_labels: &Map, controller: Option<&OwnerReference>) -> Map {
    let Some(owner) = controller.filter(|r| group_of(&r.api_version) == EXTENSIONS_GROUP) else {
        return Map::new();
    };
    let mut keys = vec![TEMPLATE_REF_HASH_LABEL];
    match owner.kind.as_str() {
        "SandboxClaim" => keys.push(CLAIM_UID_LABEL),
        "SandboxWarmPool" => keys.push(WARM_POOL_LABEL),
        _ => {}
    }
    keys.into_iter()
        .filter_map(|key| {
            sandbox_labels
                .get(key)
                .filter(|v| !v.is_empty())
                .map(|v| (key.to_owned(), v.clone()))
        })
        .collect()
}

const EXTENSION_LABEL_KEYS: [&str; 3] = [CLAIM_UID_LABEL, WARM_POOL_LABEL, TEMPLATE_REF_HASH_LABEL];

/// What a Sandbox says about its pod's metadata.
pub(crate) struct PodMetadataSource<'a> {
    pub template_labels: &'a Map,
    pub template_annotations: Option<&'a Map>,
    pub sandbox_labels: &'a Map,
    pub controller: Option<&'a OwnerReference>,
    pub name_hash: &'a str,
}

impl PodMetadataSource<'_> {
    fn user_labels(&self) -> impl Iterator<Item = (&String, &String)> {
        self.template_labels.iter().filter(|(k, _)| !is_reserved(k))
    }

    fn user_annotations(&self) -> impl Iterator<Item = (&String, &String)> {
        self.template_annotations
            .into_iter()
            .flatten()
            .filter(|(k, _)| !is_reserved(k))
    }

    fn created_by(&self) -> Option<&str> {
        self.sandbox_labels
            .get(CREATED_BY_LABEL)
            .filter(|v| !v.is_empty())
            .map(|v| normalize_created_by(v))
    }

    /// The labels and annotations of a new pod.
    pub(crate) fn new_pod(&self) -> (Map, Map) {
        let mut labels: Map = self
            .user_labels()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        labels.insert(NAME_HASH_LABEL.to_owned(), self.name_hash.to_owned());
        labels.extend(extension_labels(self.sandbox_labels, self.controller));
        if let Some(created_by) = self.created_by() {
            labels.insert(CREATED_BY_LABEL.to_owned(), created_by.to_owned());
        }
        let mut annotations: Map = self
            .user_annotations()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let label_keys = joined_keys(self.user_labels());
        let annotation_keys = joined_keys(self.user_annotations());
        if !label_keys.is_empty() {
            annotations.insert(PROPAGATED_LABELS_ANNOTATION.to_owned(), label_keys);
        }
        if !annotation_keys.is_empty() {
            annotations.insert(
                PROPAGATED_ANNOTATIONS_ANNOTATION.to_owned(),
                annotation_keys,
            );
        }
        (labels, annotations)
    }

    /// Brings an existing pod's labels and annotations in line; returns whether anything changed.
    pub(crate) fn update_pod(&self, labels: &mut Map, annotations: &mut Map) -> bool {
        let before = (labels.clone(), annotations.clone());
        labels.insert(NAME_HASH_LABEL.to_owned(), self.name_hash.to_owned());
        labels.extend(self.user_labels().map(|(k, v)| (k.clone(), v.clone())));
        for key in propagated(annotations.get(PROPAGATED_LABELS_ANNOTATION)) {
            // Reserved keys recorded by an older controller go too, except the name hash.
            let stale = if is_reserved(&key) {
                key != NAME_HASH_LABEL
            } else {
                !self.template_labels.contains_key(&key)
            };
            if stale {
                labels.remove(&key);
            }
        }
        let extension = extension_labels(self.sandbox_labels, self.controller);
        for key in EXTENSION_LABEL_KEYS {
            match extension.get(key) {
                Some(value) => labels.insert(key.to_owned(), value.clone()),
                None => labels.remove(key),
            };
        }
        match self.created_by() {
            Some(created_by) => labels.insert(CREATED_BY_LABEL.to_owned(), created_by.to_owned()),
            None => labels.remove(CREATED_BY_LABEL),
        };
        annotations.extend(self.user_annotations().map(|(k, v)| (k.clone(), v.clone())));
        for key in propagated(annotations.get(PROPAGATED_ANNOTATIONS_ANNOTATION)) {
            let stale = if is_reserved(&key) {
                key != PROPAGATED_LABELS_ANNOTATION && key != PROPAGATED_ANNOTATIONS_ANNOTATION
            } else {
                !self
                    .template_annotations
                    .is_some_and(|a| a.contains_key(&key))
            };
            if stale {
                annotations.remove(&key);
            }
        }
        annotations.insert(
            PROPAGATED_LABELS_ANNOTATION.to_owned(),
            joined_keys(self.user_labels()),
        );
        annotations.insert(
            PROPAGATED_ANNOTATIONS_ANNOTATION.to_owned(),
            joined_keys(self.user_annotations()),
        );
        before != (labels.clone(), annotations.clone())
    }
}

/// Sorted keys, comma-separated (the propagated-keys annotations' format).
fn joined_keys<'a>(entries: impl Iterator<Item = (&'a String, &'a String)>) -> String {
    entries
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn propagated(annotation: Option<&String>) -> Vec<String> {
    annotation
        .into_iter()
        .flat_map(|v| v.split(','))
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::controller_reference;

    fn map(entries: &[(&str, &str)]) -> Map {
        entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn new_pods_drop_reserved_keys_and_record_the_propagated_ones() {
        let template_labels = map(&[
            ("app", "x"),
            ("agents.x-k8s.io/sandbox-name-hash", "forged"),
            ("b", "y"),
        ]);
        let template_annotations = map(&[("note", "n"), ("extensions.agents.x-k8s.io/z", "z")]);
        let sandbox_labels = map(&[("agents.x-k8s.io/created-by", "my-cli")]);
        let source = PodMetadataSource {
            template_labels: &template_labels,
            template_annotations: Some(&template_annotations),
            sandbox_labels: &sandbox_labels,
            controller: None,
            name_hash: "0123abcd",
        };
        let (labels, annotations) = source.new_pod();
        assert_eq!(
            labels,
            map(&[
                ("app", "x"),
                ("b", "y"),
                ("agents.x-k8s.io/sandbox-name-hash", "0123abcd"),
                ("agents.x-k8s.io/created-by", "unknown"),
            ])
        );
        assert_eq!(
            annotations,
            map(&[
                ("note", "n"),
                ("agents.x-k8s.io/propagated-labels", "app,b"),
                ("agents.x-k8s.io/propagated-annotations", "note"),
            ])
        );
    }

    #[test]
    fn extension_owned_sandboxes_pass_their_labels_to_the_pod() {
        let sandbox_labels = map(&[
            ("agents.x-k8s.io/claim-uid", "uid-1"),
            ("agents.x-k8s.io/warm-pool-sandbox", "pool"),
            ("agents.x-k8s.io/sandbox-template-ref-hash", "tmpl"),
        ]);
        let claim = controller_reference(
            "extensions.agents.x-k8s.io/v1beta1",
            "SandboxClaim",
            "c",
            "uid-1",
        );
        let empty = Map::new();
        let source = PodMetadataSource {
            template_labels: &empty,
            template_annotations: None,
            sandbox_labels: &sandbox_labels,
            controller: Some(&claim),
            name_hash: "h",
        };
        let (labels, annotations) = source.new_pod();
        assert_eq!(labels.get("agents.x-k8s.io/claim-uid").unwrap(), "uid-1");
        assert_eq!(
            labels
                .get("agents.x-k8s.io/sandbox-template-ref-hash")
                .unwrap(),
            "tmpl"
        );
        assert!(!labels.contains_key("agents.x-k8s.io/warm-pool-sandbox"));
        assert!(annotations.is_empty());
    }

    #[test]
    fn updating_an_adopted_pod_swaps_pool_labels_for_claim_labels() {
        let template_labels = map(&[("app", "x")]);
        let sandbox_labels = map(&[("agents.x-k8s.io/claim-uid", "uid-1")]);
        let claim = controller_reference(
            "extensions.agents.x-k8s.io/v1beta1",
            "SandboxClaim",
            "c",
            "uid-1",
        );
        let source = PodMetadataSource {
            template_labels: &template_labels,
            template_annotations: None,
            sandbox_labels: &sandbox_labels,
            controller: Some(&claim),
            name_hash: "h",
        };
        let mut labels = map(&[
            ("agents.x-k8s.io/warm-pool-sandbox", "pool"),
            ("old", "1"),
            ("keep", "2"),
        ]);
        let mut annotations = map(&[("agents.x-k8s.io/propagated-labels", "old")]);
        assert!(source.update_pod(&mut labels, &mut annotations));
        assert_eq!(
            labels,
            map(&[
                ("agents.x-k8s.io/claim-uid", "uid-1"),
                ("agents.x-k8s.io/sandbox-name-hash", "h"),
                ("app", "x"),
                ("keep", "2"),
            ])
        );
        assert_eq!(
            annotations
                .get("agents.x-k8s.io/propagated-labels")
                .unwrap(),
            "app"
        );
        assert!(
            !source.update_pod(&mut labels, &mut annotations),
            "a second pass changes nothing"
        );
    }
}
