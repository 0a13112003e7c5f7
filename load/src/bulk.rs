//! Direct SQL for what HTTP would take hours to do: loading a long ledger
//! history for the `history` scenario, and checking such a chain afterwards.
//!
//! The rows go through every guard of the schema (triggers stay on): each
//! ledger entry continues its customer's chain, each purchase entry has a
//! real order whose lines sum to its total, and the product's stock is
//! lowered by what the history sold.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio_postgres::{Client, NoTls};

/// What a loaded history left behind.
#[derive(Debug, Clone, Copy)]
pub struct Loaded {
    pub entries: u64,
    pub balance: i64,
    pub sold: i64,
    pub took: Duration,
}

pub async fn connect(database_url: &str) -> anyhow::Result<Client> {
    let config: tokio_postgres::Config = database_url.parse().context("parsing --database-url")?;
    for host in config.get_hosts() {
        if let tokio_postgres::config::Host::Tcp(name) = host {
            let loopback = tokio::net::lookup_host((name.as_str(), 5432))
                .await
                .with_context(|| format!("resolving database host `{name}`"))?
                .all(|a| a.ip().is_loopback());
            if !loopback {
                bail!("database host `{name}` is not a loopback address");
            }
        }
    }
    let (client, connection) = config
        .connect(NoTls)
        .await
        .context("connecting to --database-url")?;
    tokio::spawn(async move {
        // Ends when the client is dropped; an error surfaces on the next query.
        let _ = connection.await;
    });
    Ok(client)
}

/// Appends `entries` ledger entries to an empty customer, alternating a
/// one-unit purchase of `product` at `price` (odd seq) and a payment of the
/// same amount (even seq), so the balance stays realistic: `price` after an
/// odd count, 0 after an even one. One INSERT…SELECT per table, one
/// transaction, the tenant set as the server sets it.
pub async fn load_history(
    database_url: &str,
    business: &str,
    customer: &str,
    product: &str,
    price: i64,
    entries: u64,
) -> anyhow::Result<Loaded> {
    let started = Instant::now();
    let mut client = connect(database_url).await?;
    let entries_i64 = i64::try_from(entries).context("--history-entries too large")?;
    let purchases = (entries_i64 + 1) / 2;
    let tx = client.transaction().await?;
    tx.execute(
        "SELECT set_config('ontab.business_id', $1, true)",
        &[&business],
    )
    .await?;
    tx.execute(
        // due_at is fixed by the customer's terms, as a purchase fixes it;
        // the ledger's chain trigger derives the same date for its entry.
        "INSERT INTO orders (business_id, id, customer_id, total, created_at, due_at)
         SELECT $1::text::uuid, md5($2::text || ':order:' || k)::uuid, $2::text::uuid, $3::bigint, at,
                at + make_interval(days => c.payment_terms_days)
           FROM generate_series(1, $4::bigint) AS k,
                LATERAL (SELECT now() - interval '30 days' + (2 * k - 1) * interval '1 millisecond' AS at) t,
                customers c
          WHERE c.business_id = $1::text::uuid AND c.id = $2::text::uuid",
        &[&business, &customer, &price, &purchases],
    )
    .await
    .context("loading orders")?;
    tx.execute(
        "INSERT INTO order_items (business_id, order_id, line_no, product_id, quantity, unit_price, line_total)
         SELECT $1::text::uuid, md5($2::text || ':order:' || k)::uuid, 1, $3::text::uuid, 1, $4::bigint, $4::bigint
           FROM generate_series(1, $5::bigint) AS k",
        &[&business, &customer, &product, &price, &purchases],
    )
    .await
    .context("loading order items")?;
    // In seq order: the chain trigger of each row reads the row before it,
    // which an earlier row of this same statement inserted.
    tx.execute(
        "INSERT INTO credit_ledger (business_id, id, customer_id, seq, kind, amount, balance_after, order_id, created_at)
         SELECT $1::text::uuid, md5($2::text || ':entry:' || s)::uuid, $2::text::uuid, s,
                CASE WHEN s % 2 = 1 THEN 'purchase' ELSE 'payment' END,
                CASE WHEN s % 2 = 1 THEN $3::bigint ELSE -$3::bigint END,
                CASE WHEN s % 2 = 1 THEN $3::bigint ELSE 0 END,
                CASE WHEN s % 2 = 1 THEN md5($2::text || ':order:' || (s + 1) / 2)::uuid END,
                now() - interval '30 days' + s * interval '1 millisecond'
           FROM generate_series(1, $4::bigint) AS s
          ORDER BY s",
        &[&business, &customer, &price, &entries_i64],
    )
    .await
    .context("loading ledger entries")?;
    let updated = tx
        .execute(
            "UPDATE products SET stock = stock - $3::bigint WHERE business_id = $1::text::uuid AND id = $2::text::uuid",
            &[&business, &product, &purchases],
        )
        .await
        .context("lowering stock by what the history sold")?;
    if updated != 1 {
        bail!(
            "the history's product was not found in the database (is --database-url the server's database?)"
        );
    }
    tx.commit()
        .await
        .context("committing the history (the deferred order checks run here)")?;
    // A database that grew this history over time would have statistics for
    // it; without them the first plans after the load are guesses.
    client
        .batch_execute("ANALYZE orders; ANALYZE order_items; ANALYZE credit_ledger")
        .await?;
    Ok(Loaded {
        entries,
        balance: if entries % 2 == 1 { price } else { 0 },
        sold: purchases,
        took: started.elapsed(),
    })
}

/// A ledger chain checked inside the database: (entries, breaks, last
/// balance_after), where a break is an entry whose seq or balance_after does
/// not continue the one before it, or whose purchases_to_date (migrations/0001,
/// what the overdue report settles against) is not the running sum of
/// the customer's purchases.
pub async fn chain_in_sql(
    client: &Client,
    business: &str,
    customer: &str,
) -> anyhow::Result<(i64, i64, i64)> {
    let row = client
        .query_one(
            "SELECT count(*),
                    count(*) FILTER (WHERE seq <> n OR balance_after <> previous + amount
                                        OR purchases_to_date <> purchased),
                    coalesce((SELECT balance_after FROM credit_ledger
                               WHERE business_id = $1::text::uuid AND customer_id = $2::text::uuid
                               ORDER BY seq DESC LIMIT 1), 0)
               FROM (SELECT seq, amount, balance_after, purchases_to_date,
                            row_number() OVER w AS n,
                            coalesce(sum(amount) FILTER (WHERE kind = 'purchase') OVER w, 0) AS purchased,
                            coalesce(lag(balance_after) OVER w, 0) AS previous
                       FROM credit_ledger
                      WHERE business_id = $1::text::uuid AND customer_id = $2::text::uuid
                     WINDOW w AS (ORDER BY seq)) chain",
            &[&business, &customer],
        )
        .await
        .context("checking the ledger chain in SQL")?;
    Ok((row.get(0), row.get(1), row.get(2)))
}
