//! A failed `accept` must neither stop the server nor make it spin: out of
//! descriptors (EMFILE) the listener would report the same pending
//! connection again at once, forever.

use std::io;
use std::time::Duration;

use tokio::time::Instant;

use super::registry::{Reason, Registry};

const FIRST_PAUSE: Duration = Duration::from_millis(1);
/// Connections shed at once when out of descriptors: enough that a queue
/// of waiting clients is admitted in a few rounds, not one per pause.
const SHED_WHEN_OUT: usize = 8;
const LONGEST_PAUSE: Duration = Duration::from_secs(1);
/// At most one log line per this long, however many failures.
const LOG_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
pub(super) struct AcceptErrors {
    pause: Duration,
    last_logged: Option<Instant>,
    unlogged: u64,
}

impl AcceptErrors {
    /// An accept succeeded: the next failure starts with a short pause.
    pub(super) fn recovered(&mut self) {
        self.pause = Duration::ZERO;
    }

    /// How long to wait before accepting again after `error`; `None` to go
    /// on at once (the error concerned only that one connection).
    pub(super) fn pause_after(
        &mut self,
        error: &io::Error,
        registry: &Registry,
    ) -> Option<Duration> {
        if concerns_one_connection(error) {
            return None;
        }
        metrics::counter!("ontab_http_accept_errors_total").increment(1);
        // The cap should have prevented running out (a cap set too high,
        // other files): make room the same way.
        if out_of_descriptors(error)
            && registry.shed_oldest_idle(SHED_WHEN_OUT, Reason::ShedIdleFdExhausted) > 0
        {
            // Room is being made: accept again once those have closed.
            self.pause = FIRST_PAUSE;
        } else {
            self.pause = (self.pause * 2).clamp(FIRST_PAUSE, LONGEST_PAUSE);
        }
        let now = Instant::now();
        if self
            .last_logged
            .is_none_or(|logged| now.duration_since(logged) >= LOG_EVERY)
        {
            tracing::warn!(
                %error,
                pause_ms = self.pause.as_millis() as u64,
                failures_since_last_report = self.unlogged,
                "accepting connections failed; pausing"
            );
            self.last_logged = Some(now);
            self.unlogged = 0;
        } else {
            self.unlogged += 1;
        }
        Some(self.pause)
    }
}

fn concerns_one_connection(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
    )
}

fn out_of_descriptors(error: &io::Error) -> bool {
    #[cfg(unix)]
    return matches!(error.raw_os_error(), Some(libc::EMFILE | libc::ENFILE));
    #[cfg(not(unix))]
    return false;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_out_of_descriptors_pauses_longer_each_time_up_to_a_second() {
        let registry = Registry::new(Some(10));
        let mut errors = AcceptErrors::default();
        let emfile = io::Error::from_raw_os_error(libc::EMFILE);
        let pauses: Vec<Duration> = (0..12)
            .map(|_| errors.pause_after(&emfile, &registry).expect("a pause"))
            .collect();
        assert_eq!(pauses[0], FIRST_PAUSE);
        assert!(pauses.windows(2).all(|pair| pair[0] <= pair[1]));
        assert_eq!(pauses[11], LONGEST_PAUSE);
        errors.recovered();
        assert_eq!(errors.pause_after(&emfile, &registry), Some(FIRST_PAUSE));
    }

    #[test]
    fn out_of_descriptors_with_idle_connections_sheds_some_and_pauses_briefly() {
        let registry = std::sync::Arc::new(Registry::new(None));
        let idle: Vec<_> = (0..10).map(|_| registry.admit().expect("no cap")).collect();
        let mut errors = AcceptErrors::default();
        let emfile = io::Error::from_raw_os_error(libc::EMFILE);
        assert_eq!(errors.pause_after(&emfile, &registry), Some(FIRST_PAUSE));
        assert_eq!(errors.pause_after(&emfile, &registry), Some(FIRST_PAUSE));
        // All ten shed (eight, then the last two), oldest first.
        assert!(idle.iter().all(|c| c.state().close_requested().is_some()));
        // Nothing left to shed: now it backs off.
        assert_eq!(
            errors.pause_after(&emfile, &registry),
            Some(FIRST_PAUSE * 2)
        );
    }

    #[test]
    fn a_connection_that_died_in_the_queue_does_not_pause_accepting() {
        let registry = Registry::new(None);
        let mut errors = AcceptErrors::default();
        let aborted = io::Error::from(io::ErrorKind::ConnectionAborted);
        assert_eq!(errors.pause_after(&aborted, &registry), None);
    }
}
