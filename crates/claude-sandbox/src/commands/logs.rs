use claude_sandbox_core::layout::CONTAINER_NAME;
use futures::{AsyncBufReadExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::{Api, api::LogParams};

use super::existing_sandbox;
use crate::{
    cli::{GlobalArgs, LogsArgs},
    error::{Error, Exit},
    terminal,
};

pub async fn run(args: &LogsArgs, global: &GlobalArgs) -> Result<Exit, Error> {
    let (cluster, sandbox) = existing_sandbox(global, &args.sandbox.name).await?;
    let state = sandbox.require(&cluster).await?;
    let pods = Api::<Pod>::namespaced(cluster.client.clone(), &cluster.namespace);
    let params = LogParams {
        container: Some(CONTAINER_NAME.to_owned()),
        follow: args.follow,
        tail_lines: args.tail,
        ..LogParams::default()
    };
    let stream = pods
        .log_stream(&state.pod_name(), &params)
        .await
        .map_err(|e| cluster.error(e))?;
    let mut lines = stream.lines();
    while let Some(line) = lines.try_next().await? {
        terminal::write_stdout(&(line + "\n"))?;
    }
    Ok(Exit::Success)
}
