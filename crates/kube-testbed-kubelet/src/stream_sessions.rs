//! A pod's live exec and port-forward sessions, so that a test can cut them all at once (as a
//! kubelet restart would) while new ones keep working.

use std::sync::{Arc, Mutex};

use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

#[derive(Debug, Default)]
pub(crate) struct StreamSessions {
    current: Mutex<Generation>,
}

/// The sessions opened since the last drop: one token ends them all; the count of live ones is
/// the number of tickets still held.
#[derive(Debug, Default)]
struct Generation {
    dropped: CancellationToken,
    live: Arc<()>,
}

/// Held by a session for as long as it runs.
#[derive(Debug)]
pub(crate) struct SessionTicket {
    dropped: CancellationToken,
    _live: Arc<()>,
}

impl SessionTicket {
    /// Resolves when the pod's sessions are dropped.
    pub fn dropped(&self) -> WaitForCancellationFutureOwned {
        self.dropped.clone().cancelled_owned()
    }
}

impl StreamSessions {
    pub fn open(&self) -> SessionTicket {
        let current = self.current.lock().expect("stream sessions lock");
        SessionTicket {
            dropped: current.dropped.clone(),
            _live: current.live.clone(),
        }
    }

    /// Ends every session open now; returns how many there were.
    pub fn drop_all(&self) -> usize {
        let dropped = std::mem::take(&mut *self.current.lock().expect("stream sessions lock"));
        // Counted first: cancelling lets the sessions end (and let go of their tickets) at once.
        let live = Arc::strong_count(&dropped.live) - 1;
        dropped.dropped.cancel();
        live
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dropping_ends_the_open_sessions_only() {
        let sessions = StreamSessions::default();
        let (first, second) = (sessions.open(), sessions.open());
        let finished = sessions.open();
        drop(finished);
        assert_eq!(sessions.drop_all(), 2);
        first.dropped().await;
        second.dropped().await;

        let later = sessions.open();
        assert!(!later.dropped.is_cancelled());
        assert_eq!(sessions.drop_all(), 1);
        assert_eq!(sessions.drop_all(), 0);
    }
}
