//! Strongly consistent key-value storage for framework state: the [`Store`] contract, its
//! backends ([`MemoryStore`], and `EtcdStore` behind the cargo feature `etcd`), typed values
//! ([`StoreExt`]: serde JSON and prost) and per-framework key namespaces ([`Namespaced`]).
//!
//! # The contract
//!
//! A [`Store`] is etcd's data model (see [`types`]): one global revision, keys
//! with create/mod revisions and versions, leases, transactions, and watches that replay history
//! from a revision. Every backend must behave identically; the conformance suite in
//! `tests/storage_conformance.rs` runs the same cases against every backend. In particular:
//!
//! - **Writes** (`put`, `delete`, a transaction with writes) are atomic and durable when they
//!   return `Ok`; a write that changes something bumps the revision by exactly one; deleting a
//!   missing key changes nothing and bumps nothing.
//! - **Range** reads by prefix return keys in ascending byte order, at most `limit` per page;
//!   later pages are read at the first page's revision (a consistent snapshot).
//! - **Transactions** evaluate every [`Compare`] against the current state; all hold: the
//!   `then` ops run, else the `otherwise` ops; [`TxnResponse::succeeded`] says which. A failed
//!   compare is not an error.
//! - **Watches** deliver every put and delete under a prefix with `mod_revision >=
//!   from_revision`, in revision order, each exactly once, also across broken connections (the
//!   etcd backend reconnects and resumes after the last delivered revision). If the start
//!   revision (or the resume point) is compacted, the stream yields [`Error::Compacted`] and
//!   ends; resynchronize by reading the prefix with [`Store::range`] (page revision `r`) and
//!   watching again from `r + 1`. All events of one revision are delivered together.
//! - **Leases** are granted with a TTL, kept alive, revoked; when a lease expires or is
//!   revoked all keys attached to it are deleted at one revision (watchers see deletes).
//! - **Errors** are the typed [`Error`]s; no backend panics on what it reads.
//!
//! # Choices
//!
//! - Keys are UTF-8 strings (etcd allows any bytes; the SDK's keys are paths), values are bytes.
//! - A key may be written at most once per transaction branch (etcd's rule, enforced by every
//!   backend).
//! - The revision a watch starts from is explicit: to watch "from now", read first (a range
//!   answers its revision) and watch from `revision + 1`, so no change falls between the two.

mod channel_stream;
mod error;
mod memory;
mod namespace;
mod typed;
pub mod types;

#[cfg(feature = "etcd")]
pub mod etcd;

use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;

pub use error::{Error, Result};
pub use memory::{ManualClock, MemoryStore};
pub use namespace::{Namespace, Namespaced};
pub use typed::{StoreExt, decode_json, decode_proto, encode_json};
pub use types::{
    Compare, CompareOp, CompareTarget, Continuation, EventKind, KeyValue, Lease, LeaseId, Op,
    OpResult, RangePage, RangeRequest, Txn, TxnResponse, WatchEvent,
};

#[cfg(feature = "etcd")]
pub use etcd::{EtcdStore, EtcdStoreBuilder};

pub(crate) use error::{check_key, check_txn, check_value};

/// A stream of watch events; see the contract above. Dropping it cancels the watch.
pub type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchEvent>> + Send>>;

/// A strongly consistent key-value store with revisions, transactions, watches and leases.
///
/// See the [module documentation](self) for the contract every implementation keeps.
#[async_trait::async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Reads one key.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>>;

    /// Writes one key, attached to `lease` if given (a put without lease detaches the key from
    /// any lease). Returns the store revision of the write.
    async fn put(&self, key: &str, value: Bytes, lease: Option<LeaseId>) -> Result<i64>;

    /// Deletes one key; answers whether it existed.
    async fn delete(&self, key: &str) -> Result<bool>;

    /// Reads the keys starting with `prefix` (the empty prefix means every key), one page.
    async fn range(&self, prefix: &str, request: RangeRequest) -> Result<RangePage>;

    /// Runs a transaction.
    async fn txn(&self, txn: Txn) -> Result<TxnResponse>;

    /// Watches the keys starting with `prefix`, from revision `from_revision` (at least 1).
    async fn watch(&self, prefix: &str, from_revision: i64) -> Result<WatchStream>;

    /// Grants a lease with this time to live.
    async fn grant_lease(&self, ttl: Duration) -> Result<Lease>;

    /// Refreshes a lease to its full TTL; answers the TTL. A lease whose TTL ran out since its
    /// last refresh gives [`Error::LeaseExpired`]; a lease revoked, or not known, gives
    /// [`Error::LeaseNotFound`].
    async fn keep_alive(&self, lease: LeaseId) -> Result<Duration>;

    /// Revokes a lease, deleting its keys. Revoking a lease that is gone gives
    /// [`Error::LeaseNotFound`].
    async fn revoke_lease(&self, lease: LeaseId) -> Result<()>;

    /// Discards the history before `revision` (watches and reads at older revisions then get
    /// [`Error::Compacted`]).
    async fn compact(&self, revision: i64) -> Result<()>;

    /// The store's current revision.
    async fn current_revision(&self) -> Result<i64>;

    /// How late, at most, the store removes a lease (and its keys) after its TTL ran out:
    /// etcd checks for expired leases every 500 ms. Leader election grants leases that much
    /// shorter than its TTL, so the leader key of a dead leader is gone within the TTL. The
    /// default is zero; wrappers forward their inner store's.
    fn lease_expiry_lag(&self) -> Duration {
        Duration::ZERO
    }
}

#[async_trait::async_trait]
impl<S: Store + ?Sized> Store for std::sync::Arc<S> {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        (**self).get(key).await
    }
    async fn put(&self, key: &str, value: Bytes, lease: Option<LeaseId>) -> Result<i64> {
        (**self).put(key, value, lease).await
    }
    async fn delete(&self, key: &str) -> Result<bool> {
        (**self).delete(key).await
    }
    async fn range(&self, prefix: &str, request: RangeRequest) -> Result<RangePage> {
        (**self).range(prefix, request).await
    }
    async fn txn(&self, txn: Txn) -> Result<TxnResponse> {
        (**self).txn(txn).await
    }
    async fn watch(&self, prefix: &str, from_revision: i64) -> Result<WatchStream> {
        (**self).watch(prefix, from_revision).await
    }
    async fn grant_lease(&self, ttl: Duration) -> Result<Lease> {
        (**self).grant_lease(ttl).await
    }
    async fn keep_alive(&self, lease: LeaseId) -> Result<Duration> {
        (**self).keep_alive(lease).await
    }
    async fn revoke_lease(&self, lease: LeaseId) -> Result<()> {
        (**self).revoke_lease(lease).await
    }
    async fn compact(&self, revision: i64) -> Result<()> {
        (**self).compact(revision).await
    }
    async fn current_revision(&self) -> Result<i64> {
        (**self).current_revision().await
    }
    fn lease_expiry_lag(&self) -> Duration {
        (**self).lease_expiry_lag()
    }
}
