//! `POST /v1/purchases`: several lines bought on credit, all or nothing.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use uuid::Uuid;

use super::HttpState;
use super::auth::Tenant;
use super::deadline::RequestDeadline;
use super::idempotent::{Answer, Keyed, once, respond};
use super::openapi::IdempotencyKeyParam;
use super::problem::Problem;
use super::request::{Body, DerivedObjects, WireInt};
use super::views::Order;
use crate::app::purchases::{self, Purchase};
use crate::domain::records;

/// One line: a product and how many of it.
// `serde(deny_unknown_fields)` here only tells the schema (the hand-written
// Deserialize below reads through LineFields, which refuses them): without
// it the document allowed extra members that the server answers with 400.
#[derive(utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LineRequest {
    pub product_id: Uuid,
    /// Lines of the same product are added together.
    #[schema(schema_with = super::openapi::positive)]
    pub quantity: WireInt,
}

/// A line's fields as they must be sent: a JSON object.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LineFields {
    product_id: Uuid,
    quantity: WireInt,
}

/// Only a JSON object is a line: serde's derive would also read a struct
/// from an array of its fields in order (`["<uuid>", 2]`), which the
/// contract calls malformed. The object's members are read straight into
/// `LineFields` (through a map visitor, not via an intermediate
/// `serde_json::Map`, which cost an allocation per key and value).
impl<'de> Deserialize<'de> for LineRequest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let line = deserializer.deserialize_map(LineVisitor)?;
        Ok(Self {
            product_id: line.product_id,
            quantity: line.quantity,
        })
    }
}

struct LineVisitor;

impl<'de> serde::de::Visitor<'de> for LineVisitor {
    type Value = LineFields;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a map")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<LineFields, A::Error> {
        LineFields::deserialize(serde::de::value::MapAccessDeserializer::new(map))
    }
}

/// The lines as the use cases take them.
pub fn raw_lines(items: &[LineRequest]) -> Vec<(Uuid, i128)> {
    items
        .iter()
        .map(|line| (line.product_id, line.quantity.0))
        .collect()
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurchaseRequest {
    pub customer_id: Uuid,
    /// 1..=100 lines.
    #[schema(min_items = 1, max_items = 100)]
    pub items: Vec<LineRequest>,
}

// Both objects are read by the derive: the request's, and each line's
// through `LineVisitor` into `LineFields`.
impl DerivedObjects for PurchaseRequest {}

impl Answer for records::Order {
    const STATUS: StatusCode = StatusCode::CREATED;
    type View = Order;
}

#[utoipa::path(
    post,
    path = "/v1/purchases",
    operation_id = "createPurchase",
    description = "Buys several lines on credit in one atomic operation: stock goes down, an immutable order is written at today's prices, and the customer's ledger grows; on any refusal nothing at all is written. Accepts an Idempotency-Key.",
    tag = "purchases",
    summary = "Buy on credit: all lines or nothing",
    request_body = PurchaseRequest,
    params(IdempotencyKeyParam),
    responses((status = 201, description = "The order: every line bought at today's price", body = Order)),
    security(("api_key" = []))
)]
pub async fn create(
    State(http): State<HttpState>,
    Tenant(tenant): Tenant,
    RequestDeadline(deadline): RequestDeadline,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let prepared = body
        .parse_derived::<PurchaseRequest>()
        .and_then(|request| Purchase::parse(request.customer_id, &raw_lines(&request.items)));
    let Keyed {
        key,
        fingerprint,
        input,
    } = Keyed::new(&headers, &body, "POST /v1/purchases", prepared)?;
    let once = once::<records::Order>(&key, &fingerprint);
    respond(match input {
        Ok(purchase) => purchases::buy(&http.app, &tenant, deadline, &once, purchase).await,
        Err(error) => http.app.refuse_once(&tenant, deadline, &once, error).await,
    })
}
