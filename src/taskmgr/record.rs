//! One task instance's record and its state machine: the manager's own phases (pending with the
//! placement's reason, launching, active, killing, done, given up) over every Mesos task state,
//! how a status update moves it (out-of-order updates included) and the stored JSON form.
//!
//! Choices, where Mesos leaves room:
//! - `TASK_UNREACHABLE` keeps the instance active: the agent may come back (partition-aware
//!   frameworks get `TASK_GONE` or `TASK_UNKNOWN` if it does not).
//! - `TASK_UNKNOWN` (the master does not know the task) ends an active instance like a loss;
//!   for an instance still launching it means the launch never happened, and the instance is
//!   launched again without counting a retry.
//! - A non-terminal update for an instance the manager has already ended (a late `TASK_RUNNING`
//!   after `TASK_LOST`) resurrects it when no replacement has been launched yet; otherwise the
//!   late task is a duplicate and the manager kills it ([`Transition::Duplicate`]).

use serde::{Deserialize, Serialize};

use crate::v1::TaskState;

/// The manager's phase of one instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Waiting for an offer (see [`TaskRecord::reason`]), possibly in restart backoff
    /// ([`TaskRecord::not_before_ms`]).
    Pending,
    /// The launch intent is stored and ACCEPT sent; no status yet.
    Launching,
    /// Mesos reported a non-terminal state (staging, starting, running, unreachable, ...).
    Active,
    /// The user asked for the kill; the instance is not restarted.
    Killing,
    /// Ended and not restarted.
    Done,
    /// Ended after exhausting its retries.
    GivenUp,
}

impl Phase {
    /// Whether a task may be alive on an agent in this phase (what reconciliation asks about).
    pub fn may_run(self) -> bool {
        matches!(self, Phase::Launching | Phase::Active | Phase::Killing)
    }

    /// Whether the instance is finished for good.
    pub fn is_final(self) -> bool {
        matches!(self, Phase::Done | Phase::GivenUp)
    }
}

/// One instance of a spec, as stored (JSON) under `tasks/<spec>/<index>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    /// The spec's name.
    pub spec: String,
    /// The instance index within the spec (0-based).
    pub index: u32,
    /// The spec version the current attempt was launched with.
    pub spec_version: u64,
    /// The current (or last) attempt's task id, `<spec>.<index>.<uuid>`.
    pub task_id: Option<String>,
    /// The manager's phase.
    pub phase: Phase,
    /// The last Mesos state reported for the current attempt (`TASK_RUNNING`, ...).
    pub state: Option<String>,
    /// Why the instance is pending, or the last status' reason and message.
    pub reason: Option<String>,
    /// The agent of the current attempt.
    pub agent_id: Option<String>,
    /// The offer the current attempt was launched with.
    pub offer_id: Option<String>,
    /// Restarts so far (failures since the last success do not reset it: the budget is per
    /// instance).
    pub restarts: u32,
    /// In restart backoff: not launched before this Unix time in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before_ms: Option<u64>,
    /// Unix time in milliseconds of the current attempt's launch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launched_ms: Option<u64>,
    /// The last health report (`None` without a health check).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy: Option<bool>,
    /// The instance is being removed (scale down): its record is deleted once it ended.
    #[serde(default)]
    pub removing: bool,
    /// The instance is being replaced by a newer spec version (rolling update): once its
    /// attempt ended it is launched again at once, with the new version.
    #[serde(default)]
    pub replacing: bool,
}

impl TaskRecord {
    /// A fresh pending instance.
    pub fn pending(spec: &str, index: u32, spec_version: u64) -> Self {
        Self {
            spec: spec.to_owned(),
            index,
            spec_version,
            task_id: None,
            phase: Phase::Pending,
            state: None,
            reason: Some("waiting for an offer".into()),
            agent_id: None,
            offer_id: None,
            restarts: 0,
            not_before_ms: None,
            launched_ms: None,
            healthy: None,
            removing: false,
            replacing: false,
        }
    }

    /// The instance's key relative to the framework's namespace.
    pub fn key(&self) -> String {
        instance_key(&self.spec, self.index)
    }

    /// The last Mesos state as the enum.
    pub fn mesos_state(&self) -> Option<TaskState> {
        self.state.as_deref().and_then(TaskState::from_str_name)
    }
}

/// The key of instance `index` of `spec`, relative to the namespace.
pub fn instance_key(spec: &str, index: u32) -> String {
    format!("tasks/{spec}/{index:06}")
}

/// A new task id for instance `index` of `spec`: `<spec>.<index>.<uuid>`.
pub fn new_task_id(spec: &str, index: u32) -> String {
    format!("{spec}.{index}.{}", uuid::Uuid::new_v4().simple())
}

/// Splits a task id made by [`new_task_id`] into spec name and index; `None` for ids this SDK
/// did not make.
pub fn parse_task_id(task_id: &str) -> Option<(&str, u32)> {
    let mut parts = task_id.rsplitn(3, '.');
    let suffix = parts.next()?;
    let index = parts.next()?.parse().ok()?;
    let spec = parts.next()?;
    (suffix.len() == 32 && suffix.bytes().all(|b| b.is_ascii_hexdigit()) && !spec.is_empty())
        .then_some((spec, index))
}

/// How the manager classifies a terminal state when deciding on a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// `TASK_FINISHED`.
    Finished,
    /// `TASK_FAILED` or `TASK_ERROR`.
    Failed,
    /// `TASK_LOST`, `TASK_DROPPED`, `TASK_GONE`, `TASK_GONE_BY_OPERATOR`, `TASK_UNKNOWN`.
    Lost,
    /// `TASK_KILLED`.
    Killed,
}

/// What a status update did to a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// A non-terminal state was recorded; `resurrected` when the instance had already ended.
    Active {
        /// The instance came back after a terminal state.
        resurrected: bool,
    },
    /// The current attempt ended; the caller decides about a restart.
    Ended(Ending),
    /// The launch never reached the master (`TASK_UNKNOWN` or `TASK_DROPPED` from
    /// reconciliation while launching): launch again without counting a retry.
    NotLaunched,
    /// A non-terminal update for an attempt that a newer one replaced: kill it.
    Duplicate,
    /// Nothing to do (a repeated or stale terminal update).
    Ignored,
}

/// Classifies a Mesos state: `None` for non-terminal states (TASK_UNKNOWN counts as lost).
pub fn ending(state: TaskState) -> Option<Ending> {
    match state {
        TaskState::TaskFinished => Some(Ending::Finished),
        TaskState::TaskFailed | TaskState::TaskError => Some(Ending::Failed),
        TaskState::TaskKilled => Some(Ending::Killed),
        TaskState::TaskLost
        | TaskState::TaskDropped
        | TaskState::TaskGone
        | TaskState::TaskGoneByOperator
        | TaskState::TaskUnknown => Some(Ending::Lost),
        TaskState::TaskStaging
        | TaskState::TaskStarting
        | TaskState::TaskRunning
        | TaskState::TaskKilling
        | TaskState::TaskUnreachable => None,
    }
}

impl TaskRecord {
    /// Applies a status update of `task_id` in `state` to this record (the caller has matched
    /// the id to this instance). Moves the phase for non-terminal states; for an ending it
    /// records the state and leaves the phase to the restart decision.
    pub fn apply(
        &mut self,
        task_id: &str,
        state: TaskState,
        reason: Option<String>,
        healthy: Option<bool>,
    ) -> Transition {
        let current = self.task_id.as_deref() == Some(task_id);
        if !current {
            return if ending(state).is_none() {
                Transition::Duplicate
            } else {
                Transition::Ignored
            };
        }
        let ended_already = matches!(self.phase, Phase::Pending | Phase::Done | Phase::GivenUp);
        match ending(state) {
            // An attempt concluded while unreachable (replaced after the unreachable timeout)
            // is still reported unreachable by reconciliation: no news, no resurrection. Only
            // a sign of life (RUNNING, STARTING, ...) brings it back.
            None if ended_already && state == TaskState::TaskUnreachable => Transition::Ignored,
            None => {
                self.state = Some(state.as_str_name().to_owned());
                self.reason = reason;
                if healthy.is_some() {
                    self.healthy = healthy;
                }
                let resurrected = ended_already;
                if self.phase != Phase::Killing {
                    self.phase = Phase::Active;
                }
                self.not_before_ms = None;
                Transition::Active { resurrected }
            }
            Some(_) if ended_already => Transition::Ignored,
            Some(end) => {
                let launching = self.phase == Phase::Launching;
                self.state = Some(state.as_str_name().to_owned());
                self.reason = reason;
                self.healthy = None;
                if launching && matches!(state, TaskState::TaskUnknown | TaskState::TaskDropped) {
                    Transition::NotLaunched
                } else {
                    Transition::Ended(end)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launched() -> (TaskRecord, String) {
        let mut record = TaskRecord::pending("web", 3, 1);
        let id = new_task_id("web", 3);
        record.task_id = Some(id.clone());
        record.phase = Phase::Launching;
        (record, id)
    }

    #[test]
    fn task_ids_carry_the_spec_and_index() {
        let id = new_task_id("my.web-1", 12);
        assert_eq!(parse_task_id(&id), Some(("my.web-1", 12)));
        assert_eq!(parse_task_id("stranger"), None);
        assert_eq!(parse_task_id("a.1.notauuid"), None);
    }

    #[test]
    fn every_mesos_state_is_classified() {
        for state in [
            TaskState::TaskStaging,
            TaskState::TaskStarting,
            TaskState::TaskRunning,
            TaskState::TaskKilling,
            TaskState::TaskUnreachable,
        ] {
            assert_eq!(ending(state), None, "{state:?}");
        }
        assert_eq!(ending(TaskState::TaskFinished), Some(Ending::Finished));
        assert_eq!(ending(TaskState::TaskError), Some(Ending::Failed));
        assert_eq!(ending(TaskState::TaskGoneByOperator), Some(Ending::Lost));
        assert_eq!(ending(TaskState::TaskUnknown), Some(Ending::Lost));
        assert_eq!(ending(TaskState::TaskKilled), Some(Ending::Killed));
    }

    #[test]
    fn unreachable_again_does_not_resurrect_a_concluded_attempt() {
        let (mut record, id) = launched();
        record.apply(&id, TaskState::TaskRunning, None, None);
        record.apply(&id, TaskState::TaskUnreachable, None, None);
        assert_eq!(record.phase, Phase::Active);
        record.phase = Phase::Pending; // concluded as lost after the unreachable timeout
        assert_eq!(
            record.apply(&id, TaskState::TaskUnreachable, None, None),
            Transition::Ignored
        );
        assert_eq!(record.phase, Phase::Pending);
        assert_eq!(
            record.apply(&id, TaskState::TaskRunning, None, None),
            Transition::Active { resurrected: true }
        );
    }

    #[test]
    fn late_running_after_lost_resurrects_a_pending_instance() {
        let (mut record, id) = launched();
        assert_eq!(
            record.apply(&id, TaskState::TaskRunning, None, None),
            Transition::Active { resurrected: false }
        );
        assert_eq!(
            record.apply(&id, TaskState::TaskLost, None, None),
            Transition::Ended(Ending::Lost)
        );
        record.phase = Phase::Pending; // the restart decision
        assert_eq!(
            record.apply(&id, TaskState::TaskRunning, None, None),
            Transition::Active { resurrected: true }
        );
        assert_eq!(record.phase, Phase::Active);
        // a repeated terminal update after the end changes nothing
        record.phase = Phase::Done;
        assert_eq!(
            record.apply(&id, TaskState::TaskLost, None, None),
            Transition::Ignored
        );
    }

    #[test]
    fn an_old_attempt_that_comes_back_is_a_duplicate() {
        let (mut record, old) = launched();
        record.task_id = Some(new_task_id("web", 3));
        assert_eq!(
            record.apply(&old, TaskState::TaskRunning, None, None),
            Transition::Duplicate
        );
        assert_eq!(
            record.apply(&old, TaskState::TaskFailed, None, None),
            Transition::Ignored
        );
    }

    #[test]
    fn unknown_while_launching_means_not_launched() {
        let (mut record, id) = launched();
        assert_eq!(
            record.apply(&id, TaskState::TaskUnknown, None, None),
            Transition::NotLaunched
        );
    }

    #[test]
    fn records_round_trip_as_json() {
        let (record, _) = launched();
        let json = serde_json::to_string(&record).unwrap();
        assert_eq!(serde_json::from_str::<TaskRecord>(&json).unwrap(), record);
    }
}
