//! A real Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler
//! 1.20.2, built from Debian's source) plus simulations of what cannot run here: the kubelet and
//! the containers ([`kube_testbed_kubelet`]) and the agent-sandbox controller
//! ([`kube_testbed_controller`]).
//!
//! Tests use [`TestCluster`] (a real cluster from `CLAUDE_SANDBOX_TEST_KUBECONFIG`, else a
//! [`Testbed`]); the `kube-testbed` binary builds the binaries and starts or stops testbeds that
//! outlive it.

mod agent;
mod agent_sandbox;
mod apply;
mod behaviours;
mod bootstrap;
pub mod build;
mod control_plane;
mod crds;
pub mod detached;
mod error;
mod guard;
mod kubeconfig;
mod kubelet_api;
mod layout;
mod node;
mod options;
pub mod paths;
mod pki;
mod process;
mod provisioner;
mod real_node;
mod test_cluster;
mod testbed;
mod users;

pub use behaviours::{BEHAVIOURS_CONFIG_MAP, BEHAVIOURS_KEY, BEHAVIOURS_NAMESPACE, BehaviourRule};
pub use bootstrap::{STORAGE_CLASS, wait_for_default_service_account};
pub use error::Error;
pub use kube_testbed_kubelet::POD_USER;
pub use node::NODE_NAME;
pub use options::{NodeKind, TestbedOptions};
pub use provisioner::PROVISIONER;
pub use real_node::NodeEnv;
pub use test_cluster::{TEST_KUBECONFIG_ENV, TestCluster};
pub use testbed::{KEEP_ENV, Testbed};
