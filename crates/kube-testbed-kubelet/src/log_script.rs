//! Log scripts: the lines a container logs, with their delays (`log-script` annotation).
//! `envbuilder` and `envbuilder-error` imitate envbuilder's own log, with the markers tools read
//! progress from (REFERENCE §2).

use std::time::Duration;

use tokio::time::Instant;

use crate::container_log::ContainerLog;

/// Gap between the lines of the envbuilder scripts.
const ENVBUILDER_STEP: Duration = Duration::from_millis(200);
/// Whom envbuilder runs the hooks and init script as in the sandbox image.
const ENVBUILDER_USER: &str = "vscode";
const DEFAULT_GIT_URL: &str = "https://github.com/coder/envbuilder-starter-devcontainer";

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum LogScript {
    /// A successful build, ending with the init command starting.
    Envbuilder,
    /// The clone fails; the container then exits 1.
    EnvbuilderError,
    /// `<delay-ms> <text>` lines.
    Inline(Vec<ScriptLine>),
}

/// One line, logged `delay` after the previous one.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ScriptLine {
    pub delay: Duration,
    pub text: String,
}

impl ScriptLine {
    fn new(delay: Duration, text: impl Into<String>) -> Self {
        Self {
            delay,
            text: text.into(),
        }
    }

    /// What a container without a script logs.
    pub fn started(container: &str, image: &str) -> Self {
        Self::new(
            Duration::ZERO,
            format!("kube-testbed: started container {container} (image {image})"),
        )
    }
}

impl LogScript {
    /// `envbuilder`, `envbuilder-error`, or lines `<delay-ms> <text>` separated by newlines (or by
    /// the two characters `\n`, which fit in a one-line annotation value).
    pub fn parse(value: &str) -> Result<Self, String> {
        match value {
            "envbuilder" => return Ok(Self::Envbuilder),
            "envbuilder-error" => return Ok(Self::EnvbuilderError),
            _ => {}
        }
        let lines = value
            .split('\n')
            .flat_map(|line| line.split("\\n"))
            .map(|line| line.trim_end_matches('\r'))
            .filter(|line| !line.trim().is_empty())
            .map(|line| {
                let (delay, text) = line
                    .trim_start()
                    .split_once(' ')
                    .unwrap_or((line.trim(), ""));
                let millis = delay.parse::<u64>().map_err(|_| {
                    "envbuilder, envbuilder-error or lines of `<delay-ms> <text>`".to_owned()
                })?;
                Ok(ScriptLine::new(Duration::from_millis(millis), text))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Self::Inline(lines))
    }

    /// Whether the container exits with an error after the script.
    pub fn fails(&self) -> bool {
        matches!(self, Self::EnvbuilderError)
    }

    /// The lines for a container with environment `env` (its literal values), from which the
    /// envbuilder scripts take the repository and workspace folder.
    pub fn lines(&self, env: &[(String, String)]) -> Vec<ScriptLine> {
        let var = |name: &str| {
            env.iter()
                .find(|(n, v)| n == name && !v.is_empty())
                .map(|(_, v)| v.as_str())
        };
        let url = var("ENVBUILDER_GIT_URL").unwrap_or(DEFAULT_GIT_URL);
        let workspace = var("ENVBUILDER_WORKSPACE_FOLDER")
            .map_or_else(|| default_workspace(url), str::to_owned);
        let step = |text: String| ScriptLine::new(ENVBUILDER_STEP, text);
        let start = ScriptLine::new(
            Duration::ZERO,
            "\u{1b}[1menvbuilder\u{1b}[0m v1.3.0 - Build development environments from repositories in a container",
        );
        let cloning = step(format!("#1: 📦 Cloning {url} to {workspace}..."));
        match self {
            Self::Inline(lines) => lines.clone(),
            Self::EnvbuilderError => vec![
                start,
                cloning,
                step("#1: Enumerating objects: 1243, done.".to_owned()),
                step("error: clone repo: authentication required".to_owned()),
            ],
            Self::Envbuilder => vec![
                start,
                cloning,
                step("#1: Enumerating objects: 1243, done.".to_owned()),
                step("#1: 📦 Cloned repository! [612.40ms]".to_owned()),
                step(format!(
                    "#2: Building with devcontainer.json at {workspace}/.devcontainer/devcontainer.json"
                )),
                step("#2: 🏗️ Building image...".to_owned()),
                step("#2: 🏗️ Built image! [1.92s]".to_owned()),
                step(format!(
                    "=== Running postCreateCommand as the \"{ENVBUILDER_USER}\" user..."
                )),
                step("Claude Code is installed".to_owned()),
                step(format!(
                    "=== Running init command as user \"{ENVBUILDER_USER}\""
                )),
            ],
        }
    }
}

/// How long playing `lines` takes.
pub(crate) fn duration(lines: &[ScriptLine]) -> Duration {
    lines.iter().map(|line| line.delay).sum()
}

/// Logs `lines` to `log`, each its delay after the previous one (measured from `start`, so that
/// delays do not drift).
pub(crate) async fn play(
    lines: &[ScriptLine],
    log: &ContainerLog,
    start: Instant,
) -> std::io::Result<()> {
    let mut due = start;
    for line in lines {
        due += line.delay;
        tokio::time::sleep_until(due).await;
        log.append(&line.text).await?;
    }
    Ok(())
}

/// envbuilder clones into `/workspaces/<repository name>`.
fn default_workspace(url: &str) -> String {
    let path = url.split('#').next().unwrap_or(url).trim_end_matches('/');
    let name = path
        .rsplit('/')
        .next()
        .unwrap_or("empty")
        .trim_end_matches(".git");
    format!("/workspaces/{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_scripts_parse_with_real_or_escaped_newlines() {
        let expected = LogScript::Inline(vec![
            ScriptLine::new(Duration::ZERO, "first line"),
            ScriptLine::new(Duration::from_millis(250), "second"),
            ScriptLine::new(Duration::from_millis(5), ""),
        ]);
        assert_eq!(
            LogScript::parse("0 first line\n250 second\n5").unwrap(),
            expected
        );
        assert_eq!(
            LogScript::parse("0 first line\\n250 second\\n5\n").unwrap(),
            expected
        );
        assert!(LogScript::parse("soon hello").is_err());
    }

    #[test]
    fn envbuilder_script_has_envbuilders_markers_in_order() {
        let env = vec![(
            "ENVBUILDER_GIT_URL".to_owned(),
            "https://example.com/acme/app.git#refs/heads/main".to_owned(),
        )];
        let lines = LogScript::Envbuilder.lines(&env);
        let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
        assert!((9..=12).contains(&lines.len()));
        assert!(texts[0].contains("v1.3.0 - Build development environments"));
        let position = |marker: &str| {
            texts
                .iter()
                .position(|t| t.contains(marker))
                .unwrap_or_else(|| panic!("{marker}"))
        };
        let order = [
            "📦 Cloning https://example.com/acme/app.git#refs/heads/main to /workspaces/app...",
            "📦 Cloned repository!",
            "🏗️ Building image...",
            "🏗️ Built image!",
            "=== Running postCreateCommand as the \"vscode\" user...",
            "=== Running init command as user \"vscode\"",
        ]
        .map(position);
        assert!(order.is_sorted(), "{texts:#?}");
        assert_eq!(
            order[5],
            texts.len() - 1,
            "the init command is the last line"
        );
        assert!(lines[1..].iter().all(|l| l.delay == ENVBUILDER_STEP));
        assert_eq!(duration(&lines), ENVBUILDER_STEP * (lines.len() as u32 - 1));
    }

    #[tokio::test]
    async fn scripts_play_with_their_delays_and_keep_each_lines_time() {
        let dir = tempfile::tempdir().unwrap();
        let log = ContainerLog::new(dir.path(), "main");
        log.start_run().await.unwrap();
        let lines = LogScript::parse("0 first\n150 second\n150 third")
            .unwrap()
            .lines(&[]);
        let started = std::time::Instant::now();
        play(&lines, &log, Instant::now()).await.unwrap();
        let elapsed = started.elapsed();
        assert!(
            elapsed >= Duration::from_millis(300) && elapsed < Duration::from_secs(2),
            "{elapsed:?}"
        );

        let content = std::fs::read_to_string(log.current_path()).unwrap();
        let stored: Vec<_> = content
            .lines()
            .map(|l| crate::container_log::split_line(l).unwrap())
            .collect();
        assert_eq!(
            stored.iter().map(|(_, text)| *text).collect::<Vec<_>>(),
            ["first", "second", "third"]
        );
        for pair in stored.windows(2) {
            let gap = pair[1].0.duration_since(pair[0].0);
            assert!(gap.as_millis() >= 140 && gap.as_millis() < 1000, "{gap:?}");
        }
    }

    #[test]
    fn envbuilder_error_clones_then_fails() {
        let lines = LogScript::EnvbuilderError.lines(&[]);
        assert!(lines[1].text.contains("📦 Cloning https://github.com/coder/envbuilder-starter-devcontainer to /workspaces/envbuilder-starter-devcontainer..."));
        assert!(lines.last().unwrap().text.starts_with("error: "));
        assert!(LogScript::EnvbuilderError.fails() && !LogScript::Envbuilder.fails());
    }
}
