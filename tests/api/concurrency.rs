//! Many concurrent requests against one app: stock never oversold, credit
//! never above the limit, no deadlock surfacing as an error, and afterwards
//! stock and money reconcile exactly, from the responses and from the tables.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Business, Reply, TestApp};

/// Concurrent workers per run: above the app's pool of 16, so requests also
/// queue for connections.
const WORKERS: usize = 24;

/// A deterministic pseudo-random sequence (splitmix64): reproducible runs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `low..=high`.
    fn range(&mut self, low: i64, high: i64) -> i64 {
        let span = u64::try_from(high - low + 1).expect("a non-empty range");
        low + i64::try_from(self.next() % span).expect("small span")
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        let index = usize::try_from(self.next() % items.len() as u64).expect("small index");
        &items[index]
    }
}

#[derive(Debug, Clone)]
enum Job {
    Purchase {
        customer: Uuid,
        lines: Vec<(Uuid, i64)>,
    },
    Pay {
        customer: Uuid,
        amount: i64,
    },
    Return {
        order: Uuid,
        lines: Vec<(Uuid, i64)>,
    },
    Adjust {
        product: Uuid,
        delta: i64,
    },
    Limit {
        customer: Uuid,
        credit_limit: i64,
    },
}

fn lines_json(lines: &[(Uuid, i64)]) -> Vec<Value> {
    lines
        .iter()
        .map(|(product, quantity)| json!({ "product_id": product, "quantity": quantity }))
        .collect()
}

async fn send(app: &TestApp, shop: &Business, job: &Job) -> Reply {
    match job {
        Job::Purchase { customer, lines } => app.purchase(shop, *customer, lines).await,
        Job::Pay { customer, amount } => {
            app.post(
                "/v1/payments",
                &shop.key,
                json!({ "customer_id": customer, "amount": amount }),
            )
            .await
        }
        Job::Return { order, lines } => {
            app.post(
                &format!("/v1/orders/{order}/returns"),
                &shop.key,
                json!({ "items": lines_json(lines) }),
            )
            .await
        }
        Job::Adjust { product, delta } => {
            app.post(
                &format!("/v1/products/{product}/stock-adjustments"),
                &shop.key,
                json!({ "delta": delta, "reason": "concurrency test" }),
            )
            .await
        }
        Job::Limit {
            customer,
            credit_limit,
        } => {
            app.patch(
                &format!("/v1/customers/{customer}"),
                &shop.key,
                json!({ "credit_limit": credit_limit }),
            )
            .await
        }
    }
}

/// Runs every job, `workers` at a time on spawned tasks, and returns the
/// replies in job order. A 5xx panics in the harness (the join fails here);
/// a 503 is refused here too: nothing in these runs may be "unavailable".
async fn run(
    app: &Arc<TestApp>,
    shop: &Business,
    jobs: Vec<Job>,
    workers: usize,
) -> Vec<(Job, Reply)> {
    let total = jobs.len();
    let mut shares: Vec<Vec<(usize, Job)>> = vec![Vec::new(); workers];
    for (index, job) in jobs.into_iter().enumerate() {
        shares[index % workers].push((index, job));
    }
    let handles: Vec<_> = shares
        .into_iter()
        .map(|share| {
            let app = Arc::clone(app);
            let shop = shop.clone();
            tokio::spawn(async move {
                let mut replies = Vec::with_capacity(share.len());
                for (index, job) in share {
                    let reply = send(&app, &shop, &job).await;
                    replies.push((index, job, reply));
                }
                replies
            })
        })
        .collect();
    let mut results: Vec<(usize, Job, Reply)> = Vec::with_capacity(total);
    for joined in futures::future::join_all(handles).await {
        results.extend(joined.expect("a worker panicked: a 5xx answer or a broken request"));
    }
    results.sort_by_key(|(index, _, _)| *index);
    let results: Vec<(Job, Reply)> = results
        .into_iter()
        .map(|(_, job, reply)| (job, reply))
        .collect();
    for (job, reply) in &results {
        assert!(
            reply.status < 500,
            "server error under concurrency for {job:?}: {reply:?}"
        );
    }
    results
}

/// What the successful and refused replies add up to.
#[derive(Default, Debug)]
struct Tally {
    /// Units per product.
    sold: HashMap<Uuid, i64>,
    returned: HashMap<Uuid, i64>,
    adjusted: HashMap<Uuid, i64>,
    /// Money per customer.
    purchased: HashMap<Uuid, i64>,
    paid: HashMap<Uuid, i64>,
    refunded: HashMap<Uuid, i64>,
    /// Successful orders per customer, and every created order's buyer.
    orders: HashMap<Uuid, i64>,
    buyers: HashMap<Uuid, Uuid>,
    /// Units bought per (order, product), for returns.
    bought: HashMap<(Uuid, Uuid), i64>,
    /// Refusals by code.
    refused: HashMap<String, usize>,
    created: usize,
}

fn int(value: &Value, what: &str) -> i64 {
    value
        .as_i64()
        .unwrap_or_else(|| panic!("{what} is not an integer: {value}"))
}

fn uuid(value: &Value, what: &str) -> Uuid {
    value
        .as_str()
        .and_then(|id| Uuid::parse_str(id).ok())
        .unwrap_or_else(|| panic!("{what} is not a uuid: {value}"))
}

/// Lines merged per product, as the server merges them.
fn merged(lines: &[(Uuid, i64)]) -> HashMap<Uuid, i64> {
    let mut merged = HashMap::new();
    for (product, quantity) in lines {
        *merged.entry(*product).or_insert(0) += quantity;
    }
    merged
}

impl Tally {
    /// Checks one reply against its request and adds it up. `prices` are
    /// the (unchanging) product prices.
    fn add(&mut self, job: &Job, reply: &Reply, prices: &HashMap<Uuid, i64>) {
        if let Job::Limit { credit_limit, .. } = job {
            assert_eq!(reply.status, 200, "{job:?}: {reply:?}");
            assert_eq!(
                int(&reply.body["credit_limit"], "credit_limit"),
                *credit_limit
            );
            return;
        }
        if reply.status == 201 {
            self.created += 1;
            self.add_created(job, reply, prices);
            return;
        }
        assert_eq!(reply.status, 409, "unexpected answer to {job:?}: {reply:?}");
        let code = reply.code().to_owned();
        let body = &reply.body;
        match (job, code.as_str()) {
            (Job::Purchase { lines, .. }, "insufficient_stock") => {
                let product = uuid(&body["product_id"], "product_id");
                let requested = int(&body["requested"], "requested");
                let available = int(&body["available"], "available");
                assert_eq!(
                    merged(lines).get(&product),
                    Some(&requested),
                    "{job:?}: {reply:?}"
                );
                assert!((0..requested).contains(&available), "{job:?}: {reply:?}");
            }
            (Job::Purchase { lines, .. }, "credit_limit_exceeded") => {
                let limit = int(&body["credit_limit"], "credit_limit");
                let balance = int(&body["balance"], "balance");
                let total = int(&body["order_total"], "order_total");
                let expected: i64 = lines.iter().map(|(p, q)| prices[p] * q).sum();
                assert_eq!(total, expected, "{job:?}: {reply:?}");
                assert!(balance + total > limit, "{job:?}: {reply:?}");
            }
            (Job::Pay { amount, .. }, "payment_exceeds_balance") => {
                assert_eq!(int(&body["amount"], "amount"), *amount, "{reply:?}");
                let balance = int(&body["balance"], "balance");
                assert!(balance < *amount, "{job:?}: {reply:?}");
            }
            (Job::Return { lines, .. }, "return_exceeds_purchase") => {
                let product = uuid(&body["product_id"], "product_id");
                let returnable = int(&body["returnable"], "returnable");
                let asked = merged(lines)
                    .get(&product)
                    .copied()
                    .unwrap_or_else(|| panic!("{job:?}: refused for another product {reply:?}"));
                assert!((0..asked).contains(&returnable), "{job:?}: {reply:?}");
            }
            (Job::Adjust { delta, .. }, "insufficient_stock") => {
                let available = int(&body["available"], "available");
                assert!(*delta < 0 && available + delta < 0, "{job:?}: {reply:?}");
            }
            _ => panic!("unexpected refusal of {job:?}: {reply:?}"),
        }
        *self.refused.entry(code).or_insert(0) += 1;
    }

    fn add_created(&mut self, job: &Job, reply: &Reply, prices: &HashMap<Uuid, i64>) {
        let body = &reply.body;
        match job {
            Job::Purchase { customer, lines } => {
                assert_eq!(uuid(&body["customer_id"], "customer_id"), *customer);
                let order = reply.id();
                let wanted = merged(lines);
                let items = body["items"].as_array().expect("order items");
                assert_eq!(items.len(), wanted.len(), "one line per product: {reply:?}");
                let mut total = 0;
                for item in items {
                    let product = uuid(&item["product_id"], "product_id");
                    let quantity = int(&item["quantity"], "quantity");
                    let unit_price = int(&item["unit_price"], "unit_price");
                    assert_eq!(wanted.get(&product), Some(&quantity), "{reply:?}");
                    assert_eq!(unit_price, prices[&product], "{reply:?}");
                    assert_eq!(
                        int(&item["line_total"], "line_total"),
                        quantity * unit_price
                    );
                    total += quantity * unit_price;
                    *self.sold.entry(product).or_insert(0) += quantity;
                    self.bought.insert((order, product), quantity);
                }
                assert_eq!(int(&body["total"], "total"), total, "{reply:?}");
                *self.purchased.entry(*customer).or_insert(0) += total;
                *self.orders.entry(*customer).or_insert(0) += 1;
                self.buyers.insert(order, *customer);
            }
            Job::Pay { customer, amount } => {
                assert_eq!(int(&body["amount"], "amount"), -amount, "{reply:?}");
                assert_eq!(body["kind"], "payment", "{reply:?}");
                assert!(int(&body["balance_after"], "balance_after") >= 0);
                *self.paid.entry(*customer).or_insert(0) += amount;
            }
            Job::Return { order, lines } => {
                assert_eq!(uuid(&body["order_id"], "order_id"), *order);
                let expected: i64 = lines.iter().map(|(p, q)| prices[p] * q).sum();
                assert_eq!(int(&body["amount"], "amount"), expected, "{reply:?}");
                let buyer = *self
                    .buyers
                    .get(order)
                    .unwrap_or_else(|| panic!("a return of an unknown order {order}"));
                *self.refunded.entry(buyer).or_insert(0) += expected;
                for (product, quantity) in lines {
                    *self.returned.entry(*product).or_insert(0) += quantity;
                }
            }
            Job::Adjust { product, delta } => {
                assert_eq!(int(&body["adjustment"]["delta"], "delta"), *delta);
                let after = int(&body["adjustment"]["stock_after"], "stock_after");
                assert!(after >= 0, "{reply:?}");
                assert_eq!(int(&body["product"]["stock"], "stock"), after);
                *self.adjusted.entry(*product).or_insert(0) += delta;
            }
            Job::Limit { .. } => unreachable!("limit changes answer 200"),
        }
    }

    fn refusals(&self, code: &str) -> usize {
        self.refused.get(code).copied().unwrap_or(0)
    }

    fn get(map: &HashMap<Uuid, i64>, id: &Uuid) -> i64 {
        map.get(id).copied().unwrap_or(0)
    }
}

fn tally(results: &[(Job, Reply)], prices: &HashMap<Uuid, i64>, tally: &mut Tally) {
    for (job, reply) in results {
        tally.add(job, reply, prices);
    }
}

/// Stock is conserved: for every product, through the API and in the
/// tables, stock = initial - sold + returned + adjusted, and the tables
/// agree with the sum of the successful replies.
async fn verify_stock(app: &TestApp, shop: &Business, products: &[(Uuid, i64)], tally: &Tally) {
    let sql = app.sql().await;
    for (product, initial) in products {
        let expected = initial - Tally::get(&tally.sold, product)
            + Tally::get(&tally.returned, product)
            + Tally::get(&tally.adjusted, product);
        assert!(expected >= 0, "the replies oversold {product}: {tally:?}");
        let reply = app.get(&format!("/v1/products/{product}"), &shop.key).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_eq!(
            int(&reply.body["stock"], "stock"),
            expected,
            "stock of {product} through the API"
        );

        let row = sql
            .query_one(
                "SELECT p.stock, p.initial_stock,
                        (SELECT coalesce(sum(quantity), 0)::bigint FROM order_items i
                          WHERE i.business_id = p.business_id AND i.product_id = p.id),
                        (SELECT coalesce(sum(quantity), 0)::bigint FROM return_items r
                          WHERE r.business_id = p.business_id AND r.product_id = p.id),
                        (SELECT coalesce(sum(delta), 0)::bigint FROM stock_adjustments a
                          WHERE a.business_id = p.business_id AND a.product_id = p.id),
                        (SELECT coalesce(min(stock_after), 0)::bigint FROM stock_adjustments a
                          WHERE a.business_id = p.business_id AND a.product_id = p.id)
                   FROM products p WHERE p.business_id = $1 AND p.id = $2",
                &[&shop.id, product],
            )
            .await
            .expect("product row");
        let (stock, initial_stock, sold, returned, adjusted, lowest): (
            i64,
            i64,
            i64,
            i64,
            i64,
            i64,
        ) = (
            row.get(0),
            row.get(1),
            row.get(2),
            row.get(3),
            row.get(4),
            row.get(5),
        );
        assert_eq!(initial_stock, *initial, "initial stock of {product}");
        assert_eq!(stock, expected, "stock of {product} in the table");
        assert_eq!(
            stock,
            initial_stock - sold + returned + adjusted,
            "stock of {product} reconciles with its history"
        );
        assert_eq!(
            sold,
            Tally::get(&tally.sold, product),
            "units sold of {product}"
        );
        assert_eq!(
            returned,
            Tally::get(&tally.returned, product),
            "units returned of {product}"
        );
        assert_eq!(
            adjusted,
            Tally::get(&tally.adjusted, product),
            "adjustments of {product}"
        );
        assert!(lowest >= 0, "an adjustment left {product} negative");
    }
}

/// A path-safe rendering of a cursor.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
                char::from(byte).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

/// The whole ledger of a customer through the API, page by page.
async fn api_ledger(app: &TestApp, shop: &Business, customer: Uuid) -> Vec<Value> {
    let mut entries = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/v1/customers/{customer}/ledger?limit=200");
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={}", encode(cursor)));
        }
        let page = app.get(&path, &shop.key).await;
        assert_eq!(page.status, 200, "{page:?}");
        entries.extend(page.body["data"].as_array().expect("data").iter().cloned());
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return entries,
        }
    }
}

/// Every customer's ledger: an intact chain never above `limit` (the highest
/// limit the customer had), equal to the sum of the successful replies, and
/// the API balance is its last entry.
async fn verify_ledgers(app: &TestApp, shop: &Business, customers: &[(Uuid, i64)], tally: &Tally) {
    let sql = app.sql().await;
    for (customer, limit) in customers {
        let rows = sql
            .query(
                "SELECT seq, kind, amount, balance_after, order_id, return_id
                   FROM credit_ledger WHERE business_id = $1 AND customer_id = $2 ORDER BY seq",
                &[&shop.id, customer],
            )
            .await
            .expect("ledger rows");
        let mut balance = 0_i64;
        let (mut purchased, mut paid, mut refunded, mut orders) = (0_i64, 0_i64, 0_i64, 0_i64);
        for (index, row) in rows.iter().enumerate() {
            let seq: i64 = row.get(0);
            let kind: String = row.get(1);
            let amount: i64 = row.get(2);
            let balance_after: i64 = row.get(3);
            assert_eq!(
                seq,
                i64::try_from(index).expect("small") + 1,
                "{customer}: seq gap"
            );
            assert_eq!(
                balance_after,
                balance + amount,
                "{customer}: chain broken at seq {seq}"
            );
            // Never above the limit (only purchases raise the balance, and
            // the limit never changes here). A payment never takes it below
            // zero; a return after payments may (the customer is owed).
            assert!(
                balance_after <= *limit,
                "{customer}: balance {balance_after} above {limit} at seq {seq}"
            );
            assert!(
                kind != "payment" || balance_after >= 0,
                "{customer}: a payment took the balance to {balance_after} at seq {seq}"
            );
            balance = balance_after;
            match kind.as_str() {
                "purchase" => {
                    purchased += amount;
                    orders += 1;
                }
                "payment" => paid -= amount,
                "return" => refunded -= amount,
                other => panic!("unknown kind {other}"),
            }
        }
        assert_eq!(
            purchased,
            Tally::get(&tally.purchased, customer),
            "{customer}: purchases"
        );
        assert_eq!(
            paid,
            Tally::get(&tally.paid, customer),
            "{customer}: payments"
        );
        assert_eq!(
            refunded,
            Tally::get(&tally.refunded, customer),
            "{customer}: returns"
        );
        assert_eq!(
            orders,
            Tally::get(&tally.orders, customer),
            "{customer}: orders"
        );
        assert_eq!(balance, purchased - paid - refunded);

        // The API tells the same story.
        let entries = api_ledger(app, shop, *customer).await;
        assert_eq!(
            entries.len(),
            rows.len(),
            "{customer}: ledger length via API"
        );
        let mut running = 0;
        for entry in &entries {
            running += int(&entry["amount"], "amount");
            assert_eq!(int(&entry["balance_after"], "balance_after"), running);
        }
        let reread = app
            .get(&format!("/v1/customers/{customer}"), &shop.key)
            .await;
        assert_eq!(reread.status, 200, "{reread:?}");
        assert_eq!(
            int(&reread.body["balance"], "balance"),
            balance,
            "{reread:?}"
        );
        let credit_limit = int(&reread.body["credit_limit"], "credit_limit");
        assert!(credit_limit <= *limit, "{reread:?}");
        assert_eq!(
            int(&reread.body["available_credit"], "available_credit"),
            (credit_limit - balance).max(0),
            "{reread:?}"
        );
    }

    // Across the business: orders, their lines, and the ledger agree.
    let row = sql
        .query_one(
            "SELECT (SELECT count(*) FROM orders WHERE business_id = $1),
                    (SELECT coalesce(sum(total), 0)::bigint FROM orders WHERE business_id = $1),
                    (SELECT coalesce(sum(line_total), 0)::bigint FROM order_items WHERE business_id = $1),
                    (SELECT coalesce(sum(amount), 0)::bigint FROM credit_ledger
                      WHERE business_id = $1 AND kind = 'purchase'),
                    (SELECT coalesce(sum(amount), 0)::bigint FROM returns WHERE business_id = $1),
                    (SELECT coalesce(-sum(amount), 0)::bigint FROM credit_ledger
                      WHERE business_id = $1 AND kind = 'return')",
            &[&shop.id],
        )
        .await
        .expect("totals");
    let (orders, totals, lines, ledger, returns, credited): (i64, i64, i64, i64, i64, i64) = (
        row.get(0),
        row.get(1),
        row.get(2),
        row.get(3),
        row.get(4),
        row.get(5),
    );
    let replied: i64 = tally.purchased.values().sum();
    let replied_returns: i64 = tally.refunded.values().sum();
    assert_eq!(orders, tally.orders.values().sum::<i64>(), "orders created");
    assert_eq!(totals, replied, "sum of order totals vs replies");
    assert_eq!(lines, replied, "sum of order lines vs replies");
    assert_eq!(ledger, replied, "sum of purchase entries vs replies");
    assert_eq!(returns, replied_returns, "sum of returns vs replies");
    assert_eq!(
        credited, replied_returns,
        "sum of return entries vs replies"
    );
}

/// Purchase lines over `products`: one to three lines, sometimes the same
/// products in opposite orders, sometimes one product twice.
fn random_lines(rng: &mut Rng, products: &[Uuid], max_quantity: i64) -> Vec<(Uuid, i64)> {
    let a = *rng.pick(products);
    let b = *rng.pick(products);
    let c = *rng.pick(products);
    let q = |rng: &mut Rng| rng.range(1, max_quantity);
    match rng.range(0, 5) {
        0 | 1 => vec![(a, q(rng))],
        // The same pair both ways round: lock order must not depend on it.
        2 => vec![(products[0], q(rng)), (products[1], q(rng))],
        3 => vec![(products[1], q(rng)), (products[0], q(rng))],
        4 => vec![(c, q(rng)), (b, q(rng)), (a, q(rng))],
        _ => vec![(a, q(rng)), (b, q(rng)), (a, q(rng))],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stock_that_runs_out_is_never_oversold() {
    let app = Arc::new(TestApp::spawn().await);
    let shop = app.business("Busy shop").await;
    let mut products = Vec::new();
    for (price, stock) in [(100, 60), (150, 45), (70, 30), (20, 25)] {
        products.push((app.product(&shop, price, stock).await, stock, price));
    }
    let ids: Vec<Uuid> = products.iter().map(|(id, _, _)| *id).collect();
    let prices: HashMap<Uuid, i64> = products.iter().map(|(id, _, p)| (*id, *p)).collect();
    let mut customers = Vec::new();
    for _ in 0..8 {
        customers.push(app.customer(&shop, 10_000_000).await);
    }

    // Mixed lines over the first three products, and a last product sold
    // one unit at a time to everyone: exactly its stock can succeed.
    let mut rng = Rng(0x5EED_0001);
    let mut jobs = Vec::new();
    for index in 0..320 {
        let customer = customers[index % customers.len()];
        let lines = if index % 4 == 3 {
            vec![(ids[3], 1)]
        } else {
            random_lines(&mut rng, &ids[..3], 3)
        };
        jobs.push(Job::Purchase { customer, lines });
    }
    let results = run(&app, &shop, jobs, 32).await;

    let mut counted = Tally::default();
    tally(&results, &prices, &mut counted);
    assert_eq!(
        counted.refused.keys().collect::<Vec<_>>(),
        vec!["insufficient_stock"],
        "the only refusal is running out of stock: {:?}",
        counted.refused
    );
    assert!(
        counted.refusals("insufficient_stock") > 0,
        "demand exceeded supply"
    );
    let single_unit_sold = results
        .iter()
        .filter(|(job, reply)| {
            reply.status == 201
                && matches!(job, Job::Purchase { lines, .. } if lines == &vec![(ids[3], 1)])
        })
        .count();
    assert_eq!(
        single_unit_sold, 25,
        "exactly the 25 units in stock were sold"
    );

    let stock: Vec<(Uuid, i64)> = products.iter().map(|(id, s, _)| (*id, *s)).collect();
    verify_stock(&app, &shop, &stock, &counted).await;
    let limits: Vec<(Uuid, i64)> = customers.iter().map(|c| (*c, 10_000_000)).collect();
    verify_ledgers(&app, &shop, &limits, &counted).await;

    // What is left can be bought exactly, and then nothing more.
    for (product, initial, _) in &products {
        let left = initial - Tally::get(&counted.sold, product);
        if left > 0 {
            let last = app.purchase(&shop, customers[0], &[(*product, left)]).await;
            assert_eq!(last.status, 201, "{last:?}");
        }
        let more = app.purchase(&shop, customers[1], &[(*product, 1)]).await;
        assert_eq!(more.status, 409, "{more:?}");
        assert_eq!(more.code(), "insufficient_stock");
        assert_eq!(more.body["available"], 0, "{more:?}");
    }
    // And the independent second opinion over everything stored.
    app.assert_audit_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hot_customer_never_goes_above_the_limit() {
    const LIMIT: i64 = 20_000;
    let app = Arc::new(TestApp::spawn().await);
    let shop = app.business("Credit shop").await;
    let mut products = Vec::new();
    for price in [100, 250, 400, 1_000] {
        products.push((app.product(&shop, price, 100_000).await, 100_000, price));
    }
    let ids: Vec<Uuid> = products.iter().map(|(id, _, _)| *id).collect();
    let prices: HashMap<Uuid, i64> = products.iter().map(|(id, _, p)| (*id, *p)).collect();
    let hot = app.customer(&shop, LIMIT).await;
    // A second customer with no payments at all: exactly limit / price
    // single-unit purchases can succeed.
    let exact = app.customer(&shop, 10_000).await;
    // A bystander sharing the products, far from its limit.
    let calm = app.customer(&shop, 10_000_000).await;

    let mut rng = Rng(0x5EED_0002);
    let mut jobs = Vec::new();
    for index in 0..320 {
        let job = match index % 10 {
            0 | 5 => Job::Pay {
                customer: hot,
                amount: rng.range(100, 2_000),
            },
            1 | 6 => Job::Purchase {
                customer: exact,
                lines: vec![(ids[3], 1)],
            },
            3 => Job::Purchase {
                customer: calm,
                lines: random_lines(&mut rng, &ids, 3),
            },
            _ => Job::Purchase {
                customer: hot,
                lines: random_lines(&mut rng, &ids, 3),
            },
        };
        jobs.push(job);
    }
    let results = run(&app, &shop, jobs, WORKERS).await;

    let mut counted = Tally::default();
    tally(&results, &prices, &mut counted);
    assert!(
        counted.refusals("credit_limit_exceeded") > 0,
        "the hot customer hit the limit: {:?}",
        counted.refused
    );
    assert_eq!(
        counted.refusals("insufficient_stock"),
        0,
        "{:?}",
        counted.refused
    );
    assert_eq!(
        Tally::get(&counted.orders, &exact),
        10,
        "10 x 1000 fit a limit of 10000"
    );
    let calm_refused = results.iter().any(|(job, reply)| {
        reply.status != 201 && matches!(job, Job::Purchase { customer, .. } if *customer == calm)
    });
    assert!(!calm_refused, "the bystander was never refused");

    let stock: Vec<(Uuid, i64)> = products.iter().map(|(id, s, _)| (*id, *s)).collect();
    verify_stock(&app, &shop, &stock, &counted).await;
    verify_ledgers(
        &app,
        &shop,
        &[(hot, LIMIT), (exact, 10_000), (calm, 10_000_000)],
        &counted,
    )
    .await;

    // The hot customer's remaining credit is exactly usable.
    let customer = app.get(&format!("/v1/customers/{hot}"), &shop.key).await;
    let available = int(&customer.body["available_credit"], "available_credit");
    assert_eq!(available, LIMIT - int(&customer.body["balance"], "balance"));
    if available >= 100 {
        let filled = app.purchase(&shop, hot, &[(ids[0], available / 100)]).await;
        assert_eq!(filled.status, 201, "{filled:?}");
    }
    let over = app.purchase(&shop, hot, &[(ids[0], 1)]).await;
    assert_eq!(over.status, 409, "{over:?}");
    assert_eq!(over.code(), "credit_limit_exceeded");
    // And the independent second opinion over everything stored.
    app.assert_audit_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn purchases_payments_returns_and_adjustments_interleave_consistently() {
    const LIMIT: i64 = 60_000;
    let app = Arc::new(TestApp::spawn().await);
    let shop = app.business("Mixed shop").await;
    let mut products = Vec::new();
    for (price, stock) in [(100, 150), (250, 120), (40, 100), (999, 80)] {
        products.push((app.product(&shop, price, stock).await, stock, price));
    }
    let ids: Vec<Uuid> = products.iter().map(|(id, _, _)| *id).collect();
    let prices: HashMap<Uuid, i64> = products.iter().map(|(id, _, p)| (*id, *p)).collect();
    let mut customers = Vec::new();
    for _ in 0..6 {
        customers.push(app.customer(&shop, LIMIT).await);
    }

    // Seed orders to return from, bought concurrently as well.
    let mut rng = Rng(0x5EED_0003);
    let seeds: Vec<Job> = (0..24)
        .map(|index| Job::Purchase {
            customer: customers[index % customers.len()],
            lines: vec![(ids[index % 4], 3), (ids[(index + 1) % 4], 2)],
        })
        .collect();
    let seeded = run(&app, &shop, seeds, WORKERS).await;
    let mut counted = Tally::default();
    tally(&seeded, &prices, &mut counted);
    assert_eq!(
        counted.created, 24,
        "every seed order was bought: {:?}",
        counted.refused
    );
    let seed_orders: Vec<(Uuid, Vec<(Uuid, i64)>)> = seeded
        .iter()
        .map(|(job, reply)| match job {
            Job::Purchase { lines, .. } => (reply.id(), lines.clone()),
            _ => unreachable!("seeds are purchases"),
        })
        .collect();

    let mut jobs = Vec::new();
    for _ in 0..320 {
        let job = match rng.range(0, 19) {
            0..=8 => Job::Purchase {
                customer: *rng.pick(&customers),
                lines: random_lines(&mut rng, &ids, 4),
            },
            9..=11 => Job::Pay {
                customer: *rng.pick(&customers),
                amount: rng.range(1, 3_000),
            },
            12..=16 => {
                // Returns race each other for the same seed orders: some
                // must be refused as exceeding what is left.
                let (order, lines) = rng.pick(&seed_orders);
                let (first, second) = (lines[0], lines[1]);
                let lines = match rng.range(0, 2) {
                    0 => vec![(first.0, rng.range(1, 2))],
                    1 => vec![(second.0, 1), (first.0, 1)],
                    _ => vec![(first.0, 1), (second.0, rng.range(1, 2))],
                };
                Job::Return {
                    order: *order,
                    lines,
                }
            }
            _ => Job::Adjust {
                product: *rng.pick(&ids),
                delta: if rng.range(0, 1) == 0 {
                    -rng.range(1, 30)
                } else {
                    rng.range(1, 10)
                },
            },
        };
        jobs.push(job);
    }
    let results = run(&app, &shop, jobs, WORKERS).await;
    tally(&results, &prices, &mut counted);
    assert!(
        counted.refusals("return_exceeds_purchase") > 0,
        "concurrent returns of the same orders collided: {:?}",
        counted.refused
    );
    for (key, returned) in returned_per_line(&results) {
        let bought = counted.bought.get(&key).copied().unwrap_or(0);
        assert!(
            returned <= bought,
            "{key:?}: returned {returned} of {bought}"
        );
    }

    let stock: Vec<(Uuid, i64)> = products.iter().map(|(id, s, _)| (*id, *s)).collect();
    verify_stock(&app, &shop, &stock, &counted).await;
    let limits: Vec<(Uuid, i64)> = customers.iter().map(|c| (*c, LIMIT)).collect();
    verify_ledgers(&app, &shop, &limits, &counted).await;

    // Each seed order still shows its original lines, plus its returns.
    for (order, lines) in &seed_orders {
        let reread = app.get(&format!("/v1/orders/{order}"), &shop.key).await;
        assert_eq!(reread.status, 200, "{reread:?}");
        let items = reread.body["items"].as_array().expect("items");
        assert_eq!(items.len(), lines.len(), "{reread:?}");
        let returns = reread.body["returns"].as_array().expect("returns");
        let accepted = results
            .iter()
            .filter(|(job, reply)| {
                reply.status == 201 && matches!(job, Job::Return { order: o, .. } if o == order)
            })
            .count();
        assert_eq!(returns.len(), accepted, "returns of {order}: {reread:?}");
    }
    // And the independent second opinion over everything stored.
    app.assert_audit_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn limits_changed_mid_run_bind_every_later_purchase() {
    const HIGHEST: i64 = 20_000;
    let app = Arc::new(TestApp::spawn().await);
    let shop = app.business("Limit shop").await;
    let mut products = Vec::new();
    for price in [100, 250, 400] {
        products.push((app.product(&shop, price, 100_000).await, 100_000, price));
    }
    let ids: Vec<Uuid> = products.iter().map(|(id, _, _)| *id).collect();
    let prices: HashMap<Uuid, i64> = products.iter().map(|(id, _, p)| (*id, *p)).collect();
    let customers = [
        app.customer(&shop, HIGHEST).await,
        app.customer(&shop, HIGHEST).await,
    ];

    let mut rng = Rng(0x5EED_0004);
    let mut jobs = Vec::new();
    for _ in 0..280 {
        let customer = *rng.pick(&customers);
        let job = match rng.range(0, 9) {
            0..=5 => Job::Purchase {
                customer,
                lines: random_lines(&mut rng, &ids, 3),
            },
            6 | 7 => Job::Pay {
                customer,
                amount: rng.range(100, 2_500),
            },
            _ => Job::Limit {
                customer,
                credit_limit: *rng.pick(&[0, 2_000, 5_000, 10_000, HIGHEST]),
            },
        };
        jobs.push(job);
    }
    let results = run(&app, &shop, jobs, WORKERS).await;
    let mut counted = Tally::default();
    tally(&results, &prices, &mut counted);
    assert!(
        counted.refusals("credit_limit_exceeded") > 0,
        "{:?}",
        counted.refused
    );

    let stock: Vec<(Uuid, i64)> = products.iter().map(|(id, s, _)| (*id, *s)).collect();
    verify_stock(&app, &shop, &stock, &counted).await;
    let limits: Vec<(Uuid, i64)> = customers.iter().map(|c| (*c, HIGHEST)).collect();
    verify_ledgers(&app, &shop, &limits, &counted).await;

    // Every purchase stayed within the limit in force when it was appended:
    // the latest change recorded before its position in the chain.
    let sql = app.sql().await;
    for customer in customers {
        let rows = sql
            .query(
                "SELECT l.seq, l.balance_after,
                        (SELECT c.credit_limit FROM customer_changes c
                          WHERE c.business_id = l.business_id AND c.customer_id = l.customer_id
                            AND c.after_seq < l.seq
                          ORDER BY c.id DESC LIMIT 1)
                   FROM credit_ledger l
                  WHERE l.business_id = $1 AND l.customer_id = $2 AND l.kind = 'purchase'
                  ORDER BY l.seq",
                &[&shop.id, &customer],
            )
            .await
            .expect("purchases with their limits");
        assert!(!rows.is_empty(), "{customer} bought something");
        for row in rows {
            let (seq, balance_after, limit): (i64, i64, Option<i64>) =
                (row.get(0), row.get(1), row.get(2));
            let limit = limit.unwrap_or_else(|| panic!("{customer}: no limit for seq {seq}"));
            assert!(
                balance_after <= limit,
                "{customer}: purchase at seq {seq} took the balance to {balance_after}, limit {limit}"
            );
        }
        let latest: i64 = sql
            .query_one(
                "SELECT credit_limit FROM customer_changes
                  WHERE business_id = $1 AND customer_id = $2 ORDER BY id DESC LIMIT 1",
                &[&shop.id, &customer],
            )
            .await
            .expect("a limit history")
            .get(0);
        let reread = app
            .get(&format!("/v1/customers/{customer}"), &shop.key)
            .await;
        assert_eq!(
            int(&reread.body["credit_limit"], "credit_limit"),
            latest,
            "the newest recorded limit is the customer's"
        );
    }
    // And the independent second opinion over everything stored.
    app.assert_audit_clean().await;
}

/// Units returned per (order, product) by the successful returns.
fn returned_per_line(results: &[(Job, Reply)]) -> HashMap<(Uuid, Uuid), i64> {
    let mut returned = HashMap::new();
    for (job, reply) in results {
        if let (Job::Return { order, lines }, 201) = (job, reply.status) {
            for (product, quantity) in lines {
                *returned.entry((*order, *product)).or_insert(0) += quantity;
            }
        }
    }
    returned
}

/// 64 buyers of one product at once (a flash sale): orders share
/// transactions (group commit), each still gets its own 201, and the books
/// balance.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flash_sale_is_group_committed() {
    let app = Arc::new(TestApp::spawn().await);
    let shop = app.business("Shop").await;
    let product = app.product(&shop, 100, 1_000).await;
    let mut customers = Vec::new();
    for _ in 0..64 {
        customers.push(app.customer(&shop, 10_000).await);
    }
    let buys = customers.iter().map(|customer| {
        let app = app.clone();
        let shop = shop.clone();
        let customer = *customer;
        tokio::spawn(async move { app.purchase(&shop, customer, &[(product, 2)]).await })
    });
    for reply in futures::future::join_all(buys).await {
        let reply = reply.expect("task");
        assert_eq!(reply.status, 201, "{reply:?}");
    }
    let sql = app.sql().await;
    let row = sql
        .query_one(
            "SELECT count(*), count(DISTINCT xmin::text) FROM orders",
            &[],
        )
        .await
        .expect("orders");
    let (orders, transactions): (i64, i64) = (row.get(0), row.get(1));
    assert_eq!(orders, 64);
    if crate::helpers::batching() {
        assert!(transactions < orders, "no two orders shared a transaction");
    } else {
        assert_eq!(transactions, orders, "batching is off");
    }
    let stock = app.get(&format!("/v1/products/{product}"), &shop.key).await;
    assert_eq!(stock.body["stock"], 1_000 - 128);
    app.assert_audit_clean().await;
}
