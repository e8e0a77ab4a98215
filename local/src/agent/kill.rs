//! Killing tasks and shutting down executors and frameworks: grace periods from kill policies,
//! the SHUTDOWN event and SIGTERM/SIGKILL escalation, and forgetting a framework once its last
//! executor is gone.

use super::*;

impl Agent {
    pub(super) fn kill_task(
        self: &Arc<Self>,
        framework_id: &FrameworkId,
        task_id: &TaskId,
        policy: Option<KillPolicy>,
    ) {
        let mut state = self.lock();
        let Some(framework) = state.frameworks.get_mut(&framework_id.value) else {
            tracing::warn!(task_id = %task_id.value, "kill for a task of an unknown framework");
            return;
        };
        let Some(executor) = framework
            .executors
            .values_mut()
            .find(|e| e.tasks.contains_key(&task_id.value))
        else {
            tracing::warn!(task_id = %task_id.value, "kill for an unknown task");
            return;
        };
        let grace = self.kill_grace(executor, &task_id.value, policy.as_ref());
        match executor.kind {
            ExecutorKind::Custom => {
                let (removed, kept): (Vec<QueuedLaunch>, Vec<QueuedLaunch>) =
                    std::mem::take(&mut executor.queued)
                        .into_iter()
                        .partition(|launch| launch_has_task(launch, task_id));
                executor.queued = kept;
                if !removed.is_empty() {
                    // Killing one task of a queued group drops the whole group.
                    let executor_id = executor.info.executor_id.clone();
                    let killed: Vec<TaskId> = removed
                        .iter()
                        .flat_map(|launch| match launch {
                            QueuedLaunch::Task(task) => vec![task.task_id.clone()],
                            QueuedLaunch::Group(group) => {
                                group.tasks.iter().map(|t| t.task_id.clone()).collect()
                            }
                        })
                        .collect();
                    drop(state);
                    for task in killed {
                        let status = self.new_status(
                            &task,
                            TaskState::TaskKilled,
                            task_status::Source::Agent,
                            Some(task_status::Reason::TaskKilledDuringLaunch),
                            Some("Killed before delivery to the executor".to_string()),
                            Some(&executor_id),
                        );
                        self.record_update(&framework_id.value, status, None);
                    }
                    return;
                }
                let event = mesos_sdk::v1::executor::Event {
                    r#type: Some(exec_event::Type::Kill as i32),
                    kill: Some(exec_event::Kill {
                        task_id: task_id.clone(),
                        kill_policy: policy,
                    }),
                    ..Default::default()
                };
                match &executor.subscriber {
                    Some(subscriber) => send_event(subscriber, &event),
                    None => {
                        // A recovered or reconnecting executor gets the kill once it subscribes.
                        tracing::info!(
                            task_id = %task_id.value,
                            "executor not subscribed; the kill waits for its subscription"
                        );
                        executor.pending_events.push(event);
                    }
                }
            }
            ExecutorKind::Command | ExecutorKind::Default => {
                if let Some(kill) = executor
                    .tasks
                    .get(&task_id.value)
                    .and_then(|t| t.kill.as_ref())
                {
                    let _ = kill.send(KillRequest { grace });
                }
            }
        }
    }

    /// Grace period of a kill: the request's policy, else the task's, else the executor's
    /// shutdown grace period, else the agent default.
    pub(super) fn kill_grace(
        &self,
        executor: &Executor,
        task_id: &str,
        policy: Option<&KillPolicy>,
    ) -> Duration {
        policy
            .and_then(|p| p.grace_period.as_ref())
            .or_else(|| {
                executor
                    .tasks
                    .get(task_id)
                    .and_then(|t| t.info.kill_policy.as_ref())
                    .and_then(|p| p.grace_period.as_ref())
            })
            .map(duration_of)
            .unwrap_or_else(|| self.executor_grace(&executor.info))
    }

    pub(super) fn executor_grace(&self, info: &ExecutorInfo) -> Duration {
        info.shutdown_grace_period
            .as_ref()
            .map(duration_of)
            .unwrap_or(self.config.executor_shutdown_grace_period)
    }

    /// SHUTDOWN event, grace period, SIGTERM, SIGKILL for custom executors; kill every task of a
    /// built-in executor.
    pub(super) fn shutdown_executor(self: &Arc<Self>, framework_id: &str, executor_id: &str) {
        let mut state = self.lock();
        let Some(executor) = state
            .frameworks
            .get_mut(framework_id)
            .and_then(|f| f.executors.get_mut(executor_id))
        else {
            return;
        };
        let grace = self.executor_grace(&executor.info);
        match executor.kind {
            ExecutorKind::Custom => {
                if executor.terminating {
                    return;
                }
                executor.terminating = true;
                let subscribed = executor.subscriber.is_some();
                if let Some(subscriber) = &executor.subscriber {
                    let event = mesos_sdk::v1::executor::Event {
                        r#type: Some(exec_event::Type::Shutdown as i32),
                        ..Default::default()
                    };
                    send_event(subscriber, &event);
                }
                let pgid = executor.pgid;
                let run_id = executor.run_id.clone();
                // An executor in a Docker container is stopped through Docker.
                let container =
                    super::docker_run::docker_container(executor.info.container.as_deref())
                        .map(|_| super::docker_args::container_name(&run_id));
                drop(state);
                let agent = Arc::downgrade(self);
                let (framework_id, executor_id) =
                    (framework_id.to_string(), executor_id.to_string());
                self.tasks.spawn(async move {
                    if subscribed {
                        tokio::time::sleep(grace).await;
                    }
                    let Some(agent) = agent.upgrade() else { return };
                    let pgid = agent
                        .current_pgid(&framework_id, &executor_id, &run_id)
                        .or(pgid);
                    let Some(pgid) = pgid else { return };
                    if let Some(container) = container {
                        let wait = if subscribed {
                            grace.min(Duration::from_secs(1))
                        } else {
                            grace
                        };
                        if let Err(err) = agent.docker.stop(&container, wait).await {
                            tracing::warn!(%container, %err, "docker stop failed; killing");
                            signal_group(pgid, nix::sys::signal::Signal::SIGKILL);
                        }
                        return;
                    }
                    signal_group(pgid, nix::sys::signal::Signal::SIGTERM);
                    let wait = if subscribed {
                        grace.min(Duration::from_secs(1))
                    } else {
                        grace
                    };
                    tokio::time::sleep(wait).await;
                    if agent
                        .current_pgid(&framework_id, &executor_id, &run_id)
                        .is_some()
                    {
                        signal_group(pgid, nix::sys::signal::Signal::SIGKILL);
                    }
                });
            }
            ExecutorKind::Command | ExecutorKind::Default => {
                executor.terminating = true;
                for task in executor.tasks.values() {
                    if let Some(kill) = &task.kill {
                        let _ = kill.send(KillRequest { grace });
                    }
                }
            }
        }
    }

    /// The process group of a live executor run, if it still runs.
    pub(super) fn current_pgid(
        &self,
        framework_id: &str,
        executor_id: &str,
        run_id: &str,
    ) -> Option<i32> {
        self.lock()
            .run(framework_id, executor_id, run_id)
            .and_then(|e| e.pgid)
    }

    pub(super) fn shutdown_framework(self: &Arc<Self>, framework_id: &FrameworkId) {
        let executors: Vec<String> = {
            let mut state = self.lock();
            let Some(framework) = state.frameworks.get_mut(&framework_id.value) else {
                return;
            };
            framework.removing = true;
            framework.executors.keys().cloned().collect()
        };
        for executor_id in &executors {
            self.shutdown_executor(&framework_id.value, executor_id);
        }
        self.maybe_remove_framework(&framework_id.value);
    }

    /// Forgets a framework that is being removed once its last executor is gone.
    pub(super) fn maybe_remove_framework(&self, framework_id: &str) {
        let mut state = self.lock();
        let remove = state
            .frameworks
            .get(framework_id)
            .is_some_and(|f| f.removing && f.executors.is_empty());
        if remove {
            state.frameworks.remove(framework_id);
            state.streams.retain(|(fw, _), _| fw != framework_id);
            drop(state);
            let framework_id = framework_id.to_string();
            self.checkpoint("framework removal", move |meta, agent| {
                meta.remove_framework(agent, &framework_id)
            });
        }
    }

    /// The shutdown grace period of a live executor (the agent default when it is gone).
    pub(super) fn executor_grace_for(&self, framework_id: &str, executor_id: &str) -> Duration {
        let state = self.lock();
        state
            .frameworks
            .get(framework_id)
            .and_then(|f| f.executors.get(executor_id))
            .map(|e| self.executor_grace(&e.info))
            .unwrap_or(self.config.executor_shutdown_grace_period)
    }
}
