//! Preflight permission checks with SelfSubjectAccessReview, so that a missing permission is
//! reported by name before anything is written.

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::{Api, api::PostParams};

use crate::{cluster::Cluster, error::Error};

/// One thing the user must be allowed to do.
#[derive(Debug, Clone, Copy)]
pub struct Permission {
    pub verb: &'static str,
    pub group: &'static str,
    pub resource: &'static str,
    pub subresource: Option<&'static str>,
    /// Namespaced permissions are checked in the command's namespace.
    pub namespaced: bool,
}

impl Permission {
    pub const fn namespaced(
        verb: &'static str,
        group: &'static str,
        resource: &'static str,
    ) -> Self {
        Self {
            verb,
            group,
            resource,
            subresource: None,
            namespaced: true,
        }
    }

    pub const fn cluster(verb: &'static str, group: &'static str, resource: &'static str) -> Self {
        Self {
            verb,
            group,
            resource,
            subresource: None,
            namespaced: false,
        }
    }

    pub const fn sub(self, subresource: &'static str) -> Self {
        Self {
            subresource: Some(subresource),
            ..self
        }
    }

    fn resource_name(&self) -> String {
        let mut name = self.resource.to_owned();
        if let Some(sub) = self.subresource {
            name = format!("{name}/{sub}");
        }
        if !self.group.is_empty() {
            name = format!("{name}.{}", self.group);
        }
        name
    }
}

/// Whether the user may do `permission`.
pub async fn allowed(cluster: &Cluster, permission: &Permission) -> Result<bool, Error> {
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                verb: Some(permission.verb.to_owned()),
                group: Some(permission.group.to_owned()),
                resource: Some(permission.resource.to_owned()),
                subresource: permission.subresource.map(str::to_owned),
                namespace: permission.namespaced.then(|| cluster.namespace.clone()),
                ..ResourceAttributes::default()
            }),
            ..SelfSubjectAccessReviewSpec::default()
        },
        ..SelfSubjectAccessReview::default()
    };
    let answer = Api::<SelfSubjectAccessReview>::all(cluster.client.clone())
        .create(&PostParams::default(), &review)
        .await
        .map_err(|e| cluster.error(e))?;
    let allowed = answer.status.is_some_and(|s| s.allowed);
    tracing::debug!(verb = permission.verb, resource = %permission.resource_name(), allowed, "access review");
    Ok(allowed)
}

/// Fails with the first permission the user lacks, named.
pub async fn require(cluster: &Cluster, permissions: &[Permission]) -> Result<(), Error> {
    for permission in permissions {
        if !allowed(cluster, permission).await? {
            return Err(Error::Forbidden {
                verb: permission.verb.to_owned(),
                resource: permission.resource_name(),
                scope: if permission.namespaced {
                    format!(" in namespace {}", cluster.namespace)
                } else {
                    " (cluster-wide)".to_owned()
                },
            });
        }
    }
    Ok(())
}
