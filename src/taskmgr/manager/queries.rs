//! The task manager's read side: specs and records by name, phase, state, agent and task id,
//! the per-phase summary and the stream of changes. Nothing here writes.

use futures::Stream;
use tokio::sync::broadcast;

use super::{StoredSpec, Summary, TaskManager};
use crate::taskmgr::record::{Phase, TaskRecord};

impl TaskManager {
    /// The spec `name` as stored.
    pub async fn spec(&self, name: &str) -> Option<StoredSpec> {
        self.shared.state.lock().await.specs.get(name).cloned()
    }

    /// Every instance record.
    pub async fn tasks(&self) -> Vec<TaskRecord> {
        let state = self.shared.state.lock().await;
        state.records.values().cloned().collect()
    }

    /// The instances of spec `name`.
    pub async fn by_spec(&self, name: &str) -> Vec<TaskRecord> {
        self.filter(|r| r.spec == name).await
    }

    /// The instances in `phase`.
    pub async fn by_phase(&self, phase: Phase) -> Vec<TaskRecord> {
        self.filter(|r| r.phase == phase).await
    }

    /// The instances whose last Mesos state is `state` (`"TASK_RUNNING"`, ...).
    pub async fn by_state(&self, state: &str) -> Vec<TaskRecord> {
        self.filter(|r| r.state.as_deref() == Some(state)).await
    }

    /// The instances whose current attempt is on `agent_id`.
    pub async fn by_agent(&self, agent_id: &str) -> Vec<TaskRecord> {
        self.filter(|r| r.agent_id.as_deref() == Some(agent_id) && r.phase.may_run())
            .await
    }

    /// The instance running (or last run) as `task_id`.
    pub async fn get(&self, task_id: &str) -> Option<TaskRecord> {
        let state = self.shared.state.lock().await;
        let slot = state.by_task.get(task_id)?;
        state.records.get(slot).cloned()
    }

    async fn filter(&self, keep: impl Fn(&TaskRecord) -> bool) -> Vec<TaskRecord> {
        let state = self.shared.state.lock().await;
        state
            .records
            .values()
            .filter(|r| keep(r))
            .cloned()
            .collect()
    }

    /// Counts per phase.
    pub async fn summary(&self) -> Summary {
        let state = self.shared.state.lock().await;
        let mut summary = Summary::default();
        for record in state.records.values() {
            *match record.phase {
                Phase::Pending => &mut summary.pending,
                Phase::Launching => &mut summary.launching,
                Phase::Active => &mut summary.active,
                Phase::Killing => &mut summary.killing,
                Phase::Done => &mut summary.done,
                Phase::GivenUp => &mut summary.given_up,
            } += 1;
        }
        summary
    }

    /// Every change of a record from now on (the record after the change). A subscriber that
    /// falls more than 4096 changes behind skips the oldest.
    pub fn changes(&self) -> impl Stream<Item = TaskRecord> + Send + 'static {
        let receiver = self.shared.changes.subscribe();
        futures::stream::unfold(receiver, |mut receiver| async move {
            loop {
                match receiver.recv().await {
                    Ok(record) => return Some((record, receiver)),
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
    }
}
