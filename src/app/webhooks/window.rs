//! What this server holds in memory of endpoints' windows
//! (migrations/0031): for each endpoint whose window it holds, the events
//! it has handed out and not yet recorded (the settled cursor may not
//! pass the oldest), and the subjects it is sending from memory right now
//! (their new events become rows leased to it, handed to the subject's
//! task when it is done).
//!
//! One lock per business: the fan-out holds it through its transaction,
//! so what it tells PostgreSQL (which windows it holds, how far each may
//! settle, which subjects are busy) and what it then hands out cannot
//! cross a task that ends or a recording that settles meanwhile.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::db::deliveries::{Held, Job};

/// Every business's windows on this server.
pub struct Windows {
    businesses: Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<BusinessWindows>>>>,
    epochs: AtomicU64,
    /// What renewal times are measured from.
    base: Instant,
}

impl Windows {
    pub fn new() -> Self {
        Self {
            businesses: Mutex::new(HashMap::new()),
            epochs: AtomicU64::new(0),
            base: Instant::now(),
        }
    }

    /// The business's windows, created empty when there are none.
    pub fn of(&self, business_id: Uuid) -> Arc<tokio::sync::Mutex<BusinessWindows>> {
        let mut businesses = self
            .businesses
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        businesses.entry(business_id).or_default().clone()
    }

    /// A window newly held, with an epoch of its own: whatever an earlier
    /// window of the same endpoint handed out is not this one's.
    pub fn open(&self, fanned: i64, renewed: Instant) -> EndpointWindow {
        let live = Arc::new(Live {
            epoch: self.epochs.fetch_add(1, Ordering::Relaxed) + 1,
            valid: AtomicBool::new(true),
            renewed_ms: AtomicU64::new(0),
            base: self.base,
        });
        live.renewed(renewed);
        EndpointWindow {
            live,
            fanned,
            outstanding: BTreeSet::new(),
        }
    }
}

impl Default for Windows {
    fn default() -> Self {
        Self::new()
    }
}

/// What a task sending from a window checks before each event: that the
/// window is still this server's and was renewed recently enough that its
/// lease outlasts the request. Read without the business's lock.
#[derive(Debug)]
pub struct Live {
    pub epoch: u64,
    valid: AtomicBool,
    /// When the last renewal that succeeded began, in ms after `base`.
    renewed_ms: AtomicU64,
    base: Instant,
}

impl Live {
    pub fn invalidate(&self) {
        self.valid.store(false, Ordering::Release);
    }

    pub fn is_valid(&self) -> bool {
        self.valid.load(Ordering::Acquire)
    }

    /// Records a renewal whose transaction began at `began`.
    pub fn renewed(&self, began: Instant) {
        let ms = u64::try_from(began.saturating_duration_since(self.base).as_millis())
            .unwrap_or(u64::MAX);
        self.renewed_ms.fetch_max(ms, Ordering::AcqRel);
    }

    /// Valid, and renewed less than `budget` ago.
    pub fn fresh(&self, budget: Duration) -> bool {
        let renewed = self.base + Duration::from_millis(self.renewed_ms.load(Ordering::Acquire));
        self.is_valid() && renewed.elapsed() < budget
    }
}

/// One endpoint's window, held by this server.
pub struct EndpointWindow {
    pub live: Arc<Live>,
    /// The endpoint's fanned_out_through as this server last set it.
    pub fanned: i64,
    /// Sequences handed out and not yet recorded.
    pub outstanding: BTreeSet<i64>,
}

impl EndpointWindow {
    /// How far the settled cursor may move once `own` are recorded: just
    /// below the oldest other event still held, or all that was fanned out.
    pub fn settle_excluding(&self, own: &HashSet<i64>) -> i64 {
        self.outstanding
            .iter()
            .find(|sequence| !own.contains(sequence))
            .map_or(self.fanned, |oldest| oldest - 1)
    }
}

/// Events queued for one subject, past which its new events become rows
/// leased to this server rather than more memory.
pub const QUEUE_FULL: usize = 1000;

/// A subject being sent from memory.
#[derive(Default)]
pub struct Busy {
    /// The window its task sends from: a task of an earlier window of the
    /// same endpoint leaves this entry alone.
    pub epoch: u64,
    /// Its events handed out meanwhile, in sequence order: its task sends
    /// them next.
    pub queue: Vec<Job>,
    /// Rows the fan-out leased to this server for the subject once its
    /// queue was full, in sequence order: its task sends them after.
    pub handoff: Vec<Job>,
    /// When the first of them was leased.
    pub handoff_at: Option<Instant>,
}

/// A business's windows on this server.
#[derive(Default)]
pub struct BusinessWindows {
    pub endpoints: HashMap<Uuid, EndpointWindow>,
    /// (endpoint, subject) pairs being sent from memory.
    pub busy: HashMap<(Uuid, Uuid), Busy>,
}

impl BusinessWindows {
    /// What the fan-out tells PostgreSQL of this server's windows.
    pub fn held(&self) -> Held {
        Held {
            known: self.endpoints.keys().copied().collect(),
            held_min: self
                .endpoints
                .iter()
                .filter_map(|(id, window)| window.outstanding.first().map(|min| (*id, *min)))
                .collect(),
            busy: self
                .busy
                .iter()
                .map(|(key, busy)| (key.0, key.1, busy.queue.len() >= QUEUE_FULL))
                .collect(),
        }
    }

    /// Forgets the endpoint's window: its tasks stop before their next
    /// event, and the next fan-out takes the window over from its settled
    /// cursor. Its subjects are not busy any more: what a later window
    /// hands out must not queue behind a task of this one, which would
    /// drop it (its events are not that window's to record).
    pub fn drop_window(&mut self, endpoint_id: Uuid) {
        if let Some(window) = self.endpoints.remove(&endpoint_id) {
            window.live.invalidate();
        }
        self.busy
            .retain(|(endpoint, _), _| *endpoint != endpoint_id);
    }

    /// The endpoint's window, if this server still holds it in `epoch`
    /// (a run of an earlier window of it has nothing to do with this one).
    pub fn window(&mut self, endpoint_id: Uuid, epoch: u64) -> Option<&mut EndpointWindow> {
        self.endpoints
            .get_mut(&endpoint_id)
            .filter(|window| window.live.epoch == epoch)
    }

    /// What was queued for the subject meanwhile, for its task of window
    /// `epoch`; `None` when nothing was (or the entry is another task's).
    pub fn take_queue(&mut self, key: (Uuid, Uuid), epoch: u64) -> Option<Vec<Job>> {
        match self.busy.get_mut(&key) {
            Some(busy) if busy.epoch == epoch && !busy.queue.is_empty() => {
                Some(std::mem::take(&mut busy.queue))
            }
            _ => None,
        }
    }

    /// Lets the subject go, if its entry is the task of window `epoch`'s.
    pub fn release(&mut self, key: (Uuid, Uuid), epoch: u64) -> Option<Busy> {
        match self.busy.get(&key) {
            Some(busy) if busy.epoch == epoch => self.busy.remove(&key),
            _ => None,
        }
    }

    /// Forgets every window (after a fan-out whose outcome is unknown).
    pub fn drop_all(&mut self) {
        for (_, window) in self.endpoints.drain() {
            window.live.invalidate();
        }
        self.busy.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cursor_stops_below_the_oldest_event_held_by_someone_else() {
        let windows = Windows::new();
        let mut window = windows.open(10, Instant::now());
        assert_eq!(window.settle_excluding(&HashSet::new()), 10);
        window.outstanding.extend([4, 6, 9]);
        assert_eq!(window.settle_excluding(&HashSet::new()), 3);
        assert_eq!(window.settle_excluding(&HashSet::from([4])), 5);
        assert_eq!(window.settle_excluding(&HashSet::from([4, 6, 9])), 10);
    }

    #[test]
    fn a_window_is_fresh_while_valid_and_recently_renewed() {
        let windows = Windows::new();
        let first = windows.open(0, Instant::now());
        let second = windows.open(0, Instant::now());
        assert_ne!(first.live.epoch, second.live.epoch);
        assert!(first.live.fresh(Duration::from_secs(5)));
        assert!(!first.live.fresh(Duration::ZERO));
        first.live.invalidate();
        assert!(!first.live.fresh(Duration::from_secs(5)));
        assert!(second.live.fresh(Duration::from_secs(5)));
    }

    #[test]
    fn held_names_windows_their_oldest_events_and_busy_subjects() {
        let windows = Windows::new();
        let mut business = BusinessWindows::default();
        let (a, b, s) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let mut window = windows.open(7, Instant::now());
        window.outstanding.extend([5, 6]);
        business.endpoints.insert(a, window);
        business
            .endpoints
            .insert(b, windows.open(7, Instant::now()));
        business.busy.insert((a, s), Busy::default());
        let held = business.held();
        assert_eq!(held.known.len(), 2);
        assert_eq!(held.held_min, vec![(a, 5)]);
        assert_eq!(held.busy, vec![(a, s, false)]);
        let live = business.endpoints[&a].live.clone();
        assert!(business.window(a, live.epoch).is_some());
        assert!(
            business.window(a, live.epoch + 1).is_none(),
            "another epoch"
        );
        business.drop_window(a);
        assert!(!live.is_valid());
        assert_eq!(business.held().known, vec![b]);
        assert!(
            business.held().busy.is_empty(),
            "its subjects are not busy any more"
        );

        // A task leaves alone the entry of a later window's task.
        business.busy.insert(
            (b, s),
            Busy {
                epoch: 2,
                ..Busy::default()
            },
        );
        assert!(business.release((b, s), 1).is_none());
        assert!(business.take_queue((b, s), 2).is_none(), "nothing queued");
        assert!(business.release((b, s), 2).is_some());
    }
}
