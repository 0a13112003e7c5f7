//! Events: the feed's read, the sequencer's numbering, the overdue scan,
//! retention, and the NOTIFY that wakes readers. The events themselves are
//! written by triggers in the changing transaction (migrations/0005).

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use tokio_postgres::AsyncMessage;
use tokio_postgres::types::{Json, Type};
use uuid::Uuid;

use super::sql::{Column, Statement, statement};
use super::{Db, DbError, TenantTx, column};
use crate::domain::events::{Event, EventData};

/// A page of the feed as read in one snapshot.
#[derive(Debug, Clone)]
pub struct FeedPage {
    pub events: Vec<Event>,
    /// The highest sequence the read looked at (matching `types` or not);
    /// `None` when there was none after `after`.
    pub scanned_to: Option<i64>,
    /// The oldest sequence still kept (retention prunes the oldest).
    pub oldest_available: i64,
}

// One statement, so one snapshot: the events after `after` are a gapless
// range in it (see 0005), and `scanned_to` says how far the read looked.
// `types` filters within at most $3 scanned events, so a rare type costs a
// bounded read per page; the reader's next_after then moves past what was
// scanned.
const FEED: &str = "
WITH scanned AS MATERIALIZED (
    SELECT e.sequence, e.type FROM events e
     WHERE e.business_id = $1 AND e.sequence > $2
     ORDER BY e.sequence
     LIMIT $3
), wanted AS MATERIALIZED (
    SELECT s.sequence FROM scanned s
     WHERE $4::text[] IS NULL OR s.type = ANY ($4::text[])
     ORDER BY s.sequence
     LIMIT $5
)
SELECT (SELECT max(s.sequence) FROM scanned s) AS scanned_to,
       coalesce((SELECT q.pruned_through FROM event_sequences q WHERE q.business_id = $1), 0) + 1
           AS oldest_available,
       e.id, e.sequence, e.type, e.created_at, e.subject_id, e.data
  FROM (SELECT 1) AS one
  LEFT JOIN (wanted w JOIN events e ON e.business_id = $1 AND e.sequence = w.sequence) ON true
 ORDER BY e.sequence";

/// Up to `limit` events after `after`, of `types` (all when `None`),
/// looking at no more than `scan` events.
pub async fn feed(
    tx: &TenantTx,
    after: i64,
    limit: i64,
    scan: i64,
    types: Option<Vec<String>>,
) -> Result<FeedPage, DbError> {
    let business = tx.business_id();
    let rows = tx
        .query(
            FEED,
            &[
                (&business, Type::UUID),
                (&after, Type::INT8),
                (&scan, Type::INT8),
                (&types, Type::TEXT_ARRAY),
                (&limit, Type::INT8),
            ],
        )
        .await?;
    let mut page = FeedPage {
        events: Vec::with_capacity(rows.len()),
        scanned_to: None,
        oldest_available: 1,
    };
    for row in &rows {
        page.scanned_to = column(row, "scanned_to")?;
        page.oldest_available = column(row, "oldest_available")?;
        let Some(id) = column::<_, Option<Uuid>>(row, "id")? else {
            continue;
        };
        page.events.push(Event {
            id,
            sequence: column(row, "sequence")?,
            event_type: column(row, "type")?,
            created_at: column(row, "created_at")?,
            subject_id: column(row, "subject_id")?,
            data: data(row)?,
        });
    }
    Ok(page)
}

/// The row's `data` column, as its text.
pub(super) fn data(row: &tokio_postgres::Row) -> Result<EventData, DbError> {
    column::<_, Json<EventData>>(row, "data").map(|json| json.0)
}

const SEQUENCE: &str = "SELECT event_type, sequenced FROM ontab_sequence_events_for($1, $2)";

/// Numbers up to `limit` of the tenant's committed, unnumbered events;
/// answers how many of each type. Empty when there were none, or another
/// sequencer holds the business.
pub async fn sequence(tx: &TenantTx, limit: i32) -> Result<Vec<(String, i64)>, DbError> {
    let rows = tx
        .query(
            SEQUENCE,
            &[(&limit, Type::INT4), (&tx.business_id(), Type::UUID)],
        )
        .await?;
    rows.iter()
        .map(|row| Ok((column(row, "event_type")?, column(row, "sequenced")?)))
        .collect()
}

const UNSEQUENCED: &str = "SELECT business_id, oldest FROM ontab_unsequenced_businesses($1)";

/// Businesses with committed events not numbered yet, and when the oldest
/// of them was written; across tenants.
pub async fn unsequenced(db: &Db, limit: i32) -> Result<Vec<(Uuid, DateTime<Utc>)>, DbError> {
    let rows = db
        .query_untenanted(UNSEQUENCED, &[(&limit, Type::INT4)])
        .await?;
    rows.iter()
        .map(|row| Ok((column(row, "business_id")?, column(row, "oldest")?)))
        .collect()
}

const BUSINESS_IDS: &str = "SELECT ontab_event_business_ids()";

/// Every business's id, for the per-tenant background work.
pub async fn business_ids(db: &Db) -> Result<Vec<Uuid>, DbError> {
    let rows = db.query_untenanted(BUSINESS_IDS, &[]).await?;
    rows.iter().map(|row| column(row, 0)).collect()
}

const RECORD_OVERDUE: &str = "SELECT ontab_record_overdue_for($1, $2)";

/// Emits customer.overdue for up to `limit` of the tenant's purchases past
/// due and unsettled, each once; answers how many.
pub async fn record_overdue(tx: &TenantTx, limit: i32) -> Result<i64, DbError> {
    let row = tx
        .query_one(
            RECORD_OVERDUE,
            &[(&limit, Type::INT4), (&tx.business_id(), Type::UUID)],
        )
        .await?;
    column(&row, 0)
}

const PRUNE: &str = "SELECT ontab_prune_events_for($1, $2, $3)";

/// Deletes up to `limit` of the tenant's oldest events written before
/// `before` (a prefix of the sequence); answers how many.
pub async fn prune(tx: &TenantTx, before: DateTime<Utc>, limit: i32) -> Result<i64, DbError> {
    let row = tx
        .query_one(
            PRUNE,
            &[
                (&before, Type::TIMESTAMPTZ),
                (&limit, Type::INT4),
                (&tx.business_id(), Type::UUID),
            ],
        )
        .await?;
    column(&row, 0)
}

const LISTEN: &str = "LISTEN ontab_events";

impl Db {
    /// Listens for `NOTIFY ontab_events` on a connection of its own and
    /// calls `woken` with each notified business, until the connection
    /// fails (then returns the error; the caller reconnects). Behind a
    /// transaction-mode pooler LISTEN delivers nothing: readers also poll.
    pub async fn listen_events(&self, woken: impl Fn(Uuid)) -> Result<(), DbError> {
        let (client, mut connection) = self.connect_options().connect().await?;
        let mut messages =
            futures_util::stream::poll_fn(move |context| connection.poll_message(context));
        let listening = client.batch_execute(LISTEN);
        tokio::pin!(listening);
        let mut listened = false;
        loop {
            tokio::select! {
                result = &mut listening, if !listened => {
                    result?;
                    listened = true;
                }
                message = messages.next() => match message {
                    Some(Ok(AsyncMessage::Notification(notification))) => {
                        if let Ok(business) = Uuid::try_parse(notification.payload()) {
                            woken(business);
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(error)) => return Err(error.into()),
                    None => return Ok(()),
                },
            }
        }
    }
}

pub(super) const STATEMENTS: &[Statement] = &[
    statement!(
        FEED,
        &[
            Type::UUID,
            Type::INT8,
            Type::INT8,
            Type::TEXT_ARRAY,
            Type::INT8
        ],
        &[
            Column::named::<Option<i64>>("scanned_to"),
            Column::named::<i64>("oldest_available"),
            Column::named::<Option<Uuid>>("id"),
            Column::named::<i64>("sequence"),
            Column::named::<String>("type"),
            Column::named::<DateTime<Utc>>("created_at"),
            Column::named::<Uuid>("subject_id"),
            Column::named::<Json<EventData>>("data"),
        ]
    ),
    statement!(
        SEQUENCE,
        &[Type::INT4, Type::UUID],
        &[
            Column::named::<String>("event_type"),
            Column::named::<i64>("sequenced"),
        ]
    ),
    statement!(
        UNSEQUENCED,
        &[Type::INT4],
        &[
            Column::named::<Uuid>("business_id"),
            Column::named::<DateTime<Utc>>("oldest"),
        ]
    ),
    statement!(BUSINESS_IDS, &[], &[Column::at::<Uuid>(0)]),
    statement!(
        RECORD_OVERDUE,
        &[Type::INT4, Type::UUID],
        &[Column::at::<i64>(0)]
    ),
    statement!(
        PRUNE,
        &[Type::TIMESTAMPTZ, Type::INT4, Type::UUID],
        &[Column::at::<i64>(0)]
    ),
    statement!(LISTEN, &[], &[]),
];
