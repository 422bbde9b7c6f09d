//! Installing agent-sandbox: the CRDs (from a directory, adapted for 1.20) and the controller's
//! objects (every non-CRD object of a release manifest), as written. The controller's pod, made
//! Ready by the fake kubelet or, on a real node, running the controller placeholder image that the
//! testbed's registry serves under the upstream image's name, is what lets the simulated controller
//! work, as the real one would.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use kube::{Api, Client};

use crate::{
    apply::{self, ManifestObject},
    error::Error,
};

const CONTROLLER_TIMEOUT: Duration = Duration::from_secs(90);

/// Applies the CRDs of `crds` (a directory or file) and the non-CRD objects of
/// `controller_manifest`. Returns the controller's workload, to wait for.
pub(crate) async fn install(
    client: &Client,
    crds: Option<&Path>,
    controller_manifest: Option<&Path>,
) -> Result<Option<Workload>, Error> {
    let mut objects: Vec<ManifestObject> = Vec::new();
    if let Some(crds) = crds {
        objects.extend(
            apply::load(crds)?
                .into_iter()
                .filter(ManifestObject::is_crd),
        );
    }
    let mut workload = None;
    if let Some(manifest) = controller_manifest {
        let controller: Vec<ManifestObject> = apply::load(manifest)?
            .into_iter()
            .filter(|o| !o.is_crd())
            .collect();
        workload = controller.iter().find_map(Workload::of);
        if workload.is_none() {
            return Err(Error::Manifest {
                path: manifest.to_owned(),
                message: "it has no controller Deployment or StatefulSet".to_owned(),
            });
        }
        objects.extend(controller);
    }
    apply::apply(client, &objects).await?;
    Ok(workload)
}

/// The controller's Deployment (current releases) or StatefulSet (v0.1.0).
#[derive(Debug, Clone)]
pub(crate) struct Workload {
    kind: String,
    namespace: String,
    name: String,
}

impl Workload {
    fn of(object: &ManifestObject) -> Option<Self> {
        let kind = object.kind();
        (kind == "Deployment" || kind == "StatefulSet").then(|| Self {
            kind: kind.to_owned(),
            namespace: object.object["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default")
                .to_owned(),
            name: object.object["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        })
    }

    /// Waits until the workload has a ready replica (its pod was scheduled and made Ready).
    pub async fn wait_ready(&self, client: &Client) -> Result<(), Error> {
        let deadline = Instant::now() + CONTROLLER_TIMEOUT;
        loop {
            let ready = if self.kind == "Deployment" {
                let deployment = Api::<Deployment>::namespaced(client.clone(), &self.namespace)
                    .get_opt(&self.name)
                    .await?;
                deployment
                    .and_then(|d| d.status)
                    .and_then(|s| s.available_replicas)
                    .unwrap_or(0)
                    > 0
            } else {
                let set = Api::<StatefulSet>::namespaced(client.clone(), &self.namespace)
                    .get_opt(&self.name)
                    .await?;
                set.and_then(|s| s.status)
                    .and_then(|s| s.ready_replicas)
                    .unwrap_or(0)
                    > 0
            };
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(Error::timeout(
                    format!(
                        "the agent-sandbox controller {} {}/{} to be ready",
                        self.kind, self.namespace, self.name
                    ),
                    CONTROLLER_TIMEOUT,
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
