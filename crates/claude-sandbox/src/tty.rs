//! The local terminal of interactive sessions: raw mode while the remote one is in charge, and
//! its size, which the remote follows.

use std::io::IsTerminal;

use rustix::termios::{self, OptionalActions, Termios};

/// Whether stdin and stdout are both a terminal: an interactive session gets a remote one.
pub fn is_interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stdout().is_terminal()
}

/// The terminal's size as (columns, rows).
pub fn size() -> Option<(u16, u16)> {
    let size = termios::tcgetwinsize(std::io::stdout()).ok()?;
    (size.ws_col > 0 && size.ws_row > 0).then_some((size.ws_col, size.ws_row))
}

/// Puts stdin's terminal in raw mode (keys go to the remote terminal as typed, Ctrl-C included)
/// until dropped.
pub struct RawMode {
    saved: Termios,
}

impl RawMode {
    pub fn enable() -> std::io::Result<Self> {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(&stdin)?;
        let mut raw = saved.clone();
        raw.make_raw();
        termios::tcsetattr(&stdin, OptionalActions::Now, &raw)?;
        Ok(Self { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin(), OptionalActions::Now, &self.saved);
    }
}
