//! Stored outcomes of requests sent with an Idempotency-Key, written in the
//! same transaction as the effect they guard: either both commit or neither.

use std::collections::HashMap;

use tokio_postgres::Row;
use tokio_postgres::types::Type;

use super::sql::{Column, Statement, statement};
use super::{DbError, TenantTx, column};

/// A definitive outcome as it was first answered: what the edge stored
/// (a status and the body it sent) and what identifies the request.
#[derive(Debug, Clone)]
pub struct StoredOutcome {
    pub fingerprint: Vec<u8>,
    pub status: u16,
    pub body: serde_json::Value,
}

fn outcome(row: &Row) -> Result<StoredOutcome, DbError> {
    let status: i32 = column(row, "status")?;
    Ok(StoredOutcome {
        fingerprint: column(row, "fingerprint")?,
        status: u16::try_from(status)
            .map_err(|_| DbError::Decode(format!("stored status {status}")))?,
        body: column(row, "body")?,
    })
}

const FIND_MANY: &str = "SELECT key, fingerprint, status, body FROM idempotency_keys
                          WHERE business_id = $1 AND key = ANY ($2)";
const FIND_MANY_TYPES: [Type; 2] = [Type::UUID, Type::TEXT_ARRAY];
const STORE_MANY: &str =
    "INSERT INTO idempotency_keys (business_id, key, fingerprint, status, body)
     SELECT $1, o.key, o.fingerprint, o.status, o.body
       FROM unnest($2::text[], $3::bytea[], $4::int4[], $5::json[])
            AS o (key, fingerprint, status, body)
     ON CONFLICT (business_id, key) DO NOTHING
     RETURNING 1";
const STORE_MANY_TYPES: [Type; 5] = [
    Type::UUID,
    Type::TEXT_ARRAY,
    Type::BYTEA_ARRAY,
    Type::INT4_ARRAY,
    Type::JSON_ARRAY,
];

/// Readies the statements a batch pipelines (see `TenantTx::prepare`).
pub async fn prepare(tx: &TenantTx) -> Result<(), DbError> {
    tx.prepare(FIND_MANY, &FIND_MANY_TYPES).await?;
    tx.prepare(STORE_MANY, &STORE_MANY_TYPES).await
}

/// The stored outcome of one key.
pub async fn find(tx: &TenantTx, key: &str) -> Result<Option<StoredOutcome>, DbError> {
    Ok(find_many(tx, &[key]).await?.remove(key))
}

/// The stored outcomes of several keys at once (a batch of purchases).
pub async fn find_many(
    tx: &TenantTx,
    keys: &[&str],
) -> Result<HashMap<String, StoredOutcome>, DbError> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let business = tx.business_id();
    let rows = tx
        .query(
            FIND_MANY,
            &[
                (&business, FIND_MANY_TYPES[0].clone()),
                (&keys, FIND_MANY_TYPES[1].clone()),
            ],
        )
        .await?;
    rows.iter()
        .map(|row| Ok((column(row, "key")?, outcome(row)?)))
        .collect()
}

/// Records several outcomes (distinct keys) in one statement. If a
/// concurrent request with one of the keys committed first, the insert waits
/// for it and then finds the key taken: that is `DbError::IdempotencyRace`,
/// which rolls this transaction back (its effect with it) so it can run
/// again and replay the winner's outcome.
pub async fn store_many(tx: &TenantTx, outcomes: &[(&str, &StoredOutcome)]) -> Result<(), DbError> {
    if outcomes.is_empty() {
        return Ok(());
    }
    let business = tx.business_id();
    let keys: Vec<&str> = outcomes.iter().map(|(key, _)| *key).collect();
    let fingerprints: Vec<&[u8]> = outcomes
        .iter()
        .map(|(_, outcome)| outcome.fingerprint.as_slice())
        .collect();
    let statuses: Vec<i32> = outcomes
        .iter()
        .map(|(_, outcome)| i32::from(outcome.status))
        .collect();
    let bodies: Vec<&serde_json::Value> =
        outcomes.iter().map(|(_, outcome)| &outcome.body).collect();
    let inserted = tx
        .query(
            STORE_MANY,
            &[
                (&business, STORE_MANY_TYPES[0].clone()),
                (&keys, STORE_MANY_TYPES[1].clone()),
                (&fingerprints, STORE_MANY_TYPES[2].clone()),
                (&statuses, STORE_MANY_TYPES[3].clone()),
                (&bodies, STORE_MANY_TYPES[4].clone()),
            ],
        )
        .await?;
    if inserted.len() == outcomes.len() {
        Ok(())
    } else {
        Err(DbError::IdempotencyRace)
    }
}

pub(super) const STATEMENTS: &[Statement] = &[
    statement!(
        FIND_MANY,
        &FIND_MANY_TYPES,
        &[
            Column::named::<String>("key"),
            Column::named::<Vec<u8>>("fingerprint"),
            Column::named::<i32>("status"),
            Column::named::<serde_json::Value>("body"),
        ],
    ),
    statement!(STORE_MANY, &STORE_MANY_TYPES, &[]),
];
