//! Waiting for a sandbox to become ready, with watches (not polling): the Sandbox's Ready
//! condition decides; the pod and its log say what is happening and what went wrong.
//! Watches retry with backoff, so a restarted API server only pauses the wait.

use std::{pin::pin, time::Duration};

use claude_sandbox_core::{
    envbuilder_log::{EnvbuilderPhase, LogEvent, classify_line},
    layout::CONTAINER_NAME,
};
use futures::{AsyncBufReadExt, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::{
    Api,
    api::LogParams,
    runtime::{WatchStreamExt, watcher},
};
use tokio::sync::mpsc;

use crate::{
    cluster::Cluster,
    diagnosis,
    error::Error,
    sandbox_pod::devcontainer_status,
    sandbox_ref::{SandboxRef, SandboxState},
};

/// Something worth telling the user while waiting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Before the container runs: what the Sandbox or the pod says.
    Status(String),
    /// What envbuilder is doing, from the log.
    Phase(EnvbuilderPhase),
}

impl std::fmt::Display for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Status(status) => f.write_str(status),
            Self::Phase(phase) => write!(f, "envbuilder: {phase}"),
        }
    }
}

/// Waits until the Sandbox is Ready, reporting progress; fails fast on a problem that will not
/// fix itself (image pull, crash loop, a build error in the log).
pub async fn wait_ready(
    cluster: &Cluster,
    sandbox: &SandboxRef,
    timeout: Duration,
    mut report: impl FnMut(&Progress),
) -> Result<SandboxState, Error> {
    let pods = Api::<Pod>::namespaced(cluster.client.clone(), &cluster.namespace);
    let name_selector = format!("metadata.name={}", sandbox.name);
    let mut sandboxes = pin!(
        watcher(
            sandbox.api.clone(),
            watcher::Config::default().fields(&name_selector)
        )
        .default_backoff()
        .applied_objects()
    );
    // The pod is named after the Sandbox unless adopted from a warm pool; learn it from the Sandbox.
    let mut pod_name = sandbox.name.clone();
    let mut pod_events = pin!(pod_watch(&pods, &pod_name));
    let (log_tx, mut log_rx) = mpsc::channel::<LogEvent>(64);
    let mut log_follower: Option<tokio::task::JoinHandle<()>> = None;
    let mut last = Progress::Status("waiting for the agent-sandbox controller".to_owned());
    report(&last);
    let mut phase: Option<EnvbuilderPhase> = None;
    // Both must hold: a v0.1.0 controller keeps Ready=True across suspend, before the pod is back.
    let mut ready_sandbox: Option<SandboxState> = None;
    let mut pod_ready = false;
    let deadline = tokio::time::sleep(timeout);
    let mut deadline = pin!(deadline);
    let result = loop {
        let progress = tokio::select! {
            Some(item) = sandboxes.next() => {
                let Ok(object) = item else { continue };
                let state = SandboxState::from_object(sandbox.version, object);
                if state.pod_name() != pod_name {
                    pod_name = state.pod_name();
                    pod_ready = false;
                    pod_events.set(pod_watch(&pods, &pod_name));
                }
                ready_sandbox = state.is_ready().then(|| state.clone());
                if let (Some(state), true) = (&ready_sandbox, pod_ready) {
                    break Ok(state.clone());
                }
                match state.condition("Ready") {
                    Some(c) if c.reason == "PodFailed" => {
                        break Err(failure(cluster, &sandbox.name, &pod_name, c.message.clone()).await);
                    }
                    Some(c) if phase.is_none() && !c.message.is_empty() => Progress::Status(c.message.clone()),
                    _ => continue,
                }
            }
            Some(item) = pod_events.next() => {
                let Ok(pod) = item else { continue };
                if let Some(problem) = diagnosis::fatal_problem(&pod) {
                    break Err(failure(cluster, &sandbox.name, &pod_name, problem).await);
                }
                pod_ready = is_ready(&pod);
                if let (Some(state), true) = (&ready_sandbox, pod_ready) {
                    break Ok(state.clone());
                }
                if log_follower.is_none() && container_started(&pod) {
                    log_follower = Some(tokio::spawn(follow_log(pods.clone(), pod_name.clone(), log_tx.clone())));
                }
                match (phase, pod_summary(&pod)) {
                    (None, Some(summary)) => Progress::Status(summary),
                    _ => continue,
                }
            }
            Some(event) = log_rx.recv() => match event {
                LogEvent::Phase(p) => {
                    phase = Some(phase.map_or(p, |old| old.max(p)));
                    Progress::Phase(phase.unwrap_or(p))
                }
                LogEvent::Fatal(line) => break Err(failure(cluster, &sandbox.name, &pod_name, format!("the devcontainer build failed: {line}")).await),
            },
            () = &mut deadline => {
                break Err(Error::Timeout {
                    after: timeout,
                    what: format!("sandbox {} to become ready", sandbox.name),
                    details: format!(" (last seen: {last}){}", diagnosis::details(cluster, &pod_name).await),
                });
            }
        };
        if progress != last {
            report(&progress);
            last = progress;
        }
    };
    if let Some(task) = log_follower {
        task.abort();
    }
    result
}

fn pod_watch(
    pods: &Api<Pod>,
    name: &str,
) -> impl futures::Stream<Item = Result<Pod, watcher::Error>> + use<> {
    watcher(
        pods.clone(),
        watcher::Config::default().fields(&format!("metadata.name={name}")),
    )
    .default_backoff()
    .applied_objects()
}

async fn failure(cluster: &Cluster, sandbox: &str, pod: &str, reason: String) -> Error {
    Error::SandboxFailed {
        name: sandbox.to_owned(),
        reason,
        details: diagnosis::details(cluster, pod).await,
    }
}

/// Ready and not on its way out.
fn is_ready(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|conditions| {
                conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
            })
}

fn container_started(pod: &Pod) -> bool {
    devcontainer_status(pod).is_some_and(|c| {
        c.state.as_ref().is_some_and(|s| s.running.is_some()) || c.restart_count > 0
    })
}

/// A short line for where the pod is before its log speaks.
fn pod_summary(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref()?;
    if let Some(problem) = diagnosis::pod_problem(pod) {
        return Some(format!("pod: {problem}"));
    }
    let waiting = status
        .container_statuses
        .as_ref()
        .and_then(|s| s.first())
        .and_then(|c| c.state.as_ref())
        .and_then(|s| s.waiting.as_ref())
        .and_then(|w| w.reason.clone());
    Some(match (status.phase.as_deref(), waiting) {
        (_, Some(reason)) => format!("pod: {reason}"),
        (Some(phase), None) => format!("pod: {phase}"),
        (None, None) => return None,
    })
}

/// Follows the container's log and sends what envbuilder says. Reconnects (from the last line's
/// time) when the stream ends while the wait goes on, e.g. when the API server restarts.
async fn follow_log(pods: Api<Pod>, pod: String, events: mpsc::Sender<LogEvent>) {
    let mut since: Option<jiff::Timestamp> = None;
    loop {
        let params = LogParams {
            container: Some(CONTAINER_NAME.to_owned()),
            follow: true,
            timestamps: true,
            since_time: since,
            ..LogParams::default()
        };
        match pods.log_stream(&pod, &params).await {
            Ok(stream) => {
                let mut lines = stream.lines();
                while let Ok(Some(line)) = lines.try_next().await {
                    let (stamp, text) = line.split_once(' ').unwrap_or(("", line.as_str()));
                    let stamp: Option<jiff::Timestamp> = stamp.parse().ok();
                    if stamp.is_some_and(|s| since.is_some_and(|last| s <= last)) {
                        continue;
                    }
                    since = stamp.or(since);
                    if let Some(event) = classify_line(text)
                        && events.send(event).await.is_err()
                    {
                        return;
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, "log stream not available yet"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
