//! Results: terminal status updates become output or error records (or retries), produced in
//! the background; acknowledgements follow the records; offsets are committed behind them.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use mesos_sdk::scheduler::{AckToken, calls};
use mesos_sdk::v1::{self, AgentId, TaskId, TaskState, TaskStatus};

use super::super::record::{RECORDS_PER_BATCH, Span, Stage, TaskRecord, span_of};
use super::{Attempt, Produced, ResultEvent, ResultKind, Runner, key_of};
use crate::kafka::Source;
use crate::protocol::{self, Outcome};

impl Runner {
    pub(super) fn acknowledge(&self, token: Option<AckToken>) {
        if let Some(token) = token {
            let scheduler = self.scheduler.clone();
            tokio::spawn(async move {
                if let Err(e) = scheduler.acknowledge(token).await {
                    tracing::debug!(error = %e, "acknowledgement failed; the agent resends");
                }
            });
        }
    }

    pub(super) async fn on_update(&mut self, status: TaskStatus, ack: Option<AckToken>) {
        let task_id = status.task_id.value.clone();
        let state = status.state();
        let Some(outcome) = protocol::outcome(&status) else {
            // Not terminal.
            if let Some(running) = self.running.get_mut(&task_id) {
                if running.record.agent_id.is_none() {
                    running.record.agent_id = status.agent_id.as_ref().map(|a| a.value.clone());
                }
                if running.reachability.note(state, Instant::now()) {
                    tracing::warn!(task = %task_id, ?state, "task unreachable");
                }
            } else if !self.produced_tasks.contains(&task_id)
                && !self.stopping
                && !protocol::unreachable(state)
            {
                // A live task this scheduler does not know (its record is gone): kill it. Not
                // while unreachable: the master would only answer TASK_UNREACHABLE again; it is
                // killed when its agent is back and it reports running.
                tracing::info!(task = %task_id, ?state, "killing an unknown task");
                self.send(calls::kill(
                    status.task_id.clone(),
                    status.agent_id.clone(),
                    None,
                ));
            }
            self.acknowledge(ack);
            return;
        };
        if super::executors::executor_gone(&status)
            && let Some(agent) = status.agent_id.as_ref()
        {
            // The next task on that agent starts a fresh executor.
            self.executors.forget_agent(&agent.value);
        }
        if self.produced_tasks.contains(&task_id) {
            self.acknowledge(ack);
            return;
        }
        if self.producing_tasks.contains(&task_id) {
            // A resend while its record is being produced: not acknowledged before the record.
            return;
        }
        let from_reconciliation =
            ack.is_none() && status.reason() == v1::task_status::Reason::Reconciliation;
        if from_reconciliation && state == TaskState::TaskFinished {
            // The master's answer carries no output; the agent resends the real update.
            return;
        }
        let Some(running) = self.running.remove(&task_id) else {
            self.acknowledge(ack);
            return;
        };
        let started = running.msg.is_some().then_some(running.launched_at);
        let record = running.record;
        self.placer.ledger_mut().forget(&super::offers::request_id(
            &record.topic,
            record.partition,
            record.offset,
        ));
        let key = key_of(&record.topic, record.partition, record.offset);
        self.by_offset.remove(&key);
        match outcome {
            Outcome::Output(output) => {
                self.start_produce(record, ResultKind::Output(output), ack, started);
            }
            Outcome::Failed { reason } => {
                // Failures of the infrastructure (executor lost, agent gone, ...) are not the
                // processor's: they get extra attempts beyond the processor's own retries.
                let infrastructure = protocol::failure_cause(&status)
                    == Some(protocol::FailureCause::Infrastructure);
                let retries = self.processor.retries()
                    + if infrastructure {
                        self.config.infrastructure_retries
                    } else {
                        0
                    };
                if record.attempt <= retries {
                    self.counters.retries();
                    let backoff = self.processor.backoff_for(record.attempt);
                    tracing::info!(task = %task_id, attempt = record.attempt, ?backoff, %reason, "task failed; retrying");
                    let records = self.records.clone();
                    let id = record.task_id.clone();
                    match running.msg {
                        Some(msg) => {
                            self.pending.push_back(Attempt {
                                msg,
                                attempt: record.attempt + 1,
                                not_before: Instant::now() + backoff,
                            });
                        }
                        None => {
                            // Not consumed again yet: it launches when it is.
                        }
                    }
                    let token = ack;
                    let scheduler = self.scheduler.clone();
                    tokio::spawn(async move {
                        let _ = records.delete_all(&[id]).await;
                        if let Some(token) = token {
                            let _ = scheduler.acknowledge(token).await;
                        }
                    });
                    self.etiquette();
                } else {
                    self.start_produce(record, ResultKind::Error(reason), ack, started);
                }
            }
        }
    }

    /// Produces the record of a finished message in the background (see
    /// [`Runner::start_produce_all`]).
    pub(super) fn start_produce(
        &mut self,
        record: TaskRecord,
        kind: ResultKind,
        token: Option<AckToken>,
        started: Option<Instant>,
    ) {
        self.start_produce_all(vec![Produced {
            record,
            task_key: true,
            started,
            kind,
            token,
        }]);
    }

    /// Produces the records of finished messages in the background, in batches of at most
    /// [`RECORDS_PER_BATCH`]: each batch is recorded as producing (one store write), its
    /// records are produced all at once, then it is marked produced (an empty marker key);
    /// each step is retried until it succeeds or the scheduler stops. Their acknowledgement
    /// tokens are used once their records are acknowledged by Kafka.
    pub(super) fn start_produce_all(&mut self, mut all: Vec<Produced>) {
        while all.len() > RECORDS_PER_BATCH {
            let rest = all.split_off(RECORDS_PER_BATCH);
            self.start_produce_batch(std::mem::replace(&mut all, rest));
        }
        self.start_produce_batch(all);
    }

    fn start_produce_batch(&mut self, batch: Vec<Produced>) {
        if batch.is_empty() {
            return;
        }
        let id = uuid::Uuid::new_v4().simple().to_string();
        self.batches
            .insert(id.clone(), span_of(batch.iter().map(record_of)));
        for done in &batch {
            let record = &done.record;
            if !self.maybe_produced.is_empty() && self.maybe_produced.remove(&record.task_id) {
                self.counters.duplicates();
                tracing::warn!(
                    processor = %self.name(),
                    offset = record.offset,
                    partition = record.partition,
                    "a record that may already be in Kafka is produced again (duplicate)"
                );
            }
            if done.task_key {
                // Its task's status updates may be resent meanwhile (a fresh warm item has no
                // task of its own).
                self.producing_tasks.insert(record.task_id.clone());
            }
        }
        let processor = self.processor.clone();
        let producer = self.producer.clone();
        let records = self.records.clone();
        self.producing.spawn(async move {
            let mut batch = batch;
            for done in &mut batch {
                done.record.stage = Stage::Producing;
            }
            retry_forever("marking producing", || {
                records.put_batch(&id, batch.iter().map(record_of))
            })
            .await;
            let sends = batch.iter().map(|done| {
                let record = &done.record;
                let (processor, producer) = (&processor, &producer);
                async move {
                    let source = Source {
                        processor: processor.name(),
                        topic: &record.topic,
                        partition: record.partition,
                        offset: record.offset,
                        key: record.key.as_deref(),
                        attempts: record.attempt,
                    };
                    match &done.kind {
                        ResultKind::Output(output) => {
                            if let Some(topic) = processor.output() {
                                retry_forever("producing output", || {
                                    producer.produce_output(topic, &source, output)
                                })
                                .await;
                            }
                        }
                        ResultKind::Error(reason) => {
                            retry_forever("producing error", || {
                                producer.produce_error(processor.error(), &source, reason)
                            })
                            .await;
                        }
                    }
                }
            });
            futures::future::join_all(sends).await;
            // The stage is not set in memory: "produced" is the marker key written here, and
            // only a restart reads it back (the records' in-memory stage is not read after the
            // write above).
            retry_forever("marking produced", || records.mark_produced(&id)).await;
            batch
        });
    }

    pub(super) fn on_produced(&mut self, done: Produced) {
        let Produced {
            record,
            task_key,
            started,
            kind,
            token,
        } = done;
        self.acknowledge(token);
        if let Some(started) = started {
            self.counters.observe_latency(started.elapsed());
        }
        match &kind {
            ResultKind::Output(_) => self.counters.outputs(),
            ResultKind::Error(_) => self.counters.errors(),
        }
        if !self
            .tracker
            .completed_at(&record.topic, record.partition, record.offset)
        {
            // Recovered from an earlier incarnation; not consumed again yet.
            self.counters.recovered();
            self.finished
                .insert(key_of(&record.topic, record.partition, record.offset));
        }
        if task_key {
            // A task (and a record) of its own: its updates are acknowledged from now on, and
            // its record is deleted once its offset is committed. Otherwise its batch is all
            // there is, deleted by its span.
            self.producing_tasks.remove(&record.task_id);
            self.produced_tasks.insert(record.task_id.clone());
            let key = key_of(&record.topic, record.partition, record.offset);
            self.done.push((key, record.task_id.clone()));
        }
        if let Some(results) = &self.config.results {
            let _ = results.send(ResultEvent {
                processor: self.processor.name().to_string(),
                topic: record.topic.clone(),
                partition: record.partition,
                offset: record.offset,
                attempts: record.attempt,
                kind,
            });
        }
        self.etiquette();
    }

    pub(super) async fn on_tick(&mut self) {
        self.commit().await;
        if let Err(e) = self.launch_held().await {
            tracing::warn!(error = %e, "launching on held offers");
        }
        self.etiquette();
        let now = Instant::now();
        // Shared executors idle for long enough are shut down.
        let busy: HashSet<&str> = self
            .running
            .values()
            .filter_map(|r| r.record.agent_id.as_deref())
            .collect();
        let expired = self.executors.expire(&busy, self.config.executor_idle, now);
        for (executor_id, agent_id) in expired {
            tracing::debug!(executor = %executor_id.value, "shutting down an idle executor");
            self.send(calls::shutdown(executor_id, agent_id));
        }
        // Tasks far past their timeout are killed (the executor should have ended them).
        let limit = self.processor.timeout() + self.config.kill_grace;
        let overdue: Vec<(TaskId, Option<AgentId>)> = self
            .running
            .values_mut()
            .filter(|r| !r.kill_sent && now.duration_since(r.launched_at) > limit)
            .map(|r| {
                r.kill_sent = true;
                (
                    TaskId {
                        value: r.record.task_id.clone(),
                    },
                    r.record.agent_id.clone().map(|value| AgentId { value }),
                )
            })
            .collect();
        for (task_id, agent_id) in overdue {
            tracing::warn!(task = %task_id.value, "task overdue; killing it");
            self.send(calls::kill(task_id, agent_id, None));
        }
        self.give_up_unreachable(now).await;
        if now.duration_since(self.reconciled_at) >= self.config.reconcile_interval {
            self.reconcile().await;
        }
    }

    /// Tasks unreachable for [`SchedulerConfig::unreachable_grace`] end as lost: their
    /// messages run again (an infrastructure failure). No KILL is sent: the master cannot
    /// reach the task, and if it comes back it reports running and is killed as unknown.
    ///
    /// [`SchedulerConfig::unreachable_grace`]: crate::pipeline::SchedulerConfig::unreachable_grace
    async fn give_up_unreachable(&mut self, now: Instant) {
        let grace = self.config.unreachable_grace;
        let lost: Vec<(String, Option<String>)> = self
            .running
            .values()
            .filter(|r| r.reachability.given_up(grace, now))
            .map(|r| (r.record.task_id.clone(), r.record.agent_id.clone()))
            .collect();
        for (task_id, agent_id) in lost {
            tracing::warn!(task = %task_id, ?grace, "task unreachable past its grace; running its message again");
            let status = protocol::lost_status(
                TaskId { value: task_id },
                agent_id.map(|value| AgentId { value }),
                format!("agent unreachable for {grace:?} or more; the message runs again"),
            );
            self.on_update(status, None).await;
        }
    }

    /// Commits what the tracker allows, then deletes the task records and result batches of
    /// committed messages.
    pub(super) async fn commit(&mut self) {
        let offsets = self.tracker.committable();
        if offsets.is_empty() {
            return;
        }
        let consumer = self.consumer.clone();
        let list = offsets.clone();
        let committed = tokio::task::spawn_blocking(move || consumer.commit_sync(&list)).await;
        match committed {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "commit failed; retrying later");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "commit task failed");
                return;
            }
        }
        for (tp, offset) in &offsets {
            // The store's copy of the position: a restart starts there even if the group's
            // committed offset were older, so records deleted below never come back.
            if let Err(e) = self
                .records
                .set_committed(&tp.topic, tp.partition, *offset)
                .await
            {
                tracing::warn!(error = %e, "recording the committed offset failed; retrying later");
                return;
            }
            self.tracker.mark_committed(tp, *offset);
        }
        let mut delete = Vec::new();
        let produced_tasks = &mut self.produced_tasks;
        self.done.retain(|((topic, partition, offset), task_id)| {
            let committed = offsets
                .iter()
                .any(|(tp, c)| &tp.topic == topic && tp.partition == *partition && offset < c);
            if committed {
                produced_tasks.remove(task_id);
                delete.push(task_id.clone());
            }
            !committed
        });
        let tracker = &self.tracker;
        let passed = |span: &Span| {
            span.iter()
                .all(|(tp, highest)| tracker.committed(tp).is_some_and(|c| *highest < c))
        };
        let batches: Vec<String> = self
            .batches
            .iter()
            .filter(|(_, span)| passed(span))
            .map(|(id, _)| id.clone())
            .collect();
        for id in &batches {
            self.batches.remove(id);
        }
        if !delete.is_empty() || !batches.is_empty() {
            let records = self.records.clone();
            tokio::spawn(async move {
                if let Err(e) = records.delete_done(&delete, &batches).await {
                    tracing::debug!(error = %e, "deleting the records of committed messages");
                }
            });
        }
    }
}

/// A produce's task record (a named function: a closure here would trip the compiler's
/// higher-ranked lifetime check on the spawned future).
fn record_of(done: &Produced) -> &TaskRecord {
    &done.record
}

/// Runs `step` until it succeeds, waiting a little longer after each failure (at most 5 s).
async fn retry_forever<T, E, F, Fut>(what: &str, mut step: F) -> T
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut wait = Duration::from_millis(100);
    loop {
        match step().await {
            Ok(value) => return value,
            Err(e) => {
                tracing::warn!(error = %e, "{what} failed; retrying in {wait:?}");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        }
    }
}
