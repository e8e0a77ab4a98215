//! The server's router: `/health`, `/metrics`, `/state`, `/artifacts/<name>`, then the routes the
//! framework adds (as the fallback, so they can never shadow the built-in ones, and a path that
//! nobody serves gets 404).
//!
//! An artifact is looked up by the raw (still percent-encoded) last segment of the request path,
//! and only a registered name matches: `..`, `%2e%2e`, `%2F`, absolute paths and unknown names
//! all get 404, and no request path ever reaches the file system.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, Response, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use super::artifacts::{ARTIFACT_PREFIX, Artifacts, is_valid_name};
use super::metrics::{ArtifactLabels, ArtifactName, Metrics, OPENMETRICS_CONTENT_TYPE};
use super::serve::{not_found, respond};
use super::state::StateProvider;

/// What the built-in routes share.
#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) artifacts: Artifacts,
    pub(crate) metrics: Metrics,
    pub(crate) state: Option<Arc<dyn StateProvider>>,
}

/// The complete router.
pub(crate) fn router(shared: Shared, user: Option<Router>) -> Router {
    let builtin = Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/state", get(state))
        .route("/artifacts/{name}", get(artifact).head(artifact))
        .with_state(shared);
    match user {
        Some(user) => builtin.fallback_service(user),
        None => builtin.fallback(|| async { not_found() }),
    }
}

async fn health() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "ok\n",
    )
}

async fn metrics(State(shared): State<Shared>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)],
        shared.metrics.encode(),
    )
}

async fn state(State(shared): State<Shared>) -> Response<Body> {
    match shared.state {
        Some(provider) => axum::Json(provider.state()).into_response(),
        None => not_found(),
    }
}

async fn artifact(State(shared): State<Shared>, request: Request) -> Response<Body> {
    let raw = request
        .uri()
        .path()
        .strip_prefix(ARTIFACT_PREFIX)
        .unwrap_or_default();
    let found = is_valid_name(raw)
        .then(|| shared.artifacts.get(raw))
        .flatten();
    let Some(artifact) = found else {
        tracing::debug!(path = request.uri().path(), "artifact not found");
        count(&shared.metrics, "unknown", StatusCode::NOT_FOUND, 0);
        return not_found();
    };
    let method = request.method().clone();
    let response = respond(&artifact, &method, request.headers());
    let sent = if method == Method::GET {
        response
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    } else {
        0
    };
    tracing::debug!(
        name = artifact.name(),
        %method,
        status = response.status().as_u16(),
        bytes = sent,
        "artifact request"
    );
    count(&shared.metrics, artifact.name(), response.status(), sent);
    response
}

fn count(metrics: &Metrics, artifact: &str, status: StatusCode, bytes: u64) {
    metrics
        .artifact_requests
        .get_or_create(&ArtifactLabels {
            artifact: artifact.to_string(),
            status: status.as_u16(),
        })
        .inc();
    if bytes > 0 {
        metrics
            .artifact_bytes
            .get_or_create(&ArtifactName {
                artifact: artifact.to_string(),
            })
            .inc_by(bytes);
    }
}
