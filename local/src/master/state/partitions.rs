//! Agent health and partitions, as a Mesos master handles them: the master pings every agent
//! each `agent_ping_interval`; an agent silent (its link closed, or a ping unanswered) past
//! `agent_removal_timeout` is marked unreachable. Its offers are rescinded, its non-terminal
//! tasks become TASK_UNREACHABLE (sent as TASK_LOST to frameworks without PARTITION_AWARE) and
//! are kept as unreachable tasks, and every framework gets a FAILURE event for the agent. When the
//! agent registers again, the tasks it reports move back to the running tasks with the state it
//! reports (a task reported lost can come back TASK_RUNNING, as in Mesos; frameworks see it by
//! reconciliation). MARK_AGENT_GONE removes an agent for good: its tasks become
//! TASK_GONE_BY_OPERATOR (TASK_LOST without PARTITION_AWARE) and it is told to shut down, now and
//! whenever it tries to register again.

use super::*;

impl State {
    /// Pings every registered agent; the ping stays unanswered until any message from the agent
    /// arrives.
    pub(super) fn ping_agents(&mut self) {
        let now = Instant::now();
        for agent in self.agents.values_mut() {
            if agent.awaiting_pong_since.is_none() {
                agent.awaiting_pong_since = Some(now);
            }
            agent.send(ToAgent::Ping);
        }
    }

    /// Whether a message from `agent_id` may be applied, noting that the agent was heard from.
    /// Messages of partitioned agents are lost; an unreachable agent that speaks (it missed
    /// that it was marked unreachable) is asked to register again, and only its registration is
    /// applied.
    pub(super) fn accept_agent_message(&mut self, agent_id: &str, message: &FromAgent) -> bool {
        if self.partitions.contains_key(agent_id) {
            tracing::debug!(agent = %agent_id, "message from a partitioned agent lost");
            return false;
        }
        if let Some(agent) = self.agents.get_mut(agent_id) {
            agent.awaiting_pong_since = None;
            return true;
        }
        if matches!(message, FromAgent::Register { .. }) {
            return true;
        }
        if let Some((agent, _)) = self.unreachable_agents.get(agent_id) {
            tracing::info!(agent = %agent_id, "unreachable agent is back: asking it to register again");
            agent.send(ToAgent::Reregister);
        }
        false
    }

    /// Notices agents whose link closed (no more offers from them) and marks agents silent
    /// longer than `agent_removal_timeout` unreachable; heals partitions whose time is up.
    pub fn check_agents(&mut self) {
        let now = Instant::now();
        let healed: Vec<String> = self
            .partitions
            .iter()
            .filter(|(_, until)| until.is_some_and(|until| until <= now))
            .map(|(id, _)| id.clone())
            .collect();
        for agent_id in healed {
            self.heal_agent(&agent_id);
        }
        let timeout = self.config.agent_removal_timeout;
        let mut newly_gone = Vec::new();
        let mut silent = Vec::new();
        for agent in self.agents.values_mut() {
            if agent.disconnected_since.is_none() && agent.link.is_closed() {
                agent.disconnected_since = Some(now);
                newly_gone.push(agent.id.clone());
            }
            let since = match (agent.disconnected_since, agent.awaiting_pong_since) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if since.is_some_and(|since| now.duration_since(since) >= timeout) {
                silent.push(agent.id.clone());
            }
        }
        for agent_id in newly_gone {
            tracing::info!(agent = %agent_id, "agent disconnected");
            self.rescind_agent_offers(&agent_id);
        }
        for agent_id in silent {
            self.mark_unreachable(&agent_id);
        }
    }

    /// Marks a registered agent unreachable (see the module docs).
    pub(super) fn mark_unreachable(&mut self, agent_id: &str) {
        self.rescind_agent_offers(agent_id);
        let Some(mut agent) = self.agents.remove(agent_id) else {
            return;
        };
        let message = format!("Agent {} is unreachable", agent.info.hostname);
        tracing::info!(agent = %agent_id, "agent marked unreachable");
        let mut published = Vec::new();
        for framework in self.frameworks.values_mut() {
            let partition_aware = framework.has_capability(FrameworkCapability::PartitionAware);
            let ids: Vec<String> = framework
                .tasks
                .values()
                .filter(|t| t.agent_id.value == agent_id && !is_terminal(t.state))
                .map(|t| t.task_id.value.clone())
                .collect();
            for task_id in ids {
                let Some(mut task) = framework.tasks.remove(&task_id) else {
                    continue;
                };
                let status = master_status(
                    &task.task_id,
                    Some(&task.agent_id),
                    TaskState::TaskUnreachable,
                    task_status::Reason::AgentRemoved,
                    &message,
                );
                task.state = TaskState::TaskUnreachable as i32;
                task.statuses.push(status.clone());
                let mut sent = status.clone();
                if !partition_aware {
                    sent.state = TaskState::TaskLost as i32;
                }
                framework.send(&update_event(sent));
                published.push((framework.id.clone(), status));
                framework.unreachable_tasks.insert(task_id, task);
            }
            framework
                .executors
                .retain(|(agent, _), _| agent != agent_id);
        }
        for (framework_id, status) in published {
            self.publish_task_updated(&framework_id, status);
        }
        agent.used = Resources::new();
        agent.offered = Resources::new();
        agent.awaiting_pong_since = None;
        self.unreachable_agents
            .insert(agent_id.to_string(), (agent, now_secs()));
        self.agent_lost(agent_id);
    }

    /// MARK_AGENT_GONE: removes a registered or unreachable agent for good. `Err` carries the
    /// 404 text for an agent the master does not know.
    pub fn mark_agent_gone(&mut self, agent_id: &str) -> Result<(), String> {
        if self.gone_agents.contains(agent_id) {
            return Ok(());
        }
        if !self.agents.contains_key(agent_id) && !self.unreachable_agents.contains_key(agent_id) {
            return Err(format!("Agent '{agent_id}' not found"));
        }
        tracing::info!(agent = %agent_id, "agent marked gone by the operator");
        self.remove_agent_by_operator(agent_id, "Agent has been marked gone");
        self.gone_agents.insert(agent_id.to_string());
        Ok(())
    }

    /// Removes a registered or unreachable agent on the operator's word (MARK_AGENT_GONE, a
    /// machine going DOWN): its tasks become TASK_GONE_BY_OPERATOR (TASK_LOST without
    /// PARTITION_AWARE) with `message`, and the agent is told to shut down.
    pub(super) fn remove_agent_by_operator(&mut self, agent_id: &str, message: &str) {
        let was_registered = self.agents.contains_key(agent_id);
        self.rescind_agent_offers(agent_id);
        let agent = match self.agents.remove(agent_id) {
            Some(agent) => agent,
            None => match self.unreachable_agents.remove(agent_id) {
                Some((agent, _)) => agent,
                None => return,
            },
        };
        let cap = self.config.max_completed_tasks_per_framework;
        let mut published = Vec::new();
        for framework in self.frameworks.values_mut() {
            let partition_aware = framework.has_capability(FrameworkCapability::PartitionAware);
            let mut ids: Vec<(String, bool)> = framework
                .tasks
                .values()
                .filter(|t| t.agent_id.value == agent_id && !is_terminal(t.state))
                .map(|t| (t.task_id.value.clone(), false))
                .collect();
            ids.extend(
                framework
                    .unreachable_tasks
                    .values()
                    .filter(|t| t.agent_id.value == agent_id)
                    .map(|t| (t.task_id.value.clone(), true)),
            );
            for (task_id, unreachable) in ids {
                let task = if unreachable {
                    framework.unreachable_tasks.remove(&task_id)
                } else {
                    framework.tasks.remove(&task_id)
                };
                let Some(mut task) = task else {
                    continue;
                };
                let status = master_status(
                    &task.task_id,
                    Some(&task.agent_id),
                    TaskState::TaskGoneByOperator,
                    task_status::Reason::AgentRemovedByOperator,
                    message,
                );
                task.state = TaskState::TaskGoneByOperator as i32;
                task.statuses.push(status.clone());
                let mut sent = status.clone();
                if !partition_aware {
                    sent.state = TaskState::TaskLost as i32;
                }
                framework.send(&update_event(sent));
                published.push((framework.id.clone(), status));
                framework.add_completed_task(task, cap);
            }
            framework
                .executors
                .retain(|(agent, _), _| agent != agent_id);
        }
        for (framework_id, status) in published {
            self.publish_task_updated(&framework_id, status);
        }
        self.partitions.remove(agent_id);
        self.agent_order.retain(|a| a != agent_id);
        // The agent is told to stop, whatever partition there was.
        let _ = agent.link.send(ToAgent::Shutdown);
        if was_registered {
            self.agent_lost(agent_id);
        }
    }

    /// A FAILURE event for the agent to every framework and AGENT_REMOVED to operator streams.
    fn agent_lost(&mut self, agent_id: &str) {
        for framework in self.frameworks.values() {
            framework.send(&scheduler::Event {
                r#type: Some(scheduler::event::Type::Failure as i32),
                failure: Some(event::Failure {
                    agent_id: Some(AgentId {
                        value: agent_id.to_string(),
                    }),
                    executor_id: None,
                    status: None,
                }),
                ..Default::default()
            });
        }
        self.publish(v1::master::Event {
            r#type: Some(v1::master::event::Type::AgentRemoved as i32),
            agent_removed: Some(v1::master::event::AgentRemoved {
                agent_id: AgentId {
                    value: agent_id.to_string(),
                },
            }),
            ..Default::default()
        });
    }

    /// TASK_UPDATED on the operator streams.
    pub(super) fn publish_task_updated(&mut self, framework_id: &str, status: TaskStatus) {
        if self.operator_streams.is_empty() {
            return;
        }
        let state = status.state;
        self.publish(v1::master::Event {
            r#type: Some(v1::master::event::Type::TaskUpdated as i32),
            task_updated: Some(v1::master::event::TaskUpdated {
                framework_id: FrameworkId {
                    value: framework_id.to_string(),
                },
                status,
                state,
            }),
            ..Default::default()
        });
    }

    /// Whether `agent_id` was marked gone.
    pub(super) fn is_gone(&self, agent_id: &str) -> bool {
        self.gone_agents.contains(agent_id)
    }

    /// Takes an unreachable agent back for its re-registration: its old entry (for the total
    /// with reservations made through the master), after forgetting its unreachable tasks (the
    /// agent reports those that still run).
    pub(super) fn take_unreachable(&mut self, agent_id: &str) -> Option<Agent> {
        let (agent, _) = self.unreachable_agents.remove(agent_id)?;
        for framework in self.frameworks.values_mut() {
            framework
                .unreachable_tasks
                .retain(|_, t| t.agent_id.value != agent_id);
        }
        tracing::info!(agent = %agent_id, "unreachable agent registers again");
        Some(agent)
    }
}

/// Pings the agents every `agent_ping_interval` until the master stops.
pub(crate) async fn run_agent_pings(shared: Arc<Shared>) {
    let mut ticks = tokio::time::interval(shared.config.agent_ping_interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is immediate: the first pings go one interval after the start.
    ticks.tick().await;
    loop {
        tokio::select! {
            _ = ticks.tick() => shared.lock().ping_agents(),
            _ = shared.shutdown.cancelled() => return,
        }
    }
}
