//! On a standby instance (see [`crate::general::ha`]) API requests go to the leader, so that
//! the UI served by any instance and `curl` users both just work:
//!
//! - By default the standby *proxies* `/api/*`: it sends the request (method, path and query,
//!   body, `content-type` and `accept`) to the leader and answers the leader's status, type
//!   and body, with `x-brigade-leader` naming the leader. A browser thus never leaves the
//!   origin it loaded the UI from (no cross-origin request, no CORS).
//! - A client that sends `x-brigade-redirect: 1` gets the former answer instead: 307 to the
//!   same path on the leader (method and body kept), for clients that rather talk to the
//!   leader directly.
//! - 503 while no leader is known; 502 when the leader does not answer. A request that
//!   already went through a proxy (`x-brigade-proxied`) is never forwarded again (503), so
//!   that a stale leader address cannot make instances forward to each other in a loop.

use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State as AxState};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::Failure;
use crate::general::Shared;

/// The request header asking for a 307 instead of the proxy.
pub const REDIRECT_HEADER: &str = "x-brigade-redirect";
/// The header a proxied request carries (the standby's loop guard).
pub const PROXIED_HEADER: &str = "x-brigade-proxied";
/// The response header naming the leader that answered a proxied request.
pub const LEADER_HEADER: &str = "x-brigade-leader";
/// The largest request body a standby forwards.
pub const MAX_PROXIED_BODY: usize = 1 << 20;
/// How long the leader may take to answer a proxied request.
pub const PROXY_TIMEOUT: Duration = Duration::from_secs(30);

fn http() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(PROXY_TIMEOUT)
            .build()
            .unwrap_or_default()
    })
}

/// The middleware: passes requests through on the leader and outside `/api/`; on a standby
/// proxies `/api/*` to the leader (or redirects, when asked).
pub async fn redirect(
    AxState(shared): AxState<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    if shared.leader.load(Ordering::SeqCst) || !request.uri().path().starts_with("/api/") {
        return next.run(request).await;
    }
    let leader = shared.leader_url.lock().ok().and_then(|l| l.clone());
    let Some(base) = leader else {
        return Failure::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no leader elected yet; retry shortly",
        )
        .into_response();
    };
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let location = format!("{}{path}", base.trim_end_matches('/'));
    if request.headers().contains_key(REDIRECT_HEADER) {
        return (
            StatusCode::TEMPORARY_REDIRECT,
            [(header::LOCATION, location)],
        )
            .into_response();
    }
    if request.headers().contains_key(PROXIED_HEADER) {
        return Failure::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "a proxied request reached another standby (the leader is changing); retry shortly",
        )
        .into_response();
    }
    proxy(request, &base, location).await
}

/// Sends `request` to `location` on the leader at `base` and answers what the leader answered.
async fn proxy(request: Request, base: &str, location: String) -> Response {
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, MAX_PROXIED_BODY).await {
        Ok(body) => body,
        Err(e) => {
            return Failure::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body unreadable or over {MAX_PROXIED_BODY} bytes: {e}"),
            )
            .into_response();
        }
    };
    let mut forwarded = http()
        .request(parts.method.clone(), &location)
        .header(PROXIED_HEADER, "1")
        .body(body);
    for name in [header::CONTENT_TYPE, header::ACCEPT] {
        if let Some(value) = parts.headers.get(&name) {
            forwarded = forwarded.header(name, value.clone());
        }
    }
    let answer = match forwarded.send().await {
        Ok(answer) => answer,
        Err(e) => {
            tracing::warn!(leader = %base, error = %e, "proxying to the leader failed");
            return Failure::new(
                StatusCode::BAD_GATEWAY,
                format!("the leader at {base} did not answer: {e}"),
            )
            .into_response();
        }
    };
    let status = answer.status();
    let mut headers = HeaderMap::new();
    for name in [header::CONTENT_TYPE, header::LOCATION] {
        if let Some(value) = answer.headers().get(&name) {
            headers.insert(name, value.clone());
        }
    }
    if let Ok(value) = HeaderValue::from_str(base) {
        headers.insert(HeaderName::from_static(LEADER_HEADER), value);
    }
    match answer.bytes().await {
        Ok(bytes) => (status, headers, Body::from(bytes)).into_response(),
        Err(e) => Failure::new(
            StatusCode::BAD_GATEWAY,
            format!("the leader at {base} answered {status} but its body failed: {e}"),
        )
        .into_response(),
    }
}
