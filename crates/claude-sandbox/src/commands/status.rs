use claude_sandbox_kube::status::{self, SandboxReport};

use super::existing_sandbox;
use crate::{
    cli::{GlobalArgs, StatusArgs},
    error::{Error, Exit},
    terminal,
};

pub async fn run(args: &StatusArgs, global: &GlobalArgs) -> Result<Exit, Error> {
    let (cluster, sandbox) = existing_sandbox(global, &args.sandbox.name).await?;
    let state = sandbox.require(&cluster).await?;
    let report = status::report(&cluster, &state, true).await?;
    terminal::write_stdout(&match args.output {
        Some(format) => format.serialize(&report),
        None => readable(&report),
    })?;
    Ok(Exit::Success)
}

fn readable(r: &SandboxReport) -> String {
    let mut out = format!(
        "Name:        {}\nNamespace:   {}\nAPI:         {}\nReady:       {}\nPhase:       {}\n",
        r.name,
        r.namespace,
        r.api_version,
        if r.ready { "yes" } else { "no" },
        r.phase
    );
    if let Some(phase) = &r.envbuilder_phase {
        out += &format!("Envbuilder:  {phase}\n");
    }
    out += &format!(
        "Runtime:     {}\nNode:        {}\nPod IPs:     {}\nCreated:     {}\n",
        r.runtime,
        r.node.as_deref().unwrap_or("-"),
        if r.pod_ips.is_empty() {
            "-".to_owned()
        } else {
            r.pod_ips.join(", ")
        },
        r.created.as_deref().unwrap_or("-"),
    );
    match &r.workspace {
        Some(w) => {
            out += &format!(
                "Workspace:   PVC {} {} ({}{})\n",
                w.claim,
                w.capacity.as_deref().unwrap_or("?"),
                w.phase.as_deref().unwrap_or("?"),
                w.storage_class
                    .as_deref()
                    .map(|c| format!(", class {c}"))
                    .unwrap_or_default()
            )
        }
        None => out += "Workspace:   -\n",
    }
    out += &format!(
        "Endpoints:   {} (code-server), {} (SSH)\nConditions:\n",
        r.endpoints.code_server, r.endpoints.ssh
    );
    for c in &r.conditions {
        out += &format!(
            "  {:<14} {:<6} {:<22} {}\n",
            c.type_, c.status, c.reason, c.message
        );
    }
    out
}
