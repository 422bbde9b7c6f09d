//! The extensions controllers (upstream `extensions/controllers`), run when the installed
//! controller has `--extensions` and the v1beta1 extensions CRDs are served.

mod claim;
mod claim_rules;
mod claim_sandbox;
mod model;
mod template;
mod warm_pool;

use kube::Client;

/// Runs the SandboxTemplate, SandboxWarmPool and SandboxClaim controllers until their watches end.
pub(crate) async fn run(client: Client) {
    futures::join!(
        template::run(client.clone()),
        warm_pool::run(client.clone()),
        claim::run(client),
    );
}
