//! Whether the upstream controller would be working, and as what.
//!
//! On a real cluster nothing reconciles Sandboxes until the controller's Deployment (current
//! releases) or StatefulSet (v0.1.0) `agent-sandbox-controller` in `agent-sandbox-system` has a
//! ready pod; the extensions controllers run only when its container args contain
//! `--extensions`. The served API versions come from discovery. This module watches all of that
//! and publishes a [`Plan`] whenever it changes.

use std::time::Duration;

use futures::{StreamExt, stream::BoxStream};
use k8s_openapi::{
    api::{
        apps::v1::{Deployment, StatefulSet},
        core::v1::PodTemplateSpec,
    },
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    Api, Client,
    discovery::{self, ApiGroup},
    runtime::{
        WatchStreamExt,
        reflector::{self, Store},
        watcher,
    },
};
use tokio::{sync::watch, time::Instant};

use crate::{
    api::is_not_found,
    error::Error,
    keys::{EXTENSIONS_GROUP, EXTENSIONS_VERSION, GROUP},
    sandbox::Version,
};

pub(crate) const CONTROLLER_NAMESPACE: &str = "agent-sandbox-system";
pub(crate) const CONTROLLER_NAME: &str = "agent-sandbox-controller";
const EXTENSIONS_ARG: &str = "--extensions";
/// Discovery lags a new CRD by a moment: look again this often while they disagree…
const DISCOVERY_RECHECK: Duration = Duration::from_millis(250);
/// …at most this many times per change.
const DISCOVERY_RECHECKS: u32 = 40;
/// After a failed discovery request.
const DISCOVERY_RETRY: Duration = Duration::from_secs(2);

/// What runs: nothing, or the Sandbox controller in one API version, with or without the
/// extensions controllers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    pub sandbox: Option<Version>,
    pub extensions: bool,
}

/// Watches the controller's workloads and the CRDs; sends each new plan. Never returns `Ok`
/// unless every watch ends (they retry with backoff instead).
pub(crate) async fn watch(client: Client, plans: watch::Sender<Plan>) -> Result<(), Error> {
    let by_name = watcher::Config::default().fields(&format!("metadata.name={CONTROLLER_NAME}"));
    let (deployments, deployment_writer) = reflector::store::<Deployment>();
    let (statefulsets, statefulset_writer) = reflector::store::<StatefulSet>();
    let (crds, crd_writer) = reflector::store::<CustomResourceDefinition>();
    let triggers: [BoxStream<'static, ()>; 3] = [
        watcher(
            Api::<Deployment>::namespaced(client.clone(), CONTROLLER_NAMESPACE),
            by_name.clone(),
        )
        .default_backoff()
        .reflect(deployment_writer)
        .map(log_watch_error)
        .boxed(),
        watcher(
            Api::<StatefulSet>::namespaced(client.clone(), CONTROLLER_NAMESPACE),
            by_name,
        )
        .default_backoff()
        .reflect(statefulset_writer)
        .map(log_watch_error)
        .boxed(),
        watcher(
            Api::<CustomResourceDefinition>::all(client.clone()),
            watcher::Config::default(),
        )
        .default_backoff()
        .reflect(crd_writer)
        .map(log_watch_error)
        .boxed(),
    ];
    let mut triggers = futures::stream::select_all(triggers);
    let mut recheck: Option<(Instant, u32)> = None;
    loop {
        let rechecks_left = match recheck {
            Some((at, left)) => tokio::select! {
                event = triggers.next() => event.map(|()| DISCOVERY_RECHECKS),
                () = tokio::time::sleep_until(at) => Some(left),
            },
            None => triggers.next().await.map(|()| DISCOVERY_RECHECKS),
        };
        let Some(rechecks_left) = rechecks_left else {
            return Ok(());
        };
        // A burst of events (the initial lists) needs one look, not one per event.
        while let Some(Some(())) = futures::FutureExt::now_or_never(triggers.next()) {}
        recheck = None;
        let Some(workload) = ready_workload(&deployments, &statefulsets) else {
            send(&plans, Plan::default());
            continue;
        };
        match served(&client).await {
            Ok(served) => {
                let plan = Plan {
                    sandbox: served.sandbox,
                    extensions: workload.extensions && served.extensions,
                };
                if served != Served::from_crds(&crds) && rechecks_left > 0 {
                    recheck = Some((Instant::now() + DISCOVERY_RECHECK, rechecks_left - 1));
                }
                send(&plans, plan);
            }
            Err(error) => {
                tracing::debug!(%error, "discovery failed; keeping the current plan");
                recheck = Some((Instant::now() + DISCOVERY_RETRY, rechecks_left));
            }
        }
    }
}

fn log_watch_error<T>(event: Result<T, watcher::Error>) {
    if let Err(error) = event {
        tracing::debug!(%error, "watch of the controller's workloads or CRDs failed; retrying");
    }
}

fn send(plans: &watch::Sender<Plan>, plan: Plan) {
    plans.send_if_modified(|current| {
        if *current == plan {
            return false;
        }
        tracing::debug!(?plan, "the upstream controller's state changed");
        *current = plan;
        true
    });
}

/// The upstream controller's workload, when one has a ready pod.
struct Workload {
    extensions: bool,
}

fn ready_workload(
    deployments: &Store<Deployment>,
    statefulsets: &Store<StatefulSet>,
) -> Option<Workload> {
    let deployments = deployments.state().into_iter().filter_map(|d| {
        let ready = d
            .status
            .as_ref()
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0);
        workload(ready, d.spec.as_ref().map(|s| &s.template))
    });
    let statefulsets = statefulsets.state().into_iter().filter_map(|s| {
        let ready = s
            .status
            .as_ref()
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0);
        workload(ready, s.spec.as_ref().map(|s| &s.template))
    });
    deployments.chain(statefulsets).max_by_key(|w| w.extensions)
}

fn workload(ready_replicas: i32, template: Option<&PodTemplateSpec>) -> Option<Workload> {
    (ready_replicas >= 1).then(|| Workload {
        extensions: template.and_then(|t| t.spec.as_ref()).is_some_and(|spec| {
            spec.containers
                .iter()
                .flat_map(|c| c.args.iter().flatten())
                .any(|a| a == EXTENSIONS_ARG)
        }),
    })
}

/// The agent-sandbox APIs the API server serves.
#[derive(Debug, PartialEq, Eq)]
struct Served {
    sandbox: Option<Version>,
    extensions: bool,
}

const EXTENSION_RESOURCES: [&str; 3] = ["sandboxtemplates", "sandboxwarmpools", "sandboxclaims"];

impl Served {
    /// What discovery should say once it has caught up with the CRDs.
    fn from_crds(crds: &Store<CustomResourceDefinition>) -> Self {
        let served = |name: &str, version: &str| {
            crds.state().iter().any(|crd| {
                crd.metadata.name.as_deref() == Some(name)
                    && crd
                        .spec
                        .versions
                        .iter()
                        .any(|v| v.name == version && v.served)
                    && crd
                        .status
                        .iter()
                        .flat_map(|s| s.conditions.iter().flatten())
                        .any(|c| c.type_ == "Established" && c.status == "True")
            })
        };
        let sandboxes = format!("sandboxes.{GROUP}");
        Self {
            sandbox: Version::PREFERRED
                .into_iter()
                .find(|v| served(&sandboxes, v.as_str())),
            extensions: EXTENSION_RESOURCES
                .iter()
                .all(|plural| served(&format!("{plural}.{EXTENSIONS_GROUP}"), EXTENSIONS_VERSION)),
        }
    }
}

async fn served(client: &Client) -> Result<Served, kube::Error> {
    let core = group(client, GROUP).await?;
    let extensions = group(client, EXTENSIONS_GROUP).await?;
    let has = |group: &Option<ApiGroup>, version: &str, plural: &str| {
        group.as_ref().is_some_and(|g| {
            g.versions().any(|v| v == version)
                && g.versioned_resources(version)
                    .iter()
                    .any(|(r, _)| r.plural == plural)
        })
    };
    Ok(Served {
        sandbox: Version::PREFERRED
            .into_iter()
            .find(|v| has(&core, v.as_str(), "sandboxes")),
        extensions: EXTENSION_RESOURCES
            .iter()
            .all(|plural| has(&extensions, EXTENSIONS_VERSION, plural)),
    })
}

/// A group's discovery, `None` when the server does not serve it (or, while CRDs change, lists
/// the group but not yet or no longer its versions).
async fn group(client: &Client, name: &str) -> Result<Option<ApiGroup>, kube::Error> {
    match discovery::group(client, name).await {
        Ok(group) => Ok(Some(group)),
        Err(kube::Error::Discovery(_)) => Ok(None),
        Err(error) if is_not_found(&error) => Ok(None),
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{Container, PodSpec};

    use super::*;

    fn template(args: &[&str]) -> PodTemplateSpec {
        PodTemplateSpec {
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "agent-sandbox-controller".into(),
                    args: Some(args.iter().map(|a| (*a).to_owned()).collect()),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_workload_counts_once_a_replica_is_ready() {
        assert!(workload(0, Some(&template(&["--extensions"]))).is_none());
        assert!(
            workload(1, Some(&template(&["--leader-elect=true", "--extensions"])))
                .unwrap()
                .extensions
        );
        assert!(
            !workload(1, Some(&template(&["--leader-elect=true"])))
                .unwrap()
                .extensions
        );
        assert!(!workload(1, None).unwrap().extensions);
    }
}
