//! The devcontainer definition and init script, bundled into the binary (the default source and
//! project mode ship them in a ConfigMap).
//! They are the same files as `k8s/agent-sandbox/`, so the two ways of deploying never drift.

pub const DEVCONTAINER_JSON: &str = include_str!("../../../k8s/agent-sandbox/devcontainer.json");
pub const ENTRYPOINT_SH: &str = include_str!("../../../k8s/agent-sandbox/entrypoint.sh");
