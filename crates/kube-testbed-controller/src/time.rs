//! Timestamps as Kubernetes writes them (RFC 3339, whole seconds, UTC).

use k8s_openapi::jiff::Timestamp;

/// Now, formatted like a `metav1.Time`.
pub(crate) fn now() -> String {
    format(Timestamp::now())
}

pub(crate) fn format(at: Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// An RFC 3339 timestamp; `None` when absent or unparsable (the CRD validates the format).
pub(crate) fn parse(value: Option<&str>) -> Option<Timestamp> {
    value.and_then(|v| v.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_whole_seconds() {
        let at = parse(Some("2026-08-22T10:11:12Z")).unwrap();
        assert_eq!(format(at), "2026-08-22T10:11:12Z");
        assert!(parse(Some("yesterday")).is_none());
        assert!(parse(None).is_none());
    }
}
