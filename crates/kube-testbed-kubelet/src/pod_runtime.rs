//! What the kubelet API needs of a running pod: its directory, its containers' environment and
//! logs, its namespaces and where its ports lead, its live sessions, and a signal for when it goes
//! away.

use std::{
    collections::{BTreeMap, HashMap},
    path::{Path, PathBuf},
    sync::{Arc, OnceLock, RwLock},
};

use k8s_openapi::api::core::v1::{Container, EnvVar, Pod};
use tokio::net::TcpStream;
use tokio_util::sync::{CancellationToken, DropGuard, WaitForCancellationFuture};

use crate::{
    behaviour::Behaviour,
    container_env,
    container_log::ContainerLog,
    image_programs,
    network::{PodNamespaces, PodNetwork},
    stand_ins::StandIns,
    stream_sessions::{SessionTicket, StreamSessions},
};

#[derive(Debug)]
pub(crate) struct ContainerRuntime {
    pub image: String,
    declared_env: Vec<EnvVar>,
    /// The literal values until the container starts, then with `valueFrom` resolved.
    env: RwLock<Vec<(String, String)>>,
    pub log: ContainerLog,
}

/// What runs once the main containers have started.
#[derive(Debug)]
pub(crate) struct Started {
    pub network: PodNetwork,
    pub stand_ins: Option<StandIns>,
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
    /// The `PATH` of the pod's processes.
    path: String,
    started: OnceLock<Started>,
    streams: StreamSessions,
    stop: CancellationToken,
    /// Exec sessions, log followers and stand-ins end with the pod, also when it is just dropped.
    _stop_on_drop: DropGuard,
}

impl PodRuntime {
    /// `stop` ends the pod's sessions, init process and stand-ins.
    pub fn new(pod: &Pod, dir: PathBuf, behaviour: &Behaviour, stop: CancellationToken) -> Self {
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
            path: image_programs::path(&dir.join("bin"), &behaviour.missing_programs),
            dir,
            containers,
            forwards: behaviour.forwards.clone(),
            started: OnceLock::new(),
            streams: StreamSessions::default(),
            _stop_on_drop: stop.clone().drop_guard(),
            stop,
        }
    }

    pub fn container(&self, name: &str) -> Option<&ContainerRuntime> {
        self.containers.get(name)
    }

    /// `root/`: exec's working and home directory.
    pub fn root_dir(&self) -> PathBuf {
        self.dir.join("root")
    }

    /// `home/`: the pod user's home directory (with sshd's `.ssh/authorized_keys`).
    pub fn home_dir(&self) -> PathBuf {
        self.dir.join("home")
    }

    /// The `PATH` of the pod's processes.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Records what runs once the main containers have started (the first time they do).
    pub fn set_started(&self, started: Started) {
        let _ = self.started.set(started);
    }

    pub fn is_started(&self) -> bool {
        self.started.get().is_some()
    }

    /// The namespaces exec enters, when the pod has an init process.
    pub fn namespaces(&self) -> Option<&PodNamespaces> {
        match &self.started.get()?.network {
            PodNetwork::Namespaces(namespaces) => Some(namespaces),
            PodNetwork::Host => None,
        }
    }

    /// A token cancelled when the pod stops, for what runs with it.
    pub fn stop_token(&self) -> CancellationToken {
        self.stop.child_token()
    }

    /// Resolves when the pod goes away.
    pub fn stopped(&self) -> WaitForCancellationFuture<'_> {
        self.stop.cancelled()
    }

    /// Ends the pod's sessions and stand-ins.
    pub fn shutdown(&self) {
        self.stop.cancel();
    }

    /// Registers an exec or port-forward session for as long as the ticket is held.
    pub fn open_session(&self) -> SessionTicket {
        self.streams.open()
    }

    /// Ends the pod's exec and port-forward sessions; returns how many there were.
    pub fn drop_sessions(&self) -> usize {
        self.streams.drop_all()
    }

    /// Connects to what the pod's `port` leads to: the `forward-<port>` annotation's host port,
    /// else that port in the pod's network namespace, else (without one) the stand-in for that
    /// port. Errors read like the kubelet's.
    pub async fn dial(&self, port: u16) -> std::io::Result<TcpStream> {
        let fail = |message: String| {
            std::io::Error::other(format!(
                "error forwarding port {port} to pod {}/{}, uid {}: {message}",
                self.namespace, self.name, self.uid
            ))
        };
        let nothing_listens = || {
            fail(format!(
                "nothing listens on port {port}: kube-testbed forwards a pod's ports to \
                 stand-ins (13337, 2222) or to the port in annotation {}forward-{port}",
                crate::behaviour::PREFIX
            ))
        };
        let (network, target) = match (self.forwards.get(&port), self.started.get()) {
            (Some(local), _) => (&PodNetwork::Host, *local),
            (None, Some(started)) => match &started.network {
                PodNetwork::Namespaces(_) => (&started.network, port),
                PodNetwork::Host => match started.stand_ins.as_ref().and_then(|s| s.port_for(port))
                {
                    Some(Ok(local)) => (&started.network, local),
                    Some(Err(unavailable)) => return Err(fail(unavailable)),
                    None => return Err(nothing_listens()),
                },
            },
            (None, None) => return Err(nothing_listens()),
        };
        network
            .connect(target)
            .await
            .map_err(|error| fail(error.to_string()))
    }
}

impl ContainerRuntime {
    fn new(container: &Container, pod_dir: &Path) -> Self {
        let declared_env = container.env.clone().unwrap_or_default();
        Self {
            image: container.image.clone().unwrap_or_default(),
            env: RwLock::new(container_env::literal(&declared_env)),
            declared_env,
            log: ContainerLog::new(pod_dir, &container.name),
        }
    }

    /// The container's `env` as its spec declares it.
    pub fn declared_env(&self) -> &[EnvVar] {
        &self.declared_env
    }

    /// The container's environment (see [`ContainerRuntime::set_env`]).
    pub fn env(&self) -> Vec<(String, String)> {
        self.env.read().expect("container env lock").clone()
    }

    /// The environment resolved at the container's start.
    pub fn set_env(&self, env: Vec<(String, String)>) {
        *self.env.write().expect("container env lock") = env;
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
