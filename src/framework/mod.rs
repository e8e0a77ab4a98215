//! A complete framework: the [`Framework`] builder wires the client, the scheduler runtime
//! (explicit acknowledgements), a store (in memory by default), the task manager, offer
//! etiquette, reconciliation and the user's [`Controller`], and runs them until stopped.
//!
//! ```no_run
//! use mesos_sdk::framework::{DefaultController, Framework};
//! use mesos_sdk::taskmgr::spec::TaskSpec;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let hello = TaskSpec::new("hello").instances(3).shell("echo hello").cpus(0.1).mem(32.0);
//! let framework = Framework::builder("http://master:5050", "hello")
//!     .task(hello)
//!     .start(DefaultController)
//!     .await?;
//! let summary = framework.settled().await;
//! println!("{summary:?}");
//! framework.teardown().await?;
//! # Ok(())
//! # }
//! ```
//!
//! Choices:
//! - The framework id is stored under `framework-id` in the namespace `/mesos-sdk/<name>/` and
//!   reused on the next start (the failover timeout of [`FrameworkInfoBuilder`] is a week), so
//!   a restarted framework finds its tasks through reconciliation instead of launching them
//!   again.
//! - [`FrameworkHandle::stop`] leaves the tasks running (no TEARDOWN);
//!   [`FrameworkHandle::teardown`] ends the framework and its tasks.
//! - HA: [`FrameworkBuilder::run_term`] runs the controller for one leadership term of
//!   [`crate::ha::HaRunner`], every write through the term's fenced store;
//!   [`Framework::run_ha`] does that term after term (campaign, lead, stand by again).
//! - Instances reported `TASK_UNREACHABLE` (their agent is partitioned or was removed) are
//!   replaced after [`FrameworkBuilder::unreachable_timeout`] (default 60 s); the old task, if
//!   it comes back after its replacement was launched, is killed.
//! - With the feature `server`, [`FrameworkBuilder::server`] starts the SDK's HTTP server with
//!   the framework: its artifacts resolve the specs' artifact names, `/metrics` carries the
//!   framework's metrics and `/state` its state (connection, leadership, every instance with
//!   its state and reason, pending instances with their placement's reason).

mod controller;
mod ha;
mod placement;
mod runtime;
mod state;
mod telemetry;

use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, Stream, StreamExt};
use tokio::sync::{Mutex, Notify, watch};
use tokio::task::JoinHandle;

pub use controller::{Controller, ControllerError, DefaultController};
pub use runtime::{Context, FRAMEWORK_ID_KEY, UnknownTaskPolicy};
use state::StatePublisher;
use telemetry::Telemetry;

use crate::client::Client;
use crate::ha::Term;
use crate::resourcemgr::etiquette::{Etiquette, EtiquetteConfig};
use crate::resourcemgr::placement::{Placer, PlacerConfig};
use crate::resourcemgr::pool::OfferPool;
use crate::scheduler::{
    AckMode, FrameworkInfoBuilder, Scheduler, SchedulerBuilder, SchedulerError, SchedulerEvent,
    Termination,
};
use crate::storage::{MemoryStore, Namespace, Store, StoreExt};
use crate::taskmgr::spec::{ArtifactUrls, NoArtifacts, TaskSpec};
use crate::taskmgr::{ReconcileConfig, Reconciler, Summary, TaskError, TaskManager};
use crate::v1::{FrameworkId, FrameworkInfo};

/// How long an offer may wait in the pool (while a sticky instance waits for its agent)
/// before it is declined.
const POOLED_OFFER_TTL: Duration = Duration::from_secs(5);

/// Errors starting or ending a framework.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameworkError {
    /// The client could not be built (bad master URL, TLS settings).
    #[error("client: {0}")]
    Client(#[from] crate::client::Error),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] crate::storage::Error),
    /// The task manager refused a spec or failed to load.
    #[error(transparent)]
    Tasks(#[from] TaskError),
    /// A scheduler call failed.
    #[error(transparent)]
    Scheduler(#[from] SchedulerError),
    /// Leader election or the HA runner failed ([`Framework::run_ha`]).
    #[error(transparent)]
    Ha(#[from] crate::ha::HaError),
    /// The HTTP server could not start.
    #[cfg(feature = "server")]
    #[error("server: {0}")]
    Server(#[from] crate::server::ServerError),
}

type SchedulerTweak = Box<dyn FnOnce(SchedulerBuilder) -> SchedulerBuilder + Send>;

/// Configures and starts a framework.
pub struct FrameworkBuilder {
    master: String,
    client: Option<Client>,
    framework_info: FrameworkInfo,
    store: Option<Arc<dyn Store>>,
    framework_id: Option<String>,
    specs: Vec<TaskSpec>,
    reconcile: ReconcileConfig,
    etiquette: EtiquetteConfig,
    tick: Duration,
    sticky_wait: Duration,
    unknown: UnknownTaskPolicy,
    artifacts: Arc<dyn ArtifactUrls + Send + Sync>,
    artifacts_set: bool,
    unreachable_timeout: Option<Duration>,
    tweak: Option<SchedulerTweak>,
    #[cfg(feature = "server")]
    server: Option<crate::server::ServerBuilder>,
}

impl std::fmt::Debug for FrameworkBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameworkBuilder")
            .field("master", &self.master)
            .field("framework_info", &self.framework_info)
            .field("specs", &self.specs.len())
            .finish_non_exhaustive()
    }
}

impl Framework {
    /// A framework named `name` against the master at `master` (a URL), run as the user of
    /// `$USER` (`root` when unset).
    pub fn builder(master: impl Into<String>, name: &str) -> FrameworkBuilder {
        let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
        FrameworkBuilder {
            master: master.into(),
            client: None,
            framework_info: FrameworkInfoBuilder::new(user, name).build(),
            store: None,
            framework_id: None,
            specs: Vec::new(),
            reconcile: ReconcileConfig::default(),
            etiquette: EtiquetteConfig::default(),
            tick: Duration::from_secs(1),
            sticky_wait: Duration::from_secs(60),
            unknown: UnknownTaskPolicy::default(),
            artifacts: Arc::new(NoArtifacts),
            artifacts_set: false,
            unreachable_timeout: Some(Duration::from_secs(60)),
            tweak: None,
            #[cfg(feature = "server")]
            server: None,
        }
    }
}

impl FrameworkBuilder {
    /// Uses this client instead of one built from the master URL.
    pub fn client(mut self, client: Client) -> Self {
        self.client = Some(client);
        self
    }

    /// Replaces the `FrameworkInfo` (its name names the store namespace).
    pub fn framework_info(mut self, info: FrameworkInfo) -> Self {
        self.framework_info = info;
        self
    }

    /// The store (default: a fresh [`MemoryStore`]). With HA, pass the fenced store.
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// Subscribes with this framework id, whatever the store says.
    pub fn framework_id(mut self, id: impl Into<String>) -> Self {
        self.framework_id = Some(id.into());
        self
    }

    /// Adds (or updates) a task spec at start.
    pub fn task(mut self, spec: TaskSpec) -> Self {
        self.specs.push(spec);
        self
    }

    /// Reconciliation settings.
    pub fn reconcile(mut self, config: ReconcileConfig) -> Self {
        self.reconcile = config;
        self
    }

    /// Offer etiquette settings (refuse filter, REVIVE rate).
    pub fn etiquette(mut self, config: EtiquetteConfig) -> Self {
        self.etiquette = config;
        self
    }

    /// How often timers are looked at (default 1 s): restart backoffs end, reconciliation
    /// retries and launch timeouts are noticed at this granularity.
    pub fn tick(mut self, tick: Duration) -> Self {
        self.tick = tick;
        self
    }

    /// How long a restarted instance of a sticky spec waits for an offer of its last agent
    /// before it takes any (default 60 s; Marathon-style delay scheduling).
    pub fn sticky_wait(mut self, wait: Duration) -> Self {
        self.sticky_wait = wait;
        self
    }

    /// What to do with tasks the master reports that the store does not know (default kill).
    pub fn unknown_tasks(mut self, policy: UnknownTaskPolicy) -> Self {
        self.unknown = policy;
        self
    }

    /// Resolves artifact names of specs (the artifact server's handle).
    pub fn artifacts(mut self, artifacts: Arc<dyn ArtifactUrls + Send + Sync>) -> Self {
        self.artifacts = artifacts;
        self.artifacts_set = true;
        self
    }

    /// How long an instance may stay `TASK_UNREACHABLE` before it is replaced (default 60 s;
    /// `None`: wait for the agent forever). The replaced task, should it come back, is killed.
    pub fn unreachable_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.unreachable_timeout = timeout;
        self
    }

    /// Starts the SDK's HTTP server (feature `server`) with the framework: its artifacts
    /// resolve the specs' artifact names (unless [`artifacts`](Self::artifacts) is set), its
    /// `/metrics` gets the framework's metrics and its `/state` the framework's state. The
    /// server stops when the [`FrameworkHandle`] is dropped; see [`FrameworkHandle::server`].
    #[cfg(feature = "server")]
    pub fn server(mut self, server: crate::server::ServerBuilder) -> Self {
        self.server = Some(server);
        self
    }

    /// Adjusts the scheduler runtime's settings (heartbeats, reconnect backoff, ...).
    pub fn scheduler(
        mut self,
        tweak: impl FnOnce(SchedulerBuilder) -> SchedulerBuilder + Send + 'static,
    ) -> Self {
        self.tweak = Some(Box::new(tweak));
        self
    }

    /// Loads the store, adds the specs, subscribes and runs `controller` in a background task.
    pub async fn start<C: Controller>(
        mut self,
        controller: C,
    ) -> Result<FrameworkHandle, FrameworkError> {
        let store = self
            .store
            .take()
            .unwrap_or_else(|| Arc::new(MemoryStore::new()) as Arc<dyn Store>);
        let namespace = Namespace::new(&self.framework_info.name)?;
        let tasks = self.load_tasks(&store, &namespace).await?;
        let mut info = self.framework_info.clone();
        let stored_id: Option<FrameworkId> =
            store.get_proto(&namespace.key(FRAMEWORK_ID_KEY)).await?;
        if let Some(id) = self.framework_id.take().or(stored_id.map(|id| id.value)) {
            tracing::info!(framework = %id, "resuming framework id");
            info.id = Some(FrameworkId { value: id });
        }
        let client = match self.client.take() {
            Some(client) => client,
            None => Client::builder().endpoint(self.master.as_str()).build()?,
        };
        let mut builder = Scheduler::builder(client, info).ack_mode(AckMode::Explicit);
        if let Some(tweak) = self.tweak.take() {
            builder = tweak(builder);
        }
        let (scheduler, events) = builder.start();
        self.spawn(
            controller, store, namespace, tasks, scheduler, events, "leader",
        )
        .await
    }

    /// Runs `controller` for one leadership term of [`HaRunner`](crate::ha::HaRunner): the
    /// term's scheduler and events, every write through the term's fenced store. Configure the
    /// runner's scheduler with [`AckMode::Explicit`] (so updates are acknowledged only after
    /// they are stored) and its [`HaConfig`](crate::ha::HaConfig) with the namespace of this
    /// framework's name (both then use the key [`FRAMEWORK_ID_KEY`]). The handle's
    /// [`FrameworkHandle::wait`] resolves when the term ends.
    pub async fn run_term<C, S>(
        mut self,
        term: Term<S>,
        controller: C,
    ) -> Result<FrameworkHandle, FrameworkError>
    where
        C: Controller,
        S: Store + Clone + 'static,
    {
        let store: Arc<dyn Store> = Arc::new(term.store.clone());
        let namespace = Namespace::new(&self.framework_info.name)?;
        let tasks = self.load_tasks(&store, &namespace).await?;
        let scheduler = term.scheduler.clone();
        self.spawn(
            controller,
            store,
            namespace,
            tasks,
            scheduler,
            term,
            "leader (HA term)",
        )
        .await
    }

    async fn load_tasks(
        &mut self,
        store: &Arc<dyn Store>,
        namespace: &Namespace,
    ) -> Result<TaskManager, FrameworkError> {
        let tasks = TaskManager::load(store.clone(), namespace.clone()).await?;
        for spec in std::mem::take(&mut self.specs) {
            tasks.add(spec).await?;
        }
        Ok(tasks)
    }

    #[allow(clippy::too_many_arguments)]
    async fn spawn<C, E>(
        #[allow(unused_mut)] mut self,
        controller: C,
        store: Arc<dyn Store>,
        namespace: Namespace,
        tasks: TaskManager,
        scheduler: Scheduler,
        events: E,
        leadership: &'static str,
    ) -> Result<FrameworkHandle, FrameworkError>
    where
        C: Controller,
        E: Stream<Item = SchedulerEvent> + Unpin + Send + 'static,
    {
        let roles = if self.framework_info.roles.is_empty() {
            vec!["*".to_owned()]
        } else {
            self.framework_info.roles.clone()
        };
        let refuse = self.etiquette.refuse;
        let (state, state_rx) = StatePublisher::new(&self.framework_info.name, leadership);
        #[allow(unused_mut)]
        let mut telemetry = Telemetry::default();
        #[cfg(feature = "server")]
        let server = match self.server.take() {
            Some(builder) => {
                let server = builder
                    .state(crate::server::WatchState(state_rx))
                    .start()
                    .await?;
                telemetry = Telemetry::register(&server.metrics());
                if !self.artifacts_set {
                    self.artifacts = Arc::new(server.artifacts());
                }
                Some(server)
            }
            None => None,
        };
        #[cfg(not(feature = "server"))]
        drop(state_rx);
        let ctx = Arc::new(Context {
            scheduler: scheduler.clone(),
            tasks: tasks.clone(),
            store,
            namespace,
            reconciler: Mutex::new(Reconciler::new(self.reconcile)),
            etiquette: Mutex::new(Etiquette::new(self.etiquette, roles.clone())),
            roles,
            artifacts: self.artifacts,
            unknown: self.unknown,
            agents: Mutex::new(std::collections::HashMap::new()),
            pool: Mutex::new(OfferPool::with_ttl(POOLED_OFFER_TTL)),
            placer: Mutex::new(Placer::new(PlacerConfig {
                locality_wait: self.sticky_wait,
                refuse,
                ..PlacerConfig::default()
            })),
            unreachable_timeout: self.unreachable_timeout,
            unreachable: Mutex::new(std::collections::HashMap::new()),
            telemetry,
            state,
            deferred_acks: Mutex::new(None),
        });
        let stop = Arc::new(Notify::new());
        let (ended_tx, ended) = watch::channel(false);
        let run = runtime::run(ctx, controller, events, self.tick, stop.clone());
        let join = tokio::spawn(async move {
            let termination = run.await;
            tracing::info!(%termination, "framework event loop ended");
            let _ = ended_tx.send(true);
            termination
        });
        Ok(FrameworkHandle {
            scheduler,
            tasks,
            stop,
            ended,
            join: Mutex::new(Some(join)),
            #[cfg(feature = "server")]
            server,
        })
    }
}

/// The framework: namespace for [`Framework::builder`].
#[derive(Debug)]
pub struct Framework;

/// A running framework.
#[derive(Debug)]
pub struct FrameworkHandle {
    scheduler: Scheduler,
    tasks: TaskManager,
    stop: Arc<Notify>,
    ended: watch::Receiver<bool>,
    join: Mutex<Option<JoinHandle<Termination>>>,
    #[cfg(feature = "server")]
    server: Option<crate::server::Server>,
}

impl FrameworkHandle {
    /// The HTTP server started with [`FrameworkBuilder::server`] (register artifacts, read
    /// its address).
    #[cfg(feature = "server")]
    pub fn server(&self) -> Option<&crate::server::Server> {
        self.server.as_ref()
    }

    /// Takes the server out of the handle (to shut it down and wait, freeing its port).
    #[cfg(feature = "server")]
    pub(crate) fn take_server(&mut self) -> Option<crate::server::Server> {
        self.server.take()
    }

    /// The task manager (add specs, scale, kill, query, watch changes).
    pub fn tasks(&self) -> &TaskManager {
        &self.tasks
    }

    /// The scheduler handle.
    pub fn scheduler(&self) -> &Scheduler {
        &self.scheduler
    }

    /// Waits until every instance is done or given up (nothing pending, launching or running),
    /// or the event loop ended (the scheduler terminated), and answers the counts. Waits
    /// forever for specs that restart always.
    pub async fn settled(&self) -> Summary {
        let mut changes = Box::pin(self.tasks.changes());
        let mut ended = self.ended.clone();
        loop {
            let summary = self.tasks.summary().await;
            if summary.pending + summary.launching + summary.active + summary.killing == 0
                || *ended.borrow()
            {
                return summary;
            }
            tokio::select! {
                change = changes.next() => {
                    if change.is_none() {
                        return summary;
                    }
                    // Count once for every change already waiting (a summary scans every
                    // instance).
                    while let Some(Some(_)) = changes.next().now_or_never() {}
                }
                _ = ended.changed() => {}
            }
        }
    }

    /// Whether the event loop has ended.
    pub fn has_ended(&self) -> bool {
        *self.ended.borrow()
    }

    /// Stops gracefully: unsubscribes without TEARDOWN (tasks keep running for the failover
    /// timeout, and a new start with the same store finds them) and waits for the loop to end.
    pub async fn stop(&self) -> Option<Termination> {
        self.stop.notify_one();
        self.scheduler.stop();
        self.wait().await
    }

    /// TEARDOWN: the master kills every task and forgets the framework; then waits.
    pub async fn teardown(&self) -> Result<Option<Termination>, FrameworkError> {
        self.scheduler.teardown().await?;
        Ok(self.stop().await)
    }

    /// Stops at once, in the middle of whatever the event loop was doing, as a crash would
    /// (no further store write, nothing acknowledged; the scheduler unsubscribes without
    /// TEARDOWN). For failure tests and emergencies.
    pub async fn abort(&self) {
        if let Some(join) = self.join.lock().await.take() {
            join.abort();
        }
        self.scheduler.stop();
    }

    /// Waits until the event loop ended; answers why (once).
    pub async fn wait(&self) -> Option<Termination> {
        let join = self.join.lock().await.take()?;
        join.await.ok()
    }
}
