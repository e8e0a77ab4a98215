//! Storage-side fencing: a [`FencedStore`] adds `create_revision(leader key) == revision` to
//! every write, so that a deposed leader's writes fail with [`Error::NotLeader`] and change
//! nothing, whatever the deposed process believes.
//!
//! A put or delete becomes a transaction `if fence then <write> else get(leader key)`; a
//! transaction becomes `if fence then <the whole transaction, nested> else get(leader key)`, so
//! the caller's own compares and branches keep their meaning and run only under the fence.
//! Reads, watches and lease calls pass through unfenced: a deposed leader may still read, it
//! cannot write.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::storage::{
    Compare, CompareOp, Error, KeyValue, Lease, LeaseId, Op, OpResult, RangePage, RangeRequest,
    Result, Store, Txn, TxnResponse, WatchStream,
};

/// Proof of leadership: the leader key and the create revision it had when this leader won.
/// Another leader recreates the key, with a larger create revision.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fence {
    /// The election's leader key.
    pub leader_key: String,
    /// The leader key's create revision at the win.
    pub revision: i64,
}

impl Fence {
    /// The compare every fenced write carries.
    pub fn compare(&self) -> Compare {
        Compare::create_revision(&self.leader_key, CompareOp::Equal, self.revision)
    }

    fn not_leader(&self) -> Error {
        Error::NotLeader {
            leader_key: self.leader_key.clone(),
            revision: self.revision,
        }
    }
}

/// A store view whose every write holds only while the [`Fence`] holds. Cloning shares the
/// counter of rejected writes.
#[derive(Debug, Clone)]
pub struct FencedStore<S> {
    inner: S,
    fence: Fence,
    rejected: Arc<AtomicU64>,
}

impl<S: Store> FencedStore<S> {
    /// Fences writes to `inner` with `fence`.
    pub fn new(inner: S, fence: Fence) -> Self {
        Self {
            inner,
            fence,
            rejected: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The fence.
    pub fn fence(&self) -> &Fence {
        &self.fence
    }

    /// How many writes this view (and its clones) had refused with [`Error::NotLeader`].
    pub fn rejected_writes(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }

    /// The unfenced store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Runs `ops` under the fence; answers the results of `ops` or [`Error::NotLeader`].
    async fn fenced(&self, ops: Vec<Op>) -> Result<TxnResponse> {
        let txn = Txn {
            compares: vec![self.fence.compare()],
            then: ops,
            otherwise: vec![Op::get(&self.fence.leader_key)],
        };
        let response = self.inner.txn(txn).await?;
        if response.succeeded {
            return Ok(response);
        }
        self.rejected.fetch_add(1, Ordering::Relaxed);
        let holder = match response.results.first() {
            Some(OpResult::Get(Some(kv))) => kv.create_revision,
            _ => 0,
        };
        tracing::warn!(
            leader_key = %self.fence.leader_key,
            our_revision = self.fence.revision,
            current_revision = holder,
            "fenced write refused: not the leader any more"
        );
        Err(self.fence.not_leader())
    }
}

#[async_trait]
impl<S: Store> Store for FencedStore<S> {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        self.inner.get(key).await
    }

    async fn put(&self, key: &str, value: Bytes, lease: Option<LeaseId>) -> Result<i64> {
        let op = Op::Put {
            key: key.to_owned(),
            value,
            lease,
        };
        Ok(self.fenced(vec![op]).await?.revision)
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let response = self.fenced(vec![Op::delete(key)]).await?;
        Ok(matches!(
            response.results.first(),
            Some(OpResult::Delete { deleted: 1.. })
        ))
    }

    async fn range(&self, prefix: &str, request: RangeRequest) -> Result<RangePage> {
        self.inner.range(prefix, request).await
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResponse> {
        let response = self.fenced(vec![Op::Txn(Box::new(txn))]).await?;
        match response.results.into_iter().next() {
            Some(OpResult::Txn(inner)) => Ok(inner),
            other => Err(Error::Rejected {
                reason: format!("fenced transaction answered {other:?}"),
            }),
        }
    }

    async fn watch(&self, prefix: &str, from_revision: i64) -> Result<WatchStream> {
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
