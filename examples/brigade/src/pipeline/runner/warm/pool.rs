//! Warm mode's worker pool: the worker tasks of one process scheduler, the items each has in
//! flight, and the sizing rules (how many workers the backlog calls for, which idle ones go).
//! Pure bookkeeping; the Mesos calls are made by the caller.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mesos_sdk::v1::{AgentId, ExecutorId, TaskId};

use super::super::reachability::Reachability;

use crate::protocol::InputMessage;

/// Where a worker is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WorkerState {
    /// Launched; not running yet (no item is sent to it).
    Launching,
    /// Running: takes items.
    Ready,
    /// Killed by the scheduler (idle above the minimum, or stopping): takes no item.
    Stopping,
}

/// An item in flight, by source partition and offset: a worker serves one processor, hence
/// one input topic (a key without the topic name costs no allocation per item).
pub(super) type ItemKey = (i32, i64);

/// An item sent to a worker.
#[derive(Debug)]
pub(super) struct Item {
    pub(super) msg: Arc<InputMessage>,
    pub(super) attempt: u32,
    pub(super) sent_at: Instant,
}

/// One worker task (its own executor, whose id is the task id).
#[derive(Debug)]
pub(super) struct Worker {
    pub(super) task_id: TaskId,
    pub(super) executor_id: ExecutorId,
    pub(super) agent_id: AgentId,
    pub(super) state: WorkerState,
    pub(super) in_flight: HashMap<ItemKey, Item>,
    /// Since when it has had nothing in flight.
    pub(super) idle_since: Instant,
    /// Whether the master reports it unreachable (no item is sent to it meanwhile).
    pub(super) reachability: Reachability,
}

/// The workers of one process scheduler, by task id.
#[derive(Debug, Default)]
pub(super) struct Pool {
    pub(super) workers: HashMap<String, Worker>,
}

impl Pool {
    /// Workers launching or ready and not unreachable (the ones that count towards the pool's
    /// size: an unreachable worker is replaced at once; if it comes back, the pool is above
    /// its size until idle workers go).
    pub(super) fn live(&self) -> usize {
        self.workers
            .values()
            .filter(|w| w.state != WorkerState::Stopping && !w.reachability.is_unreachable())
            .count()
    }

    /// Items in flight on all workers.
    pub(super) fn in_flight(&self) -> usize {
        self.workers.values().map(|w| w.in_flight.len()).sum()
    }

    /// The worker whose executor is `executor`.
    pub(super) fn by_executor(&mut self, executor: &str) -> Option<&mut Worker> {
        self.workers
            .values_mut()
            .find(|w| w.executor_id.value == executor)
    }

    /// Ready workers with room, fewest items in flight first.
    pub(super) fn with_room(&self, depth: usize) -> Vec<String> {
        let mut ready: Vec<(&String, usize)> = self
            .workers
            .iter()
            .filter(|(_, w)| {
                w.state == WorkerState::Ready
                    && !w.reachability.is_unreachable()
                    && w.in_flight.len() < depth
            })
            .map(|(id, w)| (id, w.in_flight.len()))
            .collect();
        ready.sort_by_key(|(id, n)| (*n, (*id).clone()));
        ready.into_iter().map(|(id, _)| id.clone()).collect()
    }

    /// Workers idle for `idle` or longer that may go (above `min` live workers, nothing
    /// waiting), oldest idle first.
    pub(super) fn idle_beyond(
        &self,
        min: usize,
        waiting: usize,
        idle: Duration,
        now: Instant,
    ) -> Vec<String> {
        if waiting > 0 {
            return Vec::new();
        }
        let mut idle_workers: Vec<(&String, Instant)> = self
            .workers
            .iter()
            .filter(|(_, w)| {
                w.state == WorkerState::Ready
                    && !w.reachability.is_unreachable()
                    && w.in_flight.is_empty()
                    && now.duration_since(w.idle_since) >= idle
            })
            .map(|(id, w)| (id, w.idle_since))
            .collect();
        idle_workers.sort_by_key(|(id, since)| (*since, (*id).clone()));
        let spare = self.live().saturating_sub(min);
        idle_workers
            .into_iter()
            .take(spare)
            .map(|(id, _)| id.clone())
            .collect()
    }
}

/// Workers the master has reported unreachable for `grace` or longer (to be given up).
pub(super) fn unreachable_beyond(pool: &Pool, grace: Duration, now: Instant) -> Vec<String> {
    let mut ids: Vec<String> = pool
        .workers
        .iter()
        .filter(|(_, w)| w.reachability.given_up(grace, now))
        .map(|(id, _)| id.clone())
        .collect();
    ids.sort();
    ids
}

/// How many workers a backlog calls for: enough for every item waiting or in flight to be in
/// flight at `depth` items per worker, between `min` and `max`.
pub(super) fn desired(
    min: usize,
    max: usize,
    depth: usize,
    in_flight: usize,
    waiting: usize,
) -> usize {
    let need = (in_flight + waiting).div_ceil(depth.max(1));
    need.clamp(min, max.max(min))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesos_sdk::v1::TaskState;

    fn worker(id: &str, state: WorkerState, items: usize, idle_since: Instant) -> Worker {
        let mut in_flight = HashMap::new();
        for i in 0..items {
            in_flight.insert(
                (0, i as i64),
                Item {
                    msg: Arc::new(InputMessage::default()),
                    attempt: 1,
                    sent_at: idle_since,
                },
            );
        }
        Worker {
            task_id: TaskId { value: id.into() },
            executor_id: ExecutorId { value: id.into() },
            agent_id: AgentId { value: "a".into() },
            state,
            in_flight,
            idle_since,
            reachability: Reachability::default(),
        }
    }

    #[test]
    fn the_backlog_sizes_the_pool_between_min_and_max() {
        assert_eq!(desired(1, 4, 8, 0, 0), 1);
        assert_eq!(desired(1, 4, 8, 8, 0), 1);
        assert_eq!(desired(1, 4, 8, 8, 1), 2);
        assert_eq!(desired(1, 4, 8, 8, 100), 4);
        assert_eq!(desired(0, 4, 8, 0, 0), 0);
        assert_eq!(desired(2, 1, 8, 0, 0), 2);
    }

    #[test]
    fn idle_workers_above_min_go_oldest_first_and_only_without_backlog() {
        let t0 = Instant::now();
        let idle = Duration::from_secs(10);
        let mut pool = Pool::default();
        pool.workers
            .insert("w1".into(), worker("w1", WorkerState::Ready, 0, t0));
        pool.workers.insert(
            "w2".into(),
            worker("w2", WorkerState::Ready, 0, t0 + Duration::from_secs(1)),
        );
        pool.workers
            .insert("w3".into(), worker("w3", WorkerState::Ready, 2, t0));
        let later = t0 + Duration::from_secs(20);
        assert_eq!(pool.idle_beyond(1, 0, idle, later), vec!["w1", "w2"]);
        assert_eq!(pool.idle_beyond(2, 0, idle, later), vec!["w1"]);
        assert!(pool.idle_beyond(1, 3, idle, later).is_empty());
        assert!(
            pool.idle_beyond(1, 0, idle, t0 + Duration::from_secs(5))
                .is_empty()
        );
        assert_eq!(pool.in_flight(), 2);
        assert_eq!(pool.with_room(2), vec!["w1", "w2"]);
        assert_eq!(pool.with_room(3), vec!["w1", "w2", "w3"]);
        assert_eq!(pool.by_executor("w3").map(|w| w.in_flight.len()), Some(2));
    }

    #[test]
    fn an_unreachable_worker_takes_no_item_and_is_given_up_after_its_grace() {
        let t0 = Instant::now();
        let grace = Duration::from_secs(3);
        let mut pool = Pool::default();
        pool.workers
            .insert("w1".into(), worker("w1", WorkerState::Ready, 0, t0));
        let mut cut_off = worker("w2", WorkerState::Ready, 1, t0);
        cut_off.reachability.note(TaskState::TaskUnreachable, t0);
        pool.workers.insert("w2".into(), cut_off);
        let mut idle_cut_off = worker("w3", WorkerState::Ready, 0, t0);
        idle_cut_off
            .reachability
            .note(TaskState::TaskUnknown, t0 + Duration::from_secs(2));
        pool.workers.insert("w3".into(), idle_cut_off);
        assert_eq!(pool.with_room(4), vec!["w1"]);
        assert_eq!(pool.live(), 1, "the unreachable ones are replaced");
        let later = t0 + Duration::from_secs(20);
        assert_eq!(pool.idle_beyond(0, 0, grace, later), vec!["w1"]);
        assert!(unreachable_beyond(&pool, grace, t0 + Duration::from_secs(2)).is_empty());
        assert_eq!(unreachable_beyond(&pool, grace, t0 + grace), vec!["w2"]);
        assert_eq!(unreachable_beyond(&pool, grace, later), vec!["w2", "w3"]);
        // No grace: every unreachable worker goes at once.
        assert_eq!(
            unreachable_beyond(&pool, Duration::ZERO, t0 + Duration::from_secs(2)),
            vec!["w2", "w3"]
        );
    }
}
