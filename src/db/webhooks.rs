//! Webhook endpoints as the routes manage them: create (with its first
//! secret), read, list, change, delete, rotate the secret, list attempts,
//! replay. Each runs in the tenant's transaction; the tables and why they
//! look so are in migrations/0006.

use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use tokio_postgres::types::Type;
use uuid::Uuid;

use super::page::{CreatedKey, Page};
use super::sql::{Column, Statement, statement};
use super::{DbError, TenantTx, column};
use crate::domain::webhook::{DeliveryAttempt, WebhookEndpoint};

macro_rules! select_endpoint {
    () => {
        "SELECT e.id, e.url, e.types, e.description, e.disabled, e.disabled_reason, e.created_at, e.updated_at
           FROM webhook_endpoints e "
    };
}

const ENDPOINT_COLUMNS: &[Column] = &[
    Column::named::<Uuid>("id"),
    Column::named::<String>("url"),
    Column::named::<Option<Vec<String>>>("types"),
    Column::named::<String>("description"),
    Column::named::<bool>("disabled"),
    Column::named::<Option<String>>("disabled_reason"),
    Column::named::<DateTime<Utc>>("created_at"),
    Column::named::<DateTime<Utc>>("updated_at"),
];

fn endpoint(row: &Row) -> Result<WebhookEndpoint, DbError> {
    Ok(WebhookEndpoint {
        id: column(row, "id")?,
        url: column(row, "url")?,
        types: column(row, "types")?,
        description: column(row, "description")?,
        disabled: column(row, "disabled")?,
        disabled_reason: column(row, "disabled_reason")?,
        created_at: column(row, "created_at")?,
        updated_at: column(row, "updated_at")?,
    })
}

// A new endpoint receives the events sequenced after it exists: its cursor
// starts at the business's latest sequence (later ones are higher, since
// sequences follow commit order).
// An endpoint receives the events sequenced after it was created: its
// cursor starts at the last sequence given. Read apart from the INSERT:
// Citus refuses a subquery inside an INSERT's VALUES, and a sequence
// given between the two only means the endpoint was created a moment
// earlier.
const LAST_SEQUENCE: &str =
    "SELECT coalesce(max(ev.sequence), 0) FROM events ev WHERE ev.business_id = $1";
const CREATE: &str = "INSERT INTO webhook_endpoints AS e (business_id, id, url, types, description, fanned_out_through,
                                         settled_through)
     VALUES ($1, $2, $3, $4, $5, $6, $6)
     RETURNING e.id, e.url, e.types, e.description, e.disabled, e.disabled_reason, e.created_at, e.updated_at";

const ADD_SECRET: &str =
    "INSERT INTO webhook_secrets (business_id, id, endpoint_id, secret) VALUES ($1, $2, $3, $4)";

/// Creates the endpoint with `secret` as its signing key.
pub async fn create(
    tx: &TenantTx,
    url: &str,
    types: Option<&[String]>,
    description: &str,
    secret: &[u8],
) -> Result<WebhookEndpoint, DbError> {
    let business = tx.business_id();
    let id = Uuid::now_v7();
    let last: i64 = column(
        &tx.query_one(LAST_SEQUENCE, &[(&business, Type::UUID)])
            .await?,
        0,
    )?;
    let row = tx
        .query_one(
            CREATE,
            &[
                (&business, Type::UUID),
                (&id, Type::UUID),
                (&url, Type::TEXT),
                (&types, Type::TEXT_ARRAY),
                (&description, Type::TEXT),
                (&last, Type::INT8),
            ],
        )
        .await?;
    add_secret(tx, id, secret).await?;
    endpoint(&row)
}

async fn add_secret(tx: &TenantTx, endpoint_id: Uuid, secret: &[u8]) -> Result<(), DbError> {
    let business = tx.business_id();
    let id = Uuid::now_v7();
    tx.query(
        ADD_SECRET,
        &[
            (&business, Type::UUID),
            (&id, Type::UUID),
            (&endpoint_id, Type::UUID),
            (&secret, Type::BYTEA),
        ],
    )
    .await?;
    Ok(())
}

const GET: &str = concat!(select_endpoint!(), "WHERE e.business_id = $1 AND e.id = $2");

pub async fn get(tx: &TenantTx, id: Uuid) -> Result<Option<WebhookEndpoint>, DbError> {
    let business = tx.business_id();
    let row = tx
        .query_opt(GET, &[(&business, Type::UUID), (&id, Type::UUID)])
        .await?;
    row.as_ref().map(endpoint).transpose()
}

const LIST: &str = concat!(
    select_endpoint!(),
    "WHERE e.business_id = $1
       AND ($2::timestamptz IS NULL OR (e.created_at, e.id) > ($2, $3))
     ORDER BY e.created_at, e.id
     LIMIT $4"
);

/// Oldest first.
pub async fn list(tx: &TenantTx, page: &Page<CreatedKey>) -> Result<Vec<WebhookEndpoint>, DbError> {
    let business = tx.business_id();
    let (after_at, after_id) = page.after_parts();
    let limit = page.fetch_limit();
    let rows = tx
        .query(
            LIST,
            &[
                (&business, Type::UUID),
                (&after_at, Type::TIMESTAMPTZ),
                (&after_id, Type::UUID),
                (&limit, Type::INT8),
            ],
        )
        .await?;
    rows.iter().map(endpoint).collect()
}

/// The position of an endpoint in its list.
pub fn key(endpoint: &WebhookEndpoint) -> CreatedKey {
    CreatedKey {
        created_at: endpoint.created_at,
        id: endpoint.id,
    }
}

/// What a PATCH changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct EndpointChanges {
    pub url: Option<String>,
    /// `Some(None)`: every type from now on.
    pub types: Option<Option<Vec<String>>>,
    pub description: Option<String>,
    pub disabled: Option<bool>,
}

// Disabling by request keeps an earlier reason (a 410's `gone`); enabling
// clears it.
const UPDATE: &str = "UPDATE webhook_endpoints AS e
        SET url = coalesce($3, e.url),
            types = CASE WHEN $4 THEN $5 ELSE e.types END,
            description = coalesce($6, e.description),
            disabled = coalesce($7, e.disabled),
            disabled_reason = CASE WHEN coalesce($7, e.disabled)
                                   THEN coalesce(e.disabled_reason, 'requested') END,
            updated_at = now()
      WHERE e.business_id = $1 AND e.id = $2
  RETURNING e.id, e.url, e.types, e.description, e.disabled, e.disabled_reason, e.created_at, e.updated_at";

pub async fn update(
    tx: &TenantTx,
    id: Uuid,
    changes: &EndpointChanges,
) -> Result<Option<WebhookEndpoint>, DbError> {
    let business = tx.business_id();
    let set_types = changes.types.is_some();
    let types = changes.types.clone().flatten();
    let row = tx
        .query_opt(
            UPDATE,
            &[
                (&business, Type::UUID),
                (&id, Type::UUID),
                (&changes.url, Type::TEXT),
                (&set_types, Type::BOOL),
                (&types, Type::TEXT_ARRAY),
                (&changes.description, Type::TEXT),
                (&changes.disabled, Type::BOOL),
            ],
        )
        .await?;
    row.as_ref().map(endpoint).transpose()
}

const DELETE: &str =
    "DELETE FROM webhook_endpoints WHERE business_id = $1 AND id = $2 RETURNING id";

/// Deletes the endpoint with its secrets, deliveries and attempts; `false`
/// when there was none.
pub async fn delete(tx: &TenantTx, id: Uuid) -> Result<bool, DbError> {
    let business = tx.business_id();
    let row = tx
        .query_opt(DELETE, &[(&business, Type::UUID), (&id, Type::UUID)])
        .await?;
    Ok(row.is_some())
}

const LOCK: &str = "SELECT e.fanned_out_through, e.types FROM webhook_endpoints e
                     WHERE e.business_id = $1 AND e.id = $2 FOR UPDATE";

// Every secret still signing now signs until the overlap ends at the
// latest; one already expiring sooner keeps its earlier end (least()
// skips a NULL end; not coalesce(), which Citus refuses around now()).
const RETIRE_SECRETS: &str = "UPDATE webhook_secrets AS s
        SET expires_at = least(s.expires_at, now() + make_interval(secs => $3))
      WHERE s.business_id = $1 AND s.endpoint_id = $2
        AND (s.expires_at IS NULL OR s.expires_at > now())";

/// Makes `secret` the endpoint's signing key; the ones it replaces keep
/// signing for `overlap_secs`. `false` when there is no such endpoint.
pub async fn rotate_secret(
    tx: &TenantTx,
    id: Uuid,
    secret: &[u8],
    overlap_secs: f64,
) -> Result<bool, DbError> {
    let business = tx.business_id();
    if tx
        .query_opt(LOCK, &[(&business, Type::UUID), (&id, Type::UUID)])
        .await?
        .is_none()
    {
        return Ok(false);
    }
    tx.query(
        RETIRE_SECRETS,
        &[
            (&business, Type::UUID),
            (&id, Type::UUID),
            (&overlap_secs, Type::FLOAT8),
        ],
    )
    .await?;
    add_secret(tx, id, secret).await?;
    Ok(true)
}

// Events the endpoint has already been handed (up to its cursor) get a new
// delivery each; later ones will come through fan-out anyway.
const REPLAY: &str = "WITH added AS (
        INSERT INTO webhook_deliveries (business_id, id, endpoint_id, event_id, sequence, subject_id)
        SELECT ev.business_id, gen_random_uuid(), $2, ev.id, ev.sequence, coalesce(ev.subject_id, ev.business_id)
          FROM events ev
         WHERE ev.business_id = $1
           AND ev.sequence > $3 AND ev.sequence <= $4
           AND ($5::text[] IS NULL OR ev.type = ANY ($5))
        RETURNING 1)
     SELECT count(*) FROM added";

/// Sends again every event after sequence `after` that the endpoint's
/// filter takes; answers how many, or `None` when there is no such endpoint.
pub async fn replay(tx: &TenantTx, id: Uuid, after: i64) -> Result<Option<u64>, DbError> {
    let business = tx.business_id();
    let Some(locked) = tx
        .query_opt(LOCK, &[(&business, Type::UUID), (&id, Type::UUID)])
        .await?
    else {
        return Ok(None);
    };
    let through: i64 = column(&locked, "fanned_out_through")?;
    let types: Option<Vec<String>> = column(&locked, "types")?;
    let counted = tx
        .query_one(
            REPLAY,
            &[
                (&business, Type::UUID),
                (&id, Type::UUID),
                (&after, Type::INT8),
                (&through, Type::INT8),
                (&types, Type::TEXT_ARRAY),
            ],
        )
        .await?;
    let count: i64 = column(&counted, 0)?;
    Ok(Some(u64::try_from(count).unwrap_or(0)))
}

const EXISTS: &str = "SELECT 1 FROM webhook_endpoints e WHERE e.business_id = $1 AND e.id = $2";

pub async fn exists(tx: &TenantTx, id: Uuid) -> Result<bool, DbError> {
    let business = tx.business_id();
    Ok(tx
        .query_opt(EXISTS, &[(&business, Type::UUID), (&id, Type::UUID)])
        .await?
        .is_some())
}

const ATTEMPTS: &str = "SELECT a.id, a.event_id, a.delivery_id, a.attempt, a.status_code, a.error,
            a.duration_ms, a.outcome, a.next_attempt_at, a.attempted_at
       FROM webhook_attempts a
      WHERE a.business_id = $1 AND a.endpoint_id = $2
        AND ($3::timestamptz IS NULL OR (a.attempted_at, a.id) < ($3, $4))
      ORDER BY a.attempted_at DESC, a.id DESC
      LIMIT $5";

/// The endpoint's attempts, newest first.
pub async fn attempts(
    tx: &TenantTx,
    endpoint_id: Uuid,
    page: &Page<CreatedKey>,
) -> Result<Vec<DeliveryAttempt>, DbError> {
    let business = tx.business_id();
    let (before_at, before_id) = page.after_parts();
    let limit = page.fetch_limit();
    let rows = tx
        .query(
            ATTEMPTS,
            &[
                (&business, Type::UUID),
                (&endpoint_id, Type::UUID),
                (&before_at, Type::TIMESTAMPTZ),
                (&before_id, Type::UUID),
                (&limit, Type::INT8),
            ],
        )
        .await?;
    rows.iter().map(attempt).collect()
}

fn attempt(row: &Row) -> Result<DeliveryAttempt, DbError> {
    Ok(DeliveryAttempt {
        id: column(row, "id")?,
        event_id: column(row, "event_id")?,
        delivery_id: column(row, "delivery_id")?,
        attempt: column(row, "attempt")?,
        status_code: column(row, "status_code")?,
        error: column(row, "error")?,
        duration_ms: column(row, "duration_ms")?,
        outcome: column(row, "outcome")?,
        next_attempt_at: column(row, "next_attempt_at")?,
        attempted_at: column(row, "attempted_at")?,
    })
}

/// The position of an attempt in its list.
pub fn attempt_key(attempt: &DeliveryAttempt) -> CreatedKey {
    CreatedKey {
        created_at: attempt.attempted_at,
        id: attempt.id,
    }
}

pub(super) const STATEMENTS: &[Statement] = &[
    statement!(LAST_SEQUENCE, &[Type::UUID], &[Column::at::<i64>(0)]),
    statement!(
        CREATE,
        &[
            Type::UUID,
            Type::UUID,
            Type::TEXT,
            Type::TEXT_ARRAY,
            Type::TEXT,
            Type::INT8
        ],
        ENDPOINT_COLUMNS
    ),
    statement!(
        ADD_SECRET,
        &[Type::UUID, Type::UUID, Type::UUID, Type::BYTEA],
        &[]
    ),
    statement!(GET, &[Type::UUID, Type::UUID], ENDPOINT_COLUMNS),
    statement!(
        LIST,
        &[Type::UUID, Type::TIMESTAMPTZ, Type::UUID, Type::INT8],
        ENDPOINT_COLUMNS
    ),
    statement!(
        UPDATE,
        &[
            Type::UUID,
            Type::UUID,
            Type::TEXT,
            Type::BOOL,
            Type::TEXT_ARRAY,
            Type::TEXT,
            Type::BOOL,
        ],
        ENDPOINT_COLUMNS
    ),
    statement!(
        DELETE,
        &[Type::UUID, Type::UUID],
        &[Column::named::<Uuid>("id")]
    ),
    statement!(
        LOCK,
        &[Type::UUID, Type::UUID],
        &[
            Column::named::<i64>("fanned_out_through"),
            Column::named::<Option<Vec<String>>>("types"),
        ]
    ),
    statement!(RETIRE_SECRETS, &[Type::UUID, Type::UUID, Type::FLOAT8], &[]),
    statement!(
        REPLAY,
        &[
            Type::UUID,
            Type::UUID,
            Type::INT8,
            Type::INT8,
            Type::TEXT_ARRAY
        ],
        &[Column::at::<i64>(0)]
    ),
    statement!(EXISTS, &[Type::UUID, Type::UUID], &[]),
    statement!(
        ATTEMPTS,
        &[
            Type::UUID,
            Type::UUID,
            Type::TIMESTAMPTZ,
            Type::UUID,
            Type::INT8
        ],
        &[
            Column::named::<Uuid>("id"),
            Column::named::<Uuid>("event_id"),
            Column::named::<Option<Uuid>>("delivery_id"),
            Column::named::<i32>("attempt"),
            Column::named::<Option<i32>>("status_code"),
            Column::named::<Option<String>>("error"),
            Column::named::<i32>("duration_ms"),
            Column::named::<String>("outcome"),
            Column::named::<Option<DateTime<Utc>>>("next_attempt_at"),
            Column::named::<DateTime<Utc>>("attempted_at"),
        ]
    ),
];
