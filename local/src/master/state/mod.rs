//! The master's state: the types of frameworks, agents, offers and subscriptions, the one
//! [`State`] value behind the [`Shared`] mutex (nothing awaits while holding it), and leadership
//! and shutdown. The behaviour is split by concern, each file one concern:
//! - `frameworks`: SUBSCRIBE, stream ends and failover timeouts, UPDATE_FRAMEWORK, removal;
//! - `calls`: the dispatcher of the other scheduler calls;
//! - `offers`: DECLINE, filters, rescinds, ACCEPT and its operations;
//! - `tasks`: task launch, KILL, ACKNOWLEDGE, RECONCILE and master-generated updates;
//! - `events`: the events the master makes itself and heartbeat timers;
//! - `agents`: agent messages over the link; `allocator`: offers and the allocation run;
//! - `operator`: the operator API's views and event stream;
//! - `partitions`: agent pings, unreachable agents and their return, MARK_AGENT_GONE;
//! - `faults`: fault injection (partitions, crashes, killed executors, lost acknowledgements).

// `role` (FrameworkInfo, Resource) is deprecated in the schema but Mesos still reads and writes it.
#![allow(deprecated)]

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use http::StatusCode;
use prost::{Message, Name};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{MESOS_VERSION, MasterConfig};
use crate::link::{AgentLink, AgentMessage, FromAgent, ToAgent};
use mesos_sdk::codec::Format;
use mesos_sdk::resourcemgr::{self as resources, Resources};
use mesos_sdk::v1::scheduler::{self, Call, call, event};
use mesos_sdk::v1::{
    self, AgentId, AgentInfo, ExecutorId, ExecutorInfo, FrameworkId, FrameworkInfo, MasterInfo,
    Offer, OfferId, Resource, Task, TaskId, TaskInfo, TaskState, TaskStatus,
    framework_info::capability::Type as FrameworkCapability, master_info,
    offer::operation::Type as OperationType, task_status,
};

mod agents;
mod allocator;
mod calls;
mod draining;
mod drf;
mod events;
mod faults;
mod frameworks;
mod maintenance;
mod offers;
mod operations;
mod operator;
mod partitions;
mod tasks;

pub(crate) use agents::run_agent_messages;
pub(crate) use allocator::run_allocation_ticks;
use events::{
    Heartbeat, error_event, heartbeat_event, send_error_and_close, spawn_heartbeats, update_event,
};
pub use faults::AckFault;
use operator::{operator_agent, operator_framework_event};
pub(crate) use partitions::run_agent_pings;
pub(crate) use tasks::is_terminal;
use tasks::master_status;

/// What the HTTP layer and the timers share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub state: Mutex<State>,
    pub config: MasterConfig,
    pub shutdown: CancellationToken,
}

impl Shared {
    /// Locks the state, surviving a poisoned lock (the state stays usable).
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Seconds since the epoch.
pub(crate) fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Encodes `message` in `format` as one RecordIO record.
pub(crate) fn record<M: Message + Name>(format: Format, message: &M) -> Option<Bytes> {
    match format.encode(message) {
        Ok(body) => {
            let mut buf = BytesMut::with_capacity(body.len() + 8);
            mesos_sdk::recordio::encode_record(&mut buf, &body);
            Some(buf.freeze())
        }
        Err(error) => {
            tracing::error!(%error, "cannot encode event");
            None
        }
    }
}

/// An open event stream: encoded RecordIO records go down `tx`.
#[derive(Debug)]
pub(crate) struct Subscription {
    pub stream_id: String,
    pub format: Format,
    pub tx: mpsc::UnboundedSender<Bytes>,
}

#[derive(Debug)]
struct RefuseFilter {
    resources: Resources,
    until: Instant,
}

/// A framework the master knows (subscribed, disconnected, or recovered from an agent).
#[derive(Debug)]
pub(crate) struct Framework {
    pub id: String,
    pub info: FrameworkInfo,
    pub subscription: Option<Subscription>,
    pub active: bool,
    pub recovered: bool,
    pub registered_time: Option<f64>,
    pub reregistered_time: Option<f64>,
    pub unregistered_time: Option<f64>,
    pub suppressed_roles: HashSet<String>,
    /// The agents each role may be offered (SUBSCRIBE and UPDATE_FRAMEWORK `offer_constraints`).
    pub offer_constraints: Option<scheduler::OfferConstraints>,
    /// The role each task was launched for (from its offer), by task id.
    pub task_roles: HashMap<String, String>,
    /// Latest status of operations with an id, by operation id, until acknowledged, with when
    /// it was last sent.
    pub operations: HashMap<String, (v1::OperationStatus, Instant)>,
    /// Refuse filters by (agent id, role).
    filters: HashMap<(String, String), Vec<RefuseFilter>>,
    pub offers: HashSet<String>,
    pub tasks: HashMap<String, Task>,
    /// Tasks on unreachable agents (state TASK_UNREACHABLE), by task id; they move back to
    /// `tasks` when their agent registers again and reports them.
    pub unreachable_tasks: HashMap<String, Task>,
    pub completed_tasks: CompletedTasks,
    /// Executors by (agent id, executor id).
    pub executors: HashMap<(String, String), ExecutorInfo>,
    disconnects: u64,
}

impl Framework {
    fn new(id: String, info: FrameworkInfo) -> Self {
        Self {
            id,
            info,
            subscription: None,
            active: false,
            recovered: false,
            registered_time: None,
            reregistered_time: None,
            unregistered_time: None,
            suppressed_roles: HashSet::new(),
            offer_constraints: None,
            task_roles: HashMap::new(),
            operations: HashMap::new(),
            filters: HashMap::new(),
            offers: HashSet::new(),
            tasks: HashMap::new(),
            unreachable_tasks: HashMap::new(),
            completed_tasks: CompletedTasks::default(),
            executors: HashMap::new(),
            disconnects: 0,
        }
    }

    pub fn connected(&self) -> bool {
        self.subscription.is_some()
    }

    pub fn has_capability(&self, capability: FrameworkCapability) -> bool {
        has_capability(&self.info, capability)
    }

    /// The roles this framework receives offers for.
    pub fn roles(&self) -> Vec<String> {
        framework_roles(&self.info)
    }

    fn send(&self, event: &scheduler::Event) {
        if let Some(sub) = &self.subscription {
            if let Some(bytes) = record(sub.format, event) {
                let _ = sub.tx.send(bytes);
            }
        }
    }

    fn is_filtered(
        &mut self,
        agent_id: &str,
        role: &str,
        offered: &Resources,
        now: Instant,
    ) -> bool {
        let key = (agent_id.to_string(), role.to_string());
        let Some(filters) = self.filters.get_mut(&key) else {
            return false;
        };
        filters.retain(|f| f.until > now);
        filters
            .iter()
            .any(|f| f.resources.contains(offered.as_slice()))
    }

    fn add_completed_task(&mut self, task: Task, cap: usize) {
        self.task_roles.remove(&task.task_id.value);
        self.completed_tasks.push(&task, cap);
    }
}

/// The history of a framework's finished tasks, oldest first, at most `cap` of them.
///
/// Each task is kept protobuf-encoded: a prost `Task` holds its nested messages inline (every
/// `Resource` and `TaskStatus` reserves room for all its optional fields), so the encoded form
/// is several times smaller, and the history is read only by `/state` and the operator API.
#[derive(Debug, Default)]
pub(crate) struct CompletedTasks {
    encoded: VecDeque<bytes::Bytes>,
}

impl CompletedTasks {
    /// Appends `task`, forgetting the oldest beyond `cap` (0 keeps nothing).
    pub fn push(&mut self, task: &Task, cap: usize) {
        if cap == 0 {
            return;
        }
        while self.encoded.len() >= cap {
            self.encoded.pop_front();
        }
        self.encoded
            .push_back(bytes::Bytes::from(prost::Message::encode_to_vec(task)));
    }

    /// The tasks, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = Task> + '_ {
        self.encoded
            .iter()
            .filter_map(|bytes| <Task as prost::Message>::decode(bytes.as_ref()).ok())
    }
}

fn has_capability(info: &FrameworkInfo, capability: FrameworkCapability) -> bool {
    info.capabilities
        .iter()
        .any(|c| c.r#type == Some(capability as i32))
}

fn framework_roles(info: &FrameworkInfo) -> Vec<String> {
    if has_capability(info, FrameworkCapability::MultiRole) {
        info.roles.clone()
    } else {
        vec![info.role.clone().unwrap_or_else(|| "*".to_string())]
    }
}

/// An agent registered over the link.
#[derive(Debug)]
pub(crate) struct Agent {
    pub id: String,
    pub info: AgentInfo,
    pub url: String,
    pub link: AgentLink,
    pub total: Resources,
    pub used: Resources,
    pub offered: Resources,
    pub registered_time: f64,
    /// When the master noticed the agent's link closed.
    disconnected_since: Option<Instant>,
    /// When the oldest ping still unanswered was sent (`None`: the agent answered).
    awaiting_pong_since: Option<Instant>,
    /// Fault injection: the agent is cut off from the master; nothing is sent to it.
    partitioned: bool,
    /// Deactivation and drain (DRAIN_AGENT, DEACTIVATE_AGENT).
    drain: draining::Drain,
}

impl Agent {
    fn available(&self) -> Resources {
        let mut available = self.total.clone();
        available.subtract_all(self.used.as_slice());
        available.subtract_all(self.offered.as_slice());
        available
    }

    fn send(&self, message: ToAgent) {
        if self.partitioned {
            tracing::debug!(agent = %self.id, "message to a partitioned agent lost");
            return;
        }
        if self.link.send(message).is_err() {
            tracing::debug!(agent = %self.id, "agent link closed");
        }
    }
}

/// An outstanding offer.
#[derive(Debug)]
struct OfferEntry {
    framework_id: String,
    agent_id: String,
    /// The role the offer was made for.
    role: String,
    /// Normalized resources (no allocation info).
    resources: Vec<Resource>,
}

/// A framework that was removed, kept for `/state`.
#[derive(Debug)]
pub(crate) struct CompletedFramework {
    pub id: String,
    pub info: FrameworkInfo,
    pub registered_time: Option<f64>,
    pub unregistered_time: Option<f64>,
    pub completed_tasks: CompletedTasks,
}

/// The outcome of a non-SUBSCRIBE scheduler call.
#[derive(Debug)]
pub(crate) enum CallOutcome {
    /// 202.
    Accepted,
    /// 200 with an empty body.
    Ok,
    /// An error status with its text.
    Error(StatusCode, String),
    /// 501.
    NotImplemented,
}

/// The master's whole state.
#[derive(Debug)]
pub(crate) struct State {
    pub master_info: MasterInfo,
    pub leader: Option<String>,
    /// No leader is elected at all: calls get 503.
    pub no_leader: bool,
    pub start_time: f64,
    pub frameworks: HashMap<String, Framework>,
    pub completed_frameworks: VecDeque<CompletedFramework>,
    removed_frameworks: HashSet<String>,
    pub agents: HashMap<String, Agent>,
    /// Agents marked unreachable, by id, with when that happened (seconds since the epoch).
    pub unreachable_agents: HashMap<String, (Agent, f64)>,
    /// Agents the operator marked gone: they may never register again.
    gone_agents: HashSet<String>,
    /// Fault injection: partitioned agents, with when the partition heals by itself.
    partitions: HashMap<String, Option<Instant>>,
    /// Fault injection: what happens to status update acknowledgements.
    ack_fault: AckFault,
    /// The maintenance schedule, DOWN machines and inverse offers.
    maintenance: maintenance::Maintenance,
    /// Quota by role (UPDATE_QUOTA).
    quotas: HashMap<String, v1::quota::QuotaConfig>,
    /// Weights other than 1 by role (UPDATE_WEIGHTS).
    weights: HashMap<String, f64>,
    agent_order: Vec<String>,
    offers: HashMap<String, OfferEntry>,
    operator_streams: Vec<Subscription>,
    next_framework: u64,
    next_offer: u64,
    round_robin: usize,
    config: MasterConfig,
    stopped: bool,
}

fn ipv4_as_u32(addr: SocketAddr) -> u32 {
    match addr.ip() {
        std::net::IpAddr::V4(v4) => u32::from_le_bytes(v4.octets()),
        std::net::IpAddr::V6(_) => 0,
    }
}

impl State {
    pub fn new(config: &MasterConfig, addr: SocketAddr) -> Self {
        let id = uuid::Uuid::new_v4().to_string();
        let capability = |t: master_info::capability::Type| master_info::Capability {
            r#type: Some(t as i32),
        };
        let master_info = MasterInfo {
            id,
            ip: ipv4_as_u32(addr),
            port: u32::from(addr.port()),
            pid: Some(format!("master@{addr}")),
            hostname: Some(config.hostname.clone()),
            version: Some(MESOS_VERSION.to_string()),
            address: Some(v1::Address {
                hostname: Some(config.hostname.clone()),
                ip: Some(addr.ip().to_string()),
                port: i32::from(addr.port()),
            }),
            domain: None,
            capabilities: vec![
                capability(master_info::capability::Type::AgentUpdate),
                capability(master_info::capability::Type::AgentDraining),
                capability(master_info::capability::Type::QuotaV2),
            ],
        };
        Self {
            master_info,
            leader: config.leader.clone(),
            no_leader: false,
            start_time: now_secs(),
            frameworks: HashMap::new(),
            completed_frameworks: VecDeque::new(),
            removed_frameworks: HashSet::new(),
            agents: HashMap::new(),
            unreachable_agents: HashMap::new(),
            gone_agents: HashSet::new(),
            partitions: HashMap::new(),
            ack_fault: AckFault::None,
            maintenance: maintenance::Maintenance::default(),
            quotas: HashMap::new(),
            weights: HashMap::new(),
            agent_order: Vec::new(),
            offers: HashMap::new(),
            operator_streams: Vec::new(),
            next_framework: 0,
            next_offer: 0,
            round_robin: 0,
            config: config.clone(),
            stopped: false,
        }
    }

    /// Frameworks whose scheduler is gone but that are kept until their failover timeout ends
    /// (as Mesos keeps them), not counting frameworks known only from agents.
    pub fn disconnected_frameworks(&self) -> usize {
        self.frameworks
            .values()
            .filter(|f| !f.connected() && !f.recovered)
            .count()
    }

    /// The framework counts of Mesos' `/metrics/snapshot`, under Mesos' metric names.
    pub fn metrics(&self) -> serde_json::Value {
        let known = || self.frameworks.values().filter(|f| !f.recovered);
        let connected = known().filter(|f| f.connected()).count();
        let active = known().filter(|f| f.active).count();
        let total = known().count();
        serde_json::json!({
            "master/elected": if self.leader.is_none() && !self.no_leader { 1.0 } else { 0.0 },
            "master/uptime_secs": (now_secs() - self.start_time).max(0.0),
            "master/frameworks_connected": connected as f64,
            "master/frameworks_disconnected": (total - connected) as f64,
            "master/frameworks_active": active as f64,
            "master/frameworks_inactive": (total - active) as f64,
            "master/slaves_active": self.agents.len() as f64,
        })
    }

    /// `host:port` of this master.
    pub fn host_port(&self) -> String {
        format!(
            "{}:{}",
            self.master_info.hostname.as_deref().unwrap_or("localhost"),
            self.master_info.port
        )
    }

    pub fn set_leader(&mut self, leader: Option<String>, no_leader: bool) {
        self.no_leader = no_leader;
        if leader.is_some() || no_leader {
            // Losing leadership: every subscription breaks, like a master failover.
            for framework in self.frameworks.values_mut() {
                framework.subscription = None;
                framework.active = false;
            }
            self.operator_streams.clear();
        }
        self.leader = leader;
    }

    pub fn shutdown(&mut self) {
        self.stopped = true;
        for framework in self.frameworks.values_mut() {
            framework.subscription = None;
        }
        self.operator_streams.clear();
        for agent in self.agents.values() {
            agent.send(ToAgent::Shutdown);
        }
    }
}
