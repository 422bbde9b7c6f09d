//! Stage three: executing a parsed, validated command.

mod completions;
mod lint;
mod render;

use crate::{
    cli::{Cli, Command},
    error::{Error, Exit},
};

pub fn run(cli: Cli) -> Result<Exit, Error> {
    match cli.command {
        Command::Render(args) => render::run(&args),
        Command::Lint(args) => lint::run(&args),
        Command::Completions { shell } => completions::run(shell),
    }
}
