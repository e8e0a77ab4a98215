//! Whether the master can reach a task: per-message tasks and warm workers alike are given up
//! once the master has reported them unreachable for
//! [`SchedulerConfig::unreachable_grace`](crate::pipeline::SchedulerConfig::unreachable_grace).

use std::time::{Duration, Instant};

use mesos_sdk::v1::TaskState;

use crate::protocol;

/// Since when the master has reported a task unreachable (TASK_UNREACHABLE or TASK_UNKNOWN),
/// if its latest non-terminal state says so.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Reachability {
    unreachable_since: Option<Instant>,
}

impl Reachability {
    /// Notes a non-terminal `state` seen at `now`; answers true when it makes the task
    /// unreachable (it was not before). Any other state makes it reachable again.
    pub(super) fn note(&mut self, state: TaskState, now: Instant) -> bool {
        if !protocol::unreachable(state) {
            self.unreachable_since = None;
            return false;
        }
        let fresh = self.unreachable_since.is_none();
        if fresh {
            self.unreachable_since = Some(now);
        }
        fresh
    }

    /// Whether the master reports the task unreachable now.
    pub(super) fn is_unreachable(&self) -> bool {
        self.unreachable_since.is_some()
    }

    /// Whether it has been unreachable for `grace` or longer at `now`.
    pub(super) fn given_up(&self, grace: Duration, now: Instant) -> bool {
        self.unreachable_since
            .is_some_and(|since| now.duration_since(since) >= grace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_from_the_first_report_until_any_other_state() {
        let t0 = Instant::now();
        let grace = Duration::from_secs(3);
        let mut r = Reachability::default();
        assert!(!r.note(TaskState::TaskRunning, t0));
        assert!(!r.is_unreachable() && !r.given_up(Duration::ZERO, t0));
        assert!(r.note(TaskState::TaskUnreachable, t0));
        assert!(
            !r.note(TaskState::TaskUnknown, t0 + grace),
            "still since t0"
        );
        assert!(r.is_unreachable());
        assert!(!r.given_up(grace, t0 + Duration::from_secs(2)));
        assert!(r.given_up(grace, t0 + grace));
        assert!(!r.note(TaskState::TaskRunning, t0 + grace));
        assert!(!r.is_unreachable() && !r.given_up(grace, t0 + grace * 10));
    }
}
