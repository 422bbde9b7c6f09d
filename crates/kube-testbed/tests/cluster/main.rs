//! Integration tests against one cluster shared by all of them (each test in namespaces of its
//! own): a testbed, or the real cluster of `CLAUDE_SANDBOX_TEST_KUBECONFIG`.

mod common;
mod pod_environment;
mod rbac;
mod sandbox;
mod workloads;
