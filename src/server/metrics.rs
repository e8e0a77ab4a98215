//! The server's metrics registry ([`Metrics`], a `prometheus-client` registry the framework adds
//! its own metrics to) and the `/metrics` encoding.
//!
//! `prometheus-client` writes the OpenMetrics text format, which Prometheus scrapes natively; the
//! route answers with its content type, `application/openmetrics-text; version=1.0.0`.
//! The server itself counts artifact requests by artifact and status
//! (`mesos_sdk_artifact_requests_total`) and artifact bytes sent
//! (`mesos_sdk_artifact_bytes_sent_total`); requests for unknown names count under the
//! artifact label `unknown`, so a scanner cannot grow the label set.

use std::sync::{Arc, Mutex, MutexGuard};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::{Metric, Registry};

/// The content type of `/metrics`.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Labels of the artifact request counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ArtifactLabels {
    pub(crate) artifact: String,
    pub(crate) status: u16,
}

/// Labels of the artifact bytes counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ArtifactName {
    pub(crate) artifact: String,
}

/// A cheap-to-clone handle on the server's metrics registry.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
    pub(crate) artifact_requests: Family<ArtifactLabels, Counter>,
    pub(crate) artifact_bytes: Family<ArtifactName, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with the server's own metrics.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let artifact_requests = Family::<ArtifactLabels, Counter>::default();
        let artifact_bytes = Family::<ArtifactName, Counter>::default();
        registry.register(
            "mesos_sdk_artifact_requests",
            "Artifact requests by artifact and response status",
            artifact_requests.clone(),
        );
        registry.register(
            "mesos_sdk_artifact_bytes_sent",
            "Artifact body bytes sent",
            artifact_bytes.clone(),
        );
        Self {
            registry: Arc::new(Mutex::new(registry)),
            artifact_requests,
            artifact_bytes,
        }
    }

    /// Registers a metric of the framework's (see `prometheus_client::registry::Registry::register`).
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        self.lock().register(name, help, metric);
    }

    /// Runs `f` with the registry locked, for anything [`register`](Self::register) does not cover
    /// (sub-registries, units, collectors).
    pub fn with_registry<R>(&self, f: impl FnOnce(&mut Registry) -> R) -> R {
        f(&mut self.lock())
    }

    /// The registry in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.lock());
        text
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
