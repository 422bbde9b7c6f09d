//! The objects every testbed starts with: the default StorageClass, the RuntimeClasses of the
//! hardened runtimes, and the (empty) behaviour rules of the fake kubelet; and the wait for the
//! controller manager's first work, the `default` ServiceAccount with its token.

use std::time::{Duration, Instant};

use k8s_openapi::api::{
    core::v1::ServiceAccount, node::v1::RuntimeClass, storage::v1::StorageClass,
};
use kube::{
    Api, Client,
    api::{Patch, PatchParams},
};
use serde_json::json;

use crate::{behaviours, error::Error, provisioner::PROVISIONER};

/// The field manager of everything the testbed writes.
pub(crate) const FIELD_MANAGER: &str = "kube-testbed";

/// The default StorageClass: bound at once by the testbed's provisioner.
pub const STORAGE_CLASS: &str = "standard";

/// RuntimeClasses a sandbox may ask for (`gvisor`, and Kata as `kata-qemu`), with the handlers a
/// real node would configure.
const RUNTIME_CLASSES: [(&str, &str); 2] = [("gvisor", "runsc"), ("kata-qemu", "kata-qemu")];

const SERVICE_ACCOUNT_TIMEOUT: Duration = Duration::from_secs(60);

/// Creates the StorageClass, the RuntimeClasses and the behaviours ConfigMap.
pub(crate) async fn install(client: &Client) -> Result<(), Error> {
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let storage_class = json!({
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": STORAGE_CLASS,
            "annotations": { "storageclass.kubernetes.io/is-default-class": "true" },
        },
        "provisioner": PROVISIONER,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "Immediate",
        "allowVolumeExpansion": true,
    });
    Api::<StorageClass>::all(client.clone())
        .patch(STORAGE_CLASS, &params, &Patch::Apply(&storage_class))
        .await?;
    let runtime_classes = Api::<RuntimeClass>::all(client.clone());
    for (name, handler) in RUNTIME_CLASSES {
        let runtime_class = json!({
            "apiVersion": "node.k8s.io/v1",
            "kind": "RuntimeClass",
            "metadata": { "name": name },
            "handler": handler,
        });
        runtime_classes
            .patch(name, &params, &Patch::Apply(&runtime_class))
            .await?;
    }
    behaviours::set_rules(client, &[]).await
}

/// Waits until `namespace` has its `default` ServiceAccount and, when `with_token` (clusters before
/// 1.22, like the testbed's 1.20), that account's token Secret: until then the ServiceAccount
/// admission plugin rejects pods there.
pub async fn wait_for_default_service_account(
    client: &Client,
    namespace: &str,
    with_token: bool,
) -> Result<(), Error> {
    let accounts = Api::<ServiceAccount>::namespaced(client.clone(), namespace);
    let deadline = Instant::now() + SERVICE_ACCOUNT_TIMEOUT;
    loop {
        if let Some(account) = accounts.get_opt("default").await?
            && (!with_token || account.secrets.is_some_and(|s| !s.is_empty()))
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Error::timeout(
                format!("the default ServiceAccount of namespace {namespace}"),
                SERVICE_ACCOUNT_TIMEOUT,
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
