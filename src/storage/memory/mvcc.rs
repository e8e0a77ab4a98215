//! The in-memory MVCC state machine behind [`MemoryStore`](super::MemoryStore): per-key
//! history, the event log that watches replay, transactions, compaction, leases and the
//! watchers to notify. Pure state: no locking, no clock, no async.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::storage::types::{
    Compare, CompareOp, CompareTarget, Continuation, EventKind, KeyValue, LeaseId, Op, OpResult,
    RangePage, RangeRequest, Txn, TxnResponse, WatchEvent, prefix_end,
};
use crate::storage::{Error, Result};

/// A lease and the keys attached to it.
#[derive(Debug)]
pub(super) struct LeaseEntry {
    pub ttl: Duration,
    /// Clock time at which it expires.
    pub deadline: Duration,
    pub keys: BTreeSet<String>,
}

/// A registered watch.
#[derive(Debug)]
struct Watcher {
    prefix: String,
    tx: mpsc::UnboundedSender<Result<WatchEvent>>,
}

/// The whole state.
#[derive(Debug)]
pub(super) struct Mvcc {
    /// The current revision (1 for an empty store, as in etcd).
    pub revision: i64,
    /// The oldest readable revision (reads and watches below it are compacted).
    pub compacted: i64,
    /// Per key: (revision, value or tombstone), ascending.
    history: BTreeMap<String, Vec<(i64, Option<KeyValue>)>>,
    /// Per revision: its events, for watch replay.
    log: BTreeMap<i64, Vec<WatchEvent>>,
    pub leases: HashMap<i64, LeaseEntry>,
    /// Ids of the leases that expired (not revoked), the most recent [`EXPIRED_KEPT`]: a
    /// keep-alive on one of them answers [`Error::LeaseExpired`].
    expired: BTreeSet<i64>,
    next_lease: i64,
    watchers: Vec<Watcher>,
    /// Revisions kept by automatic compaction (`None`: all history is kept).
    pub retention: Option<i64>,
}

/// How many expired lease ids the store remembers (ids grow, so the oldest are dropped).
const EXPIRED_KEPT: usize = 4096;

impl Mvcc {
    pub fn new() -> Self {
        Self {
            revision: 1,
            compacted: 0,
            history: BTreeMap::new(),
            log: BTreeMap::new(),
            leases: HashMap::new(),
            expired: BTreeSet::new(),
            // Lease ids are opaque; start away from small numbers so nobody relies on them.
            next_lease: 0x694d_0000 + i64::from(rand::random::<u16>()),
            watchers: Vec::new(),
            retention: None,
        }
    }

    fn current(&self, key: &str) -> Option<&KeyValue> {
        self.history.get(key)?.last()?.1.as_ref()
    }

    fn at(&self, key: &str, revision: i64) -> Option<&KeyValue> {
        let history = self.history.get(key)?;
        history
            .iter()
            .rev()
            .find(|(r, _)| *r <= revision)
            .and_then(|(_, kv)| kv.as_ref())
    }

    pub fn get(&self, key: &str) -> Option<KeyValue> {
        self.current(key).cloned()
    }

    pub fn range(&self, prefix: &str, request: &RangeRequest) -> Result<RangePage> {
        let (start, revision) = match &request.continuation {
            Some(c) => (c.from_key.clone(), c.revision),
            None => (prefix.to_owned(), self.revision),
        };
        if revision < self.compacted {
            return Err(Error::Compacted {
                requested: revision,
                compacted: self.compacted,
            });
        }
        let end = prefix_end(prefix);
        let limit = request.limit.filter(|l| *l > 0).unwrap_or(usize::MAX);
        let mut kvs = Vec::new();
        let mut next = None;
        for (key, _) in self.history.range(start..) {
            if end.as_deref().is_some_and(|end| key.as_bytes() >= end) {
                break;
            }
            if !key.starts_with(prefix) {
                continue;
            }
            let Some(kv) = self.at(key, revision) else {
                continue;
            };
            if kvs.len() == limit {
                next = Some(Continuation {
                    from_key: key.clone(),
                    revision,
                });
                break;
            }
            kvs.push(kv.clone());
        }
        Ok(RangePage {
            kvs,
            revision,
            next,
        })
    }

    fn compare(&self, compare: &Compare) -> bool {
        let kv = self.current(&compare.key);
        let ordering = match (&compare.target, kv) {
            (CompareTarget::Value(_), None) => return false,
            (CompareTarget::Value(v), Some(kv)) => kv.value.as_ref().cmp(v.as_ref()),
            (CompareTarget::Version(v), kv) => kv.map_or(0, |kv| kv.version).cmp(v),
            (CompareTarget::CreateRevision(v), kv) => kv.map_or(0, |kv| kv.create_revision).cmp(v),
            (CompareTarget::ModRevision(v), kv) => kv.map_or(0, |kv| kv.mod_revision).cmp(v),
            (CompareTarget::Lease(v), kv) => kv.and_then(|kv| kv.lease).map_or(0, |l| l.0).cmp(v),
        };
        match compare.op {
            CompareOp::Equal => ordering.is_eq(),
            CompareOp::NotEqual => ordering.is_ne(),
            CompareOp::Greater => ordering.is_gt(),
            CompareOp::Less => ordering.is_lt(),
        }
    }

    /// Every lease any put in `ops` (nested branches included) attaches must exist.
    fn check_leases(&self, ops: &[Op]) -> Result<()> {
        for op in ops {
            match op {
                Op::Put {
                    lease: Some(lease), ..
                } if !self.leases.contains_key(&lease.0) => {
                    return Err(Error::LeaseNotFound { lease: lease.0 });
                }
                Op::Txn(inner) => {
                    self.check_leases(&inner.then)?;
                    self.check_leases(&inner.otherwise)?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Runs a (pre-checked) transaction and notifies watchers.
    pub fn txn(&mut self, txn: &Txn) -> Result<TxnResponse> {
        let succeeded = txn.compares.iter().all(|c| self.compare(c));
        let ops = if succeeded { &txn.then } else { &txn.otherwise };
        self.check_leases(ops)?;
        let revision = self.revision + 1;
        let mut events = Vec::new();
        let results = self.run_ops(ops, revision, &mut events);
        self.commit(revision, events);
        self.auto_compact();
        let mut response = TxnResponse {
            succeeded,
            revision: self.revision,
            results,
        };
        set_revision(&mut response, self.revision);
        Ok(response)
    }

    fn run_ops(
        &mut self,
        ops: &[Op],
        revision: i64,
        events: &mut Vec<WatchEvent>,
    ) -> Vec<OpResult> {
        let mut results = Vec::with_capacity(ops.len());
        for op in ops {
            results.push(match op {
                Op::Put { key, value, lease } => {
                    self.put_at(key, value.clone(), *lease, revision, events);
                    OpResult::Put
                }
                Op::Delete { key } => OpResult::Delete {
                    deleted: i64::from(self.delete_at(key, revision, events)),
                },
                Op::Get { key } => OpResult::Get(self.get(key)),
                Op::Txn(inner) => {
                    let succeeded = inner.compares.iter().all(|c| self.compare(c));
                    let ops = if succeeded {
                        &inner.then
                    } else {
                        &inner.otherwise
                    };
                    let results = self.run_ops(ops, revision, events);
                    OpResult::Txn(TxnResponse {
                        succeeded,
                        // Filled in below once the outcome of the whole transaction is known.
                        revision: 0,
                        results,
                    })
                }
            });
        }
        results
    }

    fn put_at(
        &mut self,
        key: &str,
        value: Bytes,
        lease: Option<LeaseId>,
        revision: i64,
        events: &mut Vec<WatchEvent>,
    ) {
        let previous = self.current(key).cloned();
        let (create_revision, version) = match &previous {
            Some(kv) => (kv.create_revision, kv.version + 1),
            None => (revision, 1),
        };
        if let Some(old) = previous.as_ref().and_then(|kv| kv.lease)
            && let Some(entry) = self.leases.get_mut(&old.0)
        {
            entry.keys.remove(key);
        }
        if let Some(new) = lease
            && let Some(entry) = self.leases.get_mut(&new.0)
        {
            entry.keys.insert(key.to_owned());
        }
        let kv = KeyValue {
            key: key.to_owned(),
            value,
            create_revision,
            mod_revision: revision,
            version,
            lease,
        };
        self.history
            .entry(key.to_owned())
            .or_default()
            .push((revision, Some(kv.clone())));
        events.push(WatchEvent {
            kind: EventKind::Put,
            kv,
        });
    }

    fn delete_at(&mut self, key: &str, revision: i64, events: &mut Vec<WatchEvent>) -> bool {
        let Some(previous) = self.current(key).cloned() else {
            return false;
        };
        if let Some(lease) = previous.lease
            && let Some(entry) = self.leases.get_mut(&lease.0)
        {
            entry.keys.remove(key);
        }
        self.history
            .entry(key.to_owned())
            .or_default()
            .push((revision, None));
        events.push(WatchEvent {
            kind: EventKind::Delete,
            kv: KeyValue {
                key: key.to_owned(),
                value: Bytes::new(),
                create_revision: 0,
                mod_revision: revision,
                version: 0,
                lease: None,
            },
        });
        true
    }

    /// Makes `revision` current if it changed anything, logs and sends its events.
    fn commit(&mut self, revision: i64, events: Vec<WatchEvent>) {
        if events.is_empty() {
            return;
        }
        self.revision = revision;
        self.watchers.retain(|w| {
            for event in events.iter().filter(|e| e.kv.key.starts_with(&w.prefix)) {
                if w.tx.send(Ok(event.clone())).is_err() {
                    return false;
                }
            }
            true
        });
        self.log.insert(revision, events);
    }

    /// Registers a watcher after replaying the history from `from_revision`.
    pub fn watch(
        &mut self,
        prefix: &str,
        from_revision: i64,
        tx: mpsc::UnboundedSender<Result<WatchEvent>>,
    ) {
        if from_revision < self.compacted {
            let _ = tx.send(Err(Error::Compacted {
                requested: from_revision,
                compacted: self.compacted,
            }));
            return;
        }
        for events in self.log.range(from_revision..).map(|(_, e)| e) {
            for event in events.iter().filter(|e| e.kv.key.starts_with(prefix)) {
                if tx.send(Ok(event.clone())).is_err() {
                    return;
                }
            }
        }
        self.watchers.push(Watcher {
            prefix: prefix.to_owned(),
            tx,
        });
    }

    /// With a retention of `keep` revisions: once the history spans twice that, compacts it
    /// down to the newest `keep` (so the cost of a compaction is spread over `keep` writes).
    fn auto_compact(&mut self) {
        let Some(keep) = self.retention else { return };
        let keep = keep.max(1);
        if self.revision - self.compacted.max(1) >= 2 * keep {
            // Cannot fail: the revision is above the compacted one and not in the future.
            let _ = self.compact(self.revision - keep);
        }
    }

    pub fn compact(&mut self, revision: i64) -> Result<()> {
        if revision <= self.compacted {
            return Err(Error::Compacted {
                requested: revision,
                compacted: self.compacted,
            });
        }
        if revision > self.revision {
            return Err(Error::Rejected {
                reason: format!(
                    "cannot compact at future revision {revision} (current {})",
                    self.revision
                ),
            });
        }
        self.compacted = revision;
        self.log = self.log.split_off(&revision);
        self.history.retain(|_, versions| {
            // Keep every version at or after `revision`, plus the one visible at `revision`.
            let first_kept = versions
                .iter()
                .rposition(|(r, _)| *r <= revision)
                .unwrap_or(0);
            versions.drain(..first_kept);
            if versions.len() == 1 && versions[0].1.is_none() {
                versions.clear();
            }
            !versions.is_empty()
        });
        Ok(())
    }

    pub fn grant(&mut self, ttl: Duration, now: Duration) -> (LeaseId, Duration) {
        let ttl = Duration::from_secs(ttl.as_secs_f64().ceil().max(1.0) as u64);
        self.next_lease += 1;
        let id = self.next_lease;
        self.leases.insert(
            id,
            LeaseEntry {
                ttl,
                deadline: now + ttl,
                keys: BTreeSet::new(),
            },
        );
        (LeaseId(id), ttl)
    }

    pub fn keep_alive(&mut self, lease: LeaseId, now: Duration) -> Result<Duration> {
        if self.expired.contains(&lease.0) {
            return Err(Error::LeaseExpired { lease: lease.0 });
        }
        let entry = self
            .leases
            .get_mut(&lease.0)
            .ok_or(Error::LeaseNotFound { lease: lease.0 })?;
        entry.deadline = now + entry.ttl;
        Ok(entry.ttl)
    }

    /// Removes a lease and deletes its keys at one revision.
    pub fn revoke(&mut self, lease: LeaseId) -> Result<()> {
        let entry = self
            .leases
            .remove(&lease.0)
            .ok_or(Error::LeaseNotFound { lease: lease.0 })?;
        let revision = self.revision + 1;
        let mut events = Vec::new();
        for key in &entry.keys {
            self.delete_at(key, revision, &mut events);
        }
        self.commit(revision, events);
        Ok(())
    }

    /// Revokes every lease whose deadline is at or before `now`.
    pub fn expire(&mut self, now: Duration) {
        let expired: Vec<i64> = self
            .leases
            .iter()
            .filter(|(_, e)| e.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            tracing::debug!(lease = id, "memory store: lease expired");
            let _ = self.revoke(LeaseId(id));
            self.expired.insert(id);
            while self.expired.len() > EXPIRED_KEPT {
                self.expired.pop_first();
            }
        }
    }
}

fn set_revision(response: &mut TxnResponse, revision: i64) {
    response.revision = revision;
    for result in &mut response.results {
        if let OpResult::Txn(inner) = result {
            set_revision(inner, revision);
        }
    }
}
