//! What the kubelet API needs of a running pod: its directory, its containers' environment and
//! logs, where its ports lead, and a signal for when it goes away.

use std::{
    collections::{BTreeMap, HashMap},
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
};

use k8s_openapi::api::core::v1::{Container, Pod};
use tokio::net::TcpStream;
use tokio_util::sync::{CancellationToken, DropGuard, WaitForCancellationFuture};

use crate::{container_log::ContainerLog, stand_ins::StandIns};

#[derive(Debug)]
pub(crate) struct ContainerRuntime {
    pub image: String,
    /// The container's literal `env` values (`valueFrom` is not resolved).
    pub env: Vec<(String, String)>,
    pub log: ContainerLog,
}

#[derive(Debug)]
pub(crate) struct PodRuntime {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub dir: PathBuf,
    /// Init and main containers by name.
    containers: BTreeMap<String, ContainerRuntime>,
    forwards: BTreeMap<u16, u16>,
    stand_ins: Option<StandIns>,
    stop: CancellationToken,
    /// Exec sessions, log followers and stand-ins end with the pod, also when it is just dropped.
    _stop_on_drop: DropGuard,
}

impl PodRuntime {
    /// `stop` ends the pod's sessions and stand-ins (give the stand-ins a child of it).
    pub fn new(
        pod: &Pod,
        dir: PathBuf,
        forwards: BTreeMap<u16, u16>,
        stand_ins: Option<StandIns>,
        stop: CancellationToken,
    ) -> Self {
        let spec = pod.spec.as_ref();
        let containers = spec
            .into_iter()
            .flat_map(|spec| {
                spec.init_containers
                    .iter()
                    .flatten()
                    .chain(&spec.containers)
            })
            .map(|container| {
                (
                    container.name.clone(),
                    ContainerRuntime::new(container, &dir),
                )
            })
            .collect();
        Self {
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            name: pod.metadata.name.clone().unwrap_or_default(),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            dir,
            containers,
            forwards,
            stand_ins,
            _stop_on_drop: stop.clone().drop_guard(),
            stop,
        }
    }

    pub fn container(&self, name: &str) -> Option<&ContainerRuntime> {
        self.containers.get(name)
    }

    /// `bin/`: first on exec's `PATH`.
    pub fn bin_dir(&self) -> PathBuf {
        self.dir.join("bin")
    }

    /// `root/`: exec's working and home directory.
    pub fn root_dir(&self) -> PathBuf {
        self.dir.join("root")
    }

    /// Resolves when the pod goes away.
    pub fn stopped(&self) -> WaitForCancellationFuture<'_> {
        self.stop.cancelled()
    }

    /// Ends the pod's sessions and stand-ins.
    pub fn shutdown(&self) {
        self.stop.cancel();
    }

    /// Connects to what the pod's `port` leads to: the `forward-<port>` annotation's local port,
    /// else the stand-in for that port. Errors read like the kubelet's.
    pub async fn dial(&self, port: u16) -> std::io::Result<TcpStream> {
        let fail = |message: String| {
            std::io::Error::other(format!(
                "error forwarding port {port} to pod {}/{}, uid {}: {message}",
                self.namespace, self.name, self.uid
            ))
        };
        let target = match self.forwards.get(&port) {
            Some(local) => *local,
            None => match self.stand_ins.as_ref().and_then(|s| s.port_for(port)) {
                Some(Ok(local)) => local,
                Some(Err(unavailable)) => return Err(fail(unavailable)),
                None => {
                    return Err(fail(format!(
                        "nothing listens on port {port}: kube-testbed forwards a pod's ports to \
                         stand-ins (13337, 2222) or to the port in annotation {}forward-{port}",
                        crate::behaviour::PREFIX
                    )));
                }
            },
        };
        TcpStream::connect(("127.0.0.1", target))
            .await
            .map_err(|error| fail(format!("dial tcp 127.0.0.1:{target}: {error}")))
    }
}

impl ContainerRuntime {
    fn new(container: &Container, pod_dir: &Path) -> Self {
        let env = container
            .env
            .iter()
            .flatten()
            .filter_map(|var| Some((var.name.clone(), var.value.clone()?)))
            .collect();
        Self {
            image: container.image.clone().unwrap_or_default(),
            env,
            log: ContainerLog::new(pod_dir, &container.name),
        }
    }
}

/// The pods this kubelet runs, by namespace and name.
#[derive(Debug, Default)]
pub(crate) struct PodRegistry {
    pods: RwLock<HashMap<(String, String), Arc<PodRuntime>>>,
}

impl PodRegistry {
    pub fn insert(&self, pod: Arc<PodRuntime>) {
        let key = (pod.namespace.clone(), pod.name.clone());
        self.pods
            .write()
            .expect("pod registry lock")
            .insert(key, pod);
    }

    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<PodRuntime>> {
        let key = (namespace.to_owned(), name.to_owned());
        self.pods
            .read()
            .expect("pod registry lock")
            .get(&key)
            .cloned()
    }

    /// Removes the pod if it is still the one with `uid` (a successor of the same name stays).
    pub fn remove(&self, namespace: &str, name: &str, uid: &str) -> Option<Arc<PodRuntime>> {
        let key = (namespace.to_owned(), name.to_owned());
        let mut pods = self.pods.write().expect("pod registry lock");
        if pods.get(&key).is_some_and(|pod| pod.uid == uid) {
            pods.remove(&key)
        } else {
            None
        }
    }
}
