//! The OpenAPI 3.1 document. Paths come from the `#[utoipa::path]` of each
//! handler, registered in the same `routes!` table that serves them (see
//! `router`), so the spec cannot list a route the server lacks or miss one
//! it has. Errors are added per operation from one table
//! ([`errors::OPERATIONS`]); `docs/openapi.json` is the reviewed snapshot
//! a test holds the served document to.

pub mod errors;
pub mod schemas;

use errors::Errors;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};

pub use schemas::{
    delta, name, non_negative, optional_amount, optional_name, optional_non_negative, positive,
    reason, sequence_after, signed_amount,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ontab",
        description = "Multi-tenant credit purchases (\"put it on my tab\"): businesses sell to their \
                       customers on credit; purchases, payments, returns and stock adjustments are \
                       atomic, and every invariant is held by PostgreSQL. Money is integer minor \
                       units within ±(2^53 - 1). Every error is application/problem+json with a \
                       stable `code`.",
        license(name = "MIT", identifier = "MIT")
    ),
    servers((url = "/", description = "The server that serves this document")),
    tags(
        (name = "businesses", description = "Tenants, created by the operator (admin token)"),
        (name = "api-keys", description = "A business's API keys: each selects its business"),
        (name = "customers", description = "Customers with a credit limit, their balance and ledger"),
        (name = "products", description = "Products with a price and stock; stock adjustments"),
        (name = "purchases", description = "Buying on credit: all lines or nothing"),
        (name = "payments", description = "Payments against a customer's balance"),
        (name = "orders", description = "Immutable orders and returns against them"),
        (name = "holds", description = "Authorize now, capture later: stock and credit reserved until captured, voided or expired"),
        (name = "reports", description = "Who owes what, and for how long"),
        (name = "events", description = "Every change, in commit order: the feed (webhooks and NATS deliver the same events)"),
        (name = "webhooks", description = "Events POSTed to the business's URLs, signed (Standard Webhooks), retried, logged and replayable"),
        (name = "operations", description = "Health, readiness, metrics and this document (no auth)"),
    ),
    components(schemas(FieldErrorSchema))
)]
pub struct ApiDoc;

/// Completes the document once the routes have added their paths: the
/// security schemes and every operation's errors and headers.
pub fn finish(document: &mut utoipa::openapi::OpenApi) {
    Security.modify(document);
    Errors.modify(document);
}

/// The two bearer schemes, and an explicit "none" on the routes that need
/// no credentials.
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = |description: &str| {
            let mut scheme = Http::new(HttpAuthScheme::Bearer);
            scheme.description = Some(description.to_owned());
            SecurityScheme::Http(scheme)
        };
        components.add_security_scheme(
            "api_key",
            bearer("A business's API key; it alone selects the tenant"),
        );
        components.add_security_scheme(
            "admin_token",
            bearer("ONTAB_ADMIN_TOKEN, for creating businesses only"),
        );
        for item in openapi.paths.paths.values_mut() {
            for operation in [&mut item.get, &mut item.post].into_iter().flatten() {
                operation.security.get_or_insert_with(Vec::new);
            }
        }
    }
}

/// One invalid field of a 422.
#[derive(ToSchema)]
#[schema(as = FieldError)]
#[expect(
    dead_code,
    reason = "describes domain::FieldError, which has no schema of its own"
)]
pub struct FieldErrorSchema {
    /// The field, as sent (e.g. `items[2].quantity`, `Idempotency-Key`).
    field: String,
    message: String,
}

/// Paging of every list.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(dead_code, reason = "describes the query read by http::request::Query")]
pub struct ListParams {
    /// Rows per page: 1..=200, default 50.
    #[param(minimum = 1, maximum = 200, required = false, nullable = false)]
    limit: Option<u8>,
    /// The previous page's `next_cursor`.
    #[param(required = false, nullable = false)]
    cursor: Option<String>,
}

/// The Idempotency-Key header of every command that moves money or stock.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[expect(
    dead_code,
    reason = "describes the header read by http::request::idempotency_key"
)]
pub struct IdempotencyKeyParam {
    /// 1..=255 visible ASCII characters, scoped to the business and kept at
    /// least 24 hours. A retry with the same key and body replays the first
    /// definitive answer (marked `idempotent-replayed: true`) and does
    /// nothing again; the same key with another body or path is
    /// `409 idempotency_key_reused`. Definitive answers are stored: every
    /// 2xx, and every 4xx decided for the request, a malformed body (400),
    /// invalid values (422) and an id that names nothing (404) included.
    /// Not stored, so the key stays unspent: 401 (no business to store it
    /// for), 413 (the body was not read), an invalid Idempotency-Key (no
    /// key), and 5xx. A 503 means nothing was written: retry. A 500 with
    /// `"outcome": "unknown"` means the commit was sent and its answer
    /// lost: retry with the same key to learn whether it took effect.
    #[param(
        rename = "Idempotency-Key",
        pattern = "^[!-~]{1,255}$",
        required = false,
        nullable = false
    )]
    idempotency_key: Option<String>,
}

/// The document as JSON, rendered once when the router is built.
#[derive(Clone)]
pub struct Rendered(axum::body::Bytes);

impl Rendered {
    /// Serializing a document built from our own types cannot fail short of
    /// a bug; then an empty object is served and the failure logged.
    pub fn new(document: &utoipa::openapi::OpenApi) -> Self {
        match document.to_pretty_json() {
            Ok(json) => Self(json.into()),
            Err(error) => {
                tracing::error!(%error, "cannot render the OpenAPI document");
                Self(axum::body::Bytes::from_static(b"{}"))
            }
        }
    }
}

#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "getOpenApi",
    description = "This document, generated from the code that serves the routes.",
    tag = "operations",
    summary = "This OpenAPI document",
    responses((status = 200, description = "This document (OpenAPI 3.1)", content_type = "application/json", body = Object))
)]
pub async fn serve(axum::Extension(rendered): axum::Extension<Rendered>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], rendered.0).into_response()
}
