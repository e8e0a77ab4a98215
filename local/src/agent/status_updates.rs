//! The agent's status update manager: reliable, ordered delivery of task status updates.
//!
//! Every update is recorded in its task's stream (and appended to the task's checkpoint file for
//! checkpointing frameworks), then forwarded to the master with `FromAgent::StatusUpdate`. One
//! update per task is outstanding at a time; it is forwarded again with exponential backoff
//! (`status_update_retry_min` doubling up to `status_update_retry_max`) until the master relays
//! the framework's acknowledgement, after which the task's next queued update goes out.

use std::collections::{HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::Agent;
use crate::link::FromAgent;
use mesos_sdk::v1::{FrameworkId, TaskState, TaskStatus};

/// The updates of one task.
#[derive(Debug)]
pub(super) struct UpdateStream {
    pub(super) framework_id: FrameworkId,
    /// Recorded but unacknowledged updates, oldest first; the front one is outstanding.
    pub(super) queue: VecDeque<TaskStatus>,
    /// Every uuid recorded in this stream (duplicates are ignored).
    seen: HashSet<Bytes>,
    /// Checkpoint file of the stream, for checkpointing frameworks.
    path: Option<PathBuf>,
}

impl UpdateStream {
    pub(super) fn new(framework_id: FrameworkId, path: Option<PathBuf>) -> Self {
        Self {
            framework_id,
            queue: VecDeque::new(),
            seen: HashSet::new(),
            path,
        }
    }

    /// Marks an update as already recorded (recovery).
    pub(super) fn remember(&mut self, status: &TaskStatus) {
        if let Some(uuid) = &status.uuid {
            self.seen.insert(uuid.clone());
        }
    }
}

impl Agent {
    /// Records `status` (which has a uuid) for reliable delivery. Returns `false` for a
    /// duplicate (an update with a uuid already recorded for the task).
    pub(super) fn record_update(
        self: &Arc<Self>,
        framework_id: &str,
        mut status: TaskStatus,
        checkpoint_path: Option<PathBuf>,
    ) -> bool {
        if status.uuid.is_none() {
            status.uuid = Some(Bytes::copy_from_slice(uuid::Uuid::new_v4().as_bytes()));
        }
        if status.agent_id.is_none() {
            status.agent_id = Some(self.id.clone());
        }
        if status.timestamp.is_none() {
            status.timestamp = Some(super::now_seconds());
        }
        status.message = status.message.map(crate::status_message::bounded);
        let uuid = status.uuid.clone().unwrap_or_default();
        let task_id = status.task_id.value.clone();
        let (forward_now, checkpointed) = {
            let mut state = self.lock();
            if state.stopped {
                return false;
            }
            let task_state = TaskState::try_from(status.state).unwrap_or(TaskState::TaskStaging);
            let mut path = checkpoint_path;
            let executor_hint = status
                .executor_id
                .as_ref()
                .map_or(task_id.as_str(), |e| e.value.as_str());
            if let Some(framework) = state.frameworks.get_mut(framework_id) {
                // The executor named in the update (or, for command tasks, the task's own id)
                // first; a scan only for updates that name neither.
                let hinted = framework
                    .executors
                    .get(executor_hint)
                    .is_some_and(|e| e.tasks.contains_key(&task_id));
                let candidates: Box<dyn Iterator<Item = &mut super::Executor>> = if hinted {
                    Box::new(framework.executors.get_mut(executor_hint).into_iter())
                } else {
                    Box::new(framework.executors.values_mut())
                };
                for executor in candidates {
                    if let Some(task) = executor.tasks.get_mut(&task_id) {
                        task.state = task_state;
                        if status.container_status.is_none() {
                            status.container_status = Some(super::operator_api::container_status(
                                &executor.run_id,
                                executor.pgid.or(task.pgid),
                                self.endpoint.ip(),
                            ));
                        }
                        if path.is_none() && executor.checkpoint {
                            path = Some(self.meta.updates_path(
                                &self.id,
                                framework_id,
                                &executor.info.executor_id.value,
                                &executor.run_id,
                                &task_id,
                            ));
                        }
                        break;
                    }
                }
            }
            let stream = state
                .streams
                .entry((framework_id.to_string(), task_id.clone()))
                .or_insert_with(|| {
                    UpdateStream::new(
                        FrameworkId {
                            value: framework_id.to_string(),
                        },
                        path,
                    )
                });
            if !stream.seen.insert(uuid) {
                return false;
            }
            let checkpointed = stream.path.clone();
            if let Some(path) = &checkpointed {
                let status = status.clone();
                let path = path.clone();
                self.checkpoints.submit("status update", move |_| {
                    super::checkpoint::append_update(&path, &status)
                });
            }
            stream.queue.push_back(status);
            (stream.queue.len() == 1, checkpointed.is_some())
        };
        if forward_now {
            self.forward_after_checkpoint(framework_id, &task_id, checkpointed);
        }
        true
    }

    /// Forwards the outstanding update of a task: at once, or for a checkpointed stream once
    /// the checkpoint writes submitted so far (its record among them) are on disk.
    fn forward_after_checkpoint(
        self: &Arc<Self>,
        framework_id: &str,
        task_id: &str,
        checkpointed: bool,
    ) {
        if !checkpointed {
            self.forward_front(framework_id, task_id);
            return;
        }
        let agent = Arc::downgrade(self);
        let (framework_id, task_id) = (framework_id.to_string(), task_id.to_string());
        self.checkpoints.then(move || {
            if let Some(agent) = agent.upgrade() {
                agent.forward_front(&framework_id, &task_id);
            }
        });
    }

    /// Forwards the outstanding update of a task and arms its retry timer.
    pub(super) fn forward_front(self: &Arc<Self>, framework_id: &str, task_id: &str) {
        let front = {
            let state = self.lock();
            state
                .streams
                .get(&(framework_id.to_string(), task_id.to_string()))
                .and_then(|s| s.queue.front().map(|f| (s.framework_id.clone(), f.clone())))
        };
        let Some((framework, status)) = front else {
            return;
        };
        let uuid = status.uuid.clone().unwrap_or_default();
        self.send_master(FromAgent::StatusUpdate {
            framework_id: framework,
            status,
        });
        self.arm_retry(
            framework_id.to_string(),
            task_id.to_string(),
            uuid,
            self.config.status_update_retry_min,
        );
    }

    fn arm_retry(
        self: &Arc<Self>,
        framework_id: String,
        task_id: String,
        uuid: Bytes,
        wait: Duration,
    ) {
        // A zero interval would resend in a busy loop.
        let wait = wait.max(Duration::from_millis(1));
        let agent = Arc::downgrade(self);
        let cancel = self.cancel.clone();
        self.tasks.spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            let Some(agent) = agent.upgrade() else { return };
            let front = {
                let state = agent.lock();
                state
                    .streams
                    .get(&(framework_id.clone(), task_id.clone()))
                    .and_then(|s| {
                        s.queue
                            .front()
                            .filter(|f| f.uuid.as_ref() == Some(&uuid))
                            .map(|f| (s.framework_id.clone(), f.clone()))
                    })
            };
            let Some((framework, status)) = front else {
                return;
            };
            tracing::debug!(task_id = %task_id, "resending an unacknowledged status update");
            agent.send_master(FromAgent::StatusUpdate {
                framework_id: framework,
                status,
            });
            let next = (wait * 2).min(agent.config.status_update_retry_max.max(wait));
            agent.arm_retry(framework_id, task_id, uuid, next);
        });
    }

    /// The master relayed the framework's acknowledgement of `uuid` for a task.
    pub(super) fn acknowledge(self: &Arc<Self>, framework_id: &str, task_id: &str, uuid: &[u8]) {
        let forward_next = {
            let mut state = self.lock();
            let key = (framework_id.to_string(), task_id.to_string());
            let Some(stream) = state.streams.get_mut(&key) else {
                tracing::warn!(
                    task_id,
                    "acknowledgement for a task without pending updates"
                );
                return;
            };
            let matches = stream
                .queue
                .front()
                .is_some_and(|f| f.uuid.as_deref() == Some(uuid));
            if !matches {
                tracing::warn!(task_id, "acknowledgement of an unexpected status update");
                return;
            }
            let acked = stream.queue.pop_front();
            let checkpointed = stream.path.clone();
            if let Some(path) = checkpointed.clone() {
                let uuid = uuid.to_vec();
                self.checkpoints.submit("acknowledgement", move |_| {
                    super::checkpoint::append_ack(&path, &uuid)
                });
            }
            if stream.queue.is_empty() {
                let terminal = acked
                    .and_then(|s| TaskState::try_from(s.state).ok())
                    .is_some_and(TaskState::is_terminal);
                if terminal {
                    state.streams.remove(&key);
                }
                None
            } else {
                Some(checkpointed.is_some())
            }
        };
        if let Some(checkpointed) = forward_next {
            self.forward_after_checkpoint(framework_id, task_id, checkpointed);
        }
    }
}
