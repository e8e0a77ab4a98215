//! Embedded Mesos-compatible agents: each one owns an HTTP server with the V1 executor API, its
//! sandboxes and executor processes, the built-in command and default executors, the fetcher, and
//! reliable delivery of task status updates to the master over the in-process [`MasterLink`].
//!
//! An agent is started with [`start`]. It binds its HTTP server, recovers checkpointed state from
//! its work directory (if any), registers with the master ([`FromAgent::Register`]) and then serves
//! [`ToAgent`] commands until it is shut down.
//!
//! Layout of the work directory (the Mesos layout):
//! - `slaves/<agent_id>/frameworks/<fw>/executors/<ex>/runs/<run>`: one sandbox per executor run,
//!   with the executor's `stdout` and `stderr`; tasks of a task group run in `tasks/<task_id>`
//!   below their executor's sandbox. Sandboxes are kept after the run.
//! - `meta/`: checkpoints (agent id and port always; frameworks, executors, tasks and status
//!   updates for frameworks with `checkpoint` set).
//! - `fetcher-cache/`: files fetched with `cache` set, keyed by URI.
//!
//! What survives a restart of the agent after a crash ([`AgentHandle::crash`], or the process
//! dying; a clean [`AgentHandle::shutdown`] makes the next start fresh, as in Mesos) on the same
//! work directory: the agent id and port, and for
//! checkpointing frameworks their custom executors, which get `executor_reregistration_timeout` to
//! subscribe again (their non-terminal tasks become TASK_LOST with
//! REASON_EXECUTOR_REREGISTRATION_TIMEOUT if they do not). Tasks of the built-in command and
//! default executors run inside the agent's own process tree and cannot survive it: on recovery
//! their leftover process groups are killed and their non-terminal tasks are reported TASK_FAILED
//! with REASON_EXECUTOR_TERMINATED. Unacknowledged status updates of checkpointing frameworks are
//! resent after recovery.
//!
//! Not imitated: containers and isolation (`ContainerInfo` is ignored; processes run as the
//! agent's user unless the agent runs as root and `CommandInfo.user` exists), secret environment
//! variables, executor authentication (JWT), unix-socket and HTTPS executor endpoints, and the
//! 503 `Agent has not finished recovery` answer (recovery completes before the HTTP server
//! accepts its first connection).

mod checkpoint;
mod executor_api;
mod fetch_extract;
mod fetch_http;
mod fetch_limits;
mod fetch_stop;
mod fetcher;
mod health;
mod id_checks;
mod process;
mod sandbox_fs;
mod status_updates;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::link::{AgentMessage, FromAgent, MasterLink, ToAgent};
use mesos_sdk::codec::Format;
use mesos_sdk::v1::executor::event as exec_event;
use mesos_sdk::v1::{
    AgentId, AgentInfo, Attribute, ExecutorId, ExecutorInfo, FrameworkId, FrameworkInfo,
    KillPolicy, Resource, TaskGroupInfo, TaskId, TaskInfo, TaskState, TaskStatus, executor_info,
    framework_info, task_status, value,
};

use checkpoint::Meta;
pub use fetch_limits::FetcherLimits;
use status_updates::UpdateStream;

/// Configuration of one embedded agent.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Agent id; a fresh one is made when `None` (and a checkpointed one reused after restart).
    pub id: Option<AgentId>,
    /// Hostname reported in offers.
    pub hostname: String,
    /// IP address to listen on.
    pub ip: IpAddr,
    /// Port to listen on (0: any free port; after a restart the checkpointed port is reused).
    pub port: u16,
    /// Total resources.
    pub resources: Vec<Resource>,
    /// Attributes.
    pub attributes: Vec<Attribute>,
    /// Work directory for sandboxes and checkpoints; a temporary one when `None` (removed when the
    /// agent is shut down). Only an explicit work directory allows restart recovery.
    pub work_dir: Option<PathBuf>,
    /// First retry interval of unacknowledged status updates (Mesos: 10 s).
    pub status_update_retry_min: Duration,
    /// Cap on that interval (Mesos: 10 min).
    pub status_update_retry_max: Duration,
    /// A custom executor that has not subscribed within this time is killed (Mesos: 1 min).
    pub executor_registration_timeout: Duration,
    /// Default grace period of executor shutdown and of task kills without a kill policy
    /// (Mesos: 5 s).
    pub executor_shutdown_grace_period: Duration,
    /// How long a recovered agent waits for checkpointed executors to subscribe again; given to
    /// checkpointing executors as `MESOS_SUBSCRIPTION_BACKOFF_MAX` (Mesos: 2 s).
    pub executor_reregistration_timeout: Duration,
    /// `MESOS_RECOVERY_TIMEOUT` given to checkpointing executors (Mesos: 15 min).
    pub recovery_timeout: Duration,
    /// Extra CA certificates (PEM) the fetcher trusts for `https` URIs, besides the webpki roots.
    pub fetcher_ca_pem: Vec<Vec<u8>>,
    /// Timeouts and size limits of the fetcher.
    pub fetcher_limits: FetcherLimits,
}

impl Default for AgentConfig {
    /// An agent on 127.0.0.1, any free port, with 4 cpus, 8 GiB mem, 10 GiB disk, ports
    /// 31000-32000, a temporary work directory and Mesos' default intervals.
    fn default() -> Self {
        Self {
            id: None,
            hostname: "localhost".to_string(),
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            resources: vec![
                scalar_resource("cpus", 4.0),
                scalar_resource("mem", 8192.0),
                scalar_resource("disk", 10240.0),
                Resource {
                    name: "ports".to_string(),
                    r#type: value::Type::Ranges as i32,
                    ranges: Some(value::Ranges {
                        range: vec![value::Range {
                            begin: 31000,
                            end: 32000,
                        }],
                    }),
                    ..Default::default()
                },
            ],
            attributes: Vec::new(),
            work_dir: None,
            status_update_retry_min: Duration::from_secs(10),
            status_update_retry_max: Duration::from_secs(600),
            executor_registration_timeout: Duration::from_secs(60),
            executor_shutdown_grace_period: Duration::from_secs(5),
            executor_reregistration_timeout: Duration::from_secs(2),
            recovery_timeout: Duration::from_secs(15 * 60),
            fetcher_ca_pem: Vec::new(),
            fetcher_limits: FetcherLimits::default(),
        }
    }
}

/// A scalar resource with the default role.
fn scalar_resource(name: &str, amount: f64) -> Resource {
    Resource {
        name: name.to_string(),
        r#type: value::Type::Scalar as i32,
        scalar: Some(value::Scalar { value: amount }),
        ..Default::default()
    }
}

/// A running agent.
///
/// Dropping the handle kills the agent's processes (like [`AgentHandle::shutdown`], without
/// waiting); [`AgentHandle::crash`] stops the agent but leaves its executors running, as a killed
/// agent process would.
#[derive(Debug)]
pub struct AgentHandle {
    id: AgentId,
    url: String,
    agent: Arc<Agent>,
    detached: bool,
}

impl AgentHandle {
    /// The agent's id.
    pub fn id(&self) -> &AgentId {
        &self.id
    }
    /// Base URL of its HTTP server.
    pub fn url(&self) -> &str {
        &self.url
    }
    /// The `ip:port` the agent listens on (what executors get as `MESOS_AGENT_ENDPOINT`).
    pub fn endpoint(&self) -> SocketAddr {
        self.agent.endpoint
    }
    /// The agent's work directory.
    pub fn work_dir(&self) -> &Path {
        &self.agent.work_dir
    }
    /// The directory holding this agent's sandboxes:
    /// `<work_dir>/slaves/<agent_id>`.
    pub fn sandbox_root(&self) -> PathBuf {
        self.agent.sandbox_root()
    }
    /// The sandbox of the latest run of an executor (for command tasks the executor id is the
    /// task id), if the agent knows it.
    pub fn executor_sandbox(
        &self,
        framework_id: &FrameworkId,
        executor_id: &ExecutorId,
    ) -> Option<PathBuf> {
        let state = self.agent.lock();
        state
            .frameworks
            .get(&framework_id.value)
            .and_then(|fw| fw.executors.get(&executor_id.value))
            .map(|ex| ex.sandbox.clone())
            .or_else(|| {
                state
                    .finished_sandboxes
                    .get(&(framework_id.value.clone(), executor_id.value.clone()))
                    .cloned()
            })
    }
    /// Stops the agent and its executors, and waits until its processes are signalled. Like a
    /// Mesos agent shut down cleanly, the next agent started on the same work directory starts
    /// fresh (new id, no recovery); use [`AgentHandle::crash`] to keep the executors for a
    /// recovering successor.
    pub async fn shutdown(mut self) {
        self.detached = true;
        self.agent.stop(true).await;
    }
    /// Stops the agent without touching its executor processes, as if the agent process had
    /// been killed: the HTTP server closes, subscribed executors see their streams end, and
    /// nothing more is sent to the master. A new agent started on the same work directory
    /// recovers the checkpointed executors.
    pub async fn crash(mut self) {
        self.detached = true;
        self.agent.stop(false).await;
    }
}

impl Drop for AgentHandle {
    fn drop(&mut self) {
        if !self.detached {
            self.agent.kill_all_now();
            self.agent.cancel.cancel();
        }
    }
}

/// Errors starting an agent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// The work directory could not be created or read.
    #[error("agent work directory {path}: {source}")]
    WorkDir {
        /// The directory.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The HTTP server could not bind its address.
    #[error("agent could not listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The checkpointed state in the work directory is unusable.
    #[error("agent checkpoint: {0}")]
    Checkpoint(String),
    /// The master link is closed.
    #[error("the master is gone")]
    MasterGone,
    /// A CA certificate of [`AgentConfig::fetcher_ca_pem`] is unusable.
    #[error("fetcher TLS configuration: {0}")]
    FetcherTls(String),
}

/// Starts an agent that registers with the master over `master`.
pub async fn start(config: AgentConfig, master: MasterLink) -> Result<AgentHandle, AgentError> {
    let fetcher_tls = mesos_sdk::client::tls_client_config(&config.fetcher_ca_pem)
        .map_err(|err| AgentError::FetcherTls(err.to_string()))?;
    let (work_dir, temporary) = match &config.work_dir {
        Some(dir) => (dir.clone(), false),
        None => (
            std::env::temp_dir().join(format!("mesos-agent-{}", uuid::Uuid::new_v4())),
            true,
        ),
    };
    std::fs::create_dir_all(&work_dir).map_err(|source| AgentError::WorkDir {
        path: work_dir.clone(),
        source,
    })?;
    let meta = Meta::new(work_dir.join("meta"));
    let checkpointed = if temporary {
        None
    } else {
        meta.latest_agent().map_err(AgentError::Checkpoint)?
    };
    let (id, port) = match &checkpointed {
        Some(info) => (
            info.id.clone().unwrap_or_default(),
            u16::try_from(info.port.unwrap_or(0)).unwrap_or(0),
        ),
        None => (
            config.id.clone().unwrap_or_else(|| AgentId {
                value: format!("{}-S0", uuid::Uuid::new_v4()),
            }),
            config.port,
        ),
    };
    let bind_addr = SocketAddr::new(config.ip, port);
    let listener = bind(bind_addr, checkpointed.is_some()).await?;
    let endpoint = listener.local_addr().map_err(|source| AgentError::Bind {
        addr: bind_addr,
        source,
    })?;
    let info = AgentInfo {
        hostname: config.hostname.clone(),
        port: Some(i32::from(endpoint.port())),
        resources: config.resources.clone(),
        attributes: config.attributes.clone(),
        id: Some(id.clone()),
        domain: None,
    };
    if !temporary {
        meta.write_agent(&info).map_err(AgentError::Checkpoint)?;
    }
    let url = format!("http://{endpoint}");
    let (link, commands) = mpsc::unbounded_channel();
    let fetcher = fetcher::Fetcher::new(
        work_dir.join("fetcher-cache"),
        Arc::new(fetcher_tls),
        config.fetcher_limits.clone(),
    );
    let agent = Arc::new(Agent {
        config,
        id: id.clone(),
        info,
        endpoint,
        fetcher,
        work_dir,
        temporary,
        meta,
        master,
        state: Mutex::new(State::default()),
        cancel: CancellationToken::new(),
        tasks: Spawner,
        server: Mutex::new(None),
    });
    let recovered = if checkpointed.is_some() {
        agent.meta.recover(&id).map_err(AgentError::Checkpoint)?
    } else {
        Vec::new()
    };
    let register = agent.restore(recovered);
    let server = tokio::spawn(executor_api::serve(
        Arc::downgrade(&agent),
        listener,
        agent.cancel.clone(),
    ));
    *agent
        .server
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(server);
    if agent
        .master
        .send(AgentMessage {
            agent_id: id.clone(),
            message: FromAgent::Register {
                info: agent.info.clone(),
                link,
                url: url.clone(),
                frameworks: register.frameworks,
                executors: register.executors,
                tasks: register.tasks,
            },
        })
        .is_err()
    {
        agent.cancel.cancel();
        return Err(AgentError::MasterGone);
    }
    agent.after_recovery(register.pending);
    agent.tasks.spawn(command_loop(
        Arc::downgrade(&agent),
        commands,
        agent.cancel.clone(),
    ));
    tracing::info!(agent_id = %id.value, %url, "agent started");
    Ok(AgentHandle {
        id,
        url,
        agent,
        detached: false,
    })
}

/// Binds the HTTP server. A checkpointed port may still be held for a moment by the previous
/// agent on this work directory, so binding it is retried for up to two seconds.
async fn bind(addr: SocketAddr, retry: bool) -> Result<tokio::net::TcpListener, AgentError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    loop {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => return Ok(listener),
            Err(source)
                if retry
                    && source.kind() == std::io::ErrorKind::AddrInUse
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(source) => return Err(AgentError::Bind { addr, source }),
        }
    }
}

/// Reads the master's commands until the agent stops.
async fn command_loop(
    agent: Weak<Agent>,
    mut commands: mpsc::UnboundedReceiver<ToAgent>,
    cancel: CancellationToken,
) {
    loop {
        let command = tokio::select! {
            _ = cancel.cancelled() => return,
            command = commands.recv() => command,
        };
        let Some(command) = command else { return };
        let Some(agent) = agent.upgrade() else { return };
        if let ToAgent::Shutdown = command {
            let agent = Arc::clone(&agent);
            tokio::spawn(async move { agent.stop(true).await });
            return;
        }
        agent.handle(command);
    }
}

/// What [`Agent::restore`] found to report in `Register`, and what to do after it.
struct Restored {
    frameworks: Vec<FrameworkInfo>,
    executors: Vec<ExecutorInfo>,
    tasks: Vec<mesos_sdk::v1::Task>,
    pending: Vec<RecoveryAction>,
}

/// Follow-up work for a recovered executor, run once the master knows about the agent.
enum RecoveryAction {
    /// A live custom executor: wait for it to subscribe again.
    AwaitReregistration {
        framework_id: String,
        executor_id: String,
        run_id: String,
        pid: i32,
    },
    /// The executor is gone (or was built in): fail its tasks.
    Terminated {
        framework_id: String,
        executor_id: String,
        run_id: String,
        pid: Option<i32>,
        custom: bool,
    },
}

/// Spawns the agent's background work (timers, executor watchers, task runners).
#[derive(Debug, Clone, Copy)]
struct Spawner;

impl Spawner {
    fn spawn<F>(&self, work: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        tokio::spawn(work);
    }
}

/// How an executor run ended, for its tasks' terminal updates.
pub(crate) struct Termination {
    /// State of its non-terminal tasks.
    pub(crate) state: TaskState,
    /// Reason of those updates.
    pub(crate) reason: task_status::Reason,
    /// Message of those updates.
    pub(crate) message: String,
}

/// Which executor runs an executor entry's tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExecutorKind {
    /// A process the framework provided, speaking the executor HTTP API.
    Custom,
    /// The built-in command executor (one task; executor id = task id).
    Command,
    /// The built-in default executor (task groups).
    Default,
}

impl ExecutorKind {
    fn as_str(self) -> &'static str {
        match self {
            ExecutorKind::Custom => "custom",
            ExecutorKind::Command => "command",
            ExecutorKind::Default => "default",
        }
    }
    fn parse(text: &str) -> Option<Self> {
        match text.trim() {
            "custom" => Some(ExecutorKind::Custom),
            "command" => Some(ExecutorKind::Command),
            "default" => Some(ExecutorKind::Default),
            _ => None,
        }
    }
}

/// A task or task group waiting for its custom executor to subscribe.
#[derive(Debug, Clone)]
enum QueuedLaunch {
    Task(Box<TaskInfo>),
    Group(TaskGroupInfo),
}

/// A request to kill a task run by a built-in executor.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KillRequest {
    /// How long to wait between SIGTERM and SIGKILL.
    pub grace: Duration,
}

/// One task known to an executor entry.
#[derive(Debug)]
struct TaskEntry {
    info: TaskInfo,
    state: TaskState,
    /// Kill switch of a task run by a built-in executor.
    kill: Option<mpsc::UnboundedSender<KillRequest>>,
    /// Process group of a task run by a built-in executor.
    pgid: Option<i32>,
    /// Index of the task group (default executor).
    group: usize,
}

/// A subscribed executor's event stream.
#[derive(Debug)]
struct Subscriber {
    connection: u64,
    format: Format,
    events: futures::channel::mpsc::UnboundedSender<Bytes>,
}

/// One executor (run) on this agent.
#[derive(Debug)]
struct Executor {
    info: ExecutorInfo,
    kind: ExecutorKind,
    run_id: String,
    sandbox: PathBuf,
    checkpoint: bool,
    /// Process group of a custom executor.
    pgid: Option<i32>,
    subscriber: Option<Subscriber>,
    /// Has subscribed at least once in this run (or was recovered alive).
    subscribed_once: bool,
    queued: Vec<QueuedLaunch>,
    /// Events (kills) for an executor that is not subscribed right now, sent after SUBSCRIBED.
    pending_events: Vec<mesos_sdk::v1::executor::Event>,
    tasks: HashMap<String, TaskEntry>,
    terminating: bool,
    /// Killed for not subscribing within the registration timeout.
    timed_out: bool,
    groups: usize,
}

/// One framework with work on this agent.
#[derive(Debug)]
struct Framework {
    info: FrameworkInfo,
    executors: HashMap<String, Executor>,
    removing: bool,
}

/// Everything the agent knows, behind one mutex that is never held across an await.
#[derive(Debug, Default)]
struct State {
    frameworks: HashMap<String, Framework>,
    /// Status update streams keyed by (framework id, task id).
    streams: HashMap<(String, String), UpdateStream>,
    /// Sandboxes of executors that are gone, for [`AgentHandle::executor_sandbox`].
    finished_sandboxes: HashMap<(String, String), PathBuf>,
    /// Insertion order of `finished_sandboxes`, oldest first (the map is bounded).
    finished_order: std::collections::VecDeque<(String, String)>,
    next_connection: u64,
    stopped: bool,
}

/// How many sandboxes of finished executors [`AgentHandle::executor_sandbox`] remembers.
const REMEMBERED_SANDBOXES: usize = 10_000;

impl State {
    /// Remembers the sandbox of an executor that is gone, forgetting the oldest beyond
    /// [`REMEMBERED_SANDBOXES`].
    fn remember_sandbox(&mut self, framework_id: &str, executor_id: &str, sandbox: &Path) {
        let key = (framework_id.to_string(), executor_id.to_string());
        if self
            .finished_sandboxes
            .insert(key.clone(), sandbox.to_path_buf())
            .is_none()
        {
            self.finished_order.push_back(key);
        }
        while self.finished_order.len() > REMEMBERED_SANDBOXES {
            if let Some(oldest) = self.finished_order.pop_front() {
                self.finished_sandboxes.remove(&oldest);
            }
        }
    }
}

/// The shared core of one agent.
#[derive(Debug)]
pub(crate) struct Agent {
    config: AgentConfig,
    id: AgentId,
    info: AgentInfo,
    endpoint: SocketAddr,
    /// Downloads of `CommandInfo.uris`.
    fetcher: fetcher::Fetcher,
    work_dir: PathBuf,
    temporary: bool,
    meta: Meta,
    master: MasterLink,
    state: Mutex<State>,
    cancel: CancellationToken,
    tasks: Spawner,
    /// The HTTP accept loop.
    server: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// Seconds since the Unix epoch, as Mesos timestamps are.
fn now_seconds() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// A `DurationInfo` as a non-negative `Duration`.
pub(crate) fn duration_of(info: &mesos_sdk::v1::DurationInfo) -> Duration {
    Duration::from_nanos(u64::try_from(info.nanoseconds).unwrap_or(0))
}

/// Kills a process group, ignoring groups that are already gone.
pub(crate) fn signal_group(pgid: i32, signal: nix::sys::signal::Signal) {
    if pgid <= 0 {
        return;
    }
    if let Err(err) = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), signal) {
        if err != nix::errno::Errno::ESRCH {
            tracing::warn!(pgid, ?signal, %err, "could not signal process group");
        }
    }
}

/// Whether `pid` is a live process started for `executor_id` (its environment names it), so
/// that a recycled pid is never signalled.
fn runs_executor(pid: i32, executor_id: &str) -> bool {
    if !process_alive(pid) {
        return false;
    }
    let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
        return false;
    };
    let wanted = format!("MESOS_EXECUTOR_ID={executor_id}");
    environ
        .split(|b| *b == 0)
        .any(|entry| entry == wanted.as_bytes())
}

/// Whether a process exists and is not a zombie.
pub(crate) fn process_alive(pid: i32) -> bool {
    if pid <= 0 || nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_err() {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .map(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X'))
            .unwrap_or(true),
        Err(_) => true,
    }
}

impl Agent {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn sandbox_root(&self) -> PathBuf {
        self.work_dir.join("slaves").join(&self.id.value)
    }

    fn sandbox_dir(&self, framework_id: &str, executor_id: &str, run_id: &str) -> PathBuf {
        self.sandbox_root()
            .join("frameworks")
            .join(framework_id)
            .join("executors")
            .join(executor_id)
            .join("runs")
            .join(run_id)
    }

    fn send_master(&self, message: FromAgent) {
        if self.lock().stopped {
            return;
        }
        if self
            .master
            .send(AgentMessage {
                agent_id: self.id.clone(),
                message,
            })
            .is_err()
        {
            tracing::debug!(agent_id = %self.id.value, "master link closed");
        }
    }

    /// Dispatches one command from the master.
    fn handle(self: &Arc<Self>, command: ToAgent) {
        match command {
            ToAgent::RunTask {
                framework_info,
                executor,
                task,
            } => {
                let tasks = std::slice::from_ref(&task);
                if !self.refuse_invalid_ids(&framework_info, executor.as_ref(), tasks, false) {
                    self.run_task(framework_info, executor, task);
                }
            }
            ToAgent::RunTaskGroup {
                framework_info,
                executor,
                task_group,
            } => {
                let tasks = &task_group.tasks;
                if !self.refuse_invalid_ids(&framework_info, Some(&executor), tasks, true) {
                    self.run_task_group(framework_info, executor, task_group);
                }
            }
            ToAgent::KillTask {
                framework_id,
                task_id,
                kill_policy,
            } => self.kill_task(&framework_id, &task_id, kill_policy),
            ToAgent::ShutdownExecutor {
                framework_id,
                executor_id,
            } => self.shutdown_executor(&framework_id.value, &executor_id.value),
            ToAgent::ShutdownFramework { framework_id } => self.shutdown_framework(&framework_id),
            ToAgent::FrameworkMessage {
                framework_id,
                executor_id,
                data,
            } => self.framework_message(&framework_id, &executor_id, data),
            ToAgent::Acknowledge {
                framework_id,
                task_id,
                uuid,
            } => self.acknowledge(&framework_id.value, &task_id.value, &uuid),
            ToAgent::UpdateFramework { framework_info } => self.update_framework(framework_info),
            ToAgent::Shutdown => {}
        }
    }

    /// Records `info` (new or changed) and checkpoints it for checkpointing frameworks.
    fn upsert_framework(&self, state: &mut State, info: &FrameworkInfo) -> String {
        let id = info.id.clone().unwrap_or_default().value;
        let framework = state
            .frameworks
            .entry(id.clone())
            .or_insert_with(|| Framework {
                info: info.clone(),
                executors: HashMap::new(),
                removing: false,
            });
        framework.info = info.clone();
        framework.removing = false;
        if info.checkpoint() {
            if let Err(err) = self.meta.write_framework(&self.id, info) {
                tracing::warn!(%err, "could not checkpoint framework");
            }
        }
        id
    }

    fn update_framework(&self, info: FrameworkInfo) {
        let mut state = self.lock();
        let id = info.id.clone().unwrap_or_default().value;
        if state.frameworks.contains_key(&id) {
            self.upsert_framework(&mut state, &info);
        }
    }

    /// A new executor entry (not yet inserted) with a fresh run and sandbox.
    fn new_executor(
        &self,
        framework: &FrameworkInfo,
        info: ExecutorInfo,
        kind: ExecutorKind,
    ) -> Executor {
        let framework_id = framework.id.clone().unwrap_or_default().value;
        let run_id = uuid::Uuid::new_v4().to_string();
        let sandbox = self.sandbox_dir(&framework_id, &info.executor_id.value, &run_id);
        Executor {
            info,
            kind,
            run_id,
            sandbox,
            checkpoint: framework.checkpoint(),
            pgid: None,
            subscriber: None,
            subscribed_once: false,
            queued: Vec::new(),
            pending_events: Vec::new(),
            tasks: HashMap::new(),
            terminating: false,
            timed_out: false,
            groups: 0,
        }
    }

    fn checkpoint_executor(&self, framework_id: &str, executor: &Executor) {
        if !executor.checkpoint {
            return;
        }
        if let Err(err) = self.meta.write_executor(
            &self.id,
            framework_id,
            &executor.info,
            &executor.run_id,
            executor.kind.as_str(),
            &executor.sandbox,
        ) {
            tracing::warn!(%err, "could not checkpoint executor");
        }
    }

    fn checkpoint_task(&self, framework_id: &str, executor: &Executor, task: &TaskInfo) {
        if !executor.checkpoint {
            return;
        }
        if let Err(err) = self.meta.write_task(
            &self.id,
            framework_id,
            &executor.info.executor_id.value,
            &executor.run_id,
            task,
        ) {
            tracing::warn!(%err, "could not checkpoint task");
        }
    }

    fn new_task_entry(task: TaskInfo, group: usize) -> TaskEntry {
        TaskEntry {
            info: task,
            state: TaskState::TaskStaging,
            kill: None,
            pgid: None,
            group,
        }
    }

    fn run_task(
        self: &Arc<Self>,
        framework_info: FrameworkInfo,
        executor: Option<ExecutorInfo>,
        mut task: TaskInfo,
    ) {
        task.agent_id = self.id.clone();
        let executor = executor.or_else(|| task.executor.clone());
        match executor {
            None => self.run_command_task(framework_info, task),
            Some(info)
                if info.r#type() == executor_info::Type::Default || info.command.is_none() =>
            {
                let group = TaskGroupInfo { tasks: vec![task] };
                self.run_task_group(framework_info, info, group);
            }
            Some(info) => self.run_on_custom_executor(
                framework_info,
                info,
                QueuedLaunch::Task(Box::new(task)),
            ),
        }
    }

    fn run_task_group(
        self: &Arc<Self>,
        framework_info: FrameworkInfo,
        executor: ExecutorInfo,
        mut group: TaskGroupInfo,
    ) {
        for task in &mut group.tasks {
            task.agent_id = self.id.clone();
        }
        if executor.r#type() == executor_info::Type::Custom && executor.command.is_some() {
            self.run_on_custom_executor(framework_info, executor, QueuedLaunch::Group(group));
        } else {
            self.run_default_executor_group(framework_info, executor, group);
        }
    }

    /// The built-in command executor: one executor (id = task id) per task.
    fn run_command_task(self: &Arc<Self>, framework_info: FrameworkInfo, task: TaskInfo) {
        let executor_id = ExecutorId {
            value: task.task_id.value.clone(),
        };
        let info = ExecutorInfo {
            r#type: Some(executor_info::Type::Default as i32),
            executor_id: executor_id.clone(),
            framework_id: framework_info.id.clone(),
            name: Some(format!("Command Executor (Task: {})", task.task_id.value)),
            ..Default::default()
        };
        let (kill_tx, kill_rx) = mpsc::unbounded_channel();
        let launch = {
            let mut state = self.lock();
            if state.stopped {
                return;
            }
            let framework_id = self.upsert_framework(&mut state, &framework_info);
            let duplicate = match state.frameworks.get(&framework_id) {
                Some(framework) => framework.executors.contains_key(&executor_id.value),
                None => return,
            };
            if duplicate {
                // Checked before anything is created or checkpointed, so that the running
                // executor's checkpoint is left as it is.
                drop(state);
                tracing::warn!(task_id = %task.task_id.value, "task id already in use on this agent");
                let status = self.new_status(
                    &task.task_id,
                    TaskState::TaskError,
                    task_status::Source::Agent,
                    Some(task_status::Reason::TaskInvalid),
                    Some("Task has duplicate ID".to_string()),
                    None,
                );
                self.record_update(&framework_id, status, None);
                return;
            }
            let mut executor = self.new_executor(&framework_info, info, ExecutorKind::Command);
            let mut entry = Self::new_task_entry(task.clone(), 0);
            entry.kill = Some(kill_tx);
            executor.tasks.insert(task.task_id.value.clone(), entry);
            self.checkpoint_executor(&framework_id, &executor);
            self.checkpoint_task(&framework_id, &executor, &task);
            let launch = process::TaskRun {
                framework_id: FrameworkId {
                    value: framework_id.clone(),
                },
                framework_info: framework_info.clone(),
                executor_id: executor_id.clone(),
                run_id: executor.run_id.clone(),
                sandbox: executor.sandbox.clone(),
                executor_sandbox: executor.sandbox.clone(),
                task: task.clone(),
                checkpoint: executor.checkpoint,
            };
            if let Some(framework) = state.frameworks.get_mut(&framework_id) {
                framework
                    .executors
                    .insert(executor_id.value.clone(), executor);
            }
            launch
        };
        self.tasks
            .spawn(process::run_task_command(Arc::clone(self), launch, kill_rx));
    }

    /// The built-in default executor: runs each task of the group like the command executor.
    fn run_default_executor_group(
        self: &Arc<Self>,
        framework_info: FrameworkInfo,
        mut info: ExecutorInfo,
        group: TaskGroupInfo,
    ) {
        info.framework_id = framework_info.id.clone();
        let mut launches = Vec::new();
        {
            let mut state = self.lock();
            if state.stopped {
                return;
            }
            let framework_id = self.upsert_framework(&mut state, &framework_info);
            let Some(framework) = state.frameworks.get_mut(&framework_id) else {
                return;
            };
            let executor_id = info.executor_id.value.clone();
            if !framework.executors.contains_key(&executor_id) {
                let executor =
                    self.new_executor(&framework_info, info.clone(), ExecutorKind::Default);
                self.checkpoint_executor(&framework_id, &executor);
                framework.executors.insert(executor_id.clone(), executor);
            }
            let Some(executor) = framework.executors.get_mut(&executor_id) else {
                return;
            };
            let group_index = executor.groups;
            executor.groups += 1;
            for task in group.tasks {
                let (kill_tx, kill_rx) = mpsc::unbounded_channel();
                let mut entry = Self::new_task_entry(task.clone(), group_index);
                entry.kill = Some(kill_tx);
                executor.tasks.insert(task.task_id.value.clone(), entry);
                self.checkpoint_task(&framework_id, executor, &task);
                launches.push((
                    process::TaskRun {
                        framework_id: FrameworkId {
                            value: framework_id.clone(),
                        },
                        framework_info: framework_info.clone(),
                        executor_id: info.executor_id.clone(),
                        run_id: executor.run_id.clone(),
                        sandbox: executor.sandbox.join("tasks").join(&task.task_id.value),
                        executor_sandbox: executor.sandbox.clone(),
                        task,
                        checkpoint: executor.checkpoint,
                    },
                    kill_rx,
                ));
            }
        }
        for (launch, kill_rx) in launches {
            self.tasks
                .spawn(process::run_task_command(Arc::clone(self), launch, kill_rx));
        }
    }

    /// Queues a launch on a custom executor, starting the executor if needed.
    fn run_on_custom_executor(
        self: &Arc<Self>,
        framework_info: FrameworkInfo,
        mut info: ExecutorInfo,
        launch: QueuedLaunch,
    ) {
        info.framework_id = framework_info.id.clone();
        let tasks: Vec<TaskInfo> = match &launch {
            QueuedLaunch::Task(task) => vec![(**task).clone()],
            QueuedLaunch::Group(group) => group.tasks.clone(),
        };
        let start = {
            let mut state = self.lock();
            if state.stopped {
                return;
            }
            let framework_id = self.upsert_framework(&mut state, &framework_info);
            let Some(framework) = state.frameworks.get_mut(&framework_id) else {
                return;
            };
            let executor_id = info.executor_id.value.clone();
            let mut start = None;
            let terminating = framework
                .executors
                .get(&executor_id)
                .is_some_and(|e| e.terminating);
            if terminating {
                drop(state);
                for task in tasks {
                    let status = self.new_status(
                        &task.task_id,
                        TaskState::TaskLost,
                        task_status::Source::Agent,
                        Some(task_status::Reason::ExecutorTerminated),
                        Some("Executor is terminating".to_string()),
                        Some(&info.executor_id),
                    );
                    self.record_update(&framework_id, status, None);
                }
                return;
            }
            if !framework.executors.contains_key(&executor_id) {
                let executor =
                    self.new_executor(&framework_info, info.clone(), ExecutorKind::Custom);
                self.checkpoint_executor(&framework_id, &executor);
                start = Some(process::ExecutorLaunch {
                    framework_id: framework_id.clone(),
                    framework_info: framework_info.clone(),
                    info: info.clone(),
                    run_id: executor.run_id.clone(),
                    sandbox: executor.sandbox.clone(),
                    checkpoint: executor.checkpoint,
                });
                framework.executors.insert(executor_id.clone(), executor);
            }
            let Some(executor) = framework.executors.get_mut(&executor_id) else {
                return;
            };
            for task in &tasks {
                executor.tasks.insert(
                    task.task_id.value.clone(),
                    Self::new_task_entry(task.clone(), 0),
                );
                self.checkpoint_task(&framework_id, executor, task);
            }
            match &executor.subscriber {
                Some(subscriber) => {
                    let event = launch_event(&launch);
                    send_event(subscriber, &event);
                }
                None => executor.queued.push(launch),
            }
            start
        };
        if let Some(start) = start {
            self.tasks
                .spawn(process::launch_custom_executor(Arc::clone(self), start));
        }
    }

    fn kill_task(
        self: &Arc<Self>,
        framework_id: &FrameworkId,
        task_id: &TaskId,
        policy: Option<KillPolicy>,
    ) {
        let mut state = self.lock();
        let Some(framework) = state.frameworks.get_mut(&framework_id.value) else {
            tracing::warn!(task_id = %task_id.value, "kill for a task of an unknown framework");
            return;
        };
        let Some(executor) = framework
            .executors
            .values_mut()
            .find(|e| e.tasks.contains_key(&task_id.value))
        else {
            tracing::warn!(task_id = %task_id.value, "kill for an unknown task");
            return;
        };
        let grace = self.kill_grace(executor, &task_id.value, policy.as_ref());
        match executor.kind {
            ExecutorKind::Custom => {
                let (removed, kept): (Vec<QueuedLaunch>, Vec<QueuedLaunch>) =
                    std::mem::take(&mut executor.queued)
                        .into_iter()
                        .partition(|launch| launch_has_task(launch, task_id));
                executor.queued = kept;
                if !removed.is_empty() {
                    // Killing one task of a queued group drops the whole group.
                    let executor_id = executor.info.executor_id.clone();
                    let killed: Vec<TaskId> = removed
                        .iter()
                        .flat_map(|launch| match launch {
                            QueuedLaunch::Task(task) => vec![task.task_id.clone()],
                            QueuedLaunch::Group(group) => {
                                group.tasks.iter().map(|t| t.task_id.clone()).collect()
                            }
                        })
                        .collect();
                    drop(state);
                    for task in killed {
                        let status = self.new_status(
                            &task,
                            TaskState::TaskKilled,
                            task_status::Source::Agent,
                            Some(task_status::Reason::TaskKilledDuringLaunch),
                            Some("Killed before delivery to the executor".to_string()),
                            Some(&executor_id),
                        );
                        self.record_update(&framework_id.value, status, None);
                    }
                    return;
                }
                let event = mesos_sdk::v1::executor::Event {
                    r#type: Some(exec_event::Type::Kill as i32),
                    kill: Some(exec_event::Kill {
                        task_id: task_id.clone(),
                        kill_policy: policy,
                    }),
                    ..Default::default()
                };
                match &executor.subscriber {
                    Some(subscriber) => send_event(subscriber, &event),
                    None => {
                        // A recovered or reconnecting executor gets the kill once it subscribes.
                        tracing::info!(
                            task_id = %task_id.value,
                            "executor not subscribed; the kill waits for its subscription"
                        );
                        executor.pending_events.push(event);
                    }
                }
            }
            ExecutorKind::Command | ExecutorKind::Default => {
                if let Some(kill) = executor
                    .tasks
                    .get(&task_id.value)
                    .and_then(|t| t.kill.as_ref())
                {
                    let _ = kill.send(KillRequest { grace });
                }
            }
        }
    }

    /// Grace period of a kill: the request's policy, else the task's, else the executor's
    /// shutdown grace period, else the agent default.
    fn kill_grace(
        &self,
        executor: &Executor,
        task_id: &str,
        policy: Option<&KillPolicy>,
    ) -> Duration {
        policy
            .and_then(|p| p.grace_period.as_ref())
            .or_else(|| {
                executor
                    .tasks
                    .get(task_id)
                    .and_then(|t| t.info.kill_policy.as_ref())
                    .and_then(|p| p.grace_period.as_ref())
            })
            .map(duration_of)
            .unwrap_or_else(|| self.executor_grace(&executor.info))
    }

    fn executor_grace(&self, info: &ExecutorInfo) -> Duration {
        info.shutdown_grace_period
            .as_ref()
            .map(duration_of)
            .unwrap_or(self.config.executor_shutdown_grace_period)
    }

    /// SHUTDOWN event, grace period, SIGTERM, SIGKILL for custom executors; kill every task of a
    /// built-in executor.
    fn shutdown_executor(self: &Arc<Self>, framework_id: &str, executor_id: &str) {
        let mut state = self.lock();
        let Some(executor) = state
            .frameworks
            .get_mut(framework_id)
            .and_then(|f| f.executors.get_mut(executor_id))
        else {
            return;
        };
        let grace = self.executor_grace(&executor.info);
        match executor.kind {
            ExecutorKind::Custom => {
                if executor.terminating {
                    return;
                }
                executor.terminating = true;
                let subscribed = executor.subscriber.is_some();
                if let Some(subscriber) = &executor.subscriber {
                    let event = mesos_sdk::v1::executor::Event {
                        r#type: Some(exec_event::Type::Shutdown as i32),
                        ..Default::default()
                    };
                    send_event(subscriber, &event);
                }
                let pgid = executor.pgid;
                let run_id = executor.run_id.clone();
                drop(state);
                let agent = Arc::downgrade(self);
                let (framework_id, executor_id) =
                    (framework_id.to_string(), executor_id.to_string());
                self.tasks.spawn(async move {
                    if subscribed {
                        tokio::time::sleep(grace).await;
                    }
                    let Some(agent) = agent.upgrade() else { return };
                    let pgid = agent
                        .current_pgid(&framework_id, &executor_id, &run_id)
                        .or(pgid);
                    let Some(pgid) = pgid else { return };
                    signal_group(pgid, nix::sys::signal::Signal::SIGTERM);
                    let wait = if subscribed {
                        grace.min(Duration::from_secs(1))
                    } else {
                        grace
                    };
                    tokio::time::sleep(wait).await;
                    if agent
                        .current_pgid(&framework_id, &executor_id, &run_id)
                        .is_some()
                    {
                        signal_group(pgid, nix::sys::signal::Signal::SIGKILL);
                    }
                });
            }
            ExecutorKind::Command | ExecutorKind::Default => {
                executor.terminating = true;
                for task in executor.tasks.values() {
                    if let Some(kill) = &task.kill {
                        let _ = kill.send(KillRequest { grace });
                    }
                }
            }
        }
    }

    /// The process group of a live executor run, if it still runs.
    fn current_pgid(&self, framework_id: &str, executor_id: &str, run_id: &str) -> Option<i32> {
        let state = self.lock();
        state
            .frameworks
            .get(framework_id)
            .and_then(|f| f.executors.get(executor_id))
            .filter(|e| e.run_id == run_id)
            .and_then(|e| e.pgid)
    }

    fn shutdown_framework(self: &Arc<Self>, framework_id: &FrameworkId) {
        let executors: Vec<String> = {
            let mut state = self.lock();
            let Some(framework) = state.frameworks.get_mut(&framework_id.value) else {
                return;
            };
            framework.removing = true;
            framework.executors.keys().cloned().collect()
        };
        for executor_id in &executors {
            self.shutdown_executor(&framework_id.value, executor_id);
        }
        self.maybe_remove_framework(&framework_id.value);
    }

    /// Forgets a framework that is being removed once its last executor is gone.
    fn maybe_remove_framework(&self, framework_id: &str) {
        let mut state = self.lock();
        let remove = state
            .frameworks
            .get(framework_id)
            .is_some_and(|f| f.removing && f.executors.is_empty());
        if remove {
            state.frameworks.remove(framework_id);
            state.streams.retain(|(fw, _), _| fw != framework_id);
            drop(state);
            self.meta.remove_framework(&self.id, framework_id);
        }
    }

    fn framework_message(&self, framework_id: &FrameworkId, executor_id: &ExecutorId, data: Bytes) {
        let state = self.lock();
        let subscriber = state
            .frameworks
            .get(&framework_id.value)
            .and_then(|f| f.executors.get(&executor_id.value))
            .and_then(|e| e.subscriber.as_ref());
        match subscriber {
            Some(subscriber) => {
                let event = mesos_sdk::v1::executor::Event {
                    r#type: Some(exec_event::Type::Message as i32),
                    message: Some(exec_event::Message { data }),
                    ..Default::default()
                };
                send_event(subscriber, &event);
            }
            None => tracing::warn!(
                executor_id = %executor_id.value,
                "dropping a framework message for an executor that is not subscribed"
            ),
        }
    }

    /// A status update made by the agent or a built-in executor.
    fn new_status(
        &self,
        task_id: &TaskId,
        state: TaskState,
        source: task_status::Source,
        reason: Option<task_status::Reason>,
        message: Option<String>,
        executor_id: Option<&ExecutorId>,
    ) -> TaskStatus {
        TaskStatus {
            task_id: task_id.clone(),
            state: state as i32,
            message,
            source: Some(source as i32),
            reason: reason.map(|r| r as i32),
            agent_id: Some(self.id.clone()),
            executor_id: executor_id.cloned(),
            timestamp: Some(now_seconds()),
            uuid: Some(Bytes::copy_from_slice(uuid::Uuid::new_v4().as_bytes())),
            ..Default::default()
        }
    }

    /// Called by a built-in executor's task runner after its terminal update: forgets the task,
    /// kills the rest of its group when it did not finish, and retires the executor when it has
    /// no tasks left.
    fn builtin_task_done(
        self: &Arc<Self>,
        framework_id: &str,
        executor_id: &str,
        task_id: &str,
        final_state: TaskState,
    ) {
        let mut exited = None;
        {
            let mut state = self.lock();
            let Some(framework) = state.frameworks.get_mut(framework_id) else {
                return;
            };
            let Some(executor) = framework.executors.get_mut(executor_id) else {
                return;
            };
            let group = executor.tasks.remove(task_id).map(|t| t.group);
            if executor.kind == ExecutorKind::Default && final_state != TaskState::TaskFinished {
                let grace = self.executor_grace(&executor.info);
                for task in executor.tasks.values() {
                    if Some(task.group) == group {
                        if let Some(kill) = &task.kill {
                            let _ = kill.send(KillRequest { grace });
                        }
                    }
                }
            }
            if executor.tasks.is_empty() {
                if let Some(executor) = framework.executors.remove(executor_id) {
                    state.remember_sandbox(framework_id, executor_id, &executor.sandbox);
                    if executor.kind == ExecutorKind::Default {
                        exited = Some(executor.info.resources.clone());
                    }
                    if executor.checkpoint {
                        self.meta.mark_run_completed(
                            &self.id,
                            framework_id,
                            executor_id,
                            &executor.run_id,
                        );
                    }
                }
            }
        }
        if let Some(resources) = exited {
            self.send_master(FromAgent::ExecutorExited {
                framework_id: FrameworkId {
                    value: framework_id.to_string(),
                },
                executor_id: ExecutorId {
                    value: executor_id.to_string(),
                },
                status: 0,
                resources,
            });
        }
        self.maybe_remove_framework(framework_id);
    }

    /// Records the process group of a task run by a built-in executor (for agent shutdown).
    fn set_task_pgid(&self, framework_id: &str, executor_id: &str, task_id: &str, pgid: i32) {
        let mut state = self.lock();
        if let Some(task) = state
            .frameworks
            .get_mut(framework_id)
            .and_then(|f| f.executors.get_mut(executor_id))
            .and_then(|e| e.tasks.get_mut(task_id))
        {
            task.pgid = Some(pgid);
        }
    }

    /// A custom executor's process is running; it is killed at once if its run was shut down
    /// (or the agent stopped) while it was being launched.
    fn custom_executor_started(
        &self,
        framework_id: &str,
        executor_id: &str,
        run_id: &str,
        pid: i32,
    ) {
        let mut state = self.lock();
        let stopped = state.stopped;
        match state
            .frameworks
            .get_mut(framework_id)
            .and_then(|f| f.executors.get_mut(executor_id))
            .filter(|e| e.run_id == run_id)
        {
            Some(executor) if !stopped => {
                executor.pgid = Some(pid);
                if executor.checkpoint {
                    self.meta
                        .write_pid(&self.id, framework_id, executor_id, run_id, pid);
                }
                if executor.terminating {
                    // Shut down while it was being fetched: it goes at once.
                    signal_group(pid, nix::sys::signal::Signal::SIGKILL);
                }
            }
            _ => signal_group(pid, nix::sys::signal::Signal::SIGKILL),
        }
    }

    /// Whether an executor run was killed for not subscribing in time.
    fn registration_timed_out(&self, framework_id: &str, executor_id: &str, run_id: &str) -> bool {
        self.lock()
            .frameworks
            .get(framework_id)
            .and_then(|f| f.executors.get(executor_id))
            .is_some_and(|e| e.run_id == run_id && e.timed_out)
    }

    /// Kills an executor that has not subscribed in time.
    fn registration_timeout(&self, framework_id: &str, executor_id: &str, run_id: &str) {
        let mut state = self.lock();
        let Some(executor) = state
            .frameworks
            .get_mut(framework_id)
            .and_then(|f| f.executors.get_mut(executor_id))
            .filter(|e| e.run_id == run_id)
        else {
            return;
        };
        if executor.subscribed_once {
            return;
        }
        executor.timed_out = true;
        tracing::warn!(
            executor_id,
            "executor did not subscribe in time; killing it"
        );
        if let Some(pgid) = executor.pgid {
            signal_group(pgid, nix::sys::signal::Signal::SIGKILL);
        }
    }

    /// A custom executor run ended (exited, was killed, failed to launch, or did not come back
    /// after recovery): terminal updates for its tasks, `ExecutorExited` to the master.
    fn executor_terminated(
        self: &Arc<Self>,
        framework_id: &str,
        executor_id: &str,
        run_id: &str,
        wait_status: i32,
        termination: Termination,
    ) {
        let Termination {
            state: state_for_tasks,
            reason,
            message,
        } = termination;
        let (executor, terminating) = {
            let mut state = self.lock();
            let Some(framework) = state.frameworks.get_mut(framework_id) else {
                return;
            };
            let matches = framework
                .executors
                .get(executor_id)
                .is_some_and(|e| e.run_id == run_id);
            if !matches {
                return;
            }
            let Some(executor) = framework.executors.remove(executor_id) else {
                return;
            };
            let terminating = executor.terminating || framework.removing;
            state.remember_sandbox(framework_id, executor_id, &executor.sandbox);
            (executor, terminating)
        };
        tracing::info!(executor_id, wait_status, "executor terminated");
        if let Some(pgid) = executor.pgid {
            signal_group(pgid, nix::sys::signal::Signal::SIGKILL);
        }
        let task_state = if terminating && state_for_tasks == TaskState::TaskFailed {
            TaskState::TaskKilled
        } else {
            state_for_tasks
        };
        let mut tasks: Vec<&TaskEntry> = executor
            .tasks
            .values()
            .filter(|t| !TaskState::is_terminal(t.state))
            .collect();
        tasks.sort_by(|a, b| a.info.task_id.value.cmp(&b.info.task_id.value));
        for task in tasks {
            let status = self.new_status(
                &task.info.task_id,
                task_state,
                task_status::Source::Agent,
                Some(reason),
                Some(message.clone()),
                Some(&executor.info.executor_id),
            );
            self.record_update(framework_id, status, None);
        }
        if executor.checkpoint {
            self.meta
                .mark_run_completed(&self.id, framework_id, executor_id, run_id);
        }
        self.send_master(FromAgent::ExecutorExited {
            framework_id: FrameworkId {
                value: framework_id.to_string(),
            },
            executor_id: executor.info.executor_id.clone(),
            status: wait_status,
            resources: executor.info.resources.clone(),
        });
        self.maybe_remove_framework(framework_id);
    }

    /// Rebuilds state from checkpoints; returns what to tell the master.
    fn restore(self: &Arc<Self>, recovered: Vec<checkpoint::RecoveredFramework>) -> Restored {
        let mut restored = Restored {
            frameworks: Vec::new(),
            executors: Vec::new(),
            tasks: Vec::new(),
            pending: Vec::new(),
        };
        let mut state = self.lock();
        for framework in recovered {
            let framework_id = framework.info.id.clone().unwrap_or_default().value;
            let mut entry = Framework {
                info: framework.info.clone(),
                executors: HashMap::new(),
                removing: false,
            };
            let mut any = false;
            for recovered_executor in framework.executors {
                let kind = recovered_executor.kind;
                // A checkpointed pid counts only while it still names one of our processes.
                let owned_pid = recovered_executor
                    .pid
                    .filter(|pid| runs_executor(*pid, &recovered_executor.info.executor_id.value));
                let mut executor = Executor {
                    info: recovered_executor.info.clone(),
                    kind,
                    run_id: recovered_executor.run_id.clone(),
                    sandbox: recovered_executor.sandbox.clone(),
                    checkpoint: true,
                    pgid: owned_pid,
                    subscriber: None,
                    subscribed_once: false,
                    queued: Vec::new(),
                    pending_events: Vec::new(),
                    tasks: HashMap::new(),
                    terminating: false,
                    timed_out: false,
                    groups: 1,
                };
                let mut live_tasks = 0;
                let completed = recovered_executor.completed;
                for task in recovered_executor.tasks {
                    let task_id = task.info.task_id.value.clone();
                    let latest = task.updates.last().cloned();
                    let state_now = latest
                        .as_ref()
                        .and_then(|s| TaskState::try_from(s.state).ok())
                        .unwrap_or(TaskState::TaskStaging);
                    let stream_key = (framework_id.clone(), task_id.clone());
                    let mut stream = UpdateStream::new(
                        FrameworkId {
                            value: framework_id.clone(),
                        },
                        Some(self.meta.updates_path(
                            &self.id,
                            &framework_id,
                            &executor.info.executor_id.value,
                            &executor.run_id,
                            &task_id,
                        )),
                    );
                    for status in &task.updates {
                        stream.remember(status);
                    }
                    for status in task.unacknowledged {
                        stream.queue.push_back(status);
                    }
                    if !stream.queue.is_empty() {
                        state.streams.insert(stream_key, stream);
                    }
                    if completed || TaskState::is_terminal(state_now) {
                        continue;
                    }
                    live_tasks += 1;
                    restored.tasks.push(mesos_sdk::v1::Task {
                        name: task.info.name.clone(),
                        task_id: task.info.task_id.clone(),
                        framework_id: FrameworkId {
                            value: framework_id.clone(),
                        },
                        executor_id: (kind != ExecutorKind::Command)
                            .then(|| executor.info.executor_id.clone()),
                        agent_id: self.id.clone(),
                        state: state_now as i32,
                        resources: task.info.resources.clone(),
                        statuses: latest.into_iter().collect(),
                        labels: task.info.labels.clone(),
                        discovery: task.info.discovery.clone(),
                        container: task.info.container.clone(),
                        health_check: task.info.health_check.clone(),
                        kill_policy: task.info.kill_policy,
                        user: task
                            .info
                            .command
                            .as_ref()
                            .and_then(|c| c.user.clone())
                            .or_else(|| Some(framework.info.user.clone())),
                        ..Default::default()
                    });
                    if kind == ExecutorKind::Custom && state_now == TaskState::TaskStaging {
                        // Launched but never reported on: delivered again when the executor
                        // resubscribes, unless it lists the task as already received.
                        executor
                            .queued
                            .push(QueuedLaunch::Task(Box::new(task.info.clone())));
                    }
                    let mut task_entry = Self::new_task_entry(task.info, 0);
                    task_entry.state = state_now;
                    task_entry.pgid = task
                        .pid
                        .filter(|pid| runs_executor(*pid, &executor.info.executor_id.value));
                    executor.tasks.insert(task_id, task_entry);
                }
                if completed {
                    continue;
                }
                let alive = owned_pid.is_some();
                if live_tasks == 0 && !(kind == ExecutorKind::Custom && alive) {
                    if let Some(pid) = owned_pid {
                        if kind != ExecutorKind::Custom {
                            signal_group(pid, nix::sys::signal::Signal::SIGKILL);
                        }
                    }
                    self.meta.mark_run_completed(
                        &self.id,
                        &framework_id,
                        &executor.info.executor_id.value,
                        &executor.run_id,
                    );
                    continue;
                }
                any = true;
                if kind != ExecutorKind::Command {
                    restored.executors.push(executor.info.clone());
                }
                let executor_id = executor.info.executor_id.value.clone();
                let run_id = executor.run_id.clone();
                restored.pending.push(match (kind, owned_pid) {
                    (ExecutorKind::Custom, Some(pid)) if alive => {
                        RecoveryAction::AwaitReregistration {
                            framework_id: framework_id.clone(),
                            executor_id,
                            run_id,
                            pid,
                        }
                    }
                    (kind, pid) => RecoveryAction::Terminated {
                        framework_id: framework_id.clone(),
                        executor_id,
                        run_id,
                        pid,
                        custom: kind == ExecutorKind::Custom,
                    },
                });
                entry
                    .executors
                    .insert(executor.info.executor_id.value.clone(), executor);
            }
            let has_streams = state.streams.keys().any(|(fw, _)| *fw == framework_id);
            if any || has_streams {
                restored.frameworks.push(framework.info.clone());
                state.frameworks.insert(framework_id, entry);
            }
        }
        restored
    }

    /// Resends recovered updates and settles recovered executors, once registered.
    fn after_recovery(self: &Arc<Self>, pending: Vec<RecoveryAction>) {
        let keys: Vec<(String, String)> = self.lock().streams.keys().cloned().collect();
        for (framework_id, task_id) in keys {
            self.forward_front(&framework_id, &task_id);
        }
        for action in pending {
            match action {
                RecoveryAction::AwaitReregistration {
                    framework_id,
                    executor_id,
                    run_id,
                    pid,
                } => {
                    let agent = Arc::downgrade(self);
                    let timeout = self.config.executor_reregistration_timeout;
                    let cancel = self.cancel.clone();
                    self.tasks.spawn(async move {
                        let deadline = tokio::time::Instant::now() + timeout;
                        loop {
                            tokio::select! {
                                _ = cancel.cancelled() => return,
                                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                            }
                            let Some(agent) = agent.upgrade() else { return };
                            let came_back = {
                                let state = agent.lock();
                                match state
                                    .frameworks
                                    .get(&framework_id)
                                    .and_then(|f| f.executors.get(&executor_id))
                                    .filter(|e| e.run_id == run_id)
                                {
                                    Some(e) => e.subscribed_once,
                                    None => return,
                                }
                            };
                            if !process_alive(pid) {
                                agent.executor_terminated(
                                    &framework_id,
                                    &executor_id,
                                    &run_id,
                                    -1,
                                    Termination {
                                        state: TaskState::TaskFailed,
                                        reason: task_status::Reason::ExecutorTerminated,
                                        message: "Executor terminated".to_string(),
                                    },
                                );
                                return;
                            }
                            if !came_back && tokio::time::Instant::now() >= deadline {
                                signal_group(pid, nix::sys::signal::Signal::SIGKILL);
                                agent.executor_terminated(
                                    &framework_id,
                                    &executor_id,
                                    &run_id,
                                    nix::sys::signal::Signal::SIGKILL as i32,
                                    Termination {
                                        state: TaskState::TaskLost,
                                        reason: task_status::Reason::ExecutorReregistrationTimeout,
                                        message: "Executor did not reregister within the timeout"
                                            .to_string(),
                                    },
                                );
                                return;
                            }
                        }
                    });
                }
                RecoveryAction::Terminated {
                    framework_id,
                    executor_id,
                    run_id,
                    pid,
                    custom,
                } => {
                    if let Some(pid) = pid {
                        signal_group(pid, nix::sys::signal::Signal::SIGKILL);
                    }
                    if custom {
                        self.executor_terminated(
                            &framework_id,
                            &executor_id,
                            &run_id,
                            -1,
                            Termination {
                                state: TaskState::TaskFailed,
                                reason: task_status::Reason::ExecutorTerminated,
                                message: "Executor terminated while the agent was down".to_string(),
                            },
                        );
                    } else {
                        self.builtin_lost_on_restart(&framework_id, &executor_id);
                    }
                }
            }
        }
    }

    /// Built-in executor tasks cannot outlive the agent: fail them after a restart.
    fn builtin_lost_on_restart(self: &Arc<Self>, framework_id: &str, executor_id: &str) {
        let tasks: Vec<(TaskId, Option<ExecutorId>)> = {
            let state = self.lock();
            state
                .frameworks
                .get(framework_id)
                .and_then(|f| f.executors.get(executor_id))
                .map(|e| {
                    e.tasks
                        .values()
                        .map(|t| {
                            if let Some(pgid) = t.pgid {
                                signal_group(pgid, nix::sys::signal::Signal::SIGKILL);
                            }
                            (t.info.task_id.clone(), Some(e.info.executor_id.clone()))
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        for (task_id, executor) in tasks {
            let status = self.new_status(
                &task_id,
                TaskState::TaskFailed,
                task_status::Source::Agent,
                Some(task_status::Reason::ExecutorTerminated),
                Some("Built-in executor tasks do not survive an agent restart".to_string()),
                executor.as_ref(),
            );
            self.record_update(framework_id, status, None);
            self.builtin_task_done(
                framework_id,
                executor_id,
                &task_id.value,
                TaskState::TaskFailed,
            );
        }
    }

    /// Kills every process of this agent at once (no grace).
    fn kill_all_now(&self) {
        let mut state = self.lock();
        state.stopped = true;
        for framework in state.frameworks.values_mut() {
            for executor in framework.executors.values_mut() {
                executor.subscriber = None;
                if let Some(pgid) = executor.pgid {
                    signal_group(pgid, nix::sys::signal::Signal::SIGKILL);
                }
                for task in executor.tasks.values() {
                    if let Some(pgid) = task.pgid {
                        signal_group(pgid, nix::sys::signal::Signal::SIGKILL);
                    }
                }
            }
        }
    }

    /// Stops the agent; with `kill_processes`, its executors and tasks too.
    async fn stop(self: &Arc<Self>, kill_processes: bool) {
        if kill_processes {
            let groups: Vec<i32> = {
                let mut state = self.lock();
                state.stopped = true;
                let mut groups = Vec::new();
                for framework in state.frameworks.values_mut() {
                    for executor in framework.executors.values_mut() {
                        if let Some(subscriber) = executor.subscriber.take() {
                            let event = mesos_sdk::v1::executor::Event {
                                r#type: Some(exec_event::Type::Shutdown as i32),
                                ..Default::default()
                            };
                            send_event(&subscriber, &event);
                        }
                        groups.extend(executor.pgid);
                        groups.extend(executor.tasks.values().filter_map(|t| t.pgid));
                    }
                }
                groups
            };
            for pgid in &groups {
                signal_group(*pgid, nix::sys::signal::Signal::SIGTERM);
            }
            if !groups.is_empty() {
                let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
                while tokio::time::Instant::now() < deadline
                    && groups.iter().any(|p| process_alive(*p))
                {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                for pgid in &groups {
                    signal_group(*pgid, nix::sys::signal::Signal::SIGKILL);
                }
            }
        } else {
            let mut state = self.lock();
            state.stopped = true;
            for framework in state.frameworks.values_mut() {
                for executor in framework.executors.values_mut() {
                    executor.subscriber = None;
                }
            }
        }
        self.cancel.cancel();
        let server = self
            .server
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(server) = server {
            // The listener is closed once the accept loop has returned.
            let _ = server.await;
        }
        if kill_processes && !self.temporary {
            self.meta.forget_latest();
        }
        if kill_processes && self.temporary {
            // Removing many sandboxes can take a while; nobody needs to wait for it.
            let dir = self.work_dir.clone();
            let _ = std::thread::Builder::new()
                .name("agent-cleanup".to_string())
                .spawn(move || std::fs::remove_dir_all(dir));
        }
        tracing::info!(agent_id = %self.id.value, "agent stopped");
    }
}

fn launch_has_task(launch: &QueuedLaunch, task_id: &TaskId) -> bool {
    match launch {
        QueuedLaunch::Task(task) => task.task_id.value == task_id.value,
        QueuedLaunch::Group(group) => group.tasks.iter().any(|t| t.task_id.value == task_id.value),
    }
}

fn launch_event(launch: &QueuedLaunch) -> mesos_sdk::v1::executor::Event {
    match launch {
        QueuedLaunch::Task(task) => mesos_sdk::v1::executor::Event {
            r#type: Some(exec_event::Type::Launch as i32),
            launch: Some(exec_event::Launch {
                task: (**task).clone(),
            }),
            ..Default::default()
        },
        QueuedLaunch::Group(group) => mesos_sdk::v1::executor::Event {
            r#type: Some(exec_event::Type::LaunchGroup as i32),
            launch_group: Some(exec_event::LaunchGroup {
                task_group: group.clone(),
            }),
            ..Default::default()
        },
    }
}

/// Sends one event as a RecordIO record on a subscriber's stream.
fn send_event(subscriber: &Subscriber, event: &mesos_sdk::v1::executor::Event) {
    match subscriber.format.encode(event) {
        Ok(data) => {
            let mut record = BytesMut::new();
            mesos_sdk::recordio::encode_record(&mut record, &data);
            let _ = subscriber.events.unbounded_send(record.freeze());
        }
        Err(err) => tracing::warn!(%err, "could not encode an executor event"),
    }
}

/// Whether `info` asks for TASK_KILLING updates.
fn wants_killing_state(info: &FrameworkInfo) -> bool {
    info.capabilities
        .iter()
        .any(|c| c.r#type() == framework_info::capability::Type::TaskKillingState)
}
