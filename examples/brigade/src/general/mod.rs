//! Brigade General, the meta scheduler: reads processors from a [`ProcessorSource`] (files
//! watched with `notify`, or a store prefix watched through the store; polling as the
//! fallback either way) and keeps one process scheduler running per valid, not stopped
//! processor. It reacts without restart: a new processor starts; a changed one drains (no new
//! message; those in flight get their records) and restarts with the new configuration; a
//! removed or stopped one drains and stops; an invalid document is reported (status and log)
//! and ignored while the others run (a configuration that ran before keeps running).
//!
//! - [`source`]: the source contract, the document format and the file/directory source.
//! - [`store_source`]: processors under a store (etcd) prefix.
//! - [`status`]: what is reported per processor.
//! - [`reconcile`]: the loop that makes the running schedulers match the source.
//! - [`metrics`]: per-processor Prometheus metrics.
//! - [`lag`]: consumer lag of a processor's group.
//! - [`ha`]: leader election between instances (only the leader runs process schedulers).
//! - [`fenced`]: the store view whose writes hold only while this instance leads.
//! - [`watch`]: the file watcher.

pub mod fenced;
pub mod ha;
pub mod lag;
pub mod metrics;
pub mod reconcile;
pub mod source;
pub mod status;
pub mod store_source;
pub mod watch;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::{Notify, RwLock};

pub use fenced::TermStore;
pub use reconcile::{General, GeneralConfig};
pub use source::{Entry, FileSource, ProcessorSource, SourceError};
pub use status::{Counters, FieldProblem, ProcessorStatus, RecentError, State};
pub use store_source::StoreSource;

use crate::pipeline::Brigade;
use crate::processor::Processor;

/// What the reconcile loop knows about one processor (the REST API reads it).
#[derive(Debug, Clone)]
pub struct Known {
    /// The source entry (`None` once removed, while it drains).
    pub entry: Option<Entry>,
    /// The configuration its process scheduler runs with, if one runs.
    pub running: Option<Processor>,
    /// Its state.
    pub state: State,
    /// Counters of earlier incarnations of its process scheduler in this process.
    pub base: Counters,
}

/// The state the meta scheduler shares with the REST API: the source (the API writes there),
/// what the reconcile loop knows, recent errors and a wake-up for the loop.
#[derive(Debug)]
pub struct Shared {
    /// Where processors live.
    pub source: Arc<dyn ProcessorSource>,
    /// Wakes the reconcile loop (after a write, or a change seen by a watch).
    pub wake: Arc<Notify>,
    /// Per processor, what the reconcile loop knows.
    pub known: RwLock<BTreeMap<String, Known>>,
    /// Per processor, its recent errors.
    pub recent: std::sync::Mutex<HashMap<String, VecDeque<RecentError>>>,
    /// The last error of the source itself (unreadable directory, store down).
    pub source_error: std::sync::Mutex<Option<String>>,
    /// The process schedulers, once started (weak: the meta scheduler owns them).
    pub brigade: OnceLock<std::sync::Weak<Brigade>>,
    /// The Mesos master, for `/ready`.
    pub master: String,
    /// The Kafka bootstrap servers, for `/ready`.
    pub brokers: String,
    /// Whether this instance leads (always, without leader election).
    pub leader: std::sync::atomic::AtomicBool,
    /// The leader's address, when known (standbys proxy API requests there).
    pub leader_url: std::sync::Mutex<Option<String>>,
}

impl Shared {
    /// Shared state over `source`.
    pub fn new(source: Arc<dyn ProcessorSource>, master: String, brokers: String) -> Self {
        Self {
            source,
            wake: Arc::new(Notify::new()),
            known: RwLock::new(BTreeMap::new()),
            recent: std::sync::Mutex::new(HashMap::new()),
            source_error: std::sync::Mutex::new(None),
            brigade: OnceLock::new(),
            master,
            brokers,
            leader: std::sync::atomic::AtomicBool::new(true),
            leader_url: std::sync::Mutex::new(None),
        }
    }

    /// Records a recent error of `processor`.
    /// The same error again (a start retried every round) only refreshes its time.
    pub fn record_error(&self, processor: &str, error: RecentError) {
        if let Ok(mut recent) = self.recent.lock() {
            let list = recent.entry(processor.to_string()).or_default();
            match list.back_mut() {
                Some(last) if last.message == error.message && last.source == error.source => {
                    last.at_ms = error.at_ms;
                }
                _ => status::push_recent(list, error),
            }
        }
    }

    /// The process schedulers, while they run.
    pub fn brigade(&self) -> Option<Arc<Brigade>> {
        self.brigade.get().and_then(std::sync::Weak::upgrade)
    }

    /// The status of every processor known, by name.
    pub async fn statuses(&self) -> BTreeMap<String, ProcessorStatus> {
        let known = self.known.read().await.clone();
        let brigade = self.brigade();
        let (counters, latencies, unplaced) = match &brigade {
            Some(brigade) => (
                brigade.counters().await,
                brigade.latencies().await,
                brigade.unplaced().await,
            ),
            None => (BTreeMap::new(), BTreeMap::new(), BTreeMap::new()),
        };
        let mut out = BTreeMap::new();
        for (name, k) in known {
            let mut total = k.base;
            if let Some(c) = counters.get(&name) {
                total.add(c);
            }
            let framework_id = match &brigade {
                Some(brigade) => brigade.framework_id(&name).await.ok().flatten(),
                None => None,
            };
            let (origin, stopped, validation_errors, config) = match &k.entry {
                Some(entry) => {
                    let errors = match &entry.processor {
                        Ok(_) => Vec::new(),
                        Err(e) => e
                            .errors
                            .iter()
                            .map(|e| FieldProblem {
                                field: e.field.clone(),
                                message: e.message.clone(),
                            })
                            .collect(),
                    };
                    let config = entry.processor.as_ref().ok().or(k.running.as_ref());
                    (entry.origin.clone(), entry.stopped, errors, config.cloned())
                }
                None => (String::new(), false, Vec::new(), k.running.clone()),
            };
            let recent_errors = self
                .recent
                .lock()
                .map(|r| {
                    r.get(&name)
                        .map(|l| l.iter().cloned().collect())
                        .unwrap_or_default()
                })
                .unwrap_or_default();
            let latency = latencies.get(&name).and_then(|l| l.summary());
            let why_unplaced = unplaced.get(&name).cloned();
            out.insert(
                name.clone(),
                ProcessorStatus {
                    name,
                    state: k.state,
                    stopped,
                    origin,
                    framework_id,
                    counters: total,
                    config: config.map(|p| source::document(&p, false)),
                    validation_errors,
                    recent_errors,
                    latency,
                    unplaced: why_unplaced,
                },
            );
        }
        out
    }
}

/// How long a changed or removed processor may take to drain by default.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the source is read by default even when no watch reported a change.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);
