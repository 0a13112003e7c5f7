//! Businesses (tenants). A business is created inside a transaction whose
//! tenant is its own new id, so row level security covers creation too.

use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use tokio_postgres::types::Type;
use uuid::Uuid;

use super::sql::{Column, Statement, statement};
use super::{DbError, TenantTx, column};
use crate::domain::records::Business;
use crate::domain::{Currency, Name, PaymentTerms};

/// The columns `business` reads.
const BUSINESS: &[Column] = &[
    Column::named::<Uuid>("id"),
    Column::named::<String>("name"),
    Column::named::<String>("currency"),
    Column::named::<i32>("payment_terms_days"),
    Column::named::<DateTime<Utc>>("created_at"),
];

fn business(row: &Row) -> Result<Business, DbError> {
    Ok(Business {
        id: column(row, "id")?,
        name: column(row, "name")?,
        currency: column(row, "currency")?,
        payment_terms_days: column(row, "payment_terms_days")?,
        created_at: column(row, "created_at")?,
    })
}

const CREATE: &str =
    "INSERT INTO businesses (id, name, currency, payment_terms_days) VALUES ($1, $2, $3, $4)
                      RETURNING id, name, currency, payment_terms_days, created_at";

/// Inserts the business the transaction was opened for.
pub async fn create(
    tx: &TenantTx,
    name: &Name,
    currency: &Currency,
    terms: PaymentTerms,
) -> Result<Business, DbError> {
    let (id, name, currency, days) = (
        tx.business_id(),
        name.as_str(),
        currency.as_str(),
        terms.days(),
    );
    let row = tx
        .query_one(
            CREATE,
            &[
                (&id, Type::UUID),
                (&name, Type::TEXT),
                (&currency, Type::TEXT),
                (&days, Type::INT4),
            ],
        )
        .await?;
    business(&row)
}

const GET: &str =
    "SELECT id, name, currency, payment_terms_days, created_at FROM businesses WHERE id = $1";

/// The business the transaction acts for.
pub async fn get(tx: &TenantTx) -> Result<Business, DbError> {
    let id = tx.business_id();
    let row = tx.query_one(GET, &[(&id, Type::UUID)]).await?;
    business(&row)
}

const UPDATE: &str = "UPDATE businesses
                         SET name = coalesce($2, name), payment_terms_days = coalesce($3, payment_terms_days)
                       WHERE id = $1
                      RETURNING id, name, currency, payment_terms_days, created_at";

/// Renames the business or changes the terms new customers get. Existing
/// customers keep theirs: their purchases' due dates follow their own
/// terms, recorded with every change.
pub async fn update(
    tx: &TenantTx,
    name: Option<&Name>,
    terms: Option<PaymentTerms>,
) -> Result<Business, DbError> {
    let id = tx.business_id();
    let name = name.map(Name::as_str);
    let days = terms.map(PaymentTerms::days);
    let row = tx
        .query_one(
            UPDATE,
            &[(&id, Type::UUID), (&name, Type::TEXT), (&days, Type::INT4)],
        )
        .await?;
    business(&row)
}

pub(super) const STATEMENTS: &[Statement] = &[
    statement!(
        CREATE,
        &[Type::UUID, Type::TEXT, Type::TEXT, Type::INT4],
        BUSINESS
    ),
    statement!(GET, &[Type::UUID], BUSINESS),
    statement!(UPDATE, &[Type::UUID, Type::TEXT, Type::INT4], BUSINESS),
];
