//! A pod's status as this kubelet reports it: container states, phase, IPs and the conditions
//! derived from them, with `lastTransitionTime` moving only on a change.

use std::{
    hash::{DefaultHasher, Hash, Hasher},
    net::Ipv4Addr,
};

use k8s_openapi::{
    api::core::v1::{
        ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
        ContainerStatus, Pod, PodCondition, PodIP, PodStatus,
    },
    apimachinery::pkg::apis::meta::v1::Time,
    jiff::Timestamp,
};

const CREATING: &str = "ContainerCreating";
const HOST_IP: &str = "127.0.0.1";

/// Where a pod this kubelet finds was left (by an earlier run of the kubelet, or by none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResumePoint {
    /// Never started here: from the beginning.
    Fresh,
    /// Its main containers run, since the given time.
    Running(Timestamp),
    /// Running, its containers between runs of a crash loop.
    Restarting,
    /// Succeeded or Failed.
    Finished,
}

#[derive(Debug, Clone)]
pub(crate) struct StatusModel {
    status: PodStatus,
}

impl StatusModel {
    /// The pod's status as it stands, with a waiting status for each container without one.
    pub fn new(pod: &Pod) -> Self {
        let mut status = pod.status.clone().unwrap_or_default();
        let spec = pod.spec.clone().unwrap_or_default();
        let complete =
            |statuses: Option<Vec<ContainerStatus>>,
             containers: &[k8s_openapi::api::core::v1::Container]| {
                let statuses = statuses.unwrap_or_default();
                containers
                    .iter()
                    .map(|container| {
                        statuses
                            .iter()
                            .find(|s| s.name == container.name)
                            .cloned()
                            .unwrap_or_else(|| {
                                let image = container.image.clone().unwrap_or_default();
                                ContainerStatus {
                                    name: container.name.clone(),
                                    image_id: image_id(&image),
                                    image,
                                    state: Some(waiting(CREATING, None)),
                                    ..ContainerStatus::default()
                                }
                            })
                    })
                    .collect::<Vec<_>>()
            };
        let init = complete(
            status.init_container_statuses.take(),
            spec.init_containers.as_deref().unwrap_or_default(),
        );
        status.init_container_statuses = (!init.is_empty()).then_some(init);
        status.container_statuses =
            Some(complete(status.container_statuses.take(), &spec.containers));
        Self { status }
    }

    pub fn resume_point(&self) -> ResumePoint {
        let ours = self.main().iter().all(|c| {
            c.container_id
                .as_deref()
                .is_some_and(|id| id.starts_with(CONTAINER_ID_SCHEME))
        });
        match self.status.phase.as_deref() {
            Some("Succeeded" | "Failed") => ResumePoint::Finished,
            Some("Running") if ours => {
                let started: Option<Vec<Timestamp>> = self
                    .main()
                    .iter()
                    .map(|c| {
                        c.state
                            .as_ref()?
                            .running
                            .as_ref()?
                            .started_at
                            .as_ref()
                            .map(|t| t.0)
                    })
                    .collect();
                match started.and_then(|times| times.into_iter().min()) {
                    Some(since) => ResumePoint::Running(since),
                    None => ResumePoint::Restarting,
                }
            }
            _ => ResumePoint::Fresh,
        }
    }

    /// The pod as accepted: Pending, start time, host IP, containers waiting to be created.
    pub fn accept(&mut self) {
        self.status.phase = Some("Pending".to_owned());
        self.status.host_ip = Some(HOST_IP.to_owned());
        self.status.start_time.get_or_insert_with(now);
        for status in self.all_mut() {
            *status = ContainerStatus {
                name: std::mem::take(&mut status.name),
                image: std::mem::take(&mut status.image),
                image_id: std::mem::take(&mut status.image_id),
                state: Some(waiting(CREATING, None)),
                ..ContainerStatus::default()
            };
        }
    }

    pub fn set_phase(&mut self, phase: &str) {
        self.status.phase = Some(phase.to_owned());
    }

    pub fn set_pod_ip(&mut self, ip: Ipv4Addr) {
        self.status.pod_ip = Some(ip.to_string());
        self.status.pod_ips = Some(vec![PodIP { ip: ip.to_string() }]);
    }

    pub fn main_names(&self) -> Vec<String> {
        self.main().iter().map(|c| c.name.clone()).collect()
    }

    pub fn init_names(&self) -> Vec<String> {
        self.status
            .init_container_statuses
            .iter()
            .flatten()
            .map(|c| c.name.clone())
            .collect()
    }

    pub fn restart_count(&self, name: &str) -> i32 {
        self.find(name).map_or(0, |c| c.restart_count)
    }

    /// Waiting with `reason` (and `message`).
    pub fn wait(&mut self, name: &str, reason: &str, message: Option<String>) {
        if let Some(status) = self.find_mut(name) {
            status.state = Some(waiting(reason, message));
            status.ready = false;
            status.started = Some(false);
        }
    }

    /// Running since `at`; a container that ran before counts a restart, its last run becoming
    /// `lastState`.
    pub fn start(&mut self, name: &str, pod_uid: &str, at: Timestamp) {
        if let Some(status) = self.find_mut(name) {
            remember_last_run(status);
            if status.container_id.is_some() {
                status.restart_count += 1;
            }
            let run = status.restart_count.to_string();
            status.container_id = Some(format!(
                "{CONTAINER_ID_SCHEME}{}",
                digest(&[pod_uid, name, &run])
            ));
            status.state = Some(ContainerState {
                running: Some(ContainerStateRunning {
                    started_at: Some(Time(at)),
                }),
                ..ContainerState::default()
            });
            status.started = Some(true);
            status.ready = false;
        }
    }

    pub fn set_ready(&mut self, name: &str) {
        if let Some(status) = self.find_mut(name) {
            status.ready = true;
        }
    }

    /// Terminated with `exit_code` now.
    pub fn terminate(&mut self, name: &str, exit_code: i32) {
        if let Some(status) = self.find_mut(name) {
            let started_at = status
                .state
                .as_ref()
                .and_then(|s| s.running.as_ref())
                .and_then(|r| r.started_at.clone());
            status.state = Some(ContainerState {
                terminated: Some(ContainerStateTerminated {
                    exit_code,
                    reason: Some(if exit_code == 0 { "Completed" } else { "Error" }.to_owned()),
                    started_at,
                    finished_at: Some(now()),
                    container_id: status.container_id.clone(),
                    ..ContainerStateTerminated::default()
                }),
                ..ContainerState::default()
            });
            status.ready = false;
            status.started = Some(false);
        }
    }

    /// Waiting to restart after a crash: `CrashLoopBackOff`, the crash as `lastState`.
    pub fn back_off(&mut self, name: &str, message: String) {
        if let Some(status) = self.find_mut(name) {
            remember_last_run(status);
        }
        self.wait(name, "CrashLoopBackOff", Some(message));
    }

    /// The status to send, its conditions brought up to date.
    pub fn render(&mut self) -> PodStatus {
        let initialized = self
            .status
            .init_container_statuses
            .iter()
            .flatten()
            .filter(|c| {
                c.state
                    .as_ref()
                    .and_then(|s| s.terminated.as_ref())
                    .is_none_or(|t| t.exit_code != 0)
            })
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>();
        let unready = self
            .main()
            .iter()
            .filter(|c| !c.ready)
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>();
        let finished = matches!(self.status.phase.as_deref(), Some("Succeeded" | "Failed"));
        let initialized = condition_values(
            &initialized,
            "ContainersNotInitialized",
            "containers with incomplete status",
        );
        let ready = if finished {
            ("False", Some("PodCompleted".to_owned()), None)
        } else {
            condition_values(
                &unready,
                "ContainersNotReady",
                "containers with unready status",
            )
        };
        let mut conditions = self.status.conditions.take().unwrap_or_default();
        set_condition(&mut conditions, "Initialized", initialized);
        set_condition(&mut conditions, "Ready", ready.clone());
        set_condition(&mut conditions, "ContainersReady", ready);
        if !conditions.iter().any(|c| c.type_ == "PodScheduled") {
            set_condition(&mut conditions, "PodScheduled", ("True", None, None));
        }
        self.status.conditions = Some(conditions);
        self.status.clone()
    }

    fn main(&self) -> &[ContainerStatus] {
        self.status
            .container_statuses
            .as_deref()
            .unwrap_or_default()
    }

    fn all_mut(&mut self) -> impl Iterator<Item = &mut ContainerStatus> {
        let init = self.status.init_container_statuses.iter_mut().flatten();
        init.chain(self.status.container_statuses.iter_mut().flatten())
    }

    fn find(&self, name: &str) -> Option<&ContainerStatus> {
        let init = self.status.init_container_statuses.iter().flatten();
        init.chain(self.main()).find(|c| c.name == name)
    }

    fn find_mut(&mut self, name: &str) -> Option<&mut ContainerStatus> {
        self.all_mut().find(|c| c.name == name)
    }
}

/// The scheme of the container IDs this kubelet makes up.
const CONTAINER_ID_SCHEME: &str = "testbed://";

/// A terminated run becomes `lastState`.
fn remember_last_run(status: &mut ContainerStatus) {
    if let Some(terminated) = status.state.as_ref().and_then(|s| s.terminated.clone()) {
        status.last_state = Some(ContainerState {
            terminated: Some(terminated),
            ..ContainerState::default()
        });
    }
}

fn now() -> Time {
    Time(Timestamp::now())
}

fn waiting(reason: &str, message: Option<String>) -> ContainerState {
    ContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason.to_owned()),
            message,
        }),
        ..ContainerState::default()
    }
}

/// True, or False with `reason` and the kubelet's `<what>: [a b]` message.
fn condition_values(
    pending: &[&str],
    reason: &str,
    what: &str,
) -> (&'static str, Option<String>, Option<String>) {
    if pending.is_empty() {
        ("True", None, None)
    } else {
        (
            "False",
            Some(reason.to_owned()),
            Some(format!("{what}: [{}]", pending.join(" "))),
        )
    }
}

fn set_condition(
    conditions: &mut Vec<PodCondition>,
    type_: &str,
    (status, reason, message): (&str, Option<String>, Option<String>),
) {
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(condition) => {
            if condition.status != status {
                condition.status = status.to_owned();
                condition.last_transition_time = Some(now());
            }
            condition.reason = reason;
            condition.message = message;
        }
        None => conditions.push(PodCondition {
            type_: type_.to_owned(),
            status: status.to_owned(),
            reason,
            message,
            last_transition_time: Some(now()),
            ..PodCondition::default()
        }),
    }
}

/// `<repository>@sha256:<digest>`, a made-up but stable digest per image.
fn image_id(image: &str) -> String {
    let repository = image.split('@').next().unwrap_or(image);
    let repository = match repository.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => name,
        _ => repository,
    };
    format!("{repository}@sha256:{}", digest(&[image]))
}

/// 64 hex digits, stable for the same parts.
fn digest(parts: &[&str]) -> String {
    (0u8..4)
        .map(|round| {
            let mut hasher = DefaultHasher::new();
            parts.hash(&mut hasher);
            round.hash(&mut hasher);
            format!("{:016x}", hasher.finish())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{Container, PodSpec};

    use super::*;

    /// Why `container` waits, as its status says.
    fn waiting_reason(container: &ContainerStatus) -> Option<&str> {
        container
            .state
            .as_ref()?
            .waiting
            .as_ref()?
            .reason
            .as_deref()
    }

    fn pod() -> Pod {
        let container = |name: &str| Container {
            name: name.to_owned(),
            image: Some("registry.example/app:1.0".to_owned()),
            ..Container::default()
        };
        Pod {
            spec: Some(PodSpec {
                init_containers: Some(vec![container("init")]),
                containers: vec![container("main")],
                ..PodSpec::default()
            }),
            ..Pod::default()
        }
    }

    fn condition(status: &PodStatus, type_: &str) -> PodCondition {
        status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == type_)
            .cloned()
            .unwrap()
    }

    #[test]
    fn a_pod_goes_from_pending_to_ready_to_crashing() {
        let mut model = StatusModel::new(&pod());
        assert_eq!(model.resume_point(), ResumePoint::Fresh);
        model.accept();
        let pending = model.render();
        assert_eq!(pending.phase.as_deref(), Some("Pending"));
        let main = &pending.container_statuses.as_ref().unwrap()[0];
        assert_eq!(waiting_reason(main), Some("ContainerCreating"));
        assert!(
            main.image_id.starts_with("registry.example/app@sha256:")
                && main.image_id.len() == 28 + 64
        );
        assert_eq!(
            condition(&pending, "Initialized").message.as_deref(),
            Some("containers with incomplete status: [init]")
        );
        assert_eq!(condition(&pending, "PodScheduled").status, "True");

        model.start("init", "uid", Timestamp::now());
        model.terminate("init", 0);
        model.set_phase("Running");
        model.set_pod_ip(Ipv4Addr::new(127, 1, 0, 7));
        model.start("main", "uid", Timestamp::now());
        let running = model.render();
        assert_eq!(condition(&running, "Initialized").status, "True");
        assert_eq!(
            condition(&running, "Ready").message.as_deref(),
            Some("containers with unready status: [main]")
        );
        assert!(matches!(model.resume_point(), ResumePoint::Running(_)));
        let ready_since = condition(&running, "Ready").last_transition_time;

        model.set_ready("main");
        let ready = model.render();
        assert_eq!(
            (
                condition(&ready, "Ready").status.as_str(),
                condition(&ready, "ContainersReady").status.as_str()
            ),
            ("True", "True")
        );
        assert_ne!(
            condition(&ready, "Ready").last_transition_time,
            ready_since,
            "a change moves the time"
        );
        let again = model.render();
        assert_eq!(
            condition(&again, "Ready").last_transition_time,
            condition(&ready, "Ready").last_transition_time
        );
        assert_eq!(ready.pod_ips.as_ref().unwrap()[0].ip, "127.1.0.7");
        let main = &ready.container_statuses.as_ref().unwrap()[0];
        assert!(
            main.container_id
                .as_deref()
                .unwrap()
                .starts_with("testbed://")
        );
        assert_eq!((main.started, main.restart_count), (Some(true), 0));

        model.terminate("main", 3);
        model.back_off("main", "back-off".to_owned());
        assert_eq!(model.resume_point(), ResumePoint::Restarting);
        let crashed = model.render();
        let main = &crashed.container_statuses.as_ref().unwrap()[0];
        assert_eq!(waiting_reason(main), Some("CrashLoopBackOff"));
        let last = main
            .last_state
            .as_ref()
            .unwrap()
            .terminated
            .as_ref()
            .unwrap();
        assert_eq!((last.exit_code, last.reason.as_deref()), (3, Some("Error")));
        assert_eq!(condition(&crashed, "Ready").status, "False");

        let first_id = main.container_id.clone();
        model.start("main", "uid", Timestamp::now());
        let restarted = model.render();
        let main = &restarted.container_statuses.as_ref().unwrap()[0];
        assert_eq!(main.restart_count, 1);
        assert_ne!(main.container_id, first_id);
        assert_eq!(model.restart_count("main"), 1);
    }

    #[test]
    fn finished_pods_are_not_ready_with_pod_completed() {
        let mut model = StatusModel::new(&pod());
        model.accept();
        model.start("main", "uid", Timestamp::now());
        model.terminate("main", 0);
        model.set_phase("Succeeded");
        let status = model.render();
        assert_eq!(
            condition(&status, "Ready").reason.as_deref(),
            Some("PodCompleted")
        );
        assert_eq!(model.resume_point(), ResumePoint::Finished);
    }
}
