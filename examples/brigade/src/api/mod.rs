//! The REST API over the meta scheduler (JSON, axum, served by the SDK's server beside the
//! artifacts and `/metrics`): list, get, add, update, remove, start and stop processors, their
//! status, `/ready`, and the OpenAPI document at `/openapi.json`, generated from the handlers'
//! annotations ([`openapi`]). Writes go to the meta scheduler's source (files or etcd), the one
//! source of truth; the reconcile loop is woken after each.
//!
//! On a standby instance `/api/*` is proxied to the leader, or answers 307 to it for clients
//! that ask ([`standby`]).
//!
//! Errors are JSON [`ApiError`]s: 400 with every field's problem for an invalid processor,
//! 404 for an unknown processor, 409 for a conflict, 503 when this instance lost leadership
//! while writing (the write was fenced; retry), 500 when the source fails.

pub mod handlers;
pub mod openapi;
pub mod ready;
pub mod standby;

use std::sync::Arc;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::general::{FieldProblem, Shared, SourceError};

/// The API's routes over `shared`.
pub fn router(shared: Arc<Shared>) -> axum::Router {
    axum::Router::new()
        .route("/api/processors", get(handlers::list).post(handlers::add))
        .route(
            "/api/processors/{name}",
            get(handlers::get_one)
                .put(handlers::update)
                .delete(handlers::remove),
        )
        .route("/api/validate", post(handlers::validate))
        .route("/api/processors/{name}/status", get(handlers::status))
        .route("/api/processors/{name}/start", post(handlers::start))
        .route("/api/processors/{name}/stop", post(handlers::stop))
        .route("/ready", get(ready::ready))
        .route("/openapi.json", get(openapi::document))
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            standby::redirect,
        ))
        .with_state(shared)
}

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiError {
    /// What went wrong, for a person.
    pub error: String,
    /// Every problem of an invalid processor, per field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldProblem>,
    /// The HTTP status, repeated for scripts reading only the body.
    pub status: u16,
}

/// An [`ApiError`] with its status code.
#[derive(Debug)]
pub struct Failure(pub StatusCode, pub ApiError);

impl Failure {
    /// A failure without field problems.
    pub fn new(status: StatusCode, error: impl Into<String>) -> Self {
        Failure(
            status,
            ApiError {
                error: error.into(),
                errors: Vec::new(),
                status: status.as_u16(),
            },
        )
    }

    /// 404 for an unknown processor.
    pub fn unknown(name: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("no processor {name}"))
    }

    /// 400 with every field's problem.
    pub fn invalid(errors: &crate::processor::ValidationErrors) -> Self {
        let mut failure = Self::new(StatusCode::BAD_REQUEST, errors.to_string());
        failure.1.errors = errors
            .errors
            .iter()
            .map(|e| FieldProblem {
                field: e.field.clone(),
                message: e.message.clone(),
            })
            .collect();
        failure
    }
}

impl From<SourceError> for Failure {
    fn from(e: SourceError) -> Self {
        match &e {
            SourceError::Unknown(name) => Self::unknown(name),
            SourceError::Exists(_) => Self::new(StatusCode::CONFLICT, e.to_string()),
            SourceError::Unsupported(_) => Self::new(StatusCode::CONFLICT, e.to_string()),
            SourceError::Store(mesos_sdk::storage::Error::NotLeader { .. }) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not the leader any more, nothing written ({e}); retry"),
            ),
            _ => Self::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        }
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.0, Json(self.1)).into_response()
    }
}
