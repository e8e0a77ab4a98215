//! [`LeaderElection`] over any [`Store`]: campaign with a lease, keep it alive, step down on a
//! local deadline, observe who leads, resign.
//!
//! The election is one leader key. A candidate grants a lease and creates the key (value: its
//! [`LeaderInfo`] as JSON) attached to the lease, only if the key is absent; otherwise it
//! watches the key until it is deleted (resigned, or its lease expired) and tries again. The
//! key's create revision at the win is the leader's [`Fence`].
//!
//! The leader refreshes its lease every `keep_alive_interval`. It also keeps a local deadline:
//! the send time of the last refresh the store confirmed, plus the TTL it confirmed, minus
//! `safety_margin`. The server-side lease cannot expire before that refresh reached the server
//! plus the TTL, so stepping down at the deadline (even with the store unreachable) happens
//! before any other candidate can win. Leadership also ends when a refresh answers that the
//! lease is gone, or the leader key is deleted or recreated by someone else.
//!
//! Failover bound: the store removes an expired lease's keys late by up to its
//! [`Store::lease_expiry_lag`] (etcd looks for expired leases every 500 ms), and etcd counts
//! TTLs in whole seconds. So the lease is granted for the configured TTL minus that lag,
//! rounded down to whole seconds ([`LeaderElection::lease_ttl`]; TTL 3 s on etcd: a 2 s lease).
//! The leader key of a leader that died is then gone at most TTL after its last refresh, and
//! a standby (watching the key) wins at once: a standby leads within the TTL of the crash plus
//! one store round trip. etcd also has a minimum lease TTL (`1.5 × election timeout`, rounded
//! up to whole seconds: 2 s with etcd's defaults), which lengthens shorter leases.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::fence::{Fence, FencedStore};
use crate::storage::{
    Compare, Error, EventKind, LeaseId, Op, OpResult, Result, Store, Txn, decode_json, encode_json,
};

/// Default lease TTL of a leader.
pub const DEFAULT_TTL: Duration = Duration::from_secs(10);

/// Who leads: stored as JSON in the leader key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderInfo {
    /// The candidate's id (unique per process).
    pub id: String,
    /// Where the leader can be reached (for standbys redirecting REST clients).
    pub address: String,
    /// The leader key's create revision (its fence revision); 0 in the stored JSON.
    #[serde(default, skip_serializing)]
    pub revision: i64,
}

/// Election settings.
#[derive(Debug, Clone)]
pub struct ElectionConfig {
    /// The leader key (for example `Namespace::key("leader")`).
    pub key: String,
    /// This candidate's id.
    pub id: String,
    /// This candidate's advertised address.
    pub address: String,
    /// Time within which the leader key of a leader that stopped refreshing is gone (default
    /// [`DEFAULT_TTL`]); the lease itself is shorter, see [`LeaderElection::lease_ttl`].
    pub ttl: Duration,
    /// Time between lease refreshes (default TTL / 4).
    pub keep_alive_interval: Duration,
    /// How long before the lease runs out the leader steps down (default TTL / 6).
    pub safety_margin: Duration,
    /// Pause before campaigning again after a store failure (default 500 ms).
    pub retry_interval: Duration,
    /// **Unsafe; for tests of fencing only.** Replaces the local step-down deadline (the send
    /// time of the last confirmed refresh plus the lease TTL minus
    /// [`safety_margin`](Self::safety_margin)) by that send time plus this. Longer than the
    /// lease TTL, a paused leader wakes up believing it still leads after a standby won: only
    /// the lease check, the leader key's watch, the fenced writes and the master's failover
    /// stop it. Leave `None` (the default).
    pub unsafe_step_down_after: Option<Duration>,
}

impl ElectionConfig {
    /// Settings with the defaults for `key`, candidate `id` and `address`.
    pub fn new(key: impl Into<String>, id: impl Into<String>, address: impl Into<String>) -> Self {
        Self::with_ttl(key, id, address, DEFAULT_TTL)
    }

    /// Settings with TTL `ttl` and intervals derived from it.
    pub fn with_ttl(
        key: impl Into<String>,
        id: impl Into<String>,
        address: impl Into<String>,
        ttl: Duration,
    ) -> Self {
        Self {
            key: key.into(),
            id: id.into(),
            address: address.into(),
            ttl,
            keep_alive_interval: ttl / 4,
            safety_margin: ttl / 6,
            retry_interval: Duration::from_millis(500),
            unsafe_step_down_after: None,
        }
    }

    /// The local step-down deadline after a refresh sent at `sent` was confirmed with `ttl`.
    fn deadline(&self, sent: Instant, ttl: Duration) -> Instant {
        match self.unsafe_step_down_after {
            Some(after) => sent + after,
            None => sent + ttl.saturating_sub(self.safety_margin),
        }
    }

    /// The lease TTL for a store that removes expired leases up to `lag` late: `ttl - lag`
    /// rounded down to whole seconds; checked: at least 1 s, and more than the keep-alive
    /// interval plus the safety margin.
    fn lease_ttl(&self, lag: Duration) -> Result<Duration> {
        let lease = Duration::from_secs(self.ttl.saturating_sub(lag).as_secs());
        if lease.is_zero() {
            return Err(Error::Config {
                reason: format!(
                    "TTL {:?} minus the store's lease expiry lag {lag:?} leaves no whole second \
                     of lease",
                    self.ttl
                ),
            });
        }
        if self.keep_alive_interval.is_zero()
            || self.keep_alive_interval + self.safety_margin >= lease
        {
            return Err(Error::Config {
                reason: format!(
                    "keep-alive interval {:?} plus safety margin {:?} must be positive and less \
                     than the lease TTL {lease:?} (TTL {:?} minus the store's lease expiry lag \
                     {lag:?}, in whole seconds)",
                    self.keep_alive_interval, self.safety_margin, self.ttl
                ),
            });
        }
        Ok(lease)
    }
}

/// Why leadership ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LossReason {
    /// No refresh was confirmed in time: the local deadline passed (store unreachable or slow).
    #[error("lease refresh not confirmed before the local deadline")]
    Deadline,
    /// The store said the lease is gone.
    #[error("the lease is gone")]
    LeaseGone,
    /// The leader key was deleted or recreated by someone else.
    #[error("the leader key changed")]
    KeyChanged,
    /// [`Leadership::resign`] was called or the leadership was dropped.
    #[error("resigned")]
    Resigned,
}

/// A leader election over a store.
#[derive(Debug, Clone)]
pub struct LeaderElection<S> {
    store: S,
    config: ElectionConfig,
    lease_ttl: Duration,
}

impl<S: Store + Clone + 'static> LeaderElection<S> {
    /// An election on `store` with `config` (checked: the lease TTL, see
    /// [`lease_ttl`](Self::lease_ttl), is at least 1 s and longer than the keep-alive interval
    /// plus the safety margin).
    pub fn new(store: S, config: ElectionConfig) -> Result<Self> {
        let lease_ttl = config.lease_ttl(store.lease_expiry_lag())?;
        Ok(Self {
            store,
            config,
            lease_ttl,
        })
    }

    /// The TTL of the leader's lease: the configured TTL minus the store's
    /// [`Store::lease_expiry_lag`], rounded down to whole seconds (see the module doc).
    pub fn lease_ttl(&self) -> Duration {
        self.lease_ttl
    }

    /// The settings.
    pub fn config(&self) -> &ElectionConfig {
        &self.config
    }

    /// Who leads now, if anyone.
    pub async fn leader(&self) -> Result<Option<LeaderInfo>> {
        self.store
            .get(&self.config.key)
            .await?
            .map(|kv| leader_info(&kv))
            .transpose()
    }

    /// Campaigns until this candidate leads. Store failures are retried (logged); only a
    /// configuration problem ends the campaign with an error. Cancel by dropping the future.
    pub async fn campaign(&self) -> Result<Leadership<S>> {
        loop {
            match self.try_once().await {
                Ok(Some(leadership)) => return Ok(leadership),
                Ok(None) => {}
                Err(e @ (Error::Config { .. } | Error::InvalidKey { .. })) => return Err(e),
                Err(e) => {
                    tracing::warn!(key = %self.config.key, error = %e, "campaign failed; retrying");
                    tokio::time::sleep(self.config.retry_interval).await;
                }
            }
        }
    }

    /// One attempt: win now, or wait until the current leader's key is gone (then `None`).
    async fn try_once(&self) -> Result<Option<Leadership<S>>> {
        let key = &self.config.key;
        let info = LeaderInfo {
            id: self.config.id.clone(),
            address: self.config.address.clone(),
            revision: 0,
        };
        let value = encode_json(key, &info)?;
        let sent = Instant::now();
        let lease = self.store.grant_lease(self.lease_ttl).await?;
        if lease.ttl > self.lease_ttl {
            tracing::warn!(
                %key,
                asked = ?self.lease_ttl,
                granted = ?lease.ttl,
                ttl = ?self.config.ttl,
                "the store granted a longer lease than asked (etcd's minimum lease TTL?): a \
                 dead leader's key may outlive the configured TTL"
            );
        }
        let txn = Txn::new()
            .when(Compare::absent(key))
            .and_then(Op::put_with_lease(key, value, lease.id))
            .or_else(Op::get(key));
        let response = match self.store.txn(txn).await {
            Ok(response) => response,
            Err(e) => {
                let _ = self.store.revoke_lease(lease.id).await;
                return Err(e);
            }
        };
        if response.succeeded {
            let fence = Fence {
                leader_key: key.clone(),
                revision: response.revision,
            };
            tracing::info!(%key, id = %self.config.id, revision = fence.revision, "won the election");
            return Ok(Some(Leadership::start(
                self.store.clone(),
                self.config.clone(),
                fence,
                lease.id,
                self.config.deadline(sent, lease.ttl),
            )));
        }
        let _ = self.store.revoke_lease(lease.id).await;
        let current = match response.results.first() {
            Some(OpResult::Get(Some(kv))) => kv.clone(),
            // Deleted between the compare and the read: try again at once.
            _ => return Ok(None),
        };
        tracing::debug!(%key, leader = ?leader_info(&current).ok(), "another candidate leads; waiting");
        let mut events = self.store.watch(key, response.revision + 1).await?;
        while let Some(event) = events.next().await {
            let event = event?;
            if event.kv.key == *key && event.kind == EventKind::Delete {
                return Ok(None);
            }
        }
        Ok(None)
    }

    /// A stream of leadership changes: the current leader first (`None`: nobody leads), then
    /// every change. Store failures are retried; the stream never ends by itself.
    pub fn observe(&self) -> impl Stream<Item = Option<LeaderInfo>> + Send + 'static {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let store = self.store.clone();
        let key = self.config.key.clone();
        let retry = self.config.retry_interval;
        tokio::spawn(async move {
            let closed = tx.clone();
            tokio::select! {
                () = closed.closed() => {}
                () = observe_loop(store, key, retry, tx) => {}
            }
        });
        futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
    }
}

async fn observe_loop<S: Store>(
    store: S,
    key: String,
    retry: Duration,
    tx: mpsc::UnboundedSender<Option<LeaderInfo>>,
) {
    let mut last: Option<Option<LeaderInfo>> = None;
    loop {
        let result: Result<()> = async {
            let page = store
                .range(&key, crate::storage::RangeRequest::all())
                .await?;
            let current = page
                .kvs
                .iter()
                .find(|kv| kv.key == key)
                .map(leader_info)
                .transpose()?;
            if last.as_ref() != Some(&current) {
                last = Some(current.clone());
                let _ = tx.send(current);
            }
            let mut events = store.watch(&key, page.revision + 1).await?;
            while let Some(event) = events.next().await {
                let event = event?;
                if event.kv.key != key {
                    continue;
                }
                let current = match event.kind {
                    EventKind::Put => Some(leader_info(&event.kv)?),
                    EventKind::Delete => None,
                };
                if last.as_ref() != Some(&current) {
                    last = Some(current.clone());
                    let _ = tx.send(current);
                }
            }
            Ok(())
        }
        .await;
        if let Err(e) = result {
            tracing::debug!(%key, error = %e, "observing the election failed; retrying");
        }
        tokio::time::sleep(retry).await;
    }
}

fn leader_info(kv: &crate::storage::KeyValue) -> Result<LeaderInfo> {
    let mut info: LeaderInfo = decode_json(kv)?;
    info.revision = kv.create_revision;
    Ok(info)
}

/// Holding leadership: the fence, the lease, and a background task that keeps the lease
/// alive and watches the leader key. Dropping it stops the keep-alive without resigning (as a
/// crash would: the lease then expires after its TTL); call [`resign`](Self::resign) to hand
/// over at once.
#[derive(Debug)]
pub struct Leadership<S: Store + Clone + 'static> {
    store: S,
    fence: Fence,
    lease: LeaseId,
    state: watch::Receiver<Option<LossReason>>,
    /// The local step-down deadline, moved on by every successful keep-alive.
    deadline: Arc<Mutex<Instant>>,
    task: tokio::task::JoinHandle<()>,
}

impl<S: Store + Clone + 'static> Leadership<S> {
    fn start(
        store: S,
        config: ElectionConfig,
        fence: Fence,
        lease: LeaseId,
        deadline: Instant,
    ) -> Self {
        let (tx, state) = watch::channel(None);
        let deadline = Arc::new(Mutex::new(deadline));
        let task = tokio::spawn(keep_leading(
            store.clone(),
            config,
            fence.clone(),
            lease,
            deadline.clone(),
            tx,
        ));
        Self {
            store,
            fence,
            lease,
            state,
            deadline,
            task,
        }
    }

    /// The fence of this leadership.
    pub fn fence(&self) -> &Fence {
        &self.fence
    }

    /// The lease the leader key is attached to.
    pub fn lease(&self) -> LeaseId {
        self.lease
    }

    /// Whether this process still leads (as far as it knows: see the module doc). False once
    /// leadership was lost, and also as soon as the local step-down deadline has passed, even
    /// if the keep-alive task has not run since (a process woken from a pause).
    pub fn is_leader(&self) -> bool {
        self.guard()().is_ok()
    }

    /// A cheap check of [`Self::is_leader`] that outlives this handle, with the reason when
    /// leadership is gone: what [`crate::scheduler::SchedulerBuilder::subscribe_guard`] takes.
    pub fn guard(&self) -> impl Fn() -> std::result::Result<(), String> + Send + Sync + 'static {
        let state = self.state.clone();
        let deadline = self.deadline.clone();
        move || {
            if let Some(reason) = state.borrow().as_ref() {
                return Err(format!("leadership lost: {reason}"));
            }
            let deadline = *deadline.lock().unwrap_or_else(PoisonError::into_inner);
            if Instant::now() >= deadline {
                return Err("leadership lost: the local step-down deadline has passed".into());
            }
            Ok(())
        }
    }

    /// Resolves when leadership ends, with the reason.
    pub async fn lost(&self) -> LossReason {
        let mut state = self.state.clone();
        match state.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone().unwrap_or(LossReason::Resigned),
            Err(_) => LossReason::Resigned,
        }
    }

    /// A view of `store` fenced by this leadership. Every state write a leader makes must go
    /// through such a view.
    pub fn fenced<T: Store>(&self, store: T) -> FencedStore<T> {
        FencedStore::new(store, self.fence.clone())
    }

    /// Gives leadership up: stops the keep-alive, deletes the leader key if it is still ours
    /// and revokes the lease, so that a standby can win at once.
    pub async fn resign(self) -> Result<()> {
        self.task.abort();
        let txn = Txn::new()
            .when(self.fence.compare())
            .and_then(Op::delete(&self.fence.leader_key));
        let deleted = self.store.txn(txn).await;
        let revoked = self.store.revoke_lease(self.lease).await;
        tracing::info!(key = %self.fence.leader_key, "resigned leadership");
        deleted?;
        match revoked {
            Ok(()) | Err(Error::LeaseNotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

impl<S: Store + Clone + 'static> Drop for Leadership<S> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The leader's background task: refresh the lease, hold the local deadline, watch the key.
async fn keep_leading<S: Store>(
    store: S,
    config: ElectionConfig,
    fence: Fence,
    lease: LeaseId,
    deadline: Arc<Mutex<Instant>>,
    state: watch::Sender<Option<LossReason>>,
) {
    let reason = hold(&store, &config, &fence, lease, &deadline).await;
    tracing::warn!(key = %fence.leader_key, revision = fence.revision, %reason, "leadership lost");
    let _ = state.send(Some(reason));
}

async fn hold<S: Store>(
    store: &S,
    config: &ElectionConfig,
    fence: &Fence,
    lease: LeaseId,
    shared_deadline: &Mutex<Instant>,
) -> LossReason {
    let mut current = *shared_deadline
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let deadline = &mut current;
    let key = &fence.leader_key;
    let mut next_refresh = Instant::now() + config.keep_alive_interval;
    let mut events = store.watch(key, fence.revision + 1).await.ok();
    loop {
        let event = async {
            match events.as_mut() {
                Some(events) => events.next().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = tokio::time::sleep_until(*deadline) => return LossReason::Deadline,
            () = tokio::time::sleep_until(next_refresh) => {
                let sent = Instant::now();
                let refresh = tokio::time::timeout_at(*deadline, store.keep_alive(lease));
                match refresh.await {
                    Err(_) => return LossReason::Deadline,
                    Ok(Ok(ttl)) => {
                        *deadline = config.deadline(sent, ttl);
                        *shared_deadline.lock().unwrap_or_else(PoisonError::into_inner) = *deadline;
                        next_refresh = sent + config.keep_alive_interval;
                        if events.is_none() {
                            events = store.watch(key, fence.revision + 1).await.ok();
                        }
                    }
                    Ok(Err(Error::LeaseNotFound { .. } | Error::LeaseExpired { .. })) => {
                        return LossReason::LeaseGone;
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(%key, error = %e, "lease refresh failed; retrying");
                        next_refresh = Instant::now() + config.keep_alive_interval / 4;
                    }
                }
            }
            event = event => match event {
                Some(Ok(event)) if event.kv.key == *key => {
                    if event.kind == EventKind::Delete || event.kv.create_revision != fence.revision {
                        return LossReason::KeyChanged;
                    }
                }
                Some(Ok(_)) => {}
                // The watch failed (compacted, ...): check the key directly, watch again.
                Some(Err(_)) | None => {
                    match store.get(key).await {
                        Ok(Some(kv)) if kv.create_revision == fence.revision => {
                            events = store.watch(key, kv.mod_revision + 1).await.ok();
                        }
                        Ok(_) => return LossReason::KeyChanged,
                        Err(_) => events = None,
                    }
                }
            },
        }
    }
}
