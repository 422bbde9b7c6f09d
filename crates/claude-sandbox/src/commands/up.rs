//! `up`: preflight, install agent-sandbox when missing, apply, wait with progress, say how to
//! reach the sandbox.

use std::time::Instant;

use claude_sandbox_core::{SandboxConfig, SecretValues};
use claude_sandbox_kube::{
    Error as ClusterError,
    access::{self, Permission},
    agent_sandbox,
    apply::{self, ApplyOutcome},
    cluster::Cluster,
    manifest::ManifestSource,
    render,
    sandbox_ref::SandboxRef,
    status, wait,
};
use k8s_openapi::api::{node::v1::RuntimeClass, storage::v1::StorageClass};
use kube::{Api, ResourceExt, api::ListParams};

use super::connect;
use crate::{
    cli::{GlobalArgs, UpArgs},
    error::{Error, Exit},
    terminal::{self, ProgressLine},
};

/// What a sandbox needs to be allowed in its namespace.
const SANDBOX_PERMISSIONS: [Permission; 12] = [
    Permission::namespaced("get", "agents.x-k8s.io", "sandboxes"),
    Permission::namespaced("create", "agents.x-k8s.io", "sandboxes"),
    Permission::namespaced("patch", "agents.x-k8s.io", "sandboxes"),
    Permission::namespaced("watch", "agents.x-k8s.io", "sandboxes"),
    Permission::namespaced("create", "", "services"),
    Permission::namespaced("patch", "", "services"),
    Permission::namespaced("get", "", "pods"),
    Permission::namespaced("watch", "", "pods"),
    Permission::namespaced("get", "", "pods").sub("log"),
    Permission::namespaced("list", "", "events"),
    Permission::namespaced("create", "", "configmaps"),
    Permission::namespaced("patch", "", "configmaps"),
];
const SECRET_PERMISSIONS: [Permission; 3] = [
    Permission::namespaced("get", "", "secrets"),
    Permission::namespaced("create", "", "secrets"),
    Permission::namespaced("patch", "", "secrets"),
];
/// Installing agent-sandbox takes a cluster admin.
const INSTALL_PERMISSIONS: [Permission; 4] = [
    Permission::cluster(
        "create",
        "apiextensions.k8s.io",
        "customresourcedefinitions",
    ),
    Permission::cluster("create", "", "namespaces"),
    Permission::cluster("create", "rbac.authorization.k8s.io", "clusterroles"),
    Permission::cluster("create", "rbac.authorization.k8s.io", "clusterrolebindings"),
];

pub async fn run(args: &UpArgs, global: &GlobalArgs) -> Result<Exit, Error> {
    let started = Instant::now();
    let mut config = args.sandbox.to_config(global.namespace.as_deref())?;
    let secrets = SecretValues::from_sources(&args.secret_env, args.env_file.as_deref(), |key| {
        std::env::var(key).ok()
    })?;
    let manifest = args
        .install
        .controller_manifest
        .as_deref()
        .map_or_else(agent_sandbox::default_manifest, ManifestSource::parse);
    let cluster = connect(global, config.namespace.as_ref().map(ToString::to_string)).await?;
    let progress = ProgressLine::new();

    progress.update("checking permissions and cluster prerequisites");
    preflight(&cluster, &config, &secrets).await?;

    config.api_version = match agent_sandbox::served_version(&cluster).await? {
        Some(version) => version,
        None if args.install.no_install => {
            return Err(ClusterError::Prerequisite(
                "agent-sandbox is not installed on this cluster; run `claude-sandbox up` without --no-install, or install a release: kubectl apply --server-side -f <release sandbox.yaml>".to_owned(),
            )
            .into());
        }
        None => {
            access::require(&cluster, &INSTALL_PERMISSIONS).await?;
            progress.println(&format!("installing agent-sandbox from {manifest}"));
            agent_sandbox::install(&cluster, &manifest).await?;
            agent_sandbox::served_version(&cluster)
                .await?
                .ok_or_else(|| {
                    ClusterError::Prerequisite(
                        "the installed manifest serves no agents.x-k8s.io Sandbox API".to_owned(),
                    )
                })?
        }
    };
    progress.update("waiting for the agent-sandbox controller");
    agent_sandbox::wait_controller_ready(
        &cluster,
        args.wait.timeout.saturating_sub(started.elapsed()),
    )
    .await?;

    for warning in config.lint() {
        progress.println(&format!("warning: devcontainer.json {warning}"));
    }
    progress.update("applying");
    let rendered = render(&config);
    let outcome = apply::apply_sandbox(&cluster, &config, &rendered, &secrets).await?;
    report_apply(&progress, &config, &outcome, &cluster).await?;

    let sandbox = SandboxRef::new(&cluster, config.api_version, config.name.as_str());
    if !args.detach {
        let remaining = args.wait.timeout.saturating_sub(started.elapsed());
        let waited = wait::wait_ready(&cluster, &sandbox, remaining, |p| {
            progress.update(&p.to_string())
        })
        .await;
        progress.finish();
        waited?;
    }
    progress.finish();
    let state = sandbox.require(&cluster).await?;
    let report = status::report(&cluster, &state, false).await?;
    terminal::write_stdout(&match args.output {
        Some(format) => format.serialize(&report),
        None => access_instructions(&report, args.detach, started.elapsed().as_secs()),
    })?;
    Ok(Exit::Success)
}

/// Everything that can be checked before the first write.
async fn preflight(
    cluster: &Cluster,
    config: &SandboxConfig,
    secrets: &SecretValues,
) -> Result<(), Error> {
    access::require(cluster, &SANDBOX_PERMISSIONS).await?;
    if !secrets.is_empty() {
        access::require(cluster, &SECRET_PERMISSIONS).await?;
    }
    if let Some(class) = config.runtime.runtime_class() {
        let classes = Api::<RuntimeClass>::all(cluster.client.clone());
        if access::allowed(
            cluster,
            &Permission::cluster("get", "node.k8s.io", "runtimeclasses"),
        )
        .await?
            && classes
                .get_opt(class)
                .await
                .map_err(|e| cluster.error(e))?
                .is_none()
        {
            return Err(ClusterError::Prerequisite(format!(
                "RuntimeClass {class} does not exist on this cluster: install {} on the nodes and create the RuntimeClass, or use --runtime runc",
                config.runtime
            ))
            .into());
        }
    }
    let storage_classes = Api::<StorageClass>::all(cluster.client.clone());
    if access::allowed(
        cluster,
        &Permission::cluster("list", "storage.k8s.io", "storageclasses"),
    )
    .await?
    {
        let classes = storage_classes
            .list(&ListParams::default())
            .await
            .map_err(|e| cluster.error(e))?;
        let problem = match &config.storage_class {
            Some(wanted) if !classes.items.iter().any(|c| c.name_any() == wanted.as_str()) => {
                Some(format!("StorageClass {wanted} does not exist on this cluster; pick one of `kubectl get storageclass`"))
            }
            None if !classes.items.iter().any(is_default_class) => Some(
                "the cluster has no default StorageClass for the workspace volume; name one with --storage-class".to_owned(),
            ),
            _ => None,
        };
        if let Some(problem) = problem {
            return Err(ClusterError::Prerequisite(problem).into());
        }
    }
    Ok(())
}

fn is_default_class(class: &StorageClass) -> bool {
    [
        "storageclass.kubernetes.io/is-default-class",
        "storageclass.beta.kubernetes.io/is-default-class",
    ]
    .iter()
    .any(|key| class.annotations().get(*key).is_some_and(|v| v == "true"))
}

async fn report_apply(
    progress: &ProgressLine,
    config: &SandboxConfig,
    outcome: &ApplyOutcome,
    cluster: &Cluster,
) -> Result<(), Error> {
    if outcome.changed.is_empty() {
        progress.println(&format!("sandbox {} is up to date", config.name));
        return Ok(());
    }
    progress.println(&format!("applied {}", outcome.changed.join(", ")));
    if outcome.existed && outcome.pod_template_changed {
        let pods = Api::<k8s_openapi::api::core::v1::Pod>::namespaced(
            cluster.client.clone(),
            &cluster.namespace,
        );
        if pods
            .get_opt(config.name.as_str())
            .await
            .map_err(|e| cluster.error(e))?
            .is_some()
        {
            progress.println(&format!(
                "note: the running pod keeps its old spec (agent-sandbox does not update a running pod); restart it with `claude-sandbox suspend {0} -n {1} && claude-sandbox resume {0} -n {1}` (the workspace volume stays)",
                config.name, cluster.namespace
            ));
        }
    }
    Ok(())
}

fn access_instructions(report: &status::SandboxReport, detached: bool, seconds: u64) -> String {
    let (name, ns) = (&report.name, &report.namespace);
    let headline = if detached {
        format!(
            "Sandbox {name} applied in namespace {ns}; follow it with `claude-sandbox status {name} -n {ns}` or `claude-sandbox logs {name} -n {ns} -f`.\n"
        )
    } else {
        format!(
            "Sandbox {name} is ready in namespace {ns} ({}m{:02}s).\n",
            seconds / 60,
            seconds % 60
        )
    };
    // The namespace is always spelled out: the user's current context may point elsewhere.
    let target = if name == claude_sandbox_core::DEFAULT_NAME {
        format!("-n {ns}")
    } else {
        format!("{name} -n {ns}")
    };
    format!(
        "{headline}\n\
         Browser IDE:  claude-sandbox connect {target} --open\n\
         Shell:        claude-sandbox shell {target}\n\
         Claude Code:  claude-sandbox claude {target}\n\
         Run:          claude-sandbox exec {target} -- git status\n\
         Copy:         claude-sandbox cp -n {ns} ./notes.md {name}:notes.md\n\
         SSH:          claude-sandbox ssh {target} --install-key   (ssh-config {target} for VS Code/JetBrains)\n\
         Check:        claude-sandbox verify {target}\n\
         In-cluster:   {} (code-server), {} (SSH)\n",
        report.endpoints.code_server, report.endpoints.ssh
    )
}
