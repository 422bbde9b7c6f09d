use claude_sandbox_core::ConfigError;

/// How the process ends. Scripts can tell these apart; each is documented in the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Success = 0,
    /// The command ran and found problems (e.g. `lint` warnings).
    Findings = 1,
    /// The input was invalid: flags, config file, devcontainer.json. Nothing was changed.
    BadInput = 2,
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> Self {
        Self::from(exit as u8)
    }
}

/// Everything that stops a command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
}

impl Error {
    pub fn exit_code(&self) -> Exit {
        match self {
            Self::Config(_) => Exit::BadInput,
            // A closed pipe or a full disk: the input was fine, the command did not finish.
            Self::Output(_) => Exit::Findings,
        }
    }
}
