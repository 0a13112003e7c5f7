//! `POST /v1/purchases`: several lines bought on credit, all or nothing.

use super::openapi::IdempotencyKeyParam;
use super::openapi::problems::{
    Malformed, NotFound, PayloadTooLarge, Refused, Unauthorized, Unavailable, ValidationFailed,
};
use crate::db::orders::Order;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use uuid::Uuid;

use super::auth::Tenant;
use super::idempotent::{Answer, Command, reply_response, run_once};
use super::request::{Body, idempotency_key};
use super::{ApiError, AppState, metrics, to_json};
use crate::db::{TenantTx, purchase};
use crate::domain::{Lines, Refusal};

#[derive(utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LineRequest {
    pub product_id: Uuid,
    /// > 0. Lines of the same product are added together.
    #[schema(minimum = 1)]
    pub quantity: i64,
}

/// A line's fields as they must be sent: a JSON object.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LineFields {
    product_id: Uuid,
    quantity: i64,
}

/// Only a JSON object is a line: serde's derive would also read a struct
/// from an array of its fields in order (`["<uuid>", 2]`), which the
/// contract calls malformed.
impl<'de> Deserialize<'de> for LineRequest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let object = serde_json::Map::<String, serde_json::Value>::deserialize(deserializer)?;
        let line: LineFields = serde_json::from_value(serde_json::Value::Object(object))
            .map_err(serde::de::Error::custom)?;
        Ok(Self {
            product_id: line.product_id,
            quantity: line.quantity,
        })
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurchaseRequest {
    pub customer_id: Uuid,
    /// 1..=100 lines.
    #[schema(min_items = 1, max_items = 100)]
    pub items: Vec<LineRequest>,
}

/// The request's lines, merged per product and checked.
pub fn parse_lines(items: &[LineRequest]) -> Result<Lines, ApiError> {
    let raw: Vec<(Uuid, i64)> = items
        .iter()
        .map(|line| (line.product_id, line.quantity))
        .collect();
    Ok(Lines::parse("items", &raw)?)
}

#[utoipa::path(
    post,
    path = "/v1/purchases",
    tag = "purchases",
    summary = "Buy on credit: all lines or nothing",
    request_body = PurchaseRequest,
    params(IdempotencyKeyParam),
    responses(
        (status = 201, body = Order),
        Malformed,
        Unauthorized,
        NotFound,
        Refused,
        PayloadTooLarge,
        ValidationFailed,
        Unavailable
    ),
    security(("api_key" = []))
)]
pub async fn create(
    State(app): State<AppState>,
    tenant: Tenant,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let purchase = Purchase(body.parse()?);
    let key = idempotency_key(&headers)?;
    let fingerprint = body.fingerprint(&purchase.route());
    // Invalid lines take the ordinary path, which records the 422 under the
    // key like any definitive answer.
    match (&app.batcher, parse_lines(&purchase.0.items)) {
        (Some(batcher), Ok(lines)) => reply_response(
            batcher
                .submit(&tenant, key, fingerprint, purchase, lines)
                .await,
        ),
        _ => run_once(&app.db, &tenant, key, fingerprint, &purchase).await,
    }
}

pub struct Purchase(PurchaseRequest);

impl Purchase {
    pub fn customer_id(&self) -> Uuid {
        self.0.customer_id
    }
}

/// A purchase's outcome as an answer: 201 with the order, or the refusal.
pub fn purchase_answer(outcome: Result<Order, Refusal>) -> Result<Answer, ApiError> {
    match outcome {
        Ok(order) => Ok((StatusCode::CREATED, to_json(&order)?)),
        Err(refusal) => Err(ApiError::from(refusal)),
    }
}

/// A purchase's outcome as counted in the metrics: `created` or the
/// refusal's code.
pub fn outcome_code(answer: &Result<Answer, ApiError>) -> &'static str {
    match answer {
        Ok(_) => "created",
        Err(error) => error.code(),
    }
}

impl Command for Purchase {
    fn route(&self) -> String {
        "POST /v1/purchases".to_owned()
    }

    async fn execute(&self, tx: &TenantTx) -> Result<Answer, ApiError> {
        let lines = parse_lines(&self.0.items)?;
        let answer = purchase_answer(purchase::execute(tx, self.0.customer_id, &lines).await?);
        metrics::purchase_outcome(outcome_code(&answer));
        answer
    }
}
