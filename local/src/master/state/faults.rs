//! Fault injection (no part of Mesos, off unless asked for): cutting an agent off from the master
//! for a while, crashing an agent, killing an executor, rescinding every offer, and losing or
//! delaying status update acknowledgements. Each has the effect the same fault has on a real
//! Mesos cluster; [`crate::master::MasterHandle`] documents them one by one.

use super::*;

/// What happens to the status update acknowledgements frameworks send (fault injection).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum AckFault {
    /// Acknowledgements reach the agent (normal operation).
    #[default]
    None,
    /// Acknowledgements are lost between master and agent: the agent resends each update after
    /// its retry interval, so frameworks see it again (Mesos' at-least-once delivery).
    Drop,
    /// Acknowledgements reach the agent this much later; an update whose retry comes first is
    /// seen again.
    Delay(Duration),
}

impl State {
    /// Cuts `agent_id` off from the master: nothing the master sends reaches it, nothing it
    /// sends reaches the master, until [`State::heal_agent`] or, with `heal_after`, that much
    /// later. Returns false for an agent the master does not know.
    pub fn partition_agent(&mut self, agent_id: &str, heal_after: Option<Duration>) -> bool {
        let known = if let Some(agent) = self.agents.get_mut(agent_id) {
            agent.partitioned = true;
            true
        } else if let Some((agent, _)) = self.unreachable_agents.get_mut(agent_id) {
            agent.partitioned = true;
            true
        } else {
            false
        };
        if known {
            tracing::info!(agent = %agent_id, ?heal_after, "fault injection: agent partitioned");
            self.partitions
                .insert(agent_id.to_string(), heal_after.map(|d| Instant::now() + d));
        }
        known
    }

    /// Ends the partition of `agent_id`. An agent that was marked unreachable meanwhile is asked
    /// to register again (as a Mesos agent does once it hears from the master again); messages
    /// lost during a shorter partition stay lost, except status updates, which the agent
    /// resends until they are acknowledged. Returns false if the agent was not partitioned.
    pub fn heal_agent(&mut self, agent_id: &str) -> bool {
        if self.partitions.remove(agent_id).is_none() {
            return false;
        }
        tracing::info!(agent = %agent_id, "fault injection: partition healed");
        if let Some(agent) = self.agents.get_mut(agent_id) {
            agent.partitioned = false;
            agent.awaiting_pong_since = None;
        } else if let Some((agent, _)) = self.unreachable_agents.get_mut(agent_id) {
            agent.partitioned = false;
            agent.send(ToAgent::Reregister);
        }
        true
    }

    /// Asks `agent_id` to stop as if its process were killed. Returns false for an agent that
    /// is not registered.
    pub fn crash_agent(&mut self, agent_id: &str) -> bool {
        let Some(agent) = self.agents.get(agent_id) else {
            return false;
        };
        let _ = agent.link.send(ToAgent::Crash);
        true
    }

    /// Kills an executor's processes at once on the agent that runs it (for a command task the
    /// executor id is the task id). Returns false if the master knows no such executor.
    pub fn kill_executor(&mut self, framework_id: &str, executor_id: &str) -> bool {
        let Some(framework) = self.frameworks.get(framework_id) else {
            return false;
        };
        let agent_id = framework
            .executors
            .keys()
            .find(|(_, e)| e == executor_id)
            .map(|(a, _)| a.clone())
            .or_else(|| {
                framework
                    .tasks
                    .values()
                    .find(|t| {
                        t.executor_id
                            .as_ref()
                            .map_or(&t.task_id.value, |e| &e.value)
                            == executor_id
                    })
                    .map(|t| t.agent_id.value.clone())
            });
        let Some(agent) = agent_id.and_then(|a| self.agents.get(&a)) else {
            return false;
        };
        let _ = agent.link.send(ToAgent::KillExecutor {
            framework_id: FrameworkId {
                value: framework_id.to_string(),
            },
            executor_id: ExecutorId {
                value: executor_id.to_string(),
            },
        });
        true
    }

    /// Rescinds every outstanding offer (one RESCIND each); the resources are offered again by
    /// the next allocation run. Returns how many offers were rescinded.
    pub fn rescind_all_offers(&mut self) -> usize {
        let ids: Vec<String> = self.offers.keys().cloned().collect();
        for offer_id in &ids {
            self.rescind_offer_no_allocate(offer_id);
        }
        ids.len()
    }

    /// Sets what happens to later acknowledgements.
    pub fn set_ack_fault(&mut self, fault: AckFault) {
        tracing::info!(?fault, "fault injection: acknowledgements");
        self.ack_fault = fault;
    }

    /// Relays a framework's acknowledgement to the agent, unless a fault loses or delays it.
    pub(super) fn relay_acknowledgement(&self, agent_id: &str, message: ToAgent) {
        let Some(agent) = self.agents.get(agent_id) else {
            return;
        };
        match self.ack_fault {
            AckFault::None => agent.send(message),
            AckFault::Drop => tracing::debug!(agent = %agent_id, "acknowledgement lost"),
            AckFault::Delay(delay) => {
                if agent.partitioned {
                    return;
                }
                let link = agent.link.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    let _ = link.send(message);
                });
            }
        }
    }
}

impl State {
    /// Stops as a killed master process would: every stream ends, nothing is said to the agents
    /// (they keep running and register with the next master).
    pub fn crash(&mut self) {
        self.stopped = true;
        for framework in self.frameworks.values_mut() {
            framework.subscription = None;
        }
        self.operator_streams.clear();
    }
}
