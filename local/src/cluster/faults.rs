//! Fault injection on a [`LocalCluster`]: partitions, killed and revived agents, killed
//! executors, rescinded offers, lost acknowledgements and a restarted master, each with the
//! effect a real Mesos cluster shows; and the relay that lets the agents reach whichever master
//! runs.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{LocalCluster, LocalError};
use crate::agent::{self, AgentError};
use crate::link::{AgentMessage, MasterLink};
use crate::master::{AckFault, Master, MasterConfig, MasterError};
use mesos_sdk::v1::AgentId;

impl LocalCluster {
    /// The id of agent `index`.
    fn agent_id(&self, index: usize) -> Result<String, LocalError> {
        self.agents
            .get(index)
            .map(|a| a.id().value.clone())
            .ok_or(LocalError::NoSuchAgent(index))
    }

    /// Fault injection: cuts agent `index` off from the master, as a network partition would,
    /// until [`LocalCluster::heal_agent`] or, with `heal_after`, that much later. What Mesos
    /// shows, and mesos-local too: after [`MasterConfig::agent_removal_timeout`] of silence the
    /// agent is unreachable (RESCIND of its offers, TASK_UNREACHABLE or, without
    /// PARTITION_AWARE, TASK_LOST for its tasks, a FAILURE event); see
    /// [`crate::master::MasterHandle::partition_agent`].
    pub fn partition_agent(
        &self,
        index: usize,
        heal_after: Option<Duration>,
    ) -> Result<(), LocalError> {
        let id = self.agent_id(index)?;
        if self.master.partition_agent(&id, heal_after) {
            Ok(())
        } else {
            Err(LocalError::NoSuchAgent(index))
        }
    }

    /// Fault injection: ends the partition of agent `index`; an agent marked unreachable
    /// meanwhile registers again and its running tasks are back (reconciliation answers
    /// TASK_RUNNING, as in Mesos); see [`crate::master::MasterHandle::heal_agent`]. Returns false if it was not
    /// partitioned.
    pub fn heal_agent(&self, index: usize) -> Result<bool, LocalError> {
        let id = self.agent_id(index)?;
        Ok(self.master.heal_agent(&id))
    }

    /// Fault injection: kills agent `index` as a killed agent process (its executors keep
    /// running; see [`crate::agent::AgentHandle::crash`]) and returns its id. The agent leaves
    /// [`LocalCluster::agents`] (later agents move down one index). As in Mesos, the master
    /// rescinds its offers at once and marks it unreachable after
    /// [`MasterConfig::agent_removal_timeout`]; [`LocalCluster::revive_agent`] starts it again.
    pub async fn kill_agent(&mut self, index: usize) -> Result<AgentId, LocalError> {
        if index >= self.agents.len() || index >= self.configs.len() {
            return Err(LocalError::NoSuchAgent(index));
        }
        let handle = self.agents.remove(index);
        let mut config = self.configs.remove(index);
        let id = handle.id().clone();
        config.id = Some(id.clone());
        handle.crash().await;
        self.killed.push(config);
        Ok(id)
    }

    /// Starts an agent stopped by [`LocalCluster::kill_agent`] again under its id (recovering
    /// its executors from its work directory if the cluster has one) and returns its new index.
    pub async fn revive_agent(&mut self, id: &AgentId) -> Result<usize, LocalError> {
        let Some(position) = self.killed.iter().position(|c| c.id.as_ref() == Some(id)) else {
            return Err(LocalError::NoSuchAgent(self.agents.len()));
        };
        let config = self.killed.remove(position);
        let index = self.agents.len();
        let deadline = Instant::now() + self.restart_bind_wait;
        loop {
            match agent::start(config.clone(), self.relay.link.clone()).await {
                Ok(handle) => {
                    self.agents.push(handle);
                    self.configs.push(config);
                    return Ok(index);
                }
                Err(AgentError::Bind { .. }) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(source) => return Err(LocalError::Agent { index, source }),
            }
        }
    }

    /// Fault injection: kills an executor's processes with SIGKILL (for a command task the
    /// executor id is the task id); see [`crate::master::MasterHandle::kill_executor`] for what frameworks
    /// see. Returns false if the master knows no such executor.
    pub fn kill_executor(&self, framework_id: &str, executor_id: &str) -> bool {
        self.master.kill_executor(framework_id, executor_id)
    }

    /// Fault injection: rescinds every outstanding offer; see
    /// [`crate::master::MasterHandle::rescind_all_offers`].
    pub fn rescind_all_offers(&self) -> usize {
        self.master.rescind_all_offers()
    }

    /// Fault injection: loses or delays later status update acknowledgements; see
    /// [`AckFault`].
    pub fn set_ack_fault(&self, fault: AckFault) {
        self.master.set_ack_fault(fault);
    }

    /// Fault injection: restarts the master as after a crash and failover to a new master on
    /// the same address. As with Mesos: every scheduler stream ends (frameworks subscribe
    /// again with their id), outstanding offers are gone, the new master has a new id and
    /// knows only what the agents tell it when they register again with their running tasks
    /// (each agent re-registers at once). The agents and their tasks keep running.
    pub async fn restart_master(&mut self) -> Result<(), LocalError> {
        let placeholder = Master::start(MasterConfig {
            port: 0,
            ..self.master_config.clone()
        })
        .await?;
        let old = std::mem::replace(&mut self.master, placeholder);
        old.crash().await;
        let deadline = Instant::now() + self.restart_bind_wait;
        let restarted = loop {
            match Master::start(self.master_config.clone()).await {
                Ok(master) => break Ok(master),
                Err(MasterError::Bind { .. }) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(error) => break Err(error),
            }
        };
        let outcome = match restarted {
            Ok(master) => {
                let placeholder = std::mem::replace(&mut self.master, master);
                placeholder.shutdown().await;
                Ok(())
            }
            Err(error) => {
                // The agents go to the stand-in master (on another port) rather than nowhere.
                tracing::warn!(%error, url = %self.master.url(), "master restarted on a new address");
                Err(error.into())
            }
        };
        self.relay.retarget(self.master.link());
        for agent in &self.agents {
            agent.reregister();
        }
        let started = Instant::now();
        while self.master.registered_agents() < self.agents.len()
            && started.elapsed() < self.restart_bind_wait
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        outcome
    }
}

/// Forwards the agents' messages to the current master.
#[derive(Debug)]
pub(super) struct Relay {
    /// What the agents send to.
    pub(super) link: MasterLink,
    /// The current master's link.
    target: Arc<Mutex<MasterLink>>,
    pub(super) task: JoinHandle<()>,
}

impl Relay {
    pub(super) fn start(target: MasterLink) -> Self {
        let (link, mut messages) = mpsc::unbounded_channel::<AgentMessage>();
        let target = Arc::new(Mutex::new(target));
        let current = Arc::clone(&target);
        let task = tokio::spawn(async move {
            while let Some(message) = messages.recv().await {
                let link = current
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone();
                if link.send(message).is_err() {
                    tracing::debug!("agent message lost: the master is gone");
                }
            }
        });
        Self { link, target, task }
    }

    pub(super) fn retarget(&self, link: MasterLink) {
        *self
            .target
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = link;
    }
}
