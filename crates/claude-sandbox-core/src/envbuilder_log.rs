//! What envbuilder is doing, read from its log. The markers are envbuilder's own (REFERENCE §2);
//! the log is coloured, so ANSI escapes are stripped before matching.

use std::fmt;

/// The phase of a sandbox's start-up, as far as its container log tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EnvbuilderPhase {
    Starting,
    Cloning,
    Building,
    RunningHooks,
    /// The init script runs: sshd, code-server and Claude Code come up.
    StartingServices,
}

impl EnvbuilderPhase {
    pub fn describe(self) -> &'static str {
        match self {
            Self::Starting => "starting envbuilder",
            Self::Cloning => "cloning the repository",
            Self::Building => "building the devcontainer image",
            Self::RunningHooks => "running lifecycle hooks (installing Claude Code)",
            Self::StartingServices => "starting sshd and code-server",
        }
    }
}

impl fmt::Display for EnvbuilderPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// envbuilder's last word: the devcontainer is built and its init script starts.
pub const READY_MARKER: &str = "=== Running init command";

/// Whether `line` is envbuilder's [`READY_MARKER`].
pub fn is_ready_marker(line: &str) -> bool {
    strip_ansi(line).contains(READY_MARKER)
}

/// What one log line says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogEvent {
    Phase(EnvbuilderPhase),
    /// envbuilder gave up: the line, without colours.
    Fatal(String),
}

/// Reads one line of the sandbox container's log.
pub fn classify_line(line: &str) -> Option<LogEvent> {
    let line = strip_ansi(line);
    let text = line.trim();
    let phase =
        if text.starts_with("envbuilder v") || text.contains("Build development environments") {
            EnvbuilderPhase::Starting
        } else if text.contains("Cloning ")
            || text.contains("The repository already exists")
            || text.contains("Cloned repository")
        {
            EnvbuilderPhase::Cloning
        } else if text.contains("Building image")
            || text.contains("Skipping build because of cache")
            || text.contains("Built image")
        {
            EnvbuilderPhase::Building
        } else if text.contains("=== Running postCreateCommand")
            || text.contains("=== Running postStartCommand")
            || text.contains("=== Running onCreateCommand")
        {
            EnvbuilderPhase::RunningHooks
        } else if text.contains(READY_MARKER) || text.starts_with("claude-sandbox:") {
            EnvbuilderPhase::StartingServices
        } else if let Some(message) = text.strip_prefix("error:") {
            return Some(LogEvent::Fatal(format!("error:{message}")));
        } else {
            return None;
        };
    Some(LogEvent::Phase(phase))
}

/// The furthest phase a whole log reached.
pub fn phase_of_log(log: &str) -> Option<EnvbuilderPhase> {
    log.lines()
        .filter_map(|line| match classify_line(line) {
            Some(LogEvent::Phase(phase)) => Some(phase),
            _ => None,
        })
        .max()
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ params final-byte(@..~)
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envbuilder_markers_map_to_phases() {
        let log = "\x1b[1menvbuilder\x1b[0m v1.3.0 - Build development environments from repositories in a container\n\
                   #1: 📦 Cloning https://github.com/acme/app.git to /workspaces/app...\n\
                   #1: 📦 Cloned repository!\n\
                   #2: 🏗️ Building image...\n\
                   #2: 🏗️ Built image!\n\
                   === Running postCreateCommand as the \"vscode\" user...\n";
        assert_eq!(phase_of_log(log), Some(EnvbuilderPhase::RunningHooks));
        assert_eq!(
            classify_line("=== Running init command as user \"vscode\""),
            Some(LogEvent::Phase(EnvbuilderPhase::StartingServices))
        );
        assert_eq!(classify_line("some other line"), None);
    }

    #[test]
    fn fatal_errors_are_recognised_through_colours() {
        assert_eq!(
            classify_line("\x1b[31merror:\x1b[0m clone repo: authentication required"),
            Some(LogEvent::Fatal(
                "error: clone repo: authentication required".to_owned()
            ))
        );
    }
}
