//! Reconciliation rounds (shared/mesos-protocol.md 1.10) as a small state machine: an explicit
//! round asks the master about every task that may be alive and repeats the question, with
//! capped exponential backoff, for the tasks that have no answer newer than the round's start;
//! implicit reconciliation (the master reports every task it knows) runs periodically. One
//! round at a time: starting a round supersedes the current one. Time is passed in.
//!
//! "Newer than the round's start" is judged by the status' own timestamp when it has one
//! ([`Reconciler::answered_status`]; the master stamps reconciliation answers when it sends
//! them), so an update the master sent before the round started but that arrived after it does
//! not settle the task. A status without a timestamp is judged by its arrival.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Settings of the reconciler.
#[derive(Debug, Clone)]
pub struct ReconcileConfig {
    /// First wait before an explicit round asks again for the tasks without an answer (default
    /// 2 s), doubled per attempt.
    pub retry_min: Duration,
    /// Longest wait between two asks (default 60 s).
    pub retry_max: Duration,
    /// Interval of implicit reconciliation (default 15 min).
    pub implicit_interval: Duration,
    /// A launch without any status after this long is reconciled (default 60 s).
    pub launch_timeout: Duration,
}

impl Default for ReconcileConfig {
    fn default() -> Self {
        Self {
            retry_min: Duration::from_secs(2),
            retry_max: Duration::from_secs(60),
            implicit_interval: Duration::from_secs(15 * 60),
            launch_timeout: Duration::from_secs(60),
        }
    }
}

#[derive(Debug)]
struct Round {
    started: Instant,
    /// The start as Unix seconds, for status timestamps.
    started_unix: f64,
    /// task id → agent id.
    outstanding: HashMap<String, Option<String>>,
    attempt: u32,
    next_ask: Instant,
}

/// What the reconciler asks the runtime to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReconcileAsk {
    /// Explicit RECONCILE of these `(task id, agent id)` pairs.
    Explicit(Vec<(String, Option<String>)>),
    /// Implicit RECONCILE (no tasks).
    Implicit,
}

/// The reconciliation state machine.
#[derive(Debug)]
pub struct Reconciler {
    config: ReconcileConfig,
    round: Option<Round>,
    next_implicit: Option<Instant>,
    rounds: u64,
}

impl Reconciler {
    /// A reconciler with no round under way.
    pub fn new(config: ReconcileConfig) -> Self {
        Self {
            config,
            round: None,
            next_implicit: None,
            rounds: 0,
        }
    }

    /// The settings.
    pub fn config(&self) -> &ReconcileConfig {
        &self.config
    }

    /// Starts a new explicit round over `tasks` (superseding any round under way); answers the
    /// first ask. An empty round still leads to an implicit ask so strangers are reported.
    pub fn start(
        &mut self,
        tasks: impl IntoIterator<Item = (String, Option<String>)>,
        now: Instant,
    ) -> Vec<ReconcileAsk> {
        let outstanding: HashMap<_, _> = tasks.into_iter().collect();
        self.rounds += 1;
        tracing::debug!(
            tasks = outstanding.len(),
            "explicit reconciliation round starts"
        );
        let mut asks = Vec::new();
        if !outstanding.is_empty() {
            asks.push(ReconcileAsk::Explicit(sorted(&outstanding)));
            let behind = Instant::now().saturating_duration_since(now);
            self.round = Some(Round {
                started: now,
                started_unix: unix_secs() - behind.as_secs_f64(),
                outstanding,
                attempt: 0,
                next_ask: now + self.config.retry_min,
            });
        } else {
            self.round = None;
        }
        asks.push(ReconcileAsk::Implicit);
        self.next_implicit = Some(now + self.config.implicit_interval);
        asks
    }

    /// Whether an explicit round is under way.
    pub fn in_round(&self) -> bool {
        self.round.is_some()
    }

    /// Explicit rounds started so far.
    pub fn rounds(&self) -> u64 {
        self.rounds
    }

    /// An answer about `task_id` arrived at `now`: a round's task is settled when the answer is
    /// newer than the round's start.
    pub fn answered(&mut self, task_id: &str, now: Instant) {
        if let Some(round) = &mut self.round
            && now >= round.started
        {
            round.outstanding.remove(task_id);
            if round.outstanding.is_empty() {
                tracing::debug!(
                    elapsed = ?now.duration_since(round.started),
                    "reconciliation round complete"
                );
                self.round = None;
            }
        }
    }

    /// When the round under way started, if one is.
    pub fn round_started(&self) -> Option<Instant> {
        self.round.as_ref().map(|r| r.started)
    }

    /// An answer about `task_id` arrived at `now` carrying the status timestamp `timestamp`
    /// (Unix seconds, as in `TaskStatus.timestamp`): the round's task is settled when that
    /// timestamp is not older than the round's start. Without a timestamp (or a zero one) the
    /// arrival time `now` is judged, as [`answered`](Self::answered) does. Answers the round's
    /// length when this answer completed it.
    pub fn answered_status(
        &mut self,
        task_id: &str,
        timestamp: Option<f64>,
        now: Instant,
    ) -> Option<Duration> {
        let round = self.round.as_ref()?;
        let started = round.started;
        let newer = match timestamp {
            Some(ts) if ts > 0.0 => ts >= round.started_unix,
            _ => now >= started,
        };
        if !newer {
            return None;
        }
        // Settled: judged above, so pass a time the arrival check accepts.
        self.answered(task_id, now.max(started));
        (!self.in_round()).then(|| now.saturating_duration_since(started))
    }

    /// Forgets a task (it ended or was removed).
    pub fn forget(&mut self, task_id: &str, now: Instant) {
        self.answered(task_id, now);
    }

    /// Asks due at `now`: the repeat of an unfinished round, the periodic implicit one.
    pub fn tick(&mut self, now: Instant) -> Vec<ReconcileAsk> {
        let mut asks = Vec::new();
        if let Some(round) = &mut self.round
            && now >= round.next_ask
        {
            round.attempt += 1;
            let factor = 1u32.checked_shl(round.attempt.min(16)).unwrap_or(u32::MAX);
            let wait = self
                .config
                .retry_min
                .saturating_mul(factor)
                .min(self.config.retry_max);
            round.next_ask = now + wait;
            tracing::debug!(
                attempt = round.attempt,
                tasks = round.outstanding.len(),
                "asking again for tasks without an answer"
            );
            asks.push(ReconcileAsk::Explicit(sorted(&round.outstanding)));
        }
        if self.next_implicit.is_some_and(|at| now >= at) {
            self.next_implicit = Some(now + self.config.implicit_interval);
            asks.push(ReconcileAsk::Implicit);
        }
        asks
    }
}

/// Now as Unix seconds.
fn unix_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn sorted(tasks: &HashMap<String, Option<String>>) -> Vec<(String, Option<String>)> {
    let mut out: Vec<_> = tasks.iter().map(|(t, a)| (t.clone(), a.clone())).collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ReconcileConfig {
        ReconcileConfig {
            retry_min: Duration::from_secs(1),
            retry_max: Duration::from_secs(4),
            implicit_interval: Duration::from_secs(100),
            launch_timeout: Duration::from_secs(10),
        }
    }

    #[test]
    fn a_round_repeats_with_backoff_until_every_task_answered() {
        let t0 = Instant::now();
        let mut r = Reconciler::new(config());
        let asks = r.start([("a".into(), None), ("b".into(), Some("ag".into()))], t0);
        assert_eq!(asks.len(), 2);
        assert!(r.tick(t0 + Duration::from_millis(500)).is_empty());
        r.answered("a", t0 + Duration::from_millis(600));
        let again = r.tick(t0 + Duration::from_secs(1));
        assert_eq!(
            again,
            vec![ReconcileAsk::Explicit(vec![(
                "b".into(),
                Some("ag".into())
            )])]
        );
        // next ask after 2 s, then 4 s (capped)
        assert!(r.tick(t0 + Duration::from_millis(2500)).is_empty());
        assert_eq!(r.tick(t0 + Duration::from_secs(3)).len(), 1);
        assert!(r.tick(t0 + Duration::from_secs(6)).is_empty());
        assert_eq!(r.tick(t0 + Duration::from_secs(7)).len(), 1);
        r.answered("b", t0 + Duration::from_secs(8));
        assert!(!r.in_round());
        assert!(r.tick(t0 + Duration::from_secs(50)).is_empty());
        assert_eq!(
            r.tick(t0 + Duration::from_secs(100)),
            vec![ReconcileAsk::Implicit]
        );
    }

    #[test]
    fn a_newer_round_supersedes_and_old_answers_do_not_count() {
        let t0 = Instant::now();
        let mut r = Reconciler::new(config());
        r.start([("a".into(), None)], t0 + Duration::from_secs(5));
        r.answered("a", t0); // older than the round's start
        assert!(r.in_round());
        r.start([("b".into(), None)], t0 + Duration::from_secs(6));
        r.answered("a", t0 + Duration::from_secs(7));
        assert!(r.in_round());
        r.answered("b", t0 + Duration::from_secs(7));
        assert!(!r.in_round());
        assert_eq!(r.rounds(), 2);
    }

    #[test]
    fn answers_are_judged_by_their_status_timestamp() {
        let t0 = Instant::now();
        let mut r = Reconciler::new(config());
        r.start([("a".into(), None), ("b".into(), None)], t0);
        let start = unix_secs();
        // Sent by the master before the round started, arrived after: does not settle.
        assert_eq!(
            r.answered_status("a", Some(start - 5.0), t0 + Duration::from_secs(1)),
            None
        );
        assert!(r.in_round());
        // Without a timestamp: judged by arrival.
        assert_eq!(
            r.answered_status("a", None, t0 + Duration::from_secs(1)),
            None
        );
        assert!(r.in_round());
        // Stamped after the start: settles, and completes the round.
        assert_eq!(
            r.answered_status("b", Some(start + 1.0), t0 + Duration::from_secs(2)),
            Some(Duration::from_secs(2))
        );
        assert!(!r.in_round());
    }
}
