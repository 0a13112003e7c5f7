//! The OpenAPI 3.1 document. Paths come from the `#[utoipa::path]` of each
//! handler, registered in the same `routes!` table that serves them (see
//! `router`), so the spec cannot list a route the server lacks or miss one
//! it has.

use super::problem::Problem;
use crate::domain::{ErrorCode, MAX_SAFE_INTEGER};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{
    KnownFormat, Object, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ontab",
        description = "Multi-tenant credit purchases: customers buy on credit, pay and return; \
                       every invariant is held by PostgreSQL. Money is integer minor units.",
        license(name = "MIT")
    ),
    components(schemas(Problem, FieldErrorSchema)),
    modifiers(&Security)
)]
pub struct ApiDoc;

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
    }
}

/// The schema of `problem::Problem`: the members every problem has, and
/// the facts some codes add.
impl utoipa::PartialSchema for Problem {
    fn schema() -> RefOr<Schema> {
        let integer = || {
            ObjectBuilder::new()
                .schema_type(SchemaType::Type(Type::Integer))
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        };
        let string = || ObjectBuilder::new().schema_type(SchemaType::Type(Type::String));
        let codes: Vec<&str> = ErrorCode::ALL.iter().map(|code| code.as_str()).collect();
        ObjectBuilder::new()
            .description(Some(
                "An error (RFC 9457 problem+json). `code` is stable; the other members depend on it.",
            ))
            .property("type", string().description(Some("`urn:ontab:problem:<code>`")))
            .required("type")
            .property("title", string())
            .required("title")
            .property("status", integer())
            .required("status")
            .property("detail", string())
            .required("detail")
            .property("code", string().enum_values(Some(codes)))
            .required("code")
            .property(
                "errors",
                utoipa::openapi::schema::ArrayBuilder::new().items(FieldErrorSchema::schema()),
            )
            .property("product_id", string().format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid))))
            .property("requested", integer())
            .property("available", integer())
            .property("credit_limit", integer())
            .property("balance", integer())
            .property("order_total", integer())
            .property("amount", integer())
            .property("returnable", integer())
            .into()
    }
}

impl ToSchema for Problem {}

/// One invalid field of a 422.
#[derive(ToSchema)]
#[schema(as = FieldError)]
#[expect(
    dead_code,
    reason = "describes domain::FieldError, which has no schema of its own"
)]
struct FieldErrorSchema {
    field: String,
    message: String,
}

/// One page of a list.
#[derive(Serialize, ToSchema)]
pub struct List<T> {
    pub data: Vec<T>,
    /// Pass as `?cursor=` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// Paging of every list.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(dead_code, reason = "describes the query read by http::request::Query")]
pub struct ListParams {
    /// 1..=200, default 50.
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u8>,
    /// The previous page's next_cursor.
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
    /// 1..=255 visible ASCII characters; a retry with the same key and body replays the first answer
    #[param(rename = "Idempotency-Key", pattern = "^[!-~]{1,255}$")]
    idempotency_key: Option<String>,
}

// Text rules of `domain::Name` and `domain::Reason`, as JSON Schema
// patterns, so that a generated request is valid exactly when the server
// accepts it: surrounding Unicode white space is trimmed, then at most 200
// characters remain, none of them a control character (Cc). `\s` is not
// used because ECMA and Rust disagree on what it covers.
const SPACE: &str =
    "[ \\t\\n\\u000b\\f\\r\\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]";
const INNER: &str = "[^\\u0000-\\u001f\\u007f-\\u009f]";
const EDGE: &str = "[^\\u0000-\\u001f\\u007f-\\u009f \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]";

fn text(optional_text: bool, nullable: bool, description: &str) -> Object {
    let body = format!("{EDGE}(?:{INNER}{{0,198}}{EDGE})?");
    let body = if optional_text {
        format!("(?:{body})?")
    } else {
        body
    };
    let schema_type = if nullable {
        SchemaType::from_iter([Type::String, Type::Null])
    } else {
        SchemaType::Type(Type::String)
    };
    ObjectBuilder::new()
        .schema_type(schema_type)
        .pattern(Some(format!("^{SPACE}*{body}{SPACE}*$")))
        .description(Some(description))
        .build()
}

const NAME: &str = "1..=200 characters once trimmed, no control characters.";

/// `schema_with` of a required name.
pub fn name() -> Object {
    text(false, false, NAME)
}

/// `schema_with` of a name a PATCH may leave out (or send as null).
pub fn optional_name() -> Object {
    text(false, true, NAME)
}

/// `schema_with` of a stock adjustment's reason (`domain::Reason`).
pub fn reason() -> Object {
    text(
        true,
        false,
        "Why, for the record (e.g. \"damaged\", \"recount\"); at most 200 characters once trimmed, no control characters.",
    )
}

/// An integer within the safe range of JSON clients, from `minimum`.
fn safe_integer(minimum: i64, nullable: bool, description: &str) -> Object {
    let schema_type = if nullable {
        SchemaType::from_iter([Type::Integer, Type::Null])
    } else {
        SchemaType::Type(Type::Integer)
    };
    ObjectBuilder::new()
        .schema_type(schema_type)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(minimum))
        .maximum(Some(MAX_SAFE_INTEGER))
        .description(Some(description))
        .build()
}

/// `schema_with` of an amount, price, limit or stock: 0..=2^53 − 1.
pub fn non_negative() -> Object {
    safe_integer(
        0,
        false,
        "In minor units (or units of stock); 0 to 2^53 - 1.",
    )
}

/// `schema_with` of such a field a PATCH may leave out.
pub fn optional_non_negative() -> Object {
    safe_integer(
        0,
        false,
        "In minor units; 0 to 2^53 - 1. Leave out to keep.",
    )
}

/// `schema_with` of a payment amount or a quantity: 1..=2^53 − 1.
pub fn positive() -> Object {
    safe_integer(1, false, "1 to 2^53 - 1.")
}

/// `schema_with` of a stock adjustment's delta: nonzero, within ±(2^53 − 1).
pub fn delta() -> Schema {
    let side = |minimum: Option<i64>, maximum: Option<i64>| {
        ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::Integer))
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            .minimum(minimum)
            .maximum(maximum)
            .build()
    };
    Schema::OneOf(
        OneOfBuilder::new()
            .item(side(Some(-MAX_SAFE_INTEGER), Some(-1)))
            .item(side(Some(1), Some(MAX_SAFE_INTEGER)))
            .description(Some(
                "Units to add (positive) or remove (negative); not zero.",
            ))
            .build(),
    )
}

/// The document as JSON, rendered once when the router is built.
#[derive(Clone)]
pub struct Rendered(axum::body::Bytes);

impl Rendered {
    /// Serializing a document built from our own types cannot fail short of
    /// a bug; then an empty object is served and the failure logged.
    pub fn new(document: &utoipa::openapi::OpenApi) -> Self {
        match document.to_json() {
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
    tag = "operations",
    summary = "This OpenAPI document",
    responses((status = 200, description = "OpenAPI 3.1", content_type = "application/json"))
)]
pub async fn serve(axum::Extension(rendered): axum::Extension<Rendered>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], rendered.0).into_response()
}

/// The problem answers of the contract's error table, one type per status,
/// so that every operation lists its errors by name and each is described
/// the same way everywhere (`responses((status = 200, ...), Unauthorized)`).
pub mod problems {
    use super::Problem;

    #[derive(utoipa::IntoResponses)]
    #[response(
        status = 400,
        description = "malformed_request: not JSON, wrong types, unknown fields or content type",
        content_type = "application/problem+json"
    )]
    #[expect(dead_code, reason = "documents an answer built by http::problem")]
    pub struct Malformed(Problem);

    #[derive(utoipa::IntoResponses)]
    #[response(
        status = 401,
        description = "unauthorized: missing, invalid or revoked credentials",
        content_type = "application/problem+json"
    )]
    #[expect(dead_code, reason = "documents an answer built by http::problem")]
    pub struct Unauthorized(Problem);

    #[derive(utoipa::IntoResponses)]
    #[response(
        status = 404,
        description = "not_found: no such id in this business",
        content_type = "application/problem+json"
    )]
    #[expect(dead_code, reason = "documents an answer built by http::problem")]
    pub struct NotFound(Problem);

    #[derive(utoipa::IntoResponses)]
    #[response(
        status = 409,
        description = "a refusal with the facts to act on: insufficient_stock, credit_limit_exceeded, payment_exceeds_balance, return_exceeds_purchase or idempotency_key_reused",
        content_type = "application/problem+json"
    )]
    #[expect(dead_code, reason = "documents an answer built by http::problem")]
    pub struct Refused(Problem);

    #[derive(utoipa::IntoResponses)]
    #[response(
        status = 413,
        description = "payload_too_large",
        content_type = "application/problem+json"
    )]
    #[expect(dead_code, reason = "documents an answer built by http::problem")]
    pub struct PayloadTooLarge(Problem);

    #[derive(utoipa::IntoResponses)]
    #[response(
        status = 422,
        description = "validation_failed, with errors[]",
        content_type = "application/problem+json"
    )]
    #[expect(dead_code, reason = "documents an answer built by http::problem")]
    pub struct ValidationFailed(Problem);

    #[derive(utoipa::IntoResponses)]
    #[response(
        status = 503,
        description = "unavailable: database unreachable or overloaded; safe to retry",
        content_type = "application/problem+json"
    )]
    #[expect(dead_code, reason = "documents an answer built by http::problem")]
    pub struct Unavailable(Problem);
}
