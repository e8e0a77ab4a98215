//! The fault-injection control endpoint under `/__local/` (no part of Mesos; mounted only with
//! [`super::MasterConfig::fault_injection`], the `mesos-local --fault-injection` flag). Every
//! call is a `POST` answering 200 with a small JSON object, 404 `404 Not Found.` for an unknown
//! agent or executor, 400 for bad parameters:
//!
//! - `/__local/agents/{agent_id}/partition[?seconds=S]`: cut the agent off (healing by itself
//!   after `S` seconds when given); see [`super::MasterHandle::partition_agent`].
//! - `/__local/agents/{agent_id}/heal`: end the partition; see
//!   [`super::MasterHandle::heal_agent`].
//! - `/__local/agents/{agent_id}/crash`: stop the agent as if its process were killed; see
//!   [`super::MasterHandle::crash_agent`].
//! - `/__local/frameworks/{framework_id}/executors/{executor_id}/kill`: SIGKILL an executor; see
//!   [`super::MasterHandle::kill_executor`].
//! - `/__local/offers/rescind`: rescind every outstanding offer (answers `{"rescinded": N}`).
//! - `/__local/acknowledgements?mode=deliver|drop|delay[&seconds=S]`: what happens to later
//!   status update acknowledgements; see [`super::AckFault`].

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use axum::routing::post;
use http::{HeaderValue, StatusCode, header};

use super::state::{AckFault, Shared};
use crate::server::v1::text;

pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/__local/agents/{agent_id}/partition", post(partition))
        .route("/__local/agents/{agent_id}/heal", post(heal))
        .route("/__local/agents/{agent_id}/crash", post(crash))
        .route(
            "/__local/frameworks/{framework_id}/executors/{executor_id}/kill",
            post(kill_executor),
        )
        .route("/__local/offers/rescind", post(rescind))
        .route("/__local/acknowledgements", post(acknowledgements))
        .with_state(shared)
}

fn json(value: serde_json::Value) -> Response {
    let mut response = Response::new(Body::from(value.to_string()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn not_found() -> Response {
    text(StatusCode::NOT_FOUND, "404 Not Found.")
}

/// The value of `name` in a query string (no percent-decoding: the values are plain words and
/// numbers).
fn query_param<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// `seconds` as a duration: `Ok(None)` when absent, `Err` with the 400 answer when invalid.
fn seconds(query: Option<&str>) -> Result<Option<Duration>, Box<Response>> {
    let Some(value) = query_param(query, "seconds") else {
        return Ok(None);
    };
    value
        .parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .map(Some)
        .ok_or_else(|| {
            Box::new(text(
                StatusCode::BAD_REQUEST,
                format!("'seconds' must be a non-negative number of seconds, not '{value}'"),
            ))
        })
}

async fn partition(
    State(shared): State<Arc<Shared>>,
    Path(agent_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let heal_after = match seconds(query.as_deref()) {
        Ok(heal_after) => heal_after,
        Err(response) => return *response,
    };
    if shared.lock().partition_agent(&agent_id, heal_after) {
        json(serde_json::json!({"partitioned": agent_id}))
    } else {
        not_found()
    }
}

async fn heal(State(shared): State<Arc<Shared>>, Path(agent_id): Path<String>) -> Response {
    if shared.lock().heal_agent(&agent_id) {
        json(serde_json::json!({"healed": agent_id}))
    } else {
        not_found()
    }
}

async fn crash(State(shared): State<Arc<Shared>>, Path(agent_id): Path<String>) -> Response {
    if shared.lock().crash_agent(&agent_id) {
        json(serde_json::json!({"crashed": agent_id}))
    } else {
        not_found()
    }
}

async fn kill_executor(
    State(shared): State<Arc<Shared>>,
    Path((framework_id, executor_id)): Path<(String, String)>,
) -> Response {
    if shared.lock().kill_executor(&framework_id, &executor_id) {
        json(serde_json::json!({"killed": executor_id}))
    } else {
        not_found()
    }
}

async fn rescind(State(shared): State<Arc<Shared>>) -> Response {
    let rescinded = shared.lock().rescind_all_offers();
    json(serde_json::json!({"rescinded": rescinded}))
}

async fn acknowledgements(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
) -> Response {
    let fault = match query_param(query.as_deref(), "mode") {
        Some("deliver") => AckFault::None,
        Some("drop") => AckFault::Drop,
        Some("delay") => match seconds(query.as_deref()) {
            Ok(Some(delay)) => AckFault::Delay(delay),
            Ok(None) => {
                return text(StatusCode::BAD_REQUEST, "'mode=delay' needs 'seconds'");
            }
            Err(response) => return *response,
        },
        _ => {
            return text(
                StatusCode::BAD_REQUEST,
                "'mode' must be one of deliver, drop, delay",
            );
        }
    };
    shared.lock().set_ack_fault(fault);
    json(serde_json::json!({"acknowledgements": query_param(query.as_deref(), "mode")}))
}
