//! [`TestCluster`]: what integration tests run against — a real cluster when
//! `CLAUDE_SANDBOX_TEST_KUBECONFIG` names one (kind with the real agent-sandbox controller, say),
//! else a testbed, with a real node unless `KUBE_TESTBED_NODE=simulated`. Tests ask
//! [`TestCluster::is_simulated`] before the cases that need the simulated kubelet's faults, and
//! skip only those elsewhere.

use std::{
    path::{Path, PathBuf},
    sync::atomic::{AtomicU32, Ordering},
};

use k8s_openapi::api::{core::v1::Namespace, rbac::v1::PolicyRule};
use kube::{Api, Client, api::PostParams};
use tempfile::TempDir;

use crate::{
    bootstrap,
    error::Error,
    kubeconfig::{self, ClusterAccess},
    options::{NodeKind, TestbedOptions},
    real_node::NodeEnv,
    testbed::Testbed,
    users,
};

/// A kubeconfig of a real cluster for the integration tests.
pub const TEST_KUBECONFIG_ENV: &str = "CLAUDE_SANDBOX_TEST_KUBECONFIG";

/// A cluster for integration tests.
#[derive(Debug)]
pub struct TestCluster {
    kubeconfig: PathBuf,
    config: kube::Config,
    backing: Backing,
}

#[derive(Debug)]
enum Backing {
    Testbed(Box<Testbed>),
    /// A real cluster; users' kubeconfigs go to a directory of their own (a testbed keeps them in
    /// its directory).
    Real {
        users: TempDir,
    },
}

impl TestCluster {
    /// The real cluster of `CLAUDE_SANDBOX_TEST_KUBECONFIG`, else a new testbed with stand-ins, on
    /// the node kind `KUBE_TESTBED_NODE` names (real by default).
    pub async fn from_env_or_start() -> Result<Self, Error> {
        let options = TestbedOptions::default()
            .stand_ins(true)
            .node(NodeKind::from_env()?);
        Self::from_env_or_start_with(options).await
    }

    /// Like [`from_env_or_start`](Self::from_env_or_start), starting a testbed with `options`.
    pub async fn from_env_or_start_with(options: TestbedOptions) -> Result<Self, Error> {
        if let Some(kubeconfig) = std::env::var_os(TEST_KUBECONFIG_ENV).filter(|v| !v.is_empty()) {
            let kubeconfig = PathBuf::from(kubeconfig);
            let config = kubeconfig::load(&kubeconfig).await?;
            let users = TempDir::with_prefix("kube-testbed-users-")
                .map_err(Error::io("creating", std::env::temp_dir()))?;
            return Ok(Self {
                kubeconfig,
                config,
                backing: Backing::Real { users },
            });
        }
        let testbed = Testbed::start_with(options).await?;
        Ok(Self {
            kubeconfig: testbed.kubeconfig(),
            config: testbed.config().clone(),
            backing: Backing::Testbed(Box::new(testbed)),
        })
    }

    /// One cluster for all the tests of a test binary (started by the first to ask), for tests that
    /// keep to namespaces of their own. Stopped when the test process exits.
    pub async fn shared() -> Result<&'static TestCluster, Error> {
        static SHARED: tokio::sync::OnceCell<TestCluster> = tokio::sync::OnceCell::const_new();
        SHARED.get_or_try_init(Self::from_env_or_start).await
    }

    /// Like [`shared`](Self::shared), with the simulated kubelet whatever `KUBE_TESTBED_NODE`
    /// says: for the tests of faults only it can make (and of the simulated kubelet itself).
    pub async fn shared_simulated() -> Result<&'static TestCluster, Error> {
        static SHARED: tokio::sync::OnceCell<TestCluster> = tokio::sync::OnceCell::const_new();
        SHARED
            .get_or_try_init(|| {
                Self::from_env_or_start_with(
                    TestbedOptions::default()
                        .stand_ins(true)
                        .node(NodeKind::Simulated),
                )
            })
            .await
    }

    /// Whether this is a testbed with the simulated kubelet, whose faults (behaviour rules,
    /// dropped streams, …) tests can call for.
    pub fn is_simulated(&self) -> bool {
        self.testbed().is_some_and(|t| t.node_env().is_none())
    }

    /// The testbed, when simulated.
    pub fn testbed(&self) -> Option<&Testbed> {
        match &self.backing {
            Backing::Testbed(testbed) => Some(testbed),
            Backing::Real { .. } => None,
        }
    }

    /// The testbed's real node (images, registry, git server), if it has one.
    pub fn node_env(&self) -> Option<&NodeEnv> {
        self.testbed().and_then(Testbed::node_env)
    }

    /// An admin kubeconfig.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// A new admin client, for the calling runtime.
    pub fn client(&self) -> Result<Client, Error> {
        kubeconfig::client(&self.config)
    }

    /// Creates a namespace named `<prefix>-<unique suffix>` and waits until pods can be created in
    /// it (its `default` ServiceAccount exists). Returns its name.
    pub async fn create_namespace(&self, prefix: &str) -> Result<String, Error> {
        let name = unique_name(prefix);
        let client = self.client()?;
        let namespace: Namespace =
            serde_json::from_value(serde_json::json!({ "metadata": { "name": name } }))
                .expect("a valid Namespace");
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &namespace)
            .await?;
        // A testbed is Kubernetes 1.20: its accounts get token Secrets.
        bootstrap::wait_for_default_service_account(&client, &name, self.testbed().is_some())
            .await?;
        Ok(name)
    }

    /// A user allowed exactly `rules` in `namespace`; returns its kubeconfig.
    pub async fn create_user(
        &self,
        name: &str,
        namespace: &str,
        rules: &[PolicyRule],
    ) -> Result<PathBuf, Error> {
        match &self.backing {
            Backing::Testbed(testbed) => testbed.create_user(name, namespace, rules).await,
            Backing::Real { users } => {
                let access = ClusterAccess::of(&self.config);
                users::create_user(
                    &self.client()?,
                    &access,
                    users.path(),
                    name,
                    namespace,
                    rules,
                )
                .await
            }
        }
    }
}

/// `<prefix>-<counter><4 hex digits>`: distinct within this process, and very likely from other runs
/// against the same real cluster.
fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let noise = (nanos ^ std::process::id().rotate_left(7)) & 0xffff;
    format!(
        "{prefix}-{:x}{noise:04x}",
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}
