//! Embedded agents (contract stub: the agent work replaces the bodies).

use std::path::PathBuf;
use std::time::Duration;

use crate::local::link::MasterLink;
use crate::v1::{AgentId, Attribute, Resource};

/// Configuration of one embedded agent.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Agent id; a fresh one is made when `None` (and a checkpointed one reused after restart).
    pub id: Option<AgentId>,
    /// Hostname reported in offers.
    pub hostname: String,
    /// IP address to listen on.
    pub ip: std::net::IpAddr,
    /// Port to listen on (0: any free port; after a restart the checkpointed port is reused).
    pub port: u16,
    /// Total resources.
    pub resources: Vec<Resource>,
    /// Attributes.
    pub attributes: Vec<Attribute>,
    /// Work directory for sandboxes and checkpoints; a temporary one when `None`.
    pub work_dir: Option<PathBuf>,
    /// First retry interval of unacknowledged status updates (Mesos: 10 s).
    pub status_update_retry_min: Duration,
    /// Cap on that interval (Mesos: 10 min).
    pub status_update_retry_max: Duration,
    /// A custom executor that has not subscribed within this time is killed (Mesos: 1 min).
    pub executor_registration_timeout: Duration,
    /// Default grace period of executor shutdown (Mesos: 5 s).
    pub executor_shutdown_grace_period: Duration,
    /// `MESOS_SUBSCRIPTION_BACKOFF_MAX` given to checkpointing executors (Mesos: 2 s).
    pub executor_reregistration_timeout: Duration,
    /// `MESOS_RECOVERY_TIMEOUT` given to checkpointing executors (Mesos: 15 min).
    pub recovery_timeout: Duration,
}

/// A running agent.
#[derive(Debug)]
pub struct AgentHandle {
    id: AgentId,
    url: String,
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
    /// Stops the agent and its executors.
    pub async fn shutdown(self) {}
}

/// Errors starting an agent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// Not built yet.
    #[error("agent not built yet")]
    NotBuilt,
}

/// Starts an agent that registers with the master over `master`.
pub async fn start(_config: AgentConfig, _master: MasterLink) -> Result<AgentHandle, AgentError> {
    Err(AgentError::NotBuilt)
}
