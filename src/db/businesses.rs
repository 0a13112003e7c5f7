//! Businesses (tenants). A business is created inside a transaction whose
//! tenant is its own new id, so row level security covers creation too.

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::types::Type;
use uuid::Uuid;

use super::{DbError, TenantTx};
use crate::domain::{Currency, Name};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Business {
    pub id: Uuid,
    pub name: String,
    pub currency: String,
    pub created_at: DateTime<Utc>,
}

/// Inserts the business the transaction was opened for.
pub async fn create(tx: &TenantTx, name: &Name, currency: &Currency) -> Result<Business, DbError> {
    let (id, name, currency) = (tx.business_id(), name.as_str(), currency.as_str());
    let row = tx
        .query_one(
            "INSERT INTO businesses (id, name, currency) VALUES ($1, $2, $3)
             RETURNING id, name, currency, created_at",
            &[
                (&id, Type::UUID),
                (&name, Type::TEXT),
                (&currency, Type::TEXT),
            ],
        )
        .await?;
    Ok(Business {
        id: row.get("id"),
        name: row.get("name"),
        currency: row.get("currency"),
        created_at: row.get("created_at"),
    })
}
