//! The framework's own HTTP server (cargo feature `server`): artifacts for the Mesos fetcher,
//! `/health`, `/metrics`, the framework's state as JSON and routes the framework adds.
//!
//! Routes:
//! - `GET`/`HEAD /artifacts/<name>`: a registered artifact (see [`artifacts`]), with
//!   `Content-Length`, a strong `ETag` (SHA-256 of the content), `If-None-Match` (304) and
//!   single byte ranges (206, 416). Only registered names are served: no request path ever
//!   reaches the file system.
//! - `GET /health`: `200 ok` while the server runs.
//! - `GET /metrics`: the [`Metrics`] registry in the OpenMetrics text format (Prometheus scrapes
//!   it), through `prometheus-client`.
//! - `GET /state`: the JSON of the framework's [`StateProvider`] (404 when none is set).
//! - anything else: the framework's own [`axum::Router`], if given ([`ServerBuilder::routes`]),
//!   else 404. Built-in routes take precedence.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use mesos_sdk::server::Server;
//! let server = Server::builder()
//!     .bind("0.0.0.0:0".parse()?)
//!     .advertised_host("scheduler-1.example.com")
//!     .state(|| serde_json::json!({"tasks": 3}))
//!     .start()
//!     .await?;
//! server.artifacts().register_file("my-executor", "/usr/local/bin/my-executor").await?;
//! let uri = server.artifacts().uri("my-executor")?.executable(true).build();
//! // ... put `uri` in the executor's CommandInfo.uris, run the framework ...
//! server.shutdown().await;
//! # Ok(()) }
//! ```

pub mod artifacts;
mod listener;
pub mod metrics;
mod routes;
mod serve;
pub mod state;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use artifacts::{Artifact, ArtifactError, Artifacts, FetchUri};
pub use metrics::Metrics;
pub use state::{StateProvider, WatchState};

/// The default shutdown grace period: how long requests in flight may take to finish.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How long [`ServerBuilder::start`] keeps trying a port in use, by default (see
/// [`ServerBuilder::bind_wait`]).
pub const DEFAULT_BIND_WAIT: Duration = Duration::from_secs(2);

/// Pause between two tries of a port in use.
const BIND_RETRY: Duration = Duration::from_millis(50);

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The bind address could not be bound.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The bound address could not be read back.
    #[error("cannot read the bound address: {0}")]
    LocalAddr(#[source] std::io::Error),
}

/// Configures and starts a [`Server`].
pub struct ServerBuilder {
    bind: SocketAddr,
    advertised_host: Option<String>,
    advertised_port: Option<u16>,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown_grace: Duration,
    bind_wait: Duration,
    state: Option<Arc<dyn StateProvider>>,
    routes: Option<axum::Router>,
    metrics: Option<Metrics>,
    artifacts: Vec<Artifact>,
}

impl std::fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("bind", &self.bind)
            .field("advertised_host", &self.advertised_host)
            .field("advertised_port", &self.advertised_port)
            .field("tls", &self.tls.is_some())
            .field("shutdown_grace", &self.shutdown_grace)
            .field("bind_wait", &self.bind_wait)
            .field("state", &self.state.is_some())
            .field("routes", &self.routes.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for ServerBuilder {
    fn default() -> Self {
        Self {
            bind: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            advertised_host: None,
            advertised_port: None,
            tls: None,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            bind_wait: DEFAULT_BIND_WAIT,
            state: None,
            routes: None,
            metrics: None,
            artifacts: Vec::new(),
        }
    }
}

impl ServerBuilder {
    /// The address to listen on (default `127.0.0.1:0`; port 0 picks a free port). Agents on
    /// other machines need a routable address here, or `0.0.0.0` with an
    /// [`advertised_host`](Self::advertised_host).
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.bind = addr;
        self
    }

    /// The host name or address agents reach the server at, used in artifact URIs (an IPv6
    /// literal may be given with or without brackets; default:
    /// the bound IP; when that is unspecified, `0.0.0.0` or `::`, the loopback address is used
    /// and a warning is logged, since no remote agent could reach it).
    pub fn advertised_host(mut self, host: impl Into<String>) -> Self {
        self.advertised_host = Some(host.into());
        self
    }

    /// The port agents reach the server at, when a proxy or port mapping sits in between
    /// (default: the bound port).
    pub fn advertised_port(mut self, port: u16) -> Self {
        self.advertised_port = Some(port);
        self
    }

    /// Serves HTTPS with this rustls configuration (its ALPN protocols should be empty or
    /// `http/1.1`: the server speaks HTTP/1.1). Artifact URIs then start with `https://`.
    pub fn tls(mut self, config: Arc<rustls::ServerConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// How long [`Server::shutdown`] waits for requests in flight (default 10 s).
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// How long [`start`](Self::start) keeps trying a port that is in use before it fails
    /// with [`ServerError::Bind`] (default 2 s; zero tries once). A fixed port given up a
    /// moment ago can still be held: a process this one spawned holds a copy of every open
    /// socket between its fork and its exec, the previous listener's included, so a
    /// framework's next term (or a restarted process) binding the same port can meet it.
    pub fn bind_wait(mut self, wait: Duration) -> Self {
        self.bind_wait = wait;
        self
    }

    /// The source of `GET /state`.
    pub fn state(mut self, provider: impl StateProvider) -> Self {
        self.state = Some(Arc::new(provider));
        self
    }

    /// The framework's own routes, served for every path the built-in routes do not take.
    pub fn routes(mut self, router: axum::Router) -> Self {
        self.routes = Some(router);
        self
    }

    /// The metrics registry `/metrics` serves (default: a new one, see [`Server::metrics`]).
    pub fn metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// An artifact registered before the server starts accepting requests.
    pub fn artifact(mut self, artifact: Artifact) -> Self {
        self.artifacts.push(artifact);
        self
    }

    /// Binds and starts serving in a background task.
    pub async fn start(self) -> Result<Server, ServerError> {
        let listener = bind(self.bind, self.bind_wait).await?;
        let local_addr = listener.local_addr().map_err(ServerError::LocalAddr)?;
        let host = match self.advertised_host {
            // A bare IPv6 literal needs brackets in a URL.
            Some(host) if host.contains(':') && !host.starts_with('[') => format!("[{host}]"),
            Some(host) => host,
            None if local_addr.ip().is_unspecified() => {
                tracing::warn!(
                    %local_addr,
                    "server bound to an unspecified address without an advertised host: artifact URIs use the loopback address"
                );
                if local_addr.is_ipv6() {
                    "[::1]".to_string()
                } else {
                    "127.0.0.1".to_string()
                }
            }
            None => match local_addr.ip() {
                IpAddr::V6(ip) => format!("[{ip}]"),
                IpAddr::V4(ip) => ip.to_string(),
            },
        };
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let port = self.advertised_port.unwrap_or(local_addr.port());
        let base_url = format!("{scheme}://{host}:{port}");
        let artifacts = Artifacts::new(base_url);
        for artifact in self.artifacts {
            artifacts.register(artifact);
        }
        let metrics = self.metrics.unwrap_or_default();
        let router = routes::router(
            routes::Shared {
                artifacts: artifacts.clone(),
                metrics: metrics.clone(),
                state: self.state,
            },
            self.routes,
        );
        let stop = CancellationToken::new();
        let task = tokio::spawn(listener::serve(
            listener,
            self.tls,
            router,
            stop.clone(),
            self.shutdown_grace,
        ));
        tracing::info!(%local_addr, url = artifacts.base_url(), "server started");
        Ok(Server {
            local_addr,
            artifacts,
            metrics,
            stop,
            task: Some(task),
        })
    }
}

/// Binds `addr`, trying again every [`BIND_RETRY`] while the port is in use, for up to `wait`.
async fn bind(addr: SocketAddr, wait: Duration) -> Result<TcpListener, ServerError> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match TcpListener::bind(addr).await {
            Ok(listener) => return Ok(listener),
            Err(source)
                if source.kind() == std::io::ErrorKind::AddrInUse
                    && tokio::time::Instant::now() + BIND_RETRY <= deadline =>
            {
                tracing::debug!(%addr, "address in use; trying again");
                tokio::time::sleep(BIND_RETRY).await;
            }
            Err(source) => return Err(ServerError::Bind { addr, source }),
        }
    }
}

/// A running server. Dropping it stops accepting connections (without waiting for the requests
/// in flight); [`shutdown`](Self::shutdown) also waits for them.
#[derive(Debug)]
pub struct Server {
    local_addr: SocketAddr,
    artifacts: Artifacts,
    metrics: Metrics,
    stop: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl Server {
    /// A builder with the defaults (`127.0.0.1:0`, plain HTTP).
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The URL agents reach the server at (`http://host:port`).
    pub fn base_url(&self) -> &str {
        self.artifacts.base_url()
    }

    /// The artifacts handle (cheap to clone; registrations take effect at once).
    pub fn artifacts(&self) -> Artifacts {
        self.artifacts.clone()
    }

    /// The metrics registry served at `/metrics`.
    pub fn metrics(&self) -> Metrics {
        self.metrics.clone()
    }

    /// A token that stops the server when cancelled (for wiring into a framework's own
    /// shutdown signal).
    pub fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Stops accepting connections and waits until the requests in flight finish, or the
    /// shutdown grace period ends.
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take()
            && let Err(err) = task.await
        {
            tracing::warn!(error = %err, "server task failed");
        }
        tracing::info!(local_addr = %self.local_addr, "server stopped");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
