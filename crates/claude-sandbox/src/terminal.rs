//! What the user sees on stderr: errors, warnings, `-v` traces. Colour only on a terminal.

use std::io::Write;

use anstream::eprintln;
use tracing_subscriber::EnvFilter;

use crate::error::Error;

const RED_BOLD: &str = "\x1b[1;31m";
const YELLOW_BOLD: &str = "\x1b[1;33m";
const RESET: &str = "\x1b[0m";

/// `-v` shows this tool's debug traces, `-vv` everyone's; `RUST_LOG` overrides both.
pub fn init_tracing(verbosity: u8) {
    let default = match verbosity {
        0 => "claude_sandbox=warn,claude_sandbox_core=warn,claude_sandbox_kube=warn",
        1 => "claude_sandbox=debug,claude_sandbox_core=debug,claude_sandbox_kube=debug",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(anstream::stderr)
        .with_target(false)
        .init();
}

pub fn print_error(error: &Error) {
    print_error_message(error);
}

pub fn print_error_message(message: impl std::fmt::Display) {
    eprintln!("{RED_BOLD}error:{RESET} {message}");
}

pub fn print_warning(message: impl std::fmt::Display) {
    eprintln!("{YELLOW_BOLD}warning:{RESET} {message}");
}

/// Writes `text` to stdout; a closed pipe (`| head`) is not an error worth a message.
pub fn write_stdout(text: &str) -> Result<(), Error> {
    let mut stdout = anstream::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// A one-line progress display on stderr: a spinner with elapsed time on a terminal, plain
/// timestamped lines (only when something changes) otherwise.
pub struct ProgressLine {
    spinner: Option<indicatif::ProgressBar>,
    start: std::time::Instant,
}

impl ProgressLine {
    pub fn new() -> Self {
        use std::io::IsTerminal;
        let spinner = std::io::stderr().is_terminal().then(|| {
            let spinner = indicatif::ProgressBar::new_spinner();
            spinner.set_style(
                indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
                    .expect("a valid template"),
            );
            spinner.enable_steady_tick(std::time::Duration::from_millis(120));
            spinner
        });
        Self {
            spinner,
            start: std::time::Instant::now(),
        }
    }

    pub fn update(&self, message: &str) {
        match &self.spinner {
            Some(spinner) => spinner.set_message(message.to_owned()),
            None => {
                let elapsed = self.start.elapsed().as_secs();
                eprintln!("[{:02}:{:02}] {message}", elapsed / 60, elapsed % 60);
            }
        }
    }

    /// A line that stays above the spinner.
    pub fn println(&self, message: &str) {
        match &self.spinner {
            Some(spinner) => spinner.println(message),
            None => eprintln!("{message}"),
        }
    }

    pub fn finish(&self) {
        if let Some(spinner) = &self.spinner {
            spinner.finish_and_clear();
        }
    }
}
