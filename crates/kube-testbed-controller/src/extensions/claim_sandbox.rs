//! Finding, adopting or creating a claim's Sandbox (upstream `getOrCreateSandbox`,
//! `adoptSandboxFromCandidates`, `completeAdoption`, `createSandbox`).
//!
//! A claim first looks for the Sandbox it already has (its status, its
//! `agents.x-k8s.io/sandbox-name` annotation, a Sandbox named after it). Without one it adopts a
//! member of its warm pool — a ready one, else the oldest unready one — unless it sets `env` or
//! `volumeClaimTemplates`, which force a cold start: a new Sandbox named after the claim, from
//! the pool's template.

use kube::{
    Api,
    api::{DynamicObject, ListParams, PostParams},
};
use serde_json::{Value, json};

use crate::{
    api::{self, controller_kind, diff, is_conflict, is_controlled_by, is_not_found},
    conditions,
    error::Error,
    extensions::{
        claim_rules,
        model::{Claim, Template},
        template::apply_secure_defaults,
    },
    keys::{
        ASSIGNED_SANDBOX_ANNOTATION, CLAIM_UID_LABEL, CREATED_BY_LABEL, EXTENSIONS_GROUP,
        LAUNCH_TYPE_LABEL, POD_NAME_ANNOTATION, POD_TEMPLATE_HASH_LABEL, TEMPLATE_REF_ANNOTATION,
        TEMPLATE_REF_HASH_LABEL, WARM_POOL_LABEL, name_hash,
    },
    metadata::Map,
    sandbox::{Version, model::Sandbox, readiness::READY},
};

/// Adoption attempts per reconcile before falling back to a cold start.
const ADOPTION_ATTEMPTS: usize = 3;
/// The pool's autoscaler hint, dropped once a claim holds the Sandbox.
const SAFE_TO_EVICT_ANNOTATION: &str = "cluster-autoscaler.kubernetes.io/safe-to-evict";

pub(crate) struct Sandboxes<'a> {
    pub api: &'a Api<DynamicObject>,
    pub claims: &'a Api<DynamicObject>,
    pub templates: &'a Api<DynamicObject>,
    pub pools: &'a Api<DynamicObject>,
}

fn read(object: &DynamicObject) -> Result<Sandbox, Error> {
    Sandbox::from_object(object, Version::V1beta1)
}

impl Sandboxes<'_> {
    /// The claim's Sandbox: found, or adopted from the warm pool; `None` when a cold start is due.
    pub(crate) async fn find_or_adopt(&self, claim: &Claim) -> Result<Option<Sandbox>, Error> {
        if !claim.status.sandbox.name.is_empty()
            && let Some(sandbox) = self
                .get(&claim.status.sandbox.name)
                .await?
                .filter(|s| is_controlled_by(&s.meta, claim.uid()))
        {
            let assigned =
                claim_annotation(claim) == Some(sandbox.name()) || sandbox.name() != claim.name();
            return self
                .with_launch_type(sandbox, if assigned { "warm" } else { "cold" })
                .await
                .map(Some);
        }
        if let Some(assigned) = claim_annotation(claim) {
            match self.get(assigned).await? {
                Some(sandbox) if is_controlled_by(&sandbox.meta, claim.uid()) => {
                    return self.with_launch_type(sandbox, "warm").await.map(Some);
                }
                Some(sandbox)
                    if controller_kind(&sandbox.meta, EXTENSIONS_GROUP, "SandboxWarmPool")
                        .is_some() =>
                {
                    if adoptable(&sandbox, claim) {
                        // An adoption that did not finish: finish it, and look again next time.
                        match self.complete_adoption(claim, &sandbox).await {
                            Ok(()) => {
                                return Err(Error::Retry(format!(
                                    "triggered adoption completion for sandbox {assigned}, retry"
                                )));
                            }
                            Err(Error::Kube(error))
                                if is_conflict(&error) || is_not_found(&error) => {}
                            Err(error) => return Err(error),
                        }
                    } else {
                        self.forget_assignment(claim).await?;
                    }
                }
                Some(_) => {}
                None => self.forget_assignment(claim).await?,
            }
        }
        if let Some(sandbox) = self.get(claim.name()).await? {
            if !is_controlled_by(&sandbox.meta, claim.uid()) {
                return Err(Error::Ownership(format!(
                    "sandbox {:?} is not controlled by claim {:?}. Please use a different claim name or delete the sandbox manually",
                    sandbox.name(),
                    claim.name()
                )));
            }
            return self.with_launch_type(sandbox, "cold").await.map(Some);
        }
        if !claim.spec.env.is_empty() || !claim.spec.volume_claim_templates.is_empty() {
            tracing::debug!(
                claim = claim.name(),
                "custom env or volumes: bypassing the warm pool"
            );
            return Ok(None);
        }
        self.adopt(claim).await
    }

    async fn get(&self, name: &str) -> Result<Option<Sandbox>, Error> {
        self.api.get_opt(name).await?.as_ref().map(read).transpose()
    }

    /// Sets the launch-type label when it is missing.
    async fn with_launch_type(
        &self,
        sandbox: Sandbox,
        launch_type: &str,
    ) -> Result<Sandbox, Error> {
        if sandbox
            .meta
            .labels
            .as_ref()
            .is_some_and(|l| l.contains_key(LAUNCH_TYPE_LABEL))
        {
            return Ok(sandbox);
        }
        let patch = json!({ "metadata": { "labels": { LAUNCH_TYPE_LABEL: launch_type } } });
        read(&api::merge_patch(self.api, sandbox.name(), &patch).await?)
    }

    async fn forget_assignment(&self, claim: &Claim) -> Result<(), Error> {
        tracing::debug!(
            claim = claim.name(),
            "removing a stale sandbox reference from the claim"
        );
        let patch = json!({ "metadata": { "annotations": { ASSIGNED_SANDBOX_ANNOTATION: null } } });
        api::merge_patch(self.claims, claim.name(), &patch).await?;
        Ok(())
    }

    /// Adopts a member of the claim's warm pool: a ready one first, else the oldest.
    async fn adopt(&self, claim: &Claim) -> Result<Option<Sandbox>, Error> {
        let pool = &claim.spec.warm_pool_ref.name;
        let listed = self
            .api
            .list(&ListParams::default().labels(&format!("{WARM_POOL_LABEL}={}", name_hash(pool))))
            .await?;
        let mut candidates: Vec<Sandbox> = listed
            .items
            .iter()
            .map(read)
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .filter(|s| adoptable(s, claim))
            .collect();
        candidates.sort_by_key(|s| {
            (
                !conditions::is_true(&s.status.conditions, READY),
                s.meta.creation_timestamp.as_ref().map(|t| t.0),
            )
        });
        for candidate in candidates.into_iter().take(ADOPTION_ATTEMPTS) {
            // Record the choice on the claim first (optimistic lock on the claim).
            let patch = json!({ "metadata": {
                "resourceVersion": claim.meta.resource_version,
                "annotations": { ASSIGNED_SANDBOX_ANNOTATION: candidate.name() },
            } });
            api::merge_patch(self.claims, claim.name(), &patch).await?;
            match self.complete_adoption(claim, &candidate).await {
                Ok(()) => {
                    tracing::debug!(
                        claim = claim.name(),
                        sandbox = candidate.name(),
                        "adopted a warm Sandbox"
                    );
                    return self.get(candidate.name()).await;
                }
                // Another claim took it, or it went: try the next one.
                Err(Error::Kube(error)) if is_conflict(&error) || is_not_found(&error) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(None)
    }

    /// Moves a warm Sandbox from its pool to the claim: pool labels off, claim identity on,
    /// the claim as controller, the pod template's metadata as the template's plus the claim's.
    async fn complete_adoption(&self, claim: &Claim, sandbox: &Sandbox) -> Result<(), Error> {
        let old_labels = sandbox.meta.labels.clone().unwrap_or_default();
        let mut labels = old_labels.clone();
        labels.remove(WARM_POOL_LABEL);
        labels.remove(POD_TEMPLATE_HASH_LABEL);
        labels.insert(LAUNCH_TYPE_LABEL.to_owned(), "warm".to_owned());
        claim_identity(&mut labels, claim);
        let template = self.template(claim).await.ok();
        let template_hash = old_labels
            .get(TEMPLATE_REF_HASH_LABEL)
            .cloned()
            .or_else(|| template.as_ref().map(|t| name_hash(t.name())));
        if let Some(hash) = &template_hash {
            labels.insert(TEMPLATE_REF_HASH_LABEL.to_owned(), hash.clone());
        }
        let old_metadata = &sandbox.spec.blueprint.pod_template.metadata;
        let mut metadata = match &template {
            Some(template) => {
                let mut metadata = template.spec.blueprint.pod_template.metadata.clone();
                claim_identity(&mut metadata.labels, claim);
                metadata
            }
            None => {
                let mut metadata = old_metadata.clone();
                claim_identity(&mut metadata.labels, claim);
                if let Some(annotations) = metadata
                    .annotations
                    .as_mut()
                    .filter(|a| a.get(SAFE_TO_EVICT_ANNOTATION).is_some_and(|v| v == "true"))
                {
                    annotations.remove(SAFE_TO_EVICT_ANNOTATION);
                }
                metadata
            }
        };
        if let Some(hash) = &template_hash {
            metadata
                .labels
                .insert(TEMPLATE_REF_HASH_LABEL.to_owned(), hash.clone());
        }
        claim_rules::merge_metadata(&mut metadata, &claim.spec.additional_pod_metadata)?;
        let mut metadata_patch = json!({
            "resourceVersion": sandbox.meta.resource_version,
            "annotations": { POD_NAME_ANNOTATION: sandbox.name() },
            "ownerReferences": [claim.owner_reference("SandboxClaim")],
        });
        if let Some(labels) = diff(&json!(old_labels), &json!(labels)) {
            metadata_patch["labels"] = labels;
        }
        let mut template_patch = json!({});
        if let Some(labels) = diff(&json!(old_metadata.labels), &json!(metadata.labels)) {
            template_patch["labels"] = labels;
        }
        if let Some(annotations) = diff(
            &json!(old_metadata.annotations),
            &json!(metadata.annotations),
        ) {
            template_patch["annotations"] = annotations;
        }
        let patch = json!({ "metadata": metadata_patch, "spec": { "podTemplate": { "metadata": template_patch } } });
        api::merge_patch(self.api, sandbox.name(), &patch).await?;
        Ok(())
    }

    /// The claim's warm pool's template.
    pub(crate) async fn template(&self, claim: &Claim) -> Result<Template, Error> {
        let pool_name = &claim.spec.warm_pool_ref.name;
        let pool = self
            .pools
            .get_opt(pool_name)
            .await?
            .ok_or_else(|| Error::WarmPoolNotFound(pool_name.clone()))?;
        let template_name = pool
            .data
            .pointer("/spec/sandboxTemplateRef/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let template = self
            .templates
            .get_opt(template_name)
            .await?
            .ok_or_else(|| Error::TemplateNotFound(template_name.to_owned()))?;
        Template::from_object(&template, "SandboxTemplate")
    }

    /// A cold start: a Sandbox named after the claim from the template, with the claim's
    /// metadata, environment and volumes.
    pub(crate) async fn create(
        &self,
        claim: &Claim,
        template: &Template,
    ) -> Result<Sandbox, Error> {
        let mut blueprint = template.spec.blueprint.clone();
        blueprint.volume_claim_templates = claim_rules::merge_claim_templates(
            &template.spec.blueprint.volume_claim_templates,
            &claim.spec.volume_claim_templates,
            template.spec.volume_claim_templates_policy.as_deref(),
        )?;
        let template_hash = name_hash(template.name());
        let mut labels = Map::new();
        claim_identity(&mut labels, claim);
        labels.insert(LAUNCH_TYPE_LABEL.to_owned(), "cold".to_owned());
        labels.insert(TEMPLATE_REF_HASH_LABEL.to_owned(), template_hash.clone());
        let pod_metadata = &mut blueprint.pod_template.metadata;
        claim_identity(&mut pod_metadata.labels, claim);
        pod_metadata
            .labels
            .insert(TEMPLATE_REF_HASH_LABEL.to_owned(), template_hash);
        claim_rules::merge_metadata(pod_metadata, &claim.spec.additional_pod_metadata)?;
        claim_rules::inject_env(
            &mut blueprint.pod_template.spec,
            &claim.spec.env,
            template.spec.env_vars_injection_policy.as_deref(),
        )?;
        apply_secure_defaults(&template.spec, &mut blueprint.pod_template.spec);
        let object = json!({
            "apiVersion": format!("{}/{}", crate::keys::GROUP, Version::V1beta1.as_str()),
            "kind": "Sandbox",
            "metadata": {
                "name": claim.name(),
                "namespace": claim.namespace(),
                "labels": labels,
                "annotations": { TEMPLATE_REF_ANNOTATION: template.name() },
                "ownerReferences": [claim.owner_reference("SandboxClaim")],
            },
            "spec": blueprint,
        });
        let object: DynamicObject =
            serde_json::from_value(object).map_err(|source| Error::Invalid {
                kind: "SandboxTemplate",
                name: template.name().to_owned(),
                source,
            })?;
        let created = self.api.create(&PostParams::default(), &object).await?;
        tracing::debug!(
            claim = claim.name(),
            template = template.name(),
            "created a Sandbox for the claim (cold start)"
        );
        read(&created)
    }
}

fn claim_annotation(claim: &Claim) -> Option<&str> {
    claim
        .meta
        .annotations
        .as_ref()?
        .get(ASSIGNED_SANDBOX_ANNOTATION)
        .map(String::as_str)
        .filter(|n| !n.is_empty())
}

/// The claim UID label, and the claim's created-by label (or none).
fn claim_identity(labels: &mut Map, claim: &Claim) {
    labels.insert(CLAIM_UID_LABEL.to_owned(), claim.uid().to_owned());
    match claim
        .meta
        .labels
        .as_ref()
        .and_then(|l| l.get(CREATED_BY_LABEL))
        .filter(|v| !v.is_empty())
    {
        Some(created_by) => labels.insert(CREATED_BY_LABEL.to_owned(), created_by.clone()),
        None => labels.remove(CREATED_BY_LABEL),
    };
}

/// A live member of the claim's pool, in its namespace (upstream `verifySandboxCandidate`).
fn adoptable(sandbox: &Sandbox, claim: &Claim) -> bool {
    let labels = sandbox.meta.labels.as_ref();
    !sandbox.deleting()
        && sandbox.namespace() == claim.namespace()
        && labels.is_some_and(|l| {
            l.contains_key(WARM_POOL_LABEL) && l.contains_key(TEMPLATE_REF_HASH_LABEL)
        })
        && controller_kind(&sandbox.meta, EXTENSIONS_GROUP, "SandboxWarmPool")
            .is_some_and(|owner| owner.name == claim.spec.warm_pool_ref.name)
}
