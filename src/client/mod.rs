//! HTTP transport to Mesos masters and agents: the V1 endpoints' headers, stream ids, 307 leader
//! redirects, candidate failover, authentication, TLS and typed errors.
//!
//! A [`Client`] is a cheap-to-clone handle. Non-streaming calls ([`Client::call`]) share a pool of
//! kept-alive connections; every subscription ([`Client::subscribe`]) gets a connection of its own
//! whose RecordIO body is read as typed events ([`Subscription::into_events`]) or as raw records
//! ([`Subscription::into_records`]).
//!
//! ```no_run
//! use mesos_sdk::client::{CallRequest, Client};
//! use mesos_sdk::codec::Format;
//! use mesos_sdk::v1::scheduler::Event;
//! use futures::StreamExt;
//!
//! # async fn demo(subscribe_body: bytes::Bytes) -> Result<(), mesos_sdk::client::Error> {
//! let client = Client::builder()
//!     .endpoint("http://master-1:5050")
//!     .endpoint("http://master-2:5050")
//!     .format(Format::Protobuf)
//!     .basic_auth("principal", "secret")
//!     .build()?;
//! let subscription = client
//!     .subscribe(CallRequest {
//!         path: "/api/v1/scheduler".into(),
//!         body: subscribe_body,
//!         stream_id: None,
//!     })
//!     .await?;
//! println!("stream id {:?}", subscription.stream_id);
//! let mut events = subscription.into_events::<Event>();
//! while let Some(event) = events.next().await {
//!     println!("{:?}", event?.r#type());
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Routing rules:
//! - 307 answers are followed (scheme-relative `//host:port/path`, bare `host:port` and absolute
//!   `Location`s) up to [`ClientBuilder::max_redirects`] hops; the first hop is immediate, later
//!   ones back off. The answering endpoint is remembered as the leader and tried first next time.
//! - 503, 404 (a master still starting) and failed connects move on to the next candidate
//!   endpoint, with backoff, for at most [`ClientBuilder::max_attempts`] attempts; then the call
//!   fails with [`ErrorKind::Unavailable`].
//! - Every other non-2xx answer fails at once with the kind of [`kind_for_status`], keeping the
//!   status and the peer's body text.

mod endpoint;
mod error;
mod stream;
pub(crate) mod tls;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST, LOCATION, USER_AGENT};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as PooledClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::codec::Format;
pub use error::{BoxError, Error, ErrorKind, kind_for_status};
pub use tls::tls_client_config;

use endpoint::Endpoint;
use tls::TlsSettings;

/// The `Mesos-Stream-Id` header name.
pub const STREAM_ID_HEADER: &str = "Mesos-Stream-Id";
/// Default response timeout of non-streaming calls: 75 s, the figure the Mesos scheduler docs
/// suggest for detecting a partition.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(75);
/// Default TCP (and TLS) connect timeout: 10 s.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default number of 307 hops followed for one request.
pub const DEFAULT_MAX_REDIRECTS: u32 = 9;
/// Default shortest wait between two attempts (redirect hops after the first, or candidates).
pub const DEFAULT_RETRY_BACKOFF_MIN: Duration = Duration::from_millis(500);
/// Default longest wait between two attempts.
pub const DEFAULT_RETRY_BACKOFF_MAX: Duration = Duration::from_secs(13);

/// A function that adjusts the headers of every request (see [`ClientBuilder::request_decorator`]).
pub type RequestDecorator = Arc<dyn Fn(&mut HeaderMap) + Send + Sync>;

/// Longest peer error body kept in an [`Error`]'s message.
const MAX_ERROR_BODY: usize = 64 * 1024;

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
///
/// Read it as typed events with [`Subscription::into_events`] (what the runtimes do) or as raw
/// RecordIO records with [`Subscription::into_records`]. Either stream ends without error when the
/// peer closes the stream cleanly between records; it ends with an [`ErrorKind::SubscriptionLost`]
/// error when the connection breaks or is cut inside a record, and with an
/// [`ErrorKind::Protocol`] error on a framing error (a bad length header, a record over the size
/// cap) or, for typed events, a record that does not decode. Nothing follows an error. Dropping
/// the subscription or its stream closes the connection.
pub struct Subscription {
    /// `Mesos-Stream-Id` from the answer, if any.
    pub stream_id: Option<String>,
    /// The endpoint that accepted the subscription (after redirects).
    pub endpoint: Uri,
    /// The format of the records: the answer's `Content-Type`, or the client's format when the
    /// answer named none that Mesos speaks.
    pub format: Format,
    body: Incoming,
    max_record_size: usize,
}

impl Subscription {
    /// The events, each record decoded in place as an `M` in [`Subscription::format`], boxed
    /// (events are large structs; see [`crate::recordio::MessageDecoder`]).
    pub fn into_events<M>(self) -> BoxStream<'static, Result<Box<M>, Error>>
    where
        M: prost::Message + prost::Name + Default + Send + 'static,
    {
        stream::events(self.body, self.format, self.max_record_size)
    }

    /// The raw records, one encoded event each, as zero-copy slices of the read buffer.
    pub fn into_records(self) -> BoxStream<'static, Result<Bytes, Error>> {
        stream::records(self.body, self.max_record_size)
    }
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("stream_id", &self.stream_id)
            .field("endpoint", &self.endpoint)
            .field("format", &self.format)
            .field("max_record_size", &self.max_record_size)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
enum Auth {
    Basic { principal: String, secret: String },
    Bearer(String),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Basic { principal, .. } => f
                .debug_struct("Basic")
                .field("principal", principal)
                .finish_non_exhaustive(),
            Auth::Bearer(_) => f.write_str("Bearer(..)"),
        }
    }
}

impl Auth {
    fn header_value(&self) -> Result<HeaderValue, Error> {
        use base64::Engine as _;
        let text = match self {
            Auth::Basic { principal, secret } => {
                let raw = format!("{principal}:{secret}");
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(raw)
                )
            }
            Auth::Bearer(token) => format!("Bearer {token}"),
        };
        let mut value = HeaderValue::from_str(&text).map_err(|err| {
            Error::new(
                ErrorKind::Config,
                "credentials contain characters not allowed in a header",
            )
            .with_source(err)
        })?;
        value.set_sensitive(true);
        Ok(value)
    }
}

/// Builds a [`Client`].
///
/// At least one [`endpoint`](ClientBuilder::endpoint) is required; every other setting has a
/// default (protobuf, no authentication, [`DEFAULT_CALL_TIMEOUT`], [`DEFAULT_CONNECT_TIMEOUT`],
/// 64 MiB records, [`DEFAULT_MAX_REDIRECTS`], webpki roots for TLS).
pub struct ClientBuilder {
    endpoints: Vec<String>,
    format: Format,
    auth: Option<Auth>,
    call_timeout: Duration,
    connect_timeout: Duration,
    max_record_size: usize,
    max_redirects: u32,
    max_attempts: Option<u32>,
    backoff_min: Duration,
    backoff_max: Duration,
    tls: TlsSettings,
    user_agent: String,
    extra_headers: Vec<(String, String)>,
    decorator: Option<RequestDecorator>,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("endpoints", &self.endpoints)
            .field("format", &self.format)
            .field("auth", &self.auth)
            .field("call_timeout", &self.call_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_record_size", &self.max_record_size)
            .field("max_redirects", &self.max_redirects)
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

impl Default for ClientBuilder {
    fn default() -> Self {
        Self {
            endpoints: Vec::new(),
            format: Format::Protobuf,
            auth: None,
            call_timeout: DEFAULT_CALL_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            max_record_size: crate::recordio::DEFAULT_MAX_RECORD_SIZE,
            max_redirects: DEFAULT_MAX_REDIRECTS,
            max_attempts: None,
            backoff_min: DEFAULT_RETRY_BACKOFF_MIN,
            backoff_max: DEFAULT_RETRY_BACKOFF_MAX,
            tls: TlsSettings::default(),
            user_agent: concat!("mesos-sdk/", env!("CARGO_PKG_VERSION")).to_owned(),
            extra_headers: Vec::new(),
            decorator: None,
        }
    }
}

impl ClientBuilder {
    /// Adds a candidate endpoint (`http://host:port` or `https://host:port`; a bare `host:port`
    /// means `http`). Candidates are tried in the order given.
    pub fn endpoint(mut self, uri: impl AsRef<str>) -> Self {
        self.endpoints.push(uri.as_ref().to_owned());
        self
    }
    /// Body format (default protobuf). SUBSCRIBE asks for events in the same format.
    pub fn format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }
    /// HTTP basic authentication (`Authorization: Basic base64(principal:secret)`), as Mesos masters
    /// expect with `--authenticate_http_frameworks`.
    pub fn basic_auth(mut self, principal: impl Into<String>, secret: impl Into<String>) -> Self {
        self.auth = Some(Auth::Basic {
            principal: principal.into(),
            secret: secret.into(),
        });
        self
    }
    /// Bearer token authentication (`Authorization: Bearer <token>`), as agents expect from
    /// executors (`MESOS_EXECUTOR_AUTHENTICATION_TOKEN`).
    pub fn bearer_token(mut self, token: impl Into<String>) -> Self {
        self.auth = Some(Auth::Bearer(token.into()));
        self
    }
    /// Response timeout for non-streaming calls (default [`DEFAULT_CALL_TIMEOUT`]). It also bounds
    /// the wait for a subscription's response headers; a subscription's body has no timeout.
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }
    /// Connect timeout (TCP and TLS), default [`DEFAULT_CONNECT_TIMEOUT`].
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }
    /// Cap on one RecordIO record (default 64 MiB).
    pub fn max_record_size(mut self, bytes: usize) -> Self {
        self.max_record_size = bytes;
        self
    }
    /// Most 307 hops followed for one request (default [`DEFAULT_MAX_REDIRECTS`]); one more gives
    /// [`ErrorKind::NotLeader`].
    pub fn max_redirects(mut self, hops: u32) -> Self {
        self.max_redirects = hops;
        self
    }
    /// Most attempts that end unavailable (503, 404, failed connect) for one request before it
    /// fails with [`ErrorKind::Unavailable`]. Default: three per candidate endpoint.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = Some(attempts.max(1));
        self
    }
    /// Shortest and longest wait between attempts (defaults [`DEFAULT_RETRY_BACKOFF_MIN`] and
    /// [`DEFAULT_RETRY_BACKOFF_MAX`]); the wait doubles per attempt, with jitter.
    pub fn retry_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.backoff_min = min;
        self.backoff_max = max.max(min);
        self
    }
    /// Also trusts the CA certificates of a PEM bundle for `https` endpoints.
    pub fn add_ca_pem(mut self, pem: impl AsRef<[u8]>) -> Self {
        self.tls.extra_ca_pem.push(pem.as_ref().to_vec());
        self
    }
    /// Whether to trust the Mozilla roots of `webpki-roots` (default true).
    pub fn webpki_roots(mut self, enabled: bool) -> Self {
        self.tls.webpki_roots = enabled;
        self
    }
    /// Uses this rustls configuration as it is for `https` endpoints (client certificates, custom
    /// verifiers); overrides [`add_ca_pem`](Self::add_ca_pem) and [`webpki_roots`](Self::webpki_roots).
    pub fn tls_config(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.tls.custom = Some(config);
        self
    }
    /// The `User-Agent` header (default `mesos-sdk/<version>`).
    pub fn user_agent(mut self, agent: impl Into<String>) -> Self {
        self.user_agent = agent.into();
        self
    }
    /// Adds a header to every request (after the built-in ones).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra_headers.push((name.into(), value.into()));
        self
    }
    /// Runs `decorator` on the headers of every request, last: a hook for credentials that
    /// change over time (rotating tokens) or any other per-request header.
    pub fn request_decorator(
        mut self,
        decorator: impl Fn(&mut HeaderMap) + Send + Sync + 'static,
    ) -> Self {
        self.decorator = Some(Arc::new(decorator));
        self
    }
    /// Builds the client. Fails with [`ErrorKind::Config`] on no or invalid endpoints, credentials
    /// that cannot be a header, or unusable TLS material.
    pub fn build(self) -> Result<Client, Error> {
        if self.endpoints.is_empty() {
            return Err(Error::new(ErrorKind::Config, "no endpoint configured"));
        }
        let candidates = self
            .endpoints
            .iter()
            .map(|text| Endpoint::parse(text))
            .collect::<Result<Vec<_>, _>>()?;
        let authorization = self.auth.as_ref().map(Auth::header_value).transpose()?;
        let user_agent = HeaderValue::from_str(&self.user_agent)
            .map_err(|err| Error::new(ErrorKind::Config, "invalid User-Agent").with_source(err))?;
        let tls_config = Arc::new(self.tls.client_config()?);
        let mut extra_headers = HeaderMap::new();
        for (name, value) in &self.extra_headers {
            let name = http::HeaderName::from_bytes(name.as_bytes()).map_err(|err| {
                Error::new(ErrorKind::Config, format!("invalid header name '{name}'"))
                    .with_source(err)
            })?;
            let value = HeaderValue::from_str(value).map_err(|err| {
                Error::new(
                    ErrorKind::Config,
                    format!("invalid value for header '{name}'"),
                )
                .with_source(err)
            })?;
            extra_headers.append(name, value);
        }

        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(self.connect_timeout));
        // hyper-rustls sets ALPN itself and refuses a configuration that already has some.
        let mut pool_tls = tls_config.as_ref().clone();
        pool_tls.alpn_protocols.clear();
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(pool_tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let pool = PooledClient::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(https);
        let max_attempts = self
            .max_attempts
            .unwrap_or_else(|| 3 * u32::try_from(candidates.len()).unwrap_or(u32::MAX / 3));
        Ok(Client {
            inner: Arc::new(Inner {
                candidates,
                leader: Mutex::new(None),
                format: self.format,
                authorization,
                user_agent,
                extra_headers,
                decorator: self.decorator,
                call_timeout: self.call_timeout,
                connect_timeout: self.connect_timeout,
                max_record_size: self.max_record_size,
                max_redirects: self.max_redirects,
                max_attempts,
                backoff_min: self.backoff_min,
                backoff_max: self.backoff_max,
                tls_config,
                pool,
            }),
        })
    }
}

struct Inner {
    candidates: Vec<Endpoint>,
    leader: Mutex<Option<Endpoint>>,
    format: Format,
    authorization: Option<HeaderValue>,
    user_agent: HeaderValue,
    extra_headers: HeaderMap,
    decorator: Option<RequestDecorator>,
    call_timeout: Duration,
    connect_timeout: Duration,
    max_record_size: usize,
    max_redirects: u32,
    max_attempts: u32,
    backoff_min: Duration,
    backoff_max: Duration,
    tls_config: Arc<rustls::ClientConfig>,
    pool: PooledClient<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

/// How one attempt failed before any HTTP answer.
enum AttemptFailure {
    /// The endpoint could not be reached: try the next candidate.
    Unreachable(Error),
    /// Anything else: give up.
    Fatal(Error),
}

/// A cheap-to-clone handle to one Mesos endpoint family (the masters of a cluster, or one agent).
///
/// See the [module documentation](self) for an example and the routing rules.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field(
                "candidates",
                &self
                    .inner
                    .candidates
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>(),
            )
            .field("format", &self.inner.format)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A builder.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// The body format.
    pub fn format(&self) -> Format {
        self.inner.format
    }

    /// The configured candidate endpoints, in order.
    pub fn endpoints(&self) -> Vec<Uri> {
        self.inner
            .candidates
            .iter()
            .map(Endpoint::base_uri)
            .collect()
    }

    /// The endpoint that last answered for real (the leading master, once known).
    pub fn leader(&self) -> Option<Uri> {
        self.lock_leader().as_ref().map(Endpoint::base_uri)
    }

    /// Sends a call and waits for its whole answer.
    ///
    /// Returns the 2xx answer; any other outcome is an [`Error`] (see the module documentation).
    pub async fn call(&self, request: CallRequest) -> Result<CallResponse, Error> {
        let inner = &self.inner;
        let (endpoint, response) = self
            .route(&request, false, |uri, _endpoint| {
                let http_request = self.build_request(uri, &request, false, None);
                async move {
                    let http_request = http_request.map_err(AttemptFailure::Fatal)?;
                    match tokio::time::timeout(inner.call_timeout, inner.pool.request(http_request))
                        .await
                    {
                        Err(_) => Err(AttemptFailure::Fatal(Error::new(
                            ErrorKind::Timeout,
                            format!("no answer within {:?}", inner.call_timeout),
                        ))),
                        Ok(Err(err)) if err.is_connect() && is_tls_failure(&err) => {
                            Err(AttemptFailure::Fatal(
                                Error::new(ErrorKind::Io, "TLS handshake failed").with_source(err),
                            ))
                        }
                        Ok(Err(err)) if err.is_connect() => {
                            Err(AttemptFailure::Unreachable(connect_error(err)))
                        }
                        Ok(Err(err)) => Err(AttemptFailure::Fatal(
                            Error::new(ErrorKind::Io, "request failed").with_source(err),
                        )),
                        Ok(Ok(response)) => Ok(response),
                    }
                }
            })
            .await?;
        let (parts, body) = response.into_parts();
        let body = match tokio::time::timeout(inner.call_timeout, body.collect()).await {
            Err(_) => {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    format!("answer body not complete within {:?}", inner.call_timeout),
                )
                .at_endpoint(endpoint.base_uri()));
            }
            Ok(Err(err)) => {
                return Err(Error::new(ErrorKind::Io, "reading the answer failed")
                    .with_source(err)
                    .at_endpoint(endpoint.base_uri()));
            }
            Ok(Ok(collected)) => collected.to_bytes(),
        };
        Ok(CallResponse {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    /// Opens a subscription on a dedicated connection.
    ///
    /// Sends `Accept` equal to the client's format and never sends `Mesos-Stream-Id` (Mesos rejects
    /// it on SUBSCRIBE), whatever `request.stream_id` says. The answer's `Mesos-Stream-Id` is in
    /// [`Subscription::stream_id`].
    pub async fn subscribe(&self, request: CallRequest) -> Result<Subscription, Error> {
        let inner = &self.inner;
        let (endpoint, response) = self
            .route(&request, true, |uri, endpoint| {
                let host = HeaderValue::from_str(endpoint.authority.as_str()).ok();
                let http_request = self.build_request(uri, &request, true, host);
                async move {
                    let http_request = http_request.map_err(AttemptFailure::Fatal)?;
                    stream::open(
                        &endpoint,
                        http_request,
                        inner.connect_timeout,
                        inner.call_timeout,
                        inner.tls_config.clone(),
                    )
                    .await
                }
            })
            .await?;
        let stream_id = response
            .headers()
            .get(STREAM_ID_HEADER)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let format = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(Format::from_content_type)
            .unwrap_or(inner.format);
        let endpoint_uri = endpoint.base_uri();
        tracing::debug!(endpoint = %endpoint_uri, ?stream_id, ?format, "subscription open");
        Ok(Subscription {
            stream_id,
            endpoint: endpoint_uri,
            format,
            body: response.into_body(),
            max_record_size: inner.max_record_size,
        })
    }

    fn lock_leader(&self) -> std::sync::MutexGuard<'_, Option<Endpoint>> {
        self.inner
            .leader
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Candidates in the order to try: the remembered leader first.
    fn ordered_candidates(&self) -> Vec<Endpoint> {
        let candidates = &self.inner.candidates;
        match self.lock_leader().clone() {
            None => candidates.clone(),
            Some(leader) => match candidates.iter().position(|c| *c == leader) {
                Some(at) => candidates[at..]
                    .iter()
                    .chain(&candidates[..at])
                    .cloned()
                    .collect(),
                None => std::iter::once(leader)
                    .chain(candidates.iter().cloned())
                    .collect(),
            },
        }
    }

    fn build_request(
        &self,
        uri: Uri,
        request: &CallRequest,
        subscribe: bool,
        host: Option<HeaderValue>,
    ) -> Result<Request<Full<Bytes>>, Error> {
        let inner = &self.inner;
        let content_type = HeaderValue::from_static(inner.format.content_type());
        let mut builder = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header(CONTENT_TYPE, content_type.clone())
            .header(ACCEPT, content_type)
            .header(USER_AGENT, inner.user_agent.clone());
        if let Some(host) = host {
            builder = builder.header(HOST, host);
        }
        if let Some(authorization) = &inner.authorization {
            builder = builder.header(AUTHORIZATION, authorization.clone());
        }
        if !subscribe {
            if let Some(stream_id) = &request.stream_id {
                let value = HeaderValue::from_str(stream_id).map_err(|err| {
                    Error::new(ErrorKind::Config, "stream id is not a valid header value")
                        .with_source(err)
                })?;
                builder = builder.header(STREAM_ID_HEADER, value);
            }
        }
        let mut http_request = builder
            .body(Full::new(request.body.clone()))
            .map_err(|err| Error::new(ErrorKind::Config, "invalid request").with_source(err))?;
        let headers = http_request.headers_mut();
        for (name, value) in &inner.extra_headers {
            headers.append(name, value.clone());
        }
        if let Some(decorate) = &inner.decorator {
            decorate(headers);
        }
        if subscribe {
            // Whatever a decorator did, SUBSCRIBE never carries a stream id.
            headers.remove(STREAM_ID_HEADER);
        }
        Ok(http_request)
    }

    fn backoff(&self, attempt: u32) -> Duration {
        crate::backoff::exponential_with_jitter(
            self.inner.backoff_min,
            self.inner.backoff_max,
            attempt,
        )
    }

    /// Sends `request` with `attempt` until an endpoint gives a definitive answer, following
    /// redirects and moving on from unavailable candidates. Returns the 2xx response.
    async fn route<F, Fut>(
        &self,
        request: &CallRequest,
        subscribe: bool,
        mut attempt: F,
    ) -> Result<(Endpoint, Response<Incoming>), Error>
    where
        F: FnMut(Uri, Endpoint) -> Fut,
        Fut: Future<Output = Result<Response<Incoming>, AttemptFailure>>,
    {
        let inner = &self.inner;
        let candidates = self.ordered_candidates();
        let mut next_candidate = 1usize;
        let Some(mut target) = candidates.first().cloned() else {
            return Err(Error::new(ErrorKind::Config, "no endpoint configured"));
        };
        let mut redirects = 0u32;
        let mut unavailable = 0u32;
        loop {
            let uri = target.join(&request.path)?;
            tracing::trace!(%uri, subscribe, "sending");
            let failure = match attempt(uri, target.clone()).await {
                Err(AttemptFailure::Fatal(err)) => {
                    return Err(err.at_endpoint(target.base_uri()));
                }
                Err(AttemptFailure::Unreachable(err)) => err,
                Ok(response) => {
                    let status = response.status();
                    if status.is_success() {
                        self.remember_leader(&target);
                        return Ok((target, response));
                    }
                    if status == StatusCode::TEMPORARY_REDIRECT {
                        let location = response
                            .headers()
                            .get(LOCATION)
                            .and_then(|value| value.to_str().ok())
                            .unwrap_or_default()
                            .to_owned();
                        redirects += 1;
                        if redirects > inner.max_redirects {
                            return Err(Error::with_status(
                                ErrorKind::NotLeader,
                                status,
                                format!(
                                    "more than {} redirects (last Location '{location}')",
                                    inner.max_redirects
                                ),
                            )
                            .at_endpoint(target.base_uri()));
                        }
                        let Some(next) = target.redirect(&location) else {
                            return Err(Error::with_status(
                                ErrorKind::NotLeader,
                                status,
                                format!("redirect with no usable Location '{location}'"),
                            )
                            .at_endpoint(target.base_uri()));
                        };
                        tracing::debug!(from = %target, to = %next, "following redirect to the leader");
                        if redirects > 1 {
                            tokio::time::sleep(self.backoff(redirects - 2)).await;
                        }
                        target = next;
                        continue;
                    }
                    let text = body_text(response.into_body(), inner.call_timeout).await;
                    let kind = kind_for_status(status);
                    let err = Error::with_status(kind, status, text);
                    if !matches!(status.as_u16(), 404 | 503) {
                        self.remember_leader(&target);
                        return Err(err.at_endpoint(target.base_uri()));
                    }
                    err
                }
            };
            let failure = failure.at_endpoint(target.base_uri());
            tracing::debug!(error = %failure, "endpoint unavailable, trying the next candidate");
            self.forget_leader(&target);
            unavailable += 1;
            if unavailable >= inner.max_attempts {
                let message = match failure.status() {
                    Some(_) => failure.message().to_owned(),
                    None => format!(
                        "no endpoint could serve after {unavailable} attempts: {}",
                        failure.message()
                    ),
                };
                let mut err = match failure.status() {
                    Some(status) => Error::with_status(ErrorKind::Unavailable, status, message),
                    None => Error::new(ErrorKind::Unavailable, message),
                };
                if let Some(endpoint) = failure.endpoint() {
                    err = err.at_endpoint(endpoint.clone());
                }
                return Err(err.with_source(failure));
            }
            tokio::time::sleep(self.backoff(unavailable - 1)).await;
            target = candidates[next_candidate % candidates.len()].clone();
            next_candidate += 1;
            redirects = 0;
        }
    }

    fn remember_leader(&self, endpoint: &Endpoint) {
        let mut leader = self.lock_leader();
        if leader.as_ref() != Some(endpoint) {
            tracing::debug!(endpoint = %endpoint, "remembering the answering endpoint");
            *leader = Some(endpoint.clone());
        }
    }

    fn forget_leader(&self, endpoint: &Endpoint) {
        let mut leader = self.lock_leader();
        if leader.as_ref() == Some(endpoint) {
            *leader = None;
        }
    }
}

fn connect_error(err: hyper_util::client::legacy::Error) -> Error {
    let text = {
        use std::error::Error as _;
        let mut text = err.to_string();
        let mut source = err.source();
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        text
    };
    let kind = if text.contains("timed out") || text.contains("timeout") {
        ErrorKind::Timeout
    } else {
        ErrorKind::Io
    };
    Error::new(kind, text).with_source(err)
}

/// Whether a connect failure was the TLS handshake (a certificate problem is not cured by trying
/// another candidate).
fn is_tls_failure(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(error) = current {
        // io::Error hides what it wraps from `source()`: unwrap nested ones by hand.
        let mut layer = error;
        loop {
            if layer.is::<rustls::Error>() {
                return true;
            }
            match layer
                .downcast_ref::<std::io::Error>()
                .and_then(std::io::Error::get_ref)
            {
                Some(inner) => layer = inner,
                None => break,
            }
        }
        current = error.source();
    }
    false
}

/// Reads at most [`MAX_ERROR_BODY`] bytes of an error answer as text.
async fn body_text(body: Incoming, timeout: Duration) -> String {
    match tokio::time::timeout(timeout, Limited::new(body, MAX_ERROR_BODY).collect()).await {
        Ok(Ok(collected)) => String::from_utf8_lossy(&collected.to_bytes())
            .trim()
            .to_owned(),
        Ok(Err(err)) => format!("<error body unreadable: {err}>"),
        Err(_) => "<error body not received in time>".to_owned(),
    }
}
