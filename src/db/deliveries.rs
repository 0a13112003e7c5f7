//! What the delivery workers send to PostgreSQL: find businesses with
//! events to fan out, fan them out into deliveries, lease the deliveries
//! that may go now, read them to send, record their attempts (a batch at a
//! time, leasing each delivered subject's next run), and publish to
//! NATS behind a per-business cursor. The rules (per-subject order, leases,
//! the schedule's arithmetic) are in the SQL functions of migrations/0006
//! and 0010; the server calls them as functions of the business (0019),
//! which Citus runs on the node that holds it.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use tokio_postgres::types::{Json, Type};
use uuid::Uuid;

use super::sql::{Column, Statement, statement};
use super::{Db, DbError, TenantTx, column};
use crate::domain::events::EventData;
use crate::domain::webhook::WebhookSecret;

/// An event as delivered: the body's fields.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EventBody {
    pub id: Uuid,
    pub sequence: i64,
    #[serde(rename = "type")]
    pub event_type: String,
    pub created_at: DateTime<Utc>,
    pub subject_id: Uuid,
    pub data: EventData,
}

/// An event's body from a row that has its columns (EVENT_COLUMNS).
fn event_body(row: &tokio_postgres::Row) -> Result<EventBody, DbError> {
    Ok(EventBody {
        id: column(row, "id")?,
        sequence: column(row, "sequence")?,
        event_type: column(row, "type")?,
        created_at: column(row, "created_at")?,
        subject_id: column(row, "subject_id")?,
        data: super::events::data(row)?,
    })
}

const FAN_OUT_DUE: &str = "SELECT ontab_webhook_fan_out_due($1, $2) AS business_id";

/// Businesses with events some endpoint whose window `lease` may hold has
/// not been handed yet, or with a window left unsettled by an expired
/// lease (migrations/0031).
pub async fn fan_out_due(db: &Db, limit: i32, lease: Uuid) -> Result<Vec<Uuid>, DbError> {
    let rows = db
        .query_untenanted(FAN_OUT_DUE, &[(&limit, Type::INT4), (&lease, Type::UUID)])
        .await?;
    rows.iter().map(|row| column(row, "business_id")).collect()
}

const BOOKKEEPING: &str = "SELECT set_config('synchronous_commit', 'off', true),
            set_config('random_page_cost', '1.1', true),
            to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL AS distributed";

/// What [`bookkeeping`] learnt of the database: whether it is a Citus
/// cluster, as the bookkeeping functions ask (`row_by_row`, 0019), so
/// that [`load`] sends the form Citus takes.
#[derive(Debug, Clone, Copy)]
pub struct Bookkeeping {
    distributed: bool,
}

/// Settings for a transaction of delivery bookkeeping (fan-out, reading
/// what to send, recording attempts), never for a change of money, stock
/// or an event itself: COMMIT returns before its WAL is flushed. Losing
/// the last commits in a crash means sending an event again with the same
/// webhook-id, which at-least-once delivery allows. Spares a WAL flush per
/// batch, which competed with the purchases' own.
///
/// Its reads by key plan with random_page_cost = 1.1, as the bookkeeping
/// functions do (migrations/0024): the rows of a batch were just written
/// and sit in shared buffers, and at the default of 4 a batch of 50 read
/// the business's whole range of the primary key instead of 50 probes.
///
/// The deliveries table is a queue, so a statement planned once, while it
/// was small, may walk it all as it grows (measured: recording slowed to
/// 100 ms a batch). The bookkeeping functions therefore plan their
/// statements on deliveries and events at each call (EXECUTE,
/// migrations/0020); [`load`], the foreign-key checks and the primary-key
/// lookups reach their rows by key probes and keep one plan per
/// connection.
pub async fn bookkeeping(tx: &TenantTx) -> Result<Bookkeeping, DbError> {
    let row = tx.query_one(BOOKKEEPING, &[]).await?;
    Ok(Bookkeeping {
        distributed: column(&row, "distributed")?,
    })
}

const FAN_OUT: &str = "SELECT endpoint_id, held, taken, fanned, handed, leased, created
       FROM ontab_webhook_fan_out_window_for($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";

/// What this server holds in memory of a business's windows, as the
/// fan-out needs to know it (migrations/0031).
#[derive(Debug, Default)]
pub struct Held {
    /// Endpoints whose window this server holds in memory.
    pub known: Vec<Uuid>,
    /// Per endpoint, the lowest sequence it still holds unsettled.
    pub held_min: Vec<(Uuid, i64)>,
    /// (endpoint, subject, queue full) for the subjects this server is
    /// sending from memory now.
    pub busy: Vec<(Uuid, Uuid, bool)>,
}

/// What a fan-out did at one endpoint.
#[derive(Debug)]
pub struct Fanned {
    pub endpoint_id: Uuid,
    /// Whether this server holds the endpoint's window now.
    pub held: bool,
    /// Whether it just took the window (over): what it held of it before
    /// is not this window's.
    pub taken: bool,
    /// The endpoint's fanned_out_through now.
    pub fanned: i64,
    /// Events handed out in memory, in sequence order.
    pub handed: Vec<Uuid>,
    /// Rows created leased to this server, for subjects it is busy with:
    /// read them with [`load`] before the transaction commits.
    pub leased: Vec<Uuid>,
    /// Rows created.
    pub created: i64,
}

/// Fans the tenant's new events out, endpoint by endpoint, under
/// `lease` (migrations/0031): up to `limit` events each; new subjects with
/// nothing pending, up to `max`, are handed out in memory.
pub async fn fan_out(
    tx: &TenantTx,
    limit: i32,
    lease: Uuid,
    lease_ms: i32,
    max: i32,
    held: &Held,
) -> Result<Vec<Fanned>, DbError> {
    let business = tx.business_id();
    let (held_endpoints, held_min): (Vec<Uuid>, Vec<i64>) = held.held_min.iter().copied().unzip();
    let busy_endpoints: Vec<Uuid> = held.busy.iter().map(|b| b.0).collect();
    let busy_subjects: Vec<Uuid> = held.busy.iter().map(|b| b.1).collect();
    let busy_full: Vec<bool> = held.busy.iter().map(|b| b.2).collect();
    let rows = tx
        .query(
            FAN_OUT,
            &[
                (&limit, Type::INT4),
                (&lease, Type::UUID),
                (&lease_ms, Type::INT4),
                (&max, Type::INT4),
                (&held.known, Type::UUID_ARRAY),
                (&held_endpoints, Type::UUID_ARRAY),
                (&held_min, Type::INT8_ARRAY),
                (&busy_endpoints, Type::UUID_ARRAY),
                (&busy_subjects, Type::UUID_ARRAY),
                (&busy_full, Type::BOOL_ARRAY),
                (&business, Type::UUID),
            ],
        )
        .await?;
    rows.iter()
        .map(|row| {
            Ok(Fanned {
                endpoint_id: column(row, "endpoint_id")?,
                held: column(row, "held")?,
                taken: column(row, "taken")?,
                fanned: column(row, "fanned")?,
                handed: column(row, "handed")?,
                leased: column(row, "leased")?,
                created: column(row, "created")?,
            })
        })
        .collect()
}

const CLAIM: &str =
    "WITH async AS MATERIALIZED (SELECT set_config('synchronous_commit', 'off', true))
     SELECT c.business_id, c.delivery_id
       FROM ontab_claim_webhook_deliveries($1, $2, $3) AS c
      WHERE EXISTS (SELECT FROM async)";

/// Leases up to `limit` deliveries that may be attempted now to `lease`,
/// for `lease_ms`: (business, delivery).
///
/// Committed as the bookkeeping is ([`bookkeeping`]), without waiting for
/// its WAL to be flushed: `set_config(..., true)` lasts until the end of
/// the statement's own transaction, its COMMIT included, and as a one-time
/// filter it runs before the claim, whatever the claim finds. A claim lost in
/// a crash of the database leaves its deliveries unleased, to be sent
/// again with the same webhook-id. Under load the engine claims many
/// times a second, and each claim's WAL flush queued with the purchases'
/// own.
pub async fn claim(
    db: &Db,
    lease: Uuid,
    lease_ms: i32,
    limit: i32,
) -> Result<Vec<(Uuid, Uuid)>, DbError> {
    let rows = db
        .query_untenanted(
            CLAIM,
            &[
                (&lease, Type::UUID),
                (&lease_ms, Type::INT4),
                (&limit, Type::INT4),
            ],
        )
        .await?;
    rows.iter()
        .map(|row| Ok((column(row, "business_id")?, column(row, "delivery_id")?)))
        .collect()
}

/// A delivery ready to send: a row leased to this server, or an event
/// handed out in memory from the endpoint's window (no row).
#[derive(Debug)]
pub struct Job {
    pub delivery_id: Option<Uuid>,
    pub endpoint_id: Uuid,
    pub url: String,
    pub secrets: Vec<WebhookSecret>,
    pub event: EventBody,
}

// The secrets that sign now, newest first. In sequence order, so a
// subject's deliveries (should several come at once) keep theirs. Every
// row is reached by a probe of a primary key or of the secrets' index,
// one per delivery (LATERAL ... LIMIT 1), so the plan does not depend on
// how many deliveries or events the business has and one plan per
// connection serves. With `d.id = ANY ($2)` instead, planned for the
// values at hand, it walked the business's whole range of the primary
// key whenever a batch had more ids than the planner expected the
// business to have deliveries (0012 keeps no statistics on which business
// a delivery is of): 7,724 entries read for 32 deliveries (bench/run.sh
// with auto_explain). Pending as `finished_at IS NULL`, for migrations/
// 0010's reason.
const LOAD: &str = "SELECT d.id AS delivery_id, d.endpoint_id, e.url, ev.id, ev.sequence, ev.type,
            ev.created_at, ev.subject_id, ev.data,
            ARRAY(SELECT s.secret FROM webhook_secrets s
                   WHERE s.business_id = d.business_id AND s.endpoint_id = d.endpoint_id
                     AND (s.expires_at IS NULL OR s.expires_at > now())
                   ORDER BY s.created_at DESC, s.id DESC) AS secrets
       FROM (SELECT DISTINCT k.id FROM unnest($2::uuid[]) AS k (id)) k
      CROSS JOIN LATERAL (SELECT d.business_id, d.id, d.endpoint_id, d.event_id
                            FROM webhook_deliveries d
                           WHERE d.business_id = $1 AND d.id = k.id
                             AND d.lease = $3 AND d.finished_at IS NULL
                           LIMIT 1) d
      CROSS JOIN LATERAL (SELECT e.url FROM webhook_endpoints e
                           WHERE e.business_id = d.business_id AND e.id = d.endpoint_id
                           LIMIT 1) e
      CROSS JOIN LATERAL (SELECT ev.id, ev.sequence, ev.type, ev.created_at,
                                 coalesce(ev.subject_id, ev.business_id) AS subject_id, ev.data
                            FROM events ev
                           WHERE ev.business_id = d.business_id AND ev.id = d.event_id
                           LIMIT 1) ev
      ORDER BY ev.sequence, d.id";

// LOAD as Citus takes it: Citus refuses a LIMIT in a lateral subquery
// over a function's rows, so the deliveries are filtered by id instead.
// Citus plans every statement for its values anyway (plan_cache_mode =
// force_custom_plan, db::citus).
const LOAD_DISTRIBUTED: &str =
    "SELECT d.id AS delivery_id, d.endpoint_id, e.url, ev.id, ev.sequence, ev.type,
            ev.created_at, ev.subject_id, ev.data,
            ARRAY(SELECT s.secret FROM webhook_secrets s
                   WHERE s.business_id = d.business_id AND s.endpoint_id = d.endpoint_id
                     AND (s.expires_at IS NULL OR s.expires_at > now())
                   ORDER BY s.created_at DESC, s.id DESC) AS secrets
       FROM webhook_deliveries d
      CROSS JOIN LATERAL (SELECT e.url FROM webhook_endpoints e
                           WHERE e.business_id = d.business_id AND e.id = d.endpoint_id
                           LIMIT 1) e
      CROSS JOIN LATERAL (SELECT ev.id, ev.sequence, ev.type, ev.created_at,
                                 coalesce(ev.subject_id, ev.business_id) AS subject_id, ev.data
                            FROM events ev
                           WHERE ev.business_id = d.business_id AND ev.id = d.event_id
                           LIMIT 1) ev
      WHERE d.business_id = $1 AND d.id = ANY ($2) AND d.lease = $3 AND d.finished_at IS NULL
      ORDER BY ev.sequence, d.id";

// The events handed out in memory, by (endpoint, event): each a probe of
// the events' primary key (LATERAL ... LIMIT 1, as LOAD), the endpoints'
// URLs and signing secrets read once per endpoint, not once per event.
const LOAD_HANDED: &str = "WITH k AS MATERIALIZED (
         SELECT DISTINCT k.endpoint_id, k.event_id
           FROM unnest($2::uuid[], $3::uuid[]) AS k (endpoint_id, event_id)
     ), ep AS MATERIALIZED (
         SELECT e.id, e.url,
                ARRAY(SELECT s.secret FROM webhook_secrets s
                       WHERE s.business_id = $1 AND s.endpoint_id = e.id
                         AND (s.expires_at IS NULL OR s.expires_at > now())
                       ORDER BY s.created_at DESC, s.id DESC) AS secrets
           FROM (SELECT DISTINCT k.endpoint_id FROM k) d
          CROSS JOIN LATERAL (SELECT e.id, e.url FROM webhook_endpoints e
                               WHERE e.business_id = $1 AND e.id = d.endpoint_id
                               LIMIT 1) e
     )
     SELECT NULL::uuid AS delivery_id, ep.id AS endpoint_id, ep.url, ev.id, ev.sequence, ev.type,
            ev.created_at, ev.subject_id, ev.data, ep.secrets
       FROM k
       JOIN ep ON ep.id = k.endpoint_id
      CROSS JOIN LATERAL (SELECT ev.id, ev.sequence, ev.type, ev.created_at,
                                 coalesce(ev.subject_id, ev.business_id) AS subject_id, ev.data
                            FROM events ev
                           WHERE ev.business_id = $1 AND ev.id = k.event_id
                           LIMIT 1) ev
      ORDER BY ev.sequence, ep.id";

// LOAD_HANDED as Citus takes it (no LIMIT in a lateral subquery over a
// function's rows): every named endpoint with every named event; the
// caller keeps the pairs it asked for.
const LOAD_HANDED_DISTRIBUTED: &str =
    "SELECT NULL::uuid AS delivery_id, e.id AS endpoint_id, e.url, ev.id, ev.sequence, ev.type,
            ev.created_at, coalesce(ev.subject_id, ev.business_id) AS subject_id, ev.data,
            ARRAY(SELECT s.secret FROM webhook_secrets s
                   WHERE s.business_id = e.business_id AND s.endpoint_id = e.id
                     AND (s.expires_at IS NULL OR s.expires_at > now())
                   ORDER BY s.created_at DESC, s.id DESC) AS secrets
       FROM events ev
       JOIN webhook_endpoints e ON e.business_id = ev.business_id
      WHERE ev.business_id = $1 AND e.id = ANY ($2) AND ev.id = ANY ($3)
      ORDER BY ev.sequence, e.id";

// The events handed out of windows that went on from where this server
// left them: the run of sequences the fan-out just passed, one range of
// the events' (business_id, sequence) index, instead of a probe of the
// primary key per event (LOAD_HANDED measured 0.7 ms a call at 64
// clients, bench/results/20261205T173025Z). The caller keeps the pairs
// it handed out; events of the range it did not (filtered by type, left
// as rows) are read for nothing, and are few.
const LOAD_HANDED_RANGE: &str = "WITH ep AS MATERIALIZED (
         SELECT e.id, e.url,
                ARRAY(SELECT s.secret FROM webhook_secrets s
                       WHERE s.business_id = $1 AND s.endpoint_id = e.id
                         AND (s.expires_at IS NULL OR s.expires_at > now())
                       ORDER BY s.created_at DESC, s.id DESC) AS secrets
           FROM webhook_endpoints e
          WHERE e.business_id = $1 AND e.id = ANY ($2)
     )
     SELECT NULL::uuid AS delivery_id, ep.id AS endpoint_id, ep.url, ev.id, ev.sequence, ev.type,
            ev.created_at, coalesce(ev.subject_id, ev.business_id) AS subject_id, ev.data,
            ep.secrets
       FROM events ev
      CROSS JOIN ep
      WHERE ev.business_id = $1 AND ev.sequence > $3 AND ev.sequence <= $4
      ORDER BY ev.sequence, ep.id";

/// Where the events handed out lie, when the caller knows: every one of
/// them has a sequence in `after + 1 ..= through`.
#[derive(Debug, Clone, Copy)]
pub struct HandedRange {
    pub after: i64,
    pub through: i64,
}

/// The events of `handed` (endpoint, event) ready to send, in sequence
/// order. When `range` says where they lie, one read of that range of
/// sequences (not on Citus, which routes the probes' form); whatever
/// was handed and is not in it (the range was wrong) is read again by
/// its ids, so no event handed out is missed: one it misses would never
/// be sent, and the window's cursor would pass it.
pub async fn load_handed(
    tx: &TenantTx,
    kind: Bookkeeping,
    handed: &[(Uuid, Uuid)],
    range: Option<HandedRange>,
) -> Result<Vec<Job>, DbError> {
    // A range mostly of events not handed out (an endpoint's type filter
    // passing few) is read by ids instead.
    let dense = |range: &HandedRange| {
        let span = range.through.saturating_sub(range.after);
        span <= i64::try_from(handed.len().saturating_mul(2)).unwrap_or(i64::MAX)
    };
    let Some(range) = range.filter(|range| !kind.distributed && !handed.is_empty() && dense(range))
    else {
        return handed_by_id(tx, kind, handed).await;
    };
    let asked: HashSet<(Uuid, Uuid)> = handed.iter().copied().collect();
    let mut endpoints: Vec<Uuid> = handed.iter().map(|pair| pair.0).collect();
    endpoints.sort_unstable();
    endpoints.dedup();
    let rows = tx
        .query(
            LOAD_HANDED_RANGE,
            &[
                (&tx.business_id(), Type::UUID),
                (&endpoints, Type::UUID_ARRAY),
                (&range.after, Type::INT8),
                (&range.through, Type::INT8),
            ],
        )
        .await?;
    let mut jobs = jobs_asked(&rows, &asked)?;
    if jobs.len() < asked.len() {
        let found: HashSet<(Uuid, Uuid)> = jobs
            .iter()
            .map(|job| (job.endpoint_id, job.event.id))
            .collect();
        let missed: Vec<(Uuid, Uuid)> = asked.difference(&found).copied().collect();
        jobs.extend(handed_by_id(tx, kind, &missed).await?);
        jobs.sort_by_key(|job| (job.event.sequence, job.endpoint_id));
    }
    Ok(jobs)
}

/// The jobs of `rows` that are among the (endpoint, event) pairs `asked`.
fn jobs_asked(
    rows: &[tokio_postgres::Row],
    asked: &HashSet<(Uuid, Uuid)>,
) -> Result<Vec<Job>, DbError> {
    let mut jobs = Vec::with_capacity(asked.len().min(rows.len()));
    for row in rows {
        let job = job(row)?;
        if asked.contains(&(job.endpoint_id, job.event.id)) {
            jobs.push(job);
        }
    }
    Ok(jobs)
}

/// The events of `handed`, by a probe of the events' primary key each.
async fn handed_by_id(
    tx: &TenantTx,
    kind: Bookkeeping,
    handed: &[(Uuid, Uuid)],
) -> Result<Vec<Job>, DbError> {
    if handed.is_empty() {
        return Ok(Vec::new());
    }
    let business = tx.business_id();
    let (endpoints, events): (Vec<Uuid>, Vec<Uuid>) = handed.iter().copied().unzip();
    let rows = tx
        .query(
            if kind.distributed {
                LOAD_HANDED_DISTRIBUTED
            } else {
                LOAD_HANDED
            },
            &[
                (&business, Type::UUID),
                (&endpoints, Type::UUID_ARRAY),
                (&events, Type::UUID_ARRAY),
            ],
        )
        .await?;
    jobs_asked(&rows, &handed.iter().copied().collect())
}

fn job(row: &tokio_postgres::Row) -> Result<Job, DbError> {
    let secrets: Vec<Vec<u8>> = column(row, "secrets")?;
    Ok(Job {
        delivery_id: column(row, "delivery_id")?,
        endpoint_id: column(row, "endpoint_id")?,
        url: column(row, "url")?,
        secrets: secrets.into_iter().map(WebhookSecret::from_bytes).collect(),
        event: event_body(row)?,
    })
}

/// The deliveries among `delivery_ids` that `lease` still holds, in
/// sequence order, each once however often it is named (one statement
/// however many).
pub async fn load(
    tx: &TenantTx,
    kind: Bookkeeping,
    delivery_ids: &[Uuid],
    lease: Uuid,
) -> Result<Vec<Job>, DbError> {
    if delivery_ids.is_empty() {
        return Ok(Vec::new());
    }
    let business = tx.business_id();
    let rows = tx
        .query(
            if kind.distributed {
                LOAD_DISTRIBUTED
            } else {
                LOAD
            },
            &[
                (&business, Type::UUID),
                (&delivery_ids, Type::UUID_ARRAY),
                (&lease, Type::UUID),
            ],
        )
        .await?;
    rows.iter().map(job).collect()
}

/// What came of one attempt.
#[derive(Debug, Clone)]
pub struct Attempted {
    pub status_code: Option<i32>,
    pub error: Option<String>,
    pub duration_ms: i32,
    pub attempted_at: DateTime<Utc>,
}

impl Attempted {
    /// Whether the receiver took the event: a 2xx (the contract's rule,
    /// which the recording functions apply too).
    pub fn delivered(&self) -> bool {
        self.status_code
            .is_some_and(|status| (200..300).contains(&status))
    }
}

/// An attempt to record: the delivery, what came of it, and whether its
/// subject's next delivery should be leased to the caller if it was
/// delivered.
#[derive(Debug, Clone)]
pub struct ToRecord {
    pub delivery_id: Uuid,
    pub attempted: Attempted,
    pub continue_subject: bool,
}

/// What recording one attempt did: one row per delivery recorded, and one
/// more for each further delivery of the subject's next run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub delivery_id: Uuid,
    /// `delivered`, `retrying`, `gave_up` or `disabled`.
    pub outcome: String,
    /// One of the subject's next run, now leased to the caller.
    pub next_delivery_id: Option<Uuid>,
}

const ATTEMPTED: &str = "SELECT delivery_id, outcome, next_delivery_id
       FROM ontab_webhook_attempted_batch_for($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

/// Records the attempts of deliveries held under `lease` (migrations/0010)
/// and leases each delivered subject's next run where asked (0024): a
/// delivery's row comes once per delivery of that run, with the same
/// outcome. A delivery whose lease was lost is not recorded and not
/// answered.
pub async fn attempted(
    tx: &TenantTx,
    lease: Uuid,
    lease_ms: i32,
    schedule_ms: &[i64],
    attempts: &[ToRecord],
) -> Result<Vec<Recorded>, DbError> {
    let ids: Vec<Uuid> = attempts.iter().map(|a| a.delivery_id).collect();
    let status: Vec<Option<i32>> = attempts.iter().map(|a| a.attempted.status_code).collect();
    let errors: Vec<Option<&str>> = attempts
        .iter()
        .map(|a| a.attempted.error.as_deref())
        .collect();
    let durations: Vec<i32> = attempts.iter().map(|a| a.attempted.duration_ms).collect();
    let at: Vec<DateTime<Utc>> = attempts.iter().map(|a| a.attempted.attempted_at).collect();
    let continues: Vec<bool> = attempts.iter().map(|a| a.continue_subject).collect();
    let business = tx.business_id();
    let rows = tx
        .query(
            ATTEMPTED,
            &[
                (&lease, Type::UUID),
                (&lease_ms, Type::INT4),
                (&schedule_ms, Type::INT8_ARRAY),
                (&ids, Type::UUID_ARRAY),
                (&status, Type::INT4_ARRAY),
                (&errors, Type::TEXT_ARRAY),
                (&durations, Type::INT4_ARRAY),
                (&at, Type::TIMESTAMPTZ_ARRAY),
                (&continues, Type::BOOL_ARRAY),
                (&business, Type::UUID),
            ],
        )
        .await?;
    rows.iter()
        .map(|row| {
            Ok(Recorded {
                delivery_id: column(row, "delivery_id")?,
                outcome: column(row, "outcome")?,
                next_delivery_id: column(row, "next_delivery_id")?,
            })
        })
        .collect()
}

/// An attempt at an event handed out in memory (migrations/0031). Its ids
/// are chosen once, so that writing the same recording again after an
/// error writes nothing twice.
#[derive(Debug, Clone)]
pub struct WindowAttempt {
    pub endpoint_id: Uuid,
    pub event_id: Uuid,
    /// The event's delivery row, should the attempt not be delivered.
    pub row_id: Uuid,
    pub attempt_id: Uuid,
    pub attempted: Attempted,
}

/// An event handed out in memory and not sent: it becomes a pending row.
#[derive(Debug, Clone)]
pub struct Spill {
    pub endpoint_id: Uuid,
    pub event_id: Uuid,
    pub row_id: Uuid,
}

/// What one recording writes of windows.
#[derive(Debug, Default)]
pub struct WindowRecording {
    /// Per endpoint, how far its settled cursor may move.
    pub settle: Vec<(Uuid, i64)>,
    pub attempts: Vec<WindowAttempt>,
    pub spill: Vec<Spill>,
    /// Rows leased to this server that it lets go.
    pub release: Vec<Uuid>,
}

impl WindowRecording {
    pub fn is_empty(&self) -> bool {
        self.settle.is_empty()
            && self.attempts.is_empty()
            && self.spill.is_empty()
            && self.release.is_empty()
    }
}

/// What a window recording did.
#[derive(Debug, Default)]
pub struct WindowRecorded {
    /// Endpoints whose window this server no longer holds: nothing of
    /// theirs was written.
    pub lost: Vec<Uuid>,
    /// (endpoint, event) → outcome, for the attempts that were not 2xx.
    pub outcomes: std::collections::HashMap<(Uuid, Uuid), Option<String>>,
}

const ATTEMPTED_WINDOW: &str = "SELECT kind, endpoint_id, id, outcome
       FROM ontab_webhook_attempted_window_for($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,
                                               $13, $14, $15, $16, $17, $18, $19)";

/// Records what was sent out of this server's windows (migrations/0031).
///
/// `rewrite`: the recording may have been written before (an error hid
/// whether its COMMIT went through): what was written is skipped.
pub async fn attempted_window(
    tx: &TenantTx,
    lease: Uuid,
    lease_ms: i32,
    schedule_ms: &[i64],
    recording: &WindowRecording,
    rewrite: bool,
) -> Result<WindowRecorded, DbError> {
    let (settle_endpoints, settle_through): (Vec<Uuid>, Vec<i64>) =
        recording.settle.iter().copied().unzip();
    let a = &recording.attempts;
    let endpoints: Vec<Uuid> = a.iter().map(|a| a.endpoint_id).collect();
    let events: Vec<Uuid> = a.iter().map(|a| a.event_id).collect();
    let row_ids: Vec<Uuid> = a.iter().map(|a| a.row_id).collect();
    let attempt_ids: Vec<Uuid> = a.iter().map(|a| a.attempt_id).collect();
    let status: Vec<Option<i32>> = a.iter().map(|a| a.attempted.status_code).collect();
    let errors: Vec<Option<&str>> = a.iter().map(|a| a.attempted.error.as_deref()).collect();
    let durations: Vec<i32> = a.iter().map(|a| a.attempted.duration_ms).collect();
    let at: Vec<DateTime<Utc>> = a.iter().map(|a| a.attempted.attempted_at).collect();
    let spill_endpoints: Vec<Uuid> = recording.spill.iter().map(|s| s.endpoint_id).collect();
    let spill_events: Vec<Uuid> = recording.spill.iter().map(|s| s.event_id).collect();
    let spill_ids: Vec<Uuid> = recording.spill.iter().map(|s| s.row_id).collect();
    let business = tx.business_id();
    let rows = tx
        .query(
            ATTEMPTED_WINDOW,
            &[
                (&lease, Type::UUID),
                (&lease_ms, Type::INT4),
                (&schedule_ms, Type::INT8_ARRAY),
                (&settle_endpoints, Type::UUID_ARRAY),
                (&settle_through, Type::INT8_ARRAY),
                (&endpoints, Type::UUID_ARRAY),
                (&events, Type::UUID_ARRAY),
                (&row_ids, Type::UUID_ARRAY),
                (&attempt_ids, Type::UUID_ARRAY),
                (&status, Type::INT4_ARRAY),
                (&errors, Type::TEXT_ARRAY),
                (&durations, Type::INT4_ARRAY),
                (&at, Type::TIMESTAMPTZ_ARRAY),
                (&spill_endpoints, Type::UUID_ARRAY),
                (&spill_events, Type::UUID_ARRAY),
                (&spill_ids, Type::UUID_ARRAY),
                (&recording.release, Type::UUID_ARRAY),
                (&rewrite, Type::BOOL),
                (&business, Type::UUID),
            ],
        )
        .await?;
    let mut recorded = WindowRecorded::default();
    for row in &rows {
        let kind: String = column(row, "kind")?;
        let endpoint_id: Uuid = column(row, "endpoint_id")?;
        match kind.as_str() {
            "lost" => recorded.lost.push(endpoint_id),
            _ => {
                let event_id: Uuid = column(row, "id")?;
                recorded
                    .outcomes
                    .insert((endpoint_id, event_id), column(row, "outcome")?);
            }
        }
    }
    Ok(recorded)
}

const BACKLOG: &str = "SELECT endpoint_id, pending FROM ontab_webhook_backlog()";

/// Pending deliveries per endpoint, across tenants.
pub async fn backlog(db: &Db) -> Result<Vec<(Uuid, i64)>, DbError> {
    let rows = db.query_untenanted(BACKLOG, &[]).await?;
    rows.iter()
        .map(|row| Ok((column(row, "endpoint_id")?, column(row, "pending")?)))
        .collect()
}

const NATS_DUE: &str = "SELECT ontab_nats_due($1) AS business_id";

/// Businesses with events not yet acknowledged by JetStream.
pub async fn nats_due(db: &Db, limit: i32) -> Result<Vec<Uuid>, DbError> {
    let rows = db
        .query_untenanted(NATS_DUE, &[(&limit, Type::INT4)])
        .await?;
    rows.iter().map(|row| column(row, "business_id")).collect()
}

const NATS_CURSOR_ROW: &str =
    "INSERT INTO nats_cursors (business_id) VALUES ($1) ON CONFLICT (business_id) DO NOTHING";
// One publisher per business at a time: another server skips it.
const NATS_LOCK: &str = "SELECT c.published_through FROM nats_cursors c
                          WHERE c.business_id = $1 FOR UPDATE SKIP LOCKED";

/// Locks the tenant's NATS cursor; `None` when another publisher holds it.
pub async fn lock_nats_cursor(tx: &TenantTx) -> Result<Option<i64>, DbError> {
    let business = tx.business_id();
    tx.query(NATS_CURSOR_ROW, &[(&business, Type::UUID)])
        .await?;
    let row = tx.query_opt(NATS_LOCK, &[(&business, Type::UUID)]).await?;
    row.map(|row| column(&row, "published_through")).transpose()
}

// The gapless run of sequences after the cursor, as in fan-out.
const EVENTS_AFTER: &str =
    "SELECT run.id, run.sequence, run.type, run.created_at, run.subject_id, run.data
       FROM (SELECT ev.id, ev.sequence, ev.type, ev.created_at,
                    coalesce(ev.subject_id, ev.business_id) AS subject_id, ev.data,
                    row_number() OVER (ORDER BY ev.sequence) AS nth
               FROM events ev
              WHERE ev.business_id = $1 AND ev.sequence > $2
              ORDER BY ev.sequence
              LIMIT $3) AS run
      WHERE run.sequence = $2 + run.nth
      ORDER BY run.sequence";

/// Up to `limit` events after `after`, in sequence order, stopping at a gap.
pub async fn events_after(
    tx: &TenantTx,
    after: i64,
    limit: i64,
) -> Result<Vec<EventBody>, DbError> {
    let business = tx.business_id();
    let rows = tx
        .query(
            EVENTS_AFTER,
            &[
                (&business, Type::UUID),
                (&after, Type::INT8),
                (&limit, Type::INT8),
            ],
        )
        .await?;
    rows.iter().map(event_body).collect()
}

const NATS_ADVANCE: &str = "UPDATE nats_cursors SET published_through = $2 WHERE business_id = $1";

pub async fn advance_nats_cursor(tx: &TenantTx, through: i64) -> Result<(), DbError> {
    let business = tx.business_id();
    tx.query(
        NATS_ADVANCE,
        &[(&business, Type::UUID), (&through, Type::INT8)],
    )
    .await?;
    Ok(())
}

const EVENT_COLUMNS: &[Column] = &[
    Column::named::<Uuid>("id"),
    Column::named::<i64>("sequence"),
    Column::named::<String>("type"),
    Column::named::<DateTime<Utc>>("created_at"),
    Column::named::<Uuid>("subject_id"),
    Column::named::<Json<EventData>>("data"),
];

// LOAD and LOAD_DISTRIBUTED take and answer the same.
const LOAD_PARAMS: &[Type] = &[Type::UUID, Type::UUID_ARRAY, Type::UUID];
const LOAD_HANDED_PARAMS: &[Type] = &[Type::UUID, Type::UUID_ARRAY, Type::UUID_ARRAY];
const JOB_COLUMNS: &[Column] = &[
    Column::named::<Option<Uuid>>("delivery_id"),
    Column::named::<Uuid>("endpoint_id"),
    Column::named::<String>("url"),
    Column::named::<Uuid>("id"),
    Column::named::<i64>("sequence"),
    Column::named::<String>("type"),
    Column::named::<DateTime<Utc>>("created_at"),
    Column::named::<Uuid>("subject_id"),
    Column::named::<Json<EventData>>("data"),
    Column::named::<Vec<Vec<u8>>>("secrets"),
];

pub(super) const STATEMENTS: &[Statement] = &[
    statement!(
        FAN_OUT_DUE,
        &[Type::INT4, Type::UUID],
        &[Column::named::<Uuid>("business_id")]
    ),
    statement!(
        BOOKKEEPING,
        &[],
        &[
            Column::at::<String>(0),
            Column::at::<String>(1),
            Column::named::<bool>("distributed"),
        ]
    ),
    statement!(
        FAN_OUT,
        &[
            Type::INT4,
            Type::UUID,
            Type::INT4,
            Type::INT4,
            Type::UUID_ARRAY,
            Type::UUID_ARRAY,
            Type::INT8_ARRAY,
            Type::UUID_ARRAY,
            Type::UUID_ARRAY,
            Type::BOOL_ARRAY,
            Type::UUID,
        ],
        &[
            Column::named::<Uuid>("endpoint_id"),
            Column::named::<bool>("held"),
            Column::named::<bool>("taken"),
            Column::named::<i64>("fanned"),
            Column::named::<Vec<Uuid>>("handed"),
            Column::named::<Vec<Uuid>>("leased"),
            Column::named::<i64>("created"),
        ]
    ),
    statement!(
        CLAIM,
        &[Type::UUID, Type::INT4, Type::INT4],
        &[
            Column::named::<Uuid>("business_id"),
            Column::named::<Uuid>("delivery_id"),
        ]
    ),
    statement!(LOAD, LOAD_PARAMS, JOB_COLUMNS),
    statement!(LOAD_DISTRIBUTED, LOAD_PARAMS, JOB_COLUMNS),
    statement!(LOAD_HANDED, LOAD_HANDED_PARAMS, JOB_COLUMNS),
    statement!(LOAD_HANDED_DISTRIBUTED, LOAD_HANDED_PARAMS, JOB_COLUMNS),
    statement!(
        LOAD_HANDED_RANGE,
        &[Type::UUID, Type::UUID_ARRAY, Type::INT8, Type::INT8],
        JOB_COLUMNS
    ),
    statement!(
        ATTEMPTED,
        &[
            Type::UUID,
            Type::INT4,
            Type::INT8_ARRAY,
            Type::UUID_ARRAY,
            Type::INT4_ARRAY,
            Type::TEXT_ARRAY,
            Type::INT4_ARRAY,
            Type::TIMESTAMPTZ_ARRAY,
            Type::BOOL_ARRAY,
            Type::UUID,
        ],
        &[
            Column::named::<Uuid>("delivery_id"),
            Column::named::<String>("outcome"),
            Column::named::<Option<Uuid>>("next_delivery_id"),
        ]
    ),
    statement!(
        ATTEMPTED_WINDOW,
        &[
            Type::UUID,
            Type::INT4,
            Type::INT8_ARRAY,
            Type::UUID_ARRAY,
            Type::INT8_ARRAY,
            Type::UUID_ARRAY,
            Type::UUID_ARRAY,
            Type::UUID_ARRAY,
            Type::UUID_ARRAY,
            Type::INT4_ARRAY,
            Type::TEXT_ARRAY,
            Type::INT4_ARRAY,
            Type::TIMESTAMPTZ_ARRAY,
            Type::UUID_ARRAY,
            Type::UUID_ARRAY,
            Type::UUID_ARRAY,
            Type::UUID_ARRAY,
            Type::BOOL,
            Type::UUID,
        ],
        &[
            Column::named::<String>("kind"),
            Column::named::<Uuid>("endpoint_id"),
            Column::named::<Option<Uuid>>("id"),
            Column::named::<Option<String>>("outcome"),
        ]
    ),
    statement!(
        BACKLOG,
        &[],
        &[
            Column::named::<Uuid>("endpoint_id"),
            Column::named::<i64>("pending"),
        ]
    ),
    statement!(
        NATS_DUE,
        &[Type::INT4],
        &[Column::named::<Uuid>("business_id")]
    ),
    statement!(NATS_CURSOR_ROW, &[Type::UUID], &[]),
    statement!(
        NATS_LOCK,
        &[Type::UUID],
        &[Column::named::<i64>("published_through")]
    ),
    statement!(
        EVENTS_AFTER,
        &[Type::UUID, Type::INT8, Type::INT8],
        EVENT_COLUMNS
    ),
    statement!(NATS_ADVANCE, &[Type::UUID, Type::INT8], &[]),
];
