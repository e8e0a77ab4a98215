//! The framework's metrics: calls by type and outcome, events by type, offers received / used /
//! declined, placement failures by reason, launches, status updates by state and reason,
//! reconciliation rounds and their length, subscription state and reconnects.
//!
//! With the feature `server` they are `prometheus-client` metrics registered in the server's
//! [`Metrics`](crate::server::Metrics) registry (served at `/metrics`); without it, or when the
//! framework runs without a server, every method is a no-op. The label values come from closed
//! sets (call and event types, Mesos states and reasons, placement failure kinds), so no
//! outside input grows the label sets.

#[cfg(feature = "server")]
use std::sync::Arc;
use std::time::Duration;

/// The framework's metrics handle (cheap to clone).
#[derive(Debug, Clone, Default)]
pub(crate) struct Telemetry {
    #[cfg(feature = "server")]
    inner: Option<Arc<imp::Inner>>,
}

/// What happened to offers.
#[derive(Debug, Clone, Copy)]
pub(crate) enum OfferOutcome {
    Received,
    Used,
    Declined,
}

impl OfferOutcome {
    #[cfg_attr(not(feature = "server"), allow(dead_code))]
    fn label(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::Used => "used",
            Self::Declined => "declined",
        }
    }
}

impl Telemetry {
    /// Registers the framework's metrics in `metrics`.
    #[cfg(feature = "server")]
    pub(crate) fn register(metrics: &crate::server::Metrics) -> Self {
        Self {
            inner: Some(Arc::new(imp::Inner::register(metrics))),
        }
    }

    /// One scheduler call of `kind` (`accept`, `kill`, ...) and whether it succeeded.
    pub(crate) fn call(&self, kind: &str, ok: bool) {
        tracing::trace!(call = kind, ok, "call");
        #[cfg(feature = "server")]
        if let Some(inner) = &self.inner {
            inner.call(kind, ok);
        }
    }

    /// One event of `kind`.
    pub(crate) fn event(&self, _kind: &'static str) {
        #[cfg(feature = "server")]
        if let Some(inner) = &self.inner {
            inner.event(_kind);
        }
    }

    /// `_n` offers with this outcome.
    pub(crate) fn offers(&self, _outcome: OfferOutcome, _n: usize) {
        #[cfg(feature = "server")]
        if let Some(inner) = &self.inner {
            inner.offers(_outcome.label(), _n);
        }
    }

    /// An instance left unplaced in an offer round, for `_reason` (the placer's short label).
    pub(crate) fn placement_failure(&self, _reason: &str) {
        #[cfg(feature = "server")]
        if let Some(inner) = &self.inner {
            inner.placement_failure(_reason);
        }
    }

    /// `_n` tasks launched.
    pub(crate) fn launches(&self, _n: usize) {
        #[cfg(feature = "server")]
        if let Some(inner) = &self.inner {
            inner.launches(_n);
        }
    }

    /// A status update in `_state` with `_reason` (Mesos names; `none` without a reason).
    pub(crate) fn status_update(&self, _state: &str, _reason: &str) {
        #[cfg(feature = "server")]
        if let Some(inner) = &self.inner {
            inner.status_update(_state, _reason);
        }
    }

    /// A reconciliation round started.
    pub(crate) fn reconcile_started(&self) {
        #[cfg(feature = "server")]
        if let Some(inner) = &self.inner {
            inner.reconcile_started();
        }
    }

    /// A reconciliation round completed after `_length`.
    pub(crate) fn reconcile_completed(&self, _length: Duration) {
        #[cfg(feature = "server")]
        if let Some(inner) = &self.inner {
            inner.reconcile_completed(_length);
        }
    }

    /// Subscribed (`true`) or not; `_reconnect` when a subscription follows an earlier one.
    pub(crate) fn subscribed(&self, _subscribed: bool, _reconnect: bool) {
        #[cfg(feature = "server")]
        if let Some(inner) = &self.inner {
            inner.subscribed(_subscribed, _reconnect);
        }
    }
}

#[cfg(feature = "server")]
mod imp {
    use std::time::Duration;

    use prometheus_client::encoding::EncodeLabelSet;
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::family::Family;
    use prometheus_client::metrics::gauge::Gauge;
    use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

    use crate::server::Metrics;

    #[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
    struct CallLabels {
        r#type: String,
        outcome: &'static str,
    }

    #[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
    struct TypeLabel {
        r#type: &'static str,
    }

    #[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
    struct OutcomeLabel {
        outcome: &'static str,
    }

    #[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
    struct ReasonLabel {
        reason: String,
    }

    #[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
    struct UpdateLabels {
        state: String,
        reason: String,
    }

    #[derive(Debug)]
    pub(super) struct Inner {
        calls: Family<CallLabels, Counter>,
        events: Family<TypeLabel, Counter>,
        offers: Family<OutcomeLabel, Counter>,
        placement_failures: Family<ReasonLabel, Counter>,
        launches: Counter,
        updates: Family<UpdateLabels, Counter>,
        rounds: Counter,
        round_seconds: Histogram,
        subscribed: Gauge,
        reconnects: Counter,
    }

    impl Inner {
        pub(super) fn register(metrics: &Metrics) -> Self {
            let inner = Self {
                calls: Family::default(),
                events: Family::default(),
                offers: Family::default(),
                placement_failures: Family::default(),
                launches: Counter::default(),
                updates: Family::default(),
                rounds: Counter::default(),
                round_seconds: Histogram::new(exponential_buckets(0.01, 2.0, 14)),
                subscribed: Gauge::default(),
                reconnects: Counter::default(),
            };
            metrics.register(
                "mesos_sdk_calls",
                "Scheduler calls by type and outcome",
                inner.calls.clone(),
            );
            metrics.register(
                "mesos_sdk_events",
                "Scheduler events by type",
                inner.events.clone(),
            );
            metrics.register(
                "mesos_sdk_offers",
                "Offers received, used and declined",
                inner.offers.clone(),
            );
            metrics.register(
                "mesos_sdk_placement_failures",
                "Instances left unplaced in an offer round, by reason",
                inner.placement_failures.clone(),
            );
            metrics.register(
                "mesos_sdk_launches",
                "Tasks launched",
                inner.launches.clone(),
            );
            metrics.register(
                "mesos_sdk_status_updates",
                "Task status updates by state and reason",
                inner.updates.clone(),
            );
            metrics.register(
                "mesos_sdk_reconciliation_rounds",
                "Explicit reconciliation rounds started",
                inner.rounds.clone(),
            );
            metrics.register(
                "mesos_sdk_reconciliation_round_seconds",
                "Length of completed explicit reconciliation rounds",
                inner.round_seconds.clone(),
            );
            metrics.register(
                "mesos_sdk_subscribed",
                "1 while subscribed to the master",
                inner.subscribed.clone(),
            );
            metrics.register(
                "mesos_sdk_reconnects",
                "Subscriptions after the first one",
                inner.reconnects.clone(),
            );
            inner
        }

        pub(super) fn call(&self, kind: &str, ok: bool) {
            self.calls
                .get_or_create(&CallLabels {
                    r#type: kind.to_owned(),
                    outcome: if ok { "ok" } else { "error" },
                })
                .inc();
        }

        pub(super) fn event(&self, kind: &'static str) {
            self.events.get_or_create(&TypeLabel { r#type: kind }).inc();
        }

        pub(super) fn offers(&self, outcome: &'static str, n: usize) {
            self.offers
                .get_or_create(&OutcomeLabel { outcome })
                .inc_by(n as u64);
        }

        pub(super) fn placement_failure(&self, reason: &str) {
            self.placement_failures
                .get_or_create(&ReasonLabel {
                    reason: reason.to_owned(),
                })
                .inc();
        }

        pub(super) fn launches(&self, n: usize) {
            self.launches.inc_by(n as u64);
        }

        pub(super) fn status_update(&self, state: &str, reason: &str) {
            self.updates
                .get_or_create(&UpdateLabels {
                    state: state.to_owned(),
                    reason: reason.to_owned(),
                })
                .inc();
        }

        pub(super) fn reconcile_started(&self) {
            self.rounds.inc();
        }

        pub(super) fn reconcile_completed(&self, length: Duration) {
            self.round_seconds.observe(length.as_secs_f64());
        }

        pub(super) fn subscribed(&self, subscribed: bool, reconnect: bool) {
            self.subscribed.set(i64::from(subscribed));
            if reconnect {
                self.reconnects.inc();
            }
        }
    }
}
