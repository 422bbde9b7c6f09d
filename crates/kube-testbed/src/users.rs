//! Users limited by RBAC, for permission tests: a ServiceAccount bound to a Role with the given
//! rules, and a kubeconfig with its token. Works on any cluster: the token Secret is created
//! explicitly (clusters since 1.24 no longer make one per ServiceAccount) and filled in by the
//! cluster's token controller.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use k8s_openapi::api::{
    core::v1::{Secret, ServiceAccount},
    rbac::v1::{PolicyRule, Role, RoleBinding},
};
use kube::{
    Api, Client,
    api::{Patch, PatchParams},
};
use serde_json::json;

use crate::{bootstrap::FIELD_MANAGER, error::Error, kubeconfig::ClusterAccess};

const TOKEN_TIMEOUT: Duration = Duration::from_secs(30);

/// Creates (or updates) user `name` in `namespace`, allowed exactly `rules` there, and writes its
/// kubeconfig to `<users_dir>/<namespace>-<name>.kubeconfig`. Returns that path.
pub(crate) async fn create_user(
    client: &Client,
    access: &ClusterAccess,
    users_dir: &Path,
    name: &str,
    namespace: &str,
    rules: &[PolicyRule],
) -> Result<PathBuf, Error> {
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let metadata = json!({ "name": name, "namespace": namespace });
    Api::<ServiceAccount>::namespaced(client.clone(), namespace)
        .patch(
            name,
            &params,
            &Patch::Apply(
                json!({ "apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata }),
            ),
        )
        .await?;
    Api::<Role>::namespaced(client.clone(), namespace)
        .patch(
            name,
            &params,
            &Patch::Apply(json!({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": metadata, "rules": rules,
            })),
        )
        .await?;
    Api::<RoleBinding>::namespaced(client.clone(), namespace)
        .patch(
            name,
            &params,
            &Patch::Apply(json!({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": metadata,
                "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name },
                "subjects": [{ "kind": "ServiceAccount", "name": name, "namespace": namespace }],
            })),
        )
        .await?;
    let secret_name = format!("{name}-token");
    let secrets = Api::<Secret>::namespaced(client.clone(), namespace);
    secrets
        .patch(
            &secret_name,
            &params,
            &Patch::Apply(json!({
                "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
                "metadata": {
                    "name": secret_name, "namespace": namespace,
                    "annotations": { "kubernetes.io/service-account.name": name },
                },
            })),
        )
        .await?;
    let token = wait_for_token(&secrets, &secret_name).await?;
    let path = users_dir.join(format!("{namespace}-{name}.kubeconfig"));
    access.write_kubeconfig(&path, name, &token)?;
    Ok(path)
}

async fn wait_for_token(secrets: &Api<Secret>, name: &str) -> Result<String, Error> {
    let deadline = Instant::now() + TOKEN_TIMEOUT;
    loop {
        let token = secrets
            .get_opt(name)
            .await?
            .and_then(|s| s.data)
            .and_then(|d| d.get("token").cloned())
            .and_then(|t| String::from_utf8(t.0).ok());
        if let Some(token) = token.filter(|t| !t.is_empty()) {
            return Ok(token);
        }
        if Instant::now() > deadline {
            return Err(Error::timeout(
                format!("the token of Secret {name}"),
                TOKEN_TIMEOUT,
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
