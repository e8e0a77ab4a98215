//! Agent draining and deactivation (DRAIN_AGENT, DEACTIVATE_AGENT, REACTIVATE_AGENT), as the
//! Mesos master does them: a deactivated agent gets no new offers (its outstanding offers are
//! rescinded) and its tasks keep running; a draining agent is deactivated and its tasks are
//! killed, each with its kill policy's grace period capped by the drain's `max_grace_period`;
//! once none of its tasks runs it is DRAINED, and with `mark_gone` it is then marked gone.
//! GET_AGENTS shows `deactivated` and `drain_info`. REACTIVATE_AGENT ends both.

use super::*;

/// How an agent is drained or deactivated.
#[derive(Debug, Clone, Default)]
pub(crate) struct Drain {
    /// Deactivated: no offers.
    pub deactivated: bool,
    /// The drain, when DRAIN_AGENT was called.
    pub info: Option<v1::DrainInfo>,
}

impl State {
    /// DRAIN_AGENT. `Err` carries the 400 text.
    pub fn drain_agent(
        &mut self,
        agent_id: &str,
        max_grace_period: Option<Duration>,
        mark_gone: bool,
    ) -> Result<(), String> {
        if !self.agents.contains_key(agent_id) {
            return Err(format!("Unknown agent {agent_id}"));
        }
        self.rescind_agent_offers(agent_id);
        let config = v1::DrainConfig {
            max_grace_period: max_grace_period.map(|d| v1::DurationInfo {
                nanoseconds: i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
            }),
            mark_gone: Some(mark_gone),
        };
        if let Some(agent) = self.agents.get_mut(agent_id) {
            agent.drain = Drain {
                deactivated: true,
                info: Some(v1::DrainInfo {
                    state: v1::DrainState::Draining as i32,
                    config,
                }),
            };
        }
        tracing::info!(agent = %agent_id, ?max_grace_period, mark_gone, "draining agent");
        let mut kills = Vec::new();
        for framework in self.frameworks.values() {
            for task in framework.tasks.values() {
                if task.agent_id.value != agent_id || is_terminal(task.state) {
                    continue;
                }
                let own = task
                    .kill_policy
                    .and_then(|p| p.grace_period)
                    .map(|g| g.nanoseconds.max(0));
                let cap = max_grace_period.map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
                let grace = match (own, cap) {
                    (Some(own), Some(cap)) => Some(own.min(cap)),
                    (own, cap) => own.or(cap),
                };
                kills.push(ToAgent::KillTask {
                    framework_id: FrameworkId {
                        value: framework.id.clone(),
                    },
                    task_id: task.task_id.clone(),
                    kill_policy: grace.map(|nanoseconds| v1::KillPolicy {
                        grace_period: Some(v1::DurationInfo { nanoseconds }),
                    }),
                });
            }
        }
        if let Some(agent) = self.agents.get(agent_id) {
            for kill in kills {
                agent.send(kill);
            }
        }
        self.check_drained(agent_id);
        Ok(())
    }

    /// DEACTIVATE_AGENT. `Err` carries the 400 text.
    pub fn deactivate_agent(&mut self, agent_id: &str) -> Result<(), String> {
        let Some(agent) = self.agents.get_mut(agent_id) else {
            return Err(format!("Unknown agent {agent_id}"));
        };
        agent.drain.deactivated = true;
        self.rescind_agent_offers(agent_id);
        Ok(())
    }

    /// REACTIVATE_AGENT: offers again; a drain ends. `Err` carries the 400 text.
    pub fn reactivate_agent(&mut self, agent_id: &str) -> Result<(), String> {
        let Some(agent) = self.agents.get_mut(agent_id) else {
            return Err(format!("Unknown agent {agent_id}"));
        };
        agent.drain = Drain::default();
        Ok(())
    }

    /// A draining agent without running tasks is DRAINED (and marked gone if asked).
    pub(super) fn check_drained(&mut self, agent_id: &str) {
        let Some(agent) = self.agents.get(agent_id) else {
            return;
        };
        let Some(info) = &agent.drain.info else {
            return;
        };
        if info.state != v1::DrainState::Draining as i32 {
            return;
        }
        let busy = self.frameworks.values().any(|f| {
            f.tasks
                .values()
                .any(|t| t.agent_id.value == agent_id && !is_terminal(t.state))
        });
        if busy {
            return;
        }
        let mark_gone = info.config.mark_gone();
        if let Some(info) = self
            .agents
            .get_mut(agent_id)
            .and_then(|a| a.drain.info.as_mut())
        {
            info.state = v1::DrainState::Drained as i32;
        }
        tracing::info!(agent = %agent_id, "agent drained");
        if mark_gone {
            let _ = self.mark_agent_gone(agent_id);
        }
    }
}
