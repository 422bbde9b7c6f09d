//! Users limited by RBAC, as permission tests need them.

use k8s_openapi::api::rbac::v1::PolicyRule;
use serde_json::json;

use crate::common::{cluster, describe, kubectl_as};

#[tokio::test]
async fn a_restricted_user_is_forbidden_what_rbac_forbids() {
    let cluster = cluster().await;
    let ns = cluster.create_namespace("rbac").await.unwrap();
    let other = cluster.create_namespace("rbac-other").await.unwrap();
    let rules: Vec<PolicyRule> = serde_json::from_value(json!([
        { "apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"] },
    ]))
    .unwrap();
    let kubeconfig = cluster.create_user("reader", &ns, &rules).await.unwrap();

    let allowed = kubectl_as(&kubeconfig, &["get", "pods", "-n", &ns]).await;
    assert!(allowed.status.success(), "{}", describe(&allowed));

    for args in [
        vec!["get", "secrets", "-n", &ns],
        vec!["get", "pods", "-n", &other],
        vec![
            "create",
            "deployment",
            "web",
            "-n",
            &ns,
            "--image=nginx:1.27",
        ],
        vec!["get", "nodes"],
    ] {
        let denied = kubectl_as(&kubeconfig, &args).await;
        assert!(
            !denied.status.success(),
            "kubectl {} was allowed",
            args.join(" ")
        );
        let stderr = String::from_utf8_lossy(&denied.stderr);
        assert!(
            stderr.contains("forbidden"),
            "kubectl {}: {}",
            args.join(" "),
            describe(&denied)
        );
    }
    let can_i = kubectl_as(&kubeconfig, &["auth", "can-i", "delete", "pods", "-n", &ns]).await;
    assert_eq!(String::from_utf8_lossy(&can_i.stdout).trim(), "no");
}
