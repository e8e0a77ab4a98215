//! The reconcile loop of the meta scheduler: on every wake-up (a watch saw a change, the REST
//! API wrote, or the poll interval passed) it reads the source and makes the running process
//! schedulers match it: start the new, drain and restart the changed, drain and stop the
//! removed and stopped, report the invalid, restart the failed.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mesos_sdk::server::ServerBuilder;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::source::{Entry, ProcessorSource};
use super::status::{RecentError, State};
use super::store_source::StoreSource;
use super::{Known, Shared};
use crate::pipeline::{Brigade, BrigadeConfig, PipelineError, ResultKind};
use crate::processor::Processor;

/// Settings of the meta scheduler.
#[derive(Debug)]
pub struct GeneralConfig {
    /// The process schedulers' settings and the server's address.
    pub brigade: BrigadeConfig,
    /// Where processors live.
    pub source: Arc<dyn ProcessorSource>,
    /// A file or directory to watch for changes (the file source's path).
    pub watch_path: Option<PathBuf>,
    /// A store source to watch for changes.
    pub watch_store: Option<StoreSource>,
    /// How often the source is read without a change reported.
    pub poll_interval: Duration,
    /// How long a changed, stopped or removed processor may take to drain.
    pub drain_timeout: Duration,
    /// Start as a standby (no process scheduler runs until [`Shared::leader`] is set, see
    /// [`super::ha`]).
    pub standby: bool,
}

impl GeneralConfig {
    /// Settings with the default poll interval and drain timeout, watching nothing.
    pub fn new(brigade: BrigadeConfig, source: Arc<dyn ProcessorSource>) -> Self {
        Self {
            brigade,
            source,
            watch_path: None,
            watch_store: None,
            poll_interval: super::DEFAULT_POLL_INTERVAL,
            drain_timeout: super::DEFAULT_DRAIN_TIMEOUT,
            standby: false,
        }
    }
}

/// A running meta scheduler; see the module documentation.
#[derive(Debug)]
pub struct General {
    shared: Arc<Shared>,
    brigade: Arc<Brigade>,
    stop: watch::Sender<bool>,
    join: JoinHandle<()>,
    watchers: Vec<JoinHandle<()>>,
    _file_watcher: Option<notify::RecommendedWatcher>,
}

impl General {
    /// Starts the process schedulers' server (with the routes `routes` makes from the shared
    /// state, e.g. the REST API) and the reconcile loop.
    pub async fn start(
        config: GeneralConfig,
        routes: impl FnOnce(Arc<Shared>) -> Option<axum::Router>,
    ) -> Result<Self, PipelineError> {
        let mut brigade_config = config.brigade;
        let shared = Arc::new(Shared::new(
            config.source.clone(),
            brigade_config.scheduler.master.clone(),
            brigade_config.scheduler.kafka.brokers.clone(),
        ));
        if config.standby {
            shared
                .leader
                .store(false, std::sync::atomic::Ordering::SeqCst);
        }
        let (results_tx, mut results_rx) = tokio::sync::mpsc::unbounded_channel();
        let forward = brigade_config.scheduler.results.replace(results_tx);
        let router = routes(shared.clone());
        let brigade = Arc::new(
            Brigade::start_with_server(
                brigade_config,
                move |builder: ServerBuilder| match router {
                    Some(router) => builder.routes(router),
                    None => builder,
                },
            )
            .await?,
        );
        let _ = shared.brigade.set(Arc::downgrade(&brigade));
        let mut watchers = Vec::new();
        let errors_shared = shared.clone();
        watchers.push(tokio::spawn(async move {
            while let Some(event) = results_rx.recv().await {
                if let ResultKind::Error(reason) = &event.kind {
                    errors_shared.record_error(
                        &event.processor,
                        RecentError::now(
                            reason.clone(),
                            Some(format!(
                                "{}/{}@{}",
                                event.topic, event.partition, event.offset
                            )),
                        ),
                    );
                }
                if let Some(forward) = &forward {
                    let _ = forward.send(event);
                }
            }
        }));
        let metrics = super::metrics::ProcessorMetrics::register(&brigade.server().metrics());
        watchers.push(metrics.sample(
            shared.clone(),
            config.poll_interval.min(Duration::from_secs(1)),
        ));
        if let Some(store) = &config.watch_store {
            watchers.push(store.watch(shared.wake.clone()));
        }
        let file_watcher = config
            .watch_path
            .as_deref()
            .and_then(|p| super::watch::watch_path(p, shared.wake.clone()));
        let (stop, stop_rx) = watch::channel(false);
        let looper = Loop {
            shared: shared.clone(),
            brigade: brigade.clone(),
            poll: config.poll_interval,
            drain_timeout: config.drain_timeout,
            known: BTreeMap::new(),
        };
        let join = tokio::spawn(looper.run(stop_rx));
        Ok(Self {
            shared,
            brigade,
            stop,
            join,
            watchers,
            _file_watcher: file_watcher,
        })
    }

    /// The state shared with the REST API.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The server's base URL (the REST API, the UI, `/metrics`, the executor artifact).
    pub fn url(&self) -> &str {
        self.brigade.server_url()
    }

    /// The process schedulers.
    pub fn brigade(&self) -> &Arc<Brigade> {
        &self.brigade
    }

    /// Stops the reconcile loop, every process scheduler and the server.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.join.await;
        for watcher in self.watchers {
            watcher.abort();
        }
        drop(self.shared);
        let mut brigade = self.brigade;
        // A request in flight may hold the process schedulers for a moment.
        for _ in 0..100 {
            match Arc::try_unwrap(brigade) {
                Ok(owned) => return owned.shutdown().await,
                Err(shared) => brigade = shared,
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tracing::warn!("process schedulers still in use; stopping them without the server");
        for name in brigade.processors().await {
            let _ = brigade.remove(&name).await;
        }
    }
}

/// What the source wants for one processor (nothing runs on a standby).
fn desired(leading: bool, entry: Option<&Entry>, running: Option<&Processor>) -> Option<Processor> {
    if !leading {
        return None;
    }
    match entry {
        None => None,
        Some(entry) if entry.stopped => None,
        Some(entry) => match &entry.processor {
            Ok(p) => Some(p.clone()),
            // An invalid document leaves what runs running.
            Err(_) => running.cloned(),
        },
    }
}

struct Loop {
    shared: Arc<Shared>,
    brigade: Arc<Brigade>,
    poll: Duration,
    drain_timeout: Duration,
    known: BTreeMap<String, Known>,
}

impl Loop {
    async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let wake = self.shared.wake.clone();
        loop {
            self.round().await;
            tokio::select! {
                _ = stop.changed() => break,
                _ = wake.notified() => {
                    // Let a burst of file events settle into one round.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                _ = tokio::time::sleep(self.poll) => {}
            }
            if *stop.borrow() {
                break;
            }
        }
    }

    async fn publish(&self) {
        *self.shared.known.write().await = self.known.clone();
    }

    async fn round(&mut self) {
        let entries = match self.shared.source.list().await {
            Ok(entries) => {
                if let Ok(mut e) = self.shared.source_error.lock() {
                    *e = None;
                }
                entries
            }
            Err(e) => {
                tracing::warn!(source = %self.shared.source.describe(), error = %e, "cannot read processors");
                if let Ok(mut slot) = self.shared.source_error.lock() {
                    *slot = Some(e.to_string());
                }
                return;
            }
        };
        // Report invalid documents (once per change).
        for entry in entries.values() {
            if let Err(errors) = &entry.processor {
                let before = self.known.get(&entry.name).and_then(|k| k.entry.as_ref());
                if before != Some(entry) {
                    tracing::warn!(processor = %entry.name, origin = %entry.origin, %errors, "invalid processor ignored");
                    self.shared
                        .record_error(&entry.name, RecentError::now(errors.to_string(), None));
                }
            }
        }
        let names: Vec<String> = self.known.keys().chain(entries.keys()).cloned().collect();
        for name in names {
            let entry = entries.get(&name);
            let known = self.known.entry(name.clone()).or_insert_with(|| Known {
                entry: None,
                running: None,
                state: State::Starting,
                base: Default::default(),
            });
            known.entry = entry.cloned();
            // A process scheduler whose loop ended is restarted.
            if known.running.is_some() && self.brigade.is_running(&name).await != Some(true) {
                let error = match self.brigade.remove(&name).await {
                    Err(e) => e.to_string(),
                    Ok(()) => "process scheduler ended".to_string(),
                };
                tracing::warn!(processor = %name, %error, "process scheduler ended; restarting");
                self.shared
                    .record_error(&name, RecentError::now(error, None));
                if let Some(k) = self.known.get_mut(&name) {
                    k.running = None;
                    k.state = State::Failed;
                }
            }
            let Some(known) = self.known.get(&name) else {
                continue;
            };
            let leading = self.shared.leader.load(std::sync::atomic::Ordering::SeqCst);
            let want = desired(leading, entry, known.running.as_ref());
            if known.running.is_some() && known.running != want {
                self.drain(&name).await;
            }
            let Some(known) = self.known.get(&name) else {
                continue;
            };
            if known.running.is_none() {
                if let Some(processor) = want {
                    self.start(&name, processor).await;
                }
            }
            let Some(known) = self.known.get_mut(&name) else {
                continue;
            };
            known.state = match (&known.entry, &known.running) {
                (None, None) => {
                    self.known.remove(&name);
                    continue;
                }
                (Some(e), _) if e.processor.is_err() => State::Invalid,
                (Some(e), None) if e.stopped => State::Stopped,
                (_, Some(_)) => State::Running,
                (Some(_), None)
                    if !self.shared.leader.load(std::sync::atomic::Ordering::SeqCst) =>
                {
                    State::Standby
                }
                (_, None) => State::Failed,
            };
        }
        self.publish().await;
    }

    async fn drain(&mut self, name: &str) {
        if let Some(k) = self.known.get_mut(name) {
            k.state = State::Draining;
        }
        self.publish().await;
        tracing::info!(processor = %name, "draining");
        match self.brigade.drain(name, self.drain_timeout).await {
            Ok((counters, result)) => {
                if let Some(k) = self.known.get_mut(name) {
                    k.base.add(&counters);
                    // In flight is a gauge: nothing is in flight after a stop.
                    k.base.in_flight = 0;
                }
                if let Err(e) = result {
                    tracing::warn!(processor = %name, error = %e, "process scheduler ended with an error");
                    self.shared
                        .record_error(name, RecentError::now(e.to_string(), None));
                }
            }
            Err(e) => tracing::debug!(processor = %name, error = %e, "nothing to drain"),
        }
        if let Some(k) = self.known.get_mut(name) {
            k.running = None;
        }
        tracing::info!(processor = %name, "drained and stopped");
    }

    async fn start(&mut self, name: &str, processor: Processor) {
        match self.brigade.add(processor.clone()).await {
            Ok(()) => {
                tracing::info!(processor = %name, "process scheduler started");
                if let Some(k) = self.known.get_mut(name) {
                    k.running = Some(processor);
                }
            }
            Err(e) => {
                tracing::warn!(processor = %name, error = %e, "process scheduler did not start");
                self.shared
                    .record_error(name, RecentError::now(e.to_string(), None));
            }
        }
    }
}
