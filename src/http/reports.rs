//! `GET /v1/reports/overdue` (being written).

use axum::response::Response;

use super::ApiError;

pub async fn overdue() -> Result<Response, ApiError> {
    Err(ApiError::NotFound("not implemented yet".to_owned()))
}
