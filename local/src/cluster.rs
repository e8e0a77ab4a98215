//! A local cluster: one embedded master and N embedded agents in this process, started and
//! stopped together. [`LocalCluster::builder`] takes Mesos-style `--resources` / `--attributes`
//! texts; this is what the `mesos-local` binary runs.
//!
//! Agents reach the master through a relay owned by the cluster, so that
//! [`LocalCluster::restart_master`] can put a new master behind the same link. The fault
//! injection methods (partitions, killed agents and executors, a restarted master, lost
//! acknowledgements, rescinded offers) document what a real Mesos cluster shows for each.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::agent::{self, AgentConfig, AgentError, AgentHandle};
use crate::master::{Master, MasterConfig, MasterError, MasterHandle};
use crate::server::HttpLimits;
use mesos_sdk::resourcemgr::{self as resources, ParseError};

mod faults;

use faults::Relay;

/// Default agent resources, like a small Mesos agent.
pub const DEFAULT_RESOURCES: &str = "cpus:4;mem:8192;disk:20000;ports:[31000-32000]";

/// Errors starting a local cluster.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LocalError {
    /// The master did not start.
    #[error(transparent)]
    Master(#[from] MasterError),
    /// An agent did not start.
    #[error("agent {index} failed to start: {source}")]
    Agent {
        /// Index of the agent (0-based).
        index: usize,
        /// The cause.
        source: AgentError,
    },
    /// Bad `--resources` text.
    #[error("invalid resources: {0}")]
    Resources(ParseError),
    /// Bad `--attributes` text.
    #[error("invalid attributes: {0}")]
    Attributes(ParseError),
    /// No agent with that index.
    #[error("no agent with index {0}")]
    NoSuchAgent(usize),
    /// The agents did not all register in time.
    #[error("only {registered} of {expected} agents registered within {waited:?}")]
    Registration {
        /// Agents registered.
        registered: usize,
        /// Agents started.
        expected: usize,
        /// How long the builder waited.
        waited: Duration,
    },
}

/// Settings of a [`LocalCluster`]; see [`LocalCluster::builder`].
#[derive(Debug, Clone)]
pub struct LocalClusterBuilder {
    master: MasterConfig,
    agents: usize,
    resources: String,
    attributes: String,
    work_dir: Option<PathBuf>,
    agent_hostname: Option<String>,
    fetcher_ca_pem: Vec<Vec<u8>>,
    fetcher_limits: agent::FetcherLimits,
    status_update_retry_min: Duration,
    status_update_retry_max: Duration,
    executor_registration_timeout: Duration,
    executor_shutdown_grace_period: Duration,
    executor_reregistration_timeout: Duration,
    recovery_timeout: Duration,
    registration_wait: Duration,
    agent_http: HttpLimits,
    docker: agent::DockerConfig,
    fetcher_cache: agent::FetcherCacheConfig,
}

impl Default for LocalClusterBuilder {
    fn default() -> Self {
        Self {
            master: MasterConfig::default(),
            agents: 1,
            resources: DEFAULT_RESOURCES.to_string(),
            attributes: String::new(),
            work_dir: None,
            agent_hostname: None,
            fetcher_ca_pem: Vec::new(),
            fetcher_limits: agent::FetcherLimits::default(),
            status_update_retry_min: Duration::from_secs(10),
            status_update_retry_max: Duration::from_secs(600),
            executor_registration_timeout: Duration::from_secs(60),
            executor_shutdown_grace_period: Duration::from_secs(5),
            executor_reregistration_timeout: Duration::from_secs(2),
            recovery_timeout: Duration::from_secs(15 * 60),
            registration_wait: Duration::from_secs(10),
            agent_http: HttpLimits::default(),
            docker: agent::DockerConfig::default(),
            fetcher_cache: agent::FetcherCacheConfig::default(),
        }
    }
}

impl LocalClusterBuilder {
    /// Number of agents (default 1).
    pub fn agents(mut self, agents: usize) -> Self {
        self.agents = agents;
        self
    }
    /// Each agent's resources, Mesos `--resources` text (default [`DEFAULT_RESOURCES`]).
    pub fn resources(mut self, resources: impl Into<String>) -> Self {
        self.resources = resources.into();
        self
    }
    /// Each agent's attributes, Mesos `--attributes` text (default none).
    pub fn attributes(mut self, attributes: impl Into<String>) -> Self {
        self.attributes = attributes.into();
        self
    }
    /// Work directory; agent `n` uses `work_dir/agents/<n>`, so a restart finds its checkpoints.
    pub fn work_dir(mut self, work_dir: impl Into<PathBuf>) -> Self {
        self.work_dir = Some(work_dir.into());
        self
    }
    /// Address the master and agents listen on (default 127.0.0.1).
    pub fn ip(mut self, ip: IpAddr) -> Self {
        self.master.ip = ip;
        self
    }
    /// Master port (default 0: any free port).
    pub fn port(mut self, port: u16) -> Self {
        self.master.port = port;
        self
    }
    /// Hostname of the master (default `localhost`).
    pub fn hostname(mut self, hostname: impl Into<String>) -> Self {
        self.master.hostname = hostname.into();
        self
    }
    /// One hostname for every agent to report in offers. By default each agent reports its own
    /// address, as Mesos does with `--hostname_lookup=false`; on the default 127.0.0.1 each agent
    /// has its own loopback address (see [`LocalCluster::builder`]), so hostnames are distinct.
    pub fn agent_hostname(mut self, hostname: impl Into<String>) -> Self {
        self.agent_hostname = Some(hostname.into());
        self
    }
    /// Trusts one more CA certificate (PEM) for the agents' `https` downloads, besides the webpki
    /// roots.
    pub fn fetcher_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.fetcher_ca_pem.push(pem.into());
        self
    }
    /// Timeouts and size limits of every agent's fetcher (default: [`agent::FetcherLimits`]'s).
    pub fn fetcher_limits(mut self, limits: agent::FetcherLimits) -> Self {
        self.fetcher_limits = limits;
        self
    }
    /// How every agent reaches the Docker Engine for DOCKER containers (default:
    /// [`agent::DockerConfig`]'s, `docker` from `PATH`).
    pub fn docker(mut self, docker: agent::DockerConfig) -> Self {
        self.docker = docker;
        self
    }
    /// Every agent's fetcher cache (default: `<agent work dir>/fetcher-cache`, 2 GiB); with a
    /// directory, agent `n` uses its subdirectory `n`.
    pub fn fetcher_cache(mut self, cache: agent::FetcherCacheConfig) -> Self {
        self.fetcher_cache = cache;
        self
    }
    /// Scheduler HEARTBEAT interval (default 15 s).
    pub fn heartbeat_interval(mut self, interval: Duration) -> Self {
        self.master.heartbeat_interval = interval;
        self
    }
    /// Offer timeout (default none).
    pub fn offer_timeout(mut self, timeout: Duration) -> Self {
        self.master.offer_timeout = Some(timeout);
        self
    }
    /// Allocation interval (default 1 s).
    pub fn allocation_interval(mut self, interval: Duration) -> Self {
        self.master.allocation_interval = interval;
        self
    }
    /// How often the master pings each agent (default 15 s, Mesos' `--agent_ping_timeout`).
    pub fn agent_ping_interval(mut self, interval: Duration) -> Self {
        self.master.agent_ping_interval = interval;
        self
    }
    /// How long an agent may stay silent (link closed, or a ping unanswered) before the master
    /// marks it unreachable (default 75 s; see [`MasterConfig::agent_removal_timeout`]).
    pub fn agent_removal_timeout(mut self, timeout: Duration) -> Self {
        self.master.agent_removal_timeout = timeout;
        self
    }
    /// Serves the fault-injection endpoints under `/__local/` (default off; see
    /// [`MasterConfig::fault_injection`]). The [`LocalCluster`] methods work either way.
    pub fn fault_injection(mut self, enabled: bool) -> Self {
        self.master.fault_injection = enabled;
        self
    }
    /// Requires HTTP Basic authentication on the scheduler API with these `(principal, secret)`
    /// pairs.
    pub fn credentials(mut self, credentials: Vec<(String, String)>) -> Self {
        self.master.credentials = credentials;
        self
    }
    /// Timeouts, body and connection limits of the master's and every agent's HTTP server
    /// (see [`crate::server`]; default [`HttpLimits::default`]).
    pub fn http_limits(mut self, limits: HttpLimits) -> Self {
        self.master.http = limits.clone();
        self.agent_http = limits;
        self
    }
    /// Replaces the whole master configuration (ip, port and hostname included).
    pub fn master_config(mut self, config: MasterConfig) -> Self {
        self.master = config;
        self
    }
    /// Retry interval bounds of unacknowledged status updates (default 10 s to 10 min).
    pub fn status_update_retry(mut self, min: Duration, max: Duration) -> Self {
        self.status_update_retry_min = min;
        self.status_update_retry_max = max;
        self
    }
    /// Executor registration timeout (default 1 min).
    pub fn executor_registration_timeout(mut self, timeout: Duration) -> Self {
        self.executor_registration_timeout = timeout;
        self
    }
    /// Default executor shutdown grace period (default 5 s).
    pub fn executor_shutdown_grace_period(mut self, period: Duration) -> Self {
        self.executor_shutdown_grace_period = period;
        self
    }
    /// How long a restarted agent waits for checkpointing executors to resubscribe; also their
    /// `MESOS_SUBSCRIPTION_BACKOFF_MAX` (Mesos' `--executor_reregistration_timeout`, default 2 s).
    pub fn executor_reregistration_timeout(mut self, timeout: Duration) -> Self {
        self.executor_reregistration_timeout = timeout;
        self
    }
    /// `MESOS_RECOVERY_TIMEOUT` given to checkpointing executors (Mesos' `--recovery_timeout`,
    /// default 15 min).
    pub fn recovery_timeout(mut self, timeout: Duration) -> Self {
        self.recovery_timeout = timeout;
        self
    }
    /// How long [`LocalClusterBuilder::start`] waits for every agent to register (default 10 s).
    pub fn registration_wait(mut self, wait: Duration) -> Self {
        self.registration_wait = wait;
        self
    }

    /// Starts the master, then the agents, and waits until every agent has registered.
    pub async fn start(self) -> Result<LocalCluster, LocalError> {
        let resources =
            resources::parse_resources(&self.resources).map_err(LocalError::Resources)?;
        let attributes =
            resources::parse_attributes(&self.attributes).map_err(LocalError::Attributes)?;
        let master = Master::start(self.master.clone()).await?;
        let relay = Relay::start(master.link());
        let ip = match self.master.ip {
            IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            ip => ip,
        };
        let template = AgentConfig {
            id: None,
            hostname: String::new(),
            ip,
            port: 0,
            resources: resources.clone(),
            attributes: attributes.clone(),
            work_dir: None,
            status_update_retry_min: self.status_update_retry_min,
            status_update_retry_max: self.status_update_retry_max,
            executor_registration_timeout: self.executor_registration_timeout,
            executor_shutdown_grace_period: self.executor_shutdown_grace_period,
            executor_reregistration_timeout: self.executor_reregistration_timeout,
            recovery_timeout: self.recovery_timeout,
            fetcher_ca_pem: self.fetcher_ca_pem.clone(),
            fetcher_limits: self.fetcher_limits.clone(),
            http: self.agent_http.clone(),
            docker: self.docker.clone(),
            fetcher_cache: self.fetcher_cache.clone(),
        };
        let mut agents = Vec::with_capacity(self.agents);
        let mut configs = Vec::with_capacity(self.agents);
        for index in 0..self.agents {
            let config = agent_config(
                &template,
                self.agent_hostname.as_deref(),
                self.work_dir.as_deref(),
                index,
                &master.id(),
            );
            configs.push(config.clone());
            match agent::start(config, relay.link.clone()).await {
                Ok(handle) => agents.push(handle),
                Err(source) => {
                    for agent in agents {
                        agent.shutdown().await;
                    }
                    master.shutdown().await;
                    return Err(LocalError::Agent { index, source });
                }
            }
        }
        let started = Instant::now();
        loop {
            let registered = master.registered_agents();
            if registered >= self.agents {
                break;
            }
            if started.elapsed() >= self.registration_wait {
                for agent in agents {
                    agent.shutdown().await;
                }
                master.shutdown().await;
                return Err(LocalError::Registration {
                    registered,
                    expected: self.agents,
                    waited: self.registration_wait,
                });
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let master_config = MasterConfig {
            port: master.addr().port(),
            ..self.master.clone()
        };
        Ok(LocalCluster {
            master,
            master_config,
            relay,
            killed: Vec::new(),
            agents,
            configs,
            template,
            agent_hostname: self.agent_hostname.clone(),
            work_dir: self.work_dir.clone(),
            restart_bind_wait: self.registration_wait,
        })
    }
}

/// A running local cluster.
#[derive(Debug)]
pub struct LocalCluster {
    master: MasterHandle,
    /// The master's configuration with its bound port (for a restart on the same address).
    master_config: MasterConfig,
    relay: Relay,
    /// Agents stopped by [`LocalCluster::kill_agent`], with their configuration (id set).
    killed: Vec<AgentConfig>,
    agents: Vec<AgentHandle>,
    configs: Vec<AgentConfig>,
    template: AgentConfig,
    agent_hostname: Option<String>,
    work_dir: Option<PathBuf>,
    restart_bind_wait: Duration,
}

impl LocalCluster {
    /// A builder with Mesos-like defaults: one agent with [`DEFAULT_RESOURCES`].
    pub fn builder() -> LocalClusterBuilder {
        LocalClusterBuilder::default()
    }

    /// The master's base URL (`http://127.0.0.1:PORT`).
    pub fn master_url(&self) -> String {
        self.master.url()
    }

    /// The master.
    pub fn master(&self) -> &MasterHandle {
        &self.master
    }

    /// The agents, in start order.
    pub fn agents(&self) -> &[AgentHandle] {
        &self.agents
    }

    /// Starts one more agent with the builder's agent settings (its work directory, if any, is
    /// `work_dir/agents/<n>` for the next free `n`) and returns its index in
    /// [`LocalCluster::agents`]. The agent registers with the master asynchronously.
    pub async fn add_agent(&mut self) -> Result<usize, LocalError> {
        let index = self.configs.len();
        let config = agent_config(
            &self.template,
            self.agent_hostname.as_deref(),
            self.work_dir.as_deref(),
            index,
            &self.master.id(),
        );
        let handle = agent::start(config.clone(), self.relay.link.clone())
            .await
            .map_err(|source| LocalError::Agent { index, source })?;
        self.configs.push(config);
        self.agents.push(handle);
        Ok(self.agents.len() - 1)
    }

    /// Restarts agent `index` as after a crash of the agent process: its executors keep
    /// running, and the new agent recovers them from its work directory (set
    /// [`LocalClusterBuilder::work_dir`] for that) and registers again under the same id.
    ///
    /// If the new agent fails to start, the agent is gone from [`LocalCluster::agents`].
    pub async fn restart_agent(&mut self, index: usize) -> Result<(), LocalError> {
        let Some(mut config) = self.configs.get(index).cloned() else {
            return Err(LocalError::NoSuchAgent(index));
        };
        if index >= self.agents.len() {
            return Err(LocalError::NoSuchAgent(index));
        }
        let old = self.agents.remove(index);
        config.id = Some(old.id().clone());
        old.crash().await;
        // The old agent's socket may take a moment to be released: retry binding for a while.
        let deadline = Instant::now() + self.restart_bind_wait;
        loop {
            match agent::start(config.clone(), self.relay.link.clone()).await {
                Ok(handle) => {
                    self.agents.insert(index, handle);
                    return Ok(());
                }
                Err(AgentError::Bind { .. }) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(source) => {
                    self.configs.remove(index);
                    return Err(LocalError::Agent { index, source });
                }
            }
        }
    }

    /// Stops the agents, then the master.
    pub async fn shutdown(self) {
        for agent in self.agents {
            agent.shutdown().await;
        }
        self.master.shutdown().await;
        self.relay.task.abort();
    }
}

/// Agent `index`'s configuration from the shared `template`: its own address (see
/// [`agent_ip`]), `hostname` or else that address as its hostname, `work_dir/agents/<index>`
/// so that a restart finds its checkpoints, and the id `<master id>-S<index>` (an agent that
/// recovers from its work directory keeps its checkpointed id).
fn agent_config(
    template: &AgentConfig,
    hostname: Option<&str>,
    work_dir: Option<&Path>,
    index: usize,
    master_id: &str,
) -> AgentConfig {
    let mut config = template.clone();
    // As a Mesos master names the agents it registers: its own id, `-S`, a counter.
    config.id = Some(mesos_sdk::v1::AgentId {
        value: format!("{master_id}-S{index}"),
    });
    config.ip = agent_ip(template.ip, index);
    config.hostname = hostname.map_or_else(|| config.ip.to_string(), str::to_string);
    config.work_dir = work_dir.map(|dir| dir.join("agents").join(index.to_string()));
    config.fetcher_cache.dir =
        (template.fetcher_cache.dir.as_deref()).map(|dir| dir.join(index.to_string()));
    config
}

/// The address agent `index` listens on: on 127.0.0.1, the `index`-th loopback address from
/// there (127.0.0.1, 127.0.0.2, ...), so that agents have distinct addresses and hostnames as on
/// a real cluster; any other address is shared by all agents.
fn agent_ip(base: IpAddr, index: usize) -> IpAddr {
    let IpAddr::V4(v4) = base else {
        return base;
    };
    if v4 != Ipv4Addr::LOCALHOST {
        return base;
    }
    u32::try_from(index)
        .ok()
        .and_then(|index| u32::from(v4).checked_add(index))
        .map(Ipv4Addr::from)
        .filter(|ip| ip.is_loopback() && *ip != Ipv4Addr::new(127, 255, 255, 255))
        .map_or(base, IpAddr::V4)
}

#[cfg(test)]
mod tests {
    use super::agent_ip;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    #[test]
    fn agents_on_loopback_get_their_own_addresses() {
        let localhost = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let table = [
            (localhost, 0, "127.0.0.1"),
            (localhost, 1, "127.0.0.2"),
            (localhost, 255, "127.0.1.0"),
            // Past the loopback range every agent shares the base address.
            (localhost, 16_777_214, "127.0.0.1"),
            (IpAddr::V4(Ipv4Addr::new(127, 0, 0, 7)), 3, "127.0.0.7"),
            (IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)), 3, "10.1.2.3"),
            (IpAddr::V6(Ipv6Addr::LOCALHOST), 3, "::1"),
        ];
        for (base, index, want) in table {
            assert_eq!(agent_ip(base, index).to_string(), want, "{base} #{index}");
        }
    }
}
