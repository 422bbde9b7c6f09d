use claude_sandbox_kube::{sandbox_ref, status};

use super::{connect, served_version};
use crate::{
    cli::{GlobalArgs, ListArgs},
    error::{Error, Exit},
    terminal,
};

pub async fn run(args: &ListArgs, global: &GlobalArgs) -> Result<Exit, Error> {
    let cluster = connect(global, None).await?;
    let version = served_version(&cluster).await?;
    let namespace = (!args.all_namespaces).then_some(cluster.namespace.as_str());
    let mut reports = Vec::new();
    for state in sandbox_ref::list_managed(&cluster, version, namespace).await? {
        reports.push(status::report(&cluster, &state, false).await?);
    }
    reports.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    let text = match args.output {
        Some(format) => format.serialize(&reports),
        None => {
            let mut out = format!(
                "{:<20} {:<36} {:<6} {:<34} {}\n",
                "NAMESPACE", "NAME", "READY", "PHASE", "CREATED"
            );
            for r in &reports {
                out += &format!(
                    "{:<20} {:<36} {:<6} {:<34} {}\n",
                    r.namespace,
                    r.name,
                    if r.ready { "yes" } else { "no" },
                    r.phase,
                    r.created.as_deref().unwrap_or("-")
                );
            }
            out
        }
    };
    terminal::write_stdout(&text)?;
    Ok(Exit::Success)
}
