//! The placer's memory across rounds: which tasks of which app run on which agent (for the
//! constraints' counts and the inverse-offer policy), the agent each request last ran on
//! (stickiness), since when each request has waited (delay scheduling), and where each
//! reservation made by the placer lives (later launches land on it).
//!
//! The runtime keeps it current: the placer records what it places; the runtime calls
//! [`Ledger::ended`] when a task reaches a terminal state.

use std::sync::Arc;
use std::time::Instant;

use super::FastMap;
use crate::resourcemgr::pool::AgentView;

/// A running request: its app and its agent (shared: one placement round records thousands
/// of tasks on a few agents and apps without copying their names).
#[derive(Debug, Clone)]
struct Running {
    app: Arc<str>,
    agent: Arc<AgentView>,
}

/// See the module doc.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    running: FastMap<String, Running>,
    agents: FastMap<String, Arc<AgentView>>,
    last_agent: FastMap<String, String>,
    first_seen: FastMap<String, Instant>,
    reservations: FastMap<String, String>,
}

impl Ledger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that request `request_id` of `app` runs on `agent` (the placer does this for
    /// what it places; call it for tasks found running after a restart).
    pub fn record(&mut self, request_id: &str, app: &str, agent: &AgentView) {
        let agent = Arc::new(agent.clone());
        self.note_agent(&agent);
        self.record_running(request_id.to_string(), &Arc::from(app), &agent);
    }

    /// Makes `agent` the known view of its agent id (call before
    /// [`record_running`](Self::record_running) with it).
    pub(crate) fn note_agent(&mut self, agent: &Arc<AgentView>) {
        if !self
            .agents
            .get(&agent.agent_id.value)
            .is_some_and(|known| Arc::ptr_eq(known, agent))
        {
            self.agents
                .insert(agent.agent_id.value.clone(), Arc::clone(agent));
        }
    }

    /// Room for `n` more running requests.
    pub(crate) fn reserve(&mut self, n: usize) {
        self.running.reserve(n);
    }

    /// Records that request `request_id` of `app` runs on `agent`, whose view
    /// [`note_agent`](Self::note_agent) was given.
    pub(crate) fn record_running(
        &mut self,
        request_id: String,
        app: &Arc<str>,
        agent: &Arc<AgentView>,
    ) {
        if !self.first_seen.is_empty() {
            self.first_seen.remove(&request_id);
        }
        self.running.insert(
            request_id,
            Running {
                app: Arc::clone(app),
                agent: Arc::clone(agent),
            },
        );
    }

    /// Records that request `request_id` no longer runs (its agent is kept for stickiness).
    pub fn ended(&mut self, request_id: &str) {
        if let Some(r) = self.running.remove(request_id) {
            self.last_agent
                .insert(request_id.to_string(), r.agent.agent_id.value.clone());
        }
    }

    /// Forgets request `request_id` entirely (running, last agent, first seen): for callers
    /// whose request ids are one-off (one per message) and need no stickiness.
    pub fn forget(&mut self, request_id: &str) {
        self.running.remove(request_id);
        self.last_agent.remove(request_id);
        self.first_seen.remove(request_id);
    }

    /// Number of our tasks running on the agent.
    pub fn tasks_on(&self, agent_id: &str) -> usize {
        self.running
            .values()
            .filter(|r| r.agent.agent_id.value == agent_id)
            .count()
    }

    /// The agent request `request_id` last ran on.
    pub fn last_agent(&self, request_id: &str) -> Option<&str> {
        self.running
            .get(request_id)
            .map(|r| r.agent.agent_id.value.as_str())
            .or_else(|| self.last_agent.get(request_id).map(String::as_str))
    }

    /// Records that reservation `id` was made on `agent_id`.
    pub fn reserved(&mut self, id: &str, agent_id: &str) {
        self.reservations
            .insert(id.to_string(), agent_id.to_string());
    }

    /// The agent holding reservation `id`, if the placer made it.
    pub fn reservation_agent(&self, id: &str) -> Option<&str> {
        self.reservations.get(id).map(String::as_str)
    }

    /// Forgets reservation `id` (after it was unreserved).
    pub fn forget_reservation(&mut self, id: &str) {
        self.reservations.remove(id);
    }

    /// When request `request_id` was first seen unplaced (recorded now if never).
    pub(crate) fn first_seen(&mut self, request_id: &str, now: Instant) -> Instant {
        *self.first_seen.entry(request_id.to_string()).or_insert(now)
    }

    /// For each running task: its app and the agent it runs on.
    pub(crate) fn running(&self) -> impl Iterator<Item = (&str, &AgentView)> {
        self.running.values().filter_map(|r| {
            self.agents
                .get(&r.agent.agent_id.value)
                .map(|a| (&*r.app, &**a))
        })
    }
}
