/// The session launcher (bash: it reads PID 1's NUL-separated environment).
pub(super) const SCRIPT: &str = include_str!("session.sh");

/// How a command runs in the sandbox: as whom, where, with which terminal. Empty fields take the
/// devcontainer init process's (its user, its working folder: the workspace).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Session {
    pub user: Option<String>,
    pub workdir: Option<String>,
    /// `TERM` for an interactive terminal.
    pub term: Option<String>,
}

impl Session {
    /// The exec command line that runs `command` (a login shell when empty) in this session.
    pub fn command(&self, command: &[String]) -> Vec<String> {
        let mut argv: Vec<String> = [
            "bash",
            "-c",
            SCRIPT,
            "claude-sandbox-session",
            self.user.as_deref().unwrap_or_default(),
            self.workdir.as_deref().unwrap_or_default(),
            self.term.as_deref().unwrap_or_default(),
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        argv.extend_from_slice(command);
        argv
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_settings_are_passed_as_empty_arguments() {
        let argv = Session::default().command(&["claude".to_owned(), "-p".to_owned()]);
        assert_eq!(argv[..2], ["bash", "-c"]);
        assert_eq!(
            argv[3..],
            ["claude-sandbox-session", "", "", "", "claude", "-p"]
        );
        let argv = Session {
            user: Some("root".into()),
            workdir: Some("/tmp".into()),
            term: Some("xterm".into()),
        }
        .command(&[]);
        assert_eq!(
            argv[3..],
            ["claude-sandbox-session", "root", "/tmp", "xterm"]
        );
    }
}
