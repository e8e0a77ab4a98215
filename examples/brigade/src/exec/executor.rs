//! `brigade-executor`'s [`Executor`]: per-message tasks (decode the task, run the processor
//! once, report `TASK_FINISHED` with stdout in `data` or `TASK_FAILED`/`TASK_KILLED` with the
//! reason) and warm workers (a long-lived task that runs the work items of MESSAGEs, up to its
//! concurrency at once, and answers with MESSAGEs, results finished together batched in one;
//! a streaming processor's worker keeps one process per slot instead, see [`super::stream`]).
//!
//! A per-message task is reported TASK_RUNNING only when its processor is still running after
//! [`BrigadeExecutor::running_after`] (200 ms by default): most messages take less, and go
//! straight from STAGING to their terminal state (Mesos does not require the RUNNING step).
//!
//! Lifecycle: per-message tasks on one agent share one executor (the scheduler reuses it for
//! every task it launches there). Once every task has its terminal update acknowledged by the
//! agent and nothing runs, the executor waits [`BrigadeExecutor::idle_stop`] for another task
//! (the scheduler normally sends SHUTDOWN first), then stops itself. Processes of one executor
//! share its sandbox as their working directory.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use mesos_sdk::executor::{Executor, ExecutorHandle, StatusUpdate};
use mesos_sdk::v1::{KillPolicy, Label, Labels, TaskId, TaskInfo, TaskState};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::run::{RunConfig, RunOutcome, container_name, run};
use super::stream::Streams;
use crate::protocol::warm::{WorkItem, WorkResult, decode_worker, is_worker, worker_concurrency};
use crate::protocol::{FailureCause, LABEL_FAILURE, Outcome, decode_task};

/// How long a per-message processor runs before its task is reported TASK_RUNNING.
pub const DEFAULT_RUNNING_AFTER: std::time::Duration = std::time::Duration::from_millis(200);

#[derive(Default)]
struct State {
    /// Running tasks by id: their kill switch.
    running: HashMap<String, CancellationToken>,
    /// Terminal updates not yet acknowledged.
    unacked_terminal: HashSet<Uuid>,
    /// The warm worker's queue, while one runs.
    warm: Option<mpsc::UnboundedSender<WorkItem>>,
    /// Whether some task was launched (the executor does not stop before its first task).
    launched: bool,
    /// Bumped by every launch: an idle timer that sees it changed does not stop the executor.
    epoch: u64,
}

type Shared = Arc<Mutex<State>>;

fn lock(state: &Shared) -> MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The Brigade executor.
pub struct BrigadeExecutor {
    config: Arc<RunConfig>,
    state: Shared,
    stop_when_idle: bool,
    idle_stop: std::time::Duration,
    running_after: std::time::Duration,
}

impl BrigadeExecutor {
    /// An executor with these run settings; it stops once idle after its tasks.
    pub fn new(config: RunConfig) -> Self {
        Self {
            config: Arc::new(config),
            state: Shared::default(),
            stop_when_idle: true,
            idle_stop: std::time::Duration::ZERO,
            running_after: DEFAULT_RUNNING_AFTER,
        }
    }

    /// Sends TASK_RUNNING for a per-message task only once its processor has run this long
    /// (default [`DEFAULT_RUNNING_AFTER`]); zero sends it at once.
    pub fn running_after(mut self, wait: std::time::Duration) -> Self {
        self.running_after = wait;
        self
    }

    /// How long to stay up with nothing to run before stopping (default: stop at once).
    pub fn idle_stop(mut self, wait: std::time::Duration) -> Self {
        self.idle_stop = wait;
        self
    }

    /// Keep running when idle (the agent's SHUTDOWN ends it).
    pub fn keep_running(mut self) -> Self {
        self.stop_when_idle = false;
        self
    }
}

/// Sends a terminal update and remembers it until acknowledged.
fn terminal(state: &Shared, handle: &ExecutorHandle, task_id: &str, update: StatusUpdate) {
    let mut s = lock(state);
    s.running.remove(task_id);
    match handle.update(update) {
        Ok(uuid) => {
            s.unacked_terminal.insert(uuid);
        }
        Err(e) => tracing::warn!(task = task_id, error = %e, "cannot send the terminal update"),
    }
}

fn failure_update(
    task_id: TaskId,
    state: TaskState,
    cause: FailureCause,
    msg: &str,
) -> StatusUpdate {
    StatusUpdate::new(task_id, state)
        .message(msg.to_string())
        .labels(Labels {
            labels: vec![Label {
                key: LABEL_FAILURE.to_string(),
                value: Some(cause.as_str().to_string()),
            }],
        })
}

fn outcome_update(task_id: TaskId, outcome: RunOutcome) -> StatusUpdate {
    match outcome {
        RunOutcome::Output(out) => {
            StatusUpdate::new(task_id, TaskState::TaskFinished).data(Bytes::from(out))
        }
        RunOutcome::Failed { cause, message } => {
            let state = if cause == FailureCause::Killed {
                TaskState::TaskKilled
            } else {
                TaskState::TaskFailed
            };
            failure_update(task_id, state, cause, &message)
        }
    }
}

impl BrigadeExecutor {
    fn launch_worker(&mut self, handle: &ExecutorHandle, task: TaskInfo) {
        let id = task.task_id.clone();
        let processor = match decode_worker(&task) {
            Ok(p) => p,
            Err(e) => {
                let u = failure_update(
                    id.clone(),
                    TaskState::TaskFailed,
                    FailureCause::BadTask,
                    &e.to_string(),
                );
                terminal(&self.state, handle, &id.value, u);
                return;
            }
        };
        let processor = Arc::new(processor);
        let token = CancellationToken::new();
        let (tx, mut rx) = mpsc::unbounded_channel::<WorkItem>();
        {
            let mut s = lock(&self.state);
            if s.warm.is_some() {
                drop(s);
                let u = failure_update(
                    id.clone(),
                    TaskState::TaskFailed,
                    FailureCause::BadTask,
                    "this executor already runs a warm worker",
                );
                terminal(&self.state, handle, &id.value, u);
                return;
            }
            s.running.insert(id.value.clone(), token.clone());
            s.warm = Some(tx);
        }
        if let Err(e) = handle.send_status(id.clone(), TaskState::TaskRunning, "warm worker ready")
        {
            tracing::warn!(error = %e, "cannot send TASK_RUNNING");
        }
        let (handle, state, config) = (
            handle.clone(),
            Arc::clone(&self.state),
            Arc::clone(&self.config),
        );
        let concurrency = worker_concurrency(&task);
        tokio::spawn(async move {
            let name = container_name(&id.value);
            // Results finished together leave in one MESSAGE.
            let (results_tx, mut results_rx) = mpsc::unbounded_channel::<WorkResult>();
            let sender = {
                let handle = handle.clone();
                tokio::spawn(async move {
                    while let Some(first) = results_rx.recv().await {
                        let mut batch = vec![first];
                        while let Ok(more) = results_rx.try_recv() {
                            batch.push(more);
                        }
                        if let Err(e) = handle.send_message(WorkResult::encode_batch(&batch)) {
                            tracing::warn!(error = %e, "cannot send warm results");
                        }
                    }
                })
            };
            let mut runs = tokio::task::JoinSet::new();
            // A streaming processor keeps one long-lived process per slot (messages are lines);
            // any other runs once per message, up to `concurrency` at once.
            let streams = processor.stream().is_some().then(|| {
                Streams::start(
                    &config,
                    &processor,
                    &name,
                    concurrency,
                    &results_tx,
                    &token,
                    &mut runs,
                )
            });
            let slots = Arc::new(tokio::sync::Semaphore::new(concurrency));
            loop {
                let item = tokio::select! {
                    item = rx.recv() => item,
                    () = token.cancelled() => None,
                };
                let Some(WorkItem(msg)) = item else { break };
                if let Some(streams) = &streams {
                    if !streams.submit(msg) {
                        break;
                    }
                    continue;
                }
                let permit = tokio::select! {
                    permit = slots.clone().acquire_owned() => permit,
                    () = token.cancelled() => break,
                };
                let Ok(permit) = permit else { break };
                while runs.try_join_next().is_some() {}
                // One container name per item: a killed item's container may still be removed.
                let item_name = format!("{name}-{}-{}", msg.partition, msg.offset);
                let (config, processor, token, results) = (
                    Arc::clone(&config),
                    Arc::clone(&processor),
                    token.clone(),
                    results_tx.clone(),
                );
                runs.spawn(async move {
                    let outcome = run(&config, &processor, &msg, &item_name, &token).await;
                    drop(permit);
                    if token.is_cancelled() {
                        // The item's result is lost with the worker; the scheduler re-runs it.
                        return;
                    }
                    let (outcome, cause) = match outcome {
                        RunOutcome::Output(o) => (Outcome::Output(o), None),
                        RunOutcome::Failed { cause, message } => {
                            (Outcome::Failed { reason: message }, Some(cause))
                        }
                    };
                    let _ = results.send(WorkResult {
                        partition: msg.partition,
                        offset: msg.offset,
                        outcome,
                        cause,
                    });
                });
            }
            // The streaming slots end with their queues.
            drop(streams);
            // Killed: every run stops with the token (containers are removed), no result leaves.
            token.cancel();
            while runs.join_next().await.is_some() {}
            drop(results_tx);
            let _ = sender.await;
            lock(&state).warm = None;
            let u = failure_update(
                id.clone(),
                TaskState::TaskKilled,
                FailureCause::Killed,
                "warm worker stopped",
            );
            terminal(&state, &handle, &id.value, u);
        });
    }
}

impl Executor for BrigadeExecutor {
    async fn launch(&mut self, handle: &ExecutorHandle, task: TaskInfo) {
        {
            let mut s = lock(&self.state);
            s.launched = true;
            s.epoch += 1;
        }
        if is_worker(&task) {
            self.launch_worker(handle, task);
            return;
        }
        let id = task.task_id.clone();
        let (processor, msg) = match decode_task(&task) {
            Ok(decoded) => decoded,
            Err(e) => {
                tracing::warn!(task = %id.value, error = %e, "task does not follow the protocol");
                let u = failure_update(
                    id.clone(),
                    TaskState::TaskFailed,
                    FailureCause::BadTask,
                    &e.to_string(),
                );
                terminal(&self.state, handle, &id.value, u);
                return;
            }
        };
        let token = CancellationToken::new();
        lock(&self.state)
            .running
            .insert(id.value.clone(), token.clone());
        let (handle, state, config) = (
            handle.clone(),
            Arc::clone(&self.state),
            Arc::clone(&self.config),
        );
        let running_after = self.running_after;
        tokio::spawn(async move {
            let name = container_name(&id.value);
            let run = run(&config, &processor, &msg, &name, &token);
            tokio::pin!(run);
            // TASK_RUNNING only for a processor still running after `running_after`: a short
            // one goes straight to its terminal state, which saves the agent, the master and
            // the scheduler a status update and its acknowledgement per message.
            let outcome = tokio::select! {
                outcome = &mut run => outcome,
                () = tokio::time::sleep(running_after) => {
                    if let Err(e) = handle.send_status(id.clone(), TaskState::TaskRunning, "processing") {
                        tracing::warn!(error = %e, "cannot send TASK_RUNNING");
                    }
                    run.await
                }
            };
            tracing::info!(task = %id.value, ok = matches!(outcome, RunOutcome::Output(_)), "processor done");
            let u = outcome_update(id.clone(), outcome);
            terminal(&state, &handle, &id.value, u);
        });
    }

    async fn kill(&mut self, _: &ExecutorHandle, task_id: TaskId, _: Option<KillPolicy>) {
        let token = lock(&self.state).running.get(&task_id.value).cloned();
        match token {
            Some(token) => token.cancel(),
            None => tracing::info!(task = %task_id.value, "KILL for a task that is not running"),
        }
    }

    async fn message(&mut self, _: &ExecutorHandle, data: Bytes) {
        match WorkItem::decode_all(&data) {
            Ok(items) => {
                let queue = lock(&self.state).warm.clone();
                match queue {
                    Some(q) => {
                        for item in items {
                            if q.send(item).is_err() {
                                tracing::warn!("work item for a stopped warm worker dropped");
                            }
                        }
                    }
                    None => tracing::warn!("work item without a warm worker dropped"),
                }
            }
            Err(e) => tracing::warn!(error = %e, "unreadable MESSAGE from the scheduler"),
        }
    }

    async fn acknowledged(&mut self, handle: &ExecutorHandle, _: &TaskId, uuid: Uuid) {
        let (idle, epoch) = {
            let mut s = lock(&self.state);
            s.unacked_terminal.remove(&uuid);
            let idle = s.launched && s.running.is_empty() && s.unacked_terminal.is_empty();
            (idle, s.epoch)
        };
        if !idle || !self.stop_when_idle {
            return;
        }
        if self.idle_stop.is_zero() {
            tracing::info!("every task is done and acknowledged: stopping");
            let _ = handle.stop();
            return;
        }
        let (state, handle, wait) = (Arc::clone(&self.state), handle.clone(), self.idle_stop);
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            let still_idle = {
                let s = lock(&state);
                s.epoch == epoch && s.running.is_empty() && s.unacked_terminal.is_empty()
            };
            if still_idle {
                tracing::info!(?wait, "idle with no SHUTDOWN from the scheduler: stopping");
                let _ = handle.stop();
            }
        });
    }

    async fn shutdown(&mut self, _: &ExecutorHandle) {
        for token in lock(&self.state).running.values() {
            token.cancel();
        }
    }
}
