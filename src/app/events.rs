//! Events: the feed (`GET /v1/events`) and the background work that keeps
//! it: the sequencer that numbers committed events, the overdue scan, and
//! retention. Events themselves are written by the database in the
//! changing transaction (migrations/0005), whichever use case changes what.

use std::sync::Arc;
use std::time::Duration;

use chrono::{Datelike, Utc};
use tokio::sync::broadcast;
use tokio::time::Instant;
use uuid::Uuid;

use crate::db::events::{self, FeedPage};
use crate::domain::events::{Event, FeedRequest};

use super::{Actor, App, AppError, Deadline, Tenant};

/// Most events a filtered read looks at per page, so a rare type costs a
/// bounded read; the reader's `next_after` moves past what was looked at.
const FILTER_SCAN: i64 = 5000;
/// How often a waiting reader reads again with no notification (LISTEN
/// does not work behind a transaction-mode pooler, and a notification may
/// be missed while the listener reconnects).
const WAIT_POLL: Duration = Duration::from_secs(1);
/// Most events numbered in one sequencing transaction.
const SEQUENCE_BATCH: i32 = 10_000;
/// Most businesses the sequencer looks at per round.
const SEQUENCE_BUSINESSES: i32 = 100;
/// Most overdue purchases recorded per transaction.
const OVERDUE_BATCH: i32 = 1000;
/// Most events pruned per transaction.
const PRUNE_BATCH: i32 = 10_000;

/// Wakes the feed's waiting readers when a business's events are numbered
/// (by this process's sequencer, or another's through NOTIFY).
pub struct EventWaker {
    sender: broadcast::Sender<Uuid>,
}

impl Default for EventWaker {
    fn default() -> Self {
        Self {
            sender: broadcast::channel(1024).0,
        }
    }
}

impl EventWaker {
    pub fn wake(&self, business_id: Uuid) {
        // No receiver: nobody is waiting, nothing to do.
        let _ = self.sender.send(business_id);
    }

    fn subscribe(&self) -> broadcast::Receiver<Uuid> {
        self.sender.subscribe()
    }
}

/// A page of the feed.
#[derive(Debug, Clone)]
pub struct Feed {
    pub events: Vec<Event>,
    /// What to pass as `after` next: everything up to it has been seen.
    pub next_after: i64,
    /// The oldest sequence still kept; older events were pruned.
    pub oldest_available: i64,
}

/// Events after `request.after`, oldest first; when there are none yet,
/// waits up to `request.wait_seconds` for one. Each read gets
/// `read_budget` (the request timeout): a wait may outlast it.
pub async fn feed(
    app: &App,
    tenant: &Tenant,
    read_budget: Duration,
    request: FeedRequest,
) -> Result<Feed, AppError> {
    // Subscribed before the first read: a numbering that commits after the
    // read is heard.
    let mut woken = app.events.subscribe();
    let until = Instant::now() + Duration::from_secs(request.wait_seconds);
    let types: Option<Vec<String>> = request
        .types
        .as_ref()
        .map(|types| types.iter().map(|kind| kind.as_str().to_owned()).collect());
    let scan = if types.is_some() {
        FILTER_SCAN
    } else {
        request.limit
    };
    let mut after = request.after;
    loop {
        let types = types.clone();
        let page = app
            .read(tenant, Deadline::after(read_budget), move |tx| {
                Box::pin(
                    async move { Ok(events::feed(tx, after, request.limit, scan, types).await?) },
                )
            })
            .await?;
        let FeedPage {
            events,
            scanned_to,
            oldest_available,
        } = page;
        let full = i64::try_from(events.len()).unwrap_or(i64::MAX) >= request.limit;
        let next_after = match (full, events.last(), scanned_to) {
            (true, Some(last), _) => last.sequence,
            (_, _, Some(scanned)) => scanned.max(after),
            _ => after,
        };
        let scanned_all = scanned_to.is_none_or(|scanned| scanned - after < scan);
        if !events.is_empty() || Instant::now() >= until {
            return Ok(Feed {
                events,
                next_after,
                oldest_available,
            });
        }
        after = next_after;
        if scanned_all {
            wait_for(&mut woken, tenant.business_id, until).await;
        }
    }
}

/// Until this business's events are numbered, a poll is due, or `until`.
async fn wait_for(woken: &mut broadcast::Receiver<Uuid>, business_id: Uuid, until: Instant) {
    let wake_at = until.min(Instant::now() + WAIT_POLL);
    loop {
        tokio::select! {
            heard = woken.recv() => match heard {
                Ok(business) if business == business_id => return,
                Ok(_) => {}
                // Missed some: one of them may have been ours.
                Err(broadcast::error::RecvError::Lagged(_)) => return,
                Err(broadcast::error::RecvError::Closed) => {
                    tokio::time::sleep_until(wake_at).await;
                    return;
                }
            },
            () = tokio::time::sleep_until(wake_at) => return,
        }
    }
}

/// Numbers committed events, business by business, in short transactions,
/// one round every `idle`; goes on at once only while rounds come back
/// full (a backlog). Several instances may run it: a business being
/// numbered by one is skipped by the others (its event_sequences row lock).
///
/// Why not at once after every round that numbered something: under
/// steady load there is always a little more, so rounds ran back to back
/// and each numbered the few events of its own duration, while a round
/// costs PostgreSQL two statements per business whatever it numbers (at
/// 1,100 purchases/s, ~10 events a round and ~100 µs of PostgreSQL per
/// purchase, bench/results/20261203T165052Z/uncontended.c16.r1.pgss). A
/// committed event still waits at most `idle` plus one round, as before.
pub async fn sequencer(app: Arc<App>, idle: Duration) {
    loop {
        match sequence_round(&app).await {
            Ok(Round::Backlog) => tokio::task::yield_now().await,
            Ok(Round::CaughtUp) => tokio::time::sleep(idle).await,
            Err(error) => {
                tracing::warn!(%error, "could not sequence events");
                tokio::time::sleep(idle.max(Duration::from_millis(500))).await;
            }
        }
    }
}

/// What a sequencing round came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Round {
    /// Everything that was waiting is numbered (or nothing was).
    CaughtUp,
    /// A round's worth was numbered and more may wait: go on at once.
    Backlog,
}

/// One round over the businesses with unnumbered events.
pub async fn sequence_round(app: &App) -> Result<Round, AppError> {
    let waiting = events::unsequenced(&app.db, SEQUENCE_BUSINESSES).await?;
    let lag = waiting
        .iter()
        .map(|(_, oldest)| (Utc::now() - *oldest).num_milliseconds())
        .max()
        .unwrap_or(0);
    metrics::gauge!("ontab_event_sequencer_lag_seconds").set(lag.max(0) as f64 / 1000.0);
    let actor = Actor::System.recorded();
    let mut round = if waiting.len() >= usize::try_from(SEQUENCE_BUSINESSES).unwrap_or(usize::MAX) {
        Round::Backlog
    } else {
        Round::CaughtUp
    };
    for (business_id, _) in waiting {
        let (tx, _) = app.db.begin(business_id, &[], &actor).await?;
        let numbered = events::sequence(&tx, SEQUENCE_BATCH).await?;
        tx.commit().await?;
        let mut count_all = 0_i64;
        for (event_type, count) in &numbered {
            count_all = count_all.saturating_add(*count);
            metrics::counter!("ontab_events_written_total", "type" => event_type.clone())
                .increment(u64::try_from(*count).unwrap_or(0));
        }
        if !numbered.is_empty() {
            app.events.wake(business_id);
        }
        if count_all >= i64::from(SEQUENCE_BATCH) {
            round = Round::Backlog;
        }
    }
    Ok(round)
}

/// Wakes this process's readers on every NOTIFY ontab_events (events
/// numbered by any instance); reconnects when the connection fails.
pub async fn listen(app: Arc<App>) {
    loop {
        let result = app
            .db
            .listen_events(|business_id| app.events.wake(business_id))
            .await;
        if let Err(error) = result {
            tracing::debug!(%error, "event listener connection ended; reconnecting");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Emits customer.overdue for purchases past due and unsettled, every
/// `every`: a purchase is reported at most `every` (plus one scan) after
/// its due date, once, whichever instance finds it first.
pub async fn overdue_scan(app: Arc<App>, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(error) = overdue_scan_once(&app).await {
            tracing::warn!(%error, "could not scan for overdue purchases");
        }
    }
}

/// One scan of every business; answers how many purchases it reported.
pub async fn overdue_scan_once(app: &App) -> Result<i64, AppError> {
    let actor = Actor::System.recorded();
    let mut reported = 0;
    for business_id in events::business_ids(&app.db).await? {
        loop {
            let (tx, _) = app.db.begin(business_id, &[], &actor).await?;
            let emitted = events::record_overdue(&tx, OVERDUE_BATCH).await?;
            tx.commit().await?;
            reported += emitted;
            if emitted < i64::from(OVERDUE_BATCH) {
                break;
            }
        }
    }
    metrics::counter!("ontab_overdue_events_total").increment(u64::try_from(reported).unwrap_or(0));
    Ok(reported)
}

/// Prunes events older than `retention`, every `every`.
pub async fn retention(app: Arc<App>, retention: Duration, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match prune_once(&app, retention).await {
            Ok(0) => {}
            Ok(pruned) => tracing::info!(pruned, "old events pruned"),
            Err(error) => tracing::warn!(%error, "could not prune old events"),
        }
    }
}

/// Deletes every business's events older than `retention` (a prefix of
/// each business's sequence); answers how many.
pub async fn prune_once(app: &App, retention: Duration) -> Result<i64, AppError> {
    // A retention beyond the calendar keeps everything.
    let Some(before) = chrono::Duration::from_std(retention)
        .ok()
        .and_then(|retention| Utc::now().checked_sub_signed(retention))
        .filter(|before| before.year() >= 1)
    else {
        return Ok(0);
    };
    let actor = Actor::System.recorded();
    let mut pruned = 0;
    for business_id in events::business_ids(&app.db).await? {
        loop {
            let (tx, _) = app.db.begin(business_id, &[], &actor).await?;
            let removed = events::prune(&tx, before, PRUNE_BATCH).await?;
            tx.commit().await?;
            pruned += removed;
            if removed < i64::from(PRUNE_BATCH) {
                break;
            }
        }
    }
    Ok(pruned)
}
