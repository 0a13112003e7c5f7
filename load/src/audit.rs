//! After a run: reads every customer, ledger and product of the scenario
//! back through the API and checks them against the invariants and against
//! the client's own book. Any violation makes the run fail.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context;
use serde_json::{Map, Value, json};

use crate::api::{Api, int_at};
use crate::book::{Book, CustomerBook, ProductBook};
use crate::bulk;
use crate::http::Conn;
use crate::scenarios::{AuditPlan, CustomerStart, ProductStart};

/// Ledgers longer than this are checked in SQL (when a database URL is
/// given) rather than paged through HTTP, 200 entries a request.
pub const LEDGER_WALK_LIMIT: u64 = 50_000;

/// What the audit found.
#[derive(Debug, Default)]
pub struct Findings {
    pub violations: Vec<String>,
    pub warnings: Vec<String>,
    pub facts: Map<String, Value>,
}

/// Outcomes that are never right: a 4xx other than the scenario's expected
/// refusals means the tool or the server broke the contract, and a 5xx other
/// than 503 is forbidden outright. A 503 (load shed) or a lost connection
/// is allowed under benchmark load, where queueing past the pool timeout is
/// expected; `strict` (CI's small runs, where nothing should queue that
/// long) makes them violations too.
pub fn check_outcomes(
    outcomes: &BTreeMap<String, u64>,
    plan: &AuditPlan,
    strict: bool,
    findings: &mut Findings,
) {
    for (label, count) in outcomes {
        // Transport errors have no status: their label starts with a word.
        let status: u16 = label
            .split(' ')
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let code = label.split_once(' ').map(|(_, c)| c).unwrap_or("");
        let allowed = match status {
            0 => {
                findings.warnings.push(format!(
                    "{count} × {label}: those requests may or may not have been applied"
                ));
                !strict
            }
            200..=299 => true,
            409 => plan.allowed_refusals.contains(&code),
            503 => {
                findings
                    .warnings
                    .push(format!("{count} × 503 unavailable (the server shed load)"));
                !strict
            }
            _ => false,
        };
        if !allowed {
            findings
                .violations
                .push(format!("{count} × unexpected outcome `{label}`"));
        }
    }
}

/// Reads the final state back and compares it with the book.
pub async fn audit(
    api: &Api,
    plan: &AuditPlan,
    book: &Book,
    database_url: Option<&str>,
) -> anyhow::Result<Findings> {
    let mut findings = Findings::default();
    let db = match database_url {
        Some(url) => Some(Arc::new(bulk::connect(url).await?)),
        None => None,
    };
    let mut work = Vec::new();
    for tenant in &plan.tenants {
        for product in &tenant.products {
            let booked = book.products.get(&product.id).cloned().unwrap_or_default();
            work.push(Item::Product(
                tenant.tenant.key.clone(),
                product.clone(),
                booked,
            ));
        }
        for customer in &tenant.customers {
            let booked = book
                .customers
                .get(&customer.id)
                .cloned()
                .unwrap_or_default();
            work.push(Item::Customer(
                tenant.tenant.key.clone(),
                tenant.tenant.id.clone(),
                customer.clone(),
                booked,
            ));
        }
    }
    let work = Arc::new(work);
    let lanes = api.parallelism.clamp(1, work.len().max(1));
    let mut tasks = Vec::new();
    for lane in 0..lanes {
        let (api, work, db) = (api.clone(), work.clone(), db.clone());
        let (grow, falls) = (plan.balances_only_grow, plan.stock_only_falls);
        tasks.push(tokio::spawn(async move {
            let mut conn = api.conn();
            let mut found = Vec::new();
            for index in (lane..work.len()).step_by(lanes) {
                let checked = match &work[index] {
                    Item::Product(token, start, booked) => {
                        check_product(&api, &mut conn, token, start, booked, falls).await
                    }
                    Item::Customer(token, business, start, booked) => {
                        check_customer(
                            &api,
                            &mut conn,
                            token,
                            business,
                            start,
                            booked,
                            grow,
                            db.as_deref(),
                        )
                        .await
                    }
                };
                found.push(checked?);
            }
            anyhow::Ok(found)
        }));
    }
    for task in tasks {
        for checked in task.await.context("an audit task panicked")?? {
            findings.violations.extend(checked.violations);
            findings.warnings.extend(checked.warnings);
            findings.facts.extend(checked.facts);
        }
    }
    if plan.tenants.iter().map(|t| t.products.len()).sum::<usize>() != 1 {
        findings.facts.retain(|key, _| !key.starts_with("stock_"));
    }
    if plan
        .tenants
        .iter()
        .map(|t| t.customers.len())
        .sum::<usize>()
        != 1
    {
        findings
            .facts
            .retain(|key, _| !key.starts_with("customer_"));
    }
    Ok(findings)
}

enum Item {
    Product(Arc<str>, ProductStart, ProductBook),
    Customer(Arc<str>, Arc<str>, CustomerStart, CustomerBook),
}

async fn check_product(
    api: &Api,
    conn: &mut Conn,
    token: &str,
    start: &ProductStart,
    booked: &ProductBook,
    stock_only_falls: bool,
) -> anyhow::Result<Findings> {
    let mut found = Findings::default();
    let product = api
        .get_json(conn, token, &format!("/v1/products/{}", start.id))
        .await?;
    let stock = int_at(&product, "stock")?;
    let id = &start.id;
    if stock < 0 {
        found
            .violations
            .push(format!("product {id}: stock {stock} is negative"));
    }
    let expected = start.stock - booked.sold + booked.returned;
    let (low, high) = (
        expected - booked.maybe_sold,
        expected + booked.maybe_returned,
    );
    if stock < low || stock > high {
        found.violations.push(format!(
            "product {id}: stock {stock}, but {} initial - {} sold + {} returned by 201s = {expected} (allowing {}..={} for unanswered requests)",
            start.stock, booked.sold, booked.returned, low, high
        ));
    }
    // What pending holds reserve: the start's plus the client's holds less
    // its captures, with ranges for unanswered ones. An ontab without holds
    // shows no `reserved`: then there is nothing to reserve.
    let reserved = product.get("reserved").and_then(Value::as_i64).unwrap_or(0);
    let expected_reserved = start.reserved + booked.reserved;
    let (low, high) = (
        expected_reserved - booked.maybe_unreserved,
        expected_reserved + booked.maybe_reserved,
    );
    if reserved < low || reserved > high {
        found.violations.push(format!(
            "product {id}: reserved {reserved}, but {} before + {} held - captured by 201s = {expected_reserved} (allowing {low}..={high})",
            start.reserved, booked.reserved
        ));
    }
    if reserved > stock {
        found.violations.push(format!(
            "product {id}: reserved {reserved} above stock {stock}"
        ));
    }
    if let Some(available) = product.get("available").and_then(Value::as_i64)
        && available != stock - reserved
    {
        found.violations.push(format!(
            "product {id}: available {available} <> stock {stock} - reserved {reserved}"
        ));
    }
    // A refusal is justified by what pending holds left of the stock.
    if stock_only_falls
        && let Some(refused) = booked.smallest_refused_request
        && stock - reserved >= refused
    {
        found.violations.push(format!(
            "product {id}: {refused} was refused as insufficient_stock, yet {stock} remain ({reserved} reserved)"
        ));
    }
    // Reported when the scenario has a single product (hot-product, sellout).
    found
        .facts
        .insert("stock_initial".into(), json!(start.stock));
    found.facts.insert("stock_final".into(), json!(stock));
    found
        .facts
        .insert("stock_reserved_final".into(), json!(reserved));
    found
        .facts
        .insert("stock_sold_by_201s".into(), json!(booked.sold));
    found
        .facts
        .insert("stock_purchases_201".into(), json!(booked.purchases_ok));
    Ok(found)
}

#[expect(
    clippy::too_many_arguments,
    reason = "one call site; a struct would only rename the same eight things"
)]
async fn check_customer(
    api: &Api,
    conn: &mut Conn,
    token: &str,
    business: &str,
    start: &CustomerStart,
    booked: &CustomerBook,
    balances_only_grow: bool,
    db: Option<&tokio_postgres::Client>,
) -> anyhow::Result<Findings> {
    let mut found = Findings::default();
    let id = &start.id;
    let customer = api
        .get_json(conn, token, &format!("/v1/customers/{id}"))
        .await?;
    let (balance, limit, available) = (
        int_at(&customer, "balance")?,
        int_at(&customer, "credit_limit")?,
        int_at(&customer, "available_credit")?,
    );
    // Pending holds' credit; an ontab without holds shows no `held`.
    let held = customer.get("held").and_then(Value::as_i64).unwrap_or(0);
    let v = &mut found.violations;
    let expected_held = start.held + booked.held;
    let (low, high) = (
        expected_held - booked.maybe_released,
        expected_held + booked.maybe_held,
    );
    if held < low || held > high {
        v.push(format!(
            "customer {id}: held {held}, but {} before + {} held - captured by 201s = {expected_held} (allowing {low}..={high})",
            start.held, booked.held
        ));
    }
    if limit != start.credit_limit {
        v.push(format!(
            "customer {id}: credit_limit {limit}, created with {}",
            start.credit_limit
        ));
    }
    if balance.saturating_add(held) > limit {
        v.push(format!(
            "customer {id}: balance {balance} + held {held} above credit_limit {limit}"
        ));
    }
    if available != (limit - balance - held).max(0) {
        v.push(format!(
            "customer {id}: available_credit {available} <> max({limit} - {balance} - {held}, 0)"
        ));
    }
    let expected = start.balance + booked.charged - booked.credited;
    let (low, high) = (
        expected - booked.maybe_credited,
        expected + booked.maybe_charged,
    );
    if balance < low || balance > high {
        v.push(format!(
            "customer {id}: balance {balance}, but {} before + {} charged - {} credited by 201s = {expected} (allowing {low}..={high})",
            start.balance, booked.charged, booked.credited
        ));
    }
    // With no payments, returns, voids or expiries, balance + held only
    // grows (a capture moves held into the balance), so every refusal must
    // still be justified at the end.
    if balances_only_grow
        && let Some(refused) = booked.smallest_refused_total
        && balance.saturating_add(held).saturating_add(refused) <= limit
    {
        v.push(format!("customer {id}: an order of {refused} was refused for the limit {limit}, yet the balance is only {balance} (held {held})"));
    }
    let entries_low = start.entries + booked.entries;
    let entries_high = entries_low + booked.maybe_entries;
    let (entries, last_balance) = if entries_high <= LEDGER_WALK_LIMIT {
        walk_ledger(api, conn, token, id, &mut found.violations).await?
    } else if let Some(db) = db {
        let (entries, breaks, last) = bulk::chain_in_sql(db, business, id).await?;
        if breaks != 0 {
            found.violations.push(format!(
                "customer {id}: {breaks} ledger entries break the chain or purchases_to_date (checked in SQL)"
            ));
        }
        (u64::try_from(entries).unwrap_or(0), last)
    } else {
        found.warnings.push(format!(
            "customer {id}: ledger of ~{entries_low} entries not walked (give --database-url)"
        ));
        return Ok(found);
    };
    if last_balance != balance {
        found.violations.push(format!(
            "customer {id}: last ledger balance_after {last_balance} <> balance {balance}"
        ));
    }
    if entries < entries_low || entries > entries_high {
        found.violations.push(format!(
            "customer {id}: {entries} ledger entries, expected {entries_low}..={entries_high}"
        ));
    }
    found
        .facts
        .insert("customer_last_balance".into(), json!(balance));
    Ok(found)
}

/// Pages through a ledger oldest first, checking that every entry continues
/// the one before it; returns (entries, last balance_after).
async fn walk_ledger(
    api: &Api,
    conn: &mut Conn,
    token: &str,
    id: &str,
    violations: &mut Vec<String>,
) -> anyhow::Result<(u64, i64)> {
    let entries = api
        .list_all(conn, token, &format!("/v1/customers/{id}/ledger"))
        .await?;
    let mut previous = 0i64;
    for (n, entry) in entries.iter().enumerate() {
        let (amount, after) = (int_at(entry, "amount")?, int_at(entry, "balance_after")?);
        if after != previous + amount {
            violations.push(format!(
                "customer {id}: ledger entry {} has balance_after {after} <> {previous} + {amount}",
                n + 1
            ));
        }
        let kind = entry.get("kind").and_then(Value::as_str).unwrap_or("");
        let sign_ok = match kind {
            "purchase" => amount >= 0 && !entry["order_id"].is_null(),
            "payment" => amount < 0,
            "return" => amount <= 0 && !entry["order_id"].is_null(),
            _ => false,
        };
        if !sign_ok {
            violations.push(format!(
                "customer {id}: ledger entry {} is `{kind}` with amount {amount}",
                n + 1
            ));
        }
        previous = after;
    }
    Ok((entries.len() as u64, previous))
}
