//! The life of one pod's containers, as its behaviour asks: created, (image pull failing,) init
//! containers run to completion, main containers running, ready, exiting and restarting — each
//! step patched to the pod's `status` subresource as a kubelet does.

use std::{net::Ipv4Addr, sync::Arc, time::Duration};

use k8s_openapi::{api::core::v1::Pod, jiff::Timestamp};
use kube::{
    Api,
    api::{Patch, PatchParams},
};
use serde_json::json;
use tokio::{task::JoinSet, time::Instant};

use super::{
    pod_start::PodStart,
    status::{ResumePoint, StatusModel},
};
use crate::{
    behaviour::Behaviour,
    container_log::RunPhase,
    error::Error,
    log_script::{self, ScriptLine},
    pod_runtime::PodRuntime,
};

/// ErrImagePull shows this long before ImagePullBackOff.
const PULL_FAILURE: Duration = Duration::from_secs(1);
/// How long an init container runs.
const INIT_RUN: Duration = Duration::from_millis(100);
/// A crashed container shows Terminated this long, then CrashLoopBackOff this long: with the
/// default run of 1 s, a restart every ~2 s.
const TERMINATED_PAUSE: Duration = Duration::from_millis(500);
const BACK_OFF: Duration = Duration::from_millis(500);
/// Status patches are retried this often, this far apart, over API server hiccups.
const PATCH_ATTEMPTS: usize = 3;
const PATCH_RETRY: Duration = Duration::from_millis(200);

pub(crate) struct Simulation {
    api: Api<Pod>,
    name: String,
    namespace: String,
    uid: String,
    restart_policy: String,
    runtime: Arc<PodRuntime>,
    behaviour: Behaviour,
    start: PodStart,
    model: StatusModel,
    pod_ip: Ipv4Addr,
    /// Log scripts being played for the current run.
    players: JoinSet<()>,
}

impl Simulation {
    pub fn new(
        api: Api<Pod>,
        pod: &Pod,
        runtime: Arc<PodRuntime>,
        behaviour: Behaviour,
        start: PodStart,
        pod_ip: Ipv4Addr,
    ) -> Self {
        Self {
            api,
            name: runtime.name.clone(),
            namespace: runtime.namespace.clone(),
            uid: runtime.uid.clone(),
            restart_policy: pod
                .spec
                .as_ref()
                .and_then(|spec| spec.restart_policy.clone())
                .unwrap_or_else(|| "Always".to_owned()),
            model: StatusModel::new(pod),
            runtime,
            behaviour,
            start,
            pod_ip,
            players: JoinSet::new(),
        }
    }

    /// Plays the pod's life until its containers keep running (logs played out), are finished,
    /// or cannot start; resumes where a pod was left when it was already running here.
    pub async fn run(mut self) -> Result<(), Error> {
        match self.model.resume_point() {
            ResumePoint::Finished => {
                self.adopt_logs(RunPhase::Exited);
                return Ok(());
            }
            ResumePoint::Running(since) => {
                self.adopt_logs(RunPhase::Running);
                return self.run_main(Some(since)).await;
            }
            ResumePoint::Restarting => {
                self.adopt_logs(RunPhase::Exited);
                return self.run_main(None).await;
            }
            ResumePoint::Fresh => {}
        }
        for name in self.all_names() {
            self.container_log(&name)
                .reset()
                .await
                .map_err(|e| self.io_error("resetting the logs", e))?;
        }
        self.model.accept();
        self.patch().await?;
        if self.behaviour.image_pull_failure {
            return self.fail_image_pulls().await;
        }
        tokio::time::sleep(self.behaviour.start_delay).await;
        self.run_init_containers().await?;
        self.run_main(None).await
    }

    async fn fail_image_pulls(&mut self) -> Result<(), Error> {
        for name in self.all_names() {
            let image = self.image(&name);
            let message = format!(
                "rpc error: code = NotFound desc = failed to pull and unpack image \"{image}\": \
                 failed to resolve reference \"{image}\": {image}: not found"
            );
            self.model.wait(&name, "ErrImagePull", Some(message));
            self.container_log(&name)
                .set_waiting("trying and failing to pull image");
        }
        self.patch().await?;
        tokio::time::sleep(PULL_FAILURE).await;
        for name in self.all_names() {
            let message = format!("Back-off pulling image \"{}\"", self.image(&name));
            self.model.wait(&name, "ImagePullBackOff", Some(message));
        }
        self.patch().await
    }

    async fn run_init_containers(&mut self) -> Result<(), Error> {
        for name in self.model.init_names() {
            for main in self.model.main_names() {
                self.model.wait(&main, "PodInitializing", None);
                self.container_log(&main).set_waiting("PodInitializing");
            }
            if let Err(error) = self.start.resolve_env(&self.runtime, &name).await {
                return self.fail_start(&[name], error).await;
            }
            self.start_container(&name).await?;
            self.patch().await?;
            tokio::time::sleep(INIT_RUN).await;
            self.finish_players().await;
            self.container_log(&name).finish_run();
            self.model.terminate(&name, 0);
            self.patch().await?;
        }
        Ok(())
    }

    /// Runs the main containers: ready after the ready delay, and, if they exit, restarted per
    /// the restart policy (a crash loop) or finished.
    async fn run_main(&mut self, mut adopted_since: Option<Timestamp>) -> Result<(), Error> {
        loop {
            let mains = self.model.main_names();
            if let Err(error) = self.prepare_main(&mains).await {
                return self.fail_start(&mains, error).await;
            }
            let started = match adopted_since.take() {
                Some(since) => since,
                None => {
                    let now = Timestamp::now();
                    for name in &mains {
                        self.start_container(name).await?;
                    }
                    now
                }
            };
            self.model.set_phase("Running");
            self.model.set_pod_ip(self.pod_ip);
            self.patch().await?;
            // The timeline of this run, from when it started (earlier, for an adopted run).
            let elapsed = Timestamp::now()
                .duration_since(started)
                .try_into()
                .unwrap_or(Duration::ZERO);
            let start = Instant::now()
                .checked_sub(elapsed)
                .unwrap_or_else(Instant::now);
            let exit = self.behaviour.exit_code();
            let end = exit.map(|_| start + self.run_time());
            let ready_at =
                (!self.behaviour.never_ready).then(|| start + self.behaviour.ready_delay);
            if let Some(ready_at) = ready_at.filter(|at| end.is_none_or(|end| *at < end)) {
                tokio::time::sleep_until(ready_at).await;
                for name in self.model.main_names() {
                    self.model.set_ready(&name);
                }
                self.patch().await?;
            }
            let (Some(code), Some(end)) = (exit, end) else {
                self.finish_players().await;
                return Ok(());
            };
            tokio::time::sleep_until(end).await;
            self.finish_players().await;
            for name in self.model.main_names() {
                self.container_log(&name).finish_run();
                self.model.terminate(&name, code);
            }
            let restart = match self.restart_policy.as_str() {
                "Never" => false,
                "OnFailure" => code != 0,
                _ => true,
            };
            if !restart {
                self.model
                    .set_phase(if code == 0 { "Succeeded" } else { "Failed" });
                return self.patch().await;
            }
            self.patch().await?;
            tokio::time::sleep(TERMINATED_PAUSE).await;
            for name in self.model.main_names() {
                let message = format!(
                    "back-off {}s restarting failed container={name} pod={}_{}({})",
                    BACK_OFF.as_secs().max(1),
                    self.name,
                    self.namespace,
                    self.uid
                );
                self.model.back_off(&name, message);
                self.container_log(&name).set_waiting("CrashLoopBackOff");
            }
            self.patch().await?;
            tokio::time::sleep(BACK_OFF).await;
        }
    }

    /// What the main containers `mains` start with: their environment, and (the first time) what
    /// runs in and beside them.
    async fn prepare_main(&self, mains: &[String]) -> Result<(), Error> {
        for name in mains {
            self.start.resolve_env(&self.runtime, name).await?;
        }
        match mains.first() {
            Some(first) => self.start.start_environment(&self.runtime, first).await,
            None => Ok(()),
        }
    }

    /// Shows that containers `names` cannot start (waiting, with the reason and message a kubelet
    /// gives), then returns the error.
    async fn fail_start(&mut self, names: &[String], error: Error) -> Result<(), Error> {
        let (reason, message) = match &error {
            Error::ContainerStart { reason, message } => (*reason, message.clone()),
            other => ("CreateContainerError", other.to_string()),
        };
        for name in names {
            self.model.wait(name, reason, Some(message.clone()));
            self.container_log(name).set_waiting(reason);
        }
        self.patch().await?;
        Err(error)
    }

    /// Starts a run of container `name`: a new log, its status Running, its log script playing.
    async fn start_container(&mut self, name: &str) -> Result<(), Error> {
        let log = &self.container_log(name);
        log.start_run()
            .await
            .map_err(|e| self.io_error("starting a container log", e))?;
        self.model.start(name, &self.uid, Timestamp::now());
        let lines = self.script(name);
        let runtime = self.runtime.clone();
        let name = name.to_owned();
        let start = Instant::now();
        self.players.spawn(async move {
            if let Some(container) = runtime.container(&name)
                && let Err(error) = log_script::play(&lines, &container.log, start).await
            {
                tracing::warn!(%error, container = name, "writing a container log");
            }
        });
        Ok(())
    }

    /// What a main or init container logs in one run.
    fn script(&self, name: &str) -> Vec<ScriptLine> {
        let is_main = self.model.main_names().iter().any(|n| n == name);
        match (&self.behaviour.log_script, self.runtime.container(name)) {
            (Some(script), Some(container)) if is_main => script.lines(&container.env()),
            _ => vec![ScriptLine::started(name, &self.image(name))],
        }
    }

    /// A run that ends lasts `run-seconds`, or as long as its log script if that is longer.
    fn run_time(&self) -> Duration {
        let longest_script = self
            .model
            .main_names()
            .iter()
            .map(|name| log_script::duration(&self.script(name)))
            .max()
            .unwrap_or_default();
        self.behaviour.run_time.max(longest_script)
    }

    /// Waits for the log scripts of the run to be written.
    async fn finish_players(&mut self) {
        while self.players.join_next().await.is_some() {}
    }

    fn adopt_logs(&self, phase: RunPhase) {
        for name in self.all_names() {
            let runs = u32::try_from(self.model.restart_count(&name)).unwrap_or(0) + 1;
            self.container_log(&name).adopt(runs, phase.clone());
        }
    }

    async fn patch(&mut self) -> Result<(), Error> {
        // The UID makes the patch fail rather than touch a successor pod of the same name.
        let patch = json!({ "metadata": { "uid": self.uid }, "status": self.model.render() });
        let mut attempt = 1;
        loop {
            match self
                .api
                .patch_status(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => return Ok(()),
                // Gone or replaced: nothing to retry.
                Err(kube::Error::Api(status))
                    if status.code == 404 || status.code == 409 || status.code == 422 =>
                {
                    return Err(kube::Error::Api(status).into());
                }
                Err(error) if attempt >= PATCH_ATTEMPTS => return Err(error.into()),
                Err(error) => {
                    tracing::debug!(%error, pod = self.name, attempt, "patching the pod status; retrying");
                    attempt += 1;
                    tokio::time::sleep(PATCH_RETRY).await;
                }
            }
        }
    }

    fn all_names(&self) -> Vec<String> {
        let mut names = self.model.init_names();
        names.extend(self.model.main_names());
        names
    }

    fn image(&self, name: &str) -> String {
        self.runtime
            .container(name)
            .map(|c| c.image.clone())
            .unwrap_or_default()
    }

    fn container_log(&self, name: &str) -> &crate::container_log::ContainerLog {
        &self
            .runtime
            .container(name)
            .expect("the runtime has every container of the pod")
            .log
    }

    fn io_error(&self, what: &str, error: std::io::Error) -> Error {
        Error::io(
            format!("{what} of pod {}/{}", self.namespace, self.name),
            error,
        )
    }
}
