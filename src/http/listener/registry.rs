//! The open connections: which are idle and since when, and which one to
//! shed when the cap is reached.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// Why the server closes a connection (the metric's `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum Reason {
    HeaderTimeout = 1,
    IdleTimeout,
    HeadTooLarge,
    ShedIdleAtLimit,
    RefusedAtLimit,
    ShedIdleFdExhausted,
    /// Not counted: every connection closes on shutdown.
    Shutdown,
}

impl Reason {
    const ALL: [Reason; 7] = [
        Reason::HeaderTimeout,
        Reason::IdleTimeout,
        Reason::HeadTooLarge,
        Reason::ShedIdleAtLimit,
        Reason::RefusedAtLimit,
        Reason::ShedIdleFdExhausted,
        Reason::Shutdown,
    ];

    fn label(self) -> &'static str {
        match self {
            Reason::HeaderTimeout => "header_timeout",
            Reason::IdleTimeout => "idle_timeout",
            Reason::HeadTooLarge => "head_too_large",
            Reason::ShedIdleAtLimit => "shed_idle_at_limit",
            Reason::RefusedAtLimit => "refused_at_limit",
            Reason::ShedIdleFdExhausted => "shed_idle_fd_exhausted",
            Reason::Shutdown => "shutdown",
        }
    }

    pub(super) fn count(self) {
        if self != Reason::Shutdown {
            metrics::counter!("ontab_http_connections_shed_total", "reason" => self.label())
                .increment(1);
        }
    }

    fn from_u8(value: u8) -> Option<Reason> {
        Reason::ALL
            .into_iter()
            .find(|reason| *reason as u8 == value)
    }
}

/// Times are microseconds since the registry's epoch, so atomics hold them.
const NOT_YET: u64 = u64::MAX;

/// One connection as the acceptor and its own task see it. Only heuristics
/// (which connection to shed) read it across threads, so relaxed atomics do.
pub(super) struct ConnState {
    epoch: Instant,
    opened: u64,
    in_flight: AtomicUsize,
    /// When the last request finished (its response body was sent), or when
    /// the connection opened.
    idle_since: AtomicU64,
    /// The same moment as a turn in the registry's sequence: connections
    /// compare by it exactly, where clock readings can tie.
    idle_turn: AtomicU64,
    turns: Arc<AtomicU64>,
    kept_alive: AtomicBool,
    /// The first byte received since the connection last became idle.
    head_started: AtomicU64,
    close: AtomicU8,
    /// Rung when a close is requested.
    pub(super) wake: Notify,
}

impl ConnState {
    fn new(epoch: Instant, turns: Arc<AtomicU64>) -> Self {
        let opened = micros_since(epoch, Instant::now());
        Self {
            epoch,
            opened,
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(opened),
            idle_turn: AtomicU64::new(turns.fetch_add(1, Relaxed)),
            turns,
            kept_alive: AtomicBool::new(false),
            head_started: AtomicU64::new(NOT_YET),
            close: AtomicU8::new(0),
            wake: Notify::new(),
        }
    }

    fn instant(&self, micros: u64) -> Instant {
        self.epoch + Duration::from_micros(micros)
    }

    fn now(&self) -> u64 {
        micros_since(self.epoch, Instant::now())
    }

    pub(super) fn opened(&self) -> Instant {
        self.instant(self.opened)
    }

    /// A request is in flight from its complete head until its response
    /// body has been handed to the connection.
    pub(super) fn busy(&self) -> bool {
        self.in_flight.load(Relaxed) > 0
    }

    pub(super) fn request_started(&self) {
        self.in_flight.fetch_add(1, Relaxed);
    }

    pub(super) fn request_finished(&self) {
        if self.in_flight.fetch_sub(1, Relaxed) == 1 {
            self.head_started.store(NOT_YET, Relaxed);
            self.idle_since.store(self.now(), Relaxed);
            self.idle_turn
                .store(self.turns.fetch_add(1, Relaxed), Relaxed);
            self.kept_alive.store(true, Relaxed);
        }
    }

    /// Bytes came in: between requests, that starts the next head's clock.
    pub(super) fn bytes_received(&self) {
        if !self.busy() && self.head_started.load(Relaxed) == NOT_YET {
            self.head_started.store(self.now(), Relaxed);
        }
    }

    /// Whether part of a head has arrived since the connection went idle.
    pub(super) fn head_started(&self) -> Option<Instant> {
        match self.head_started.load(Relaxed) {
            NOT_YET => None,
            micros => Some(self.instant(micros)),
        }
    }

    pub(super) fn idle_since(&self) -> Instant {
        self.instant(self.idle_since.load(Relaxed))
    }

    /// Whether a request has been answered on this connection.
    pub(super) fn kept_alive(&self) -> bool {
        self.kept_alive.load(Relaxed)
    }

    /// Asks the connection's task to close it; the first reason wins.
    pub(super) fn request_close(&self, reason: Reason) -> bool {
        let first = self
            .close
            .compare_exchange(0, reason as u8, Relaxed, Relaxed)
            .is_ok();
        if first {
            self.wake.notify_one();
        }
        first
    }

    pub(super) fn close_requested(&self) -> Option<Reason> {
        Reason::from_u8(self.close.load(Relaxed))
    }
}

fn micros_since(epoch: Instant, at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(epoch).as_micros()).unwrap_or(NOT_YET - 1)
}

/// The open connections, under a cap.
pub(super) struct Registry {
    epoch: Instant,
    max: Option<usize>,
    next_id: AtomicU64,
    turns: Arc<AtomicU64>,
    open: Mutex<HashMap<u64, Arc<ConnState>>>,
}

impl Registry {
    pub(super) fn new(max: Option<usize>) -> Self {
        Self {
            epoch: Instant::now(),
            max,
            next_id: AtomicU64::new(0),
            turns: Arc::new(AtomicU64::new(0)),
            open: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Arc<ConnState>>> {
        // Nothing panics while holding it; were it poisoned, the map is
        // still whole.
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a new connection, shedding the one idle the longest when
    /// at the cap; `None` (counted as refused) when every one is busy.
    pub(super) fn admit(self: &Arc<Self>) -> Option<Registration> {
        let mut open = self.lock();
        if let Some(max) = self.max
            && open.len() >= max
            && shed_oldest_idle(&open, 1, Reason::ShedIdleAtLimit) == 0
        {
            Reason::RefusedAtLimit.count();
            return None;
        }
        let id = self.next_id.fetch_add(1, Relaxed);
        let state = Arc::new(ConnState::new(self.epoch, self.turns.clone()));
        open.insert(id, state.clone());
        // Added to, not set: tests run several servers in one process.
        metrics::gauge!("ontab_http_connections_open").increment(1);
        Some(Registration {
            registry: self.clone(),
            id,
            state,
        })
    }

    /// Closes up to `count` of the connections idle the longest, to free
    /// their descriptors; answers how many.
    pub(super) fn shed_oldest_idle(&self, count: usize, reason: Reason) -> usize {
        shed_oldest_idle(&self.lock(), count, reason)
    }
}

/// O(open connections), run only at the cap or out of descriptors.
fn shed_oldest_idle(open: &HashMap<u64, Arc<ConnState>>, count: usize, reason: Reason) -> usize {
    let mut idle: Vec<(u64, &Arc<ConnState>)> = open
        .values()
        .filter(|state| !state.busy() && state.close_requested().is_none())
        .map(|state| (state.idle_turn.load(Relaxed), state))
        .collect();
    if idle.len() > count {
        idle.select_nth_unstable_by_key(count, |(turn, _)| *turn);
        idle.truncate(count);
    }
    let mut shed = 0;
    for (_, state) in idle {
        if state.request_close(reason) {
            reason.count();
            shed += 1;
        }
    }
    shed
}

/// A connection's place in the registry, given up when dropped.
pub(super) struct Registration {
    registry: Arc<Registry>,
    id: u64,
    state: Arc<ConnState>,
}

impl Registration {
    pub(super) fn state(&self) -> &Arc<ConnState> {
        &self.state
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.id);
        metrics::gauge!("ontab_http_connections_open").decrement(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_the_cap_the_connection_idle_longest_makes_room() {
        let registry = Arc::new(Registry::new(Some(3)));
        let first = registry.admit().expect("room");
        let second = registry.admit().expect("room");
        let third = registry.admit().expect("room");
        // `first` answered a request a moment ago: now `second` has been
        // idle the longest.
        first.state().request_started();
        first.state().request_finished();
        let _fourth = registry.admit().expect("room made by shedding");
        assert_eq!(
            second.state().close_requested(),
            Some(Reason::ShedIdleAtLimit)
        );
        assert_eq!(first.state().close_requested(), None);
        assert_eq!(third.state().close_requested(), None);
    }

    #[test]
    fn at_the_cap_with_every_connection_busy_a_newcomer_is_refused() {
        let registry = Arc::new(Registry::new(Some(2)));
        let held: Vec<Registration> = (0..2).map(|_| registry.admit().expect("room")).collect();
        for registration in &held {
            registration.state().request_started();
        }
        assert!(registry.admit().is_none());
        assert!(held.iter().all(|r| r.state().close_requested().is_none()));
        // One finishes its request: it is idle, and makes room.
        held[0].state().request_finished();
        assert!(registry.admit().is_some());
        assert_eq!(
            held[0].state().close_requested(),
            Some(Reason::ShedIdleAtLimit)
        );
    }

    #[test]
    fn a_closed_connection_gives_its_place_back() {
        let registry = Arc::new(Registry::new(Some(1)));
        let only = registry.admit().expect("room");
        only.state().request_started();
        assert!(registry.admit().is_none());
        drop(only);
        assert!(registry.admit().is_some());
    }

    #[test]
    fn bytes_between_requests_start_the_head_clock_and_bytes_during_one_do_not() {
        let registry = Arc::new(Registry::new(None));
        let connection = registry.admit().expect("no cap");
        let state = connection.state();
        assert!(state.head_started().is_none());
        state.request_started();
        state.bytes_received();
        assert!(state.head_started().is_none(), "a body is not a head");
        state.request_finished();
        assert!(state.kept_alive());
        state.bytes_received();
        assert!(state.head_started().is_some());
    }
}
