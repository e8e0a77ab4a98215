//! The agent's own check of the ids a launch names (framework, executor, task), before any
//! sandbox path is built from them: the master checks them too, but the agent is what creates
//! the directories, so it refuses a launch with an invalid id (see [`crate::ids`]) itself, with
//! TASK_ERROR / REASON_TASK_INVALID (REASON_TASK_GROUP_INVALID for a task group) and Mesos'
//! message, and touches nothing on disk.

use std::sync::Arc;

use super::Agent;
use crate::ids;
use mesos_sdk::v1::{ExecutorInfo, FrameworkInfo, TaskInfo, TaskState, task_status};

impl Agent {
    /// `true` (after reporting every task of the launch as TASK_ERROR) when the framework id,
    /// the executor id or a task id of the launch is invalid.
    pub(super) fn refuse_invalid_ids(
        self: &Arc<Self>,
        framework_info: &FrameworkInfo,
        executor: Option<&ExecutorInfo>,
        tasks: &[TaskInfo],
        group: bool,
    ) -> bool {
        let error = ids::validate_framework_id(framework_info)
            .and_then(|()| executor.map_or(Ok(()), ids::validate_executor_id))
            .and_then(|()| tasks.iter().try_for_each(ids::validate_task_ids));
        let Err(error) = error else {
            return false;
        };
        tracing::warn!(%error, "launch refused: invalid id");
        let framework_id = framework_info.id.clone().unwrap_or_default().value;
        let reason = if group {
            task_status::Reason::TaskGroupInvalid
        } else {
            task_status::Reason::TaskInvalid
        };
        for task in tasks {
            let status = self.new_status(
                &task.task_id,
                TaskState::TaskError,
                task_status::Source::Agent,
                Some(reason),
                Some(error.to_string()),
                None,
            );
            self.record_update(&framework_id, status, None);
        }
        true
    }
}
