//! The executor's record of what the agent has not yet acknowledged.
//!
//! Mesos asks executors to keep every status update until `ACKNOWLEDGED{task_id, uuid}` arrives,
//! and every launched `TaskInfo` until any update of that task is acknowledged, and to resend
//! both lists in the SUBSCRIBE call after a reconnection. [`Bookkeeping`] holds those lists, in
//! the order things happened, plus which tasks are still running (not yet reported terminal).

use std::collections::HashMap;

use uuid::Uuid;

use crate::v1::executor::call;
use crate::v1::{TaskId, TaskInfo, TaskState, TaskStatus};

#[derive(Debug)]
struct TrackedTask {
    info: Option<TaskInfo>,
    /// Launch order, so `unacknowledged_tasks` is stable.
    order: u64,
    /// Some update of the task was acknowledged.
    acknowledged: bool,
    /// A terminal update was recorded.
    terminal: bool,
}

#[derive(Debug)]
struct PendingUpdate {
    uuid: Uuid,
    update: call::Update,
    /// The agent accepted it (202 to UPDATE, or it travelled in an accepted SUBSCRIBE).
    delivered: bool,
}

/// Unacknowledged tasks and updates, and the set of running tasks.
#[derive(Debug, Default)]
pub(crate) struct Bookkeeping {
    tasks: HashMap<String, TrackedTask>,
    updates: Vec<PendingUpdate>,
    next_order: u64,
}

impl Bookkeeping {
    /// Records a task from LAUNCH or LAUNCH_GROUP.
    pub fn launched(&mut self, task: TaskInfo) {
        let order = self.next_order;
        self.next_order += 1;
        let entry = self
            .tasks
            .entry(task.task_id.value.clone())
            .or_insert(TrackedTask {
                info: None,
                order,
                acknowledged: false,
                terminal: false,
            });
        entry.info = Some(task);
    }

    /// Records an update (its `uuid` must be set) and returns that uuid; the update is not yet
    /// delivered.
    pub fn record(&mut self, status: TaskStatus) -> Option<Uuid> {
        let uuid = Uuid::from_slice(status.uuid.as_deref()?).ok()?;
        let terminal = TaskState::is_terminal(status.state());
        let order = self.next_order;
        let task = self
            .tasks
            .entry(status.task_id.value.clone())
            .or_insert(TrackedTask {
                info: None,
                order,
                acknowledged: false,
                terminal: false,
            });
        if task.order == order {
            self.next_order += 1;
        }
        task.terminal |= terminal;
        self.updates.push(PendingUpdate {
            uuid,
            update: call::Update { status },
            delivered: false,
        });
        Some(uuid)
    }

    /// Marks one update as accepted by the agent.
    pub fn delivered(&mut self, uuid: Uuid) {
        if let Some(pending) = self.updates.iter_mut().find(|p| p.uuid == uuid) {
            pending.delivered = true;
        }
    }

    /// Handles `ACKNOWLEDGED{task_id, uuid}`: forgets the update and, since an update of the
    /// task was acknowledged, its `TaskInfo`. Returns whether the update was known.
    pub fn acknowledged(&mut self, task_id: &TaskId, uuid: Uuid) -> bool {
        let Some(index) = self
            .updates
            .iter()
            .position(|p| p.uuid == uuid && p.update.status.task_id == *task_id)
        else {
            return false;
        };
        self.updates.remove(index);
        let still_pending = self
            .updates
            .iter()
            .any(|p| p.update.status.task_id == *task_id);
        if let Some(task) = self.tasks.get_mut(&task_id.value) {
            task.acknowledged = true;
            task.info = None;
            if task.terminal && !still_pending {
                self.tasks.remove(&task_id.value);
            }
        }
        true
    }

    /// Launched tasks none of whose updates has been acknowledged, in launch order.
    pub fn unacknowledged_tasks(&self) -> Vec<TaskInfo> {
        let mut tasks: Vec<&TrackedTask> = self
            .tasks
            .values()
            .filter(|t| !t.acknowledged && t.info.is_some())
            .collect();
        tasks.sort_by_key(|t| t.order);
        tasks.into_iter().filter_map(|t| t.info.clone()).collect()
    }

    /// Updates not yet acknowledged, in the order they were recorded.
    pub fn unacknowledged_updates(&self) -> Vec<call::Update> {
        self.updates.iter().map(|p| p.update.clone()).collect()
    }

    /// Updates the agent has not accepted yet, in order.
    pub fn undelivered(&self) -> Vec<(Uuid, call::Update)> {
        self.updates
            .iter()
            .filter(|p| !p.delivered)
            .map(|p| (p.uuid, p.update.clone()))
            .collect()
    }

    /// Whether every recorded update has been accepted by the agent.
    pub fn everything_delivered(&self) -> bool {
        self.updates.iter().all(|p| p.delivered)
    }

    /// Whether some known task has no terminal update yet.
    pub fn has_active_tasks(&self) -> bool {
        self.tasks.values().any(|t| !t.terminal)
    }

    /// Tasks known to this executor with no terminal update yet, in launch order.
    pub fn active_tasks(&self) -> Vec<TaskId> {
        let mut tasks: Vec<(&String, &TrackedTask)> =
            self.tasks.iter().filter(|(_, t)| !t.terminal).collect();
        tasks.sort_by_key(|(_, t)| t.order);
        tasks
            .into_iter()
            .map(|(id, _)| TaskId { value: id.clone() })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::v1::AgentId;

    fn task(id: &str) -> TaskInfo {
        TaskInfo {
            name: id.into(),
            task_id: TaskId { value: id.into() },
            agent_id: AgentId { value: "a".into() },
            ..TaskInfo::default()
        }
    }

    fn status(id: &str, state: TaskState) -> (Uuid, TaskStatus) {
        let uuid = Uuid::new_v4();
        let mut status = TaskStatus {
            task_id: TaskId { value: id.into() },
            uuid: Some(Bytes::copy_from_slice(uuid.as_bytes())),
            ..TaskStatus::default()
        };
        status.set_state(state);
        (uuid, status)
    }

    fn ids(tasks: &[TaskInfo]) -> Vec<&str> {
        tasks.iter().map(|t| t.task_id.value.as_str()).collect()
    }

    #[test]
    fn launched_tasks_stay_until_any_update_is_acknowledged() {
        let mut book = Bookkeeping::default();
        book.launched(task("a"));
        book.launched(task("b"));
        let (running, s) = status("a", TaskState::TaskRunning);
        assert_eq!(book.record(s), Some(running));
        assert_eq!(ids(&book.unacknowledged_tasks()), ["a", "b"]);
        assert_eq!(book.unacknowledged_updates().len(), 1);

        assert!(book.acknowledged(&TaskId { value: "a".into() }, running));
        assert_eq!(ids(&book.unacknowledged_tasks()), ["b"]);
        assert!(book.unacknowledged_updates().is_empty());
        assert_eq!(
            book.active_tasks(),
            [TaskId { value: "a".into() }, TaskId { value: "b".into() }]
        );
    }

    #[test]
    fn unknown_acknowledgements_change_nothing() {
        let mut book = Bookkeeping::default();
        book.launched(task("a"));
        let (uuid, s) = status("a", TaskState::TaskRunning);
        book.record(s);
        assert!(!book.acknowledged(&TaskId { value: "a".into() }, Uuid::new_v4()));
        assert!(!book.acknowledged(&TaskId { value: "b".into() }, uuid));
        assert_eq!(book.unacknowledged_updates().len(), 1);
        assert_eq!(book.unacknowledged_tasks().len(), 1);
    }

    #[test]
    fn updates_keep_their_order_and_terminal_tasks_become_inactive() {
        let mut book = Bookkeeping::default();
        book.launched(task("a"));
        let (u1, s1) = status("a", TaskState::TaskStarting);
        let (u2, s2) = status("a", TaskState::TaskRunning);
        let (u3, s3) = status("a", TaskState::TaskFinished);
        book.record(s1);
        book.record(s2);
        book.record(s3);
        let states: Vec<TaskState> = book
            .unacknowledged_updates()
            .iter()
            .map(|u| u.status.state())
            .collect();
        assert_eq!(
            states,
            [
                TaskState::TaskStarting,
                TaskState::TaskRunning,
                TaskState::TaskFinished
            ]
        );
        assert!(book.active_tasks().is_empty());
        assert!(!book.has_active_tasks());

        let id = TaskId { value: "a".into() };
        assert!(book.acknowledged(&id, u3));
        assert!(book.acknowledged(&id, u1));
        assert_eq!(book.unacknowledged_updates().len(), 1);
        assert!(book.acknowledged(&id, u2));
        assert!(book.unacknowledged_updates().is_empty());
        assert!(book.unacknowledged_tasks().is_empty());
        assert!(
            book.tasks.is_empty(),
            "finished and acknowledged tasks are forgotten"
        );
    }

    #[test]
    fn delivery_is_tracked_per_update() {
        let mut book = Bookkeeping::default();
        let (u1, s1) = status("a", TaskState::TaskRunning);
        let (u2, s2) = status("b", TaskState::TaskRunning);
        book.record(s1);
        book.record(s2);
        assert!(!book.everything_delivered());
        book.delivered(u1);
        let undelivered: Vec<Uuid> = book.undelivered().into_iter().map(|(u, _)| u).collect();
        assert_eq!(undelivered, [u2]);
        book.delivered(u2);
        assert!(book.everything_delivered());
        assert_eq!(
            book.active_tasks().len(),
            2,
            "updates without LAUNCH still track tasks"
        );
    }

    #[test]
    fn statuses_without_a_valid_uuid_are_not_recorded() {
        let mut book = Bookkeeping::default();
        let (_, mut s) = status("a", TaskState::TaskRunning);
        s.uuid = Some(Bytes::from_static(b"short"));
        assert_eq!(book.record(s), None);
        assert!(book.unacknowledged_updates().is_empty());
    }

    #[test]
    fn terminal_states() {
        assert!(TaskState::is_terminal(TaskState::TaskFinished));
        assert!(TaskState::is_terminal(TaskState::TaskKilled));
        assert!(TaskState::is_terminal(TaskState::TaskError));
        assert!(!TaskState::is_terminal(TaskState::TaskRunning));
        assert!(!TaskState::is_terminal(TaskState::TaskKilling));
        assert!(!TaskState::is_terminal(TaskState::TaskUnreachable));
    }
}
