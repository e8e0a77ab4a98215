//! The embedded Mesos-compatible master: the scheduler API (`/api/v1/scheduler`), the operator
//! API (`/api/v1`), `/state`, `/master/state`, `/health`, `/master/redirect`, the read-only
//! endpoints tools read (`/version`, `/metrics/snapshot`, `/flags`, `/frameworks`, `/roles`,
//! `/slaves`, `/state-summary`, `/tasks`; `endpoints`), the resource allocator and the
//! bookkeeping of frameworks, agents, offers and tasks. It is served by the stack of [`crate::server`], with the limits of
//! [`MasterConfig::http`].
//!
//! As in Mesos, a framework whose scheduler disconnects is kept (its tasks keep running) until
//! its `failover_timeout` ends; how many such frameworks there are is
//! [`MasterHandle::disconnected_frameworks`] and `master/frameworks_disconnected` on
//! `/metrics/snapshot`.
//!
//! Answers (status codes, texts, headers) follow what a Mesos 1.12 master answers. Agents reach
//! the master over [`crate::link`]; all state sits in one mutex-protected state value
//! owned by the running master, with tokio tasks for heartbeats and timers.
//!
//! Agents are pinged every [`MasterConfig::agent_ping_interval`]; one silent past
//! [`MasterConfig::agent_removal_timeout`] is marked unreachable and its tasks come back when it
//! registers again; MARK_AGENT_GONE removes one for good; DRAIN_AGENT, DEACTIVATE_AGENT and
//! REACTIVATE_AGENT work as in Mesos. Maintenance (schedules, inverse
//! offers, DOWN machines), DRF allocation with weights and quota, `offer_filters`,
//! `offer_constraints` and operation feedback work as in Mesos, within the limits their modules
//! state. Fault injection ([`MasterHandle::partition_agent`] and the methods after it, and the
//! `/__local/` endpoint with [`MasterConfig::fault_injection`]) is no part of Mesos.
//!
//! HTTP Basic authentication of the scheduler API is optional ([`MasterConfig::credentials`]).
//! Not imitated: authorization, authentication of the other endpoints, resource providers, GROW/SHRINK_VOLUME and CREATE/DESTROY_DISK, hierarchical roles in the allocator.
//! The master keeps no registry: a restarted master knows only what agents and frameworks tell
//! it again (unreachable and gone agents, the maintenance schedule and quota are forgotten).

mod control;
mod endpoints;
mod http;
mod metrics;
mod operator_calls;
mod operator_views;
mod resource_text;
mod state;
pub(crate) mod state_json;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::link::{AgentMessage, MasterLink};
use crate::server::HttpLimits;

pub use state::AckFault;

/// The Mesos version the embedded master reports.
pub const MESOS_VERSION: &str = "1.12.0";

/// Configuration of the embedded master. `Default` gives Mesos' defaults on 127.0.0.1 and a free
/// port.
#[derive(Debug, Clone)]
pub struct MasterConfig {
    /// Address to listen on.
    pub ip: IpAddr,
    /// Port to listen on (0: any free port; `mesos-master` uses 5050).
    pub port: u16,
    /// Hostname reported in `MasterInfo`, `/state` and redirects (default `localhost`).
    pub hostname: String,
    /// Interval of HEARTBEAT events on scheduler and operator streams (Mesos: 15 s).
    pub heartbeat_interval: Duration,
    /// How long an offer stays outstanding before it is rescinded; `None` keeps offers until they
    /// are used, declined or invalidated (Mesos' `--offer_timeout` has no default either).
    pub offer_timeout: Option<Duration>,
    /// How often the allocator runs (Mesos' `--allocation_interval`: 1 s). As in Mesos, resources
    /// freed by finished tasks, declines, unused parts of ACCEPTs and rescinds are offered again
    /// on the next run; subscriptions, new agents and REVIVE trigger a run at once.
    pub allocation_interval: Duration,
    /// How long an agent may stay silent (its link closed, or a ping unanswered) before it is
    /// marked unreachable: its offers are rescinded, its tasks become TASK_UNREACHABLE
    /// (TASK_LOST for frameworks without PARTITION_AWARE), and they come back if it registers
    /// again (Mesos: `--agent_ping_timeout` times `--max_agent_ping_timeouts`, 5 pings of 15 s,
    /// 75 s).
    pub agent_removal_timeout: Duration,
    /// How often the master pings each agent (Mesos' `--agent_ping_timeout`: 15 s).
    pub agent_ping_interval: Duration,
    /// How long an unacknowledged UPDATE_OPERATION_STATUS waits before it is sent again (Mesos
    /// agents resend operation updates like task updates, from 10 s on).
    pub operation_status_retry: Duration,
    /// Enables the fault-injection endpoints under `/__local/` (see [`crate::master`]); off by
    /// default, as they are no part of Mesos.
    pub fault_injection: bool,
    /// Cap on refuse filters (Mesos caps `refuse_seconds` at 365 days).
    pub max_refuse: Duration,
    /// Number of completed frameworks kept for `/state` and the operator API (Mesos'
    /// `--max_completed_frameworks`: 50).
    pub max_completed_frameworks: usize,
    /// Number of completed tasks kept per framework (Mesos'
    /// `--max_completed_tasks_per_framework`: 1000).
    pub max_completed_tasks_per_framework: usize,
    /// `(principal, secret)` pairs for HTTP Basic authentication of the scheduler API (Mesos'
    /// `--authenticate_http_frameworks` with `--credentials`); empty turns authentication off.
    pub credentials: Vec<(String, String)>,
    /// `Some("host:port")` makes this master a non-leader that answers 307 pointing there.
    pub leader: Option<String>,
    /// Timeouts, body and connection limits of the HTTP server (see [`crate::server`]).
    pub http: HttpLimits,
}

impl Default for MasterConfig {
    fn default() -> Self {
        Self {
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            hostname: "localhost".to_string(),
            heartbeat_interval: Duration::from_secs(15),
            offer_timeout: None,
            allocation_interval: Duration::from_secs(1),
            agent_removal_timeout: Duration::from_secs(75),
            agent_ping_interval: Duration::from_secs(15),
            operation_status_retry: Duration::from_secs(10),
            fault_injection: false,
            max_refuse: Duration::from_secs(365 * 24 * 3600),
            max_completed_frameworks: 50,
            max_completed_tasks_per_framework: 1000,
            credentials: Vec::new(),
            leader: None,
            http: HttpLimits::default(),
        }
    }
}

/// Errors starting the master.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MasterError {
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// An invalid setting.
    #[error("invalid master configuration: {0}")]
    Config(String),
}

/// The embedded master; see [`Master::start`].
#[derive(Debug)]
pub struct Master;

impl Master {
    /// Binds the HTTP server and starts the master. Must be called inside a tokio runtime.
    pub async fn start(config: MasterConfig) -> Result<MasterHandle, MasterError> {
        if config.heartbeat_interval.is_zero()
            || config.allocation_interval.is_zero()
            || config.agent_ping_interval.is_zero()
        {
            return Err(MasterError::Config(
                "heartbeat, allocation and agent ping intervals must be positive".into(),
            ));
        }
        let addr = SocketAddr::new(config.ip, config.port);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| MasterError::Bind { addr, source })?;
        let local = listener
            .local_addr()
            .map_err(|source| MasterError::Bind { addr, source })?;
        let shutdown = CancellationToken::new();
        let (link, agent_messages) = mpsc::unbounded_channel::<AgentMessage>();
        let shared = Arc::new(state::Shared {
            state: Mutex::new(state::State::new(&config, local)),
            config: config.clone(),
            shutdown: shutdown.clone(),
        });
        let tasks = vec![
            tokio::spawn(state::run_agent_messages(shared.clone(), agent_messages)),
            tokio::spawn(state::run_allocation_ticks(shared.clone())),
            tokio::spawn(state::run_agent_pings(shared.clone())),
        ];
        let mut router = http::router(shared.clone());
        if config.fault_injection {
            router = router.merge(control::router(shared.clone()));
        }
        let server = tokio::spawn(crate::server::serve(
            listener,
            router,
            config.http.clone(),
            shutdown.clone(),
            "master",
        ));
        tracing::info!(url = %format!("http://{local}"), "master started");
        Ok(MasterHandle {
            addr: local,
            link,
            shared,
            server: Some(server),
            tasks,
        })
    }
}

/// A running master. Dropping it without [`MasterHandle::shutdown`] leaves it running until the
/// runtime ends.
#[derive(Debug)]
pub struct MasterHandle {
    addr: SocketAddr,
    link: MasterLink,
    shared: Arc<state::Shared>,
    server: Option<JoinHandle<()>>,
    tasks: Vec<JoinHandle<()>>,
}

impl MasterHandle {
    /// Base URL, `http://IP:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The sender agents use to reach this master.
    pub fn link(&self) -> MasterLink {
        self.link.clone()
    }

    /// The master's id (`MasterInfo.id`).
    pub fn id(&self) -> String {
        self.shared.lock().master_info.id.clone()
    }

    /// Number of frameworks whose scheduler disconnected and that the master keeps until their
    /// failover timeout ends, as Mesos does (a framework with a long `failover_timeout` is kept
    /// that long). Also on `/metrics/snapshot` as `master/frameworks_disconnected`.
    pub fn disconnected_frameworks(&self) -> usize {
        self.shared.lock().disconnected_frameworks()
    }

    /// Number of agents currently registered.
    pub fn registered_agents(&self) -> usize {
        self.shared.lock().agents.len()
    }

    /// Number of agents marked unreachable (silent past
    /// [`MasterConfig::agent_removal_timeout`]) that have not registered again.
    pub fn unreachable_agents(&self) -> usize {
        self.shared.lock().unreachable_agents.len()
    }

    /// Fault injection: cuts agent `agent_id` off from the master, as a network partition
    /// would, until [`MasterHandle::heal_agent`] or, with `heal_after`, that much later. Nothing
    /// either side sends reaches the other; status updates wait in the agent, which resends them
    /// until they are acknowledged. As in Mesos, once the agent has been silent for
    /// [`MasterConfig::agent_removal_timeout`] it is marked unreachable: its offers are
    /// rescinded, its tasks become TASK_UNREACHABLE (TASK_LOST for frameworks without
    /// PARTITION_AWARE), and frameworks get a FAILURE event for the agent. Returns false for an
    /// agent the master does not know.
    pub fn partition_agent(&self, agent_id: &str, heal_after: Option<Duration>) -> bool {
        self.shared.lock().partition_agent(agent_id, heal_after)
    }

    /// Fault injection: ends the partition of `agent_id`. An agent marked unreachable meanwhile
    /// registers again, as a Mesos agent does when it hears from the master again: the tasks it
    /// still runs are back (reconciliation answers TASK_RUNNING, also for a task reported
    /// TASK_LOST), and its unacknowledged status updates arrive. Returns false if the agent was
    /// not partitioned.
    pub fn heal_agent(&self, agent_id: &str) -> bool {
        self.shared.lock().heal_agent(agent_id)
    }

    /// Fault injection: stops agent `agent_id` as if its process were killed (like
    /// [`crate::agent::AgentHandle::crash`]): its executors keep running, its link closes, the
    /// master rescinds its offers at once and marks it unreachable after
    /// [`MasterConfig::agent_removal_timeout`], as Mesos does with an agent whose process died.
    /// Returns false for an agent that is not registered.
    pub fn crash_agent(&self, agent_id: &str) -> bool {
        self.shared.lock().crash_agent(agent_id)
    }

    /// Fault injection: kills the processes of an executor with SIGKILL (for a command task
    /// the executor id is the task id), as if it crashed. A custom executor's tasks become
    /// TASK_FAILED with REASON_EXECUTOR_TERMINATED and the framework gets a FAILURE event with
    /// the wait status, as in Mesos; a command task's process killed this way fails as a
    /// command killed by a signal (mesos-local runs command tasks without an executor
    /// process of their own). Returns false if the master knows no such executor.
    pub fn kill_executor(&self, framework_id: &str, executor_id: &str) -> bool {
        self.shared.lock().kill_executor(framework_id, executor_id)
    }

    /// Fault injection: rescinds every outstanding offer (one RESCIND event each, as Mesos
    /// sends when offers time out or their agent goes away); the resources are offered again
    /// by the next allocation run. Returns how many offers were rescinded.
    pub fn rescind_all_offers(&self) -> usize {
        self.shared.lock().rescind_all_offers()
    }

    /// Fault injection: loses or delays the status update acknowledgements frameworks send from
    /// now on (see [`AckFault`]); [`AckFault::None`] restores normal operation.
    pub fn set_ack_fault(&self, fault: AckFault) {
        self.shared.lock().set_ack_fault(fault);
    }

    /// Marks agent `agent_id` gone, as the operator call MARK_AGENT_GONE does: its tasks become
    /// TASK_GONE_BY_OPERATOR (TASK_LOST for frameworks without PARTITION_AWARE), the agent is
    /// shut down and may never register again. `Err` carries the text of the 404 answer for an
    /// unknown agent.
    pub fn mark_agent_gone(&self, agent_id: &str) -> Result<(), String> {
        self.shared.lock().mark_agent_gone(agent_id)
    }

    /// Makes this master a follower that redirects to `Some("host:port")`, or the leader again
    /// with `None`. Existing subscriptions are closed when leadership is lost, as after a real
    /// master failover.
    pub fn set_leader(&self, leader: Option<String>) {
        self.shared.lock().set_leader(leader, false);
    }

    /// Makes this master answer as when no leader is elected: 503 `No leader elected` on the
    /// scheduler and operator APIs, and every subscription closed. [`MasterHandle::set_leader`]
    /// ends that state.
    pub fn set_no_leader(&self) {
        self.shared.lock().set_leader(None, true);
    }

    /// Stops as if the master process were killed: the HTTP server stops and every stream
    /// ends, but the agents are told nothing (they keep their tasks and register with the next
    /// master, see [`crate::agent::AgentHandle::reregister`]).
    pub async fn crash(self) {
        self.shared.lock().crash();
        self.stop().await;
    }

    /// Stops the HTTP server, closes every stream and tells the agents to stop.
    pub async fn shutdown(self) {
        self.shared.lock().shutdown();
        self.stop().await;
    }

    async fn stop(mut self) {
        self.shared.shutdown.cancel();
        if let Some(server) = self.server.take() {
            if tokio::time::timeout(Duration::from_secs(5), server)
                .await
                .is_err()
            {
                tracing::warn!("master HTTP server did not stop within 5 s");
            }
        }
        for task in self.tasks.drain(..) {
            task.abort();
        }
        tracing::info!("master stopped");
    }
}
