//! The processor handlers of the REST API (each annotated for the OpenAPI document).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use serde_json::Value;

use super::{ApiError, Failure};
use crate::general::source::{document, parse_value};
use crate::general::{Counters, Entry, FieldProblem, ProcessorStatus, Shared, State};
use crate::processor::{FieldError, ValidationErrors};

type Result<T> = std::result::Result<T, Failure>;

/// The status of `entry` before the reconcile loop has seen it.
fn fresh_status(entry: &Entry) -> ProcessorStatus {
    let (state, config, validation_errors) = match &entry.processor {
        Ok(p) => (
            if entry.stopped {
                State::Stopped
            } else {
                State::Starting
            },
            Some(document(p, false)),
            Vec::new(),
        ),
        Err(e) => (
            State::Invalid,
            None,
            e.errors
                .iter()
                .map(|e| FieldProblem {
                    field: e.field.clone(),
                    message: e.message.clone(),
                })
                .collect(),
        ),
    };
    ProcessorStatus {
        name: entry.name.clone(),
        state,
        stopped: entry.stopped,
        origin: entry.origin.clone(),
        framework_id: None,
        counters: Counters::default(),
        config,
        validation_errors,
        recent_errors: Vec::new(),
        latency: None,
        unplaced: None,
    }
}

/// Every processor: what the reconcile loop reports, plus source entries it has not seen yet.
async fn all(shared: &Shared) -> Result<Vec<ProcessorStatus>> {
    let mut statuses = shared.statuses().await;
    let entries = shared.source.list().await?;
    for (name, entry) in entries {
        let fresh = fresh_status(&entry);
        let status = statuses.entry(name).or_insert_with(|| fresh.clone());
        // What was written but not reconciled yet shows as written.
        status.stopped = fresh.stopped;
        status.origin = fresh.origin;
        status.validation_errors = fresh.validation_errors;
        if fresh.config.is_some() {
            status.config = fresh.config;
        }
    }
    Ok(statuses.into_values().collect())
}

async fn one(shared: &Shared, name: &str) -> Result<ProcessorStatus> {
    all(shared)
        .await?
        .into_iter()
        .find(|s| s.name == name)
        .ok_or_else(|| Failure::unknown(name))
}

/// Parses a request body into a processor and its stopped flag; `name` (from the path) fills
/// a missing name and must match a given one.
fn parse_body(body: &[u8], name: Option<&str>) -> Result<(crate::processor::Processor, bool)> {
    let mut value: Value = serde_json::from_slice(body).map_err(|e| {
        Failure::invalid(&ValidationErrors {
            errors: vec![FieldError {
                field: String::new(),
                message: format!("the body is not JSON: {e}"),
            }],
        })
    })?;
    if let (Some(name), Some(object)) = (name, value.as_object_mut()) {
        match object.get("name").and_then(Value::as_str) {
            None => {
                object.insert("name".into(), Value::String(name.to_string()));
            }
            Some(given) if given != name => {
                return Err(Failure::invalid(&ValidationErrors {
                    errors: vec![FieldError {
                        field: "name".into(),
                        message: format!(
                            "{given} differs from the path's {name} (renaming is remove + add)"
                        ),
                    }],
                }));
            }
            Some(_) => {}
        }
    }
    let (processor, stopped, _) = parse_value(value);
    Ok((processor.map_err(|e| Failure::invalid(&e))?, stopped))
}

/// Lists every processor with its status.
#[utoipa::path(
    get, path = "/api/processors", tag = "processors",
    responses(
        (status = 200, description = "Every processor", body = [ProcessorStatus]),
        (status = 500, description = "The source failed", body = ApiError),
    )
)]
pub async fn list(AxState(shared): AxState<Arc<Shared>>) -> Result<Json<Vec<ProcessorStatus>>> {
    Ok(Json(all(&shared).await?))
}

/// One processor with its status.
#[utoipa::path(
    get, path = "/api/processors/{name}", tag = "processors",
    params(("name" = String, Path, description = "The processor's name")),
    responses(
        (status = 200, description = "The processor", body = ProcessorStatus),
        (status = 404, description = "No such processor", body = ApiError),
    )
)]
pub async fn get_one(
    AxState(shared): AxState<Arc<Shared>>,
    Path(name): Path<String>,
) -> Result<Json<ProcessorStatus>> {
    Ok(Json(one(&shared, &name).await?))
}

/// The status of one processor (state, framework id, counters, recent errors).
#[utoipa::path(
    get, path = "/api/processors/{name}/status", tag = "processors",
    params(("name" = String, Path, description = "The processor's name")),
    responses(
        (status = 200, description = "Its status", body = ProcessorStatus),
        (status = 404, description = "No such processor", body = ApiError),
    )
)]
pub async fn status(
    AxState(shared): AxState<Arc<Shared>>,
    Path(name): Path<String>,
) -> Result<Json<ProcessorStatus>> {
    Ok(Json(one(&shared, &name).await?))
}

/// Adds a processor (its JSON document; `"stopped": true` adds it stopped).
#[utoipa::path(
    post, path = "/api/processors", tag = "processors",
    request_body(content = Object, description = "The processor's JSON", content_type = "application/json"),
    responses(
        (status = 201, description = "Added; it starts shortly", body = ProcessorStatus),
        (status = 400, description = "Invalid processor, every problem per field", body = ApiError),
        (status = 409, description = "A processor of that name exists", body = ApiError),
    )
)]
pub async fn add(
    AxState(shared): AxState<Arc<Shared>>,
    body: Bytes,
) -> Result<(StatusCode, Json<ProcessorStatus>)> {
    let (processor, stopped) = parse_body(&body, None)?;
    shared.source.put(&processor, stopped, true).await?;
    shared.wake.notify_one();
    tracing::info!(processor = %processor.name(), "added through the API");
    Ok((
        StatusCode::CREATED,
        Json(one(&shared, processor.name()).await?),
    ))
}

/// Replaces a processor's configuration (it drains and restarts with it).
#[utoipa::path(
    put, path = "/api/processors/{name}", tag = "processors",
    params(("name" = String, Path, description = "The processor's name")),
    request_body(content = Object, description = "The processor's JSON", content_type = "application/json"),
    responses(
        (status = 200, description = "Updated", body = ProcessorStatus),
        (status = 400, description = "Invalid processor, every problem per field", body = ApiError),
        (status = 404, description = "No such processor", body = ApiError),
    )
)]
pub async fn update(
    AxState(shared): AxState<Arc<Shared>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<ProcessorStatus>> {
    let (processor, stopped) = parse_body(&body, Some(&name))?;
    // Keep the stopped flag unless the body sets it.
    let stopped = stopped || current_stopped(&shared, &name).await?;
    shared.source.put(&processor, stopped, false).await?;
    shared.wake.notify_one();
    tracing::info!(processor = %name, "updated through the API");
    Ok(Json(one(&shared, &name).await?))
}

async fn current_stopped(shared: &Shared, name: &str) -> Result<bool> {
    let entries = shared.source.list().await?;
    entries
        .get(name)
        .map(|e| e.stopped)
        .ok_or_else(|| Failure::unknown(name))
}

/// Removes a processor (it drains and stops).
#[utoipa::path(
    delete, path = "/api/processors/{name}", tag = "processors",
    params(("name" = String, Path, description = "The processor's name")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such processor", body = ApiError),
    )
)]
pub async fn remove(
    AxState(shared): AxState<Arc<Shared>>,
    Path(name): Path<String>,
) -> Result<StatusCode> {
    shared.source.remove(&name).await?;
    shared.wake.notify_one();
    tracing::info!(processor = %name, "removed through the API");
    Ok(StatusCode::NO_CONTENT)
}

async fn set_stopped(shared: &Shared, name: &str, stopped: bool) -> Result<Json<ProcessorStatus>> {
    let entries = shared.source.list().await?;
    let entry = entries.get(name).ok_or_else(|| Failure::unknown(name))?;
    let processor = entry.processor.as_ref().map_err(|e| {
        Failure::new(
            StatusCode::CONFLICT,
            format!("{name} is invalid; fix its document first ({e})"),
        )
    })?;
    if entry.stopped != stopped {
        shared.source.put(processor, stopped, false).await?;
        shared.wake.notify_one();
        tracing::info!(processor = %name, stopped, "stop flag set through the API");
    }
    Ok(Json(one(shared, name).await?))
}

/// Starts a stopped processor.
#[utoipa::path(
    post, path = "/api/processors/{name}/start", tag = "processors",
    params(("name" = String, Path, description = "The processor's name")),
    responses(
        (status = 200, description = "Marked to run", body = ProcessorStatus),
        (status = 404, description = "No such processor", body = ApiError),
        (status = 409, description = "Its document is invalid", body = ApiError),
    )
)]
pub async fn start(
    AxState(shared): AxState<Arc<Shared>>,
    Path(name): Path<String>,
) -> Result<Json<ProcessorStatus>> {
    set_stopped(&shared, &name, false).await
}

/// Stops a processor without removing it (it drains; the stop is persisted).
#[utoipa::path(
    post, path = "/api/processors/{name}/stop", tag = "processors",
    params(("name" = String, Path, description = "The processor's name")),
    responses(
        (status = 200, description = "Marked stopped", body = ProcessorStatus),
        (status = 404, description = "No such processor", body = ApiError),
        (status = 409, description = "Its document is invalid", body = ApiError),
    )
)]
pub async fn stop(
    AxState(shared): AxState<Arc<Shared>>,
    Path(name): Path<String>,
) -> Result<Json<ProcessorStatus>> {
    set_stopped(&shared, &name, true).await
}

/// The answer of `POST /api/validate`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Validation {
    /// Whether the document is a valid processor.
    pub valid: bool,
    /// Every problem, per field.
    pub errors: Vec<FieldProblem>,
}

/// Validates a processor document without writing it (200 either way: the UI checks a form
/// with it before saving).
#[utoipa::path(
    post, path = "/api/validate", tag = "processors",
    request_body(content = Object, description = "The processor's JSON", content_type = "application/json"),
    responses((status = 200, description = "The verdict, with every problem per field", body = Validation))
)]
pub async fn validate(body: Bytes) -> Json<Validation> {
    match parse_body(&body, None) {
        Ok(_) => Json(Validation {
            valid: true,
            errors: Vec::new(),
        }),
        Err(Failure(_, error)) => Json(Validation {
            valid: false,
            errors: if error.errors.is_empty() {
                vec![FieldProblem {
                    field: String::new(),
                    message: error.error,
                }]
            } else {
                error.errors
            },
        }),
    }
}
