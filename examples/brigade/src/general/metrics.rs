//! Per-processor Prometheus metrics, registered in the SDK server's registry (served at
//! `/metrics` beside the SDK's own): messages consumed, records produced and failed, retries,
//! duplicates (counters), messages in flight and the processor's state (gauges), sampled
//! from the meta scheduler's statuses, and the task latency histogram
//! (`brigade_task_latency_seconds`), fed from the process schedulers' latency logs: every
//! sample adds the tasks measured since the last one (from the log's window of recent
//! samples, so a burst larger than the window between two samples loses the oldest).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use mesos_sdk::server::Metrics;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

use super::lag::LagReader;
use super::{Counters, Shared, State};

/// How often consumer lag is read.
const LAG_INTERVAL: Duration = Duration::from_secs(5);

/// The label of per-processor metrics.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProcessorLabel {
    /// The processor's name.
    pub processor: String,
}

/// The labels of the state gauge.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    /// The processor's name.
    pub processor: String,
    /// The state.
    pub state: String,
}

/// A latency histogram: 5 ms to about 80 s, doubling.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}

/// The registered metric families.
#[derive(Debug, Clone)]
pub struct ProcessorMetrics {
    latency: Family<ProcessorLabel, Histogram, fn() -> Histogram>,
    consumed: Family<ProcessorLabel, Counter>,
    produced: Family<ProcessorLabel, Counter>,
    failed: Family<ProcessorLabel, Counter>,
    retries: Family<ProcessorLabel, Counter>,
    duplicated: Family<ProcessorLabel, Counter>,
    in_flight: Family<ProcessorLabel, Gauge>,
    lag: Family<ProcessorLabel, Gauge>,
    state: Family<StateLabel, Gauge>,
}

impl ProcessorMetrics {
    /// Registers the families in `metrics`.
    pub fn register(metrics: &Metrics) -> Self {
        let m = Self {
            latency: Family::new_with_constructor(latency_histogram),
            consumed: Family::default(),
            produced: Family::default(),
            failed: Family::default(),
            retries: Family::default(),
            duplicated: Family::default(),
            in_flight: Family::default(),
            lag: Family::default(),
            state: Family::default(),
        };
        metrics.register(
            "brigade_task_latency_seconds",
            "Task latency per processor, from launch to the result record acknowledged by Kafka",
            m.latency.clone(),
        );
        metrics.register(
            "brigade_messages_consumed",
            "Input messages received from Kafka",
            m.consumed.clone(),
        );
        metrics.register(
            "brigade_records_produced",
            "Output records acknowledged by Kafka",
            m.produced.clone(),
        );
        metrics.register(
            "brigade_records_failed",
            "Error records acknowledged by Kafka",
            m.failed.clone(),
        );
        metrics.register(
            "brigade_retries",
            "Failed attempts run again",
            m.retries.clone(),
        );
        metrics.register(
            "brigade_duplicates",
            "Records possibly produced twice (around a restart)",
            m.duplicated.clone(),
        );
        metrics.register(
            "brigade_messages_in_flight",
            "Messages consumed and not yet completed",
            m.in_flight.clone(),
        );
        metrics.register(
            "brigade_consumer_lag",
            "Input messages not yet committed by the processor's consumer group",
            m.lag.clone(),
        );
        metrics.register(
            "brigade_processor_state",
            "1 for the processor's current state",
            m.state.clone(),
        );
        m
    }

    /// Reads the consumer lag of every running processor.
    async fn sample_lag(&self, shared: &Shared, readers: &mut HashMap<String, Arc<LagReader>>) {
        let statuses = shared.statuses().await;
        readers.retain(|name, _| statuses.contains_key(name));
        for (name, status) in statuses {
            if status.state != State::Running {
                continue;
            }
            let Some(topic) = status.config.as_ref().and_then(|c| c["input"].as_str()) else {
                continue;
            };
            let reader = match readers.get(&name) {
                Some(reader) => reader.clone(),
                None => match LagReader::new(&shared.brokers, &format!("brigade-{name}"), topic) {
                    Ok(reader) => {
                        let reader = Arc::new(reader);
                        readers.insert(name.clone(), reader.clone());
                        reader
                    }
                    Err(e) => {
                        tracing::debug!(processor = %name, error = %e, "no lag reader");
                        continue;
                    }
                },
            };
            match tokio::task::spawn_blocking(move || reader.lag()).await {
                Ok(Ok(lag)) => {
                    self.lag
                        .get_or_create(&ProcessorLabel { processor: name })
                        .set(lag);
                }
                Ok(Err(e)) => tracing::debug!(processor = %name, error = %e, "lag"),
                Err(e) => tracing::debug!(processor = %name, error = %e, "lag task"),
            }
        }
    }

    /// Adds the tasks measured since the last call to the latency histograms; `seen` holds
    /// each processor's count at the last call.
    async fn sample_latency(&self, shared: &Shared, seen: &mut HashMap<String, u64>) {
        let Some(brigade) = shared.brigade() else {
            return;
        };
        for (name, log) in brigade.latencies().await {
            let before = seen.entry(name.clone()).or_default();
            // A new incarnation of the process scheduler starts counting from zero.
            let new = if log.count < *before {
                log.count
            } else {
                log.count - *before
            };
            *before = log.count;
            let histogram = self
                .latency
                .get_or_create(&ProcessorLabel { processor: name });
            let take = usize::try_from(new)
                .unwrap_or(usize::MAX)
                .min(log.recent.len());
            for seconds in &log.recent[log.recent.len() - take..] {
                histogram.observe(*seconds);
            }
        }
    }

    /// Samples `shared` every `interval` until the task is aborted.
    pub fn sample(self, shared: Arc<Shared>, interval: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut last: HashMap<String, Counters> = HashMap::new();
            let mut states: HashMap<String, String> = HashMap::new();
            let mut lag_readers: HashMap<String, Arc<LagReader>> = HashMap::new();
            let mut last_lag = std::time::Instant::now() - LAG_INTERVAL;
            let mut latency_seen: HashMap<String, u64> = HashMap::new();
            loop {
                self.sample_latency(&shared, &mut latency_seen).await;
                if last_lag.elapsed() >= LAG_INTERVAL {
                    last_lag = std::time::Instant::now();
                    self.sample_lag(&shared, &mut lag_readers).await;
                }
                for (name, status) in shared.statuses().await {
                    let label = ProcessorLabel {
                        processor: name.clone(),
                    };
                    let before = last.entry(name.clone()).or_default();
                    let c = status.counters;
                    // Every series exists from the first sample on (an increment of 0).
                    let bump = |family: &Family<ProcessorLabel, Counter>, now: u64, was: u64| {
                        family.get_or_create(&label).inc_by(now.saturating_sub(was));
                    };
                    bump(&self.consumed, c.consumed, before.consumed);
                    bump(&self.produced, c.produced, before.produced);
                    bump(&self.failed, c.failed, before.failed);
                    bump(&self.retries, c.retries, before.retries);
                    bump(&self.duplicated, c.duplicated, before.duplicated);
                    self.in_flight.get_or_create(&label).set(c.in_flight as i64);
                    *before = Counters {
                        consumed: before.consumed.max(c.consumed),
                        produced: before.produced.max(c.produced),
                        failed: before.failed.max(c.failed),
                        retries: before.retries.max(c.retries),
                        duplicated: before.duplicated.max(c.duplicated),
                        ..c
                    };
                    let state = status.state.as_str().to_string();
                    if let Some(old) = states.insert(name.clone(), state.clone()) {
                        if old != state {
                            self.state
                                .get_or_create(&StateLabel {
                                    processor: name.clone(),
                                    state: old,
                                })
                                .set(0);
                        }
                    }
                    self.state
                        .get_or_create(&StateLabel {
                            processor: name,
                            state,
                        })
                        .set(1);
                }
                tokio::time::sleep(interval).await;
            }
        })
    }
}
