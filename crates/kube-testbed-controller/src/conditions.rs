//! `metav1.Condition` lists, updated the way apimachinery's `meta.SetStatusCondition` does it
//! (the upstream controllers use nothing else): a condition keeps its `lastTransitionTime` until
//! its status changes, and new condition types are appended.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub observed_generation: i64,
    #[serde(default)]
    pub last_transition_time: String,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub message: String,
}

fn is_zero(value: &i64) -> bool {
    *value == 0
}

impl Condition {
    /// A condition without a transition time yet ([`set`] gives it one).
    pub(crate) fn new(
        type_: &str,
        status: bool,
        reason: &str,
        message: impl Into<String>,
        generation: i64,
    ) -> Self {
        Self {
            type_: type_.to_owned(),
            status: if status { "True" } else { "False" }.to_owned(),
            observed_generation: generation,
            last_transition_time: String::new(),
            reason: reason.to_owned(),
            message: message.into(),
        }
    }

    /// Same, with status `Unknown`.
    pub(crate) fn unknown(
        type_: &str,
        reason: &str,
        message: impl Into<String>,
        generation: i64,
    ) -> Self {
        Self {
            status: "Unknown".to_owned(),
            ..Self::new(type_, false, reason, message, generation)
        }
    }

    pub(crate) fn is_true(&self) -> bool {
        self.status == "True"
    }
}

pub(crate) fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

pub(crate) fn is_true(conditions: &[Condition], type_: &str) -> bool {
    find(conditions, type_).is_some_and(Condition::is_true)
}

/// Adds or updates `condition` (`meta.SetStatusCondition`).
pub(crate) fn set(conditions: &mut Vec<Condition>, mut condition: Condition, now: &str) {
    let Some(existing) = conditions.iter_mut().find(|c| c.type_ == condition.type_) else {
        if condition.last_transition_time.is_empty() {
            condition.last_transition_time = now.to_owned();
        }
        conditions.push(condition);
        return;
    };
    if existing.status != condition.status {
        existing.status = condition.status;
        existing.last_transition_time = if condition.last_transition_time.is_empty() {
            now.to_owned()
        } else {
            condition.last_transition_time
        };
    }
    existing.reason = condition.reason;
    existing.message = condition.message;
    if condition.observed_generation != 0 {
        existing.observed_generation = condition.observed_generation;
    }
}

pub(crate) fn remove(conditions: &mut Vec<Condition>, type_: &str) {
    conditions.retain(|c| c.type_ != type_);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_keeps_the_transition_time_until_the_status_changes() {
        let mut conditions = Vec::new();
        set(
            &mut conditions,
            Condition::new("Ready", false, "DependenciesNotReady", "a", 1),
            "t1",
        );
        set(
            &mut conditions,
            Condition::new("Ready", false, "DependenciesNotReady", "b", 2),
            "t2",
        );
        assert_eq!(conditions[0].last_transition_time, "t1");
        assert_eq!(conditions[0].message, "b");
        assert_eq!(conditions[0].observed_generation, 2);
        set(
            &mut conditions,
            Condition::new("Ready", true, "DependenciesReady", "c", 2),
            "t3",
        );
        assert_eq!(conditions[0].last_transition_time, "t3");
        assert!(is_true(&conditions, "Ready"));
    }

    #[test]
    fn set_appends_new_types_and_remove_drops_them() {
        let mut conditions = Vec::new();
        set(
            &mut conditions,
            Condition::new("Suspended", false, "NotSuspended", "", 1),
            "t1",
        );
        set(
            &mut conditions,
            Condition::unknown("PodScheduled", "PodSchedulingUnknown", "", 1),
            "t1",
        );
        assert_eq!(conditions[1].type_, "PodScheduled");
        assert_eq!(conditions[1].status, "Unknown");
        remove(&mut conditions, "Suspended");
        assert_eq!(conditions.len(), 1);
    }

    #[test]
    fn forwarded_conditions_keep_their_transition_time() {
        let mut conditions = vec![Condition::new("Ready", false, "SandboxMissing", "", 1)];
        conditions[0].last_transition_time = "t0".to_owned();
        let mut forwarded = Condition::new("Ready", true, "DependenciesReady", "Pod is Ready", 3);
        forwarded.last_transition_time = "t5".to_owned();
        set(&mut conditions, forwarded, "t9");
        assert_eq!(conditions[0].last_transition_time, "t5");
    }
}
