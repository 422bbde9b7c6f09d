//! What a SandboxClaim may add to its template's Sandbox (upstream
//! `sandboxclaim_controller.go`): pod labels and annotations (`additionalPodMetadata`, checked
//! against allow- and block-lists, never overriding the template), environment variables
//! (`env`, per the template's `envVarsInjectionPolicy`) and volume claim templates (per its
//! `volumeClaimTemplatesPolicy`).

use serde_json::{Value, json};

use crate::{
    error::Error,
    extensions::model::EnvVar,
    metadata::Map,
    sandbox::model::{PodMetadata, VolumeClaimTemplate},
};

/// Label domains a claim may use (upstream's default `--allowed-label-domains`).
const ALLOWED_LABEL_DOMAINS: [&str; 1] = ["sandbox.users.io"];
/// Annotation domains a claim may not use.
const RESTRICTED_DOMAINS: [&str; 3] = ["kubernetes.io", "k8s.io", "agents.x-k8s.io"];

fn in_domains(domain: &str, domains: &[&str]) -> bool {
    domains
        .iter()
        .any(|d| domain == *d || domain.ends_with(&format!(".{d}")))
}

/// A label value: at most 63 characters, alphanumerics with `-_.` inside.
fn valid_label_value(value: &str) -> bool {
    value.is_empty()
        || (value.len() <= 63
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            && value.starts_with(|c: char| c.is_ascii_alphanumeric())
            && value.ends_with(|c: char| c.is_ascii_alphanumeric()))
}

/// A qualified name: an optional DNS-subdomain prefix and a label-value-like name.
fn qualified_name(key: &str) -> bool {
    let (prefix, name) = key
        .split_once('/')
        .map_or((None, key), |(p, n)| (Some(p), n));
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|part| {
                !part.is_empty()
                    && part
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && !part.starts_with('-')
                    && !part.ends_with('-')
            })
    });
    prefix_ok && !name.is_empty() && valid_label_value(name)
}

/// Checks `additionalPodMetadata` (upstream `validateAdditionalPodMetadata`).
pub(crate) fn validate_metadata(metadata: &PodMetadata) -> Result<(), Error> {
    let check = |key: &str, value: &str, label: bool| -> Result<(), String> {
        let kind = if label { "label" } else { "annotation" };
        if !qualified_name(key) {
            return Err(format!("invalid {kind} key: {key:?}"));
        }
        if label && key.eq_ignore_ascii_case("app") && value.eq_ignore_ascii_case("sandbox-router")
        {
            return Err(format!(
                "restricted system label value: {key:?}={value:?} is not allowed in AdditionalPodMetadata"
            ));
        }
        let domain = key.split_once('/').map(|(d, _)| d.to_lowercase());
        if label {
            let Some(domain) = domain else {
                return Err(format!(
                    "label {key:?} must have a domain prefix (e.g. 'sandbox.users.io/my-label') to prevent opting into unintended policy domains"
                ));
            };
            if !in_domains(&domain, &ALLOWED_LABEL_DOMAINS) {
                return Err(format!("label domain {domain:?} is not in the allowlist"));
            }
            if !valid_label_value(value) {
                return Err(format!(
                    "invalid label value: {value:?} does not match allowed pattern"
                ));
            }
        } else if domain
            .as_deref()
            .is_some_and(|d| in_domains(d, &RESTRICTED_DOMAINS))
        {
            return Err(format!(
                "restricted system domain: {key:?} is not allowed in AdditionalPodMetadata"
            ));
        }
        Ok(())
    };
    let labels = metadata.labels.iter().map(|(k, v)| (k, v, true));
    let annotations = metadata
        .annotations
        .iter()
        .flatten()
        .map(|(k, v)| (k, v, false));
    for (key, value, label) in labels.chain(annotations) {
        check(key, value, label)
            .map_err(|e| Error::InvalidMetadata(format!("failed to validate {key:?}: {e}")))?;
    }
    Ok(())
}

/// Adds the claim's labels and annotations to a template's; a different value for a key the
/// template sets is a conflict (upstream `mergePodMetadata`).
pub(crate) fn merge_metadata(template: &mut PodMetadata, claim: &PodMetadata) -> Result<(), Error> {
    validate_metadata(claim)?;
    let conflict = |kind: &str, key: &str, theirs: &str, ours: &str| {
        Error::InvalidMetadata(format!(
            "metadata override conflict: {kind} {key:?} is defined in template with value {theirs:?}, but claim requests {ours:?}"
        ))
    };
    for (key, value) in &claim.labels {
        if let Some(existing) = template.labels.get(key).filter(|e| *e != value) {
            return Err(conflict("label", key, existing, value));
        }
    }
    let template_annotations = template.annotations.get_or_insert_with(Map::new);
    for (key, value) in claim.annotations.iter().flatten() {
        if let Some(existing) = template_annotations.get(key).filter(|e| *e != value) {
            return Err(conflict("annotation", key, existing, value));
        }
    }
    template_annotations.extend(claim.annotations.clone().unwrap_or_default());
    if template_annotations.is_empty() {
        template.annotations = None;
    }
    template.labels.extend(claim.labels.clone());
    Ok(())
}

/// Adds the claim's environment variables to the pod spec: each to its `containerName`, else
/// to the first container. Needs an `Allowed` or `Overrides` policy; only `Overrides` may replace
/// a variable the template sets, and `Allowed` refuses containers with `envFrom`.
pub(crate) fn inject_env(
    pod_spec: &mut Value,
    env: &[EnvVar],
    policy: Option<&str>,
) -> Result<(), Error> {
    if env.is_empty() {
        return Ok(());
    }
    let overrides = match policy {
        Some("Allowed") => false,
        Some("Overrides") => true,
        _ => {
            return Err(Error::EnvVarsRejected(
                "environment variable injection is not allowed by the template policy".to_owned(),
            ));
        }
    };
    let names: Vec<String> = ["initContainers", "containers"]
        .iter()
        .flat_map(|list| {
            pod_spec
                .get(*list)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_owned))
        .collect();
    if let Some(missing) = env
        .iter()
        .find(|e| !e.container_name.is_empty() && !names.contains(&e.container_name))
    {
        return Err(Error::EnvVarsRejected(format!(
            "target container {:?} not found in template for environment variable {:?}",
            missing.container_name, missing.name
        )));
    }
    for list in ["initContainers", "containers"] {
        let Some(containers) = pod_spec.get_mut(list).and_then(Value::as_array_mut) else {
            continue;
        };
        for (index, container) in containers.iter_mut().enumerate() {
            let name = container
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let first_main = list == "containers" && index == 0;
            let wanted: Vec<&EnvVar> = env
                .iter()
                .filter(|e| e.container_name == name || (first_main && e.container_name.is_empty()))
                .collect();
            if wanted.is_empty() {
                continue;
            }
            if !overrides
                && container
                    .get("envFrom")
                    .and_then(Value::as_array)
                    .is_some_and(|e| !e.is_empty())
            {
                return Err(Error::EnvVarsRejected(format!(
                    "container {name:?} uses EnvFrom sources; Allowed policy cannot safely prevent overriding EnvFrom-provided variables"
                )));
            }
            let vars = container
                .as_object_mut()
                .map(|c| c.entry("env").or_insert_with(|| json!([])));
            let Some(vars) = vars.and_then(Value::as_array_mut) else {
                continue;
            };
            for var in wanted {
                let new = json!({ "name": var.name, "value": var.value });
                match vars
                    .iter_mut()
                    .find(|v| v.get("name").and_then(Value::as_str) == Some(var.name.as_str()))
                {
                    Some(_) if !overrides => {
                        return Err(Error::EnvVarsRejected(format!(
                            "environment variable override is not allowed by the template policy for variable {:?}",
                            var.name
                        )));
                    }
                    Some(existing) => *existing = new,
                    None => vars.push(new),
                }
            }
        }
    }
    Ok(())
}

fn validate_claim_templates(templates: &[VolumeClaimTemplate]) -> Result<(), Error> {
    for (index, template) in templates.iter().enumerate() {
        if template.metadata.name.is_empty() {
            return Err(Error::VolumeClaimTemplates(format!(
                "invalid volume claim templates: name at index {index} is empty"
            )));
        }
        if templates[..index]
            .iter()
            .any(|t| t.metadata.name == template.metadata.name)
        {
            return Err(Error::VolumeClaimTemplates(format!(
                "invalid volume claim templates: duplicate name {:?}",
                template.metadata.name
            )));
        }
    }
    Ok(())
}

/// The volume claim templates of a claimed Sandbox (upstream `mergeVolumeClaimTemplates`):
/// the template's, plus the claim's when its `volumeClaimTemplatesPolicy` allows them
/// (`Allowed`: new names only; `Overrides`: a claim entry replaces the template's of the same name).
pub(crate) fn merge_claim_templates(
    template: &[VolumeClaimTemplate],
    claim: &[VolumeClaimTemplate],
    policy: Option<&str>,
) -> Result<Vec<VolumeClaimTemplate>, Error> {
    validate_claim_templates(template)?;
    if claim.is_empty() {
        return Ok(template.to_vec());
    }
    validate_claim_templates(claim)?;
    let in_template = |name: &str| template.iter().any(|t| t.metadata.name == name);
    match policy.unwrap_or("Disallowed") {
        "Allowed" => {
            if let Some(clash) = claim.iter().find(|c| in_template(&c.metadata.name)) {
                return Err(Error::VolumeClaimTemplates(format!(
                    "overriding volume claim templates is forbidden by the template: cannot override template volume {:?}",
                    clash.metadata.name
                )));
            }
            Ok(template.iter().chain(claim).cloned().collect())
        }
        "Overrides" => {
            let mut merged: Vec<VolumeClaimTemplate> = template
                .iter()
                .map(|t| {
                    claim
                        .iter()
                        .find(|c| c.metadata.name == t.metadata.name)
                        .unwrap_or(t)
                        .clone()
                })
                .collect();
            merged.extend(
                claim
                    .iter()
                    .filter(|c| !in_template(&c.metadata.name))
                    .cloned(),
            );
            Ok(merged)
        }
        "Disallowed" => Err(Error::VolumeClaimTemplates(
            "volume claim templates are disallowed by the template".to_owned(),
        )),
        other => Err(Error::VolumeClaimTemplates(format!(
            "unknown volume claim templates policy {other:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(labels: &[(&str, &str)], annotations: &[(&str, &str)]) -> PodMetadata {
        let map = |entries: &[(&str, &str)]| {
            entries
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<Map>()
        };
        PodMetadata {
            labels: map(labels),
            annotations: (!annotations.is_empty()).then(|| map(annotations)),
        }
    }

    #[test]
    fn claims_may_only_add_allowed_labels_and_unrestricted_annotations() {
        assert!(
            validate_metadata(&metadata(
                &[("sandbox.users.io/team", "a")],
                &[("example.com/x", "anything goes")]
            ))
            .is_ok()
        );
        assert!(validate_metadata(&metadata(&[("team", "a")], &[])).is_err());
        assert!(validate_metadata(&metadata(&[("other.io/team", "a")], &[])).is_err());
        assert!(
            validate_metadata(&metadata(&[("sandbox.users.io/team", "not valid!")], &[])).is_err()
        );
        assert!(validate_metadata(&metadata(&[], &[("agents.x-k8s.io/pod-name", "x")])).is_err());
        assert!(validate_metadata(&metadata(&[], &[("sub.kubernetes.io/x", "x")])).is_err());
    }

    #[test]
    fn claims_cannot_override_template_metadata() {
        let mut template = metadata(&[("sandbox.users.io/team", "a")], &[]);
        assert!(
            merge_metadata(
                &mut template,
                &metadata(&[("sandbox.users.io/team", "b")], &[])
            )
            .is_err()
        );
        merge_metadata(
            &mut template,
            &metadata(&[("sandbox.users.io/x", "1")], &[("note", "n")]),
        )
        .unwrap();
        assert_eq!(template.labels.len(), 2);
        assert_eq!(template.annotations.unwrap().get("note").unwrap(), "n");
    }

    fn env(name: &str, container: &str) -> EnvVar {
        EnvVar {
            name: name.to_owned(),
            value: "v".to_owned(),
            container_name: container.to_owned(),
        }
    }

    #[test]
    fn env_goes_to_the_first_container_unless_named() {
        let mut spec = json!({"containers": [{"name": "main", "env": [{"name": "KEEP", "value": "k"}]}, {"name": "side"}]});
        inject_env(
            &mut spec,
            &[env("A", ""), env("B", "side")],
            Some("Allowed"),
        )
        .unwrap();
        assert_eq!(
            spec["containers"][0]["env"],
            json!([{"name": "KEEP", "value": "k"}, {"name": "A", "value": "v"}])
        );
        assert_eq!(
            spec["containers"][1]["env"],
            json!([{"name": "B", "value": "v"}])
        );
    }

    #[test]
    fn env_injection_follows_the_template_policy() {
        let spec =
            json!({"containers": [{"name": "main", "env": [{"name": "A", "value": "old"}]}]});
        assert!(matches!(
            inject_env(&mut spec.clone(), &[env("A", "")], None),
            Err(Error::EnvVarsRejected(_))
        ));
        assert!(inject_env(&mut spec.clone(), &[env("A", "")], Some("Allowed")).is_err());
        assert!(inject_env(&mut spec.clone(), &[env("A", "nope")], Some("Overrides")).is_err());
        let mut overridden = spec.clone();
        inject_env(&mut overridden, &[env("A", "")], Some("Overrides")).unwrap();
        assert_eq!(
            overridden["containers"][0]["env"],
            json!([{"name": "A", "value": "v"}])
        );
    }

    fn claim_template(name: &str, size: &str) -> VolumeClaimTemplate {
        VolumeClaimTemplate {
            metadata: crate::sandbox::model::ClaimTemplateMetadata {
                name: name.to_owned(),
                ..Default::default()
            },
            spec: json!({"resources": {"requests": {"storage": size}}}),
        }
    }

    #[test]
    fn claim_volumes_follow_the_template_policy() {
        let template = [claim_template("workspace", "1Gi")];
        assert_eq!(
            merge_claim_templates(&template, &[], None).unwrap(),
            template.to_vec()
        );
        let bigger = [claim_template("workspace", "5Gi")];
        assert!(merge_claim_templates(&template, &bigger, None).is_err());
        assert!(merge_claim_templates(&template, &bigger, Some("Allowed")).is_err());
        assert_eq!(
            merge_claim_templates(&template, &bigger, Some("Overrides")).unwrap(),
            bigger.to_vec()
        );
        let extra = [claim_template("cache", "1Gi")];
        assert_eq!(
            merge_claim_templates(&template, &extra, Some("Allowed"))
                .unwrap()
                .len(),
            2
        );
        assert!(
            merge_claim_templates(
                &[claim_template("a", "1"), claim_template("a", "2")],
                &[],
                None
            )
            .is_err()
        );
    }
}
