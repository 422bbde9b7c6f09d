//! `claude-sandbox`: isolated Claude Code environments on Kubernetes.
//!
//! Three stages, kept apart: `cli` parses arguments, `sandbox_args` turns them into a validated
//! `SandboxConfig`, `commands` executes. Errors carry their exit code (`error`).

mod cli;
mod commands;
mod error;
mod known_hosts;
mod output;
mod sandbox_args;
mod terminal;
mod tty;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    terminal::init_tracing(cli.global.verbose);
    match commands::run(cli) {
        Ok(code) => code.into(),
        Err(error) => {
            terminal::print_error(&error);
            error.exit_code().into()
        }
    }
}
