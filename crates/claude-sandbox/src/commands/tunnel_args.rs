//! Opening a tunnel to a sandbox port, as `--via` says.

use claude_sandbox_core::{Field, Via};
use claude_sandbox_kube::{cluster::Cluster, tunnel::Tunnel};

use super::existing_sandbox;
use crate::{
    cli::{GlobalArgs, TunnelArgs},
    error::Error,
};

pub fn via(args: &TunnelArgs) -> Result<Via, Error> {
    Ok(Via::parse(Field::new("--via", "via"), &args.via)?)
}

/// A tunnel to `port` of sandbox `name`.
pub async fn open(
    global: &GlobalArgs,
    name: &str,
    port: u16,
    args: &TunnelArgs,
) -> Result<(Cluster, Tunnel), Error> {
    let via = via(args)?;
    let (cluster, sandbox) = existing_sandbox(global, name).await?;
    let tunnel = Tunnel::new(&cluster, &sandbox, port, via).await?;
    Ok((cluster, tunnel))
}
