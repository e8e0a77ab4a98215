//! The data types of the [`Store`](super::Store) contract: key-values with their revisions,
//! leases, range pages, transactions (compares, operations, answers) and watch events.
//!
//! The model is etcd's MVCC model, so that an etcd backend maps one-to-one and other backends
//! (the in-process [`MemoryStore`](super::MemoryStore), ZooKeeper later) can emulate it:
//! - the store has one global, strictly increasing *revision*, bumped once by every write
//!   request that changes something (a transaction with several writes bumps it once);
//! - every live key has a `create_revision` (the revision that created it since it last did not
//!   exist), a `mod_revision` (the revision of its last change) and a `version` (number of
//!   changes since creation, starting at 1); a deleted key has none of these (all 0);
//! - a key may be attached to a lease and disappears when the lease expires or is revoked.

use std::time::Duration;

use bytes::Bytes;

/// Largest value the stores accept, in bytes (etcd refuses requests above 1.5 MiB by default;
/// both backends refuse values above this smaller limit with
/// [`Error::InvalidValue`](super::Error::InvalidValue)).
pub const MAX_VALUE_BYTES: usize = 1024 * 1024;

/// Longest key the stores accept, in bytes.
pub const MAX_KEY_BYTES: usize = 4096;

/// A lease id. Keys put with a lease are deleted when the lease expires or is revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LeaseId(pub i64);

/// A granted lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// Its id.
    pub id: LeaseId,
    /// The time to live the server granted (it may round the requested TTL up to whole
    /// seconds, and etcd enforces a minimum).
    pub ttl: Duration,
}

/// A live key with its value and metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The key.
    pub key: String,
    /// The value bytes.
    pub value: Bytes,
    /// The revision that created the key (since it last did not exist).
    pub create_revision: i64,
    /// The revision of the key's last change.
    pub mod_revision: i64,
    /// Number of changes since creation (1 after the first put).
    pub version: i64,
    /// The lease the key is attached to, if any.
    pub lease: Option<LeaseId>,
}

/// Where a paged range read goes on: pass it back in [`RangeRequest::continuation`].
///
/// Every page of one range is read at the revision of the first page, so the pages together
/// form one consistent snapshot. If that revision is compacted meanwhile the next page fails
/// with [`Error::Compacted`](super::Error::Compacted): start over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Continuation {
    /// The first key of the next page (inclusive).
    pub from_key: String,
    /// The snapshot revision of the range.
    pub revision: i64,
}

/// Options of a range read by prefix.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangeRequest {
    /// At most this many keys per page; `None` (or 0) means all.
    pub limit: Option<usize>,
    /// Where the previous page stopped; `None` for the first page.
    pub continuation: Option<Continuation>,
}

impl RangeRequest {
    /// Everything in one page.
    pub fn all() -> Self {
        Self::default()
    }

    /// Pages of at most `limit` keys.
    pub fn limit(limit: usize) -> Self {
        Self {
            limit: Some(limit),
            continuation: None,
        }
    }
}

/// One page of a range read, keys in ascending byte order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangePage {
    /// The keys of this page.
    pub kvs: Vec<KeyValue>,
    /// The revision this page was read at (the store's revision for a first page).
    pub revision: i64,
    /// `Some` when more keys follow.
    pub next: Option<Continuation>,
}

/// How a compare relates the key's current field to the given operand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    /// Equal.
    Equal,
    /// Not equal.
    NotEqual,
    /// Current field greater than the operand.
    Greater,
    /// Current field less than the operand.
    Less,
}

/// Which field of a key a compare looks at, with the operand.
///
/// For a key that does not exist, version, create and mod revision and lease are 0, and a
/// value compare is false whatever the operator (etcd's rule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompareTarget {
    /// The value bytes (ordered bytewise).
    Value(Bytes),
    /// The version.
    Version(i64),
    /// The create revision (0: the key does not exist).
    CreateRevision(i64),
    /// The mod revision.
    ModRevision(i64),
    /// The lease id (0: no lease).
    Lease(i64),
}

/// One condition of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compare {
    /// The key compared.
    pub key: String,
    /// The operator.
    pub op: CompareOp,
    /// The field and operand.
    pub target: CompareTarget,
}

impl Compare {
    /// `key`'s value compared with `value`.
    pub fn value(key: impl Into<String>, op: CompareOp, value: impl Into<Bytes>) -> Self {
        Self {
            key: key.into(),
            op,
            target: CompareTarget::Value(value.into()),
        }
    }
    /// `key`'s version compared with `version`.
    pub fn version(key: impl Into<String>, op: CompareOp, version: i64) -> Self {
        Self {
            key: key.into(),
            op,
            target: CompareTarget::Version(version),
        }
    }
    /// `key`'s create revision compared with `revision`.
    pub fn create_revision(key: impl Into<String>, op: CompareOp, revision: i64) -> Self {
        Self {
            key: key.into(),
            op,
            target: CompareTarget::CreateRevision(revision),
        }
    }
    /// `key`'s mod revision compared with `revision`.
    pub fn mod_revision(key: impl Into<String>, op: CompareOp, revision: i64) -> Self {
        Self {
            key: key.into(),
            op,
            target: CompareTarget::ModRevision(revision),
        }
    }
    /// `key`'s lease compared with `lease` (0: no lease).
    pub fn lease(key: impl Into<String>, op: CompareOp, lease: i64) -> Self {
        Self {
            key: key.into(),
            op,
            target: CompareTarget::Lease(lease),
        }
    }
    /// The key does not exist.
    pub fn absent(key: impl Into<String>) -> Self {
        Self::create_revision(key, CompareOp::Equal, 0)
    }
}

/// An operation of a transaction branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Put a value, optionally attached to a lease.
    Put {
        /// The key.
        key: String,
        /// The value.
        value: Bytes,
        /// The lease, if any.
        lease: Option<LeaseId>,
    },
    /// Delete a key (deleting a missing key is not an error).
    Delete {
        /// The key.
        key: String,
    },
    /// Read a key.
    Get {
        /// The key.
        key: String,
    },
    /// A nested transaction (used by fencing: the outer compare guards the whole inner one).
    Txn(Box<Txn>),
}

impl Op {
    /// A put without lease.
    pub fn put(key: impl Into<String>, value: impl Into<Bytes>) -> Self {
        Op::Put {
            key: key.into(),
            value: value.into(),
            lease: None,
        }
    }
    /// A put attached to `lease`.
    pub fn put_with_lease(key: impl Into<String>, value: impl Into<Bytes>, lease: LeaseId) -> Self {
        Op::Put {
            key: key.into(),
            value: value.into(),
            lease: Some(lease),
        }
    }
    /// A delete.
    pub fn delete(key: impl Into<String>) -> Self {
        Op::Delete { key: key.into() }
    }
    /// A read.
    pub fn get(key: impl Into<String>) -> Self {
        Op::Get { key: key.into() }
    }
}

/// A transaction: if every compare holds, the `then` operations run, otherwise the `otherwise`
/// operations, atomically and at one revision.
///
/// A key may be written (put or deleted) at most once per branch; a transaction that writes
/// a key twice is refused with [`Error::InvalidKey`](super::Error::InvalidKey).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Txn {
    /// The conditions (all must hold; none: the `then` branch runs).
    pub compares: Vec<Compare>,
    /// Run when every compare holds.
    pub then: Vec<Op>,
    /// Run when a compare fails.
    pub otherwise: Vec<Op>,
}

impl Txn {
    /// An empty transaction.
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds a compare.
    pub fn when(mut self, compare: Compare) -> Self {
        self.compares.push(compare);
        self
    }
    /// Adds an operation to the success branch.
    pub fn and_then(mut self, op: Op) -> Self {
        self.then.push(op);
        self
    }
    /// Adds an operation to the failure branch.
    pub fn or_else(mut self, op: Op) -> Self {
        self.otherwise.push(op);
        self
    }
}

/// The result of one operation of the branch that ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpResult {
    /// A put was done.
    Put,
    /// A delete was done; how many keys it removed (0 or 1).
    Delete {
        /// Removed keys.
        deleted: i64,
    },
    /// A read: the key, if it exists.
    Get(Option<KeyValue>),
    /// A nested transaction's answer.
    Txn(TxnResponse),
}

/// The answer of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnResponse {
    /// `true`: every compare held and the `then` branch ran; `false`: the `otherwise` branch ran.
    pub succeeded: bool,
    /// The store revision after the transaction.
    pub revision: i64,
    /// One result per operation of the branch that ran, in order.
    pub results: Vec<OpResult>,
}

/// What happened to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Created or changed.
    Put,
    /// Deleted (explicitly or by lease expiry).
    Delete,
}

/// One change seen by a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchEvent {
    /// Put or delete.
    pub kind: EventKind,
    /// For a put the new key-value; for a delete the key with `mod_revision` set to the
    /// deleting revision (value empty, other fields 0).
    pub kv: KeyValue,
}

impl WatchEvent {
    /// The revision of the change.
    pub fn revision(&self) -> i64 {
        self.kv.mod_revision
    }
}

/// The exclusive end of the key range that starts with `prefix` (etcd's prefix rule). `None`
/// for the empty prefix, or a prefix of only 0xff bytes: no end.
pub fn prefix_end(prefix: &str) -> Option<Vec<u8>> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}
