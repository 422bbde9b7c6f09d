//! Why a sandbox is not starting, in the words `kubectl describe` would use: container waiting
//! reasons, warning events, the last log lines.

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::{
    Api,
    api::{ListParams, LogParams},
};

use crate::cluster::Cluster;

/// Waiting reasons that do not go away by waiting.
const FATAL_REASONS: [&str; 7] = [
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
    "CrashLoopBackOff",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

/// The first container that waits or has terminated badly, as `Reason (message)`.
pub fn container_problem(pod: &Pod) -> Option<String> {
    let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
    statuses.iter().find_map(|status| {
        let state = status.state.as_ref()?;
        if let Some(waiting) = &state.waiting {
            let reason = waiting.reason.clone()?;
            if reason == "ContainerCreating" || reason == "PodInitializing" {
                return None;
            }
            return Some(with_message(reason, waiting.message.as_deref()));
        }
        let terminated = state.terminated.as_ref()?;
        (terminated.exit_code != 0).then(|| {
            format!(
                "{} (exit code {})",
                terminated.reason.as_deref().unwrap_or("Terminated"),
                terminated.exit_code
            )
        })
    })
}

/// What keeps a pod from running: a container's problem, or why it cannot be scheduled.
pub fn pod_problem(pod: &Pod) -> Option<String> {
    if let Some(problem) = container_problem(pod) {
        return Some(problem);
    }
    let status = pod.status.as_ref()?;
    let unscheduled = status
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False")?;
    Some(with_message(
        unscheduled
            .reason
            .clone()
            .unwrap_or_else(|| "not scheduled".to_owned()),
        unscheduled.message.as_deref(),
    ))
}

/// A problem that will not fix itself: the sandbox has failed.
pub fn fatal_problem(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref()?;
    if status.phase.as_deref() == Some("Failed") {
        return Some(with_message(
            status
                .reason
                .clone()
                .unwrap_or_else(|| "pod failed".to_owned()),
            status.message.as_deref(),
        ));
    }
    let problem = container_problem(pod)?;
    FATAL_REASONS
        .iter()
        .any(|reason| problem.starts_with(reason))
        .then_some(problem)
}

fn with_message(reason: String, message: Option<&str>) -> String {
    match message {
        Some(message) if !message.is_empty() => format!("{reason} ({message})"),
        _ => reason,
    }
}

/// The pod's last warning events and log lines, indented, for a failure message.
pub async fn details(cluster: &Cluster, pod: &str) -> String {
    let mut out = String::new();
    let events = warning_events(cluster, pod).await;
    if !events.is_empty() {
        out.push_str("\n  events:");
        for event in events {
            out.push_str(&format!("\n    {event}"));
        }
    }
    let lines = last_log_lines(cluster, pod, 10).await;
    if !lines.is_empty() {
        out.push_str("\n  last log lines:");
        for line in lines {
            out.push_str(&format!("\n    {line}"));
        }
    }
    out
}

async fn warning_events(cluster: &Cluster, pod: &str) -> Vec<String> {
    let events = Api::<Event>::namespaced(cluster.client.clone(), &cluster.namespace);
    let params = ListParams::default().fields(&format!("involvedObject.name={pod},type=Warning"));
    let Ok(list) = events.list(&params).await else {
        return Vec::new();
    };
    let mut items = list.items;
    items.sort_by_key(|e| e.last_timestamp.clone().map(|t| t.0));
    items
        .iter()
        .rev()
        .take(5)
        .rev()
        .map(|e| {
            format!(
                "{}: {}",
                e.reason.as_deref().unwrap_or("Warning"),
                e.message.as_deref().unwrap_or("").trim()
            )
        })
        .collect()
}

/// The last `count` lines of the sandbox container's log (of the previous run when it restarted).
pub async fn last_log_lines(cluster: &Cluster, pod: &str, count: i64) -> Vec<String> {
    let pods = Api::<Pod>::namespaced(cluster.client.clone(), &cluster.namespace);
    let params = LogParams {
        container: Some(claude_sandbox_core::layout::CONTAINER_NAME.to_owned()),
        tail_lines: Some(count),
        ..LogParams::default()
    };
    let log = match pods.logs(pod, &params).await {
        Ok(log) if !log.trim().is_empty() => log,
        _ => pods
            .logs(
                pod,
                &LogParams {
                    previous: true,
                    ..params
                },
            )
            .await
            .unwrap_or_default(),
    };
    log.lines().map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p"}, "status": status})).unwrap()
    }

    fn waiting(reason: &str, message: &str) -> Pod {
        pod(json!({"phase": "Pending", "containerStatuses": [{
            "name": "devcontainer", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": reason, "message": message}}
        }]}))
    }

    #[test]
    fn lasting_problems_are_fatal_transient_ones_are_not() {
        assert_eq!(
            fatal_problem(&waiting("ImagePullBackOff", "Back-off pulling image \"x\"")).as_deref(),
            Some("ImagePullBackOff (Back-off pulling image \"x\")")
        );
        assert!(fatal_problem(&waiting("CrashLoopBackOff", "")).is_some());
        assert!(
            fatal_problem(&waiting(
                "CreateContainerConfigError",
                "secret \"s\" not found"
            ))
            .is_some()
        );
        assert_eq!(
            fatal_problem(&waiting("ErrImagePull", "rpc error")),
            None,
            "pulls are retried"
        );
        assert_eq!(fatal_problem(&waiting("ContainerCreating", "")), None);
        assert_eq!(container_problem(&waiting("ContainerCreating", "")), None);
        assert!(fatal_problem(&pod(json!({"phase": "Failed", "reason": "Evicted"}))).is_some());
    }

    #[test]
    fn unschedulable_pods_say_why() {
        let pending = pod(json!({"phase": "Pending", "conditions": [{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "0/1 nodes are available: 1 Insufficient memory."
        }]}));
        assert_eq!(
            pod_problem(&pending).as_deref(),
            Some("Unschedulable (0/1 nodes are available: 1 Insufficient memory.)")
        );
        assert_eq!(
            fatal_problem(&pending),
            None,
            "scheduling may still succeed"
        );
    }

    #[test]
    fn a_crashed_container_reports_its_exit_code() {
        let crashed = pod(json!({"phase": "Running", "containerStatuses": [{
            "name": "devcontainer", "image": "x", "imageID": "", "ready": false, "restartCount": 1,
            "state": {"terminated": {"exitCode": 3, "reason": "Error"}}
        }]}));
        assert_eq!(
            container_problem(&crashed).as_deref(),
            Some("Error (exit code 3)")
        );
    }
}
