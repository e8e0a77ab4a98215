//! The checks Mesos 1.12 makes on a V1 call before it reaches the master or agent, shared by the
//! master's `/api/v1/scheduler` and `/api/v1` and the agent's `/api/v1/executor` so that they
//! validate alike, with Mesos' status codes and texts (`text/plain; charset=utf-8`):
//! - 405 `405 Method Not Allowed. Expecting one of { 'POST' }, but received '<method>'.` with
//!   `Allow`;
//! - 400 `Expecting 'Content-Type' to be present`; 415 `Expecting 'Content-Type' of
//!   application/json or application/x-protobuf` for anything but the two exact media types;
//! - 400 `Failed to parse body into JSON: <error>` for text that is not JSON, `Failed to convert
//!   JSON into <Name> protobuf: <error>` for JSON that does not fit (`Missing required fields:
//!   a, b` among them), `Failed to parse body into <Name> protobuf` for undecodable protobuf,
//!   which includes protobuf lacking required fields (Mesos' parser rejects those);
//! - 406 `Expecting 'Accept' to allow 'application/x-protobuf' or 'application/json'` when a
//!   streaming call's `Accept` allows neither format.
//!
//! Besides Mesos' checks, each body is bounded in size and time ([`HttpLimits`]): 413 `Request
//! body is larger than <n> bytes` (from `Content-Length` before anything is read, or once the
//! limit is crossed), 408 `Request body not received within <duration>`. Mesos sets no such
//! limit; these answers are this crate's. Bodies above
//! [`HttpLimits::blocking_decode_threshold`] are decoded on the blocking pool, at most
//! [`super::MAX_LARGE_DECODES`] at once.

use std::fmt::Display;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use tokio::sync::Semaphore;

use super::{HttpLimits, MAX_LARGE_DECODES};
use mesos_sdk::codec::{CodecError, Format, JSON_CONTENT_TYPE, PROTOBUF_CONTENT_TYPE};

/// Media type of error texts.
pub(crate) const TEXT_PLAIN: &str = "text/plain; charset=utf-8";

/// A response with a plain-text body.
pub(crate) fn text(status: StatusCode, body: impl Into<String>) -> Response {
    let mut response = Response::new(Body::from(body.into()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(TEXT_PLAIN));
    response
}

/// A response with an empty body and `Content-Length: 0` (what Mesos sends for 202 and 200).
pub(crate) fn empty(status: StatusCode) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    response
}

/// 404 for an unknown path, as Mesos answers it (`404 Not Found.`, plain text).
pub(crate) async fn not_found() -> Response {
    text(StatusCode::NOT_FOUND, "404 Not Found.")
}

/// 501 for a call this server does not implement, as Mesos answers it (`501 Not Implemented.`,
/// plain text).
pub(crate) fn not_implemented() -> Response {
    text(StatusCode::NOT_IMPLEMENTED, "501 Not Implemented.")
}

/// 405 with the methods allowed, in Mesos' words.
pub(crate) fn method_not_allowed(allowed: &[&str], method: &Method) -> Response {
    let listed: Vec<String> = allowed.iter().map(|m| format!("'{m}'")).collect();
    let mut response = text(
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "405 Method Not Allowed. Expecting one of {{ {} }}, but received '{method}'.",
            listed.join(", ")
        ),
    );
    if let Ok(value) = HeaderValue::from_str(&allowed.join(", ")) {
        response.headers_mut().insert(header::ALLOW, value);
    }
    response
}

/// The `Accept` header of a request as one value (repeated headers joined with commas), as
/// [`Format::from_accept`] reads it; `None` when there is none.
pub(crate) fn accept_header(headers: &HeaderMap) -> Option<String> {
    let values: Vec<&str> = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .collect();
    (!values.is_empty()).then(|| values.join(","))
}

/// The event format a streaming call's `Accept` asks for, or the 406 answer.
pub(crate) fn event_format(headers: &HeaderMap) -> Result<Format, Box<Response>> {
    Format::from_accept(accept_header(headers).as_deref()).ok_or_else(|| {
        Box::new(text(
            StatusCode::NOT_ACCEPTABLE,
            format!(
                "Expecting 'Accept' to allow '{PROTOBUF_CONTENT_TYPE}' or '{JSON_CONTENT_TYPE}'"
            ),
        ))
    })
}

/// The body format named by `Content-Type`, or Mesos' 400 / 415 answer.
pub(crate) fn content_format(headers: &HeaderMap) -> Result<Format, Box<Response>> {
    let Some(content_type) = headers.get(header::CONTENT_TYPE) else {
        return Err(Box::new(text(
            StatusCode::BAD_REQUEST,
            "Expecting 'Content-Type' to be present",
        )));
    };
    content_type
        .to_str()
        .ok()
        .and_then(Format::from_content_type)
        .ok_or_else(|| {
            Box::new(text(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "Expecting 'Content-Type' of {JSON_CONTENT_TYPE} or {PROTOBUF_CONTENT_TYPE}"
                ),
            ))
        })
}

fn too_large(limit: usize) -> Box<Response> {
    Box::new(text(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("Request body is larger than {limit} bytes"),
    ))
}

/// Reads a call's body within [`HttpLimits::max_call_body`] and
/// [`HttpLimits::body_read_timeout`]; a `Content-Length` above the limit is refused before
/// anything is read.
pub(crate) async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limits: &HttpLimits,
) -> Result<Bytes, Box<Response>> {
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if announced.is_some_and(|length| length > limits.max_call_body as u64) {
        return Err(too_large(limits.max_call_body));
    }
    let collect = Limited::new(body, limits.max_call_body).collect();
    match tokio::time::timeout(limits.body_read_timeout, collect).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(err)) if err.is::<LengthLimitError>() => Err(too_large(limits.max_call_body)),
        Ok(Err(err)) => Err(Box::new(text(
            StatusCode::BAD_REQUEST,
            format!("Failed to read the body: {err}"),
        ))),
        Err(_) => Err(Box::new(text(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "Request body not received within {}",
                mesos_sdk::duration::format_duration(limits.body_read_timeout)
            ),
        ))),
    }
}

/// Why a body did not decode, with Mesos' text for it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DecodeFailure {
    /// Not protobuf of the message (or lacking its required fields).
    #[error("Failed to parse body into {0} protobuf")]
    Protobuf(&'static str),
    /// Not JSON at all.
    #[error("Failed to parse body into JSON: {0}")]
    NotJson(String),
    /// JSON that does not fit the message.
    #[error("Failed to convert JSON into {name} protobuf: {detail}")]
    Json {
        /// The message name (`Call`).
        name: &'static str,
        /// What does not fit.
        detail: String,
    },
}

/// Decodes `body` as `M` in `format` the way Mesos parses a request (required fields checked in
/// both formats). `name` is the message's short name in the texts (`Call`).
pub(crate) fn decode<M>(format: Format, body: &[u8], name: &'static str) -> Result<M, DecodeFailure>
where
    M: prost::Message + prost::Name + Default,
{
    match format {
        Format::Protobuf => Format::Protobuf
            .decode_checked::<M>(body)
            .map_err(|_| DecodeFailure::Protobuf(name)),
        Format::Json => Format::Json.decode::<M>(body).map_err(|error| {
            // Only a failed decode pays for a second parse, to tell bad JSON from a bad message.
            if let Err(syntax) = serde_json::from_slice::<serde::de::IgnoredAny>(body) {
                return DecodeFailure::NotJson(stout_syntax_error(body, &syntax));
            }
            if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
                return DecodeFailure::Json {
                    name,
                    detail: "Expecting a JSON object".to_string(),
                };
            }
            let detail = match error {
                CodecError::Json(message) => stout_detail(&message),
                other => other.to_string(),
            };
            DecodeFailure::Json { name, detail }
        }),
    }
}

/// stout's (picojson's) text for JSON that does not parse: `syntax error at line <n> near:
/// <the rest of that line from where parsing stopped>` (nothing after `near: ` at the end of the
/// input; control characters dropped).
fn stout_syntax_error(body: &[u8], error: &serde_json::Error) -> String {
    let line = error.line().max(1);
    let rest = if error.classify() == serde_json::error::Category::Eof {
        &[][..]
    } else {
        // serde_json's column is 1-based and points at the offending byte of `line`.
        let line_start = body
            .split_inclusive(|b| *b == b'\n')
            .take(line - 1)
            .map(<[u8]>::len)
            .sum::<usize>();
        let at = (line_start + error.column().saturating_sub(1)).min(body.len());
        let tail = &body[at..];
        let end = tail.iter().position(|b| *b == b'\n').unwrap_or(tail.len());
        &tail[..end]
    };
    let near: Vec<u8> = rest.iter().copied().filter(|b| *b >= b' ').collect();
    format!(
        "syntax error at line {line} near: {}",
        String::from_utf8_lossy(&near)
    )
}

/// The JSON codec's description of a body that does not fit the message, in stout's words:
/// `Missing required fields: a, b.c`, `Not expecting a JSON number for field 'user'`.
fn stout_detail(message: &str) -> String {
    if let Some(rest) = message.strip_prefix("missing required") {
        return format!("Missing required{rest}");
    }
    let Some((path, what)) = message.split_once(": ") else {
        return message.to_string();
    };
    let field = path
        .rsplit('.')
        .next()
        .map(|last| last.split('[').next().unwrap_or(last))
        .unwrap_or(path);
    let json_type = if let Some((_, got)) = what.rsplit_once(", got ") {
        match got {
            "a number" => "number",
            "a string" => "string",
            "a bool" => "boolean",
            "null" => "null",
            "an array" => "array",
            "an object" => "object",
            _ => return message.to_string(),
        }
    } else if what.starts_with("not expecting a JSON array") {
        "array"
    } else if what.starts_with("not expecting a JSON number") {
        "number"
    } else {
        return message.to_string();
    };
    format!("Not expecting a JSON {json_type} for field '{field}'")
}

/// Checks `Content-Type`, reads the body within the limits and decodes it as `M` (on the
/// blocking pool when it is large), answering each failure as Mesos does.
pub(crate) async fn decode_call<M>(
    headers: &HeaderMap,
    body: Body,
    limits: &HttpLimits,
    name: &'static str,
) -> Result<M, Box<Response>>
where
    M: prost::Message + prost::Name + Default + Send + 'static,
{
    let format = content_format(headers)?;
    let body = read_body(headers, body, limits).await?;
    let decoded = if body.len() > limits.blocking_decode_threshold {
        static LARGE_DECODES: Semaphore = Semaphore::const_new(MAX_LARGE_DECODES);
        let _turn = LARGE_DECODES
            .acquire()
            .await
            .map_err(|err| internal(format!("Failed to decode the body: {err}")))?;
        tokio::task::spawn_blocking(move || decode::<M>(format, &body, name))
            .await
            .map_err(|err| internal(format!("Failed to decode the body: {err}")))?
    } else {
        decode::<M>(format, &body, name)
    };
    decoded.map_err(|failure| Box::new(text(StatusCode::BAD_REQUEST, failure.to_string())))
}

fn internal(message: impl Display) -> Box<Response> {
    Box::new(text(StatusCode::INTERNAL_SERVER_ERROR, message.to_string()))
}

/// A 16-byte UUID of a known version (1 to 5), as stout's `UUID::fromBytes` requires.
pub(crate) fn valid_uuid(bytes: &[u8]) -> bool {
    bytes.len() == 16 && (1..=5).contains(&(bytes[6] >> 4))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesos_sdk::v1::scheduler::Call;

    #[test]
    fn uuid_validation() {
        assert!(valid_uuid(uuid::Uuid::new_v4().as_bytes()));
        assert!(!valid_uuid(&[0u8; 15]));
        let mut bad = *uuid::Uuid::new_v4().as_bytes();
        bad[6] = 0x80;
        assert!(!valid_uuid(&bad));
    }

    /// A body above the threshold is decoded on the blocking pool: on a one-thread runtime, a
    /// task spawned before the call gets to run while it decodes (an inline decode would finish
    /// in the caller's first poll, before any other task runs).
    #[tokio::test(flavor = "current_thread")]
    async fn large_bodies_are_decoded_off_the_async_worker() {
        let call = serde_json::json!({
            "type": "DECLINE",
            "framework_id": {"value": "f"},
            "decline": {"offer_ids": vec![serde_json::json!({"value": "o"}); 20_000]},
        });
        let body = Bytes::from(serde_json::to_vec(&call).unwrap());
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(JSON_CONTENT_TYPE),
        );
        for (threshold, offloaded) in [(1024, true), (usize::MAX, false)] {
            let limits = HttpLimits {
                blocking_decode_threshold: threshold,
                ..HttpLimits::default()
            };
            let ticks = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let ticker = tokio::spawn({
                let ticks = ticks.clone();
                async move {
                    loop {
                        ticks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        tokio::task::yield_now().await;
                    }
                }
            });
            let decoded =
                decode_call::<Call>(&headers, Body::from(body.clone()), &limits, "Call").await;
            ticker.abort();
            assert!(decoded.is_ok());
            let ran = ticks.load(std::sync::atomic::Ordering::Relaxed) > 0;
            assert_eq!(ran, offloaded, "threshold {threshold}");
        }
    }

    /// stout's texts for bodies that are not JSON, or JSON of the wrong types.
    #[test]
    fn json_failures_use_stout_texts() {
        let table: [(&[u8], &str); 8] = [
            (b"", "Failed to parse body into JSON: syntax error at line 1 near: "),
            (
                br#"{"type":"#,
                "Failed to parse body into JSON: syntax error at line 1 near: ",
            ),
            (
                b"{\"type\": x}",
                "Failed to parse body into JSON: syntax error at line 1 near: x}",
            ),
            (
                b"{\n\"type\": nope\n}",
                // picojson stops after the `n` it took for `null`, as serde_json does.
                "Failed to parse body into JSON: syntax error at line 2 near: ope",
            ),
            (
                br#"{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":5,"name":"n"}}}"#,
                "Failed to convert JSON into Call protobuf: Not expecting a JSON number for field 'user'",
            ),
            (
                br#"{"type":"DECLINE","framework_id":{"value":"f"},"decline":{"offer_ids":[{"value":true}]}}"#,
                "Failed to convert JSON into Call protobuf: Not expecting a JSON boolean for field 'value'",
            ),
            (
                br#"{"type":"DECLINE","framework_id":"f"}"#,
                "Failed to convert JSON into Call protobuf: Not expecting a JSON string for field 'framework_id'",
            ),
            (
                br#"{"type":"DECLINE","framework_id":{"value":["f"]}}"#,
                "Failed to convert JSON into Call protobuf: Not expecting a JSON array for field 'value'",
            ),
        ];
        for (body, want) in table {
            let got = decode::<Call>(Format::Json, body, "Call")
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert_eq!(got, want, "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn decode_failures_use_mesos_texts() {
        let table: [(Format, &[u8], &str); 5] = [
            (
                Format::Protobuf,
                b"\xff\xff",
                "Failed to parse body into Call protobuf",
            ),
            (
                Format::Json,
                b"hello",
                "Failed to parse body into JSON: syntax error at line 1 near: hello",
            ),
            (
                Format::Json,
                b"[]",
                "Failed to convert JSON into Call protobuf: Expecting a JSON object",
            ),
            (
                Format::Json,
                br#"{"type":"SUBSCRIBE","subscribe":{"framework_info":{"name":"n"}}}"#,
                "Failed to convert JSON into Call protobuf: Missing required fields: subscribe.framework_info.user",
            ),
            (Format::Json, br#"{"type":"TEARDOWN"}"#, ""),
        ];
        for (format, body, want) in table {
            let got = decode::<Call>(format, body, "Call")
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert_eq!(got, want, "{format:?} {}", String::from_utf8_lossy(body));
        }
    }
}
