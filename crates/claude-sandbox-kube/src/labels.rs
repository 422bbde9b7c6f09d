//! Labels on every object of a sandbox. The controller's own `agents.x-k8s.io/` labels cannot be
//! set by us (it drops them), so the Service selects on these.

use std::collections::BTreeMap;

use claude_sandbox_core::SandboxName;

pub const APP: &str = "app";
pub const APP_VALUE: &str = "claude-code-sandbox";
/// Which sandbox an object belongs to; the Service selects its pod by this and `app`.
pub const INSTANCE: &str = "app.kubernetes.io/instance";
/// Marks the objects this tool manages, so that `list` and `down --all` find them.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY_VALUE: &str = "claude-sandbox";

/// The labels the Service selects the sandbox pod by.
pub fn selector(name: &SandboxName) -> BTreeMap<String, String> {
    BTreeMap::from([
        (APP.to_owned(), APP_VALUE.to_owned()),
        (INSTANCE.to_owned(), name.to_string()),
    ])
}

/// The labels of every object of a sandbox: the selector plus `managed-by`.
pub fn object_labels(name: &SandboxName) -> BTreeMap<String, String> {
    let mut labels = selector(name);
    labels.insert(MANAGED_BY.to_owned(), MANAGED_BY_VALUE.to_owned());
    labels
}
