//! `GET /v1/customers/{id}/statement`: the balance brought forward, the
//! period's entries and their totals, the balance carried forward and its
//! aging; pages over the entries, statements that chain, CSV that says the
//! same as JSON, and no 5xx from any period.

use chrono::{DateTime, Datelike, TimeDelta, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Business, Reply, TestApp};
use crate::support::{assert_invalid, give_back, keys_of, ledger, pay, problem};

fn time(value: &Value) -> DateTime<Utc> {
    value
        .as_str()
        .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
        .map(|time| time.with_timezone(&Utc))
        .unwrap_or_else(|| panic!("not an RFC 3339 time: {value}"))
}

fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn path(customer: Uuid, from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    format!(
        "/v1/customers/{customer}/statement?from={}&to={}",
        rfc3339(from),
        rfc3339(to)
    )
}

/// A customer with 16 entries of every kind, each its own transaction (so
/// each its own instant): purchases, payments, returns and write-offs.
async fn busy_customer(app: &TestApp, shop: &Business) -> (Uuid, Vec<Value>) {
    let customer = app.customer(shop, 1_000_000).await;
    let product = app.product(shop, 100, 1_000).await;
    for round in 0..4_i64 {
        let order = app.purchase(shop, customer, &[(product, 10 + round)]).await;
        assert_eq!(order.status, 201, "{order:?}");
        assert_eq!(pay(app, shop, customer, 300).await.status, 201);
        assert_eq!(
            give_back(app, shop, order.id(), &[(product, 1)])
                .await
                .status,
            201
        );
        let written = app
            .post(
                &format!("/v1/customers/{customer}/write-offs"),
                &shop.key,
                json!({ "amount": 50 + round, "reason": "goodwill" }),
            )
            .await;
        assert_eq!(written.status, 201, "{written:?}");
    }
    let entries = ledger(app, shop, customer).await;
    assert_eq!(entries.len(), 16);
    (customer, entries)
}

/// Every entry of a statement period, following its cursor.
async fn statement_pages(app: &TestApp, key: &str, url: &str, limit: u32) -> (Value, Vec<Value>) {
    let mut entries = Vec::new();
    let mut first: Option<Value> = None;
    let mut cursor: Option<String> = None;
    for _ in 0..1_000 {
        let page_url = match &cursor {
            None => format!("{url}&limit={limit}"),
            Some(cursor) => format!("{url}&limit={limit}&cursor={cursor}"),
        };
        let page = app.get(&page_url, key).await;
        assert_eq!(page.status, 200, "{page:?}");
        let data = page.body["entries"].as_array().expect("entries").clone();
        assert!(data.len() <= limit as usize, "{page:?}");
        entries.extend(data);
        // Every page carries the same summary.
        let mut summary = page.body.clone();
        let object = summary.as_object_mut().expect("object");
        object.remove("entries");
        object.remove("next_cursor");
        match &first {
            None => first = Some(summary),
            Some(first) => assert_eq!(first, &summary, "the summary changed between pages"),
        }
        match &page.body["next_cursor"] {
            Value::Null => return (first.expect("a page"), entries),
            Value::String(next) => cursor = Some(next.clone()),
            other => panic!("next_cursor: {other}"),
        }
    }
    panic!("the statement's pages never ended");
}

fn amount(entry: &Value) -> i64 {
    entry["amount"].as_i64().expect("amount")
}

#[tokio::test]
async fn a_statement_brings_forward_sums_and_carries_forward_its_period() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let (customer, all) = busy_customer(&app, &shop).await;

    // The period from entry 5 (inclusive) to entry 13 (exclusive).
    let from = time(&all[4]["created_at"]);
    let to = time(&all[12]["created_at"]);
    let reply = app.get(&path(customer, from, to), &shop.key).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let body = &reply.body;
    assert_eq!(
        keys_of(body),
        [
            "aging",
            "closing_balance",
            "customer_id",
            "entries",
            "from",
            "next_cursor",
            "opening_balance",
            "to",
            "totals"
        ]
    );
    assert_eq!(body["customer_id"], customer.to_string());
    assert_eq!(time(&body["from"]), from);
    assert_eq!(time(&body["to"]), to);
    assert_eq!(body["opening_balance"], all[3]["balance_after"]);
    assert_eq!(body["closing_balance"], all[11]["balance_after"]);
    assert_eq!(body["entries"], json!(all[4..12]));
    assert_eq!(body["next_cursor"], Value::Null);
    let by_kind = |kind: &str| -> i64 {
        all[4..12]
            .iter()
            .filter(|entry| entry["kind"] == kind)
            .map(amount)
            .sum()
    };
    assert_eq!(
        body["totals"],
        json!({
            "purchases": by_kind("purchase"),
            "payments": by_kind("payment"),
            "returns": by_kind("return"),
            "write_offs": by_kind("write_off"),
        })
    );
    let sum: i64 = all[4..12].iter().map(amount).sum();
    assert_eq!(
        body["opening_balance"].as_i64().expect("opening") + sum,
        body["closing_balance"].as_i64().expect("closing")
    );
    // Nothing is due yet (30 days of terms): the whole closing balance is
    // current at `to`.
    assert_eq!(
        body["aging"],
        json!({ "current": body["closing_balance"], "1_30": 0, "31_60": 0, "61_90": 0, "over_90": 0 })
    );

    // Before the first entry: nothing brought forward, nothing in it.
    let before = app
        .get(
            &path(
                customer,
                from - TimeDelta::days(400),
                time(&all[0]["created_at"]),
            ),
            &shop.key,
        )
        .await;
    assert_eq!(before.status, 200, "{before:?}");
    assert_eq!(before.body["opening_balance"], 0);
    assert_eq!(before.body["closing_balance"], 0);
    assert_eq!(before.body["entries"], json!([]));
    // After the last: everything brought forward and carried forward.
    let after = app
        .get(
            &path(
                customer,
                time(&all[15]["created_at"]) + TimeDelta::microseconds(1),
                Utc::now() + TimeDelta::days(1),
            ),
            &shop.key,
        )
        .await;
    assert_eq!(after.body["opening_balance"], all[15]["balance_after"]);
    assert_eq!(after.body["closing_balance"], all[15]["balance_after"]);
    assert_eq!(after.body["totals"]["purchases"], 0);

    // A brand-new customer's statement: all zero.
    let empty = app.customer(&shop, 0).await;
    let reply = app
        .get(&format!("/v1/customers/{empty}/statement"), &shop.key)
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        (
            &reply.body["opening_balance"],
            &reply.body["closing_balance"],
            &reply.body["entries"]
        ),
        (&json!(0), &json!(0), &json!([]))
    );
}

#[tokio::test]
async fn the_default_period_is_the_current_calendar_month_in_utc() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let (customer, all) = busy_customer(&app, &shop).await;
    let before = Utc::now();
    let reply = app
        .get(&format!("/v1/customers/{customer}/statement"), &shop.key)
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let from = time(&reply.body["from"]);
    let to = time(&reply.body["to"]);
    assert_eq!((from.day(), from.time()), (1, chrono::NaiveTime::MIN));
    assert_eq!((to.day(), to.time()), (1, chrono::NaiveTime::MIN));
    assert!(from <= before && before < to, "{from} {before} {to}");
    assert_eq!(to.month(), from.month() % 12 + 1);
    // Run across a month's end, the entries may fall in the one before.
    if time(&all[0]["created_at"]) >= from {
        assert_eq!(reply.body["entries"], json!(all));
    }
    // Only `from`: to the start of the next month; only `to`: from the
    // start of the month before it.
    let only_from = app
        .get(
            &format!("/v1/customers/{customer}/statement?from=2026-02-15T10:00:00Z"),
            &shop.key,
        )
        .await;
    assert_eq!(
        time(&only_from.body["from"]),
        time(&json!("2026-02-15T10:00:00Z"))
    );
    assert_eq!(
        time(&only_from.body["to"]),
        time(&json!("2026-03-01T00:00:00Z"))
    );
    let only_to = app
        .get(
            &format!("/v1/customers/{customer}/statement?to=2026-03-01T00:00:00%2B02:00"),
            &shop.key,
        )
        .await;
    assert_eq!(
        time(&only_to.body["from"]),
        time(&json!("2026-02-01T00:00:00Z"))
    );
    assert_eq!(
        time(&only_to.body["to"]),
        time(&json!("2026-02-28T22:00:00Z"))
    );
}

#[tokio::test]
async fn pages_of_a_statement_follow_its_cursor() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let (customer, all) = busy_customer(&app, &shop).await;
    let url = path(
        customer,
        time(&all[0]["created_at"]),
        Utc::now() + TimeDelta::days(1),
    );
    for limit in [1, 3, 16, 200] {
        let (summary, entries) = statement_pages(&app, &shop.key, &url, limit).await;
        assert_eq!(entries, all, "limit {limit}");
        assert_eq!(summary["opening_balance"], 0);
        assert_eq!(summary["closing_balance"], all[15]["balance_after"]);
    }
    // Entries appended after a page was read belong to the period too: the
    // cursor continues from where it was.
    let first = app.get(&format!("{url}&limit=10"), &shop.key).await;
    let cursor = first.body["next_cursor"].as_str().expect("more").to_owned();
    assert_eq!(pay(&app, &shop, customer, 1).await.status, 201);
    let rest = app
        .get(&format!("{url}&limit=200&cursor={cursor}"), &shop.key)
        .await;
    assert_eq!(rest.body["entries"].as_array().map(Vec::len), Some(7));

    for query in [
        "&limit=0",
        "&limit=201",
        "&limit=-1",
        "&limit=x",
        "&limit=99999999999999999999",
        "&cursor=nope",
        "&cursor=",
    ] {
        let reply = app.get(&format!("{url}{query}"), &shop.key).await;
        problem(&reply, 422, "validation_failed");
    }
}

/// A deterministic xorshift, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Consecutive statements over random periods chain: the closing balance of
/// one is the opening of the next, each sums to its own closing, and
/// together they hold every entry once.
#[tokio::test]
async fn consecutive_statements_chain_over_random_periods() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let (customer, all) = busy_customer(&app, &shop).await;
    let start = time(&all[0]["created_at"]) - TimeDelta::days(3);
    let end = time(&all[15]["created_at"]) + TimeDelta::seconds(1);
    let span = (end - start).num_microseconds().expect("short");
    for seed in [7_u64, 1_234_567, 0x9e37_79b9_7f4a_7c15] {
        let mut rng = Rng(seed);
        // Cut points: some at entries' own instants (the boundary case:
        // an entry at `to` belongs to the next period), others anywhere.
        let mut cuts = vec![start, end];
        for n in 0..6 {
            cuts.push(if n % 2 == 0 {
                time(&all[rng.below(16) as usize]["created_at"])
            } else {
                start + TimeDelta::microseconds(rng.below(span as u64) as i64)
            });
        }
        cuts.sort();
        cuts.dedup();
        let mut carried = 0;
        let mut seen = Vec::new();
        for window in cuts.windows(2) {
            let url = path(customer, window[0], window[1]);
            let (summary, entries) =
                statement_pages(&app, &shop.key, &url, 1 + rng.below(5) as u32).await;
            assert_eq!(summary["opening_balance"], carried, "seed {seed}: {url}");
            let sum: i64 = entries.iter().map(amount).sum();
            let closing = summary["closing_balance"].as_i64().expect("closing");
            assert_eq!(carried + sum, closing, "seed {seed}: {url}");
            let totals: i64 = ["purchases", "payments", "returns", "write_offs"]
                .iter()
                .map(|kind| summary["totals"][kind].as_i64().expect("total"))
                .sum();
            assert_eq!(totals, sum, "seed {seed}: {url}");
            for entry in &entries {
                let at = time(&entry["created_at"]);
                assert!(window[0] <= at && at < window[1], "{entry} outside {url}");
            }
            carried = closing;
            seen.extend(entries);
        }
        assert_eq!(seen, all, "seed {seed}: every entry once, in order");
    }
}

/// One CSV row: seq, created_at, kind, amount, balance_after, order_id.
fn csv_rows(text: &str) -> Vec<Vec<String>> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .expect("a header")
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        header,
        [
            "seq",
            "created_at",
            "kind",
            "amount",
            "balance_after",
            "order_id"
        ]
    );
    reader
        .records()
        .map(|record| {
            record
                .expect("a CSV record")
                .iter()
                .map(str::to_owned)
                .collect()
        })
        .collect()
}

async fn csv(app: &TestApp, key: &str, url: &str) -> Reply {
    app.request(
        reqwest::Method::GET,
        url,
        Some(key),
        &[("Accept", "text/csv")],
        None,
    )
    .await
}

#[tokio::test]
async fn the_csv_says_what_the_json_says() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let (customer, all) = busy_customer(&app, &shop).await;
    let product = app.product(&shop, 7, 10_000).await;
    // Enough entries for several of the export's chunks (1,000 each), 20
    // at a time (purchases group-committed, each pair of a purchase and a
    // payment of the same amount leaving the balance as it was).
    for _ in 0..60 {
        let replies = futures::future::join_all((0..20).map(|n| {
            let app = &app;
            let shop = &shop;
            async move {
                if n % 2 == 0 {
                    app.purchase(shop, customer, &[(product, 1)]).await
                } else {
                    pay(app, shop, customer, 7).await
                }
            }
        }))
        .await;
        for reply in replies {
            assert_eq!(reply.status, 201, "{reply:?}");
        }
    }
    let url = path(
        customer,
        time(&all[2]["created_at"]),
        Utc::now() + TimeDelta::days(1),
    );
    let (_, entries) = statement_pages(&app, &shop.key, &url, 200).await;
    assert_eq!(entries.len(), 14 + 1_200);

    let reply = csv(&app, &shop.key, &url).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        reply
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/csv; charset=utf-8")
    );
    let text = reply.body.as_str().expect("CSV text");
    let rows = csv_rows(text);
    assert_eq!(rows.len(), entries.len());
    for (row, entry) in rows.iter().zip(&entries) {
        assert_eq!(row[0], entry["seq"].to_string(), "{row:?} vs {entry}");
        assert_eq!(
            time(&json!(row[1])),
            time(&entry["created_at"]),
            "{row:?} vs {entry}"
        );
        assert_eq!(json!(row[2]), entry["kind"], "{row:?} vs {entry}");
        assert_eq!(row[3], entry["amount"].to_string(), "{row:?} vs {entry}");
        assert_eq!(
            row[4],
            entry["balance_after"].to_string(),
            "{row:?} vs {entry}"
        );
        match &entry["order_id"] {
            Value::Null => assert_eq!(row[5], "", "{row:?} vs {entry}"),
            id => assert_eq!(json!(row[5]), *id, "{row:?} vs {entry}"),
        }
    }

    // An empty period is just the header; a JSON Accept gets JSON.
    let empty = csv(
        &app,
        &shop.key,
        &path(
            customer,
            time(&all[0]["created_at"]) - TimeDelta::days(2),
            time(&all[0]["created_at"]),
        ),
    )
    .await;
    assert_eq!(
        empty.body,
        "seq,created_at,kind,amount,balance_after,order_id\n"
    );
    let json_reply = app
        .request(
            reqwest::Method::GET,
            &url,
            Some(&shop.key),
            &[("Accept", "application/json, text/csv;q=0")],
            None,
        )
        .await;
    assert!(json_reply.body["entries"].is_array(), "{json_reply:?}");
    // Refusals stay problem+json whatever the Accept.
    let bad = csv(
        &app,
        &shop.key,
        &format!("/v1/customers/{customer}/statement?from=yesterday"),
    )
    .await;
    assert_invalid(&bad, &["from"]);
    let unknown = csv(
        &app,
        &shop.key,
        &format!("/v1/customers/{}/statement", Uuid::now_v7()),
    )
    .await;
    problem(&unknown, 404, "not_found");
}

#[tokio::test]
async fn any_period_is_answered_without_a_5xx() {
    let app = TestApp::spawn().await;
    let shop = app.business("Shop").await;
    let (customer, _) = busy_customer(&app, &shop).await;
    let base = format!("/v1/customers/{customer}/statement");
    for (query, fields) in [
        ("?from=yesterday", vec!["from"]),
        ("?to=2026-13-01T00:00:00Z", vec!["to"]),
        ("?from=2026-01-01", vec!["from"]),
        ("?from=2026-01-01T00:00:00", vec!["from"]),
        ("?from=x&to=y", vec!["from", "to"]),
        (
            "?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z",
            vec!["to"],
        ),
        (
            "?from=2026-01-01T00:00:00Z&to=2026-01-01T00:00:00Z",
            vec!["to"],
        ),
        ("?from=%00", vec!["from"]),
    ] {
        let reply = app.get(&format!("{base}{query}"), &shop.key).await;
        assert_invalid(&reply, &fields);
    }
    // The ends of what RFC 3339 can say: answered (200) or refused (422),
    // never a 5xx (the harness fails on any).
    for query in [
        "?from=0001-01-01T00:00:00Z&to=9999-12-31T23:59:59.999999Z",
        "?from=0000-01-01T00:00:00Z",
        "?from=9999-12-31T23:59:59Z",
        "?to=0001-01-01T00:00:00Z",
        "?to=0001-01-01T00:00:00.000001Z",
        "?from=1970-01-01T00:00:00%2B23:59&to=2100-01-01T00:00:00-23:59",
        "?from=2026-01-01T00:00:00Z&from=2026-02-01T00:00:00Z",
    ] {
        let reply = app.get(&format!("{base}{query}"), &shop.key).await;
        assert!(
            reply.status == 200 || reply.status == 422 || reply.status == 400,
            "{query}: {reply:?}"
        );
        if reply.status != 200 {
            reply.code();
        }
    }
    let whole = app
        .get(
            &format!("{base}?from=0001-01-01T00:00:00Z&to=9999-12-31T23:59:59Z"),
            &shop.key,
        )
        .await;
    assert_eq!(whole.status, 200, "{whole:?}");
    assert_eq!(whole.body["opening_balance"], 0);
    problem(
        &app.get("/v1/customers/not-a-uuid/statement", &shop.key)
            .await,
        404,
        "not_found",
    );
}
