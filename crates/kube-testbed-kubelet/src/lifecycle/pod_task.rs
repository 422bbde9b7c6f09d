//! One pod on this kubelet, from first sight to its end: directory, behaviour and the runtime the
//! API serves, the simulation of its containers (which starts its init process and stand-ins);
//! then, once it is deleted, stopping everything and finishing the deletion as a kubelet does.

use std::{net::Ipv4Addr, sync::Arc};

use k8s_openapi::api::core::v1::Pod;
use kube::{
    Api, Client,
    api::{DeleteParams, Preconditions},
};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::{pod_start::PodStart, simulation::Simulation};
use crate::{
    behaviour::{Behaviour, rules},
    config::{KubeletConfig, pod_dir},
    error::Error,
    image_programs,
    pod_runtime::{PodRegistry, PodRuntime},
    stand_ins::Wanted,
};

/// Why a pod's task stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The pod is gone from the API.
    Gone,
    /// The pod has a deletion timestamp: stop, then delete it for good.
    Terminate,
}

pub(crate) struct PodTask {
    pub client: Client,
    pub config: Arc<KubeletConfig>,
    pub registry: Arc<PodRegistry>,
    pub pod: Pod,
    pub pod_ip: Ipv4Addr,
    /// Whether pods with stand-ins get namespaces of their own (the kubelet runs as root).
    pub namespaces: bool,
}

impl PodTask {
    pub async fn run(self, stop: oneshot::Receiver<Stop>) {
        let namespace = self.pod.metadata.namespace.clone().unwrap_or_default();
        let name = self.pod.metadata.name.clone().unwrap_or_default();
        let uid = self.pod.metadata.uid.clone().unwrap_or_default();
        // Cancelled however this task ends: the pod's stand-ins and sessions end with it.
        let pod_stop = CancellationToken::new();
        let _stop_on_drop = pod_stop.clone().drop_guard();
        let live = async {
            if let Err(error) = self.live(pod_stop.clone()).await {
                tracing::error!(%error, pod = %format!("{namespace}/{name}"), "running the pod");
            }
            std::future::pending::<()>().await;
        };
        let reason = tokio::select! {
            biased;
            reason = stop => reason.unwrap_or(Stop::Gone),
            () = live => unreachable!("the pod lives until stopped"),
        };
        pod_stop.cancel();
        if let Some(runtime) = self.registry.remove(&namespace, &name, &uid) {
            runtime.shutdown();
        }
        if reason == Stop::Terminate {
            finish_deletion(&self.client, &namespace, &name, &uid).await;
        }
    }

    async fn live(&self, stop: CancellationToken) -> Result<(), Error> {
        let pod = &self.pod;
        let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        let dir = pod_dir(&self.config.pods_dir, namespace, name);
        for sub in ["bin", "root", "home"] {
            let path = dir.join(sub);
            tokio::fs::create_dir_all(&path)
                .await
                .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
        }
        let rules = rules::fetch(&self.client).await;
        let annotations = pod.metadata.annotations.clone().unwrap_or_default();
        let (behaviour, warnings) = Behaviour::resolve(namespace, name, &annotations, &rules);
        for warning in warnings {
            tracing::warn!(pod = %format!("{namespace}/{name}"), "{warning}");
        }
        image_programs::link(&dir.join("bin"), &behaviour.missing_programs).await?;
        let stand_ins = behaviour
            .stand_ins
            .unwrap_or(self.config.stand_ins)
            .then(|| Wanted {
                code_server: behaviour.stand_in_code_server,
                sshd: behaviour.stand_in_sshd,
                claude: !behaviour.missing_programs.contains("claude"),
            });
        let start = PodStart {
            client: self.client.clone(),
            namespaces: self.namespaces && stand_ins.is_some(),
            stand_ins,
        };
        let runtime = Arc::new(PodRuntime::new(pod, dir, &behaviour, stop));
        self.registry.insert(runtime.clone());
        let api = Api::namespaced(self.client.clone(), namespace);
        Simulation::new(api, pod, runtime, behaviour, start, self.pod_ip)
            .run()
            .await
    }
}

/// Deletes the pod with grace period 0, as a kubelet does once its containers are stopped; the
/// UID precondition spares a successor of the same name. A pod already gone is fine.
async fn finish_deletion(client: &Client, namespace: &str, name: &str, uid: &str) {
    let params = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: Some(uid.to_owned()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match Api::<Pod>::namespaced(client.clone(), namespace)
        .delete(name, &params)
        .await
    {
        Ok(_) => tracing::debug!(pod = %format!("{namespace}/{name}"), "deleted"),
        Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => {}
        Err(error) => {
            tracing::warn!(%error, pod = %format!("{namespace}/{name}"), "finishing the deletion")
        }
    }
}
