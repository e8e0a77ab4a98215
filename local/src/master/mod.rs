//! The embedded Mesos-compatible master: the scheduler API (`/api/v1/scheduler`), the operator
//! API (`/api/v1`), `/state`, `/master/state`, `/health`, `/master/redirect` and a few framework
//! counts on `/metrics/snapshot`, the resource allocator and the bookkeeping of frameworks,
//! agents, offers and tasks. It is served by the stack of [`crate::server`], with the limits of
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
//! HTTP Basic authentication of the scheduler API is optional ([`MasterConfig::credentials`]).
//! Not imitated: authorization, authentication of the other endpoints, `offer_constraints` and
//! `FrameworkInfo.offer_filters` (accepted, ignored), quota, weights, maintenance and inverse
//! offers (the calls answer 202 and do nothing), operation feedback (operations with an `id`
//! get no UPDATE_OPERATION_STATUS), resource providers, GROW/SHRINK_VOLUME and
//! CREATE/DESTROY_DISK, and DRF: frameworks take turns round robin and each agent's free
//! resources go to one framework role per allocation run. The master keeps no registry: a
//! restarted master knows only what agents and frameworks tell it again.

mod http;
mod state;
mod state_json;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::link::{AgentMessage, MasterLink};
use crate::server::HttpLimits;

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
        let server = tokio::spawn(crate::server::serve(
            listener,
            http::router(shared.clone()),
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

    /// Stops the HTTP server, closes every stream and tells the agents to stop.
    pub async fn shutdown(mut self) {
        self.shared.lock().shutdown();
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
