//! The master's state and behaviour: frameworks and their subscriptions, agents and their
//! resources, offers and the allocator, tasks and their latest statuses, and the handling of every
//! scheduler call and agent message. One [`State`] sits behind the [`Shared`] mutex; nothing
//! awaits while holding it. Agent messages live in `agents`, the allocator in `allocator` and the
//! operator API's views in `operator`; subscriptions and scheduler calls stay here.

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
mod operator;

pub(crate) use agents::run_agent_messages;
pub(crate) use allocator::run_allocation_ticks;
use operator::{operator_agent, operator_framework_event};

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
    /// Refuse filters by (agent id, role).
    filters: HashMap<(String, String), Vec<RefuseFilter>>,
    pub offers: HashSet<String>,
    pub tasks: HashMap<String, Task>,
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
            filters: HashMap::new(),
            offers: HashSet::new(),
            tasks: HashMap::new(),
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
}

impl Agent {
    fn available(&self) -> Resources {
        let mut available = self.total.clone();
        available.subtract_all(self.used.as_slice());
        available.subtract_all(self.offered.as_slice());
        available
    }

    fn send(&self, message: ToAgent) {
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

    // ---------------------------------------------------------------- subscriptions

    /// Handles SUBSCRIBE: opens a stream and returns its id and receiver. Problems with the
    /// FrameworkInfo come as one ERROR event followed by the end of the stream.
    pub fn subscribe(
        &mut self,
        shared: &Arc<Shared>,
        subscribe: call::Subscribe,
        format: Format,
    ) -> (String, mpsc::UnboundedReceiver<Bytes>, Option<String>) {
        let stream_id = uuid::Uuid::new_v4().to_string();
        let (tx, rx) = mpsc::unbounded_channel();
        let subscription = Subscription {
            stream_id: stream_id.clone(),
            format,
            tx,
        };
        let mut info = subscribe.framework_info;
        if let Some(message) = validate_framework_info(&info, &subscribe.suppressed_roles) {
            send_error_and_close(subscription, &message);
            return (stream_id, rx, None);
        }
        let now = now_secs();
        let id = match info.id.as_ref().map(|id| id.value.clone()) {
            Some(id) => id,
            None => {
                let id = format!("{}-{:04}", self.master_info.id, self.next_framework);
                self.next_framework += 1;
                id
            }
        };
        if self.removed_frameworks.contains(&id) {
            send_error_and_close(subscription, "Framework has been removed");
            return (stream_id, rx, None);
        }
        info.id = Some(FrameworkId { value: id.clone() });
        let existed = self.frameworks.contains_key(&id);
        let framework = self
            .frameworks
            .entry(id.clone())
            .or_insert_with(|| Framework::new(id.clone(), info.clone()));
        if existed {
            if let Some(old) = framework.subscription.take() {
                let event = error_event("Framework failed over");
                if let Some(bytes) = record(old.format, &event) {
                    let _ = old.tx.send(bytes);
                }
            }
            // `user` and `checkpoint` cannot change on re-subscription; `principal` neither.
            let old = &framework.info;
            info.user = old.user.clone();
            info.checkpoint = old.checkpoint;
            if framework.registered_time.is_some() {
                info.principal = old.principal.clone();
            }
            framework.reregistered_time = Some(now);
        } else {
            framework.registered_time = Some(now);
        }
        if framework.registered_time.is_none() {
            framework.registered_time = Some(now);
        }
        framework.info = info.clone();
        framework.recovered = false;
        framework.active = true;
        framework.unregistered_time = None;
        framework.disconnects += 1;
        framework.suppressed_roles = subscribe.suppressed_roles.into_iter().collect();
        framework.subscription = Some(subscription);
        let subscribed = scheduler::Event {
            r#type: Some(scheduler::event::Type::Subscribed as i32),
            subscribed: Some(Box::new(event::Subscribed {
                framework_id: FrameworkId { value: id.clone() },
                heartbeat_interval_seconds: Some(self.config.heartbeat_interval.as_secs_f64()),
                master_info: Some(self.master_info.clone()),
            })),
            ..Default::default()
        };
        framework.send(&subscribed);
        framework.send(&heartbeat_event());
        // Offers made to an earlier subscription are void.
        let stale: Vec<String> = framework.offers.drain().collect();
        for offer_id in stale {
            self.remove_offer(&offer_id);
        }
        if let Some(framework) = self.frameworks.get(&id) {
            if let Some(sub) = &framework.subscription {
                spawn_heartbeats(shared, sub.tx.clone(), sub.format, Heartbeat::Scheduler);
            }
            if existed {
                // Agents running its tasks learn the (possibly changed) FrameworkInfo.
                let agents: HashSet<&str> = framework
                    .tasks
                    .values()
                    .map(|t| t.agent_id.value.as_str())
                    .chain(framework.executors.keys().map(|(a, _)| a.as_str()))
                    .collect();
                for agent_id in agents {
                    if let Some(agent) = self.agents.get(agent_id) {
                        agent.send(ToAgent::UpdateFramework {
                            framework_info: info.clone(),
                        });
                    }
                }
            }
            let event = operator_framework_event(framework, !existed);
            self.publish(event);
        }
        tracing::info!(framework = %id, name = %info.name, resumed = existed, "framework subscribed");
        self.allocate(shared);
        (stream_id, rx, Some(id))
    }

    /// The subscription stream `stream_id` of `framework_id` was closed by the client.
    pub fn stream_closed(&mut self, shared: &Arc<Shared>, framework_id: &str, stream_id: &str) {
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            return;
        };
        if framework
            .subscription
            .as_ref()
            .is_none_or(|s| s.stream_id != stream_id)
        {
            return;
        }
        framework.subscription = None;
        framework.active = false;
        framework.unregistered_time = Some(now_secs());
        framework.disconnects += 1;
        let generation = framework.disconnects;
        let failover = framework.info.failover_timeout.unwrap_or(0.0);
        let offers: Vec<String> = framework.offers.drain().collect();
        tracing::info!(framework = %framework_id, failover_timeout = failover, "framework disconnected");
        for offer_id in offers {
            self.remove_offer(&offer_id);
        }
        let timeout = if failover.is_finite() && failover > 0.0 {
            Duration::from_secs_f64(failover.min(1e9))
        } else {
            Duration::ZERO
        };
        let shared2 = shared.clone();
        let framework_id = framework_id.to_string();
        // This runs from a stream's drop, possibly while the runtime shuts down.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(timeout) => {}
                _ = shared2.shutdown.cancelled() => return,
            }
            let mut state = shared2.lock();
            let still_gone = state
                .frameworks
                .get(&framework_id)
                .is_some_and(|f| f.disconnects == generation && !f.connected());
            if still_gone {
                tracing::info!(framework = %framework_id, "failover timeout elapsed");
                state.remove_framework(&framework_id);
            }
        });
    }

    /// Removes a framework: closes its stream, kills its tasks and executors, returns its
    /// resources and makes its id unusable.
    pub fn remove_framework(&mut self, framework_id: &str) {
        let Some(mut framework) = self.frameworks.remove(framework_id) else {
            return;
        };
        framework.subscription = None;
        for offer_id in std::mem::take(&mut framework.offers) {
            self.remove_offer(&offer_id);
        }
        let mut agents_involved: HashSet<String> = HashSet::new();
        let cap = self.config.max_completed_tasks_per_framework;
        let tasks: Vec<Task> = framework.tasks.drain().map(|(_, t)| t).collect();
        for mut task in tasks {
            agents_involved.insert(task.agent_id.value.clone());
            if !is_terminal(task.state) {
                if let Some(agent) = self.agents.get_mut(&task.agent_id.value) {
                    agent.used.subtract_all(&task.resources);
                }
                task.state = TaskState::TaskKilled as i32;
            }
            framework.add_completed_task(task, cap);
        }
        for ((agent_id, _), executor) in framework.executors.drain() {
            if let Some(agent) = self.agents.get_mut(&agent_id) {
                agent.used.subtract_all(&executor.resources);
            }
            agents_involved.insert(agent_id);
        }
        for agent_id in agents_involved {
            if let Some(agent) = self.agents.get(&agent_id) {
                agent.send(ToAgent::ShutdownFramework {
                    framework_id: FrameworkId {
                        value: framework_id.to_string(),
                    },
                });
            }
        }
        self.removed_frameworks.insert(framework_id.to_string());
        let cap = self.config.max_completed_frameworks;
        if cap > 0 {
            while self.completed_frameworks.len() >= cap {
                self.completed_frameworks.pop_front();
            }
            self.completed_frameworks.push_back(CompletedFramework {
                id: framework.id.clone(),
                info: framework.info.clone(),
                registered_time: framework.registered_time,
                unregistered_time: Some(now_secs()),
                completed_tasks: framework.completed_tasks,
            });
        }
        self.publish(v1::master::Event {
            r#type: Some(v1::master::event::Type::FrameworkRemoved as i32),
            framework_removed: Some(v1::master::event::FrameworkRemoved {
                framework_info: framework.info,
            }),
            ..Default::default()
        });
        tracing::info!(framework = %framework_id, "framework removed");
    }

    // ---------------------------------------------------------------- calls

    /// Runs a validated non-SUBSCRIBE call from the framework that owns `stream_id`.
    pub fn call(
        &mut self,
        shared: &Arc<Shared>,
        call: Call,
        stream_id: Option<&str>,
        principal: Option<&str>,
    ) -> CallOutcome {
        let framework_id = call
            .framework_id
            .as_ref()
            .map(|f| f.value.clone())
            .unwrap_or_default();
        let Some(framework) = self.frameworks.get(&framework_id) else {
            return CallOutcome::Error(StatusCode::BAD_REQUEST, "Framework cannot be found".into());
        };
        if let Some(principal) = principal {
            let declared = framework.info.principal.as_deref().unwrap_or("");
            if declared != principal {
                return CallOutcome::Error(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "Authenticated principal '{principal}' does not match principal '{declared}' used to subscribe"
                    ),
                );
            }
        }
        let Some(subscription) = &framework.subscription else {
            return CallOutcome::Error(StatusCode::FORBIDDEN, "Framework is not subscribed".into());
        };
        let Some(stream_id) = stream_id else {
            return CallOutcome::Error(
                StatusCode::BAD_REQUEST,
                "All non-subscribe calls should include the 'Mesos-Stream-Id' header".into(),
            );
        };
        if stream_id != subscription.stream_id {
            return CallOutcome::Error(
                StatusCode::BAD_REQUEST,
                format!(
                    "The stream ID '{stream_id}' included in this request didn't match the stream ID currently associated with framework ID {framework_id}"
                ),
            );
        }
        let kind = call.r#type.and_then(|t| call::Type::try_from(t).ok());
        match kind {
            Some(call::Type::Teardown) => {
                self.remove_framework(&framework_id);
            }
            Some(call::Type::Accept) => {
                let accept = call.accept.unwrap_or_default();
                self.accept(&framework_id, accept);
            }
            Some(call::Type::Decline) => {
                let decline = call.decline.unwrap_or_default();
                let refuse = decline.filters.as_ref().map_or(5.0, |f| f.refuse_seconds());
                for offer_id in decline.offer_ids {
                    self.decline_offer(&framework_id, &offer_id.value, refuse);
                }
            }
            Some(call::Type::Revive) => {
                let roles = call.revive.map(|r| r.roles).unwrap_or_default();
                if let Some(framework) = self.frameworks.get_mut(&framework_id) {
                    if roles.is_empty() {
                        framework.suppressed_roles.clear();
                    } else {
                        for role in &roles {
                            framework.suppressed_roles.remove(role);
                        }
                    }
                    if roles.is_empty() {
                        framework.filters.clear();
                    } else {
                        framework
                            .filters
                            .retain(|(_, role), _| !roles.contains(role));
                    }
                }
                self.allocate(shared);
            }
            Some(call::Type::Suppress) => {
                let roles = call.suppress.map(|r| r.roles).unwrap_or_default();
                if let Some(framework) = self.frameworks.get_mut(&framework_id) {
                    let roles = if roles.is_empty() {
                        framework.roles()
                    } else {
                        roles
                    };
                    framework.suppressed_roles.extend(roles);
                }
            }
            Some(call::Type::Kill) => {
                if let Some(kill) = call.kill {
                    self.kill(&framework_id, kill);
                }
            }
            Some(call::Type::Shutdown) => {
                if let Some(shutdown) = call.shutdown {
                    if let Some(agent) = self.agents.get(&shutdown.agent_id.value) {
                        agent.send(ToAgent::ShutdownExecutor {
                            framework_id: FrameworkId {
                                value: framework_id.clone(),
                            },
                            executor_id: shutdown.executor_id,
                        });
                    }
                }
            }
            Some(call::Type::Acknowledge) => {
                if let Some(ack) = call.acknowledge {
                    self.acknowledge(&framework_id, ack);
                }
            }
            Some(call::Type::AcknowledgeOperationStatus) => {}
            Some(call::Type::Reconcile) => {
                let tasks = call.reconcile.map(|r| r.tasks).unwrap_or_default();
                self.reconcile(&framework_id, tasks);
            }
            Some(call::Type::ReconcileOperations) => {
                let operations = call
                    .reconcile_operations
                    .map(|r| r.operations)
                    .unwrap_or_default();
                if let Some(framework) = self.frameworks.get(&framework_id) {
                    for operation in operations {
                        framework.send(&scheduler::Event {
                            r#type: Some(scheduler::event::Type::UpdateOperationStatus as i32),
                            update_operation_status: Some(event::UpdateOperationStatus {
                                status: v1::OperationStatus {
                                    operation_id: Some(operation.operation_id),
                                    state: v1::OperationState::OperationUnknown as i32,
                                    agent_id: operation.agent_id,
                                    resource_provider_id: operation.resource_provider_id,
                                    ..Default::default()
                                },
                            }),
                            ..Default::default()
                        });
                    }
                }
            }
            Some(call::Type::Message) => {
                if let Some(message) = call.message {
                    if let Some(agent) = self.agents.get(&message.agent_id.value) {
                        agent.send(ToAgent::FrameworkMessage {
                            framework_id: FrameworkId {
                                value: framework_id.clone(),
                            },
                            executor_id: message.executor_id,
                            data: message.data,
                        });
                    }
                }
            }
            Some(call::Type::Request)
            | Some(call::Type::AcceptInverseOffers)
            | Some(call::Type::DeclineInverseOffers) => {}
            Some(call::Type::UpdateFramework) => {
                let update = call.update_framework.unwrap_or_default();
                return self.update_framework(shared, &framework_id, update);
            }
            Some(call::Type::Subscribe) | Some(call::Type::Unknown) | None => {
                return CallOutcome::NotImplemented;
            }
        }
        CallOutcome::Accepted
    }

    fn update_framework(
        &mut self,
        shared: &Arc<Shared>,
        framework_id: &str,
        update: call::UpdateFramework,
    ) -> CallOutcome {
        let info = update.framework_info;
        if let Some(message) = validate_framework_info(&info, &update.suppressed_roles) {
            return CallOutcome::Error(StatusCode::BAD_REQUEST, message);
        }
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            return CallOutcome::Error(StatusCode::CONFLICT, "Framework has been removed".into());
        };
        let old = &framework.info;
        if old.principal != info.principal {
            return CallOutcome::Error(
                StatusCode::BAD_REQUEST,
                "Changing framework's principal is not allowed.".into(),
            );
        }
        if old.user != info.user {
            return CallOutcome::Error(
                StatusCode::BAD_REQUEST,
                "Updating 'FrameworkInfo.user' is unsupported".into(),
            );
        }
        if old.checkpoint() != info.checkpoint() {
            return CallOutcome::Error(
                StatusCode::BAD_REQUEST,
                "Updating 'FrameworkInfo.checkpoint' is unsupported".into(),
            );
        }
        framework.info = info.clone();
        framework.suppressed_roles = update.suppressed_roles.into_iter().collect();
        let event = operator_framework_event(framework, false);
        let agents: HashSet<String> = framework
            .tasks
            .values()
            .map(|t| t.agent_id.value.clone())
            .collect();
        for agent_id in agents {
            if let Some(agent) = self.agents.get(&agent_id) {
                agent.send(ToAgent::UpdateFramework {
                    framework_info: info.clone(),
                });
            }
        }
        self.publish(event);
        self.allocate(shared);
        CallOutcome::Ok
    }

    fn decline_offer(&mut self, framework_id: &str, offer_id: &str, refuse_seconds: f64) {
        let Some(entry) = self.offers.get(offer_id) else {
            return;
        };
        if entry.framework_id != framework_id {
            return;
        }
        let agent_id = entry.agent_id.clone();
        let role = entry.role.clone();
        let resources = entry.resources.clone();
        self.remove_offer(offer_id);
        self.add_filter(framework_id, &agent_id, &role, &resources, refuse_seconds);
    }

    fn add_filter(
        &mut self,
        framework_id: &str,
        agent_id: &str,
        role: &str,
        resources: &[Resource],
        refuse_seconds: f64,
    ) {
        if resources.is_empty() || !refuse_seconds.is_finite() || refuse_seconds <= 0.0 {
            return;
        }
        let duration =
            Duration::from_secs_f64(refuse_seconds.min(self.config.max_refuse.as_secs_f64()));
        if let Some(framework) = self.frameworks.get_mut(framework_id) {
            framework
                .filters
                .entry((agent_id.to_string(), role.to_string()))
                .or_default()
                .push(RefuseFilter {
                    resources: Resources::from_slice(resources),
                    until: Instant::now() + duration,
                });
        }
    }

    /// Removes an offer and returns its resources to the agent. No event is sent.
    fn remove_offer(&mut self, offer_id: &str) -> Option<OfferEntry> {
        let entry = self.offers.remove(offer_id)?;
        if let Some(agent) = self.agents.get_mut(&entry.agent_id) {
            agent.offered.subtract_all(&entry.resources);
        }
        if let Some(framework) = self.frameworks.get_mut(&entry.framework_id) {
            framework.offers.remove(offer_id);
        }
        Some(entry)
    }

    /// Rescinds an outstanding offer (RESCIND event).
    pub fn rescind_offer(&mut self, offer_id: &str) {
        let Some(entry) = self.remove_offer(offer_id) else {
            return;
        };
        if let Some(framework) = self.frameworks.get(&entry.framework_id) {
            framework.send(&scheduler::Event {
                r#type: Some(scheduler::event::Type::Rescind as i32),
                rescind: Some(event::Rescind {
                    offer_id: OfferId {
                        value: offer_id.to_string(),
                    },
                }),
                ..Default::default()
            });
        }
    }

    // ---------------------------------------------------------------- accept

    fn accept(&mut self, framework_id: &str, accept: call::Accept) {
        let partition_aware = self
            .frameworks
            .get(framework_id)
            .is_some_and(|f| f.has_capability(FrameworkCapability::PartitionAware));
        // Validate the offers: each known, this framework's, all on one agent, none repeated.
        let mut error: Option<String> = None;
        let mut agent_id: Option<String> = None;
        let mut seen = HashSet::new();
        for offer_id in &accept.offer_ids {
            if !seen.insert(offer_id.value.clone()) {
                error = Some(format!("Duplicate offer {} in offer list", offer_id.value));
                break;
            }
            match self.offers.get(&offer_id.value) {
                Some(entry) if entry.framework_id == framework_id => match &agent_id {
                    Some(a) if *a != entry.agent_id => {
                        error = Some("Aggregated offers must belong to one single agent".into());
                        break;
                    }
                    _ => agent_id = Some(entry.agent_id.clone()),
                },
                _ => {
                    error = Some(format!("Offer {} is no longer valid", offer_id.value));
                    break;
                }
            }
        }
        if accept.offer_ids.is_empty() {
            error = Some("No offers specified".into());
        }
        if let Some(message) = error {
            // Valid offers among them go back to the pool.
            for offer_id in &accept.offer_ids {
                if self
                    .offers
                    .get(&offer_id.value)
                    .is_some_and(|o| o.framework_id == framework_id)
                {
                    self.remove_offer(&offer_id.value);
                }
            }
            let state = if partition_aware {
                TaskState::TaskDropped
            } else {
                TaskState::TaskLost
            };
            let text = format!("Task launched with invalid offers: {message}");
            for operation in &accept.operations {
                for task in operation_tasks(operation) {
                    let status = master_status(
                        &task.task_id,
                        Some(&task.agent_id),
                        state,
                        task_status::Reason::InvalidOffers,
                        &text,
                    );
                    self.send_update(framework_id, status);
                }
            }
            return;
        }
        let Some(agent_id) = agent_id else {
            return;
        };
        let mut offered = Resources::new();
        let mut role = String::from("*");
        for offer_id in &accept.offer_ids {
            if let Some(entry) = self.remove_offer(&offer_id.value) {
                offered.add_all(&entry.resources);
                role = entry.role;
            }
        }
        let mut remaining = offered;
        for operation in accept.operations {
            self.apply_operation(framework_id, &agent_id, &mut remaining, operation);
        }
        let refuse = accept.filters.as_ref().map_or(5.0, |f| f.refuse_seconds());
        let unused = remaining.into_vec();
        self.add_filter(framework_id, &agent_id, &role, &unused, refuse);
    }

    fn apply_operation(
        &mut self,
        framework_id: &str,
        agent_id: &str,
        remaining: &mut Resources,
        operation: v1::offer::Operation,
    ) {
        let kind = operation
            .r#type
            .and_then(|t| OperationType::try_from(t).ok());
        match kind {
            Some(OperationType::Launch) => {
                let tasks = operation.launch.map(|l| l.task_infos).unwrap_or_default();
                for task in tasks {
                    self.launch_task(framework_id, agent_id, remaining, task);
                }
            }
            Some(OperationType::LaunchGroup) => {
                if let Some(group) = operation.launch_group {
                    self.launch_group(framework_id, agent_id, remaining, group);
                }
            }
            Some(OperationType::Reserve) => {
                let Some(reserve) = operation.reserve else {
                    return;
                };
                let wanted: Vec<Resource> =
                    reserve.resources.iter().map(resources::normalize).collect();
                let source: Vec<Resource> = if reserve.source.is_empty() {
                    wanted.iter().map(pop_reservation).collect()
                } else {
                    reserve.source.iter().map(resources::normalize).collect()
                };
                self.convert(agent_id, remaining, &source, &wanted, "RESERVE");
            }
            Some(OperationType::Unreserve) => {
                let Some(unreserve) = operation.unreserve else {
                    return;
                };
                let reserved: Vec<Resource> = unreserve
                    .resources
                    .iter()
                    .map(resources::normalize)
                    .collect();
                let unreserved: Vec<Resource> = reserved.iter().map(pop_reservation).collect();
                self.convert(agent_id, remaining, &reserved, &unreserved, "UNRESERVE");
            }
            Some(OperationType::Create) => {
                let Some(create) = operation.create else {
                    return;
                };
                let volumes: Vec<Resource> =
                    create.volumes.iter().map(resources::normalize).collect();
                let source: Vec<Resource> = volumes.iter().map(strip_volume).collect();
                self.convert(agent_id, remaining, &source, &volumes, "CREATE");
            }
            Some(OperationType::Destroy) => {
                let Some(destroy) = operation.destroy else {
                    return;
                };
                let volumes: Vec<Resource> =
                    destroy.volumes.iter().map(resources::normalize).collect();
                let plain: Vec<Resource> = volumes.iter().map(strip_volume).collect();
                self.convert(agent_id, remaining, &volumes, &plain, "DESTROY");
            }
            other => {
                tracing::warn!(?other, "unsupported offer operation dropped");
            }
        }
    }

    /// Replaces `from` by `to` in the offered `remaining` and in the agent's total.
    fn convert(
        &mut self,
        agent_id: &str,
        remaining: &mut Resources,
        from: &[Resource],
        to: &[Resource],
        what: &str,
    ) {
        if from.is_empty() || !remaining.contains(from) {
            tracing::warn!(
                operation = what,
                "operation dropped: its resources are not in the offer"
            );
            return;
        }
        remaining.subtract_all(from);
        remaining.add_all(to);
        if let Some(agent) = self.agents.get_mut(agent_id) {
            agent.total.subtract_all(from);
            agent.total.add_all(to);
        }
    }

    fn task_error(
        &mut self,
        framework_id: &str,
        task: &TaskInfo,
        reason: task_status::Reason,
        message: &str,
    ) {
        let status = master_status(
            &task.task_id,
            Some(&task.agent_id),
            TaskState::TaskError,
            reason,
            message,
        );
        self.send_update(framework_id, status);
    }

    fn validate_task(
        &self,
        framework_id: &str,
        task: &TaskInfo,
        launching: &HashSet<String>,
    ) -> Option<String> {
        let framework = self.frameworks.get(framework_id)?;
        if let Err(err) = crate::ids::validate_task_ids(task) {
            return Some(err.to_string());
        }
        if framework.tasks.contains_key(&task.task_id.value)
            || launching.contains(&task.task_id.value)
        {
            return Some(format!("Task has duplicate ID: {}", task.task_id.value));
        }
        if task.resources.is_empty() {
            return Some("Task uses no resources".into());
        }
        let bad_scalar = task
            .resources
            .iter()
            .chain(task.executor.iter().flat_map(|e| &e.resources))
            .filter_map(|r| r.scalar.as_ref())
            .any(|s| !s.value.is_finite() || s.value < 0.0);
        if bad_scalar {
            return Some(
                "Task uses invalid resources: scalars must be finite and non-negative".into(),
            );
        }
        None
    }

    fn launch_task(
        &mut self,
        framework_id: &str,
        agent_id: &str,
        remaining: &mut Resources,
        mut task: TaskInfo,
    ) {
        task.agent_id = AgentId {
            value: agent_id.to_string(),
        };
        if let Some(message) = self.validate_task(framework_id, &task, &HashSet::new()) {
            self.task_error(
                framework_id,
                &task,
                task_status::Reason::TaskInvalid,
                &message,
            );
            return;
        }
        if task.executor.is_some() == task.command.is_some() {
            self.task_error(
                framework_id,
                &task,
                task_status::Reason::TaskInvalid,
                "Task should have at least one (but not both) of CommandInfo or ExecutorInfo present",
            );
            return;
        }
        let mut needed: Vec<Resource> = task.resources.iter().map(resources::normalize).collect();
        let mut new_executor = None;
        if let Some(executor) = task.executor.as_mut() {
            executor.framework_id = Some(FrameworkId {
                value: framework_id.to_string(),
            });
            let key = (agent_id.to_string(), executor.executor_id.value.clone());
            let known = self
                .frameworks
                .get(framework_id)
                .is_some_and(|f| f.executors.contains_key(&key));
            if !known {
                needed.extend(executor.resources.iter().map(resources::normalize));
                new_executor = Some(executor.clone());
            }
        }
        if !remaining.contains(&needed) {
            let message = format!(
                "Task uses more resources {} than available {}",
                Resources::from_slice(&needed),
                remaining
            );
            self.task_error(
                framework_id,
                &task,
                task_status::Reason::TaskInvalid,
                &message,
            );
            return;
        }
        remaining.subtract_all(&needed);
        let task_resources: Vec<Resource> =
            task.resources.iter().map(resources::normalize).collect();
        self.start_task(framework_id, agent_id, &task, task_resources, new_executor);
        let Some(framework) = self.frameworks.get(framework_id) else {
            return;
        };
        let framework_info = framework.info.clone();
        if let Some(agent) = self.agents.get(agent_id) {
            let executor = task.executor.clone();
            agent.send(ToAgent::RunTask {
                framework_info,
                executor,
                task,
            });
        }
    }

    fn launch_group(
        &mut self,
        framework_id: &str,
        agent_id: &str,
        remaining: &mut Resources,
        group: v1::offer::operation::LaunchGroup,
    ) {
        let mut executor = group.executor;
        executor.framework_id = Some(FrameworkId {
            value: framework_id.to_string(),
        });
        let mut tasks = group.task_group.tasks;
        for task in &mut tasks {
            task.agent_id = AgentId {
                value: agent_id.to_string(),
            };
        }
        let mut launching = HashSet::new();
        let mut error = None;
        for task in &tasks {
            if let Some(message) = self.validate_task(framework_id, task, &launching) {
                error = Some(message);
                break;
            }
            if task.executor.is_some() {
                error = Some("'TaskInfo.executor' must not be set".into());
                break;
            }
            launching.insert(task.task_id.value.clone());
        }
        if tasks.is_empty() {
            error = Some("Task group must not be empty".into());
        }
        if let (None, Err(err)) = (&error, crate::ids::validate_executor_id(&executor)) {
            error = Some(err.to_string());
        }
        let key = (agent_id.to_string(), executor.executor_id.value.clone());
        let known = self
            .frameworks
            .get(framework_id)
            .is_some_and(|f| f.executors.contains_key(&key));
        let mut needed: Vec<Resource> = tasks
            .iter()
            .flat_map(|t| t.resources.iter().map(resources::normalize))
            .collect();
        if !known {
            needed.extend(executor.resources.iter().map(resources::normalize));
        }
        if error.is_none() && !remaining.contains(&needed) {
            error = Some(format!(
                "Task group uses more resources {} than available {}",
                Resources::from_slice(&needed),
                remaining
            ));
        }
        if let Some(message) = error {
            for task in &tasks {
                self.task_error(
                    framework_id,
                    task,
                    task_status::Reason::TaskGroupInvalid,
                    &message,
                );
            }
            return;
        }
        remaining.subtract_all(&needed);
        let mut new_executor = if known { None } else { Some(executor.clone()) };
        for task in &tasks {
            let mut with_executor = task.clone();
            with_executor.executor = Some(executor.clone());
            let task_resources: Vec<Resource> =
                task.resources.iter().map(resources::normalize).collect();
            self.start_task(
                framework_id,
                agent_id,
                &with_executor,
                task_resources,
                new_executor.take(),
            );
        }
        let Some(framework) = self.frameworks.get(framework_id) else {
            return;
        };
        let framework_info = framework.info.clone();
        if let Some(agent) = self.agents.get(agent_id) {
            agent.send(ToAgent::RunTaskGroup {
                framework_info,
                executor,
                task_group: v1::TaskGroupInfo { tasks },
            });
        }
    }

    /// Records a launched task (TASK_STAGING) and charges its resources to the agent.
    fn start_task(
        &mut self,
        framework_id: &str,
        agent_id: &str,
        info: &TaskInfo,
        task_resources: Vec<Resource>,
        new_executor: Option<ExecutorInfo>,
    ) {
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            return;
        };
        let user = info
            .command
            .as_ref()
            .and_then(|c| c.user.clone())
            .or_else(|| Some(framework.info.user.clone()));
        let task = Task {
            name: info.name.clone(),
            task_id: info.task_id.clone(),
            framework_id: FrameworkId {
                value: framework_id.to_string(),
            },
            executor_id: info.executor.as_ref().map(|e| e.executor_id.clone()),
            agent_id: AgentId {
                value: agent_id.to_string(),
            },
            state: TaskState::TaskStaging as i32,
            resources: task_resources.clone(),
            statuses: Vec::new(),
            status_update_state: None,
            status_update_uuid: None,
            labels: info.labels.clone(),
            discovery: info.discovery.clone(),
            container: info.container.clone(),
            health_check: info.health_check.clone(),
            kill_policy: info.kill_policy,
            user,
            limits: info.limits.clone(),
        };
        framework
            .tasks
            .insert(info.task_id.value.clone(), task.clone());
        let mut charged = task_resources;
        if let Some(executor) = new_executor {
            charged.extend(executor.resources.iter().map(resources::normalize));
            framework.executors.insert(
                (agent_id.to_string(), executor.executor_id.value.clone()),
                executor,
            );
        }
        if let Some(agent) = self.agents.get_mut(agent_id) {
            agent.used.add_all(&charged);
        }
        if !self.operator_streams.is_empty() {
            self.publish(v1::master::Event {
                r#type: Some(v1::master::event::Type::TaskAdded as i32),
                task_added: Some(v1::master::event::TaskAdded { task }),
                ..Default::default()
            });
        }
    }

    // ---------------------------------------------------------------- kill, ack, reconcile

    fn kill(&mut self, framework_id: &str, kill: call::Kill) {
        let Some(framework) = self.frameworks.get(framework_id) else {
            return;
        };
        match framework.tasks.get(&kill.task_id.value) {
            Some(task) => {
                if let Some(agent) = self.agents.get(&task.agent_id.value) {
                    agent.send(ToAgent::KillTask {
                        framework_id: FrameworkId {
                            value: framework_id.to_string(),
                        },
                        task_id: kill.task_id,
                        kill_policy: kill.kill_policy,
                    });
                }
            }
            None => {
                // Unknown task: answer as an explicit reconciliation would.
                self.reconcile(
                    framework_id,
                    vec![call::reconcile::Task {
                        task_id: kill.task_id,
                        agent_id: kill.agent_id,
                    }],
                );
            }
        }
    }

    fn acknowledge(&mut self, framework_id: &str, ack: call::Acknowledge) {
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            return;
        };
        if let Some(task) = framework.tasks.get(&ack.task_id.value) {
            let acked_terminal = task.status_update_uuid.as_ref() == Some(&ack.uuid)
                && task.status_update_state.is_some_and(is_terminal);
            if acked_terminal {
                if let Some(task) = framework.tasks.remove(&ack.task_id.value) {
                    let cap = self.config.max_completed_tasks_per_framework;
                    framework.add_completed_task(task, cap);
                }
            }
        }
        if let Some(agent) = self.agents.get(&ack.agent_id.value) {
            agent.send(ToAgent::Acknowledge {
                framework_id: FrameworkId {
                    value: framework_id.to_string(),
                },
                task_id: ack.task_id,
                uuid: ack.uuid,
            });
        }
    }

    fn reconcile(&mut self, framework_id: &str, tasks: Vec<call::reconcile::Task>) {
        let Some(framework) = self.frameworks.get(framework_id) else {
            return;
        };
        let partition_aware = framework.has_capability(FrameworkCapability::PartitionAware);
        let mut statuses = Vec::new();
        if tasks.is_empty() {
            for task in framework.tasks.values() {
                statuses.push(reconcile_status(task));
            }
        } else {
            for wanted in tasks {
                match framework.tasks.get(&wanted.task_id.value) {
                    Some(task) => statuses.push(reconcile_status(task)),
                    None => {
                        let agent = wanted
                            .agent_id
                            .as_ref()
                            .and_then(|a| self.agents.get(&a.value));
                        let unreachable = agent.is_some_and(|a| a.disconnected_since.is_some());
                        let (state, message) = match (partition_aware, agent, unreachable) {
                            (true, Some(_), true) => (
                                TaskState::TaskUnreachable,
                                "Reconciliation: Task is unreachable",
                            ),
                            (false, Some(_), true) => {
                                (TaskState::TaskLost, "Reconciliation: Task is unreachable")
                            }
                            (true, Some(_), false) => (
                                TaskState::TaskGone,
                                "Reconciliation: Task is unknown to the agent",
                            ),
                            (false, Some(_), false) => (
                                TaskState::TaskLost,
                                "Reconciliation: Task is unknown to the agent",
                            ),
                            (true, None, _) => {
                                (TaskState::TaskUnknown, "Reconciliation: Task is unknown")
                            }
                            (false, None, _) => {
                                (TaskState::TaskLost, "Reconciliation: Task is unknown")
                            }
                        };
                        statuses.push(master_status(
                            &wanted.task_id,
                            wanted.agent_id.as_ref(),
                            state,
                            task_status::Reason::Reconciliation,
                            message,
                        ));
                    }
                }
            }
        }
        for status in statuses {
            framework.send(&update_event(status));
        }
    }

    /// Sends a master-generated status update and records it when the task is known.
    fn send_update(&mut self, framework_id: &str, status: TaskStatus) {
        if let Some(framework) = self.frameworks.get(framework_id) {
            framework.send(&update_event(status));
        }
    }
}

// -------------------------------------------------------------------- helpers

fn pop_reservation(resource: &Resource) -> Resource {
    let mut r = resource.clone();
    r.reservations.pop();
    r
}

fn strip_volume(resource: &Resource) -> Resource {
    let mut r = resource.clone();
    if let Some(disk) = r.disk.as_mut() {
        disk.persistence = None;
        disk.volume = None;
        if disk.source.is_none() {
            r.disk = None;
        }
    }
    r
}

fn operation_tasks(operation: &v1::offer::Operation) -> Vec<TaskInfo> {
    let mut tasks = Vec::new();
    if let Some(launch) = &operation.launch {
        tasks.extend(launch.task_infos.iter().cloned());
    }
    if let Some(group) = &operation.launch_group {
        tasks.extend(group.task_group.tasks.iter().cloned());
    }
    tasks
}

/// Whether a task state is terminal.
pub(crate) fn is_terminal(state: i32) -> bool {
    TaskState::try_from(state).is_ok_and(TaskState::is_terminal)
}

fn master_status(
    task_id: &TaskId,
    agent_id: Option<&AgentId>,
    state: TaskState,
    reason: task_status::Reason,
    message: &str,
) -> TaskStatus {
    TaskStatus {
        task_id: task_id.clone(),
        state: state as i32,
        message: Some(crate::status_message::bounded(message.to_string())),
        source: Some(task_status::Source::Master as i32),
        reason: Some(reason as i32),
        agent_id: agent_id.filter(|a| !a.value.is_empty()).cloned(),
        timestamp: Some(now_secs()),
        ..Default::default()
    }
}

fn reconcile_status(task: &Task) -> TaskStatus {
    let latest = task.statuses.last();
    TaskStatus {
        task_id: task.task_id.clone(),
        state: task.status_update_state.unwrap_or(task.state),
        message: Some("Reconciliation: Latest task state".into()),
        source: Some(task_status::Source::Master as i32),
        reason: Some(task_status::Reason::Reconciliation as i32),
        agent_id: Some(task.agent_id.clone()),
        executor_id: task.executor_id.clone(),
        timestamp: Some(now_secs()),
        healthy: latest.and_then(|s| s.healthy),
        container_status: latest.and_then(|s| s.container_status.clone()),
        ..Default::default()
    }
}

fn update_event(status: TaskStatus) -> scheduler::Event {
    scheduler::Event {
        r#type: Some(scheduler::event::Type::Update as i32),
        update: Some(event::Update { status }),
        ..Default::default()
    }
}

fn error_event(message: &str) -> scheduler::Event {
    scheduler::Event {
        r#type: Some(scheduler::event::Type::Error as i32),
        error: Some(event::Error {
            message: message.to_string(),
        }),
        ..Default::default()
    }
}

fn heartbeat_event() -> scheduler::Event {
    scheduler::Event {
        r#type: Some(scheduler::event::Type::Heartbeat as i32),
        ..Default::default()
    }
}

fn send_error_and_close(subscription: Subscription, message: &str) {
    tracing::info!(%message, "refusing subscription");
    if let Some(bytes) = record(subscription.format, &error_event(message)) {
        let _ = subscription.tx.send(bytes);
    }
}

/// Validates a role name like Mesos' `roles::validate`.
fn validate_role(role: &str) -> Option<String> {
    if role == "*" {
        return None;
    }
    if role.is_empty() {
        return Some("Empty role name is invalid".into());
    }
    if role.starts_with('/') || role.ends_with('/') {
        return Some(format!("Role '{role}' cannot start or end with a slash"));
    }
    for component in role.split('/') {
        if component.is_empty() {
            return Some(format!("Role '{role}' cannot contain two adjacent slashes"));
        }
        if component == "." || component == ".." {
            return Some(format!("Role '{role}' cannot be '.' or '..'"));
        }
        if component == "*" {
            return Some(format!(
                "Role '{role}' cannot contain '*' as a path component"
            ));
        }
        if component.starts_with('-') {
            return Some(format!("Role '{role}' cannot start with '-'"));
        }
        if component
            .chars()
            .any(|c| c.is_ascii_control() || c == ' ' || c == '\u{7f}')
        {
            return Some(format!(
                "Role '{role}' cannot include whitespace or control characters"
            ));
        }
    }
    None
}

/// FrameworkInfo checks done after the HTTP-level validation (answered as an ERROR event on
/// SUBSCRIBE and as 400 on UPDATE_FRAMEWORK).
fn validate_framework_info(info: &FrameworkInfo, suppressed_roles: &[String]) -> Option<String> {
    if let Err(err) = crate::ids::validate_framework_id(info) {
        return Some(err.to_string());
    }
    let multi_role = has_capability(info, FrameworkCapability::MultiRole);
    if multi_role {
        if info.role.is_some() {
            return Some(
                "'FrameworkInfo.role' must not be set when the framework is MULTI_ROLE capable"
                    .into(),
            );
        }
    } else if !info.roles.is_empty() {
        return Some(
            "'FrameworkInfo.roles' must not be set when the framework is not MULTI_ROLE capable"
                .into(),
        );
    }
    let roles = framework_roles(info);
    let mut seen = HashSet::new();
    for role in &roles {
        if !seen.insert(role) {
            return Some(format!(
                "'FrameworkInfo.roles' contains duplicate items: {{ {role} }}"
            ));
        }
        if let Some(error) = validate_role(role) {
            let field = if multi_role {
                "'FrameworkInfo.roles' contains invalid role"
            } else {
                "'FrameworkInfo.role' is not a valid role"
            };
            return Some(format!("{field}: {error}"));
        }
    }
    for role in suppressed_roles {
        if !roles.contains(role) {
            return Some(format!(
                "Suppressed role '{role}' is not contained in the list of roles"
            ));
        }
    }
    None
}

#[derive(Clone, Copy)]
enum Heartbeat {
    Scheduler,
    Operator,
}

/// Sends HEARTBEAT every interval on `tx` until the stream closes or the master stops.
fn spawn_heartbeats(
    shared: &Arc<Shared>,
    tx: mpsc::UnboundedSender<Bytes>,
    format: Format,
    kind: Heartbeat,
) {
    let interval = shared.config.heartbeat_interval;
    let shutdown = shared.shutdown.clone();
    let beat = match kind {
        Heartbeat::Scheduler => record(format, &heartbeat_event()),
        Heartbeat::Operator => record(
            format,
            &v1::master::Event {
                r#type: Some(v1::master::event::Type::Heartbeat as i32),
                ..Default::default()
            },
        ),
    };
    let Some(beat) = beat else {
        return;
    };
    // A weak sender: dropping the subscription's sender ends the stream.
    let tx = tx.downgrade();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {
                    let Some(tx) = tx.upgrade() else { return };
                    if tx.send(beat.clone()).is_err() {
                        return;
                    }
                }
                _ = shutdown.cancelled() => return,
            }
        }
    });
}
