//! The OpenAPI 3 document of the REST API, generated from the handlers' annotations with
//! `utoipa` and served at `GET /openapi.json`.

use axum::Json;
use utoipa::OpenApi;

use super::{ApiError, handlers, ready};
use crate::general::{Counters, FieldProblem, ProcessorStatus, RecentError, State};

/// The API's OpenAPI description.
#[derive(OpenApi)]
#[openapi(
    info(title = "Brigade", description = "The REST API of Brigade's meta scheduler"),
    paths(
        handlers::list,
        handlers::get_one,
        handlers::status,
        handlers::add,
        handlers::update,
        handlers::remove,
        handlers::start,
        handlers::stop,
        handlers::validate,
        ready::ready,
    ),
    components(schemas(handlers::Validation, ProcessorStatus, crate::pipeline::LatencySummary, State, Counters, FieldProblem, RecentError, ApiError, ready::Readiness)),
    tags(
        (name = "processors", description = "Processors and their status"),
        (name = "health", description = "Readiness"),
    )
)]
pub struct ApiDoc;

/// The document as JSON.
pub fn json() -> serde_json::Value {
    serde_json::to_value(ApiDoc::openapi()).unwrap_or(serde_json::Value::Null)
}

/// `GET /openapi.json`.
pub async fn document() -> Json<serde_json::Value> {
    Json(json())
}
