//! What the delivery workers send to PostgreSQL: find businesses with
//! events to fan out, fan them out into deliveries, lease the deliveries
//! that may go now, read one to send, record its attempt, and publish to
//! NATS behind a per-business cursor. The rules (per-subject order, leases,
//! the schedule's arithmetic) are in the SQL functions of migrations/0006.

use chrono::{DateTime, Utc};
use tokio_postgres::types::Type;
use uuid::Uuid;

use super::sql::{Column, Statement, statement};
use super::{Db, DbError, TenantTx, column};
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
    pub data: serde_json::Value,
}

const FAN_OUT_DUE: &str = "SELECT ontab_webhook_fan_out_due($1) AS business_id";

/// Businesses with events some endpoint has not been handed yet.
pub async fn fan_out_due(db: &Db, limit: i32) -> Result<Vec<Uuid>, DbError> {
    let rows = db
        .query_untenanted(FAN_OUT_DUE, &[(&limit, Type::INT4)])
        .await?;
    rows.iter().map(|row| column(row, "business_id")).collect()
}

const ASYNC_COMMIT: &str = "SELECT set_config('synchronous_commit', 'off', true)";

/// Lets this transaction's COMMIT return before its WAL is flushed. Only for
/// delivery bookkeeping (fan-out, leases, attempts), where losing the last
/// commits in a crash means sending an event again with the same
/// webhook-id, which at-least-once delivery allows; never for a change of
/// money, stock or an event itself. Spares a WAL flush per delivery, which
/// competed with the purchases' own.
pub async fn commit_asynchronously(tx: &TenantTx) -> Result<(), DbError> {
    tx.query_one(ASYNC_COMMIT, &[]).await?;
    Ok(())
}

const FAN_OUT: &str = "SELECT ontab_webhook_fan_out($1)";

/// Gives the tenant's endpoints deliveries of their new events (up to
/// `limit` events each); answers how many deliveries were created.
pub async fn fan_out(tx: &TenantTx, limit: i32) -> Result<i64, DbError> {
    let row = tx.query_one(FAN_OUT, &[(&limit, Type::INT4)]).await?;
    column(&row, 0)
}

const CLAIM: &str =
    "SELECT business_id, delivery_id FROM ontab_claim_webhook_deliveries($1, $2, $3)";

/// Leases up to `limit` deliveries that may be attempted now to `lease`,
/// for `lease_ms`: (business, delivery).
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

const CLAIM_NEXT: &str =
    "SELECT ontab_claim_next_webhook_delivery($1, $2, $3, $4, $5) AS delivery_id";

/// Leases the next delivery of the subject of one just delivered, if it may
/// go now (migrations/0008); `None` when there is none or it may not.
pub async fn claim_next(
    tx: &TenantTx,
    lease: Uuid,
    lease_ms: i32,
    endpoint_id: Uuid,
    subject_id: Uuid,
) -> Result<Option<Uuid>, DbError> {
    let business = tx.business_id();
    let row = tx
        .query_one(
            CLAIM_NEXT,
            &[
                (&lease, Type::UUID),
                (&lease_ms, Type::INT4),
                (&business, Type::UUID),
                (&endpoint_id, Type::UUID),
                (&subject_id, Type::UUID),
            ],
        )
        .await?;
    column(&row, "delivery_id")
}

/// A leased delivery, ready to send.
#[derive(Debug)]
pub struct Job {
    pub endpoint_id: Uuid,
    pub url: String,
    pub secrets: Vec<WebhookSecret>,
    pub event: EventBody,
}

// The secrets that sign now, newest first.
const LOAD: &str = "SELECT d.endpoint_id, e.url, ev.id, ev.sequence, ev.type, ev.created_at,
            coalesce(ev.subject_id, ev.business_id) AS subject_id, ev.data,
            ARRAY(SELECT s.secret FROM webhook_secrets s
                   WHERE s.business_id = d.business_id AND s.endpoint_id = d.endpoint_id
                     AND (s.expires_at IS NULL OR s.expires_at > now())
                   ORDER BY s.created_at DESC, s.id DESC) AS secrets
       FROM webhook_deliveries d
       JOIN webhook_endpoints e ON e.business_id = d.business_id AND e.id = d.endpoint_id
       JOIN events ev ON ev.business_id = d.business_id AND ev.id = d.event_id
      WHERE d.business_id = $1 AND d.id = $2 AND d.lease = $3 AND d.state = 'pending'";

/// The delivery if `lease` still holds it.
pub async fn load(tx: &TenantTx, delivery_id: Uuid, lease: Uuid) -> Result<Option<Job>, DbError> {
    let business = tx.business_id();
    let Some(row) = tx
        .query_opt(
            LOAD,
            &[
                (&business, Type::UUID),
                (&delivery_id, Type::UUID),
                (&lease, Type::UUID),
            ],
        )
        .await?
    else {
        return Ok(None);
    };
    let secrets: Vec<Vec<u8>> = column(&row, "secrets")?;
    Ok(Some(Job {
        endpoint_id: column(&row, "endpoint_id")?,
        url: column(&row, "url")?,
        secrets: secrets.into_iter().map(WebhookSecret::from_bytes).collect(),
        event: EventBody {
            id: column(&row, "id")?,
            sequence: column(&row, "sequence")?,
            event_type: column(&row, "type")?,
            created_at: column(&row, "created_at")?,
            subject_id: column(&row, "subject_id")?,
            data: column(&row, "data")?,
        },
    }))
}

/// What came of one attempt.
#[derive(Debug, Clone)]
pub struct Attempted {
    pub status_code: Option<i32>,
    pub error: Option<String>,
    pub duration_ms: i32,
    pub attempted_at: DateTime<Utc>,
}

const ATTEMPTED: &str = "SELECT ontab_webhook_attempted($1, $2, $3, $4, $5, $6, $7)";

/// Records the attempt under `lease`; answers its outcome (`delivered`,
/// `retrying`, `gave_up`, `disabled`), `None` when the lease was lost.
pub async fn attempted(
    tx: &TenantTx,
    delivery_id: Uuid,
    lease: Uuid,
    attempted: &Attempted,
    schedule_ms: &[i64],
) -> Result<Option<String>, DbError> {
    let row = tx
        .query_one(
            ATTEMPTED,
            &[
                (&delivery_id, Type::UUID),
                (&lease, Type::UUID),
                (&attempted.status_code, Type::INT4),
                (&attempted.error, Type::TEXT),
                (&attempted.duration_ms, Type::INT4),
                (&attempted.attempted_at, Type::TIMESTAMPTZ),
                (&schedule_ms, Type::INT8_ARRAY),
            ],
        )
        .await?;
    column(&row, 0)
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
    rows.iter()
        .map(|row| {
            Ok(EventBody {
                id: column(row, "id")?,
                sequence: column(row, "sequence")?,
                event_type: column(row, "type")?,
                created_at: column(row, "created_at")?,
                subject_id: column(row, "subject_id")?,
                data: column(row, "data")?,
            })
        })
        .collect()
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
    Column::named::<serde_json::Value>("data"),
];

pub(super) const STATEMENTS: &[Statement] = &[
    statement!(
        FAN_OUT_DUE,
        &[Type::INT4],
        &[Column::named::<Uuid>("business_id")]
    ),
    statement!(ASYNC_COMMIT, &[], &[Column::at::<String>(0)]),
    statement!(FAN_OUT, &[Type::INT4], &[Column::at::<i64>(0)]),
    statement!(
        CLAIM,
        &[Type::UUID, Type::INT4, Type::INT4],
        &[
            Column::named::<Uuid>("business_id"),
            Column::named::<Uuid>("delivery_id"),
        ]
    ),
    statement!(
        CLAIM_NEXT,
        &[Type::UUID, Type::INT4, Type::UUID, Type::UUID, Type::UUID],
        &[Column::named::<Option<Uuid>>("delivery_id")]
    ),
    statement!(
        LOAD,
        &[Type::UUID, Type::UUID, Type::UUID],
        &[
            Column::named::<Uuid>("endpoint_id"),
            Column::named::<String>("url"),
            Column::named::<Uuid>("id"),
            Column::named::<i64>("sequence"),
            Column::named::<String>("type"),
            Column::named::<DateTime<Utc>>("created_at"),
            Column::named::<Uuid>("subject_id"),
            Column::named::<serde_json::Value>("data"),
            Column::named::<Vec<Vec<u8>>>("secrets"),
        ]
    ),
    statement!(
        ATTEMPTED,
        &[
            Type::UUID,
            Type::UUID,
            Type::INT4,
            Type::TEXT,
            Type::INT4,
            Type::TIMESTAMPTZ,
            Type::INT8_ARRAY,
        ],
        &[Column::at::<Option<String>>(0)]
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
