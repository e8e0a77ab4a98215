//! The store every write of Brigade General goes through when instances elect a leader: a
//! [`TermStore`] holds the fenced view ([`mesos_sdk::ha::FencedStore`]) of the current
//! leadership term, and sends every write through it. Task records, framework ids, committed
//! positions (the process schedulers' store) and processor documents written by the REST API
//! (the store source) thus all carry the leader key's create revision as a condition: a
//! deposed leader that still believes it leads (paused by SIGSTOP, partitioned) cannot change
//! anything once another instance won, and its writes fail with
//! [`Error::NotLeader`](mesos_sdk::storage::Error::NotLeader). Between terms (a standby, or
//! a leader whose term ended) every write is refused the same way. Reads, watches and lease
//! calls pass through unfenced.
//!
//! Brigade's choice: the term is installed before the reconcile loop is told to lead and
//! removed before it is told to drain, so no process scheduler runs with an unfenced writer;
//! a drain after the term ended cannot write (its positions are not committed and the next
//! leader runs those messages again, counted as duplicates), which is what at-least-once
//! asks.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use mesos_sdk::ha::{Fence, FencedStore};
use mesos_sdk::storage::{
    Error, KeyValue, Lease, LeaseId, RangePage, RangeRequest, Result, Store, Txn, TxnResponse,
    WatchStream,
};

/// The fenced view of one term over the shared store.
type TermView = FencedStore<Arc<dyn Store>>;

#[derive(Debug)]
struct Inner {
    store: Arc<dyn Store>,
    leader_key: String,
    term: RwLock<Option<TermView>>,
    refused: AtomicU64,
}

/// A store whose writes go through the current leadership term's fenced view, and fail with
/// [`Error::NotLeader`] outside a term. Clones share the term.
#[derive(Debug, Clone)]
pub struct TermStore {
    inner: Arc<Inner>,
}

impl TermStore {
    /// A view of `store` for the election on `leader_key`, with no term yet (every write is
    /// refused until [`TermStore::begin`]).
    pub fn new(store: Arc<dyn Store>, leader_key: impl Into<String>) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                leader_key: leader_key.into(),
                term: RwLock::new(None),
                refused: AtomicU64::new(0),
            }),
        }
    }

    /// The unfenced store (what the election itself uses).
    pub fn unfenced(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// Starts a term: from now on writes go through `view` (made with
    /// [`mesos_sdk::ha::Leadership::fenced`] over [`TermStore::unfenced`]).
    pub fn begin(&self, view: TermView) {
        tracing::info!(
            leader_key = %view.fence().leader_key,
            revision = view.fence().revision,
            "fenced writes: term begins"
        );
        if let Ok(mut term) = self.inner.term.write() {
            *term = Some(view);
        }
    }

    /// Ends the term: from now on every write is refused.
    pub fn end(&self) {
        if let Ok(mut term) = self.inner.term.write()
            && let Some(view) = term.take()
        {
            tracing::info!(
                revision = view.fence().revision,
                rejected = view.rejected_writes(),
                "fenced writes: term ends"
            );
        }
    }

    /// The fence of the current term, if one runs.
    pub fn fence(&self) -> Option<Fence> {
        self.current().map(|view| view.fence().clone())
    }

    /// How many writes were refused: by a term's fence, or outside any term.
    pub fn refused_writes(&self) -> u64 {
        self.inner.refused.load(Ordering::Relaxed)
    }

    fn current(&self) -> Option<TermView> {
        self.inner.term.read().ok().and_then(|term| term.clone())
    }

    /// The writer of the current term, or the refusal outside a term.
    fn writer(&self) -> Result<TermView> {
        self.current().ok_or_else(|| {
            self.inner.refused.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(leader_key = %self.inner.leader_key, "write refused: not leading");
            Error::NotLeader {
                leader_key: self.inner.leader_key.clone(),
                revision: 0,
            }
        })
    }

    /// Counts a fenced write's refusal.
    fn counted<T>(&self, result: Result<T>) -> Result<T> {
        if matches!(result, Err(Error::NotLeader { .. })) {
            self.inner.refused.fetch_add(1, Ordering::Relaxed);
        }
        result
    }
}

#[async_trait]
impl Store for TermStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        self.inner.store.get(key).await
    }

    async fn put(&self, key: &str, value: Bytes, lease: Option<LeaseId>) -> Result<i64> {
        let writer = self.writer()?;
        self.counted(writer.put(key, value, lease).await)
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let writer = self.writer()?;
        self.counted(writer.delete(key).await)
    }

    async fn range(&self, prefix: &str, request: RangeRequest) -> Result<RangePage> {
        self.inner.store.range(prefix, request).await
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResponse> {
        let writer = self.writer()?;
        self.counted(writer.txn(txn).await)
    }

    async fn watch(&self, prefix: &str, from_revision: i64) -> Result<WatchStream> {
        self.inner.store.watch(prefix, from_revision).await
    }

    async fn grant_lease(&self, ttl: Duration) -> Result<Lease> {
        self.inner.store.grant_lease(ttl).await
    }

    async fn keep_alive(&self, lease: LeaseId) -> Result<Duration> {
        self.inner.store.keep_alive(lease).await
    }

    async fn revoke_lease(&self, lease: LeaseId) -> Result<()> {
        self.inner.store.revoke_lease(lease).await
    }

    async fn compact(&self, revision: i64) -> Result<()> {
        self.inner.store.compact(revision).await
    }

    async fn current_revision(&self) -> Result<i64> {
        self.inner.store.current_revision().await
    }

    fn lease_expiry_lag(&self) -> Duration {
        self.inner.store.lease_expiry_lag()
    }
}
