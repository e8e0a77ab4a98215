//! What the meta scheduler reports about each processor (state, framework id, counters, recent
//! errors, validation problems): the types the REST API returns and the UI shows.

use std::collections::VecDeque;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::pipeline::{CountersSnapshot, LatencySummary};

/// How many recent errors are kept per processor.
pub const RECENT_ERRORS: usize = 20;

/// The state of one processor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// Configured and valid, its process scheduler not started yet.
    Starting,
    /// Its process scheduler runs.
    Running,
    /// Its process scheduler drains (no new message; those in flight finish) before it stops
    /// or restarts with a changed configuration.
    Draining,
    /// Stopped by the operator (the configuration stays).
    Stopped,
    /// Its document is invalid (see `validation_errors`); a configuration that ran before
    /// keeps running.
    Invalid,
    /// Its process scheduler could not start or ended with an error; retried.
    Failed,
    /// This instance is a standby: the leader runs it.
    Standby,
}

impl State {
    /// The state as the API and the CLI write it.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Starting => "starting",
            State::Running => "running",
            State::Draining => "draining",
            State::Stopped => "stopped",
            State::Invalid => "invalid",
            State::Failed => "failed",
            State::Standby => "standby",
        }
    }
}

/// A processor's counters (see [`CountersSnapshot`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Counters {
    /// Input messages received from Kafka.
    pub consumed: u64,
    /// Tasks launched.
    pub launched: u64,
    /// Output records acknowledged by Kafka.
    pub produced: u64,
    /// Error records acknowledged by Kafka.
    pub failed: u64,
    /// Failed attempts run again.
    pub retries: u64,
    /// Records that may have been produced twice.
    pub duplicated: u64,
    /// Messages consumed and not yet completed.
    pub in_flight: u64,
    /// Results recovered from tasks of an earlier incarnation.
    pub recovered: u64,
}

impl Counters {
    /// Adds the counters of one incarnation of a process scheduler.
    pub fn add(&mut self, c: &CountersSnapshot) {
        self.consumed += c.consumed;
        self.launched += c.launched;
        self.produced += c.outputs;
        self.failed += c.errors;
        self.retries += c.retries;
        self.duplicated += c.duplicates;
        self.in_flight += c.in_flight;
        self.recovered += c.recovered;
    }
}

/// One problem of a processor's document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldProblem {
    /// The field's path (`volumes[0].mode`; empty for the whole document).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// One recent error of a processor: a message that went to the error topic, or its process
/// scheduler failing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RecentError {
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// What happened.
    pub message: String,
    /// The source coordinates (`topic/partition@offset`), for a message's error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl RecentError {
    /// An error that happens now.
    pub fn now(message: impl Into<String>, source: Option<String>) -> Self {
        let at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default();
        Self {
            at_ms,
            message: message.into(),
            source,
        }
    }
}

/// Keeps the last [`RECENT_ERRORS`] errors.
pub fn push_recent(list: &mut VecDeque<RecentError>, error: RecentError) {
    if list.len() >= RECENT_ERRORS {
        list.pop_front();
    }
    list.push_back(error);
}

/// Everything reported about one processor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ProcessorStatus {
    /// The processor's name.
    pub name: String,
    /// Its state.
    pub state: State,
    /// Whether the operator stopped it.
    pub stopped: bool,
    /// Where its document is (file path or store key).
    pub origin: String,
    /// Its framework id, once subscribed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub framework_id: Option<String>,
    /// Its counters (summed over the restarts of this scheduler process).
    pub counters: Counters,
    /// Its configuration (the running one while a newer document is invalid).
    #[schema(value_type = Object)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<serde_json::Value>,
    /// The problems of its document, when invalid.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub validation_errors: Vec<FieldProblem>,
    /// Its recent errors, oldest first.
    #[serde(default)]
    pub recent_errors: Vec<RecentError>,
    /// Task latency (launch to result record acknowledged) over its recent tasks, once some
    /// finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencySummary>,
    /// Why its next message cannot be placed on the offers (the resource manager's reason),
    /// while none could.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unplaced: Option<String>,
}
