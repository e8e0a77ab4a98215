//! The HTTP semantics of serving one artifact (RFC 9110): GET and HEAD with `Content-Length`,
//! a strong `ETag`, `If-None-Match` (304), `If-Range`, and single byte ranges (206, or 416 when
//! unsatisfiable).
//!
//! Choices: a request for several ranges gets the whole content with 200 (a multipart answer is
//! allowed to be skipped, and the Mesos fetcher never asks for one); a `Range` header that does
//! not parse is ignored (200), as RFC 9110 says; `If-Range` with a date never matches, since
//! artifacts have no `Last-Modified`.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};

use super::artifacts::Artifact;

/// What a `Range` header asks of a representation of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RangeRequest {
    /// No usable single range: send everything.
    Whole,
    /// Bytes `start..=end`.
    Part { start: u64, end: u64 },
    /// A well-formed range that selects nothing.
    Unsatisfiable,
}

/// Parses a `Range` header value against a representation of `len` bytes.
pub(crate) fn parse_range(value: &str, len: u64) -> RangeRequest {
    let Some((unit, set)) = value.trim().split_once('=') else {
        return RangeRequest::Whole;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return RangeRequest::Whole;
    }
    let mut specs = set.split(',').map(str::trim).filter(|s| !s.is_empty());
    let (Some(spec), None) = (specs.next(), specs.next()) else {
        // None, or several ranges: serve the whole content.
        return RangeRequest::Whole;
    };
    let Some((first, last)) = spec.split_once('-') else {
        return RangeRequest::Whole;
    };
    let number = |s: &str| -> Option<u64> {
        let s = s.trim();
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (first.trim().is_empty(), number(first), number(last)) {
        // `-n`: the last n bytes.
        (true, _, Some(suffix)) => {
            if suffix == 0 || len == 0 {
                RangeRequest::Unsatisfiable
            } else {
                RangeRequest::Part {
                    start: len.saturating_sub(suffix),
                    end: len - 1,
                }
            }
        }
        // `a-` or `a-b`.
        (false, Some(start), end) if last.trim().is_empty() || end.is_some() => {
            if let Some(end) = end
                && end < start
            {
                return RangeRequest::Whole;
            }
            if start >= len {
                return RangeRequest::Unsatisfiable;
            }
            let end = end.map_or(len - 1, |e| e.min(len - 1));
            RangeRequest::Part { start, end }
        }
        _ => RangeRequest::Whole,
    }
}

/// Whether an `If-None-Match` value matches `etag` (weak comparison, `*` matches anything).
fn none_match(value: &str, etag: &str) -> bool {
    let ours = etag.trim_start_matches("W/");
    value
        .split(',')
        .map(str::trim)
        .any(|candidate| candidate == "*" || candidate.trim_start_matches("W/") == ours)
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The response to a GET or HEAD of `artifact`.
pub(crate) fn respond(artifact: &Artifact, method: &Method, headers: &HeaderMap) -> Response<Body> {
    let etag = artifact.etag();
    let len = artifact.content().len() as u64;
    let mut builder = Response::builder()
        .header(header::ETAG, &etag)
        .header(header::ACCEPT_RANGES, "bytes");
    if let Some(value) = header_str(headers, header::IF_NONE_MATCH)
        && none_match(value, &etag)
    {
        return finish(builder.status(StatusCode::NOT_MODIFIED), Body::empty());
    }
    builder = builder.header(header::CONTENT_TYPE, artifact.content_type());
    let if_range_holds =
        header_str(headers, header::IF_RANGE).is_none_or(|value| value.trim() == etag);
    let range = match header_str(headers, header::RANGE) {
        Some(value) if if_range_holds => parse_range(value, len),
        _ => RangeRequest::Whole,
    };
    let (status, body) = match range {
        RangeRequest::Whole => (StatusCode::OK, artifact.content().clone()),
        RangeRequest::Part { start, end } => {
            builder = builder.header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}"));
            // start <= end < len, which is a usize length: the casts cannot truncate.
            let slice = artifact.content().slice(start as usize..=end as usize);
            (StatusCode::PARTIAL_CONTENT, slice)
        }
        RangeRequest::Unsatisfiable => {
            builder = builder
                .header(header::CONTENT_RANGE, format!("bytes */{len}"))
                .header(header::CONTENT_LENGTH, 0);
            return finish(
                builder.status(StatusCode::RANGE_NOT_SATISFIABLE),
                Body::empty(),
            );
        }
    };
    builder = builder
        .status(status)
        .header(header::CONTENT_LENGTH, body.len());
    if method == Method::HEAD {
        finish(builder, Body::empty())
    } else {
        finish(builder, Body::from(body))
    }
}

/// A 404 with a short text body.
pub(crate) fn not_found() -> Response<Body> {
    let mut response = Response::new(Body::from("not found\n"));
    *response.status_mut() = StatusCode::NOT_FOUND;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn finish(builder: axum::http::response::Builder, body: Body) -> Response<Body> {
    // Every header above is a valid name with a value built from ASCII text, so the builder
    // cannot fail; a 500 stands in should that ever change.
    builder.body(body).unwrap_or_else(|_| {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        response
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_as_rfc_9110_says() {
        use RangeRequest::*;
        let cases: &[(&str, u64, RangeRequest)] = &[
            ("bytes=0-0", 10, Part { start: 0, end: 0 }),
            ("bytes=2-5", 10, Part { start: 2, end: 5 }),
            ("bytes=2-", 10, Part { start: 2, end: 9 }),
            ("bytes=2-100", 10, Part { start: 2, end: 9 }),
            ("bytes=-3", 10, Part { start: 7, end: 9 }),
            ("bytes=-30", 10, Part { start: 0, end: 9 }),
            ("BYTES = 1-2", 10, Part { start: 1, end: 2 }),
            ("bytes=10-", 10, Unsatisfiable),
            ("bytes=10-20", 10, Unsatisfiable),
            ("bytes=-0", 10, Unsatisfiable),
            ("bytes=0-", 0, Unsatisfiable),
            ("bytes=-1", 0, Unsatisfiable),
            ("bytes=5-2", 10, Whole),
            ("bytes=0-1,3-4", 10, Whole),
            ("bytes=a-b", 10, Whole),
            ("bytes=-", 10, Whole),
            ("bytes=+1-2", 10, Whole),
            ("items=0-1", 10, Whole),
            ("garbage", 10, Whole),
        ];
        for (value, len, want) in cases {
            assert_eq!(parse_range(value, *len), *want, "{value} of {len}");
        }
    }

    #[test]
    fn if_none_match_uses_the_weak_comparison() {
        assert!(none_match("\"abc\"", "\"abc\""));
        assert!(none_match("W/\"abc\"", "\"abc\""));
        assert!(none_match("\"x\", \"abc\"", "\"abc\""));
        assert!(none_match("*", "\"abc\""));
        assert!(!none_match("\"abd\"", "\"abc\""));
    }
}
