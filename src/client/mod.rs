//! HTTP transport to Mesos masters and agents (contract stub: the client work replaces the bodies).

use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use http::{HeaderMap, StatusCode, Uri};

use crate::codec::Format;

/// What went wrong, for callers to match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// 307 chain too long, or a redirect with no usable `Location`.
    NotLeader,
    /// 403 or a stream that broke: the subscription is gone.
    SubscriptionLost,
    /// 503, 404 during start-up, refused connections: no candidate could serve.
    Unavailable,
    /// 400 and other 4xx answers that mean a bad request.
    BadRequest,
    /// 401.
    Unauthorized,
    /// Unexpected status, bad framing, bad body.
    Protocol,
    /// Socket and TLS failures.
    Io,
    /// The call or connect timed out.
    Timeout,
    /// Invalid client configuration.
    Config,
}

/// A transport error: its kind, the HTTP status and the peer's body text when there was one.
#[derive(Debug, thiserror::Error)]
#[error("{kind:?}: {message}")]
pub struct Error {
    kind: ErrorKind,
    status: Option<StatusCode>,
    message: String,
}

impl Error {
    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    /// The HTTP status, if the peer answered.
    pub fn status(&self) -> Option<StatusCode> {
        self.status
    }
    /// The peer's body text or a description.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// One request to a V1 endpoint.
#[derive(Debug, Clone)]
pub struct CallRequest {
    /// Path on the endpoint, e.g. `/api/v1/scheduler`.
    pub path: String,
    /// Encoded body, in the client's [`Format`].
    pub body: Bytes,
    /// `Mesos-Stream-Id` to send, if any.
    pub stream_id: Option<String>,
}

/// A non-streaming answer.
#[derive(Debug, Clone)]
pub struct CallResponse {
    /// Status (2xx).
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Whole body.
    pub body: Bytes,
}

/// An open event stream.
pub struct Subscription {
    /// `Mesos-Stream-Id` from the answer, if any.
    pub stream_id: Option<String>,
    /// The endpoint that accepted the subscription (after redirects).
    pub endpoint: Uri,
    /// The format of the records.
    pub format: Format,
    /// RecordIO records, each one encoded event.
    pub records: BoxStream<'static, Result<Bytes, Error>>,
}

/// Builds a [`Client`].
#[derive(Debug, Default)]
pub struct ClientBuilder {
    _private: (),
}

impl ClientBuilder {
    /// Adds a candidate endpoint (`http://host:port` or `https://host:port`).
    pub fn endpoint(self, _uri: impl AsRef<str>) -> Self {
        self
    }
    /// Body format (default protobuf).
    pub fn format(self, _format: Format) -> Self {
        self
    }
    /// HTTP basic authentication.
    pub fn basic_auth(self, _principal: impl Into<String>, _secret: impl Into<String>) -> Self {
        self
    }
    /// Bearer token authentication.
    pub fn bearer_token(self, _token: impl Into<String>) -> Self {
        self
    }
    /// Response timeout for non-streaming calls.
    pub fn call_timeout(self, _timeout: Duration) -> Self {
        self
    }
    /// Cap on one RecordIO record.
    pub fn max_record_size(self, _bytes: usize) -> Self {
        self
    }
    /// Builds the client.
    pub fn build(self) -> Result<Client, Error> {
        Err(Error {
            kind: ErrorKind::Config,
            status: None,
            message: "client not built yet".into(),
        })
    }
}

/// A cheap-to-clone handle to one Mesos endpoint family.
#[derive(Debug, Clone)]
pub struct Client {
    _private: (),
}

impl Client {
    /// A builder.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }
    /// The body format.
    pub fn format(&self) -> Format {
        Format::Protobuf
    }
    /// Sends a call and waits for its answer.
    pub async fn call(&self, _request: CallRequest) -> Result<CallResponse, Error> {
        Err(Error {
            kind: ErrorKind::Config,
            status: None,
            message: "client not built yet".into(),
        })
    }
    /// Opens a subscription on a dedicated connection.
    pub async fn subscribe(&self, _request: CallRequest) -> Result<Subscription, Error> {
        Err(Error {
            kind: ErrorKind::Config,
            status: None,
            message: "client not built yet".into(),
        })
    }
}
