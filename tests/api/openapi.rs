//! The OpenAPI document agrees with the router and with the contract.

use serde_json::Value;

use serde_json::json;

use crate::helpers::TestApp;

/// Every endpoint of the API (docs/api.md), as (method, path template).
const CONTRACT: &[(&str, &str)] = &[
    ("post", "/v1/businesses"),
    ("post", "/v1/api-keys"),
    ("get", "/v1/api-keys"),
    ("delete", "/v1/api-keys/{id}"),
    ("post", "/v1/customers"),
    ("get", "/v1/customers"),
    ("get", "/v1/customers/{id}"),
    ("patch", "/v1/customers/{id}"),
    ("get", "/v1/customers/{id}/ledger"),
    ("get", "/v1/customers/{id}/history"),
    ("get", "/v1/customers/{id}/statement"),
    ("post", "/v1/customers/{id}/write-offs"),
    ("get", "/v1/business"),
    ("patch", "/v1/business"),
    ("post", "/v1/products"),
    ("get", "/v1/products"),
    ("get", "/v1/products/{id}"),
    ("patch", "/v1/products/{id}"),
    ("post", "/v1/products/{id}/stock-adjustments"),
    ("post", "/v1/purchases"),
    ("get", "/v1/orders"),
    ("get", "/v1/orders/{id}"),
    ("post", "/v1/orders/{id}/returns"),
    ("post", "/v1/payments"),
    ("get", "/v1/reports/overdue"),
    ("post", "/v1/holds"),
    ("get", "/v1/holds"),
    ("get", "/v1/holds/{id}"),
    ("post", "/v1/holds/{id}/capture"),
    ("post", "/v1/holds/{id}/void"),
    ("get", "/v1/events"),
    ("post", "/v1/webhook-endpoints"),
    ("get", "/v1/webhook-endpoints"),
    ("get", "/v1/webhook-endpoints/{id}"),
    ("patch", "/v1/webhook-endpoints/{id}"),
    ("delete", "/v1/webhook-endpoints/{id}"),
    ("post", "/v1/webhook-endpoints/{id}/rotate-secret"),
    ("get", "/v1/webhook-endpoints/{id}/deliveries"),
    ("post", "/v1/webhook-endpoints/{id}/replay"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
];

async fn document(app: &TestApp) -> Value {
    let reply = app
        .request(reqwest::Method::GET, "/openapi.json", None, &[], None)
        .await;
    assert_eq!(reply.status, 200);
    reply.body
}

fn operations(document: &Value) -> Vec<(String, String)> {
    let paths = document["paths"].as_object().expect("paths object");
    let mut found = Vec::new();
    for (path, item) in paths {
        for method in item.as_object().expect("path item object").keys() {
            found.push((method.clone(), path.clone()));
        }
    }
    found
}

#[tokio::test]
async fn the_spec_is_openapi_3_1_and_lists_every_contract_endpoint() {
    let app = TestApp::spawn().await;
    let document = document(&app).await;
    assert_eq!(document["openapi"], "3.1.0");
    let listed = operations(&document);
    for (method, path) in CONTRACT {
        assert!(
            listed.contains(&(method.to_string(), path.to_string())),
            "{method} {path} is missing from /openapi.json"
        );
    }
    for (method, path) in &listed {
        assert!(
            CONTRACT.contains(&(method.as_str(), path.as_str())),
            "{method} {path} is in the spec but not in the contract list of this test"
        );
    }
}

#[tokio::test]
async fn every_operation_in_the_spec_is_served() {
    let app = TestApp::spawn().await;
    let document = document(&app).await;
    for (method, path) in operations(&document) {
        let concrete = path.replace("{id}", "00000000-0000-0000-0000-000000000000");
        let method =
            reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).expect("HTTP method");
        let reply = app
            .request(method.clone(), &concrete, None, &[], None)
            .await;
        // Unauthenticated, a served tenant route answers 401; an unserved one
        // would be the fallback's 404 "no such route".
        let unserved = reply.status == 404 && reply.body["detail"] == "no such route";
        assert!(!unserved, "{method} {path} is in the spec but not served");
    }
}

#[tokio::test]
async fn errors_are_documented_as_problem_json() {
    let app = TestApp::spawn().await;
    let document = document(&app).await;
    let purchase = &document["paths"]["/v1/purchases"]["post"]["responses"];
    for status in ["400", "401", "404", "409", "422", "503"] {
        let content = &purchase[status]["content"]["application/problem+json"];
        assert!(
            content.is_object(),
            "POST /v1/purchases {status} not documented as problem+json"
        );
    }
    // Each code has a schema of its own: its code a single value, its
    // facts required, so a client reads `available` as a number.
    let stock = &document["components"]["schemas"]["InsufficientStockProblem"];
    assert_eq!(
        stock["properties"]["code"]["enum"],
        json!(["insufficient_stock"])
    );
    let required = stock["required"].as_array().expect("required members");
    for member in [
        "type",
        "title",
        "status",
        "detail",
        "code",
        "product_id",
        "requested",
        "available",
    ] {
        assert!(
            required.contains(&json!(member)),
            "insufficient_stock lacks required `{member}`"
        );
    }
    let conflicts = &purchase["409"]["content"]["application/problem+json"]["schema"];
    assert_eq!(conflicts["discriminator"]["propertyName"], "code");
    // The purchase's own refusals and the key's reuse: nothing else.
    let codes: Vec<&str> = conflicts["oneOf"]
        .as_array()
        .expect("a oneOf")
        .iter()
        .filter_map(|schema| schema["$ref"].as_str())
        .collect();
    assert_eq!(
        codes,
        [
            "#/components/schemas/CustomerClosedProblem",
            "#/components/schemas/CustomerOnHoldProblem",
            "#/components/schemas/InsufficientStockProblem",
            "#/components/schemas/CreditLimitExceededProblem",
            "#/components/schemas/IdempotencyKeyReusedProblem",
        ]
    );
    assert!(purchase["default"].is_object(), "no default (500) answer");
}
