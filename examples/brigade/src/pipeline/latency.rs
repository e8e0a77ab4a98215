//! Task latency of one process scheduler: from a task's launch to its result record
//! acknowledged by Kafka. Keeps the total count and sum and a bounded window of the most
//! recent samples (for percentiles and for the Prometheus histogram's sampler).

use std::collections::VecDeque;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How many recent samples are kept.
pub const LATENCY_WINDOW: usize = 4096;

/// The latency log (behind a lock in [`Counters`](super::Counters)).
#[derive(Debug, Default)]
pub struct LatencyLog {
    count: u64,
    sum: f64,
    recent: VecDeque<f64>,
}

impl LatencyLog {
    /// Records one task's latency.
    pub fn observe(&mut self, latency: Duration) {
        let seconds = latency.as_secs_f64();
        self.count += 1;
        self.sum += seconds;
        if self.recent.len() == LATENCY_WINDOW {
            self.recent.pop_front();
        }
        self.recent.push_back(seconds);
    }

    /// A copy of the log.
    pub fn snapshot(&self) -> LatencySnapshot {
        LatencySnapshot {
            count: self.count,
            sum: self.sum,
            recent: self.recent.iter().copied().collect(),
        }
    }
}

/// A copy of the latency log at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LatencySnapshot {
    /// Tasks measured since the process scheduler started.
    pub count: u64,
    /// Their summed latency, in seconds.
    pub sum: f64,
    /// The most recent samples (at most [`LATENCY_WINDOW`]), oldest first, in seconds.
    pub recent: Vec<f64>,
}

impl LatencySnapshot {
    /// The `q` quantile (0..=1) of the recent samples, in seconds (nearest rank); `None`
    /// without samples.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.recent.is_empty() {
            return None;
        }
        let mut sorted = self.recent.clone();
        sorted.sort_by(f64::total_cmp);
        let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
        sorted
            .get(rank.saturating_sub(1).min(sorted.len() - 1))
            .copied()
    }

    /// The summary shown in a processor's status.
    pub fn summary(&self) -> Option<LatencySummary> {
        Some(LatencySummary {
            count: self.count,
            p50_seconds: self.quantile(0.5)?,
            p99_seconds: self.quantile(0.99)?,
        })
    }
}

/// Task latency percentiles over the recent tasks, as a status shows them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LatencySummary {
    /// Tasks measured.
    pub count: u64,
    /// Median latency, seconds.
    pub p50_seconds: f64,
    /// 99th percentile latency, seconds.
    pub p99_seconds: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_by_nearest_rank() {
        let mut log = LatencyLog::default();
        for ms in 1..=100 {
            log.observe(Duration::from_millis(ms));
        }
        let s = log.snapshot();
        assert_eq!(s.count, 100);
        assert!((s.quantile(0.5).unwrap() - 0.05).abs() < 1e-9);
        assert!((s.quantile(0.99).unwrap() - 0.099).abs() < 1e-9);
        assert_eq!(LatencySnapshot::default().summary(), None);
    }
}
