//! [`HaRunner`]: runs a Mesos scheduler only while this instance leads.
//!
//! Each leadership *term* goes: campaign → win → load the framework id from the store →
//! start the [`Scheduler`] (resuming with the stored id, or as a new framework) → persist the
//! framework id through the fenced view as soon as the subscription is connected → hand every
//! scheduler event to the caller's handler → end. A term ends when leadership is lost (local
//! deadline, lease gone, leader key changed), when the master fails the framework over to
//! another instance (`Termination::FailedOver`, Mesos-side fencing), when the framework was
//! removed, or when the scheduler stops for another reason. The scheduler is then stopped
//! without TEARDOWN and without resubscribing, and the runner campaigns again or returns, as
//! configured ([`AfterTerm`]).
//!
//! `Framework has been removed` clears the stored framework id (fenced), logs an error,
//! counts it ([`HaRunner::frameworks_removed`]) and ends the term with
//! [`TermEnd::FrameworkRemoved`]. A removal marker stays in the store; a later leader
//! subscribes as a new framework only if [`HaConfig::subscribe_anew_after_removal`] is set,
//! otherwise [`HaRunner::lead`] fails with [`HaError::FrameworkRemoved`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::{Stream, StreamExt};
use tokio::sync::{mpsc, watch};

use super::election::{ElectionConfig, LeaderElection, LeaderInfo, Leadership, LossReason};
use super::fence::{Fence, FencedStore};
use crate::client::Client;
use crate::scheduler::{Scheduler, SchedulerBuilder, SchedulerEvent, Termination};
use crate::storage::{self, Store, StoreExt};
use crate::v1::{FrameworkId, FrameworkInfo};

/// What the runner does after a term ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterTerm {
    /// Campaign again (the default: the process stays a standby).
    Campaign,
    /// Return from [`HaRunner::run`] (let a supervisor restart the process).
    Exit,
}

/// Runner settings.
#[derive(Debug, Clone)]
pub struct HaConfig {
    /// The election.
    pub election: ElectionConfig,
    /// Where the framework id is stored (e.g. `Namespace::key("framework-id")`).
    pub framework_id_key: String,
    /// Where the removal marker is stored (e.g. `Namespace::key("framework-removed")`).
    pub removed_key: String,
    /// What to do after a term (default [`AfterTerm::Campaign`]).
    pub after_term: AfterTerm,
    /// After `Framework has been removed`, let a later leader subscribe as a new framework
    /// (default false: refuse, an operator decides).
    pub subscribe_anew_after_removal: bool,
}

impl HaConfig {
    /// Settings with the framework id and removal marker under `namespace`.
    pub fn new(election: ElectionConfig, namespace: &storage::Namespace) -> Self {
        Self {
            election,
            framework_id_key: namespace.key("framework-id"),
            removed_key: namespace.key("framework-removed"),
            after_term: AfterTerm::Campaign,
            subscribe_anew_after_removal: false,
        }
    }
}

/// Why a term ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TermEnd {
    /// Leadership was lost.
    LeadershipLost(LossReason),
    /// Another instance subscribed with the framework id (`Framework failed over`).
    FailedOver(String),
    /// The framework was removed (`Framework has been removed`); the stored id was cleared.
    FrameworkRemoved(String),
    /// The scheduler stopped for another reason, or the handler returned.
    Stopped(Option<Termination>),
}

/// Errors of the runner.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HaError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] storage::Error),
    /// The framework was removed earlier and subscribing anew is not allowed by the config.
    #[error(
        "the framework was removed ({message}); set subscribe_anew_after_removal to start a new one"
    )]
    FrameworkRemoved {
        /// The master's text stored with the marker.
        message: String,
    },
}

/// Builds the scheduler of each term (set heartbeat and backoff options here).
pub type ConfigureScheduler = Arc<dyn Fn(SchedulerBuilder) -> SchedulerBuilder + Send + Sync>;

/// Runs a scheduler under leader election.
pub struct HaRunner<S> {
    store: S,
    election: LeaderElection<S>,
    config: HaConfig,
    client: Client,
    framework: FrameworkInfo,
    configure: ConfigureScheduler,
    removed: Arc<AtomicU64>,
}

impl<S> std::fmt::Debug for HaRunner<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HaRunner")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// One leadership term: the scheduler, the fenced store view, and the scheduler's events.
/// Dropping it stops the scheduler (without TEARDOWN) and resigns leadership, so that a
/// standby takes over at once; [`HaRunner::run`] does that when the handler returns. (A
/// crashed process resigns nothing: its lease expires after the TTL.)
#[derive(Debug)]
pub struct Term<S: Store + Clone + 'static> {
    /// The scheduler handle (send calls with it).
    pub scheduler: Scheduler,
    /// The store view for every state write of this term.
    pub store: FencedStore<S>,
    /// The framework id loaded at the start of the term (None: subscribing as new).
    pub framework_id: Option<FrameworkId>,
    events: mpsc::UnboundedReceiver<SchedulerEvent>,
    end: watch::Receiver<Option<TermEnd>>,
}

impl<S: Store + Clone + 'static> Term<S> {
    /// The fence of this term.
    pub fn fence(&self) -> &Fence {
        self.store.fence()
    }

    /// Why the term ended, once it has (the event stream ends then).
    pub fn end(&self) -> Option<TermEnd> {
        self.end.borrow().clone()
    }

    /// A receiver of the term's end, usable after the term was handed away.
    pub(crate) fn end_watch(&self) -> watch::Receiver<Option<TermEnd>> {
        self.end.clone()
    }

    /// Resolves when the term ends.
    pub async fn ended(&self) -> TermEnd {
        let mut end = self.end.clone();
        match end.wait_for(Option::is_some).await {
            Ok(end) => end.clone().unwrap_or(TermEnd::Stopped(None)),
            Err(_) => TermEnd::Stopped(None),
        }
    }
}

// No field is ever pinned in place (the events are polled through `&mut`).
impl<S: Store + Clone + 'static> Unpin for Term<S> {}

impl<S: Store + Clone + 'static> Stream for Term<S> {
    type Item = SchedulerEvent;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<SchedulerEvent>> {
        self.events.poll_recv(cx)
    }
}

impl<S: Store + Clone + 'static> Drop for Term<S> {
    fn drop(&mut self) {
        // The pump sees the scheduler stop, ends the term and resigns.
        self.scheduler.stop();
    }
}

impl<S: Store + Clone + 'static> HaRunner<S> {
    /// A runner on `store` that subscribes `framework` through `client` while it leads.
    pub fn new(
        store: S,
        config: HaConfig,
        client: Client,
        framework: FrameworkInfo,
    ) -> Result<Self, HaError> {
        let election = LeaderElection::new(store.clone(), config.election.clone())?;
        Ok(Self {
            store,
            election,
            config,
            client,
            framework,
            configure: Arc::new(|builder| builder),
            removed: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Customizes each term's scheduler (heartbeats, backoff, roles to suppress, ...).
    pub fn configure_scheduler(
        mut self,
        configure: impl Fn(SchedulerBuilder) -> SchedulerBuilder + Send + Sync + 'static,
    ) -> Self {
        self.configure = Arc::new(configure);
        self
    }

    /// Who leads now (for standbys redirecting clients).
    pub async fn leader(&self) -> Result<Option<LeaderInfo>, HaError> {
        Ok(self.election.leader().await?)
    }

    /// Leadership changes (see [`LeaderElection::observe`]).
    pub fn observe(&self) -> impl Stream<Item = Option<LeaderInfo>> + Send + 'static {
        self.election.observe()
    }

    /// How many times the master said the framework was removed.
    pub fn frameworks_removed(&self) -> u64 {
        self.removed.load(Ordering::Relaxed)
    }

    /// The runner's settings.
    pub fn config(&self) -> &HaConfig {
        &self.config
    }

    /// The election.
    pub fn election(&self) -> &LeaderElection<S> {
        &self.election
    }

    /// Campaigns, and once leading starts a term. If the framework state cannot be read after
    /// the win (store failure, removal marker), leadership is resigned before the error is
    /// returned, so that another instance can try at once.
    pub async fn lead(&self) -> Result<Term<S>, HaError> {
        let leadership = self.election.campaign().await?;
        let framework_id = match self.load_framework_id(&leadership).await {
            Ok(id) => id,
            Err(e) => {
                if let Err(resign) = leadership.resign().await {
                    tracing::warn!(error = %resign, "resigning after a failed start failed");
                }
                return Err(e);
            }
        };
        let fenced = leadership.fenced(self.store.clone());
        let mut framework = self.framework.clone();
        framework.id = framework_id.clone();
        tracing::info!(
            framework_id = framework_id.as_ref().map(|id| id.value.as_str()),
            revision = leadership.fence().revision,
            "leading: starting the scheduler"
        );
        // The guard goes on last so that no configuration can leave it out: the driver asks it
        // before every SUBSCRIBE, so a leader woken past its deadline never resubscribes.
        let builder = (self.configure)(Scheduler::builder(self.client.clone(), framework))
            .subscribe_guard(leadership.guard());
        let (scheduler, events) = builder.start();
        let (tx, rx) = mpsc::unbounded_channel();
        let (end_tx, end_rx) = watch::channel(None);
        tokio::spawn(pump(
            leadership,
            scheduler.clone(),
            events,
            fenced.clone(),
            self.config.clone(),
            self.removed.clone(),
            tx,
            end_tx,
        ));
        Ok(Term {
            scheduler,
            store: fenced,
            framework_id,
            events: rx,
            end: end_rx,
        })
    }

    /// Reads the stored framework id, honouring the removal marker.
    async fn load_framework_id(
        &self,
        leadership: &Leadership<S>,
    ) -> Result<Option<FrameworkId>, HaError> {
        if let Some(marker) = self.store.get(&self.config.removed_key).await? {
            let message = String::from_utf8_lossy(&marker.value).into_owned();
            if !self.config.subscribe_anew_after_removal {
                return Err(HaError::FrameworkRemoved { message });
            }
            tracing::warn!(%message, "framework was removed earlier; subscribing as a new framework");
            leadership
                .fenced(self.store.clone())
                .delete(&self.config.removed_key)
                .await?;
        }
        Ok(self.store.get_proto(&self.config.framework_id_key).await?)
    }

    /// Leads term after term, handing each to `handler`, until a term ends and
    /// [`HaConfig::after_term`] says [`AfterTerm::Exit`]; answers the last term's end.
    pub async fn run<F, Fut>(&self, mut handler: F) -> Result<TermEnd, HaError>
    where
        F: FnMut(Term<S>) -> Fut,
        Fut: Future<Output = ()>,
    {
        loop {
            let term = self.lead().await?;
            let end = term.end.clone();
            handler(term).await;
            let end = end.borrow().clone().unwrap_or(TermEnd::Stopped(None));
            tracing::info!(?end, "term ended");
            if self.config.after_term == AfterTerm::Exit {
                return Ok(end);
            }
        }
    }
}

/// Forwards the scheduler's events, persists the framework id, and ends the term.
#[allow(clippy::too_many_arguments)]
async fn pump<S: Store + Clone + 'static>(
    leadership: Leadership<S>,
    scheduler: Scheduler,
    mut events: crate::scheduler::SchedulerEvents,
    store: FencedStore<S>,
    config: HaConfig,
    removed: Arc<AtomicU64>,
    tx: mpsc::UnboundedSender<SchedulerEvent>,
    end: watch::Sender<Option<TermEnd>>,
) {
    let reason = loop {
        tokio::select! {
            reason = leadership.lost() => break TermEnd::LeadershipLost(reason),
            event = events.next() => {
                let Some(event) = event else { break TermEnd::Stopped(scheduler.termination()) };
                match &event {
                    SchedulerEvent::Connected { framework_id, .. } => {
                        match store.put_proto(&config.framework_id_key, framework_id, None).await {
                            Ok(_) => tracing::info!(framework_id = %framework_id.value, "framework id persisted"),
                            Err(storage::Error::NotLeader { .. }) => {
                                break TermEnd::LeadershipLost(LossReason::KeyChanged);
                            }
                            Err(e) => tracing::error!(error = %e, "persisting the framework id failed"),
                        }
                    }
                    SchedulerEvent::Terminated(Termination::FailedOver { message }) => {
                        tracing::warn!(%message, "another instance took over the framework; stopping");
                        let message = message.clone();
                        let _ = tx.send(event);
                        break TermEnd::FailedOver(message);
                    }
                    SchedulerEvent::Terminated(Termination::FrameworkRemoved { message }) => {
                        removed.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(%message, "THE FRAMEWORK HAS BEEN REMOVED by the master; clearing the stored framework id");
                        let txn = storage::Txn::new()
                            .and_then(storage::Op::delete(&config.framework_id_key))
                            .and_then(storage::Op::put(&config.removed_key, message.clone()));
                        if let Err(e) = store.txn(txn).await {
                            tracing::error!(error = %e, "clearing the removed framework's id failed");
                        }
                        let message = message.clone();
                        let _ = tx.send(event);
                        break TermEnd::FrameworkRemoved(message);
                    }
                    SchedulerEvent::Terminated(Termination::NotAllowed { .. }) => {
                        let _ = tx.send(event);
                        break TermEnd::LeadershipLost(LossReason::Deadline);
                    }
                    SchedulerEvent::Terminated(termination) => {
                        let termination = termination.clone();
                        let _ = tx.send(event);
                        break TermEnd::Stopped(Some(termination));
                    }
                    _ => {}
                }
                if tx.send(event).is_err() {
                    break TermEnd::Stopped(None);
                }
            }
        }
    };
    scheduler.stop();
    tracing::info!(
        ?reason,
        rejected_fenced_writes = store.rejected_writes(),
        "leadership term over; scheduler stopped"
    );
    let _ = end.send(Some(reason.clone()));
    match reason {
        // Still leading by the store: hand over at once.
        TermEnd::FailedOver(_) | TermEnd::FrameworkRemoved(_) | TermEnd::Stopped(_) => {
            let _ = leadership.resign().await;
        }
        TermEnd::LeadershipLost(_) => drop(leadership),
    }
}
