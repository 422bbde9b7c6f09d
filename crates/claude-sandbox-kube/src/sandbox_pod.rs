//! The running pod behind a Sandbox: what exec, tunnels and copies talk to.

use claude_sandbox_core::layout;
use k8s_openapi::api::core::v1::{Container, ContainerStatus, Pod};
use kube::Api;

use crate::{cluster::Cluster, error::Error, sandbox_ref::SandboxRef};

/// A Sandbox's pod, checked to be running its devcontainer.
#[derive(Clone)]
pub struct SandboxPod {
    pub api: Api<Pod>,
    /// The Sandbox's name, for messages.
    pub sandbox: String,
    pub name: String,
    /// The pod as it was found.
    pub pod: Pod,
    /// See [`Cluster::stdin_close`].
    pub stdin_close: bool,
}

impl SandboxPod {
    /// Finds the pod of `sandbox` and checks that its devcontainer runs.
    pub async fn resolve(cluster: &Cluster, sandbox: &SandboxRef) -> Result<Self, Error> {
        let state = sandbox.require(cluster).await?;
        let not_running = |reason: String| Error::NotRunning {
            name: sandbox.name.clone(),
            reason,
        };
        if state.suspended {
            return Err(not_running(format!(
                "it is suspended; start it with `claude-sandbox resume {} -n {}`",
                sandbox.name, cluster.namespace
            )));
        }
        let api: Api<Pod> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
        let name = state.pod_name();
        let pod = api
            .get_opt(&name)
            .await
            .map_err(|e| cluster.error(e))?
            .ok_or_else(|| {
                not_running(format!(
                    "it has no pod yet; `claude-sandbox status {} -n {}` shows why",
                    sandbox.name, cluster.namespace
                ))
            })?;
        let running = devcontainer_status(&pod)
            .is_some_and(|c| c.state.as_ref().is_some_and(|s| s.running.is_some()));
        if !running {
            let phase = pod
                .status
                .as_ref()
                .and_then(|s| s.phase.clone())
                .unwrap_or_else(|| "Pending".to_owned());
            return Err(not_running(format!(
                "its container {} is not running (pod {name} is {phase}); `claude-sandbox status {} -n {}` shows why",
                layout::CONTAINER_NAME,
                sandbox.name,
                cluster.namespace
            )));
        }
        Ok(Self {
            api,
            sandbox: sandbox.name.clone(),
            name,
            pod,
            stdin_close: cluster.stdin_close,
        })
    }

    /// The devcontainer's container spec.
    pub fn devcontainer(&self) -> Option<&Container> {
        self.pod
            .spec
            .as_ref()?
            .containers
            .iter()
            .find(|c| c.name == layout::CONTAINER_NAME)
    }

    /// The devcontainer's environment variables that come from a Secret key.
    pub fn secret_env(&self) -> Vec<SecretEnv> {
        self.devcontainer()
            .and_then(|c| c.env.as_ref())
            .into_iter()
            .flatten()
            .filter_map(|e| {
                let r = e.value_from.as_ref()?.secret_key_ref.as_ref()?;
                Some(SecretEnv {
                    variable: e.name.clone(),
                    secret: r.name.clone(),
                    key: r.key.clone(),
                })
            })
            .collect()
    }

    /// Why opening a stream (`pods/exec`, `pods/portforward`) failed: a missing permission, or
    /// the reason given, saying to do what (`doing`).
    pub(crate) fn stream_error(&self, error: kube::Error, subresource: &str, doing: &str) -> Error {
        match error {
            kube::Error::Api(status) if status.code == 403 => Error::Forbidden {
                verb: "create".to_owned(),
                resource: format!("pods/{subresource}"),
                scope: format!(" ({})", status.message),
            },
            e => Error::Access(format!(
                "cannot {doing} sandbox {} (pod {}): {e}",
                self.sandbox, self.name
            )),
        }
    }

    /// Whether the pod runs under gVisor, where the API server's port-forward does not work.
    pub fn is_gvisor(&self) -> bool {
        let class = self
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.runtime_class_name.as_deref());
        class.is_some() && class == claude_sandbox_core::Runtime::Gvisor.runtime_class()
    }
}

/// An environment variable taken from a Secret key (`valueFrom.secretKeyRef`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretEnv {
    pub variable: String,
    pub secret: String,
    pub key: String,
}

/// The status of the devcontainer's container in `pod`.
pub fn devcontainer_status(pod: &Pod) -> Option<&ContainerStatus> {
    pod.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .iter()
        .find(|c| c.name == layout::CONTAINER_NAME)
}
