//! Recovery after a restart on the same work directory: rebuilding state from checkpoints, what
//! the agent reports when it registers again, and settling recovered executors afterwards (wait
//! for live custom executors to subscribe again, fail the tasks of the rest).

use super::*;

/// What [`Agent::restore`] found to report in `Register`, and what to do after it.
pub(super) struct Restored {
    pub(super) frameworks: Vec<FrameworkInfo>,
    pub(super) executors: Vec<ExecutorInfo>,
    pub(super) tasks: Vec<mesos_sdk::v1::Task>,
    pub(super) pending: Vec<RecoveryAction>,
}

/// Follow-up work for a recovered executor, run once the master knows about the agent.
pub(super) enum RecoveryAction {
    /// A live custom executor: wait for it to subscribe again.
    AwaitReregistration {
        framework_id: String,
        executor_id: String,
        run_id: String,
        pid: i32,
    },
    /// The executor is gone (or was built in): fail its tasks.
    Terminated {
        framework_id: String,
        executor_id: String,
        run_id: String,
        pid: Option<i32>,
        custom: bool,
    },
}

impl Agent {
    /// Rebuilds state from checkpoints; returns what to tell the master.
    pub(super) fn restore(
        self: &Arc<Self>,
        mut recovered: Vec<checkpoint::RecoveredFramework>,
    ) -> Restored {
        // A checkpointed pid counts only while it still names one of our processes. Checked
        // here, before the state lock is taken, since it reads `/proc`.
        for executor in recovered.iter_mut().flat_map(|f| f.executors.iter_mut()) {
            let executor_id = executor.info.executor_id.value.clone();
            executor.pid = executor.pid.filter(|pid| runs_executor(*pid, &executor_id));
            for task in &mut executor.tasks {
                task.pid = task.pid.filter(|pid| runs_executor(*pid, &executor_id));
            }
        }
        let mut restored = Restored {
            frameworks: Vec::new(),
            executors: Vec::new(),
            tasks: Vec::new(),
            pending: Vec::new(),
        };
        let mut state = self.lock();
        for framework in recovered {
            let framework_id = framework.info.id.clone().unwrap_or_default().value;
            let mut entry = Framework {
                info: framework.info.clone(),
                executors: HashMap::new(),
                removing: false,
            };
            let mut any = false;
            for recovered_executor in framework.executors {
                let kind = recovered_executor.kind;
                let owned_pid = recovered_executor.pid;
                let mut executor = Executor {
                    info: recovered_executor.info.clone(),
                    kind,
                    run_id: recovered_executor.run_id.clone(),
                    sandbox: recovered_executor.sandbox.clone(),
                    checkpoint: true,
                    pgid: owned_pid,
                    subscriber: None,
                    subscribed_once: false,
                    queued: Vec::new(),
                    pending_events: Vec::new(),
                    tasks: HashMap::new(),
                    terminating: false,
                    timed_out: false,
                    groups: 1,
                };
                let mut live_tasks = 0;
                let completed = recovered_executor.completed;
                for task in recovered_executor.tasks {
                    let task_id = task.info.task_id.value.clone();
                    let latest = task.updates.last().cloned();
                    let state_now = latest
                        .as_ref()
                        .and_then(|s| TaskState::try_from(s.state).ok())
                        .unwrap_or(TaskState::TaskStaging);
                    let stream_key = (framework_id.clone(), task_id.clone());
                    let mut stream = UpdateStream::new(
                        FrameworkId {
                            value: framework_id.clone(),
                        },
                        Some(self.meta.updates_path(
                            &self.id,
                            &framework_id,
                            &executor.info.executor_id.value,
                            &executor.run_id,
                            &task_id,
                        )),
                    );
                    for status in &task.updates {
                        stream.remember(status);
                    }
                    for status in task.unacknowledged {
                        stream.queue.push_back(status);
                    }
                    if !stream.queue.is_empty() {
                        state.streams.insert(stream_key, stream);
                    }
                    if completed || TaskState::is_terminal(state_now) {
                        continue;
                    }
                    live_tasks += 1;
                    let mut reported =
                        super::http::task_of(self, &framework_id, &executor, &task.info, state_now);
                    reported.statuses = latest.into_iter().collect();
                    // The master wants a user: the framework's when the command names none.
                    reported.user = reported.user.or_else(|| Some(framework.info.user.clone()));
                    restored.tasks.push(reported);
                    if kind == ExecutorKind::Custom && state_now == TaskState::TaskStaging {
                        // Launched but never reported on: delivered again when the executor
                        // resubscribes, unless it lists the task as already received.
                        executor
                            .queued
                            .push(QueuedLaunch::Task(Box::new(task.info.clone())));
                    }
                    let mut task_entry = Self::new_task_entry(task.info, 0);
                    task_entry.state = state_now;
                    task_entry.pgid = task.pid;
                    executor.tasks.insert(task_id, task_entry);
                }
                if completed {
                    continue;
                }
                let alive = owned_pid.is_some();
                if live_tasks == 0 && !(kind == ExecutorKind::Custom && alive) {
                    if let Some(pid) = owned_pid {
                        if kind != ExecutorKind::Custom {
                            signal_group(pid, nix::sys::signal::Signal::SIGKILL);
                        }
                    }
                    self.checkpoint_run_completed(
                        &framework_id,
                        &executor.info.executor_id.value,
                        &executor.run_id,
                    );
                    continue;
                }
                any = true;
                if kind != ExecutorKind::Command {
                    restored.executors.push(executor.info.clone());
                }
                let executor_id = executor.info.executor_id.value.clone();
                let run_id = executor.run_id.clone();
                restored.pending.push(match (kind, owned_pid) {
                    (ExecutorKind::Custom, Some(pid)) if alive => {
                        RecoveryAction::AwaitReregistration {
                            framework_id: framework_id.clone(),
                            executor_id,
                            run_id,
                            pid,
                        }
                    }
                    (kind, pid) => RecoveryAction::Terminated {
                        framework_id: framework_id.clone(),
                        executor_id,
                        run_id,
                        pid,
                        custom: kind == ExecutorKind::Custom,
                    },
                });
                entry
                    .executors
                    .insert(executor.info.executor_id.value.clone(), executor);
            }
            let has_streams = state.streams.keys().any(|(fw, _)| *fw == framework_id);
            if any || has_streams {
                restored.frameworks.push(framework.info.clone());
                state.frameworks.insert(framework_id, entry);
            }
        }
        restored
    }

    /// Resends recovered updates and settles recovered executors, once registered.
    pub(super) fn after_recovery(self: &Arc<Self>, pending: Vec<RecoveryAction>) {
        let keys: Vec<(String, String)> = self.lock().streams.keys().cloned().collect();
        for (framework_id, task_id) in keys {
            self.forward_front(&framework_id, &task_id);
        }
        for action in pending {
            match action {
                RecoveryAction::AwaitReregistration {
                    framework_id,
                    executor_id,
                    run_id,
                    pid,
                } => {
                    let agent = Arc::downgrade(self);
                    let timeout = self.config.executor_reregistration_timeout;
                    let cancel = self.cancel.clone();
                    self.tasks.spawn(async move {
                        let deadline = tokio::time::Instant::now() + timeout;
                        loop {
                            tokio::select! {
                                _ = cancel.cancelled() => return,
                                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                            }
                            let Some(agent) = agent.upgrade() else { return };
                            let came_back = {
                                let state = agent.lock();
                                match state.run(&framework_id, &executor_id, &run_id) {
                                    Some(e) => e.subscribed_once,
                                    None => return,
                                }
                            };
                            if !process_alive(pid) {
                                agent.executor_terminated(
                                    &framework_id,
                                    &executor_id,
                                    &run_id,
                                    -1,
                                    Termination {
                                        state: TaskState::TaskFailed,
                                        reason: task_status::Reason::ExecutorTerminated,
                                        message: "Executor terminated".to_string(),
                                    },
                                );
                                return;
                            }
                            if !came_back && tokio::time::Instant::now() >= deadline {
                                signal_group(pid, nix::sys::signal::Signal::SIGKILL);
                                agent.executor_terminated(
                                    &framework_id,
                                    &executor_id,
                                    &run_id,
                                    nix::sys::signal::Signal::SIGKILL as i32,
                                    Termination {
                                        state: TaskState::TaskLost,
                                        reason: task_status::Reason::ExecutorReregistrationTimeout,
                                        message: "Executor did not reregister within the timeout"
                                            .to_string(),
                                    },
                                );
                                return;
                            }
                        }
                    });
                }
                RecoveryAction::Terminated {
                    framework_id,
                    executor_id,
                    run_id,
                    pid,
                    custom,
                } => {
                    if let Some(pid) = pid {
                        signal_group(pid, nix::sys::signal::Signal::SIGKILL);
                    }
                    if custom {
                        self.executor_terminated(
                            &framework_id,
                            &executor_id,
                            &run_id,
                            -1,
                            Termination {
                                state: TaskState::TaskFailed,
                                reason: task_status::Reason::ExecutorTerminated,
                                message: "Executor terminated while the agent was down".to_string(),
                            },
                        );
                    } else {
                        self.builtin_lost_on_restart(&framework_id, &executor_id);
                    }
                }
            }
        }
    }

    /// Built-in executor tasks cannot outlive the agent: fail them after a restart.
    pub(super) fn builtin_lost_on_restart(self: &Arc<Self>, framework_id: &str, executor_id: &str) {
        let tasks: Vec<(TaskId, Option<ExecutorId>)> = {
            let state = self.lock();
            state
                .frameworks
                .get(framework_id)
                .and_then(|f| f.executors.get(executor_id))
                .map(|e| {
                    e.tasks
                        .values()
                        .map(|t| {
                            if let Some(pgid) = t.pgid {
                                signal_group(pgid, nix::sys::signal::Signal::SIGKILL);
                            }
                            (t.info.task_id.clone(), Some(e.info.executor_id.clone()))
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        for (task_id, executor) in tasks {
            let status = self.new_status(
                &task_id,
                TaskState::TaskFailed,
                task_status::Source::Agent,
                Some(task_status::Reason::ExecutorTerminated),
                Some("Built-in executor tasks do not survive an agent restart".to_string()),
                executor.as_ref(),
            );
            self.record_update(framework_id, status, None);
            self.builtin_task_done(
                framework_id,
                executor_id,
                &task_id.value,
                TaskState::TaskFailed,
            );
        }
    }
}
