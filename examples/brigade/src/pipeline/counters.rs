//! The counters of one process scheduler (messages consumed, tasks launched, records produced,
//! retries, duplicates, task latency, the placer's reason for a message left unplaced),
//! shared between its event loop and whoever reports them.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

use super::latency::{LatencyLog, LatencySnapshot};

/// Live counters; see [`CountersSnapshot`] for their meaning.
#[derive(Debug, Default)]
pub struct Counters {
    consumed: AtomicU64,
    launched: AtomicU64,
    outputs: AtomicU64,
    errors: AtomicU64,
    retries: AtomicU64,
    duplicates: AtomicU64,
    in_flight: AtomicU64,
    max_in_flight_seen: AtomicU64,
    recovered: AtomicU64,
    latency: Mutex<LatencyLog>,
    unplaced: Mutex<Option<String>>,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CountersSnapshot {
    /// Input messages received from Kafka.
    pub consumed: u64,
    /// Tasks launched.
    pub launched: u64,
    /// Output records acknowledged by Kafka.
    pub outputs: u64,
    /// Error records acknowledged by Kafka.
    pub errors: u64,
    /// Failed attempts run again.
    pub retries: u64,
    /// Records that may have been produced twice (a restart found the record possibly produced
    /// and produced it again).
    pub duplicates: u64,
    /// Messages consumed and not yet completed.
    pub in_flight: u64,
    /// The highest number of tasks pending or running at once.
    pub max_in_flight_seen: u64,
    /// Results recovered from tasks launched by an earlier incarnation.
    pub recovered: u64,
}

macro_rules! bump {
    ($($name:ident),*) => {
        $(
            #[doc = concat!("Adds one to `", stringify!($name), "`.")]
            pub fn $name(&self) {
                self.$name.fetch_add(1, Ordering::Relaxed);
            }
        )*
    };
}

impl Counters {
    bump!(
        consumed, launched, outputs, errors, retries, duplicates, recovered
    );

    /// Sets the in-flight gauge (and the high-water mark of tasks pending or running).
    pub fn set_in_flight(&self, open: u64, tasks: u64) {
        self.in_flight.store(open, Ordering::Relaxed);
        self.max_in_flight_seen.fetch_max(tasks, Ordering::Relaxed);
    }

    /// Records one task's latency (launch to result record acknowledged).
    pub fn observe_latency(&self, latency: Duration) {
        if let Ok(mut log) = self.latency.lock() {
            log.observe(latency);
        }
    }

    /// A copy of the latency log.
    pub fn latency(&self) -> LatencySnapshot {
        self.latency
            .lock()
            .map(|log| log.snapshot())
            .unwrap_or_default()
    }

    /// Sets (or clears) the placer's reason for a message left unplaced.
    pub fn set_unplaced(&self, reason: Option<String>) {
        if let Ok(mut unplaced) = self.unplaced.lock() {
            *unplaced = reason;
        }
    }

    /// The placer's last reason for a message left unplaced, while none was placed since.
    pub fn unplaced(&self) -> Option<String> {
        self.unplaced.lock().ok().and_then(|u| u.clone())
    }

    /// A copy of the counters.
    pub fn snapshot(&self) -> CountersSnapshot {
        CountersSnapshot {
            consumed: self.consumed.load(Ordering::Relaxed),
            launched: self.launched.load(Ordering::Relaxed),
            outputs: self.outputs.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            duplicates: self.duplicates.load(Ordering::Relaxed),
            in_flight: self.in_flight.load(Ordering::Relaxed),
            max_in_flight_seen: self.max_in_flight_seen.load(Ordering::Relaxed),
            recovered: self.recovered.load(Ordering::Relaxed),
        }
    }
}
