//! Per-framework key namespaces: every key of framework `name` lives under
//! `/mesos-sdk/<name>/`, so several frameworks share one etcd safely. [`Namespaced`] wraps a
//! store and refuses any key outside its namespace with [`Error::InvalidKey`].

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use super::types::{KeyValue, Lease, LeaseId, Op, RangePage, RangeRequest, Txn, TxnResponse};
use super::{Error, Result, Store, WatchStream};

/// The root under which every framework's namespace lives.
pub const ROOT: &str = "/mesos-sdk/";

/// The key prefix of one framework: `/mesos-sdk/<framework name>/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    prefix: String,
}

impl Namespace {
    /// The namespace of framework `name`. The name must be non-empty and contain no `/` and no
    /// control characters.
    pub fn new(name: &str) -> Result<Self> {
        if name.is_empty() || name.contains('/') || name.chars().any(char::is_control) {
            return Err(Error::InvalidKey {
                key: name.to_owned(),
                reason: "a framework name for a namespace must be non-empty, without '/' and \
                         control characters"
                    .into(),
            });
        }
        Ok(Self {
            prefix: format!("{ROOT}{name}/"),
        })
    }

    /// The prefix, `/mesos-sdk/<name>/`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The full key of `relative` (`framework-id` becomes `/mesos-sdk/<name>/framework-id`).
    pub fn key(&self, relative: &str) -> String {
        format!("{}{}", self.prefix, relative.trim_start_matches('/'))
    }

    /// Whether `key` is inside the namespace.
    pub fn contains(&self, key: &str) -> bool {
        key.starts_with(&self.prefix)
    }

    /// Refuses a key outside the namespace.
    pub fn check(&self, key: &str) -> Result<()> {
        if self.contains(key) {
            Ok(())
        } else {
            Err(Error::InvalidKey {
                key: key.to_owned(),
                reason: format!("outside the namespace {}", self.prefix),
            })
        }
    }

    fn check_ops(&self, ops: &[Op]) -> Result<()> {
        for op in ops {
            match op {
                Op::Put { key, .. } | Op::Delete { key } | Op::Get { key } => self.check(key)?,
                Op::Txn(inner) => self.check_txn(inner)?,
            }
        }
        Ok(())
    }

    fn check_txn(&self, txn: &Txn) -> Result<()> {
        for compare in &txn.compares {
            self.check(&compare.key)?;
        }
        self.check_ops(&txn.then)?;
        self.check_ops(&txn.otherwise)
    }
}

/// A store view that only accepts keys inside one [`Namespace`] (full keys: build them with
/// [`Namespace::key`]). Leases are not namespaced.
#[derive(Debug, Clone)]
pub struct Namespaced<S> {
    inner: S,
    namespace: Namespace,
}

impl<S: Store> Namespaced<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, namespace: Namespace) -> Self {
        Self { inner, namespace }
    }

    /// The namespace.
    pub fn namespace(&self) -> &Namespace {
        &self.namespace
    }

    /// The full key of `relative`.
    pub fn key(&self, relative: &str) -> String {
        self.namespace.key(relative)
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

#[async_trait]
impl<S: Store> Store for Namespaced<S> {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        self.namespace.check(key)?;
        self.inner.get(key).await
    }
    async fn put(&self, key: &str, value: Bytes, lease: Option<LeaseId>) -> Result<i64> {
        self.namespace.check(key)?;
        self.inner.put(key, value, lease).await
    }
    async fn delete(&self, key: &str) -> Result<bool> {
        self.namespace.check(key)?;
        self.inner.delete(key).await
    }
    async fn range(&self, prefix: &str, request: RangeRequest) -> Result<RangePage> {
        self.namespace.check(prefix)?;
        self.inner.range(prefix, request).await
    }
    async fn txn(&self, txn: Txn) -> Result<TxnResponse> {
        self.namespace.check_txn(&txn)?;
        self.inner.txn(txn).await
    }
    async fn watch(&self, prefix: &str, from_revision: i64) -> Result<WatchStream> {
        self.namespace.check(prefix)?;
        self.inner.watch(prefix, from_revision).await
    }
    async fn grant_lease(&self, ttl: Duration) -> Result<Lease> {
        self.inner.grant_lease(ttl).await
    }
    async fn keep_alive(&self, lease: LeaseId) -> Result<Duration> {
        self.inner.keep_alive(lease).await
    }
    async fn revoke_lease(&self, lease: LeaseId) -> Result<()> {
        self.inner.revoke_lease(lease).await
    }
    async fn compact(&self, revision: i64) -> Result<()> {
        self.inner.compact(revision).await
    }
    async fn current_revision(&self) -> Result<i64> {
        self.inner.current_revision().await
    }
    fn lease_expiry_lag(&self) -> Duration {
        self.inner.lease_expiry_lag()
    }
}
