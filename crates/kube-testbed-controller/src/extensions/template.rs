//! The SandboxTemplate controller (upstream `sandboxtemplate_controller.go`): one shared
//! NetworkPolicy `<template>-network-policy` for the pods made from the template, either the
//! template's own rules or the secure default; `networkPolicyManagement: Unmanaged` removes it.
//! Also the secure pod-spec defaults the warm pool and claims apply (`ApplySandboxSecureDefaults`).

use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicySpec};
use kube::{
    Api, Client,
    api::{DeleteParams, DynamicObject, PostParams},
    runtime::{controller::Action, watcher},
};
use serde_json::{Value, json};

use crate::{
    api,
    error::Error,
    extensions::model::{self, Template, TemplateSpec},
    keys::{TEMPLATE_REF_HASH_LABEL, name_hash},
    runner,
};

pub(crate) async fn run(client: Client) {
    let resource = model::templates();
    let controller = runner::controller(&client, &resource);
    let controller =
        runner::owns::<NetworkPolicy>(controller, &client, &resource, watcher::Config::default());
    runner::drive(
        controller,
        "SandboxTemplate",
        client,
        |object, client| async move { reconcile(&client, &object).await },
    )
    .await;
}

async fn reconcile(client: &Client, object: &DynamicObject) -> Result<Action, Error> {
    let template = Template::from_object(object, "SandboxTemplate")?;
    if template.deleting() {
        return Ok(Action::await_change());
    }
    let name = format!("{}-network-policy", template.name());
    let policies = Api::<NetworkPolicy>::namespaced(client.clone(), template.namespace());
    if template.spec.network_policy_management.as_deref() == Some("Unmanaged") {
        if api::delete(&policies, &name, &DeleteParams::default()).await? {
            tracing::debug!(
                template = template.name(),
                policy = name,
                "deleted NetworkPolicy: unmanaged"
            );
        }
        return Ok(Action::await_change());
    }
    let desired: NetworkPolicySpec =
        serde_json::from_value(policy_spec(template.name(), &template.spec)).map_err(|source| {
            Error::Invalid {
                kind: "SandboxTemplate",
                name: template.name().to_owned(),
                source,
            }
        })?;
    match policies.get_opt(&name).await? {
        Some(mut existing) => {
            if existing.spec.as_ref() != Some(&desired) {
                existing.spec = Some(desired);
                policies
                    .replace(&name, &PostParams::default(), &existing)
                    .await?;
                tracing::debug!(
                    template = template.name(),
                    policy = name,
                    "updated NetworkPolicy"
                );
            }
        }
        None => {
            let policy = NetworkPolicy {
                metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                    name: Some(name.clone()),
                    namespace: Some(template.namespace().to_owned()),
                    owner_references: Some(vec![template.owner_reference("SandboxTemplate")]),
                    ..Default::default()
                },
                spec: Some(desired),
            };
            policies.create(&PostParams::default(), &policy).await?;
            tracing::debug!(
                template = template.name(),
                policy = name,
                "created NetworkPolicy"
            );
        }
    }
    Ok(Action::await_change())
}

/// The policy for pods labelled with the template's ref hash: the template's rules, or by
/// default ingress only from the sandbox router and egress only to public addresses (private
/// ranges and link-local blocked, which also blocks cluster DNS).
fn policy_spec(template: &str, spec: &TemplateSpec) -> Value {
    let selector = json!({ "matchLabels": { TEMPLATE_REF_HASH_LABEL: name_hash(template) } });
    let (ingress, egress) = match &spec.network_policy {
        Some(rules) => (
            rules.ingress.clone().unwrap_or(Value::Null),
            rules.egress.clone().unwrap_or(Value::Null),
        ),
        None => (
            json!([{ "from": [{ "podSelector": { "matchLabels": { "app": "sandbox-router" } } }] }]),
            json!([{ "to": [
                { "ipBlock": { "cidr": "0.0.0.0/0", "except": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"] } },
                { "ipBlock": { "cidr": "::/0", "except": ["fc00::/7"] } },
            ] }]),
        ),
    };
    json!({ "podSelector": selector, "policyTypes": ["Ingress", "Egress"], "ingress": ingress, "egress": egress })
}

/// Secure defaults for pods made from a template: no service account token unless asked for,
/// and (under the default policy, which blocks cluster DNS) public resolvers.
pub(crate) fn apply_secure_defaults(template: &TemplateSpec, pod_spec: &mut Value) {
    if !pod_spec.is_object() {
        *pod_spec = json!({});
    }
    if pod_spec
        .get("automountServiceAccountToken")
        .is_none_or(Value::is_null)
    {
        pod_spec["automountServiceAccountToken"] = json!(false);
    }
    if template.secure_by_default()
        && pod_spec
            .get("dnsPolicy")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
    {
        pod_spec["dnsPolicy"] = json!("None");
        pod_spec["dnsConfig"] = json!({ "nameservers": ["8.8.8.8", "1.1.1.1"] });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_policy_selects_the_template_and_blocks_private_ranges() {
        let spec = policy_spec("tmpl", &TemplateSpec::default());
        assert_eq!(
            spec["podSelector"]["matchLabels"][TEMPLATE_REF_HASH_LABEL],
            json!(name_hash("tmpl"))
        );
        assert_eq!(
            spec["egress"][0]["to"][0]["ipBlock"]["except"][3],
            "169.254.0.0/16"
        );
        let typed: NetworkPolicySpec = serde_json::from_value(spec).unwrap();
        assert_eq!(typed.policy_types.unwrap(), vec!["Ingress", "Egress"]);
    }

    #[test]
    fn secure_defaults_keep_explicit_choices() {
        let mut spec = json!({"containers": [], "automountServiceAccountToken": true});
        apply_secure_defaults(&TemplateSpec::default(), &mut spec);
        assert_eq!(spec["automountServiceAccountToken"], true);
        assert_eq!(spec["dnsPolicy"], "None");

        let custom = TemplateSpec {
            network_policy_management: Some("Unmanaged".into()),
            ..TemplateSpec::default()
        };
        let mut spec = json!({"containers": []});
        apply_secure_defaults(&custom, &mut spec);
        assert_eq!(spec["automountServiceAccountToken"], false);
        assert!(spec.get("dnsPolicy").is_none());
    }
}
