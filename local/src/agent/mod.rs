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
//! - `fetcher-cache/`: files fetched with `cache` set, keyed by user, URI and mode (unless
//!   [`AgentConfig::fetcher_cache`] names another directory), emptied when the agent starts.
//!
//! A temporary work directory (no [`AgentConfig::work_dir`]) is removed before
//! [`AgentHandle::shutdown`] returns, or synchronously when the handle is dropped, so that it
//! never outlives the process.
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
//! The code is split by concern, one file each: `types` (the state and what launches, kills and
//! terminations carry), `launch`, `kill`, `runs` (executor runs after launch), `recovery`,
//! `status_updates`, `executor_api` (the HTTP server), `http` (`/state`, `/version`, `/flags`,
//! `/metrics/snapshot`), `operator_api` (the agent operator API), `files_api` (the sandbox file
//! API), `faults` (pings and injected faults), `process` (task and executor process
//! lifecycles), `command` (building their command lines and environment), `health`, `fetcher` (with
//! `fetch_cache`, `fetch_http`, `fetch_extract`, `fetch_private_fds`, `fetch_limits`),
//! `checkpoint` (the files) and `checkpoint_writer` (ordered writes off the state lock), and
//! `signals`. This file holds the configuration, the handle, start, the master's commands and stop.
//!
//! Docker containers: a command task or custom executor whose `ContainerInfo` has type DOCKER
//! runs in a container of the Docker Engine (`docker`, `docker_args`, `docker_run`; configured by
//! [`AgentConfig::docker`]).
//!
//! Not imitated: other containers and isolation (a `ContainerInfo` of type MESOS is ignored;
//! processes run as the agent's user unless the agent runs as root and `CommandInfo.user` exists), secret environment
//! variables, executor authentication (JWT), unix-socket and HTTPS executor endpoints, and the
//! 503 `Agent has not finished recovery` answer (recovery completes before the HTTP server
//! accepts its first connection).

mod checkpoint;
mod checkpoint_writer;
mod command;
mod docker;
mod docker_args;
mod docker_run;
mod executor_api;
mod faults;
mod fetch_cache;
mod fetch_extract;
mod fetch_http;
mod fetch_limits;
mod fetch_private_fds;
mod fetch_stop;
mod fetcher;
mod files_api;
mod health;
mod http;
mod id_checks;
mod kill;
mod launch;
mod operator_api;
mod process;
mod recovery;
mod runs;
mod sandbox_fs;
mod signals;
mod status_updates;
mod types;
mod volumes;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
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

pub use checkpoint::CheckpointError;
use checkpoint::Meta;
use checkpoint_writer::CheckpointWriter;
pub use docker::DockerConfig;
pub use fetch_cache::FetcherCacheConfig;
pub use fetch_limits::FetcherLimits;
use signals::{process_alive, runs_executor, signal_group};
use status_updates::UpdateStream;
use types::{
    Executor, ExecutorKind, Framework, KillRequest, QueuedLaunch, State, Subscriber, TaskEntry,
    Termination, duration_of, launch_event, launch_has_task, now_seconds, send_event,
    wants_killing_state,
};

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
    /// Work directory for sandboxes and checkpoints; a temporary one when `None` (removed when
    /// the agent is shut down, its handle dropped or, after a crash, its last reference
    /// dropped). Only an explicit work directory allows restart recovery.
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
    /// Timeouts, body and connection limits of the HTTP server (see [`crate::server`]).
    pub http: crate::server::HttpLimits,
    /// How DOCKER containers reach the Docker Engine.
    pub docker: DockerConfig,
    /// Where the fetcher caches URIs fetched with `cache` set, and how much.
    pub fetcher_cache: FetcherCacheConfig,
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
            http: crate::server::HttpLimits::default(),
            docker: DockerConfig::default(),
            fetcher_cache: FetcherCacheConfig::default(),
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
    /// recovers the checkpointed executors. Docker containers are the exception: they are
    /// removed (a recovering agent would not reattach them).
    pub async fn crash(mut self) {
        self.detached = true;
        self.agent.stop(false).await;
    }
}

impl Drop for AgentHandle {
    /// Kills the agent's processes and, for a temporary work directory, removes it before
    /// returning (so that it cannot outlive the process, as a detached cleanup could).
    fn drop(&mut self) {
        if !self.detached {
            self.agent.kill_all_now();
            self.agent.cancel.cancel();
            self.agent.remove_temporary_work_dir();
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
    Checkpoint(#[from] CheckpointError),
    /// Reading the checkpoints did not complete (the blocking task failed).
    #[error("agent recovery did not complete: {0}")]
    Recovery(#[source] tokio::task::JoinError),
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
    let meta = Arc::new(Meta::new(work_dir.join("meta")));
    let checkpointed = if temporary {
        None
    } else {
        meta.latest_agent()?
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
    let bound = bind(bind_addr, checkpointed.is_some())
        .await
        .and_then(|listener| {
            let endpoint = listener.local_addr().map_err(|source| AgentError::Bind {
                addr: bind_addr,
                source,
            })?;
            Ok((listener, endpoint))
        });
    let (listener, endpoint) = match bound {
        Ok(bound) => bound,
        Err(err) => {
            if temporary {
                let _ = std::fs::remove_dir_all(&work_dir);
            }
            return Err(err);
        }
    };
    let info = AgentInfo {
        hostname: config.hostname.clone(),
        port: Some(i32::from(endpoint.port())),
        resources: config.resources.clone(),
        attributes: config.attributes.clone(),
        id: Some(id.clone()),
        domain: None,
    };
    if !temporary {
        meta.write_agent(&info)?;
    }
    let url = format!("http://{endpoint}");
    let (link, commands) = mpsc::unbounded_channel();
    let cache_dir =
        (config.fetcher_cache.dir.clone()).unwrap_or_else(|| work_dir.join("fetcher-cache"));
    {
        // Entries of a previous run are not accounted for: gone, as in Mesos.
        let dir = cache_dir.clone();
        let _ = tokio::task::spawn_blocking(move || fetch_cache::clear(&dir)).await;
    }
    let fetcher = fetcher::Fetcher::new(
        fetch_cache::FetcherCache::new(cache_dir, config.fetcher_cache.max_bytes),
        Arc::new(fetcher_tls),
        config.fetcher_limits.clone(),
    );
    let docker = docker::Docker::new(config.docker.clone());
    let agent = Arc::new(Agent {
        config,
        docker,
        id: id.clone(),
        info,
        endpoint,
        fetcher,
        work_dir,
        temporary,
        temporary_left: AtomicBool::new(temporary),
        checkpoints: CheckpointWriter::start(Arc::clone(&meta)),
        meta,
        master,
        state: Mutex::new(State::default()),
        cancel: CancellationToken::new(),
        tasks: Spawner,
        server: Mutex::new(None),
        start_time: now_seconds(),
    });
    let recovered = if checkpointed.is_some() {
        // Reading every checkpoint can take a while: off the async workers.
        let (meta, agent_id) = (Arc::clone(&agent.meta), id.clone());
        tokio::task::spawn_blocking(move || meta.recover(&agent_id))
            .await
            .map_err(AgentError::Recovery)??
    } else {
        Vec::new()
    };
    let register = agent.restore(recovered);
    let server = tokio::spawn(crate::server::serve(
        listener,
        executor_api::router(Arc::downgrade(&agent)),
        agent.config.http.clone(),
        agent.cancel.clone(),
        "agent",
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

/// The shared core of one agent.
#[derive(Debug)]
pub(crate) struct Agent {
    config: AgentConfig,
    id: AgentId,
    info: AgentInfo,
    endpoint: SocketAddr,
    /// Downloads of `CommandInfo.uris`.
    fetcher: fetcher::Fetcher,
    /// The Docker Engine's CLI and the containers of this agent.
    docker: docker::Docker,
    work_dir: PathBuf,
    temporary: bool,
    /// A temporary work directory that has not been removed yet (see
    /// [`Agent::remove_temporary_work_dir`]).
    temporary_left: AtomicBool,
    meta: Arc<Meta>,
    /// Runs every checkpoint operation after `meta` was created, in order, off the state lock.
    checkpoints: CheckpointWriter,
    master: MasterLink,
    state: Mutex<State>,
    cancel: CancellationToken,
    tasks: Spawner,
    /// The HTTP accept loop.
    server: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// When this agent started (seconds since the epoch), for `/state` and metrics.
    start_time: f64,
}

impl Agent {
    /// Queues a checkpoint operation for the writer (see `checkpoint_writer`): no file I/O
    /// happens on the caller's thread, so this is safe under the state lock.
    fn checkpoint(
        &self,
        what: &'static str,
        operation: impl FnOnce(&Meta, &AgentId) -> Result<(), CheckpointError> + Send + 'static,
    ) {
        let agent = self.id.clone();
        self.checkpoints
            .submit(what, move |meta| operation(meta, &agent));
    }

    /// Queues the marker of an executor run's end.
    fn checkpoint_run_completed(&self, framework_id: &str, executor_id: &str, run_id: &str) {
        let (framework_id, executor_id, run_id) = (
            framework_id.to_string(),
            executor_id.to_string(),
            run_id.to_string(),
        );
        self.checkpoint("the end of an executor run", move |meta, agent| {
            meta.mark_run_completed(agent, &framework_id, &executor_id, &run_id)
        });
    }

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
            ToAgent::Ping => self.send_master(FromAgent::Pong),
            ToAgent::Reregister => self.reregister(),
            ToAgent::KillExecutor {
                framework_id,
                executor_id,
            } => self.kill_executor_now(&framework_id.value, &executor_id.value),
            ToAgent::Crash => self.crash_now(),
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
        drop(state);
        self.docker.remove_all_detached();
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
            self.docker.remove_all().await;
        } else {
            {
                let mut state = self.lock();
                state.stopped = true;
                for framework in state.frameworks.values_mut() {
                    for executor in framework.executors.values_mut() {
                        executor.subscriber = None;
                    }
                }
            }
            // Docker containers do not survive a crash of mesos-local's agent (see `docker_run`).
            self.docker.remove_all().await;
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
        // A successor on this work directory must find every checkpoint written.
        self.checkpoints.flush().await;
        if kill_processes && !self.temporary {
            self.meta.forget_latest();
        }
        if kill_processes && self.temporary {
            // Removing many sandboxes can take a while: off the async workers, but awaited, so
            // that the directory is gone when `shutdown` returns (a detached cleanup dies with
            // the process and leaks the directory).
            let agent = Arc::clone(self);
            if tokio::task::spawn_blocking(move || agent.remove_temporary_work_dir())
                .await
                .is_err()
            {
                self.remove_temporary_work_dir();
            }
        }
        tracing::info!(agent_id = %self.id.value, "agent stopped");
    }

    /// Removes a temporary work directory (once; later calls and explicit work directories do
    /// nothing). Blocking. Processes being killed may still create files in it for a moment, so
    /// the removal is retried a few times.
    fn remove_temporary_work_dir(&self) {
        if !self.temporary_left.swap(false, Ordering::SeqCst) {
            return;
        }
        let mut attempt = 0;
        loop {
            match std::fs::remove_dir_all(&self.work_dir) {
                Ok(()) => return,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => return,
                Err(err) if attempt >= 5 => {
                    tracing::warn!(
                        dir = %self.work_dir.display(), %err,
                        "cannot remove the agent's temporary work directory"
                    );
                    return;
                }
                Err(_) => {
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }
}

impl Drop for Agent {
    /// The last reference to an agent that was never shut down (dropped after a crash, or by a
    /// runtime shutting down) removes its temporary work directory; also again after an earlier
    /// removal, in case a launch that was under way recreated a sandbox meanwhile.
    fn drop(&mut self) {
        if self.temporary {
            self.temporary_left.store(true, Ordering::SeqCst);
        }
        self.remove_temporary_work_dir();
    }
}
