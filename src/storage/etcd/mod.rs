//! [`EtcdStore`]: the [`Store`] backend on etcd v3 (crate `etcd-client`, cargo feature
//! `etcd`), and its [`EtcdStoreBuilder`] (endpoints, TLS, user and password, timeouts).
//!
//! Choices:
//! - every request is bounded by the request timeout (default 5 s): a request that gets no
//!   answer in time fails with [`Error::Timeout`], it never hangs; a refused connection fails
//!   with [`Error::Unavailable`] at once;
//! - requests carry etcd's `require leader` flag, so a member cut off from the quorum refuses
//!   them (and the client's balancer moves to another endpoint) instead of serving stale reads
//!   or silent watches;
//! - [`EtcdStoreBuilder::connect`] checks that the cluster answers before it returns, so a
//!   wrong endpoint list or wrong credentials fail at startup with an error naming the
//!   endpoints.

mod convert;
mod watch;

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use etcd_client as ec;

use super::types::{
    Continuation, KeyValue, Lease, LeaseId, RangePage, RangeRequest, Txn, TxnResponse, prefix_end,
};
use super::{Error, Result, Store, WatchStream, check_key, check_txn, check_value};
use convert::Context;

/// Default time allowed to establish a connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// HTTP/2 ping interval on open calls and streams (detects dead connections under watches).
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// Pause before sending again a request that could not be sent.
const NOT_SENT_RETRY: Duration = Duration::from_millis(25);
/// How often etcd's lessor revokes expired leases (a constant of etcd).
const ETCD_EXPIRY_CHECK: Duration = Duration::from_millis(500);
/// Default time allowed for one request.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Configures and connects an [`EtcdStore`].
#[derive(Debug, Clone)]
pub struct EtcdStoreBuilder {
    endpoints: Vec<String>,
    user: Option<(String, String)>,
    ca_pem: Option<Vec<u8>>,
    identity_pem: Option<(Vec<u8>, Vec<u8>)>,
    domain: Option<String>,
    connect_timeout: Duration,
    request_timeout: Duration,
}

impl EtcdStoreBuilder {
    /// Authenticates as `user` with `password`.
    pub fn user(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.user = Some((user.into(), password.into()));
        self
    }

    /// Trusts this CA (PEM) for `https://` endpoints.
    pub fn tls_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_pem = Some(pem.into());
        self
    }

    /// Presents this client certificate and key (PEM) to etcd (mutual TLS).
    pub fn tls_identity_pem(mut self, cert: impl Into<Vec<u8>>, key: impl Into<Vec<u8>>) -> Self {
        self.identity_pem = Some((cert.into(), key.into()));
        self
    }

    /// Expects this name in the server certificate (default: the endpoint's host).
    pub fn tls_domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }

    /// Time allowed to connect (default [`DEFAULT_CONNECT_TIMEOUT`]).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Time allowed for each request (default [`DEFAULT_REQUEST_TIMEOUT`]).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    fn options(&self) -> ec::ConnectOptions {
        // etcd answers pings more frequent than every 5 s (its `--grpc-keepalive-min-time`)
        // with GOAWAY, which breaks every stream: ping less often than that, and only while
        // a call or stream is open (etcd refuses pings without streams by default).
        let mut options = ec::ConnectOptions::new()
            .with_connect_timeout(self.connect_timeout)
            .with_timeout(self.request_timeout)
            .with_keep_alive(
                KEEP_ALIVE_INTERVAL,
                self.request_timeout.max(Duration::from_secs(1)),
            )
            .with_keep_alive_while_idle(false)
            .with_require_leader(true);
        if let Some((user, password)) = &self.user {
            options = options.with_user(user.clone(), password.clone());
        }
        if self.ca_pem.is_some() || self.identity_pem.is_some() || self.domain.is_some() {
            let mut tls = ec::TlsOptions::new();
            if let Some(ca) = &self.ca_pem {
                tls = tls.ca_certificate(ec::Certificate::from_pem(ca));
            }
            if let Some((cert, key)) = &self.identity_pem {
                tls = tls.identity(ec::Identity::from_pem(cert, key));
            }
            if let Some(domain) = &self.domain {
                tls = tls.domain_name(domain.clone());
            }
            options = options.with_tls(tls);
        }
        options
    }

    /// Connects and checks that the cluster answers. An unreachable cluster gives
    /// [`Error::Unavailable`] naming the endpoints; refused credentials give
    /// [`Error::Unauthenticated`].
    pub async fn connect(self) -> Result<EtcdStore> {
        if self.endpoints.is_empty() {
            return Err(Error::Config {
                reason: "no etcd endpoint given".into(),
            });
        }
        let endpoints = self.endpoints.join(", ");
        let connect = async {
            let mut client = ec::Client::connect(&self.endpoints, Some(self.options())).await?;
            client.status().await?;
            Ok::<_, ec::Error>(client)
        };
        let client = match tokio::time::timeout(self.connect_timeout, connect).await {
            Ok(Ok(client)) => client,
            Ok(Err(e)) => {
                return Err(match convert::error(e, Context::default()) {
                    Error::Unauthenticated { reason } => Error::Unauthenticated {
                        reason: format!(
                            "etcd at {endpoints} refused user {:?}: {reason}",
                            self.user.as_ref().map(|u| u.0.as_str()).unwrap_or_default()
                        ),
                    },
                    Error::Config { reason } => Error::Config { reason },
                    other => Error::Unavailable {
                        reason: format!("cannot reach etcd at {endpoints}: {other}"),
                    },
                });
            }
            Err(_) => {
                return Err(Error::Unavailable {
                    reason: format!(
                        "cannot reach etcd at {endpoints}: no answer within {:?}",
                        self.connect_timeout
                    ),
                });
            }
        };
        tracing::debug!(%endpoints, "connected to etcd");
        Ok(EtcdStore {
            client,
            request_timeout: self.request_timeout,
            lease_deadlines: std::sync::Arc::default(),
        })
    }
}

/// A [`Store`] on an etcd v3 cluster. Cloning shares the connection.
#[derive(Clone)]
pub struct EtcdStore {
    client: ec::Client,
    request_timeout: Duration,
    /// Per lease this client granted or refreshed: the earliest time etcd may expire it (the
    /// send time of the last confirmed grant or refresh plus its TTL). A keep-alive that finds
    /// the lease gone after that time answers [`Error::LeaseExpired`], before it
    /// [`Error::LeaseNotFound`] (revoked, or never known).
    lease_deadlines: std::sync::Arc<std::sync::Mutex<HashMap<i64, std::time::Instant>>>,
}

/// How long a passed lease deadline is remembered (entries of leases nobody refreshes or
/// revokes are dropped after this).
const LEASE_DEADLINE_KEPT: Duration = Duration::from_secs(3600);

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("request_timeout", &self.request_timeout)
            .finish_non_exhaustive()
    }
}

impl EtcdStore {
    /// The error for a lease etcd no longer knows: [`Error::LeaseExpired`] when its deadline
    /// (as this client saw it) has passed, [`Error::LeaseNotFound`] otherwise.
    fn lease_gone(&self, lease: LeaseId) -> Error {
        let expired = self
            .lease_deadlines
            .lock()
            .ok()
            .and_then(|mut deadlines| deadlines.remove(&lease.0))
            .is_some_and(|deadline| deadline <= std::time::Instant::now());
        if expired {
            Error::LeaseExpired { lease: lease.0 }
        } else {
            Error::LeaseNotFound { lease: lease.0 }
        }
    }

    /// A builder for a store on these endpoints (`http://host:2379`, `https://...`).
    pub fn builder<I, S>(endpoints: I) -> EtcdStoreBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        EtcdStoreBuilder {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            user: None,
            ca_pem: None,
            identity_pem: None,
            domain: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }

    /// The underlying `etcd-client` client (for what the [`Store`] contract does not cover).
    pub fn client(&self) -> &ec::Client {
        &self.client
    }

    /// Runs one request under the request timeout, mapping its error. A request that surely
    /// never reached a server (connection refused: a dead member, etcd restarting) is sent
    /// again, to another member if the balancer has one, until the timeout; it then fails with
    /// the last [`Error::Unavailable`]. A request without an answer in time fails with
    /// [`Error::Timeout`] (its outcome unknown).
    async fn timed<T, F, Fut>(
        &self,
        operation: &'static str,
        context: Context<'_>,
        mut request: F,
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = std::result::Result<T, ec::Error>>,
    {
        let deadline = tokio::time::Instant::now() + self.request_timeout;
        let mut not_sent = None;
        loop {
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            let outcome = if remaining.is_zero() {
                Err(())
            } else {
                tokio::time::timeout(remaining, request())
                    .await
                    .map_err(|_| ())
            };
            match outcome {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(e)) if convert::not_sent(&e) => {
                    tracing::trace!(operation, error = %e, "etcd request not sent; retrying");
                    not_sent = Some(e);
                    tokio::time::sleep(NOT_SENT_RETRY.min(remaining)).await;
                }
                Ok(Err(e)) => return Err(convert::error(e, context)),
                Err(()) => {
                    return Err(match not_sent {
                        Some(e) => convert::error(e, context),
                        None => Error::Timeout {
                            operation,
                            after: self.request_timeout,
                        },
                    });
                }
            }
        }
    }
}

fn header_revision(header: Option<&ec::ResponseHeader>) -> i64 {
    header.map(|h| h.revision()).unwrap_or_default()
}

#[async_trait]
impl Store for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        check_key(key)?;
        let kv = self.client.kv_client();
        let context = Context {
            key: Some(key),
            ..Context::default()
        };
        let response = self
            .timed("get", context, || {
                let mut kv = kv.clone();
                async move { kv.get(key, None).await }
            })
            .await?;
        Ok(response.kvs().first().map(convert::kv))
    }

    async fn put(&self, key: &str, value: Bytes, lease: Option<LeaseId>) -> Result<i64> {
        check_key(key)?;
        check_value(key, &value)?;
        let kv = self.client.kv_client();
        let options = lease.map(|l| ec::PutOptions::new().with_lease(l.0));
        let context = Context {
            key: Some(key),
            lease: lease.map(|l| l.0),
            ..Context::default()
        };
        let response = self
            .timed("put", context, || {
                let (mut kv, value, options) = (kv.clone(), value.to_vec(), options.clone());
                async move { kv.put(key, value, options).await }
            })
            .await?;
        Ok(header_revision(response.header()))
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        check_key(key)?;
        let kv = self.client.kv_client();
        let context = Context {
            key: Some(key),
            ..Context::default()
        };
        let response = self
            .timed("delete", context, || {
                let mut kv = kv.clone();
                async move { kv.delete(key, None).await }
            })
            .await?;
        Ok(response.deleted() > 0)
    }

    async fn range(&self, prefix: &str, request: RangeRequest) -> Result<RangePage> {
        let (start, revision) = match &request.continuation {
            Some(c) => (c.from_key.clone(), Some(c.revision)),
            None => (prefix.to_owned(), None),
        };
        let mut options = match prefix_end(prefix) {
            Some(end) => ec::GetOptions::new().with_range(end),
            None => ec::GetOptions::new().with_from_key(),
        };
        let limit = request.limit.filter(|l| *l > 0);
        if let Some(limit) = limit {
            options = options.with_limit(i64::try_from(limit).unwrap_or(i64::MAX));
        }
        if let Some(revision) = revision {
            options = options.with_revision(revision);
        }
        let start = if start.is_empty() {
            "\0".to_owned()
        } else {
            start
        };
        let context = Context {
            key: Some(prefix),
            revision,
            ..Context::default()
        };
        let kv = self.client.kv_client();
        let response = self
            .timed("range", context, || {
                let (mut kv, start, options) = (kv.clone(), start.clone(), options.clone());
                async move { kv.get(start, Some(options)).await }
            })
            .await?;
        let kvs: Vec<KeyValue> = response.kvs().iter().map(convert::kv).collect();
        let revision = revision.unwrap_or_else(|| header_revision(response.header()));
        let next = match (response.more(), kvs.last()) {
            (true, Some(last)) => Some(Continuation {
                from_key: format!("{}\0", last.key),
                revision,
            }),
            _ => None,
        };
        Ok(RangePage {
            kvs,
            revision,
            next,
        })
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResponse> {
        check_txn(&txn)?;
        let kv = self.client.kv_client();
        let context = Context {
            key: txn.compares.first().map(|c| c.key.as_str()),
            lease: convert::first_lease(&txn.then).or_else(|| convert::first_lease(&txn.otherwise)),
            ..Context::default()
        };
        let response = self
            .timed("txn", context, || {
                let (mut kv, request) = (kv.clone(), convert::txn(&txn));
                async move { kv.txn(request).await }
            })
            .await?;
        Ok(convert::txn_response(
            &response,
            header_revision(response.header()),
        ))
    }

    async fn watch(&self, prefix: &str, from_revision: i64) -> Result<WatchStream> {
        if from_revision < 1 {
            return Err(Error::Rejected {
                reason: format!("watch start revision {from_revision} is not positive"),
            });
        }
        Ok(watch::start(
            self.client.clone(),
            prefix.to_owned(),
            from_revision,
        ))
    }

    async fn grant_lease(&self, ttl: Duration) -> Result<Lease> {
        let seconds = i64::try_from(ttl.as_secs_f64().ceil().max(1.0) as u64).unwrap_or(i64::MAX);
        let lease = self.client.lease_client();
        let sent = std::time::Instant::now();
        let response = self
            .timed("grant lease", Context::default(), || {
                let mut lease = lease.clone();
                async move { lease.grant(seconds, None).await }
            })
            .await?;
        if !response.error().is_empty() {
            return Err(Error::Rejected {
                reason: response.error().to_owned(),
            });
        }
        let ttl = Duration::from_secs(u64::try_from(response.ttl()).unwrap_or_default());
        if let Ok(mut deadlines) = self.lease_deadlines.lock() {
            deadlines.retain(|_, deadline| deadline.elapsed() < LEASE_DEADLINE_KEPT);
            deadlines.insert(response.id(), sent + ttl);
        }
        Ok(Lease {
            id: LeaseId(response.id()),
            ttl,
        })
    }

    async fn keep_alive(&self, lease: LeaseId) -> Result<Duration> {
        let client = self.client.lease_client();
        let context = Context {
            lease: Some(lease.0),
            ..Context::default()
        };
        let sent = std::time::Instant::now();
        let ttl = self
            .timed("keep lease alive", context, || {
                let mut client = client.clone();
                async move {
                    // Opening the keep-alive stream sends one refresh and checks its answer
                    // (TTL 0: the lease is gone); a second refresh reports the TTL.
                    let (mut keeper, mut stream) = client.keep_alive(lease.0).await?;
                    keeper.keep_alive().await?;
                    Ok(stream.message().await?.map(|r| r.ttl()).unwrap_or_default())
                }
            })
            .await;
        let ttl = match ttl {
            Ok(ttl) if ttl > 0 => Duration::from_secs(u64::try_from(ttl).unwrap_or_default()),
            Ok(_) | Err(Error::LeaseNotFound { .. }) => return Err(self.lease_gone(lease)),
            Err(e) => return Err(e),
        };
        if let Ok(mut deadlines) = self.lease_deadlines.lock() {
            deadlines.insert(lease.0, sent + ttl);
        }
        Ok(ttl)
    }

    async fn revoke_lease(&self, lease: LeaseId) -> Result<()> {
        let client = self.client.lease_client();
        let context = Context {
            lease: Some(lease.0),
            ..Context::default()
        };
        let revoked = self
            .timed("revoke lease", context, || {
                let mut client = client.clone();
                async move { client.revoke(lease.0).await }
            })
            .await;
        if matches!(revoked, Ok(_) | Err(Error::LeaseNotFound { .. }))
            && let Ok(mut deadlines) = self.lease_deadlines.lock()
        {
            deadlines.remove(&lease.0);
        }
        revoked.map(|_| ())
    }

    async fn compact(&self, revision: i64) -> Result<()> {
        let kv = self.client.kv_client();
        let context = Context {
            revision: Some(revision),
            ..Context::default()
        };
        self.timed("compact", context, || {
            let mut kv = kv.clone();
            let options = ec::CompactionOptions::new().with_physical();
            async move { kv.compact(revision, Some(options)).await }
        })
        .await?;
        Ok(())
    }

    async fn current_revision(&self) -> Result<i64> {
        let kv = self.client.kv_client();
        let options = ec::GetOptions::new().with_keys_only().with_limit(1);
        let response = self
            .timed("current revision", Context::default(), || {
                let (mut kv, options) = (kv.clone(), options.clone());
                async move { kv.get("\0", Some(options)).await }
            })
            .await?;
        Ok(header_revision(response.header()))
    }

    /// etcd's lessor looks for expired leases every 500 ms (not configurable).
    fn lease_expiry_lag(&self) -> Duration {
        ETCD_EXPIRY_CHECK
    }
}
