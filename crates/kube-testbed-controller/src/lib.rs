//! A simulated agent-sandbox controller for kube-testbed, with upstream semantics.
//!
//! The real controller (kubernetes-sigs/agent-sandbox) cannot run on the testbed's Kubernetes
//! 1.20 control plane, so this crate does its work in process: it reconciles `Sandbox` objects
//! into pods, PVCs and headless Services, and (when the installed controller runs with
//! `--extensions`) `SandboxTemplate`, `SandboxWarmPool` and `SandboxClaim` objects, with the
//! labels, annotations, condition types and reasons the upstream controller uses.
//!
//! It only works while the upstream controller is installed and ready (module `gate`): a cluster
//! without the controller leaves Sandboxes untouched, and so does this simulation.
//!
//! Semantics follow upstream's code of the `current/` snapshot (v1beta1) and of v0.1.0 (when
//! only v1alpha1 is served). Where this simulation knowingly differs:
//! - a mirrored `PodScheduled` condition without a message gets one (the testbed's API server
//!   cannot store empty strings in custom resources);
//! - the template hashes on warm-pool Sandboxes are computed over serde_json's rendering, so
//!   their values differ from upstream's (they are only compared with each other);
//! - no events, metrics, tracing annotations, leader election or webhooks; the v1alpha1
//!   extensions of v0.1.0 are not simulated.

mod api;
mod conditions;
mod error;
mod extensions;
mod gate;
mod keys;
mod metadata;
mod requeue;
mod runner;
mod sandbox;
mod time;

use futures::FutureExt;
use kube::Client;
use tokio::sync::watch;

pub use error::Error;

use crate::gate::Plan;

/// Runs the simulated controller until the future is dropped: watches whether the upstream
/// controller is installed and ready, and runs the reconcilers it would run while it is.
pub async fn run(client: Client) -> Result<(), Error> {
    let (plan_tx, plan_rx) = watch::channel(Plan::default());
    tokio::select! {
        result = gate::watch(client.clone(), plan_tx) => result,
        result = supervise(client, plan_rx) => result,
    }
}

/// Runs the reconcilers of the current plan, restarting them whenever the plan changes.
async fn supervise(client: Client, mut plans: watch::Receiver<Plan>) -> Result<(), Error> {
    loop {
        let plan = plans.borrow_and_update().clone();
        tracing::debug!(?plan, "running the reconcilers of a new plan");
        let mut reconcilers = reconcilers(client.clone(), plan).boxed();
        tokio::select! {
            changed = plans.changed() => {
                if changed.is_err() {
                    return Ok(());
                }
            }
            () = &mut reconcilers => {
                // Controllers only end when their watches do; wait for the next plan.
                if plans.changed().await.is_err() {
                    return Ok(());
                }
            }
        }
    }
}

/// The controllers a plan asks for, run together until all of them end (in practice: never).
async fn reconcilers(client: Client, plan: Plan) {
    let Some(version) = plan.sandbox else {
        return std::future::pending().await;
    };
    if plan.extensions {
        futures::join!(
            sandbox::run(client.clone(), version),
            extensions::run(client),
        );
    } else {
        sandbox::run(client, version).await;
    }
}
