//! The typed errors of every [`Store`](super::Store) backend, and the key and value checks all
//! backends share.

use std::time::Duration;

use super::types::{MAX_KEY_BYTES, MAX_VALUE_BYTES};

/// Result of store operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong in a store operation. Every backend maps its failures onto these variants,
/// so callers match on them without knowing the backend.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The backend cannot be reached or cannot serve requests now (connection refused, no
    /// quorum, shutting down). A write that failed this way may or may not have been applied
    /// if the failure came after sending; retrying later is reasonable.
    #[error("store unavailable: {reason}")]
    Unavailable {
        /// The backend's words.
        reason: String,
    },
    /// The operation did not finish within the configured request timeout. Its outcome is
    /// unknown (a write may have been applied).
    #[error("store operation {operation} timed out after {after:?}")]
    Timeout {
        /// Which operation.
        operation: &'static str,
        /// The configured timeout.
        after: Duration,
    },
    /// The credentials were refused (wrong user or password, or the user may not do this).
    #[error("store refused the credentials: {reason}")]
    Unauthenticated {
        /// The backend's words.
        reason: String,
    },
    /// A conditional write's compare did not hold (helpers such as
    /// [`StoreExt::create`](super::StoreExt::create) report a failed transaction this way).
    #[error("compare failed on key {key}")]
    CompareFailed {
        /// The key whose condition did not hold.
        key: String,
    },
    /// The lease does not exist: never granted (or granted by another client of etcd whose
    /// expiry this client cannot tell), revoked, or, for anything but a keep-alive, expired.
    #[error("lease {lease:#x} not found (revoked or expired)")]
    LeaseNotFound {
        /// The lease id.
        lease: i64,
    },
    /// A keep-alive came too late: the lease's TTL ran out since its last refresh (the
    /// memory store remembers its recently expired leases; the etcd store, the deadlines of
    /// the leases it granted or refreshed).
    #[error("lease {lease:#x} expired")]
    LeaseExpired {
        /// The lease id.
        lease: i64,
    },
    /// The requested revision was compacted away: history before `compacted` is gone. To
    /// resynchronize, read the whole prefix (a [`RangePage`](super::RangePage) tells its
    /// revision `r`) and watch again from `r + 1`.
    #[error("revision {requested} is compacted (oldest kept revision is {compacted})")]
    Compacted {
        /// The revision asked for.
        requested: i64,
        /// The compaction revision: the oldest revision still readable (etcd does not say it
        /// for reads at an old revision; then this repeats `requested`).
        compacted: i64,
    },
    /// The key is not acceptable (empty, too long, outside the namespace, written twice in one
    /// transaction).
    #[error("invalid key {key:?}: {reason}")]
    InvalidKey {
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
    /// The value is not acceptable (too large, not encodable).
    #[error("invalid value for key {key:?}: {reason}")]
    InvalidValue {
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
    /// A stored value does not decode into the expected type.
    #[error("value of key {key:?} does not decode: {reason}")]
    Decode {
        /// The key.
        key: String,
        /// The decoder's words.
        reason: String,
    },
    /// A fenced write was refused because the writer no longer leads: the leader key is gone
    /// or was recreated by another leader. Nothing was changed.
    #[error("not the leader any more (leader key {leader_key}, our revision {revision})")]
    NotLeader {
        /// The election's leader key.
        leader_key: String,
        /// The create revision the writer's leadership had.
        revision: i64,
    },
    /// The backend refused the request for another reason (its words are kept).
    #[error("store refused the request: {reason}")]
    Rejected {
        /// The backend's words.
        reason: String,
    },
    /// The store was configured wrongly (bad endpoint, bad TLS material).
    #[error("store configuration: {reason}")]
    Config {
        /// Why.
        reason: String,
    },
}

impl Error {
    /// Whether retrying the same request later may succeed (unavailable or timed out).
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Unavailable { .. } | Error::Timeout { .. })
    }
}

/// Checks a key: non-empty, at most [`MAX_KEY_BYTES`].
pub(crate) fn check_key(key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(Error::InvalidKey {
            key: key.to_owned(),
            reason: "empty key".into(),
        });
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(Error::InvalidKey {
            key: key.chars().take(64).collect::<String>() + "...",
            reason: format!("{} bytes, more than {MAX_KEY_BYTES}", key.len()),
        });
    }
    Ok(())
}

/// Checks a value's size against [`MAX_VALUE_BYTES`].
pub(crate) fn check_value(key: &str, value: &[u8]) -> Result<()> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(Error::InvalidValue {
            key: key.to_owned(),
            reason: format!("{} bytes, more than {MAX_VALUE_BYTES}", value.len()),
        });
    }
    Ok(())
}

/// Checks every key and value of a transaction, and that no branch writes a key twice (etcd
/// refuses that with "duplicate key given in txn request"; every backend refuses it alike).
pub(crate) fn check_txn(txn: &super::types::Txn) -> Result<()> {
    for compare in &txn.compares {
        check_key(&compare.key)?;
    }
    check_branch(&txn.then)?;
    check_branch(&txn.otherwise)?;
    Ok(())
}

/// Checks one branch and returns the keys it writes (nested transactions included).
fn check_branch(ops: &[super::types::Op]) -> Result<std::collections::BTreeSet<String>> {
    use super::types::Op;
    let mut written = std::collections::BTreeSet::new();
    let twice = |key: &str| Error::InvalidKey {
        key: key.to_owned(),
        reason: "written twice in one transaction branch".into(),
    };
    for op in ops {
        match op {
            Op::Put { key, value, .. } => {
                check_key(key)?;
                check_value(key, value)?;
                if !written.insert(key.clone()) {
                    return Err(twice(key));
                }
            }
            Op::Delete { key } => {
                check_key(key)?;
                if !written.insert(key.clone()) {
                    return Err(twice(key));
                }
            }
            Op::Get { key } => check_key(key)?,
            Op::Txn(inner) => {
                for compare in &inner.compares {
                    check_key(&compare.key)?;
                }
                let mut nested = check_branch(&inner.then)?;
                nested.extend(check_branch(&inner.otherwise)?);
                for key in nested {
                    if !written.insert(key.clone()) {
                        return Err(twice(&key));
                    }
                }
            }
        }
    }
    Ok(written)
}
