//! The agent's side of agent health and fault injection: re-registering with what it runs now
//! (after a partition heals or the master restarts), killing one executor's processes at once,
//! and stopping as if the agent process were killed. The master asks for these over the link
//! ([`ToAgent::Reregister`], [`ToAgent::KillExecutor`], [`ToAgent::Crash`]); pings are answered in
//! the command dispatcher.

use super::*;

impl Agent {
    /// What the agent runs now, in the form of [`FromAgent::Register`]: the frameworks with
    /// executors here, the custom and default executors, and the non-terminal tasks with their
    /// latest state.
    fn registration_report(
        &self,
    ) -> (
        Vec<FrameworkInfo>,
        Vec<ExecutorInfo>,
        Vec<mesos_sdk::v1::Task>,
    ) {
        let state = self.lock();
        let mut frameworks = Vec::new();
        let mut executors = Vec::new();
        let mut tasks = Vec::new();
        for (framework_id, framework) in &state.frameworks {
            if framework.removing || framework.executors.is_empty() {
                continue;
            }
            frameworks.push(framework.info.clone());
            for executor in framework.executors.values() {
                if executor.terminating {
                    continue;
                }
                if executor.kind != ExecutorKind::Command {
                    executors.push(executor.info.clone());
                }
                for task in executor.tasks.values() {
                    if TaskState::is_terminal(task.state) {
                        continue;
                    }
                    let mut reported =
                        super::http::task_of(self, framework_id, executor, &task.info, task.state);
                    // The master wants a user: the framework's when the command names none.
                    reported.user = reported.user.or_else(|| Some(framework.info.user.clone()));
                    tasks.push(reported);
                }
            }
        }
        (frameworks, executors, tasks)
    }

    /// Registers again with the master with what runs now, on a fresh command link, then
    /// forwards every unacknowledged status update at once (they would otherwise wait for their
    /// retry timer).
    pub(super) fn reregister(self: &Arc<Self>) {
        let (frameworks, executors, tasks) = self.registration_report();
        let (link, commands) = mpsc::unbounded_channel();
        tracing::info!(agent_id = %self.id.value, tasks = tasks.len(), "re-registering with the master");
        self.send_master(FromAgent::Register {
            info: self.info.clone(),
            link,
            url: format!("http://{}", self.endpoint),
            frameworks,
            executors,
            tasks,
        });
        self.tasks.spawn(command_loop(
            Arc::downgrade(self),
            commands,
            self.cancel.clone(),
        ));
        let keys: Vec<(String, String)> = self.lock().streams.keys().cloned().collect();
        for (framework_id, task_id) in keys {
            self.forward_front(&framework_id, &task_id);
        }
    }

    /// Kills the processes of one executor with SIGKILL, without a grace period or a SHUTDOWN
    /// event: a custom executor's process group, and the process groups of the tasks a built-in
    /// executor runs. The agent then reports the exit as for any executor that dies.
    pub(super) fn kill_executor_now(&self, framework_id: &str, executor_id: &str) {
        let groups: Vec<i32> = {
            let state = self.lock();
            let Some(executor) = state
                .frameworks
                .get(framework_id)
                .and_then(|f| f.executors.get(executor_id))
            else {
                tracing::warn!(%framework_id, %executor_id, "kill of an unknown executor ignored");
                return;
            };
            executor
                .pgid
                .into_iter()
                .chain(executor.tasks.values().filter_map(|t| t.pgid))
                .collect()
        };
        tracing::info!(%framework_id, %executor_id, "fault injection: killing an executor");
        for pgid in groups {
            signal_group(pgid, nix::sys::signal::Signal::SIGKILL);
        }
    }

    /// Stops as if the agent process were killed: see [`AgentHandle::crash`].
    pub(super) fn crash_now(self: &Arc<Self>) {
        tracing::info!(agent_id = %self.id.value, "fault injection: agent crash");
        let agent = Arc::clone(self);
        tokio::spawn(async move { agent.stop(false).await });
    }
}

impl AgentHandle {
    /// Registers this agent with the master again with what it runs now, as a Mesos agent does
    /// when a new master is elected (used after [`crate::cluster::LocalCluster::restart_master`]).
    pub fn reregister(&self) {
        self.agent.reregister();
    }
}
