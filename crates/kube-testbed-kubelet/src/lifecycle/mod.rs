//! The pod lifecycle: a watch of the pods bound to this node, one task per pod.

mod ip_pool;
mod pod_start;
mod pod_task;
mod simulation;
mod status;

use std::{
    collections::{HashMap, HashSet},
    net::Ipv4Addr,
    sync::Arc,
};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::{
    Api, Client,
    runtime::{WatchStreamExt, watcher},
};
use tokio::{sync::oneshot, task::JoinSet};

use self::{
    ip_pool::IpPool,
    pod_task::{PodTask, Stop},
};
use crate::{config::KubeletConfig, error::Error, pod_runtime::PodRegistry};

type PodKey = (String, String);

/// A pod with a task.
struct Tracked {
    uid: String,
    /// Taken once the task is told to stop.
    stop: Option<oneshot::Sender<Stop>>,
    ip: Ipv4Addr,
}

pub(crate) struct Lifecycle {
    client: Client,
    config: Arc<KubeletConfig>,
    registry: Arc<PodRegistry>,
    pods: HashMap<PodKey, Tracked>,
    tasks: JoinSet<()>,
    ips: IpPool,
    /// Pods with stand-ins get namespaces of their own (the kubelet runs as root).
    namespaces: bool,
}

impl Lifecycle {
    pub fn new(
        client: Client,
        config: Arc<KubeletConfig>,
        registry: Arc<PodRegistry>,
        namespaces: bool,
    ) -> Self {
        Self {
            client,
            config,
            registry,
            pods: HashMap::new(),
            tasks: JoinSet::new(),
            ips: IpPool::default(),
            namespaces,
        }
    }

    /// Watches the node's pods until the watch ends (it retries with backoff on errors); pods
    /// found at start are adopted. Dropping this stops every pod's task.
    pub async fn run(mut self) -> Result<(), Error> {
        let api = Api::<Pod>::all(self.client.clone());
        let selector = format!("spec.nodeName={}", self.config.node_name);
        let events = watcher(api, watcher::Config::default().fields(&selector)).default_backoff();
        let mut events = std::pin::pin!(events);
        // The pods of the current (re)list, applied together once it is complete.
        let mut listed: Vec<Pod> = Vec::new();
        loop {
            tokio::select! {
                event = events.next() => match event {
                    None => return Err(Error::WatchEnded),
                    Some(Err(error)) => tracing::warn!(%error, "watching pods; retrying"),
                    Some(Ok(watcher::Event::Init)) => listed.clear(),
                    Some(Ok(watcher::Event::InitApply(pod))) => listed.push(pod),
                    Some(Ok(watcher::Event::InitDone)) => self.apply_list(std::mem::take(&mut listed)),
                    Some(Ok(watcher::Event::Apply(pod))) => self.apply(pod),
                    Some(Ok(watcher::Event::Delete(pod))) => {
                        let key = key(&pod);
                        if self.pods.get(&key).is_some_and(|t| Some(&t.uid) == pod.metadata.uid.as_ref()) {
                            self.forget(&key);
                        }
                    }
                },
                Some(_) = self.tasks.join_next(), if !self.tasks.is_empty() => {}
            }
        }
    }

    /// A complete list of the node's pods: those not in it are gone; the IPs the others already
    /// have are all reserved before any pod gets a new one.
    fn apply_list(&mut self, pods: Vec<Pod>) {
        let listed: HashSet<PodKey> = pods.iter().map(key).collect();
        let gone: Vec<PodKey> = self
            .pods
            .keys()
            .filter(|k| !listed.contains(*k))
            .cloned()
            .collect();
        for key in gone {
            self.forget(&key);
        }
        let mut reserved = HashMap::new();
        for pod in pods.iter().filter(|pod| !self.pods.contains_key(&key(pod))) {
            if let Some(ip) = pod_ip(pod).and_then(|ip| self.ips.reserve(ip)) {
                reserved.insert(key(pod), ip);
            }
        }
        for pod in pods {
            let ip = reserved.remove(&key(&pod));
            self.apply_with_ip(pod, ip);
        }
    }

    fn apply(&mut self, pod: Pod) {
        let ip = if self.pods.contains_key(&key(&pod)) {
            None
        } else {
            pod_ip(&pod).and_then(|ip| self.ips.reserve(ip))
        };
        self.apply_with_ip(pod, ip);
    }

    /// Tells a tracked pod's task that the pod is terminating, or starts a task for a new pod with
    /// `ip` (reserved for it) or a new IP.
    fn apply_with_ip(&mut self, pod: Pod, reserved_ip: Option<Ipv4Addr>) {
        let key = key(&pod);
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        if self.pods.get(&key).is_some_and(|t| t.uid != uid) {
            // A successor of the same name: the old pod went while the watch was not looking.
            self.forget(&key);
        }
        let terminating = pod.metadata.deletion_timestamp.is_some();
        if let Some(tracked) = self.pods.get_mut(&key) {
            if terminating && let Some(stop) = tracked.stop.take() {
                let _ = stop.send(Stop::Terminate);
            }
            return;
        }
        let ip = reserved_ip.unwrap_or_else(|| self.ips.allocate());
        let (stop, stopped) = oneshot::channel();
        let stop = if terminating {
            let _ = stop.send(Stop::Terminate);
            None
        } else {
            Some(stop)
        };
        let task = PodTask {
            client: self.client.clone(),
            config: self.config.clone(),
            registry: self.registry.clone(),
            pod,
            pod_ip: ip,
            namespaces: self.namespaces,
        };
        self.tasks.spawn(task.run(stopped));
        self.pods.insert(key, Tracked { uid, stop, ip });
    }

    /// The pod is gone from the API: its task stops, its IP is free again.
    fn forget(&mut self, key: &PodKey) {
        if let Some(tracked) = self.pods.remove(key) {
            if let Some(stop) = tracked.stop {
                let _ = stop.send(Stop::Gone);
            }
            self.ips.release(tracked.ip);
        }
    }
}

/// The IP a pod already has (from an earlier run of this kubelet).
fn pod_ip(pod: &Pod) -> Option<&str> {
    pod.status.as_ref()?.pod_ip.as_deref()
}

fn key(pod: &Pod) -> PodKey {
    (
        pod.metadata.namespace.clone().unwrap_or_default(),
        pod.metadata.name.clone().unwrap_or_default(),
    )
}
