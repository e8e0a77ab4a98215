//! The transport's error type: a matchable [`ErrorKind`], the HTTP status and the peer's body text.

use http::{StatusCode, Uri};

/// The boxed cause of an [`Error`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong, for callers to match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// 307 chain too long, or a redirect with no usable `Location`.
    NotLeader,
    /// 403 or a stream that broke: the subscription is gone.
    SubscriptionLost,
    /// 503, 404 during start-up, refused connections: no candidate could serve.
    Unavailable,
    /// 400 and other 4xx answers that mean a bad request (400, 405, 406, 409, 415, 501, ...).
    BadRequest,
    /// 401: the credentials were refused.
    Unauthorized,
    /// Unexpected status, bad framing, bad body.
    Protocol,
    /// Socket and TLS failures.
    Io,
    /// The call or connect timed out.
    Timeout,
    /// Invalid client configuration (endpoints, credentials, TLS material).
    Config,
}

/// A transport error: its kind, the HTTP status and the peer's body text when there was one.
///
/// ```
/// use mesos_sdk::client::{Error, ErrorKind};
///
/// fn should_resubscribe(err: &Error) -> bool {
///     matches!(err.kind(), ErrorKind::SubscriptionLost | ErrorKind::Unavailable)
/// }
/// # let _ = should_resubscribe;
/// ```
#[derive(Debug)]
pub struct Error {
    inner: Box<Inner>,
}

#[derive(Debug)]
struct Inner {
    kind: ErrorKind,
    status: Option<StatusCode>,
    message: String,
    endpoint: Option<Uri>,
    source: Option<BoxError>,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = &self.inner;
        write!(f, "{:?}", inner.kind)?;
        if let Some(status) = inner.status {
            write!(f, " (HTTP {})", status.as_u16())?;
        }
        if let Some(endpoint) = &inner.endpoint {
            write!(f, " from {endpoint}")?;
        }
        if !inner.message.is_empty() {
            write!(f, ": {}", inner.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|source| source as &(dyn std::error::Error + 'static))
    }
}

impl Error {
    /// A new error of `kind` with a description.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            inner: Box::new(Inner {
                kind,
                status: None,
                message: message.into(),
                endpoint: None,
                source: None,
            }),
        }
    }

    /// An error for an HTTP answer: `status` and the peer's body text.
    pub fn with_status(kind: ErrorKind, status: StatusCode, body_text: impl Into<String>) -> Self {
        let mut err = Self::new(kind, body_text);
        err.inner.status = Some(status);
        err
    }

    /// Attaches the underlying cause.
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.inner.source = Some(source.into());
        self
    }

    /// Attaches the endpoint that produced the error.
    pub fn at_endpoint(mut self, endpoint: Uri) -> Self {
        self.inner.endpoint = Some(endpoint);
        self
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The HTTP status, if the peer answered.
    pub fn status(&self) -> Option<StatusCode> {
        self.inner.status
    }

    /// The peer's body text, or a description when there was no answer.
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// The endpoint that produced the error, when known.
    pub fn endpoint(&self) -> Option<&Uri> {
        self.inner.endpoint.as_ref()
    }
}

/// Maps a non-2xx, non-307 HTTP status to the kind of error it means on a Mesos V1 endpoint.
pub fn kind_for_status(status: StatusCode) -> ErrorKind {
    match status.as_u16() {
        401 => ErrorKind::Unauthorized,
        403 => ErrorKind::SubscriptionLost,
        404 | 503 => ErrorKind::Unavailable,
        307 => ErrorKind::NotLeader,
        501 => ErrorKind::BadRequest,
        400..=499 => ErrorKind::BadRequest,
        500..=599 => ErrorKind::Unavailable,
        _ => ErrorKind::Protocol,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_kinds() {
        let cases = [
            (400, ErrorKind::BadRequest),
            (401, ErrorKind::Unauthorized),
            (403, ErrorKind::SubscriptionLost),
            (404, ErrorKind::Unavailable),
            (405, ErrorKind::BadRequest),
            (406, ErrorKind::BadRequest),
            (409, ErrorKind::BadRequest),
            (415, ErrorKind::BadRequest),
            (501, ErrorKind::BadRequest),
            (503, ErrorKind::Unavailable),
            (302, ErrorKind::Protocol),
        ];
        for (code, kind) in cases {
            let status = StatusCode::from_u16(code).unwrap();
            assert_eq!(kind_for_status(status), kind, "status {code}");
        }
    }

    #[test]
    fn display_keeps_status_and_body() {
        let err = Error::with_status(
            ErrorKind::BadRequest,
            StatusCode::BAD_REQUEST,
            "Framework cannot be found",
        );
        let text = err.to_string();
        assert!(text.contains("400"), "{text}");
        assert!(text.contains("Framework cannot be found"), "{text}");
    }
}
