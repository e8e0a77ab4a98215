//! On a standby instance (see [`crate::general::ha`]), API requests are redirected to the
//! leader with 307 (method and body kept), or answered 503 while no leader is known.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::{Request, State as AxState};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::Failure;
use crate::general::Shared;

/// The middleware: passes requests through on the leader, redirects `/api/*` on a standby.
pub async fn redirect(
    AxState(shared): AxState<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    if shared.leader.load(Ordering::SeqCst) || !request.uri().path().starts_with("/api/") {
        return next.run(request).await;
    }
    let leader = shared.leader_url.lock().ok().and_then(|l| l.clone());
    match leader {
        Some(base) => {
            let path = request
                .uri()
                .path_and_query()
                .map(|p| p.as_str().to_string())
                .unwrap_or_default();
            let location = format!("{}{path}", base.trim_end_matches('/'));
            (
                StatusCode::TEMPORARY_REDIRECT,
                [(header::LOCATION, location)],
            )
                .into_response()
        }
        None => Failure::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no leader elected yet; retry shortly",
        )
        .into_response(),
    }
}
