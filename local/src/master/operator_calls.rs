//! Operator API calls that change the cluster beyond the read-only views of `http`: agent
//! removal (MARK_AGENT_GONE). The operator endpoint hands a decoded call here first; `None`
//! means the call is not one of these.

use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};
use mesos_sdk::codec::Format;
use mesos_sdk::v1::master::{Call, call};
use prost::Message;

use super::state::Shared;
use crate::server::v1::{empty, text};

/// Answers the operator calls this file implements; `None` for every other call.
pub(super) fn answer(shared: &Shared, call: &Call, format: Format) -> Option<Response> {
    let kind = call.r#type.and_then(|t| call::Type::try_from(t).ok())?;
    match kind {
        call::Type::MarkAgentGone => {
            let Some(gone) = &call.mark_agent_gone else {
                return Some(invalid("Expecting 'mark_agent_gone' to be present"));
            };
            Some(match shared.lock().mark_agent_gone(&gone.agent_id.value) {
                Ok(()) => empty(StatusCode::OK),
                Err(message) => text(StatusCode::NOT_FOUND, message),
            })
        }
        _ => {
            let _ = format;
            None
        }
    }
}

/// 400 with Mesos' prefix for operator call validation errors.
pub(super) fn invalid(message: &str) -> Response {
    text(
        StatusCode::BAD_REQUEST,
        format!("Failed to validate master::Call: {message}"),
    )
}

/// 200 with `message` encoded in `format`.
pub(super) fn encoded<M: Message + prost::Name>(format: Format, message: &M) -> Response {
    match format.encode(message) {
        Ok(bytes) => {
            let mut out = Response::new(Body::from(bytes));
            out.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(format.content_type()),
            );
            out
        }
        Err(error) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("Failed to encode response: {error}"),
        ),
    }
}
