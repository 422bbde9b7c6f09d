use claude_sandbox_kube::wait;
use k8s_openapi::api::core::v1::Pod;
use kube::{
    Api,
    runtime::wait::{await_condition, conditions},
};

use super::existing_sandbox;
use crate::{
    cli::{GlobalArgs, NameArg, ResumeArgs},
    error::{Error, Exit},
    terminal::{self, ProgressLine},
};

pub async fn suspend(args: &NameArg, global: &GlobalArgs) -> Result<Exit, Error> {
    let (cluster, sandbox) = existing_sandbox(global, &args.name).await?;
    let state = sandbox.require(&cluster).await?;
    let pods = Api::<Pod>::namespaced(cluster.client.clone(), &cluster.namespace);
    let pod = pods
        .get_opt(&state.pod_name())
        .await
        .map_err(|e| cluster.error(e))?;
    sandbox.set_suspended(&cluster, true).await?;
    if let Some(pod) = pod {
        let progress = ProgressLine::new();
        progress.update("stopping the pod");
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        await_condition(pods, &state.pod_name(), conditions::is_deleted(&uid))
            .await
            .map_err(|e| {
                claude_sandbox_kube::Error::Prerequisite(format!("watching the pod failed: {e}"))
            })?;
        progress.finish();
    }
    terminal::write_stdout(&format!(
        "Sandbox {} suspended; its workspace volume stays. `claude-sandbox resume {} -n {}` starts it again.\n",
        args.name, args.name, cluster.namespace
    ))?;
    Ok(Exit::Success)
}

pub async fn resume(args: &ResumeArgs, global: &GlobalArgs) -> Result<Exit, Error> {
    let (cluster, sandbox) = existing_sandbox(global, &args.sandbox.name).await?;
    sandbox.require(&cluster).await?;
    sandbox.set_suspended(&cluster, false).await?;
    let progress = ProgressLine::new();
    let waited = wait::wait_ready(&cluster, &sandbox, args.wait.timeout, |p| {
        progress.update(&p.to_string())
    })
    .await;
    progress.finish();
    waited?;
    terminal::write_stdout(&format!("Sandbox {} is ready again.\n", args.sandbox.name))?;
    Ok(Exit::Success)
}
