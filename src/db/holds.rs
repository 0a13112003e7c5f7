//! Holds: stock and credit reserved now, captured (an order), voided or
//! expired later. Each write is one call of its SQL function (0004), which
//! takes the locks a purchase takes, in the same order, and answers a
//! refusal as a value; reads assemble a hold as JSON with
//! `ontab_hold_view`, which also decides its status by the database's
//! clock.

use tokio_postgres::Row;
use tokio_postgres::types::Type;
use uuid::Uuid;

use super::page::{CreatedKey, Page};
use super::sql::{Column, Statement, statement};
use super::{Db, DbError, TenantTx, column, decode_outcome};
use crate::domain::records::{Hold, HoldStatus, Order};
use crate::domain::{Lines, Refusal};

const HOLD: &str = "SELECT ontab_hold_for($1, $2, $3, $4, $5, $6)";

/// Reserves `lines` for `customer_id` until `expires_in` seconds from the
/// database's now.
pub async fn create(
    tx: &TenantTx,
    customer_id: Uuid,
    lines: &Lines,
    expires_in: i32,
) -> Result<Result<Hold, Refusal>, DbError> {
    let hold_id = Uuid::now_v7();
    let (product_ids, quantities) = (lines.product_ids(), lines.quantities());
    let row = tx
        .query_one(
            HOLD,
            &[
                (&hold_id, Type::UUID),
                (&customer_id, Type::UUID),
                (&product_ids, Type::UUID_ARRAY),
                (&quantities, Type::INT8_ARRAY),
                (&expires_in, Type::INT4),
                (&tx.business_id(), Type::UUID),
            ],
        )
        .await?;
    decode_outcome(column(&row, 0)?, "hold")
}

const CAPTURE: &str = "SELECT ontab_capture_for($1, $2, $3, $4, $5, $6)";

/// Captures all of the hold (`lines` `None`) or those lines of it.
pub async fn capture(
    tx: &TenantTx,
    hold_id: Uuid,
    lines: Option<&Lines>,
) -> Result<Result<Order, Refusal>, DbError> {
    let (order_id, entry_id) = (Uuid::now_v7(), Uuid::now_v7());
    let product_ids = lines.map(Lines::product_ids);
    let quantities = lines.map(Lines::quantities);
    let row = tx
        .query_one(
            CAPTURE,
            &[
                (&hold_id, Type::UUID),
                (&order_id, Type::UUID),
                (&entry_id, Type::UUID),
                (&product_ids, Type::UUID_ARRAY),
                (&quantities, Type::INT8_ARRAY),
                (&tx.business_id(), Type::UUID),
            ],
        )
        .await?;
    decode_outcome(column(&row, 0)?, "order")
}

const VOID: &str = "SELECT ontab_void_for($1, $2)";

pub async fn void(tx: &TenantTx, hold_id: Uuid) -> Result<Result<Hold, Refusal>, DbError> {
    let row = tx
        .query_one(
            VOID,
            &[(&hold_id, Type::UUID), (&tx.business_id(), Type::UUID)],
        )
        .await?;
    decode_outcome(column(&row, 0)?, "hold")
}

const EXPIRE: &str = "SELECT ontab_expire_hold_for($1, $2)";

/// Records the expiry of a hold past its `expires_at`; `None` when there
/// was nothing to record (it ended otherwise, or has not expired).
pub async fn expire(tx: &TenantTx, hold_id: Uuid) -> Result<Option<Hold>, DbError> {
    let row = tx
        .query_one(
            EXPIRE,
            &[(&hold_id, Type::UUID), (&tx.business_id(), Type::UUID)],
        )
        .await?;
    Ok(decode_outcome::<Hold>(column(&row, 0)?, "hold")?.ok())
}

const EXPIRED: &str = "SELECT business_id, hold_id FROM ontab_expired_holds($1)";

/// Up to `limit` holds past their expiry whose expiry is not recorded yet,
/// across tenants, oldest expiry first: (business, hold).
pub async fn expired(db: &Db, limit: i32) -> Result<Vec<(Uuid, Uuid)>, DbError> {
    let rows = db
        .query_untenanted(EXPIRED, &[(&limit, Type::INT4)])
        .await?;
    rows.iter()
        .map(|row| Ok((column(row, "business_id")?, column(row, "hold_id")?)))
        .collect()
}

fn hold(row: &Row) -> Result<Hold, DbError> {
    serde_json::from_value(column(row, 0)?)
        .map_err(|error| DbError::Decode(format!("hold: {error}")))
}

/// The hold's position in the list.
pub fn key(hold: &Hold) -> CreatedKey {
    CreatedKey {
        created_at: hold.created_at,
        id: hold.id,
    }
}

// The view is called on its own, never inside a statement over the
// business's tables: Citus pushes such a statement whole to the node that
// holds the business, where a function that reads tables may not run
// (docs/scale-out.md). NULL: no such hold.
const GET: &str = "SELECT v FROM ontab_hold_view($1, $2) AS v WHERE v IS NOT NULL";

pub async fn get(tx: &TenantTx, id: Uuid) -> Result<Option<Hold>, DbError> {
    let business = tx.business_id();
    let row = tx
        .query_opt(GET, &[(&business, Type::UUID), (&id, Type::UUID)])
        .await?;
    row.as_ref().map(hold).transpose()
}

// The status filter is the view's status, by the same clock: a hold past
// its expiry lists as expired whether or not the sweep has recorded it.
// The page's ids first, then their views in that order (as GET, above).
const LIST: &str = "SELECT h.id
                      FROM holds h
                      LEFT JOIN hold_endings e ON e.business_id = h.business_id AND e.hold_id = h.id
                     WHERE h.business_id = $1
                       AND ($2::uuid IS NULL OR h.customer_id = $2)
                       AND ($3::text IS NULL
                            OR $3 = coalesce(e.outcome,
                                             CASE WHEN h.expires_at <= now() THEN 'expired' ELSE 'pending' END))
                       AND ($4::timestamptz IS NULL OR (h.created_at, h.id) < ($4, $5))
                     ORDER BY h.created_at DESC, h.id DESC
                     LIMIT $6";
const VIEWS: &str = "SELECT ontab_hold_view($1, l.id)
                       FROM unnest($2::uuid[]) WITH ORDINALITY AS l (id, n)
                      ORDER BY l.n";

/// Holds newest first, optionally of one customer and in one status.
pub async fn list(
    tx: &TenantTx,
    customer_id: Option<Uuid>,
    status: Option<HoldStatus>,
    page: &Page<CreatedKey>,
) -> Result<Vec<Hold>, DbError> {
    let business = tx.business_id();
    let status = status.map(HoldStatus::as_str);
    let (before_at, before_id) = page.after_parts();
    let limit = page.fetch_limit();
    let rows = tx
        .query(
            LIST,
            &[
                (&business, Type::UUID),
                (&customer_id, Type::UUID),
                (&status, Type::TEXT),
                (&before_at, Type::TIMESTAMPTZ),
                (&before_id, Type::UUID),
                (&limit, Type::INT8),
            ],
        )
        .await?;
    let ids = rows
        .iter()
        .map(|row| column(row, 0))
        .collect::<Result<Vec<Uuid>, _>>()?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let views = tx
        .query(VIEWS, &[(&business, Type::UUID), (&ids, Type::UUID_ARRAY)])
        .await?;
    views.iter().map(hold).collect()
}

/// The one column of a use-case function's answer or a hold's view.
const JSON: &[Column] = &[Column::at::<serde_json::Value>(0)];

pub(super) const STATEMENTS: &[Statement] = &[
    statement!(
        HOLD,
        &[
            Type::UUID,
            Type::UUID,
            Type::UUID_ARRAY,
            Type::INT8_ARRAY,
            Type::INT4,
            Type::UUID,
        ],
        JSON
    ),
    statement!(
        CAPTURE,
        &[
            Type::UUID,
            Type::UUID,
            Type::UUID,
            Type::UUID_ARRAY,
            Type::INT8_ARRAY,
            Type::UUID,
        ],
        JSON
    ),
    statement!(VOID, &[Type::UUID, Type::UUID], JSON),
    statement!(EXPIRE, &[Type::UUID, Type::UUID], JSON),
    statement!(
        EXPIRED,
        &[Type::INT4],
        &[
            Column::named::<Uuid>("business_id"),
            Column::named::<Uuid>("hold_id"),
        ]
    ),
    statement!(GET, &[Type::UUID, Type::UUID], JSON),
    statement!(
        LIST,
        &[
            Type::UUID,
            Type::UUID,
            Type::TEXT,
            Type::TIMESTAMPTZ,
            Type::UUID,
            Type::INT8,
        ],
        &[Column::at::<Uuid>(0)]
    ),
    statement!(VIEWS, &[Type::UUID, Type::UUID_ARRAY], JSON),
];
