//! The life of executor runs after launch: the agent's own status updates, a built-in task's end,
//! a custom executor's process start, registration timeout and termination (terminal updates for
//! its tasks and `ExecutorExited` to the master).

use super::*;

impl Agent {
    /// A status update made by the agent or a built-in executor.
    pub(super) fn new_status(
        &self,
        task_id: &TaskId,
        state: TaskState,
        source: task_status::Source,
        reason: Option<task_status::Reason>,
        message: Option<String>,
        executor_id: Option<&ExecutorId>,
    ) -> TaskStatus {
        TaskStatus {
            task_id: task_id.clone(),
            state: state as i32,
            message,
            source: Some(source as i32),
            reason: reason.map(|r| r as i32),
            agent_id: Some(self.id.clone()),
            executor_id: executor_id.cloned(),
            timestamp: Some(now_seconds()),
            uuid: Some(Bytes::copy_from_slice(uuid::Uuid::new_v4().as_bytes())),
            ..Default::default()
        }
    }

    /// Called by a built-in executor's task runner after its terminal update: forgets the task,
    /// kills the rest of its group when it did not finish, and retires the executor when it has
    /// no tasks left.
    pub(super) fn builtin_task_done(
        self: &Arc<Self>,
        framework_id: &str,
        executor_id: &str,
        task_id: &str,
        final_state: TaskState,
    ) {
        let mut exited = None;
        {
            let mut state = self.lock();
            let Some(framework) = state.frameworks.get_mut(framework_id) else {
                return;
            };
            let Some(executor) = framework.executors.get_mut(executor_id) else {
                return;
            };
            let group = executor.tasks.remove(task_id).map(|t| t.group);
            if executor.kind == ExecutorKind::Default && final_state != TaskState::TaskFinished {
                let grace = self.executor_grace(&executor.info);
                for task in executor.tasks.values() {
                    if Some(task.group) == group {
                        if let Some(kill) = &task.kill {
                            let _ = kill.send(KillRequest { grace });
                        }
                    }
                }
            }
            if executor.tasks.is_empty() {
                if let Some(executor) = framework.executors.remove(executor_id) {
                    state.remember_sandbox(framework_id, executor_id, &executor.sandbox);
                    if executor.kind == ExecutorKind::Default {
                        exited = Some(executor.info.resources.clone());
                    }
                    if executor.checkpoint {
                        self.checkpoint_run_completed(framework_id, executor_id, &executor.run_id);
                    }
                }
            }
        }
        if let Some(resources) = exited {
            self.send_master(FromAgent::ExecutorExited {
                framework_id: FrameworkId {
                    value: framework_id.to_string(),
                },
                executor_id: ExecutorId {
                    value: executor_id.to_string(),
                },
                status: 0,
                resources,
            });
        }
        self.maybe_remove_framework(framework_id);
    }

    /// Records the process group of a task run by a built-in executor (for agent shutdown).
    pub(super) fn set_task_pgid(
        &self,
        framework_id: &str,
        executor_id: &str,
        task_id: &str,
        pgid: i32,
    ) {
        let mut state = self.lock();
        if let Some(task) = state
            .frameworks
            .get_mut(framework_id)
            .and_then(|f| f.executors.get_mut(executor_id))
            .and_then(|e| e.tasks.get_mut(task_id))
        {
            task.pgid = Some(pgid);
        }
    }

    /// A custom executor's process is running; it is killed at once if its run was shut down
    /// (or the agent stopped) while it was being launched.
    pub(super) fn custom_executor_started(
        &self,
        framework_id: &str,
        executor_id: &str,
        run_id: &str,
        pid: i32,
    ) {
        let mut state = self.lock();
        let stopped = state.stopped;
        match state.run_mut(framework_id, executor_id, run_id) {
            Some(executor) if !stopped => {
                executor.pgid = Some(pid);
                if executor.checkpoint {
                    let (framework_id, executor_id, run_id) = (
                        framework_id.to_string(),
                        executor_id.to_string(),
                        run_id.to_string(),
                    );
                    self.checkpoint("executor pid", move |meta, agent| {
                        meta.write_pid(agent, &framework_id, &executor_id, &run_id, pid)
                    });
                }
                if executor.terminating {
                    // Shut down while it was being fetched: it goes at once.
                    signal_group(pid, nix::sys::signal::Signal::SIGKILL);
                }
            }
            _ => signal_group(pid, nix::sys::signal::Signal::SIGKILL),
        }
    }

    /// Whether an executor run was killed for not subscribing in time.
    pub(super) fn registration_timed_out(
        &self,
        framework_id: &str,
        executor_id: &str,
        run_id: &str,
    ) -> bool {
        self.lock()
            .run(framework_id, executor_id, run_id)
            .is_some_and(|e| e.timed_out)
    }

    /// Kills an executor that has not subscribed in time.
    pub(super) fn registration_timeout(&self, framework_id: &str, executor_id: &str, run_id: &str) {
        let mut state = self.lock();
        let Some(executor) = state.run_mut(framework_id, executor_id, run_id) else {
            return;
        };
        if executor.subscribed_once {
            return;
        }
        executor.timed_out = true;
        tracing::warn!(
            executor_id,
            "executor did not subscribe in time; killing it"
        );
        if let Some(pgid) = executor.pgid {
            signal_group(pgid, nix::sys::signal::Signal::SIGKILL);
        }
    }

    /// A custom executor run ended (exited, was killed, failed to launch, or did not come back
    /// after recovery): terminal updates for its tasks, `ExecutorExited` to the master.
    pub(super) fn executor_terminated(
        self: &Arc<Self>,
        framework_id: &str,
        executor_id: &str,
        run_id: &str,
        wait_status: i32,
        termination: Termination,
    ) {
        let Termination {
            state: state_for_tasks,
            reason,
            message,
        } = termination;
        let (executor, terminating) = {
            let mut state = self.lock();
            let Some(framework) = state.frameworks.get_mut(framework_id) else {
                return;
            };
            let matches = framework
                .executors
                .get(executor_id)
                .is_some_and(|e| e.run_id == run_id);
            if !matches {
                return;
            }
            let Some(executor) = framework.executors.remove(executor_id) else {
                return;
            };
            let terminating = executor.terminating || framework.removing;
            state.remember_sandbox(framework_id, executor_id, &executor.sandbox);
            (executor, terminating)
        };
        tracing::info!(executor_id, wait_status, "executor terminated");
        if let Some(pgid) = executor.pgid {
            signal_group(pgid, nix::sys::signal::Signal::SIGKILL);
        }
        let task_state = if terminating && state_for_tasks == TaskState::TaskFailed {
            TaskState::TaskKilled
        } else {
            state_for_tasks
        };
        let mut tasks: Vec<&TaskEntry> = executor
            .tasks
            .values()
            .filter(|t| !TaskState::is_terminal(t.state))
            .collect();
        tasks.sort_by(|a, b| a.info.task_id.value.cmp(&b.info.task_id.value));
        for task in tasks {
            let status = self.new_status(
                &task.info.task_id,
                task_state,
                task_status::Source::Agent,
                Some(reason),
                Some(message.clone()),
                Some(&executor.info.executor_id),
            );
            self.record_update(framework_id, status, None);
        }
        if executor.checkpoint {
            self.checkpoint_run_completed(framework_id, executor_id, run_id);
        }
        self.send_master(FromAgent::ExecutorExited {
            framework_id: FrameworkId {
                value: framework_id.to_string(),
            },
            executor_id: executor.info.executor_id.clone(),
            status: wait_status,
            resources: executor.info.resources.clone(),
        });
        self.maybe_remove_framework(framework_id);
    }
}
