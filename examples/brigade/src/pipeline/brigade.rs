//! [`Brigade`]: several process schedulers in one process, beside the artifact server that
//! serves `brigade-executor` to the Mesos fetcher. Part 2's meta scheduler drives it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use mesos_sdk::server::Server;
use tokio::sync::Mutex;

use super::counters::CountersSnapshot;
use super::latency::LatencySnapshot;
use super::runner::ProcessScheduler;
use super::{PipelineError, SchedulerConfig};
use crate::processor::Processor;

/// The artifact name of the executor binary.
pub const EXECUTOR_ARTIFACT: &str = "brigade-executor";

/// Settings of a [`Brigade`].
#[derive(Debug, Clone)]
pub struct BrigadeConfig {
    /// The template of every process scheduler's settings (its `executor_uri` is replaced by
    /// the artifact server's).
    pub scheduler: SchedulerConfig,
    /// The `brigade-executor` binary to serve; `None`: next to the current executable.
    pub executor_path: Option<PathBuf>,
    /// Where the artifact server listens (port 0: any free port).
    pub bind: SocketAddr,
    /// The host name agents reach the artifact server at (default: the bound address).
    pub advertised_host: Option<String>,
}

/// Process schedulers run by one process; see the module documentation.
#[derive(Debug)]
pub struct Brigade {
    server: Server,
    template: SchedulerConfig,
    schedulers: Mutex<BTreeMap<String, ProcessScheduler>>,
}

/// Where `brigade-executor` is by default ([`crate::exec::executor_binary`]: `$BRIGADE_EXECUTOR`,
/// or next to the current executable).
pub fn default_executor_path() -> Result<PathBuf, PipelineError> {
    crate::exec::executor_binary().ok_or_else(|| {
        PipelineError::Config(format!(
            "no {EXECUTOR_ARTIFACT} found (set BRIGADE_EXECUTOR or pass its path; \
             `cargo build -p brigade` builds it)"
        ))
    })
}

impl Brigade {
    /// Starts the artifact server with the executor registered.
    pub async fn start(config: BrigadeConfig) -> Result<Self, PipelineError> {
        Self::start_with_server(config, |builder| builder).await
    }

    /// As [`start`](Self::start), with `customize` applied to the server's builder first (the
    /// meta scheduler adds its REST API and UI routes there).
    pub async fn start_with_server(
        config: BrigadeConfig,
        customize: impl FnOnce(mesos_sdk::server::ServerBuilder) -> mesos_sdk::server::ServerBuilder,
    ) -> Result<Self, PipelineError> {
        let path = match config.executor_path {
            Some(path) => path,
            None => default_executor_path()?,
        };
        let mut builder = Server::builder().bind(config.bind);
        if let Some(host) = &config.advertised_host {
            builder = builder.advertised_host(host.clone());
        }
        let server = customize(builder)
            .start()
            .await
            .map_err(|e| PipelineError::Server(e.to_string()))?;
        server
            .artifacts()
            .register_file(EXECUTOR_ARTIFACT, &path)
            .await
            .map_err(|e| PipelineError::Server(format!("{}: {e}", path.display())))?;
        let uri = server
            .artifacts()
            .uri(EXECUTOR_ARTIFACT)
            .map_err(|e| PipelineError::Server(e.to_string()))?
            .executable(true)
            .cache(true)
            .build();
        let mut template = config.scheduler;
        template.executor_uri = uri;
        tracing::info!(url = %server.base_url(), executor = %path.display(), "artifact server up");
        Ok(Self {
            server,
            template,
            schedulers: Mutex::new(BTreeMap::new()),
        })
    }

    /// The artifact server's base URL.
    pub fn server_url(&self) -> &str {
        self.server.base_url()
    }

    /// Starts the process scheduler of `processor`.
    pub async fn add(&self, processor: Processor) -> Result<(), PipelineError> {
        let mut schedulers = self.schedulers.lock().await;
        if schedulers.contains_key(processor.name()) {
            return Err(PipelineError::AlreadyRunning(processor.name().to_string()));
        }
        let name = processor.name().to_string();
        let scheduler = ProcessScheduler::start(processor, self.template.clone()).await?;
        schedulers.insert(name, scheduler);
        Ok(())
    }

    /// Stops the process scheduler of `name` (its tasks finish; a later start recovers them).
    pub async fn remove(&self, name: &str) -> Result<(), PipelineError> {
        let scheduler = self
            .schedulers
            .lock()
            .await
            .remove(name)
            .ok_or_else(|| PipelineError::UnknownProcessor(name.to_string()))?;
        scheduler.stop().await
    }

    /// Drains the process scheduler of `name` (no new message; those consumed get their
    /// records), then stops it; see [`ProcessScheduler::drain_and_stop`].
    /// Returns its final counters beside the outcome.
    pub async fn drain(
        &self,
        name: &str,
        timeout: std::time::Duration,
    ) -> Result<(CountersSnapshot, Result<(), PipelineError>), PipelineError> {
        let scheduler = self
            .schedulers
            .lock()
            .await
            .remove(name)
            .ok_or_else(|| PipelineError::UnknownProcessor(name.to_string()))?;
        Ok(scheduler.drain_and_stop(timeout).await)
    }

    /// Whether the process scheduler of `name` runs (`None`: there is none; `Some(false)`: its
    /// event loop ended, stopped or failed for good).
    pub async fn is_running(&self, name: &str) -> Option<bool> {
        self.schedulers
            .lock()
            .await
            .get(name)
            .map(|s| !s.is_finished())
    }

    /// The persisted framework id of the processor `name`, if it subscribed once.
    pub async fn framework_id(&self, name: &str) -> Result<Option<String>, PipelineError> {
        super::record::Records::new(self.template.store.clone(), name)
            .framework_id()
            .await
    }

    /// The server (artifacts, metrics, the routes given to
    /// [`start_with_server`](Self::start_with_server)).
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// The running processors' names.
    pub async fn processors(&self) -> Vec<String> {
        self.schedulers.lock().await.keys().cloned().collect()
    }

    /// Every processor's counters.
    pub async fn counters(&self) -> BTreeMap<String, CountersSnapshot> {
        self.schedulers
            .lock()
            .await
            .iter()
            .map(|(name, s)| (name.clone(), s.counters()))
            .collect()
    }

    /// The task latency log of every process scheduler, by processor name.
    pub async fn latencies(&self) -> BTreeMap<String, LatencySnapshot> {
        self.schedulers
            .lock()
            .await
            .iter()
            .map(|(name, s)| (name.clone(), s.latency()))
            .collect()
    }

    /// The placer's reason for a message left unplaced, by processor name (only processors
    /// with one).
    pub async fn unplaced(&self) -> BTreeMap<String, String> {
        self.schedulers
            .lock()
            .await
            .iter()
            .filter_map(|(name, s)| s.unplaced().map(|r| (name.clone(), r)))
            .collect()
    }

    /// Stops every process scheduler and the artifact server.
    pub async fn shutdown(self) {
        let schedulers = std::mem::take(&mut *self.schedulers.lock().await);
        for (name, scheduler) in schedulers {
            if let Err(e) = scheduler.stop().await {
                tracing::warn!(processor = %name, error = %e, "process scheduler ended with an error");
            }
        }
        self.server.shutdown().await;
    }
}
