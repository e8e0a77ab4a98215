//! Warm mode, the scheduler side: long-lived worker tasks (`mode: "warm"`) each run many
//! messages, sent as scheduler→executor MESSAGEs (batched) and answered by executor→scheduler
//! MESSAGEs (see [`crate::protocol::warm`]). The process scheduler's event loop calls in here
//! instead of its per-message launching when the processor is warm; consuming, the offset
//! tracker, producing results, recording them and committing are shared with per-message mode.
//!
//! - A worker is its own task with its own `brigade-executor` (never a per-message executor);
//!   it runs up to [`SchedulerConfig::warm_concurrency`] items at once and is sent up to four
//!   times that (so it never waits for the next MESSAGE); a streaming processor's worker is sent
//!   up to its share of the processor's `max_in_flight`.
//! - Batching: the event loop takes every message the consumer has ready before it dispatches,
//!   so a burst leaves as one MESSAGE per worker rather than one per message.
//! - Sizing: the pool holds between `workers.min` and `workers.max` workers, as many as the
//!   items waiting or in flight need at that depth; a worker idle for
//!   [`SchedulerConfig::warm_idle`] above the minimum is killed.
//! - Results: an output or a final error is produced exactly as in per-message mode (same topics,
//!   key, headers, store stages, duplicate counting); a failed item is retried after the
//!   processor's backoff up to its `retries` (infrastructure failures get
//!   [`SchedulerConfig::infrastructure_retries`] more).
//! - Loss: a worker that ends (killed, failed, lost with its agent or executor), or stays
//!   unreachable for [`SchedulerConfig::unreachable_grace`], has its items re-run on the other
//!   workers (an unreachable worker is sent nothing meanwhile, and replaced at once); an item with no answer by twice the processor's timeout plus
//!   [`SchedulerConfig::kill_grace`] (a MESSAGE may be dropped) is re-run too, and a late answer
//!   for it is ignored.
//! - Restart: items are not recorded when sent; a new incarnation re-consumes from the committed
//!   offset, and the workers of the previous one, reported by reconciliation as unknown tasks,
//!   are killed (not adopted: what they had in flight is re-run anyway). Records that reached
//!   "producing" are counted as duplicates when produced again, as in per-message mode.
//!
//! [`SchedulerConfig::warm_concurrency`]: crate::pipeline::SchedulerConfig::warm_concurrency
//! [`SchedulerConfig::warm_idle`]: crate::pipeline::SchedulerConfig::warm_idle
//! [`SchedulerConfig::infrastructure_retries`]: crate::pipeline::SchedulerConfig::infrastructure_retries
//! [`SchedulerConfig::kill_grace`]: crate::pipeline::SchedulerConfig::kill_grace
//! [`SchedulerConfig::unreachable_grace`]: crate::pipeline::SchedulerConfig::unreachable_grace

mod launch;
mod pool;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mesos_sdk::scheduler::{AckToken, calls};
use mesos_sdk::v1::{AgentId, ExecutorId, TaskStatus};

use super::super::record::{Stage, TaskRecord};
use super::{Attempt, Key, Produced, ResultKind, Runner, key_of};
use crate::processor::Processor;
use crate::protocol::warm::{WorkItem, WorkResult};
use crate::protocol::{self, FailureCause, InputMessage, Outcome};
use pool::{Item, ItemKey, Pool, WorkerState};

/// Items sent to a worker at most, per item it runs at once: enough that its queue does not run
/// dry during a MESSAGE round trip through the master and agent.
const PREFETCH: usize = 4;

/// Warm mode's state in a process scheduler.
#[derive(Debug)]
pub(super) struct Warm {
    pool: Pool,
    /// Messages waiting for a worker (in consumption order; retries after their backoff).
    queue: VecDeque<Attempt>,
    /// Task records of an earlier incarnation, by message: the re-run keeps the attempt count
    /// and record id (so a record that may be in Kafka already counts as a duplicate), and
    /// deletes its `tasks/` record, if any, with the rest once committed.
    recovered: HashMap<Key, TaskRecord>,
    min: usize,
    max: usize,
    concurrency: usize,
    /// Items sent to one worker at most.
    depth: usize,
    idle: Duration,
}

impl Warm {
    pub(super) fn new(processor: &Processor, concurrency: usize, idle: Duration) -> Self {
        let workers = processor.workers();
        let concurrency = concurrency.max(1);
        let max = (workers.max as usize).max(1);
        // A streaming processor answers as fast as lines go through a pipe: its workers are
        // kept fed with the processor's whole `max_in_flight` spread over the pool.
        let depth = if processor.stream().is_some() {
            (concurrency * PREFETCH).max((processor.max_in_flight() as usize).div_ceil(max))
        } else {
            concurrency * PREFETCH
        };
        Self {
            pool: Pool::default(),
            queue: VecDeque::new(),
            recovered: HashMap::new(),
            min: workers.min as usize,
            max,
            concurrency,
            depth,
            idle,
        }
    }

    /// Messages waiting or in flight on workers.
    pub(super) fn tasks(&self) -> usize {
        self.queue.len() + self.pool.in_flight()
    }

    /// Workers to launch now for the backlog.
    fn wanted(&self) -> usize {
        let desired = pool::desired(
            self.min,
            self.max,
            self.depth,
            self.pool.in_flight(),
            self.queue.len(),
        );
        desired.saturating_sub(self.pool.live())
    }
}

/// The store id of a warm item's record (one per message and processor).
fn record_id(processor: &str, partition: i32, offset: i64) -> String {
    format!("brigade-{processor}-warm-{partition}-{offset}")
}

impl Runner {
    fn warm_mut(&mut self) -> Option<&mut Warm> {
        self.warm.as_mut()
    }

    /// Switches this runner to warm mode: records recovered as running tasks become
    /// recovered items (their messages run again when consumed again).
    pub(super) fn init_warm(&mut self) {
        let mut warm = Warm::new(
            &self.processor,
            self.config.warm_concurrency,
            self.config.warm_idle,
        );
        for (_, running) in self.running.drain() {
            let r = running.record;
            warm.recovered
                .insert(key_of(&r.topic, r.partition, r.offset), r);
        }
        self.by_offset.clear();
        self.warm = Some(warm);
    }

    /// A consumed message (new, not finished by an earlier incarnation) waits for a worker.
    /// The caller sends it with [`Runner::warm_dispatch`] once it has taken every message
    /// ready now, so that they leave in one MESSAGE per worker.
    pub(super) fn warm_message(&mut self, msg: Arc<InputMessage>) {
        let Some(warm) = self.warm_mut() else { return };
        let attempt = if warm.recovered.is_empty() {
            1
        } else {
            let key = key_of(&msg.topic, msg.partition, msg.offset);
            warm.recovered.get(&key).map_or(1, |r| r.attempt)
        };
        warm.queue.push_back(Attempt {
            msg,
            attempt,
            not_before: Instant::now(),
        });
        self.etiquette();
    }

    /// Sends waiting items to ready workers with room, batched per worker.
    pub(super) fn warm_dispatch(&mut self) {
        let Some(warm) = self.warm.as_mut() else {
            return;
        };
        let now = Instant::now();
        let mut calls_out = Vec::new();
        for id in warm.pool.with_room(warm.depth) {
            if !warm.queue.iter().any(|a| a.not_before <= now) {
                break;
            }
            let Some(worker) = warm.pool.workers.get_mut(&id) else {
                continue;
            };
            let room = warm.depth.saturating_sub(worker.in_flight.len());
            let mut items = Vec::new();
            let mut i = 0;
            while items.len() < room && i < warm.queue.len() {
                if warm.queue[i].not_before <= now {
                    if let Some(attempt) = warm.queue.remove(i) {
                        items.push(attempt);
                    }
                } else {
                    i += 1;
                }
            }
            if items.is_empty() {
                continue;
            }
            let mut work = Vec::with_capacity(items.len());
            for attempt in items {
                let msg = attempt.msg;
                work.push(Arc::clone(&msg));
                worker.in_flight.insert(
                    (msg.partition, msg.offset),
                    Item {
                        msg,
                        attempt: attempt.attempt,
                        sent_at: now,
                    },
                );
            }
            tracing::debug!(worker = %id, items = work.len(), "sending work items");
            calls_out.push(calls::message(
                worker.agent_id.clone(),
                worker.executor_id.clone(),
                Bytes::from(WorkItem::encode_messages(work.iter().map(|m| &**m))),
            ));
        }
        for call in calls_out {
            self.send(call);
        }
    }

    /// A status update of one of this incarnation's workers is handled here (`None`); the
    /// acknowledgement token of any other task's update is given back.
    #[allow(clippy::option_option)]
    pub(super) fn warm_update(
        &mut self,
        status: &TaskStatus,
        ack: Option<AckToken>,
    ) -> Option<Option<AckToken>> {
        let task_id = status.task_id.value.clone();
        let Some(warm) = self.warm.as_mut() else {
            return Some(ack);
        };
        let Some(worker) = warm.pool.workers.get_mut(&task_id) else {
            return Some(ack);
        };
        if protocol::outcome(status).is_none() {
            let state = status.state();
            if worker.reachability.note(state, Instant::now()) {
                tracing::warn!(processor = %self.processor.name(), worker = %task_id, ?state, "warm worker unreachable");
            }
            if state == mesos_sdk::v1::TaskState::TaskRunning
                && worker.state == WorkerState::Launching
            {
                tracing::info!(processor = %self.processor.name(), worker = %task_id, "warm worker ready");
                worker.state = WorkerState::Ready;
                worker.idle_since = Instant::now();
            }
            self.acknowledge(ack);
            self.warm_dispatch();
            return None;
        }
        let reason = match protocol::outcome(status) {
            Some(Outcome::Failed { reason }) => reason,
            _ => format!("{:?}", status.state()),
        };
        self.warm_worker_gone(&task_id, reason);
        self.acknowledge(ack);
        self.warm_dispatch();
        self.etiquette();
        None
    }

    /// Worker `task_id` is gone (ended, or given up while unreachable): its items run again
    /// on the other workers.
    fn warm_worker_gone(&mut self, task_id: &str, reason: String) {
        let Some(worker) = self
            .warm
            .as_mut()
            .and_then(|warm| warm.pool.workers.remove(task_id))
        else {
            return;
        };
        self.placer.ledger_mut().forget(task_id);
        if worker.state == WorkerState::Stopping {
            tracing::info!(processor = %self.processor.name(), worker = %task_id, "warm worker stopped");
        } else {
            tracing::warn!(processor = %self.processor.name(), worker = %task_id, items = worker.in_flight.len(), %reason, "warm worker lost");
        }
        let agent = worker.agent_id.clone();
        for (_, item) in worker.in_flight {
            self.warm_failed(
                item,
                &agent,
                format!("warm worker lost: {reason}"),
                FailureCause::Infrastructure,
            );
        }
    }

    /// An executor's MESSAGE: the results of a worker.
    pub(super) fn warm_executor_message(&mut self, executor_id: &ExecutorId, data: &[u8]) {
        let results = match WorkResult::decode_all(data) {
            Ok(results) => results,
            Err(e) => {
                tracing::warn!(executor = %executor_id.value, error = %e, "unreadable warm result");
                return;
            }
        };
        tracing::debug!(executor = %executor_id.value, results = results.len(), "warm results");
        let now = Instant::now();
        let mut finished = Vec::with_capacity(results.len());
        let agent = {
            let Some(warm) = self.warm.as_mut() else {
                return;
            };
            let Some(worker) = warm.pool.by_executor(&executor_id.value) else {
                tracing::debug!(executor = %executor_id.value, "results of a worker not ours (any more)");
                return;
            };
            for result in results {
                match worker.in_flight.remove(&(result.partition, result.offset)) {
                    Some(item) => finished.push((item, result)),
                    None => tracing::debug!(
                        offset = result.offset,
                        "late result of an item re-run elsewhere; ignored"
                    ),
                }
            }
            if worker.in_flight.is_empty() {
                worker.idle_since = now;
            }
            worker.agent_id.clone()
        };
        // The outputs of one MESSAGE are produced (and their records written) as one batch.
        let mut outputs = Vec::with_capacity(finished.len());
        for (item, result) in finished {
            match result.outcome {
                Outcome::Output(output) => {
                    outputs.push(self.warm_result(item, &agent, ResultKind::Output(output)));
                }
                Outcome::Failed { reason } => {
                    let cause = result.cause.unwrap_or(FailureCause::Exit);
                    self.warm_failed(item, &agent, reason, cause);
                }
            }
        }
        self.start_produce_all(outputs);
        self.warm_dispatch();
    }

    /// A failed item: retried after the processor's backoff while attempts remain (more for
    /// infrastructure failures), else its error record is produced.
    fn warm_failed(&mut self, item: Item, agent: &AgentId, reason: String, cause: FailureCause) {
        let infrastructure = cause == FailureCause::Infrastructure;
        let retries = self.processor.retries()
            + if infrastructure {
                self.config.infrastructure_retries
            } else {
                0
            };
        if item.attempt <= retries {
            self.counters.retries();
            let backoff = if infrastructure {
                Duration::ZERO
            } else {
                self.processor.backoff_for(item.attempt)
            };
            tracing::info!(offset = item.msg.offset, attempt = item.attempt, ?backoff, %reason, "warm item failed; retrying");
            if let Some(warm) = self.warm.as_mut() {
                warm.queue.push_back(Attempt {
                    msg: item.msg,
                    attempt: item.attempt + 1,
                    not_before: Instant::now() + backoff,
                });
            }
        } else {
            let done = self.warm_result(item, agent, ResultKind::Error(reason));
            self.start_produce_all(vec![done]);
        }
    }

    /// An item's result, to produce as in per-message mode.
    fn warm_result(&mut self, item: Item, agent: &AgentId, kind: ResultKind) -> Produced {
        let msg = &item.msg;
        let recovered = self
            .warm
            .as_mut()
            .filter(|w| !w.recovered.is_empty())
            .and_then(|w| {
                w.recovered
                    .remove(&key_of(&msg.topic, msg.partition, msg.offset))
            });
        let task_key = recovered.is_some();
        let task_id = recovered.map_or_else(
            || record_id(self.processor.name(), msg.partition, msg.offset),
            |r| r.task_id,
        );
        let record = TaskRecord {
            task_id,
            agent_id: (!agent.value.is_empty()).then(|| agent.value.clone()),
            topic: msg.topic.clone(),
            partition: msg.partition,
            offset: msg.offset,
            key: msg.key.clone(),
            attempt: item.attempt,
            stage: Stage::Launched,
        };
        Produced {
            record,
            task_key,
            started: Some(item.sent_at),
            kind,
            token: None,
        }
    }

    /// Timers: items with no answer for too long run again, idle workers above the minimum
    /// are killed, the pool grows with the backlog.
    pub(super) fn warm_tick(&mut self) {
        let now = Instant::now();
        let limit = self.processor.timeout() * 2 + self.config.kill_grace;
        let mut overdue = Vec::new();
        let mut stop = Vec::new();
        if let Some(warm) = self.warm.as_mut() {
            for worker in warm.pool.workers.values_mut() {
                let late: Vec<ItemKey> = worker
                    .in_flight
                    .iter()
                    .filter(|(_, item)| now.duration_since(item.sent_at) > limit)
                    .map(|(key, _)| *key)
                    .collect();
                for key in late {
                    if let Some(item) = worker.in_flight.remove(&key) {
                        overdue.push((item, worker.agent_id.clone()));
                    }
                }
            }
            let waiting = warm.queue.len();
            for id in warm.pool.idle_beyond(warm.min, waiting, warm.idle, now) {
                if let Some(worker) = warm.pool.workers.get_mut(&id) {
                    worker.state = WorkerState::Stopping;
                    stop.push((worker.task_id.clone(), worker.agent_id.clone()));
                }
            }
        }
        for (item, agent) in overdue {
            tracing::warn!(
                offset = item.msg.offset,
                "warm item unanswered; running it again"
            );
            self.warm_failed(
                item,
                &agent,
                "no answer from the warm worker".into(),
                FailureCause::Infrastructure,
            );
        }
        for (task_id, agent_id) in stop {
            tracing::info!(processor = %self.processor.name(), worker = %task_id.value, "stopping an idle warm worker");
            self.send(calls::kill(task_id, Some(agent_id), None));
        }
        // Unreachable past the grace: given up (no KILL: the master cannot reach it; if it
        // comes back it reports running and is killed as unknown).
        let grace = self.config.unreachable_grace;
        let given_up = self
            .warm
            .as_ref()
            .map(|warm| pool::unreachable_beyond(&warm.pool, grace, now))
            .unwrap_or_default();
        let replace = !given_up.is_empty();
        for task_id in given_up {
            self.warm_worker_gone(&task_id, format!("agent unreachable for {grace:?} or more"));
        }
        if replace {
            self.etiquette();
        }
        self.warm_dispatch();
    }

    /// SUPPRESS while no worker is wanted, REVIVE (rate-limited) when one is and offers are
    /// suppressed or filtered.
    pub(super) fn warm_etiquette(&mut self) {
        let Some(warm) = self.warm.as_ref() else {
            return;
        };
        let wanted = warm.wanted() > 0;
        let role = || vec![self.config.role.clone()];
        if !wanted && !self.suppressed {
            self.suppressed = true;
            self.send_in_order(calls::suppress(role()));
        } else if wanted
            && (self.suppressed || self.filtered)
            && self.revive_bucket.try_take(Instant::now())
        {
            self.suppressed = false;
            self.filtered = false;
            self.send_in_order(calls::revive(role()));
        }
    }

    /// Kills every worker (the scheduler stops; what they had in flight is re-run by the next
    /// incarnation from the committed offset).
    pub(super) async fn warm_stop(&mut self) {
        let Some(warm) = self.warm.as_mut() else {
            return;
        };
        let kills: Vec<_> = warm
            .pool
            .workers
            .values_mut()
            .map(|w| {
                w.state = WorkerState::Stopping;
                calls::kill(w.task_id.clone(), Some(w.agent_id.clone()), None)
            })
            .collect();
        let scheduler = self.scheduler.clone();
        let all = futures::future::join_all(kills.into_iter().map(|call| {
            let scheduler = scheduler.clone();
            async move { scheduler.call(call).await }
        }));
        if tokio::time::timeout(Duration::from_secs(5), all)
            .await
            .is_err()
        {
            tracing::warn!(processor = %self.processor.name(), "killing warm workers timed out");
        }
    }
}
