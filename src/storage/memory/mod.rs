//! [`MemoryStore`]: the in-process [`Store`] backend with etcd's semantics (revisions,
//! compaction, watches with replay, leases that expire on a clock tests can drive).
//!
//! It keeps all history until [`Store::compact`] is called, like etcd without auto-compaction,
//! unless made with [`MemoryStore::auto_compact`] (like etcd's revision-based auto-compaction):
//! a long-running program on this store should use it, or its history grows with every write.
//! Lease expiry: with the system clock a background task (started when the store is created
//! inside a tokio runtime) expires leases about every 50 ms, and every operation expires due
//! leases first; with a [`ManualClock`] leases expire exactly when the test advances it.

mod mvcc;

use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::mpsc;

use super::channel_stream::ChannelStream;
use super::types::{
    KeyValue, Lease, LeaseId, Op, OpResult, RangePage, RangeRequest, Txn, TxnResponse,
};
use super::{Error, Result, Store, WatchStream, check_key, check_txn, check_value};
use mvcc::Mvcc;

/// How often the background task of a system-clock store expires leases.
const EXPIRY_TICK: Duration = Duration::from_millis(50);

/// Where the store's time comes from.
#[derive(Debug, Clone)]
enum Clock {
    System(Instant),
    Manual(Arc<Mutex<Duration>>),
}

impl Clock {
    fn now(&self) -> Duration {
        match self {
            Clock::System(start) => start.elapsed(),
            Clock::Manual(now) => *now.lock().unwrap_or_else(|e| e.into_inner()),
        }
    }
}

/// The clock of a store made by [`MemoryStore::with_manual_clock`]: time only moves when
/// [`advance`](Self::advance) is called, and leases due by then expire at once.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<Duration>>,
    state: Weak<Mutex<Mvcc>>,
}

impl ManualClock {
    /// Moves time forward by `by` and expires the leases that are due.
    pub fn advance(&self, by: Duration) {
        let now = {
            let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
            *now += by;
            *now
        };
        if let Some(state) = self.state.upgrade() {
            state.lock().unwrap_or_else(|e| e.into_inner()).expire(now);
        }
    }

    /// The time since the store was created.
    pub fn now(&self) -> Duration {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// An in-process store with exactly the [`Store`] contract. Cloning shares the store.
#[derive(Debug, Clone)]
pub struct MemoryStore {
    state: Arc<Mutex<Mvcc>>,
    clock: Clock,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// A store on the system clock. Created inside a tokio runtime it starts a background task
    /// that expires leases (it ends when the last clone of the store is dropped).
    pub fn new() -> Self {
        let store = Self {
            state: Arc::new(Mutex::new(Mvcc::new())),
            clock: Clock::System(Instant::now()),
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let state = Arc::downgrade(&store.state);
            let clock = store.clock.clone();
            runtime.spawn(async move {
                loop {
                    tokio::time::sleep(EXPIRY_TICK).await;
                    let Some(state) = state.upgrade() else { break };
                    state
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .expire(clock.now());
                }
            });
        }
        store
    }

    /// A store whose leases expire only when the returned clock is advanced.
    pub fn with_manual_clock() -> (Self, ManualClock) {
        let now = Arc::new(Mutex::new(Duration::ZERO));
        let store = Self {
            state: Arc::new(Mutex::new(Mvcc::new())),
            clock: Clock::Manual(now.clone()),
        };
        let clock = ManualClock {
            now,
            state: Arc::downgrade(&store.state),
        };
        (store, clock)
    }

    /// Compacts the history automatically, keeping the newest `revisions` revisions (at least
    /// one), like etcd's `--auto-compaction-mode=revision --auto-compaction-retention`. The
    /// history is compacted each time it spans twice that, so it never holds more than twice
    /// `revisions` revisions; reads and watches from a compacted revision fail with
    /// [`Error::Compacted`], as after [`Store::compact`].
    pub fn auto_compact(self, revisions: u32) -> Self {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retention = Some(i64::from(revisions.max(1)));
        self
    }

    /// Locks the state after expiring due leases.
    fn lock(&self) -> MutexGuard<'_, Mvcc> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.expire(self.clock.now());
        state
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        check_key(key)?;
        Ok(self.lock().get(key))
    }

    async fn put(&self, key: &str, value: Bytes, lease: Option<LeaseId>) -> Result<i64> {
        check_key(key)?;
        check_value(key, &value)?;
        let txn = Txn::new().and_then(Op::Put {
            key: key.to_owned(),
            value,
            lease,
        });
        Ok(self.lock().txn(&txn)?.revision)
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        check_key(key)?;
        let response = self.lock().txn(&Txn::new().and_then(Op::delete(key)))?;
        Ok(matches!(
            response.results.first(),
            Some(OpResult::Delete { deleted: 1.. })
        ))
    }

    async fn range(&self, prefix: &str, request: RangeRequest) -> Result<RangePage> {
        self.lock().range(prefix, &request)
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResponse> {
        check_txn(&txn)?;
        self.lock().txn(&txn)
    }

    async fn watch(&self, prefix: &str, from_revision: i64) -> Result<WatchStream> {
        if from_revision < 1 {
            return Err(Error::Rejected {
                reason: format!("watch start revision {from_revision} is not positive"),
            });
        }
        let (tx, rx) = mpsc::unbounded_channel();
        self.lock().watch(prefix, from_revision, tx);
        Ok(Box::pin(ChannelStream::new(rx)))
    }

    async fn grant_lease(&self, ttl: Duration) -> Result<Lease> {
        let now = self.clock.now();
        let (id, ttl) = self.lock().grant(ttl, now);
        Ok(Lease { id, ttl })
    }

    async fn keep_alive(&self, lease: LeaseId) -> Result<Duration> {
        let now = self.clock.now();
        self.lock().keep_alive(lease, now)
    }

    async fn revoke_lease(&self, lease: LeaseId) -> Result<()> {
        self.lock().revoke(lease)
    }

    async fn compact(&self, revision: i64) -> Result<()> {
        self.lock().compact(revision)
    }

    async fn current_revision(&self) -> Result<i64> {
        Ok(self.lock().revision)
    }

    /// The background expiry tick with the system clock; zero with a manual clock (leases
    /// expire when it is advanced).
    fn lease_expiry_lag(&self) -> Duration {
        match self.clock {
            Clock::System(_) => EXPIRY_TICK,
            Clock::Manual(_) => Duration::ZERO,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn auto_compaction_keeps_the_newest_revisions_and_the_current_values() {
        let store = MemoryStore::new().auto_compact(10);
        for i in 0..100u32 {
            store
                .put(&format!("k{}", i % 3), Bytes::from(i.to_string()), None)
                .await
                .unwrap();
        }
        store.delete("k0").await.unwrap();
        let revision = store.current_revision().await.unwrap();
        assert_eq!(revision, 102);
        let compacted = store.lock().compacted;
        assert!(
            (revision - 20..=revision - 10).contains(&compacted),
            "compacted at {compacted} of {revision}"
        );
        // The current values are all there; the history before the compaction is gone.
        assert!(store.get("k0").await.unwrap().is_none());
        assert_eq!(
            store.get("k1").await.unwrap().unwrap().value,
            Bytes::from("97")
        );
        assert_eq!(
            store.get("k2").await.unwrap().unwrap().value,
            Bytes::from("98")
        );
        let mut watch = store.watch("k", compacted - 1).await.unwrap();
        assert!(matches!(
            futures::StreamExt::next(&mut watch).await,
            Some(Err(Error::Compacted { .. }))
        ));
        let keys = store
            .range("k", RangeRequest::all())
            .await
            .unwrap()
            .kvs
            .len();
        assert_eq!(keys, 2);
        // Without it, everything is kept.
        let plain = MemoryStore::new();
        for i in 0..100u32 {
            plain
                .put("k", Bytes::from(i.to_string()), None)
                .await
                .unwrap();
        }
        assert_eq!(plain.lock().compacted, 0);
    }
}
