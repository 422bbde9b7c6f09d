//! A container's log files: `<container>.log` for the current run, `<container>.previous.log` for
//! the last terminated one (what `previous=true` reads). Each line keeps the time it was logged,
//! as the CRI log format does: `<RFC3339Nano> <text>`.

use std::path::{Path, PathBuf};

use k8s_openapi::jiff::Timestamp;
use tokio::{io::AsyncWriteExt, sync::watch};

/// Where a container's runs are, for readers waiting on new lines or on the end of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogState {
    /// Runs started so far; the current (or last) one is number `runs`.
    pub runs: u32,
    pub phase: RunPhase,
    /// Lines appended so far, to wake followers.
    pub appended: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RunPhase {
    /// Not running yet (or between runs), with the kubelet's reason.
    Waiting(String),
    Running,
    Exited,
}

#[derive(Debug)]
pub(crate) struct ContainerLog {
    current: PathBuf,
    previous: PathBuf,
    state: watch::Sender<LogState>,
    /// Keeps rotation and appends apart.
    write: tokio::sync::Mutex<()>,
}

impl ContainerLog {
    pub fn new(pod_dir: &Path, container: &str) -> Self {
        Self {
            current: pod_dir.join(format!("{container}.log")),
            previous: pod_dir.join(format!("{container}.previous.log")),
            state: watch::Sender::new(LogState {
                runs: 0,
                phase: RunPhase::Waiting("ContainerCreating".to_owned()),
                appended: 0,
            }),
            write: tokio::sync::Mutex::new(()),
        }
    }

    pub fn current_path(&self) -> &Path {
        &self.current
    }

    pub fn previous_path(&self) -> &Path {
        &self.previous
    }

    pub fn subscribe(&self) -> watch::Receiver<LogState> {
        self.state.subscribe()
    }

    pub fn state(&self) -> LogState {
        self.state.borrow().clone()
    }

    /// Forgets the logs of an earlier pod of the same name.
    pub async fn reset(&self) -> std::io::Result<()> {
        let _write = self.write.lock().await;
        for path in [&self.current, &self.previous] {
            match tokio::fs::remove_file(path).await {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error),
                _ => {}
            }
        }
        Ok(())
    }

    /// Takes over the state of a pod this kubelet ran before it restarted (files kept).
    pub fn adopt(&self, runs: u32, phase: RunPhase) {
        self.state.send_modify(|state| {
            state.runs = runs;
            state.phase = phase;
        });
    }

    pub fn set_waiting(&self, reason: &str) {
        self.state
            .send_modify(|state| state.phase = RunPhase::Waiting(reason.to_owned()));
    }

    /// Starts a run: the current log becomes the previous one, and a new one begins.
    pub async fn start_run(&self) -> std::io::Result<()> {
        let _write = self.write.lock().await;
        if self.state.borrow().runs > 0 && tokio::fs::try_exists(&self.current).await? {
            tokio::fs::rename(&self.current, &self.previous).await?;
        }
        tokio::fs::File::create(&self.current).await?;
        self.state.send_modify(|state| {
            state.runs += 1;
            state.phase = RunPhase::Running;
        });
        Ok(())
    }

    pub fn finish_run(&self) {
        self.state
            .send_modify(|state| state.phase = RunPhase::Exited);
    }

    /// Appends `text` (one line per line of it) with the current time.
    pub async fn append(&self, text: &str) -> std::io::Result<()> {
        let _write = self.write.lock().await;
        let now = Timestamp::now();
        let mut bytes = Vec::new();
        let mut count = 0;
        for line in text.split('\n') {
            bytes.extend_from_slice(format!("{now:.9} {line}\n").as_bytes());
            count += 1;
        }
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.current)
            .await?;
        file.write_all(&bytes).await?;
        // tokio writes in the background: the line must be in the file before followers look.
        file.flush().await?;
        self.state.send_modify(|state| state.appended += count);
        Ok(())
    }
}

/// Splits a stored line into its timestamp and text.
pub(crate) fn split_line(line: &str) -> Option<(Timestamp, &str)> {
    let (time, text) = line.split_once(' ')?;
    Some((time.parse().ok()?, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_rotate_and_lines_keep_their_time() {
        let dir = tempfile::tempdir().unwrap();
        let log = ContainerLog::new(dir.path(), "main");
        log.start_run().await.unwrap();
        log.append("one\ntwo").await.unwrap();
        log.finish_run();
        log.start_run().await.unwrap();
        log.append("three").await.unwrap();

        let previous = std::fs::read_to_string(log.previous_path()).unwrap();
        let current = std::fs::read_to_string(log.current_path()).unwrap();
        let texts = |s: &str| {
            s.lines()
                .map(|l| split_line(l).unwrap().1.to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(texts(&previous), ["one", "two"]);
        assert_eq!(texts(&current), ["three"]);
        let stamp = current.split_once(' ').unwrap().0;
        // RFC3339 with nanoseconds, as the kubelet prints with `timestamps=true`.
        assert_eq!(
            stamp.len(),
            "2006-01-02T15:04:05.000000000Z".len(),
            "{stamp}"
        );
        assert_eq!(
            log.state(),
            LogState {
                runs: 2,
                phase: RunPhase::Running,
                appended: 3
            }
        );

        log.reset().await.unwrap();
        assert!(!log.current_path().exists() && !log.previous_path().exists());
    }
}
