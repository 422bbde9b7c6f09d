//! When a Sandbox's `shutdownTime` comes (upstream `checkSandboxExpiry`).

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

/// Upstream never requeues sooner than this before the shutdown time.
const MIN_REQUEUE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expiry {
    /// No shutdown time.
    Never,
    /// Look again after this long.
    Later(Duration),
    /// The shutdown time has come.
    Now,
}

pub(crate) fn check(shutdown_time: Option<Timestamp>, now: Timestamp) -> Expiry {
    let Some(shutdown_time) = shutdown_time else {
        return Expiry::Never;
    };
    if now >= shutdown_time {
        return Expiry::Now;
    }
    let remaining = Duration::try_from(shutdown_time.duration_since(now)).unwrap_or_default();
    Expiry::Later(remaining.max(MIN_REQUEUE))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn expires_at_the_shutdown_time() {
        let now = at("2026-01-01T00:00:00Z");
        assert_eq!(check(None, now), Expiry::Never);
        assert_eq!(check(Some(now), now), Expiry::Now);
        assert_eq!(check(Some(at("2025-12-31T23:00:00Z")), now), Expiry::Now);
        assert_eq!(
            check(Some(at("2026-01-01T00:01:00Z")), now),
            Expiry::Later(Duration::from_secs(60))
        );
    }

    #[test]
    fn requeues_no_sooner_than_two_seconds() {
        let now = at("2026-01-01T00:00:00Z");
        assert_eq!(
            check(Some(at("2026-01-01T00:00:01Z")), now),
            Expiry::Later(MIN_REQUEUE)
        );
    }
}
