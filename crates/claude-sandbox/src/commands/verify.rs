//! `verify`: the sandbox checked end to end, as a checklist with timings. Later checks that need
//! a running pod are skipped when there is none; secrets are checked by name only.

use std::{
    collections::BTreeSet,
    future::Future,
    time::{Duration, Instant},
};

use claude_sandbox_core::{
    envbuilder_log, layout,
    remote::{self, Session},
};
use claude_sandbox_kube::{
    Error as ClusterError, cluster::Cluster, sandbox_pod::SandboxPod, tunnel::Tunnel,
};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kube::{Api, api::LogParams};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{existing_sandbox, ssh::SshTarget, tunnel_args};
use crate::{
    cli::{GlobalArgs, VerifyArgs},
    error::{Error, Exit},
    terminal,
};

/// How long one network check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Outcome {
    Pass,
    Fail,
    Skip,
}

#[derive(Debug, Serialize)]
struct Check {
    name: &'static str,
    outcome: Outcome,
    detail: String,
    seconds: f64,
}

#[derive(Debug, Serialize)]
struct VerifyReport {
    sandbox: String,
    namespace: String,
    passed: bool,
    checks: Vec<Check>,
}

/// A check's result before it is timed.
type Verdict = (Outcome, String);

fn pass(detail: impl Into<String>) -> Verdict {
    (Outcome::Pass, detail.into())
}

fn fail(detail: impl Into<String>) -> Verdict {
    (Outcome::Fail, detail.into())
}

fn skip(detail: impl Into<String>) -> Verdict {
    (Outcome::Skip, detail.into())
}

#[derive(Default)]
struct Checklist {
    checks: Vec<Check>,
}

impl Checklist {
    async fn run(&mut self, name: &'static str, check: impl Future<Output = Verdict>) {
        let started = Instant::now();
        let (outcome, detail) = check.await;
        tracing::debug!(name, ?outcome, detail, "check");
        self.checks.push(Check {
            name,
            outcome,
            detail,
            seconds: started.elapsed().as_secs_f64(),
        });
    }

    fn skip_all(&mut self, names: &[&'static str], why: &str) {
        for name in names {
            self.checks.push(Check {
                name,
                outcome: Outcome::Skip,
                detail: why.to_owned(),
                seconds: 0.0,
            });
        }
    }
}

pub async fn run(args: &VerifyArgs, global: &GlobalArgs) -> Result<Exit, Error> {
    let via = tunnel_args::via(&args.tunnel)?;
    let (cluster, sandbox) = existing_sandbox(global, &args.sandbox.name).await?;
    let mut list = Checklist::default();

    let state = sandbox.require(&cluster).await?;
    list.run("sandbox", async {
        match state.condition("Ready") {
            Some(c) if c.status == "True" => pass("Ready"),
            Some(c) => fail(format!("not Ready: {} {}", c.reason, c.message)),
            None => fail("no Ready condition yet"),
        }
    })
    .await;

    let pod = SandboxPod::resolve(&cluster, &sandbox).await;
    list.run("pod", async {
        match &pod {
            Ok(pod) => pass(format!(
                "{} Running on {}",
                pod.name,
                pod.pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.node_name.clone())
                    .unwrap_or_default()
            )),
            Err(error) => fail(error.to_string()),
        }
    })
    .await;
    let later = [
        "envbuilder",
        "code-server",
        "claude",
        "ssh",
        "secrets",
        "certificates",
    ];
    match pod {
        Ok(pod) => {
            list.run("envbuilder", envbuilder_finished(&cluster, &pod))
                .await;
            list.run(
                "code-server",
                code_server_answers(Tunnel::new(
                    &cluster,
                    &sandbox,
                    layout::CODE_SERVER_PORT,
                    via,
                )),
            )
            .await;
            list.run("claude", claude_runs(&pod)).await;
            let ssh_target = match &args.identity {
                Some(_) => Some(SshTarget::new(global, &cluster, &pod, None, &args.tunnel).await),
                None => None,
            };
            list.run(
                "ssh",
                ssh_answers(
                    Tunnel::new(&cluster, &sandbox, layout::SSH_PORT, via),
                    args.identity.as_deref().zip(ssh_target),
                ),
            )
            .await;
            list.run("secrets", secrets_present(&cluster, &pod)).await;
            list.run("certificates", certificates_present(&cluster, &pod))
                .await;
        }
        Err(_) => list.skip_all(&later, "the pod is not running"),
    }

    let report = VerifyReport {
        sandbox: sandbox.name.clone(),
        namespace: cluster.namespace.clone(),
        passed: list.checks.iter().all(|c| c.outcome != Outcome::Fail),
        checks: list.checks,
    };
    terminal::write_stdout(&match args.output {
        Some(format) => format.serialize(&report),
        None => checklist(&report),
    })?;
    if report.passed {
        return Ok(Exit::Success);
    }
    let failed: Vec<_> = report
        .checks
        .iter()
        .filter(|c| c.outcome == Outcome::Fail)
        .map(|c| c.name)
        .collect();
    terminal::print_error_message(format!(
        "sandbox {} failed verification: {}",
        report.sandbox,
        failed.join(", ")
    ));
    Ok(Exit::Failure)
}

fn checklist(report: &VerifyReport) -> String {
    let mut out = format!(
        "Sandbox {} in namespace {}\n",
        report.sandbox, report.namespace
    );
    for check in &report.checks {
        let mark = match check.outcome {
            Outcome::Pass => "ok  ",
            Outcome::Fail => "FAIL",
            Outcome::Skip => "skip",
        };
        out += &format!(
            "  {mark}  {:<13} {:>6.2}s  {}\n",
            check.name, check.seconds, check.detail
        );
    }
    out
}

/// envbuilder's ready marker is in the log; the build time is from its first line to the marker.
async fn envbuilder_finished(cluster: &Cluster, pod: &SandboxPod) -> Verdict {
    let api: Api<Pod> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let params = LogParams {
        container: Some(layout::CONTAINER_NAME.to_owned()),
        timestamps: true,
        ..LogParams::default()
    };
    let log = match api.logs(&pod.name, &params).await {
        Ok(log) => log,
        Err(e) => return fail(format!("cannot read the log: {}", cluster.error(e))),
    };
    let timestamp = |line: &str| {
        line.split_once(' ')
            .and_then(|(ts, _)| ts.parse::<jiff::Timestamp>().ok())
    };
    let first = log.lines().next().and_then(timestamp);
    match log.lines().find(|l| envbuilder_log::is_ready_marker(l)) {
        Some(marker) => match (first, timestamp(marker)) {
            (Some(first), Some(ready)) => pass(format!(
                "built and started in {:.0}s",
                (ready - first)
                    .total(jiff::Unit::Second)
                    .unwrap_or_default()
            )),
            _ => pass("built and started"),
        },
        None => fail(format!(
            "the log has no \"{}\" line: envbuilder has not finished (see `claude-sandbox logs {}`)",
            envbuilder_log::READY_MARKER,
            pod.sandbox
        )),
    }
}

/// `GET /healthz` through a tunnel answers 200.
async fn code_server_answers(
    tunnel: impl Future<Output = Result<Tunnel, ClusterError>>,
) -> Verdict {
    let request = "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    let exchange = async {
        let tunnel = tunnel.await?;
        let mut stream = tunnel.open().await?;
        let transport = tunnel.transport().await;
        let io_error = |e: std::io::Error| ClusterError::Access(e.to_string());
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(io_error)?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.map_err(io_error)?;
        if response.is_empty() {
            let why = stream
                .failure()
                .await
                .unwrap_or_else(|| "no answer".to_owned());
            return Err(ClusterError::Access(why));
        }
        Ok((String::from_utf8_lossy(&response).into_owned(), transport))
    };
    match tokio::time::timeout(CHECK_TIMEOUT, exchange).await {
        Err(_) => fail(format!(
            "no answer on port {} within {}s",
            layout::CODE_SERVER_PORT,
            CHECK_TIMEOUT.as_secs()
        )),
        Ok(Err(error)) => fail(format!("port {}: {error}", layout::CODE_SERVER_PORT)),
        Ok(Ok((response, transport))) => {
            let status = response.lines().next().unwrap_or_default().to_owned();
            if status.split_whitespace().nth(1) == Some("200") {
                pass(format!("/healthz answers 200 (via {transport})"))
            } else {
                fail(format!("/healthz answers {status:?}"))
            }
        }
    }
}

/// `claude --version` runs as the devcontainer's user.
async fn claude_runs(pod: &SandboxPod) -> Verdict {
    let command = Session::default().command(&["claude".to_owned(), "--version".to_owned()]);
    match pod.run(&command, None).await {
        Ok(output) if output.code == 0 => pass(
            output
                .stdout_text()
                .lines()
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned(),
        ),
        Ok(output) => fail(format!(
            "`claude --version` exited with {}: {}",
            output.code,
            output.stderr_line()
        )),
        Err(error) => fail(error.to_string()),
    }
}

/// sshd sends its banner through a tunnel; with a key, a login runs `true`.
async fn ssh_answers(
    tunnel: impl Future<Output = Result<Tunnel, ClusterError>>,
    login: Option<(&std::path::Path, Result<SshTarget, Error>)>,
) -> Verdict {
    let banner = async {
        let tunnel = tunnel.await?;
        let mut stream = tunnel.open().await?;
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while line.len() < 255
            && stream
                .read(&mut byte)
                .await
                .map_err(|e| ClusterError::Access(e.to_string()))?
                == 1
        {
            if byte[0] == b'\n' {
                break;
            }
            line.push(byte[0]);
        }
        if line.is_empty() {
            let why = stream
                .failure()
                .await
                .unwrap_or_else(|| "no banner".to_owned());
            return Err(ClusterError::Access(why));
        }
        Ok(String::from_utf8_lossy(&line).trim().to_owned())
    };
    let banner = match tokio::time::timeout(CHECK_TIMEOUT, banner).await {
        Err(_) => {
            return fail(format!(
                "no banner on port {} within {}s",
                layout::SSH_PORT,
                CHECK_TIMEOUT.as_secs()
            ));
        }
        Ok(Err(error)) => return fail(format!("port {}: {error}", layout::SSH_PORT)),
        Ok(Ok(banner)) if !banner.starts_with("SSH-") => {
            return fail(format!("port {} is not sshd: {banner:?}", layout::SSH_PORT));
        }
        Ok(Ok(banner)) => banner,
    };
    let Some((key, target)) = login else {
        return pass(banner);
    };
    let target = match target {
        Ok(target) => target,
        Err(error) => return fail(format!("{banner}; cannot log in: {error}")),
    };
    let mut command = tokio::process::Command::new("ssh");
    command
        .args(["-i"])
        .arg(key)
        .args(["-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes"]);
    for (name, value) in target.options() {
        command.arg("-o").arg(format!("{name}={value}"));
    }
    command
        .arg(&target.alias)
        .arg("true")
        .stdin(std::process::Stdio::null());
    match tokio::time::timeout(CHECK_TIMEOUT, command.output()).await {
        Err(_) => fail(format!(
            "{banner}; the login did not finish within {}s",
            CHECK_TIMEOUT.as_secs()
        )),
        Ok(Err(error)) => fail(format!("{banner}; cannot run ssh: {error}")),
        Ok(Ok(output)) if output.status.success() => pass(format!(
            "{banner}; logged in as {} and ran `true`",
            target.user
        )),
        Ok(Ok(output)) => fail(format!(
            "{banner}; the login as {} failed: {}",
            target.user,
            String::from_utf8_lossy(&output.stderr)
                .lines()
                .last()
                .unwrap_or_default()
                .trim()
        )),
    }
}

/// Every key of the sandbox Secret that the pod reads is set in the devcontainer's environment.
async fn secrets_present(cluster: &Cluster, pod: &SandboxPod) -> Verdict {
    let refs = pod.secret_env();
    let secrets: BTreeSet<&String> = refs.iter().map(|r| &r.secret).collect();
    let api: Api<Secret> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let mut expected = Vec::new();
    for secret in secrets {
        match api.get_opt(secret).await {
            Ok(Some(found)) => {
                let keys: BTreeSet<String> = found
                    .data
                    .iter()
                    .flat_map(|d| d.keys().cloned())
                    .chain(found.string_data.iter().flat_map(|d| d.keys().cloned()))
                    .collect();
                expected.extend(
                    refs.iter()
                        .filter(|r| &r.secret == secret && keys.contains(&r.key))
                        .map(|r| r.variable.clone()),
                );
            }
            Ok(None) => {}
            Err(e) => return skip(format!("cannot read Secret {secret}: {}", cluster.error(e))),
        }
    }
    if expected.is_empty() {
        return skip("no secrets configured");
    }
    let names: Vec<&str> = expected.iter().map(String::as_str).collect();
    let command = Session::default().command(&remote::set_variables(&names));
    let present = match pod.run(&command, None).await {
        Ok(output) if output.code == 0 => output.stdout_text(),
        Ok(output) => return fail(output.stderr_line()),
        Err(error) => return fail(error.to_string()),
    };
    let present: BTreeSet<&str> = present.lines().collect();
    let missing: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| !present.contains(n))
        .collect();
    if missing.is_empty() {
        pass(format!("set: {}", names.join(", ")))
    } else {
        fail(format!(
            "not in the environment: {} (the Secret has them: restart the pod with `claude-sandbox suspend` and `resume`)",
            missing.join(", ")
        ))
    }
}

/// The Vault CA files are in place when their Secret or ConfigMap exists.
async fn certificates_present(cluster: &Cluster, pod: &SandboxPod) -> Verdict {
    let spec = pod.pod.spec.as_ref();
    let mounts: Vec<(String, String)> = pod
        .devcontainer()
        .and_then(|c| c.volume_mounts.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|m| {
            let file = match m.mount_path.as_str() {
                layout::VAULT_CA_DIR => layout::VAULT_CA_FILE,
                layout::VAULT_SSH_CA_DIR => layout::VAULT_SSH_CA_FILE,
                _ => return None,
            };
            Some((m.name.clone(), format!("{}/{file}", m.mount_path)))
        })
        .collect();
    let mut configured = Vec::new();
    for (volume, path) in mounts {
        let source = spec
            .and_then(|s| s.volumes.as_ref())
            .into_iter()
            .flatten()
            .find(|v| v.name == volume);
        let secret = source.and_then(|v| v.secret.as_ref()?.secret_name.clone());
        let config_map = source.and_then(|v| Some(v.config_map.as_ref()?.name.clone()));
        let exists = match (secret, config_map) {
            (Some(name), _) => object_exists::<Secret>(cluster, &name).await,
            (None, Some(name)) => object_exists::<ConfigMap>(cluster, &name).await,
            (None, None) => Ok(false),
        };
        match exists {
            Ok(true) => configured.push(path),
            Ok(false) => {}
            Err(e) => {
                return skip(format!(
                    "cannot read the source of volume {volume}: {}",
                    cluster.error(e)
                ));
            }
        }
    }
    if configured.is_empty() {
        return skip("no Vault CA configured");
    }
    let paths: Vec<&str> = configured.iter().map(String::as_str).collect();
    match pod.run(&remote::files_present(&paths), None).await {
        Ok(output) if output.code == 0 => pass(format!("present: {}", paths.join(", "))),
        Ok(output) => fail(format!(
            "missing in the pod: {}",
            output.stdout_text().trim()
        )),
        Err(error) => fail(error.to_string()),
    }
}

async fn object_exists<K>(cluster: &Cluster, name: &str) -> Result<bool, kube::Error>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    Api::<K>::namespaced(cluster.client.clone(), &cluster.namespace)
        .get_opt(name)
        .await
        .map(|o| o.is_some())
}
