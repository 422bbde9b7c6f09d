//! Retrying failed reconciles with a per-object exponential backoff (controller-runtime's rate
//! limiter does the same), so a lasting error is retried ever less often, never in a busy loop.

use std::{collections::HashMap, sync::Mutex, time::Duration};

use kube::runtime::controller::Action;

const FIRST: Duration = Duration::from_millis(200);
const MAX: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
pub(crate) struct Backoff {
    failures: Mutex<HashMap<String, u32>>,
}

impl Backoff {
    /// The requeue after one more failure of `key`.
    pub(crate) fn failed(&self, key: String) -> Action {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let count = failures.entry(key).or_default();
        let delay = FIRST.saturating_mul(2u32.saturating_pow(*count)).min(MAX);
        *count = count.saturating_add(1);
        Action::requeue(delay)
    }

    /// `key` reconciled fine: its next failure starts from the first delay again.
    pub(crate) fn succeeded(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_a_minute_and_reset() {
        let backoff = Backoff::default();
        assert_eq!(backoff.failed("a".into()), Action::requeue(FIRST));
        assert_eq!(backoff.failed("a".into()), Action::requeue(FIRST * 2));
        for _ in 0..20 {
            backoff.failed("a".into());
        }
        assert_eq!(backoff.failed("a".into()), Action::requeue(MAX));
        backoff.succeeded("a");
        assert_eq!(backoff.failed("a".into()), Action::requeue(FIRST));
    }
}
