//! The one HTTP server stack of the master and the agents: an axum [`Router`] served over
//! HTTP/1.1 by hyper with [`HttpLimits`] applied, and the V1 request checks both share
//! ([`v1`]).
//!
//! What every server does against slow or hostile clients:
//! - **Header read timeout**: a request's headers must arrive within
//!   [`HttpLimits::header_read_timeout`]; the same timer runs while a kept-alive connection waits
//!   for its next request, so it is also the idle timeout. A connection sending one byte a second
//!   is dropped. A streaming response (a subscription) is not idle: the timer only runs while the
//!   server waits for a request.
//! - **Body read timeout**: a call's body must arrive within [`HttpLimits::body_read_timeout`]
//!   (408 otherwise), and be at most [`HttpLimits::max_call_body`] bytes (413, answered from the
//!   `Content-Length` before anything is read when the client announces a larger body).
//! - **Connection cap**: at most [`HttpLimits::max_connections`] connections are served. At the
//!   cap, each new connection makes the server close its oldest idle one (no request in
//!   progress), so `/health`, `/state` and calls stay answerable under a flood of idle
//!   connections; when none is idle, up to [`HttpLimits::reserved_connections`] more are
//!   accepted, and beyond that the server stops accepting until one ends (the kernel's backlog
//!   holds the rest).
//! - **Accept errors**: when the process is out of file descriptors (EMFILE, ENFILE) or kernel
//!   memory, the server closes an idle connection and backs off (10 ms doubling up to 1 s)
//!   instead of spinning on `accept`.
//! - **Bounded per-connection memory**: hyper's read buffer is capped at
//!   [`HttpLimits::max_buf_size`] (hyper's default is about 400 KiB), so idle and slow connections
//!   cannot pin large buffers; with the connection cap this bounds what a flood can make the
//!   allocator hold. Measured by the `server_limits` example: after 8,000 idle connections (each
//!   with half a request head) closed, the master's process kept 30.7 MiB resident with the
//!   defaults against 118.3 MiB without a cap and with hyper's buffer size (ratio 0.26).
//!
//! Answers to requests sent with `Connection: close` carry no `Connection` header, as Mesos'
//! (the server still closes; see `close_header`).
//!
//! On shutdown the listener closes at once; open connections finish their current request
//! (graceful shutdown) for up to [`HttpLimits::shutdown_grace`] and are then dropped.

mod close_header;
pub mod v1;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Limits and timeouts of one HTTP server (master or agent). `Default` gives production values;
/// tests use short ones.
#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// Time a client has to send a request's headers, and how long a kept-alive connection may
    /// wait idle for its next request (default 60 s, longer than the SDK client's 30 s pool idle
    /// timeout so that the client retires idle connections first).
    pub header_read_timeout: Duration,
    /// Time a client has to send a call's whole body once its headers arrived (default 60 s).
    pub body_read_timeout: Duration,
    /// Largest body of a scheduler, operator or executor call (default 4 MiB). Mesos sets no limit;
    /// legitimate calls stay well below this: an ACCEPT launching 1,000 command tasks, each with
    /// three resources, five labels and five environment variables, is 0.94 MB in JSON and
    /// 0.45 MB in protobuf (measured by the `server_limits` example), and executor UPDATEs carry
    /// small `data`. Larger bodies get 413. The worst a body under the default limit can cost to
    /// decode is about 190 MB (a protobuf SUBSCRIBE of two million empty roles); at most
    /// [`MAX_LARGE_DECODES`] such decodes run at once in a process.
    pub max_call_body: usize,
    /// Bodies larger than this are decoded on the blocking pool, so that one large call cannot
    /// stall the async workers serving the others (default 64 KiB).
    pub blocking_decode_threshold: usize,
    /// Connections served at once before idle ones are closed to make room (default 1,024).
    pub max_connections: usize,
    /// Connections accepted beyond `max_connections` when none is idle (default 64).
    pub reserved_connections: usize,
    /// Cap of hyper's per-connection read buffer (default 64 KiB; at least 8 KiB).
    pub max_buf_size: usize,
    /// How long open connections may finish their current request at shutdown (default 2 s).
    pub shutdown_grace: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(60),
            body_read_timeout: Duration::from_secs(60),
            max_call_body: 4 * 1024 * 1024,
            blocking_decode_threshold: 64 * 1024,
            max_connections: 1024,
            reserved_connections: 64,
            max_buf_size: 64 * 1024,
            shutdown_grace: Duration::from_secs(2),
        }
    }
}

/// How many bodies above [`HttpLimits::blocking_decode_threshold`] are decoded at once in this
/// process (by all its servers together); more wait for a turn. This bounds the memory a burst of
/// large calls can take (see [`HttpLimits::max_call_body`]).
pub const MAX_LARGE_DECODES: usize = 4;

/// hyper's smallest allowed `max_buf_size`.
const MIN_BUF_SIZE: usize = 8192;

/// First back-off after a failed `accept`, doubled up to [`MAX_ACCEPT_BACKOFF`].
const MIN_ACCEPT_BACKOFF: Duration = Duration::from_millis(10);
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);
/// Shortest interval between two warnings about failed accepts.
const WARNING_INTERVAL: Duration = Duration::from_secs(5);

/// One open connection, as the accept loop sees it.
#[derive(Debug)]
struct Connection {
    /// Requests in progress (until their response body is sent or dropped).
    active: Arc<AtomicUsize>,
    /// Drops the connection at once (it is idle: nothing in progress is lost).
    shed: CancellationToken,
}

/// The open connections of one server, oldest first.
#[derive(Debug, Default)]
struct Connections {
    open: Mutex<BTreeMap<u64, Connection>>,
    /// Signalled whenever a connection ends.
    ended: Notify,
}

impl Connections {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Connection>> {
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn count(&self) -> usize {
        self.lock().len()
    }

    /// Closes the oldest connection with no request in progress; `false` when none is idle.
    fn shed_idle(&self) -> bool {
        let mut open = self.lock();
        let idle = open
            .iter()
            .find(|(_, c)| c.active.load(Ordering::Acquire) == 0)
            .map(|(id, _)| *id);
        match idle.and_then(|id| open.remove(&id)) {
            Some(connection) => {
                connection.shed.cancel();
                true
            }
            None => false,
        }
    }
}

/// Removes a connection from the table when its task ends.
struct Registration {
    id: u64,
    connections: Arc<Connections>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.connections.lock().remove(&self.id);
        self.connections.ended.notify_waiters();
    }
}

/// Counts a request as in progress until dropped (with its response body).
struct Active(Arc<AtomicUsize>);

impl Active {
    fn new(counter: &Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::AcqRel);
        Self(Arc::clone(counter))
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Whether an `accept` error means the process or system ran out of resources.
fn out_of_resources(err: &std::io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(nix::libc::EMFILE | nix::libc::ENFILE | nix::libc::ENOBUFS | nix::libc::ENOMEM)
    )
}

/// Serves `router` on `listener` with `limits` until `cancel` fires, then closes the listener
/// and gives open connections [`HttpLimits::shutdown_grace`] to finish. `name` labels the logs.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    cancel: CancellationToken,
    name: &'static str,
) {
    let connections = Arc::new(Connections::default());
    let limits = Arc::new(limits);
    let mut next_id = 0u64;
    let mut backoff = MIN_ACCEPT_BACKOFF;
    let mut last_warning: Option<tokio::time::Instant> = None;
    let ceiling = limits
        .max_connections
        .max(1)
        .saturating_add(limits.reserved_connections);
    loop {
        // Past the reserve, wait until a connection ends (or an idle one can be closed).
        while connections.count() >= ceiling && !connections.shed_idle() {
            let ended = connections.ended.notified();
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = ended => {}
                _ = tokio::time::sleep(MAX_ACCEPT_BACKOFF) => {}
            }
        }
        let accepted = tokio::select! {
            _ = cancel.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let tcp = match accepted {
            Ok((tcp, _)) => {
                backoff = MIN_ACCEPT_BACKOFF;
                tcp
            }
            Err(err) => {
                if out_of_resources(&err) {
                    let shed = connections.shed_idle();
                    // Under a flood this repeats every few milliseconds: one warning per interval.
                    let now = tokio::time::Instant::now();
                    if last_warning.is_none_or(|at| now.duration_since(at) >= WARNING_INTERVAL) {
                        last_warning = Some(now);
                        tracing::warn!(server = name, %err, shed, "accept failed; backing off");
                    } else {
                        tracing::debug!(server = name, %err, shed, "accept failed; backing off");
                    }
                } else {
                    tracing::debug!(server = name, %err, "accept failed");
                }
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_ACCEPT_BACKOFF);
                continue;
            }
        };
        if connections.count() >= limits.max_connections.max(1) && connections.shed_idle() {
            tracing::debug!(
                server = name,
                "connection cap reached; closed an idle connection"
            );
        }
        next_id += 1;
        let id = next_id;
        let active = Arc::new(AtomicUsize::new(0));
        let shed = CancellationToken::new();
        connections.lock().insert(
            id,
            Connection {
                active: Arc::clone(&active),
                shed: shed.clone(),
            },
        );
        let registration = Registration {
            id,
            connections: Arc::clone(&connections),
        };
        tokio::spawn(serve_connection(
            tcp,
            router.clone(),
            Arc::clone(&limits),
            active,
            Closers {
                shutdown: cancel.clone(),
                shed,
            },
            registration,
            name,
        ));
    }
    drop(listener);
    // Connections were told to close (child tokens of `cancel`); wait for them, within the grace.
    let deadline = tokio::time::Instant::now() + limits.shutdown_grace;
    while connections.count() > 0 {
        let ended = connections.ended.notified();
        if connections.count() == 0 {
            break;
        }
        if tokio::time::timeout_at(deadline, ended).await.is_err() {
            break;
        }
    }
}

/// What ends a connection early.
struct Closers {
    /// The server stops: finish the current request, within the shutdown grace.
    shutdown: CancellationToken,
    /// The connection was shed while idle: drop it at once.
    shed: CancellationToken,
}

/// Serves one connection until it ends, the server shuts down (then gracefully, within the
/// shutdown grace) or it is shed (then at once).
async fn serve_connection(
    tcp: TcpStream,
    router: Router,
    limits: Arc<HttpLimits>,
    active: Arc<AtomicUsize>,
    closers: Closers,
    registration: Registration,
    name: &'static str,
) {
    let _registration = registration;
    let _ = tcp.set_nodelay(true);
    let router = TowerToHyperService::new(router);
    let close_mark = close_header::CloseMark::default();
    let marker = close_mark.clone();
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        if close_header::asks_to_close(request.headers()) {
            marker.set();
        }
        let guard = Active::new(&active);
        let response = hyper::service::Service::call(&router, request);
        async move {
            let response = match response.await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            // The request stays in progress until its (possibly streaming) body is done.
            Ok::<_, Infallible>(response.map(move |body| {
                Body::new(body.map_frame(move |frame| {
                    let _in_progress = &guard;
                    frame
                }))
            }))
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_buf_size.max(MIN_BUF_SIZE));
    let connection = builder.serve_connection(
        TokioIo::new(close_header::CloseHeaderFilter::new(tcp, close_mark)),
        service,
    );
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        _ = closers.shed.cancelled() => {
            tracing::debug!(server = name, "idle connection shed");
            Ok(())
        }
        _ = closers.shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            match tokio::time::timeout(limits.shutdown_grace, connection.as_mut()).await {
                Ok(result) => result,
                Err(_) => Ok(()),
            }
        }
    };
    if let Err(err) = result {
        tracing::debug!(server = name, %err, "connection ended");
    }
}
