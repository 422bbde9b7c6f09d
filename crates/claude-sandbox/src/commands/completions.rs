use clap::CommandFactory;
use clap_complete::Shell;

use crate::{
    cli::Cli,
    error::{Error, Exit},
};

pub fn run(shell: Shell) -> Result<Exit, Error> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "claude-sandbox", &mut script);
    crate::terminal::write_stdout(&String::from_utf8_lossy(&script))?;
    Ok(Exit::Success)
}
