//! A Sandbox's conditions from what its reconcile observed (upstream `computeConditions` and
//! v0.1.0's `computeReadyCondition`). Types, reasons and messages are upstream's.

use k8s_openapi::api::core::v1::Pod;

use crate::{
    conditions::{self, Condition},
    error::Error,
};

pub(crate) const READY: &str = "Ready";
pub(crate) const SUSPENDED: &str = "Suspended";
pub(crate) const FINISHED: &str = "Finished";
pub(crate) const POD_SCHEDULED: &str = "PodScheduled";

pub(crate) const DEPENDENCIES_READY: &str = "DependenciesReady";
pub(crate) const DEPENDENCIES_NOT_READY: &str = "DependenciesNotReady";
pub(crate) const RECONCILER_ERROR: &str = "ReconcilerError";
pub(crate) const MULTIPLE_PODS: &str = "MultiplePods";
pub(crate) const SANDBOX_SUSPENDED: &str = "SandboxSuspended";
pub(crate) const SANDBOX_EXPIRED: &str = "SandboxExpired";
pub(crate) const POD_SUCCEEDED: &str = "PodSucceeded";
pub(crate) const POD_FAILED: &str = "PodFailed";

/// What one reconcile saw of the Sandbox's children.
pub(crate) struct Observed<'a> {
    /// The pod the Sandbox tracks (possibly terminating, possibly not its own).
    pub pod: Option<&'a Pod>,
    /// Whether that pod's controller is this Sandbox.
    pub pod_owned: bool,
    /// Reconciling the pod failed, so a missing pod proves nothing.
    pub pod_failed: bool,
    /// Whether the Sandbox has a Service (after reconciling it).
    pub service: bool,
    /// Every error of the reconcile (they make Ready False with their text).
    pub error: Option<&'a Error>,
}

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or_default()
}

fn pod_condition<'a>(
    pod: &'a Pod,
    type_: &str,
) -> Option<&'a k8s_openapi::api::core::v1::PodCondition> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

fn has_ip(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.pod_ips.as_ref())
        .is_some_and(|ips| !ips.is_empty())
}

/// The v1beta1 conditions, set on `conditions` (upstream `reconcileChildResources`): Suspended
/// always, Finished and PodScheduled only while they apply, Ready always.
pub(crate) fn apply(
    conditions: &mut Vec<Condition>,
    seen: &Observed<'_>,
    suspended: bool,
    service_wanted: Option<bool>,
    generation: i64,
    now: &str,
) {
    conditions::set(
        conditions,
        suspended_condition(seen, suspended, generation),
        now,
    );
    for (type_, condition) in [
        (FINISHED, finished(seen, generation)),
        (POD_SCHEDULED, pod_scheduled(seen, generation)),
    ] {
        match condition {
            Some(condition) => conditions::set(conditions, condition, now),
            None => conditions::remove(conditions, type_),
        }
    }
    conditions::set(
        conditions,
        ready(seen, suspended, service_wanted, generation),
        now,
    );
}

fn suspended_condition(seen: &Observed<'_>, suspended: bool, generation: i64) -> Condition {
    if !suspended {
        return Condition::new(
            SUSPENDED,
            false,
            "NotSuspended",
            "Sandbox is not suspended",
            generation,
        );
    }
    match seen.pod {
        None if seen.pod_failed => Condition::unknown(
            SUSPENDED,
            "PodStateUnknown",
            "Pod state is unknown. Sandbox suspension cannot be confirmed",
            generation,
        ),
        None => Condition::new(
            SUSPENDED,
            true,
            "PodTerminated",
            "Pod has been terminated. Sandbox is suspended",
            generation,
        ),
        Some(_) if !seen.pod_owned => Condition::new(
            SUSPENDED,
            false,
            "PodNotOwned",
            "Refused to delete pod because it is not owned by this sandbox",
            generation,
        ),
        Some(_) => Condition::new(
            SUSPENDED,
            false,
            "PodTerminating",
            "Pod is terminating. Sandbox is suspending",
            generation,
        ),
    }
}

fn finished(seen: &Observed<'_>, generation: i64) -> Option<Condition> {
    let pod = seen.pod.filter(|_| seen.pod_owned)?;
    match phase(pod) {
        "Succeeded" => Some(Condition::new(
            FINISHED,
            true,
            POD_SUCCEEDED,
            "Pod completed successfully",
            generation,
        )),
        "Failed" => Some(Condition::new(
            FINISHED,
            true,
            POD_FAILED,
            "Pod failed",
            generation,
        )),
        _ => None,
    }
}

/// Mirrors the pod's PodScheduled condition (absent without an own pod).
fn pod_scheduled(seen: &Observed<'_>, generation: i64) -> Option<Condition> {
    let Some(pod) = seen.pod else {
        return seen.pod_failed.then(|| {
            Condition::unknown(
                POD_SCHEDULED,
                "PodSchedulingUnknown",
                "Pod state is unknown. Pod scheduling cannot be determined",
                generation,
            )
        });
    };
    if !seen.pod_owned {
        return None;
    }
    let Some(scheduled) = pod_condition(pod, POD_SCHEDULED) else {
        return Some(Condition::unknown(
            POD_SCHEDULED,
            "PodSchedulingUnknown",
            "Pod has not reported a PodScheduled condition yet",
            generation,
        ));
    };
    let reason = match scheduled.reason.as_deref().filter(|r| !r.is_empty()) {
        Some(reason) => reason,
        None if scheduled.status == "True" => "PodScheduled",
        None => "PodSchedulingUnknown",
    };
    // The scheduler sets no message on success and upstream copies it verbatim, but the
    // testbed's API server turns empty strings in custom resources into nulls and then rejects
    // them (`message` is required): say what the status says instead.
    let message = match scheduled.message.as_deref().filter(|m| !m.is_empty()) {
        Some(message) => message.to_owned(),
        None => format!("Pod condition PodScheduled is {}", scheduled.status),
    };
    Some(Condition {
        status: scheduled.status.clone(),
        ..Condition::new(POD_SCHEDULED, false, reason, message, generation)
    })
}

/// "Pod is Ready", or what is missing, and whether the pod is ready (upstream's messages).
fn pod_readiness(pod: Option<&Pod>, need_ip: bool) -> (String, bool) {
    let Some(pod) = pod else {
        return ("Pod does not exist".to_owned(), false);
    };
    if phase(pod) != "Running" {
        return (format!("Pod exists with phase: {}", phase(pod)), false);
    }
    match pod_condition(pod, "Ready") {
        Some(ready) if ready.status == "True" => {
            if need_ip && !has_ip(pod) {
                ("Pod is Ready but has no podIPs yet".to_owned(), false)
            } else {
                ("Pod is Ready".to_owned(), true)
            }
        }
        _ => ("Pod is Running but not Ready".to_owned(), false),
    }
}

fn ready(
    seen: &Observed<'_>,
    suspended: bool,
    service_wanted: Option<bool>,
    generation: i64,
) -> Condition {
    let not_ready =
        |reason: &str, message: String| Condition::new(READY, false, reason, message, generation);
    if let Some(error) = seen.error {
        return match error.find(|e| matches!(e, Error::MultiplePods(_))) {
            Some(multiple) => not_ready(MULTIPLE_PODS, multiple.to_string()),
            None => not_ready(RECONCILER_ERROR, format!("Error seen: {error}")),
        };
    }
    if suspended {
        let message = if seen.pod.is_some() {
            "Sandbox is suspending"
        } else {
            "Sandbox is suspended"
        };
        return not_ready(SANDBOX_SUSPENDED, message.to_owned());
    }
    match seen.pod.map(phase) {
        Some("Succeeded") => {
            return not_ready(POD_SUCCEEDED, "Pod completed successfully".to_owned());
        }
        Some("Failed") => return not_ready(POD_FAILED, "Pod failed".to_owned()),
        _ => {}
    }
    let (mut message, pod_ready) = pod_readiness(seen.pod, true);
    // Without an explicit choice an existing Service is required (backward compatibility).
    let service_required = service_wanted.unwrap_or(seen.service);
    if service_required {
        message.push_str(if seen.service {
            "; Service Exists"
        } else {
            "; Service does not exist"
        });
    }
    if pod_ready && (!service_required || seen.service) {
        Condition::new(READY, true, DEPENDENCIES_READY, message, generation)
    } else {
        not_ready(DEPENDENCIES_NOT_READY, message)
    }
}

/// v0.1.0's only condition: Ready needs the Service always, and a Sandbox scaled to zero
/// replicas counts as ready ("intended behaviour" upstream).
pub(crate) fn ready_v0_1(seen: &Observed<'_>, scaled_to_zero: bool, generation: i64) -> Condition {
    if let Some(error) = seen.error {
        return Condition::new(
            READY,
            false,
            RECONCILER_ERROR,
            format!("Error seen: {error}"),
            generation,
        );
    }
    let (mut message, pod_ready) = match seen.pod {
        None if scaled_to_zero => ("Pod does not exist, replicas is 0".to_owned(), true),
        pod => pod_readiness(pod, false),
    };
    message.push_str(if seen.service {
        "; Service Exists"
    } else {
        "; Service does not exist"
    });
    if pod_ready && seen.service {
        Condition::new(READY, true, DEPENDENCIES_READY, message, generation)
    } else {
        Condition::new(READY, false, DEPENDENCIES_NOT_READY, message, generation)
    }
}

/// Whether the Sandbox was already marked expired (Ready's reason).
pub(crate) fn marked_expired(conditions: &[Condition]) -> bool {
    conditions::find(conditions, READY).is_some_and(|c| c.reason == SANDBOX_EXPIRED)
}

/// Ready False `SandboxExpired`; PodScheduled goes with the pod, Finished stays.
pub(crate) fn mark_expired(conditions: &mut Vec<Condition>, generation: i64, now: &str) {
    conditions::set(
        conditions,
        Condition::new(
            READY,
            false,
            SANDBOX_EXPIRED,
            "Sandbox has expired",
            generation,
        ),
        now,
    );
    conditions::remove(conditions, POD_SCHEDULED);
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "s"}, "status": status})).unwrap()
    }

    fn running_ready() -> Pod {
        pod(json!({
            "phase": "Running",
            "podIPs": [{"ip": "127.1.0.5"}],
            "conditions": [{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "True"}],
        }))
    }

    fn seen(pod: Option<&Pod>, service: bool) -> Observed<'_> {
        Observed {
            pod,
            pod_owned: true,
            pod_failed: false,
            service,
            error: None,
        }
    }

    fn conditions(seen: &Observed<'_>, suspended: bool, service: Option<bool>) -> Vec<Condition> {
        let mut conditions = Vec::new();
        apply(&mut conditions, seen, suspended, service, 3, "now");
        conditions
    }

    fn get<'a>(conditions: &'a [Condition], type_: &str) -> &'a Condition {
        conditions::find(conditions, type_).unwrap()
    }

    #[test]
    fn a_running_ready_pod_with_an_ip_is_ready() {
        let pod = running_ready();
        let all = conditions(&seen(Some(&pod), false), false, None);
        let ready = get(&all, READY);
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("True", DEPENDENCIES_READY)
        );
        assert_eq!(ready.message, "Pod is Ready");
        assert_eq!(ready.observed_generation, 3);
        assert_eq!(get(&all, SUSPENDED).reason, "NotSuspended");
        assert_eq!(get(&all, POD_SCHEDULED).reason, "PodScheduled");
        assert_eq!(
            get(&all, POD_SCHEDULED).message,
            "Pod condition PodScheduled is True"
        );
        assert!(conditions::find(&all, FINISHED).is_none());
    }

    #[test]
    fn readiness_needs_an_ip_and_a_wanted_service() {
        let no_ip =
            pod(json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}));
        let ready = get(&conditions(&seen(Some(&no_ip), false), false, None), READY).clone();
        assert_eq!(
            (ready.reason.as_str(), ready.message.as_str()),
            (DEPENDENCIES_NOT_READY, "Pod is Ready but has no podIPs yet")
        );

        let pod = running_ready();
        let ready = get(
            &conditions(&seen(Some(&pod), false), false, Some(true)),
            READY,
        )
        .clone();
        assert_eq!(
            (ready.status.as_str(), ready.message.as_str()),
            ("False", "Pod is Ready; Service does not exist")
        );
        let ready = get(
            &conditions(&seen(Some(&pod), true), false, Some(true)),
            READY,
        )
        .clone();
        assert_eq!(
            (ready.status.as_str(), ready.message.as_str()),
            ("True", "Pod is Ready; Service Exists")
        );
    }

    #[test]
    fn pending_and_missing_pods_are_not_ready() {
        let pending = pod(
            json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/1 nodes"}]}),
        );
        let all = conditions(&seen(Some(&pending), false), false, None);
        assert_eq!(get(&all, READY).message, "Pod exists with phase: Pending");
        let scheduled = get(&all, POD_SCHEDULED);
        assert_eq!(
            (
                scheduled.status.as_str(),
                scheduled.reason.as_str(),
                scheduled.message.as_str()
            ),
            ("False", "Unschedulable", "0/1 nodes")
        );

        let all = conditions(&seen(None, false), false, None);
        assert_eq!(get(&all, READY).message, "Pod does not exist");
        assert!(conditions::find(&all, POD_SCHEDULED).is_none());
    }

    #[test]
    fn terminal_pods_finish_the_sandbox() {
        let failed = pod(json!({"phase": "Failed"}));
        let all = conditions(&seen(Some(&failed), false), false, None);
        assert_eq!(get(&all, READY).reason, POD_FAILED);
        let finished = get(&all, FINISHED);
        assert_eq!(
            (finished.status.as_str(), finished.reason.as_str()),
            ("True", POD_FAILED)
        );
        let succeeded = pod(json!({"phase": "Succeeded"}));
        assert_eq!(
            get(
                &conditions(&seen(Some(&succeeded), false), false, None),
                READY
            )
            .reason,
            POD_SUCCEEDED
        );
    }

    #[test]
    fn suspension_reports_progress() {
        let pod = running_ready();
        let all = conditions(&seen(Some(&pod), true), true, Some(true));
        assert_eq!(get(&all, READY).reason, SANDBOX_SUSPENDED);
        assert_eq!(get(&all, READY).message, "Sandbox is suspending");
        assert_eq!(
            (
                get(&all, SUSPENDED).status.as_str(),
                get(&all, SUSPENDED).reason.as_str()
            ),
            ("False", "PodTerminating")
        );

        let all = conditions(&seen(None, true), true, Some(true));
        assert_eq!(get(&all, READY).message, "Sandbox is suspended");
        assert_eq!(
            (
                get(&all, SUSPENDED).status.as_str(),
                get(&all, SUSPENDED).reason.as_str()
            ),
            ("True", "PodTerminated")
        );
    }

    #[test]
    fn errors_win() {
        let error = Error::Ownership("pod \"s\" is owned by X".into());
        let observed = Observed {
            error: Some(&error),
            ..seen(None, false)
        };
        let ready = get(&conditions(&observed, false, None), READY).clone();
        assert_eq!(
            (ready.reason.as_str(), ready.message.as_str()),
            (RECONCILER_ERROR, "Error seen: pod \"s\" is owned by X")
        );
        let error = Error::MultiplePods(2);
        let observed = Observed {
            error: Some(&error),
            ..seen(None, false)
        };
        assert_eq!(
            get(&conditions(&observed, false, None), READY).reason,
            MULTIPLE_PODS
        );
    }

    #[test]
    fn v0_1_needs_the_service_and_calls_zero_replicas_ready() {
        let pod = running_ready();
        let ready = ready_v0_1(&seen(Some(&pod), true), false, 1);
        assert_eq!(
            (ready.status.as_str(), ready.message.as_str()),
            ("True", "Pod is Ready; Service Exists")
        );
        let ready = ready_v0_1(&seen(Some(&pod), false), false, 1);
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", DEPENDENCIES_NOT_READY)
        );
        let ready = ready_v0_1(&seen(None, true), true, 1);
        assert_eq!(
            (ready.status.as_str(), ready.message.as_str()),
            ("True", "Pod does not exist, replicas is 0; Service Exists")
        );
    }

    #[test]
    fn expiry_marks_ready_and_drops_pod_scheduled() {
        let pod = running_ready();
        let mut all = conditions(&seen(Some(&pod), false), false, None);
        assert!(!marked_expired(&all));
        mark_expired(&mut all, 3, "later");
        assert!(marked_expired(&all));
        assert!(conditions::find(&all, POD_SCHEDULED).is_none());
        assert_eq!(get(&all, READY).last_transition_time, "later");
    }
}
