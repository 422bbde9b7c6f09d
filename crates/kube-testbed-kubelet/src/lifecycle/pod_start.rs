//! What a pod's containers start with: their environment, read when they start (Secrets,
//! ConfigMaps), and, once the main containers first start, what runs in and beside them — the init
//! process and its namespaces (as root), the stand-ins. A restart of the containers keeps those,
//! as a pod's network namespace outlives its containers' restarts.

use std::{
    path::{Component, Path, PathBuf},
    sync::Arc,
};

use kube::Client;

use crate::{
    container_env,
    error::Error,
    init_process::{self, InitSpec},
    network::{PodNamespaces, PodNetwork},
    pod_runtime::{PodRuntime, Started},
    pod_user::{POD_USER, PodUser},
    stand_ins::{Setting, StandIns, Wanted},
};

/// Where envbuilder puts the workspace without a repository.
const EMPTY_WORKSPACE: &str = "/workspaces/empty";
const WORKSPACE_FOLDER_VAR: &str = "ENVBUILDER_WORKSPACE_FOLDER";
/// envbuilder unsets these before it runs the init script.
const ENVBUILDER_PREFIX: &str = "ENVBUILDER_";

pub(crate) struct PodStart {
    pub client: Client,
    /// Whether the pod gets an init process in namespaces of its own.
    pub namespaces: bool,
    /// The stand-ins the pod gets, if any.
    pub stand_ins: Option<Wanted>,
}

impl PodStart {
    /// Reads container `name`'s environment, as a kubelet does when it starts a container.
    pub async fn resolve_env(&self, runtime: &PodRuntime, name: &str) -> Result<(), Error> {
        if let Some(container) = runtime.container(name) {
            let env =
                container_env::resolve(&self.client, &runtime.namespace, container.declared_env())
                    .await?;
            container.set_env(env);
        }
        Ok(())
    }

    /// Starts the init process (with container `main`'s environment) and the stand-ins, unless
    /// they run already.
    pub async fn start_environment(&self, runtime: &PodRuntime, main: &str) -> Result<(), Error> {
        if runtime.is_started() {
            return Ok(());
        }
        let network = if self.namespaces {
            PodNetwork::Namespaces(Arc::new(self.start_init(runtime, main).await?))
        } else {
            PodNetwork::Host
        };
        let stand_ins = match self.stand_ins {
            Some(wanted) => {
                let setting = Setting {
                    dir: &runtime.dir,
                    network: &network,
                    path: runtime.path(),
                    wanted,
                };
                Some(StandIns::start(&setting, runtime.stop_token()).await?)
            }
            None => None,
        };
        runtime.set_started(Started { network, stand_ins });
        Ok(())
    }

    async fn start_init(&self, runtime: &PodRuntime, main: &str) -> Result<PodNamespaces, Error> {
        let user = PodUser::find(POD_USER)?;
        let env = runtime.container(main).map(|c| c.env()).unwrap_or_default();
        let workspace = workspace_folder(&runtime.dir, &env);
        user.own_dir(&workspace).await?;
        user.own_dir(&runtime.home_dir()).await?;
        if let Some(closed) = user.blocked_at(&runtime.home_dir()) {
            tracing::warn!(
                "user {} cannot pass {} (no search permission): its processes cannot reach the pod's files \
                 (chmod o+x the directory)",
                user.name,
                closed.display()
            );
        }
        let env = init_environment(&env, runtime, &user.name);
        let spec = InitSpec {
            user: &user,
            cwd: &workspace,
            env: &env,
            log: &runtime.dir.join("init.log"),
        };
        init_process::start(&spec, runtime.stop_token()).await
    }
}

/// `<pod dir>` + `ENVBUILDER_WORKSPACE_FOLDER` (only its plain components), or the empty
/// workspace envbuilder uses without a repository.
fn workspace_folder(pod_dir: &Path, env: &[(String, String)]) -> PathBuf {
    let folder = env
        .iter()
        .find(|(name, _)| name == WORKSPACE_FOLDER_VAR)
        .map_or(EMPTY_WORKSPACE, |(_, value)| value.as_str());
    Path::new(folder)
        .components()
        .filter_map(|component| match component {
            Component::Normal(part) => Some(part),
            _ => None,
        })
        .fold(pod_dir.to_owned(), |path, part| path.join(part))
}

/// The init's environment, as envbuilder gives the init script: the container's without
/// `ENVBUILDER_*`, with the pod's `PATH`, and the user's identity and home.
fn init_environment(
    env: &[(String, String)],
    runtime: &PodRuntime,
    user: &str,
) -> Vec<(String, String)> {
    container_env::overlay(
        env,
        |name| name.starts_with(ENVBUILDER_PREFIX),
        vec![
            ("PATH", runtime.path().to_owned()),
            ("HOME", runtime.home_dir().display().to_string()),
            ("USER", user.to_owned()),
            ("LOGNAME", user.to_owned()),
            ("SHELL", "/bin/bash".to_owned()),
            ("HOSTNAME", runtime.name.clone()),
        ],
    )
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::ObjectMeta;
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::behaviour::Behaviour;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[test]
    fn the_workspace_folder_is_envbuilders_under_the_pod_directory() {
        let dir = Path::new("/pods/ns/p");
        assert_eq!(
            workspace_folder(
                dir,
                &vars(&[(WORKSPACE_FOLDER_VAR, "/workspaces/claude-sandbox")])
            ),
            Path::new("/pods/ns/p/workspaces/claude-sandbox")
        );
        assert_eq!(
            workspace_folder(dir, &vars(&[(WORKSPACE_FOLDER_VAR, "/../../etc")])),
            Path::new("/pods/ns/p/etc"),
            "it stays in the pod directory"
        );
        assert_eq!(
            workspace_folder(dir, &[]),
            Path::new("/pods/ns/p/workspaces/empty")
        );
    }

    #[test]
    fn the_init_environment_is_the_containers_without_envbuilders() {
        let pod = Pod {
            metadata: ObjectMeta {
                name: Some("p".into()),
                ..ObjectMeta::default()
            },
            ..Pod::default()
        };
        let behaviour = Behaviour::default();
        let runtime = PodRuntime::new(
            &pod,
            "/pods/ns/p".into(),
            &behaviour,
            CancellationToken::new(),
        );
        let env = vars(&[
            ("ENVBUILDER_GIT_URL", "https://example.com/repo"),
            ("GITHUB_TOKEN", "secret"),
            ("HOME", "/home/vscode"),
            ("PATH", "/usr/bin"),
        ]);
        assert_eq!(
            init_environment(&env, &runtime, POD_USER),
            vars(&[
                ("GITHUB_TOKEN", "secret"),
                ("PATH", "/pods/ns/p/bin:/usr/local/bin:/usr/bin:/bin"),
                ("HOME", "/pods/ns/p/home"),
                ("USER", POD_USER),
                ("LOGNAME", POD_USER),
                ("SHELL", "/bin/bash"),
                ("HOSTNAME", "p"),
            ])
        );
    }
}
