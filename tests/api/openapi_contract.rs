//! The served OpenAPI document promises what the API contract (docs/api.md)
//! promises: every member the contract names for each answer is in the
//! schema of that answer and required there (the server always sends it,
//! `null` included where it may be null), money and counts are integers,
//! every list is the `data` + `next_cursor` envelope, and every problem
//! carries the five RFC 9457 members plus the facts of its code.

use serde_json::Value;

use crate::helpers::TestApp;

async fn document() -> Value {
    let app = TestApp::spawn().await;
    let reply = app
        .request(reqwest::Method::GET, "/openapi.json", None, &[], None)
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body
}

/// `schema` with a `$ref` followed, as often as it takes.
fn resolve<'a>(document: &'a Value, mut schema: &'a Value) -> &'a Value {
    while let Some(reference) = schema["$ref"].as_str() {
        let name = reference
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("a reference outside the schemas: {reference}"));
        schema = &document["components"]["schemas"][name];
        assert!(schema.is_object(), "dangling reference {reference}");
    }
    schema
}

/// The schema of the `status` answer of `method path`, in `media` type.
fn answer<'a>(document: &'a Value, method: &str, path: &str, status: &str) -> &'a Value {
    let response = &document["paths"][path][method]["responses"][status];
    let schema = &response["content"]["application/json"]["schema"];
    assert!(
        schema.is_object(),
        "{method} {path} documents no JSON answer {status}"
    );
    resolve(document, schema)
}

/// The schema of member `name` of `object`.
fn member<'a>(document: &'a Value, object: &'a Value, name: &str) -> &'a Value {
    let schema = &object["properties"][name];
    assert!(schema.is_object(), "no member `{name}` in {object}");
    resolve(document, schema)
}

/// The schema of the elements of array member `name`.
fn elements<'a>(document: &'a Value, object: &'a Value, name: &str) -> &'a Value {
    let array = member(document, object, name);
    assert_eq!(array["type"], "array", "`{name}` is not an array: {array}");
    resolve(document, &array["items"])
}

/// Asserts `object` has each member, listed as required.
fn requires(what: &str, object: &Value, members: &[&str]) {
    let required: Vec<&str> = object["required"]
        .as_array()
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for name in members {
        assert!(
            object["properties"][name].is_object(),
            "{what}: no member `{name}` in {object}"
        );
        assert!(
            required.contains(name),
            "{what}: `{name}` is not required (the server always sends it)"
        );
    }
}

/// Asserts each member is a JSON integer, perhaps nullable.
fn integers(what: &str, document: &Value, object: &Value, members: &[&str]) {
    for name in members {
        let schema = member(document, object, name);
        let integer = schema["type"] == "integer"
            || schema["type"]
                .as_array()
                .is_some_and(|types| types.contains(&"integer".into()));
        assert!(integer, "{what}: `{name}` is not an integer: {schema}");
    }
}

const CUSTOMER: &[&str] = &[
    "id",
    "name",
    "credit_limit",
    "balance",
    "held",
    "available_credit",
    "status",
    "payment_terms_days",
    "created_at",
];
const PRODUCT: &[&str] = &[
    "id",
    "name",
    "price",
    "stock",
    "reserved",
    "available",
    "created_at",
];
const ORDER: &[&str] = &[
    "id",
    "customer_id",
    "total",
    "created_at",
    "due_at",
    "hold_id",
    "items",
];
const ORDER_ITEM: &[&str] = &["product_id", "quantity", "unit_price", "line_total"];
const LEDGER_ENTRY: &[&str] = &[
    "id",
    "kind",
    "amount",
    "balance_after",
    "order_id",
    "created_at",
];
const RETURN: &[&str] = &["id", "order_id", "amount", "items", "created_at"];
const HOLD: &[&str] = &[
    "id",
    "customer_id",
    "status",
    "items",
    "total",
    "created_at",
    "expires_at",
];
const BUSINESS: &[&str] = &["id", "name", "currency", "payment_terms_days", "created_at"];

/// Every list of the API and what its rows are.
const LISTS: &[(&str, &[&str])] = &[
    ("/v1/api-keys", &["id", "created_at", "revoked_at"]),
    ("/v1/customers", CUSTOMER),
    ("/v1/products", PRODUCT),
    ("/v1/orders", ORDER),
    ("/v1/customers/{id}/ledger", LEDGER_ENTRY),
    (
        "/v1/customers/{id}/history",
        &["id", "changed_at", "changed_by"],
    ),
    ("/v1/holds", HOLD),
];

#[tokio::test]
async fn every_answer_has_the_members_the_contract_names() {
    let document = document().await;
    let doc = &document;

    for (method, path, status) in [
        ("post", "/v1/customers", "201"),
        ("get", "/v1/customers/{id}", "200"),
        ("patch", "/v1/customers/{id}", "200"),
    ] {
        let customer = answer(doc, method, path, status);
        requires(&format!("{method} {path}"), customer, CUSTOMER);
        integers(
            "customer",
            doc,
            customer,
            &["credit_limit", "balance", "available_credit"],
        );
    }

    for (method, path, status) in [
        ("post", "/v1/products", "201"),
        ("get", "/v1/products/{id}", "200"),
        ("patch", "/v1/products/{id}", "200"),
    ] {
        let product = answer(doc, method, path, status);
        requires(&format!("{method} {path}"), product, PRODUCT);
        integers("product", doc, product, &["price", "stock"]);
    }
    let adjusted = answer(doc, "post", "/v1/products/{id}/stock-adjustments", "201");
    requires(
        "stock adjustment answer",
        adjusted,
        &["product", "adjustment"],
    );
    requires(
        "adjusted product",
        member(doc, adjusted, "product"),
        PRODUCT,
    );
    let adjustment = member(doc, adjusted, "adjustment");
    requires(
        "adjustment",
        adjustment,
        &["id", "delta", "reason", "stock_after", "created_at"],
    );
    integers("adjustment", doc, adjustment, &["delta", "stock_after"]);

    for (method, path, status) in [
        ("post", "/v1/purchases", "201"),
        ("get", "/v1/orders/{id}", "200"),
        ("post", "/v1/holds/{id}/capture", "201"),
    ] {
        let order = answer(doc, method, path, status);
        requires(&format!("{method} {path}"), order, ORDER);
        integers("order", doc, order, &["total"]);
        let item = elements(doc, order, "items");
        requires("order item", item, ORDER_ITEM);
        integers(
            "order item",
            doc,
            item,
            &["quantity", "unit_price", "line_total"],
        );
    }
    let order = answer(doc, "get", "/v1/orders/{id}", "200");
    requires("GET /v1/orders/{id}", order, &["returns"]);
    requires("order's return", elements(doc, order, "returns"), RETURN);

    for (method, path, status) in [
        ("post", "/v1/holds", "201"),
        ("get", "/v1/holds/{id}", "200"),
        ("post", "/v1/holds/{id}/void", "200"),
    ] {
        let hold = answer(doc, method, path, status);
        requires(&format!("{method} {path}"), hold, HOLD);
        integers("hold", doc, hold, &["total"]);
        requires("held item", elements(doc, hold, "items"), ORDER_ITEM);
        let status = member(doc, hold, "status");
        assert_eq!(
            status["enum"],
            serde_json::json!(["pending", "captured", "voided", "expired"]),
            "hold statuses: {status}"
        );
    }

    let returned = answer(doc, "post", "/v1/orders/{id}/returns", "201");
    requires("POST /v1/orders/{id}/returns", returned, RETURN);
    integers("return", doc, returned, &["amount"]);
    requires("return item", elements(doc, returned, "items"), ORDER_ITEM);

    for path in ["/v1/payments", "/v1/customers/{id}/write-offs"] {
        let entry = answer(doc, "post", path, "201");
        requires(&format!("POST {path}"), entry, LEDGER_ENTRY);
        integers("ledger entry", doc, entry, &["amount", "balance_after"]);
    }
    let entry = answer(doc, "post", "/v1/payments", "201");
    let kind = member(doc, entry, "kind");
    assert_eq!(
        kind["enum"],
        serde_json::json!(["purchase", "payment", "return", "write_off"]),
        "ledger entry kinds: {kind}"
    );
    let order_id = member(doc, entry, "order_id");
    assert!(
        order_id["type"]
            .as_array()
            .is_some_and(|types| types.contains(&"null".into())),
        "a ledger entry's order_id may be null: {order_id}"
    );

    let business = answer(doc, "post", "/v1/businesses", "201");
    requires("POST /v1/businesses", business, BUSINESS);
    requires("POST /v1/businesses", business, &["api_key"]);
    requires(
        "business's first key",
        member(doc, business, "api_key"),
        &["id", "key"],
    );
    for method in ["get", "patch"] {
        let own = answer(doc, method, "/v1/business", "200");
        requires(&format!("{method} /v1/business"), own, BUSINESS);
    }

    let statement = answer(doc, "get", "/v1/customers/{id}/statement", "200");
    requires(
        "statement",
        statement,
        &[
            "customer_id",
            "from",
            "to",
            "opening_balance",
            "closing_balance",
            "totals",
            "aging",
            "entries",
            "next_cursor",
        ],
    );
    integers(
        "statement",
        doc,
        statement,
        &["opening_balance", "closing_balance"],
    );
    let totals = member(doc, statement, "totals");
    let kinds = ["purchases", "payments", "returns", "write_offs"];
    requires("statement totals", totals, &kinds);
    integers("statement totals", doc, totals, &kinds);
    requires(
        "statement entry",
        elements(doc, statement, "entries"),
        LEDGER_ENTRY,
    );

    let issued = answer(doc, "post", "/v1/api-keys", "201");
    requires("POST /v1/api-keys", issued, &["id", "key", "created_at"]);

    let report = answer(doc, "get", "/v1/reports/overdue", "200");
    requires("overdue report", report, &["as_of", "days", "customers"]);
    let row = elements(doc, report, "customers");
    requires(
        "overdue customer",
        row,
        &[
            "customer_id",
            "name",
            "balance",
            "overdue_amount",
            "oldest_unpaid_at",
        ],
    );
    integers("overdue customer", doc, row, &["balance", "overdue_amount"]);
}

#[tokio::test]
async fn every_list_is_the_data_and_next_cursor_envelope() {
    let document = document().await;
    for (path, row_members) in LISTS {
        let list = answer(&document, "get", path, "200");
        requires(&format!("GET {path}"), list, &["data", "next_cursor"]);
        let row = elements(&document, list, "data");
        requires(&format!("a row of GET {path}"), row, row_members);
        let parameters = document["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap_or_else(|| panic!("GET {path} has no parameters"));
        for name in ["limit", "cursor"] {
            assert!(
                parameters
                    .iter()
                    .any(|p| p["name"] == name && p["in"] == "query"),
                "GET {path} does not take ?{name}="
            );
        }
    }
    // The key itself is never listed.
    let keys = answer(&document, "get", "/v1/api-keys", "200");
    let key_row = elements(&document, keys, "data");
    assert!(
        key_row["properties"]["key"].is_null(),
        "listed API keys show their secret: {key_row}"
    );
}

#[tokio::test]
async fn every_problem_has_its_members_and_the_facts_of_its_code() {
    let document = document().await;
    // Each code of the contract with the members it adds.
    let contract: &[(&str, &[&str])] = &[
        ("malformed_request", &[]),
        ("validation_failed", &["errors"]),
        ("unauthorized", &[]),
        ("not_found", &[]),
        (
            "insufficient_stock",
            &["product_id", "requested", "available"],
        ),
        (
            "credit_limit_exceeded",
            &["credit_limit", "balance", "held", "order_total"],
        ),
        ("payment_exceeds_balance", &["balance", "amount"]),
        ("return_exceeds_purchase", &["product_id", "returnable"]),
        ("write_off_exceeds_balance", &["balance", "amount"]),
        ("customer_on_hold", &["customer_id"]),
        ("customer_closed", &["customer_id"]),
        ("balance_outstanding", &["balance"]),
        ("hold_not_pending", &["hold_status"]),
        ("capture_exceeds_hold", &["product_id", "held"]),
        ("idempotency_key_reused", &[]),
        ("payload_too_large", &[]),
        ("unavailable", &[]),
        ("internal", &[]),
    ];
    let mut seen = std::collections::BTreeSet::new();
    let paths = document["paths"].as_object().expect("paths");
    for (path, item) in paths {
        for (method, operation) in item.as_object().expect("path item") {
            let responses = operation["responses"].as_object().expect("responses");
            for (status, response) in responses {
                let schema = &response["content"]["application/problem+json"]["schema"];
                if schema.is_null() {
                    continue;
                }
                let schema = resolve(&document, schema);
                let variants: Vec<&Value> = match schema["oneOf"].as_array() {
                    Some(variants) => variants.iter().map(|v| resolve(&document, v)).collect(),
                    None => vec![schema],
                };
                for problem in variants {
                    let what = format!("{method} {path} {status}");
                    let code = problem["properties"]["code"]["enum"][0]
                        .as_str()
                        .unwrap_or_else(|| panic!("{what}: a problem without one code"));
                    let Some((_, extra)) = contract.iter().find(|(name, _)| *name == code) else {
                        panic!("{what}: code `{code}` is not in the contract");
                    };
                    requires(
                        &format!("{what} {code}"),
                        problem,
                        &["type", "title", "status", "detail", "code"],
                    );
                    requires(&format!("{what} {code}"), problem, extra);
                    seen.insert(code.to_owned());
                }
            }
        }
    }
    for (code, _) in contract {
        assert!(seen.contains(*code), "no operation documents `{code}`");
    }
    let validation = &document["components"]["schemas"]["ValidationFailedProblem"];
    let field_error = elements(&document, validation, "errors");
    requires("validation error", field_error, &["field", "message"]);
}
