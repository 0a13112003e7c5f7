//! Businesses (tenants). A business is created inside a transaction whose
//! tenant is its own new id, so row level security covers creation too.

use tokio_postgres::types::Type;

use super::{DbError, TenantTx, column};
use crate::domain::records::Business;
use crate::domain::{Currency, Name};

const CREATE: &str = "INSERT INTO businesses (id, name, currency) VALUES ($1, $2, $3)
                      RETURNING id, name, currency, created_at";

/// Inserts the business the transaction was opened for.
pub async fn create(tx: &TenantTx, name: &Name, currency: &Currency) -> Result<Business, DbError> {
    let (id, name, currency) = (tx.business_id(), name.as_str(), currency.as_str());
    let row = tx
        .query_one(
            CREATE,
            &[
                (&id, Type::UUID),
                (&name, Type::TEXT),
                (&currency, Type::TEXT),
            ],
        )
        .await?;
    Ok(Business {
        id: column(&row, "id")?,
        name: column(&row, "name")?,
        currency: column(&row, "currency")?,
        created_at: column(&row, "created_at")?,
    })
}
