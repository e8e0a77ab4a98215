//! The process scheduler: one Mesos framework (`brigade-<processor>`) per processor, which
//! consumes the processor's input topic, runs one task per message on the SDK's scheduler
//! runtime, produces each result to the output topic (failures to the error topic) and commits
//! input offsets only behind acknowledged records (at-least-once). [`Brigade`] runs several of
//! them in one process, beside the artifact server that serves `brigade-executor`.
//!
//! - [`record`]: what a process scheduler keeps in the store (framework id, task records).
//! - [`runner`]: the event loop of one process scheduler.
//! - [`brigade`]: the handle that starts and stops process schedulers.

pub mod brigade;
pub mod counters;
pub mod latency;
pub mod record;
pub mod runner;

use std::sync::Arc;
use std::time::Duration;

use mesos_sdk::storage::Store;
use mesos_sdk::v1;

pub use brigade::{Brigade, BrigadeConfig};
pub use counters::{Counters, CountersSnapshot};
pub use latency::{LatencySnapshot, LatencySummary};
pub use runner::{ProcessScheduler, ResultEvent, ResultKind};

use crate::kafka::{KafkaConfig, KafkaError};

/// Errors of the pipeline.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// Kafka failed.
    #[error(transparent)]
    Kafka(#[from] KafkaError),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] mesos_sdk::storage::Error),
    /// The Mesos client could not be built.
    #[error("mesos client: {0}")]
    Client(#[from] mesos_sdk::client::Error),
    /// A scheduler call failed.
    #[error("scheduler: {0}")]
    Scheduler(#[from] mesos_sdk::scheduler::SchedulerError),
    /// The task contract refused something.
    #[error("protocol: {0}")]
    Protocol(#[from] crate::protocol::ProtocolError),
    /// The artifact server failed.
    #[error("artifact server: {0}")]
    Server(String),
    /// A processor with this name already runs.
    #[error("processor {0} already runs")]
    AlreadyRunning(String),
    /// No processor with this name runs.
    #[error("no processor {0} runs")]
    UnknownProcessor(String),
    /// Bad configuration.
    #[error("configuration: {0}")]
    Config(String),
}

/// Settings of one process scheduler (the processor itself aside).
#[derive(Clone)]
pub struct SchedulerConfig {
    /// The Mesos master, e.g. `http://127.0.0.1:5050`.
    pub master: String,
    /// The Kafka cluster.
    pub kafka: KafkaConfig,
    /// Where the framework id and task records live.
    pub store: Arc<dyn Store>,
    /// The fetcher URI of `brigade-executor` (from the artifact server).
    pub executor_uri: v1::command_info::Uri,
    /// Runs `brigade-executor` from this path on the agents instead of fetching it from the
    /// artifact server (for agents on this host, or with the binary installed): saves copying
    /// the binary into every task's sandbox.
    pub executor_on_agent: Option<std::path::PathBuf>,
    /// The framework's user.
    pub user: String,
    /// The framework's role.
    pub role: String,
    /// Failover timeout of the framework (how long Mesos keeps its tasks while it is away).
    pub failover_timeout: Duration,
    /// Overrides the master's heartbeat interval (tests).
    pub heartbeat_interval: Option<Duration>,
    /// Refuse filter for offers declined unused.
    pub decline_refuse: Duration,
    /// Shortest interval between two REVIVEs (beyond a burst of a few).
    pub revive_interval: Duration,
    /// How often offsets are committed and timers checked.
    pub tick: Duration,
    /// How long past its processor's timeout a task may stay unfinished before it is killed.
    pub kill_grace: Duration,
    /// How long a task may stay unreachable (TASK_UNREACHABLE or TASK_UNKNOWN: its agent was
    /// partitioned or lost, so the master already waited its own `agent_removal_timeout`)
    /// before Brigade gives up on it and runs its message again elsewhere (a warm worker: its
    /// items). Default 60 s, as the SDK's `FrameworkBuilder::unreachable_timeout`. If the agent
    /// comes back later, the old task is killed when it reports running, and a result it
    /// reports is dropped, so a message gets no second record from it. Without this a message
    /// whose agent never came back would wait for it forever (TASK_UNREACHABLE is not
    /// terminal, and a KILL is answered with TASK_UNREACHABLE again).
    pub unreachable_grace: Duration,
    /// How often the scheduler asks the master for the state of all its tasks (implicit
    /// reconciliation) besides after every subscription: a task it does not know (an old
    /// worker whose agent came back, say) is killed, and a state change whose update was lost
    /// is seen. Default 15 minutes, the interval the Mesos reconciliation guide suggests.
    pub reconcile_interval: Duration,
    /// Extra attempts for a message whose task failed for reasons of the infrastructure
    /// (executor terminated, agent lost), beyond the processor's own `retries`.
    pub infrastructure_retries: u32,
    /// Tasks launched on one offer at most (the rest of the offer comes back at the next
    /// allocation): large LAUNCH batches delay the first task of the batch.
    pub max_tasks_per_offer: usize,
    /// CPUs of each task's executor (beside the processor's own).
    pub executor_cpus: f64,
    /// Memory (MB) of each task's executor.
    pub executor_mem: f64,
    /// How long an agent's shared executor may stay without a task before the scheduler shuts
    /// it down (the next message on that agent starts a new one). Per-message tasks on one
    /// agent share one `brigade-executor` process; see `pipeline::runner` executors.
    pub executor_idle: Duration,
    /// Warm mode: how many messages one worker runs at once (it is sent up to four times as many,
    /// and charged this many times the processor's `cpus` and `mem`).
    pub warm_concurrency: usize,
    /// Warm mode: how long a worker above the processor's `workers.min` may stay idle before
    /// it is killed.
    pub warm_idle: Duration,
    /// Where every result is announced (the demo prints them), if anywhere.
    pub results: Option<tokio::sync::mpsc::UnboundedSender<ResultEvent>>,
}

impl std::fmt::Debug for SchedulerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchedulerConfig")
            .field("master", &self.master)
            .field("kafka", &self.kafka)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl SchedulerConfig {
    /// Defaults for `master`, `kafka`, `store` and the executor's URI.
    pub fn new(
        master: impl Into<String>,
        kafka: KafkaConfig,
        store: Arc<dyn Store>,
        executor_uri: v1::command_info::Uri,
    ) -> Self {
        Self {
            master: master.into(),
            kafka,
            store,
            executor_uri,
            executor_on_agent: None,
            user: std::env::var("USER").unwrap_or_else(|_| "root".into()),
            role: "*".into(),
            failover_timeout: Duration::from_secs(7 * 24 * 3600),
            heartbeat_interval: None,
            decline_refuse: Duration::from_secs(120),
            revive_interval: Duration::from_secs(1),
            tick: Duration::from_millis(100),
            kill_grace: Duration::from_secs(60),
            unreachable_grace: Duration::from_secs(60),
            reconcile_interval: Duration::from_secs(15 * 60),
            infrastructure_retries: 3,
            max_tasks_per_offer: 32,
            executor_cpus: crate::protocol::EXECUTOR_CPUS,
            executor_mem: crate::protocol::EXECUTOR_MEM,
            executor_idle: Duration::from_secs(10),
            warm_concurrency: 4,
            warm_idle: Duration::from_secs(30),
            results: None,
        }
    }
}
