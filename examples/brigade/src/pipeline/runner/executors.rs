//! Shared executors of per-message mode: one `brigade-executor` per agent and processor, reused
//! by every per-message task launched on that agent, and shut down once it has been idle for
//! [`SchedulerConfig::executor_idle`](crate::pipeline::SchedulerConfig::executor_idle).
//!
//! Every message is still its own Mesos task (its own TaskInfo, status updates and result);
//! only the executor process that runs it is shared, so a message costs a LAUNCH and one
//! processor run instead of a fetch, an executor start and a subscription. The executor's
//! resources are carved out of the first offer of an agent that has no executor of ours; the
//! tasks that follow on that agent carry the same `ExecutorInfo` (Mesos requires it to be
//! identical) and are charged their own resources only.
//!
//! An executor is forgotten (and a fresh one, with a new id, started on the next launch) when
//! the master reports it gone (a FAILURE event), when a task of that agent ends by the agent's
//! or the master's word rather than the executor's (executor terminated, agent lost), and when
//! it has been idle long enough, in which case the scheduler sends it SHUTDOWN. An executor
//! whose scheduler went away stops by itself after a longer idle time
//! ([`EXECUTOR_IDLE_ENV`]).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use mesos_sdk::v1::{self, AgentId, ExecutorId, ExecutorInfo};

/// The environment variable that tells `brigade-executor` how long (milliseconds) to stay up
/// with no task before it stops by itself.
pub const EXECUTOR_IDLE_ENV: &str = "BRIGADE_EXECUTOR_IDLE_MS";

/// How long an executor waits, idle, for its scheduler's SHUTDOWN before stopping by itself:
/// the scheduler's idle time, twice, plus a margin (so the scheduler's SHUTDOWN comes first
/// while it runs, and a launch on an executor about to stop is rare).
pub fn self_stop_after(idle: Duration) -> Duration {
    idle * 2 + Duration::from_secs(5)
}

#[derive(Debug)]
struct Slot {
    info: ExecutorInfo,
    idle_since: Option<Instant>,
}

/// The live executors of one process scheduler, by agent.
#[derive(Debug, Default)]
pub(super) struct Executors {
    by_agent: HashMap<String, Slot>,
}

impl Executors {
    /// The executor running on `agent`, if one is known.
    pub(super) fn on_agent(&self, agent: &str) -> Option<&ExecutorInfo> {
        self.by_agent.get(agent).map(|s| &s.info)
    }

    /// Records a new executor on `agent` (its first task is being launched).
    pub(super) fn started(&mut self, agent: &str, info: ExecutorInfo) {
        self.by_agent.insert(
            agent.to_string(),
            Slot {
                info,
                idle_since: None,
            },
        );
    }

    /// Forgets the executor of `agent`; answers its id if there was one.
    pub(super) fn forget_agent(&mut self, agent: &str) -> Option<ExecutorId> {
        self.by_agent.remove(agent).map(|s| s.info.executor_id)
    }

    /// Forgets the executor `executor` wherever it runs.
    pub(super) fn forget_executor(&mut self, executor: &ExecutorId) {
        self.by_agent.retain(|_, s| s.info.executor_id != *executor);
    }

    /// Marks the executors of the agents in `busy` as busy and the others as idle since now (if
    /// they were not already); answers the executors idle for longer than `idle`, forgotten,
    /// for the caller to shut down.
    pub(super) fn expire(
        &mut self,
        busy: &HashSet<&str>,
        idle: Duration,
        now: Instant,
    ) -> Vec<(ExecutorId, AgentId)> {
        let mut expired = Vec::new();
        self.by_agent.retain(|agent, slot| {
            if busy.contains(agent.as_str()) {
                slot.idle_since = None;
                return true;
            }
            let since = *slot.idle_since.get_or_insert(now);
            if now.duration_since(since) >= idle {
                expired.push((
                    slot.info.executor_id.clone(),
                    AgentId {
                        value: agent.clone(),
                    },
                ));
                return false;
            }
            true
        });
        expired
    }

    /// How many executors are known.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.by_agent.len()
    }
}

/// Whether a terminal update says the task's executor (or its agent) is gone: a task that did
/// not end by its executor's word, or ended for a reason about the executor or the agent.
pub(super) fn executor_gone(status: &v1::TaskStatus) -> bool {
    use v1::task_status::{Reason, Source};
    if status.reason() == Reason::Reconciliation {
        // The master's answer to a reconciliation says nothing about the executor now.
        return false;
    }
    if status.source() != Source::Executor {
        return true;
    }
    matches!(
        status.reason(),
        Reason::ExecutorTerminated
            | Reason::ExecutorUnregistered
            | Reason::ExecutorReregistrationTimeout
            | Reason::AgentDisconnected
            | Reason::AgentRemoved
            | Reason::AgentRestarted
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: &str) -> ExecutorInfo {
        ExecutorInfo {
            executor_id: ExecutorId {
                value: id.to_string(),
            },
            ..ExecutorInfo::default()
        }
    }

    #[test]
    fn idle_executors_expire_and_busy_ones_stay() {
        let mut e = Executors::default();
        e.started("a1", info("e1"));
        e.started("a2", info("e2"));
        let t0 = Instant::now();
        let idle = Duration::from_secs(10);
        let busy: HashSet<&str> = ["a1"].into_iter().collect();
        assert!(e.expire(&busy, idle, t0).is_empty());
        // a2 has been idle since t0; a1 turns idle at t0 + 5 s.
        assert!(
            e.expire(&HashSet::new(), idle, t0 + Duration::from_secs(5))
                .is_empty()
        );
        let expired = e.expire(&HashSet::new(), idle, t0 + Duration::from_secs(10));
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].0.value, "e2");
        assert_eq!(expired[0].1.value, "a2");
        assert!(e.on_agent("a2").is_none());
        assert!(e.on_agent("a1").is_some());
        let expired = e.expire(&HashSet::new(), idle, t0 + Duration::from_secs(15));
        assert_eq!(expired.len(), 1);
        assert_eq!(e.len(), 0);
    }

    #[test]
    fn forgetting_by_agent_and_by_executor() {
        let mut e = Executors::default();
        e.started("a1", info("e1"));
        e.started("a2", info("e2"));
        assert_eq!(e.forget_agent("a1").map(|i| i.value), Some("e1".into()));
        assert!(e.forget_agent("a1").is_none());
        e.forget_executor(&ExecutorId { value: "e2".into() });
        assert_eq!(e.len(), 0);
    }

    #[test]
    fn updates_that_say_the_executor_is_gone() {
        use v1::task_status::{Reason, Source};
        let mut s = v1::TaskStatus {
            source: Some(Source::Executor as i32),
            ..v1::TaskStatus::default()
        };
        assert!(!executor_gone(&s));
        s.reason = Some(Reason::ExecutorTerminated as i32);
        assert!(executor_gone(&s));
        s.reason = None;
        s.source = Some(Source::Agent as i32);
        assert!(executor_gone(&s));
        s.source = Some(Source::Master as i32);
        assert!(executor_gone(&s));
        s.reason = Some(Reason::Reconciliation as i32);
        assert!(!executor_gone(&s));
    }
}
