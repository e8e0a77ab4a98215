//! Tasks and their status updates: task validation and launch (single tasks and groups), KILL,
//! ACKNOWLEDGE, RECONCILE, and the master-generated updates.

use super::*;

impl State {
    pub(super) fn task_error(
        &mut self,
        framework_id: &str,
        task: &TaskInfo,
        reason: task_status::Reason,
        message: &str,
    ) {
        let status = master_status(
            &task.task_id,
            Some(&task.agent_id),
            TaskState::TaskError,
            reason,
            message,
        );
        self.send_update(framework_id, status);
    }

    pub(super) fn validate_task(
        &self,
        framework_id: &str,
        task: &TaskInfo,
        launching: &HashSet<String>,
    ) -> Option<String> {
        let framework = self.frameworks.get(framework_id)?;
        if let Err(err) = crate::ids::validate_task_ids(task) {
            return Some(err.to_string());
        }
        if framework.tasks.contains_key(&task.task_id.value)
            || launching.contains(&task.task_id.value)
        {
            return Some(format!("Task has duplicate ID: {}", task.task_id.value));
        }
        if task.resources.is_empty() {
            return Some("Task uses no resources".into());
        }
        let bad_scalar = task
            .resources
            .iter()
            .chain(task.executor.iter().flat_map(|e| &e.resources))
            .filter_map(|r| r.scalar.as_ref())
            .any(|s| !s.value.is_finite() || s.value < 0.0);
        if bad_scalar {
            return Some(
                "Task uses invalid resources: scalars must be finite and non-negative".into(),
            );
        }
        None
    }

    /// Mesos' text for a task (or task group) bigger than what is left of its offers.
    fn insufficient_resources(
        &self,
        what: &str,
        framework_id: &str,
        task_resources: &[Resource],
        needed: &[Resource],
        remaining: &Resources,
    ) -> String {
        use crate::master::resource_text::{allocation_role, resources_text};
        let roles = self
            .frameworks
            .get(framework_id)
            .map(|f| f.roles())
            .unwrap_or_default();
        let role = allocation_role(task_resources, &roles);
        format!(
            "Total resources {} required by {what} and its executor is more than available {}",
            resources_text(Resources::from_slice(needed).as_slice(), Some(&role)),
            resources_text(remaining.as_slice(), Some(&role)),
        )
    }

    pub(super) fn launch_task(
        &mut self,
        framework_id: &str,
        agent_id: &str,
        remaining: &mut Resources,
        mut task: TaskInfo,
    ) {
        task.agent_id = AgentId {
            value: agent_id.to_string(),
        };
        if let Some(message) = self.validate_task(framework_id, &task, &HashSet::new()) {
            self.task_error(
                framework_id,
                &task,
                task_status::Reason::TaskInvalid,
                &message,
            );
            return;
        }
        if task.executor.is_some() == task.command.is_some() {
            self.task_error(
                framework_id,
                &task,
                task_status::Reason::TaskInvalid,
                "Task should have at least one (but not both) of CommandInfo or ExecutorInfo present",
            );
            return;
        }
        let mut needed: Vec<Resource> = task.resources.iter().map(resources::normalize).collect();
        let mut new_executor = None;
        if let Some(executor) = task.executor.as_mut() {
            executor.framework_id = Some(FrameworkId {
                value: framework_id.to_string(),
            });
            let key = (agent_id.to_string(), executor.executor_id.value.clone());
            let known = self
                .frameworks
                .get(framework_id)
                .is_some_and(|f| f.executors.contains_key(&key));
            if !known {
                needed.extend(executor.resources.iter().map(resources::normalize));
                new_executor = Some(ExecutorInfo::clone(executor));
            }
        }
        if !remaining.contains(&needed) {
            let message = self.insufficient_resources(
                "task",
                framework_id,
                &task.resources,
                &needed,
                remaining,
            );
            self.task_error(
                framework_id,
                &task,
                task_status::Reason::TaskInvalid,
                &message,
            );
            return;
        }
        remaining.subtract_all(&needed);
        let task_resources: Vec<Resource> =
            task.resources.iter().map(resources::normalize).collect();
        self.start_task(framework_id, agent_id, &task, task_resources, new_executor);
        let Some(framework) = self.frameworks.get(framework_id) else {
            return;
        };
        let framework_info = framework.info.clone();
        if let Some(agent) = self.agents.get(agent_id) {
            let executor = task.executor.as_deref().cloned();
            agent.send(ToAgent::RunTask {
                framework_info,
                executor,
                task,
            });
        }
    }

    pub(super) fn launch_group(
        &mut self,
        framework_id: &str,
        agent_id: &str,
        remaining: &mut Resources,
        group: v1::offer::operation::LaunchGroup,
    ) {
        let mut executor = group.executor;
        executor.framework_id = Some(FrameworkId {
            value: framework_id.to_string(),
        });
        let mut tasks = group.task_group.tasks;
        for task in &mut tasks {
            task.agent_id = AgentId {
                value: agent_id.to_string(),
            };
        }
        let mut launching = HashSet::new();
        let mut error = None;
        for task in &tasks {
            if let Some(message) = self.validate_task(framework_id, task, &launching) {
                error = Some(message);
                break;
            }
            if task.executor.is_some() {
                error = Some("'TaskInfo.executor' must not be set".into());
                break;
            }
            launching.insert(task.task_id.value.clone());
        }
        if tasks.is_empty() {
            error = Some("Task group must not be empty".into());
        }
        if let (None, Err(err)) = (&error, crate::ids::validate_executor_id(&executor)) {
            error = Some(err.to_string());
        }
        let key = (agent_id.to_string(), executor.executor_id.value.clone());
        let known = self
            .frameworks
            .get(framework_id)
            .is_some_and(|f| f.executors.contains_key(&key));
        let mut needed: Vec<Resource> = tasks
            .iter()
            .flat_map(|t| t.resources.iter().map(resources::normalize))
            .collect();
        if !known {
            needed.extend(executor.resources.iter().map(resources::normalize));
        }
        if error.is_none() && !remaining.contains(&needed) {
            let used: Vec<Resource> = tasks.iter().flat_map(|t| t.resources.clone()).collect();
            error = Some(self.insufficient_resources(
                "task group",
                framework_id,
                &used,
                &needed,
                remaining,
            ));
        }
        if let Some(message) = error {
            for task in &tasks {
                self.task_error(
                    framework_id,
                    task,
                    task_status::Reason::TaskGroupInvalid,
                    &message,
                );
            }
            return;
        }
        remaining.subtract_all(&needed);
        let mut new_executor = if known { None } else { Some(executor.clone()) };
        for task in &tasks {
            let mut with_executor = task.clone();
            with_executor.executor = Some(Box::new(executor.clone()));
            let task_resources: Vec<Resource> =
                task.resources.iter().map(resources::normalize).collect();
            self.start_task(
                framework_id,
                agent_id,
                &with_executor,
                task_resources,
                new_executor.take(),
            );
        }
        let Some(framework) = self.frameworks.get(framework_id) else {
            return;
        };
        let framework_info = framework.info.clone();
        if let Some(agent) = self.agents.get(agent_id) {
            agent.send(ToAgent::RunTaskGroup {
                framework_info,
                executor,
                task_group: v1::TaskGroupInfo { tasks },
            });
        }
    }

    /// Records a launched task (TASK_STAGING) and charges its resources to the agent.
    pub(super) fn start_task(
        &mut self,
        framework_id: &str,
        agent_id: &str,
        info: &TaskInfo,
        task_resources: Vec<Resource>,
        new_executor: Option<ExecutorInfo>,
    ) {
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            return;
        };
        let user = info
            .command
            .as_ref()
            .and_then(|c| c.user.clone())
            .or_else(|| Some(framework.info.user.clone()));
        let task = Task {
            name: info.name.clone(),
            task_id: info.task_id.clone(),
            framework_id: FrameworkId {
                value: framework_id.to_string(),
            },
            executor_id: info.executor.as_ref().map(|e| e.executor_id.clone()),
            agent_id: AgentId {
                value: agent_id.to_string(),
            },
            state: TaskState::TaskStaging as i32,
            resources: task_resources.clone(),
            statuses: Vec::new(),
            status_update_state: None,
            status_update_uuid: None,
            labels: info.labels.clone(),
            discovery: info.discovery.as_deref().cloned(),
            container: info.container.as_deref().cloned(),
            health_check: info.health_check.as_deref().cloned(),
            kill_policy: info.kill_policy,
            user,
            limits: info.limits.clone(),
        };
        framework
            .tasks
            .insert(info.task_id.value.clone(), task.clone());
        let mut charged = task_resources;
        if let Some(executor) = new_executor {
            charged.extend(executor.resources.iter().map(resources::normalize));
            framework.executors.insert(
                (agent_id.to_string(), executor.executor_id.value.clone()),
                executor,
            );
        }
        if let Some(agent) = self.agents.get_mut(agent_id) {
            agent.used.add_all(&charged);
        }
        if !self.operator_streams.is_empty() {
            self.publish(v1::master::Event {
                r#type: Some(v1::master::event::Type::TaskAdded as i32),
                task_added: Some(v1::master::event::TaskAdded { task }),
                ..Default::default()
            });
        }
    }

    // ---------------------------------------------------------------- kill, ack, reconcile

    pub(super) fn kill(&mut self, framework_id: &str, kill: call::Kill) {
        let Some(framework) = self.frameworks.get(framework_id) else {
            return;
        };
        match framework.tasks.get(&kill.task_id.value) {
            Some(task) => {
                if let Some(agent) = self.agents.get(&task.agent_id.value) {
                    agent.send(ToAgent::KillTask {
                        framework_id: FrameworkId {
                            value: framework_id.to_string(),
                        },
                        task_id: kill.task_id,
                        kill_policy: kill.kill_policy,
                    });
                }
            }
            None => {
                // Unknown task: answer as an explicit reconciliation would.
                self.reconcile(
                    framework_id,
                    vec![call::reconcile::Task {
                        task_id: kill.task_id,
                        agent_id: kill.agent_id,
                    }],
                );
            }
        }
    }

    pub(super) fn acknowledge(&mut self, framework_id: &str, ack: call::Acknowledge) {
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            return;
        };
        if let Some(task) = framework.tasks.get(&ack.task_id.value) {
            let acked_terminal = task.status_update_uuid.as_ref() == Some(&ack.uuid)
                && task.status_update_state.is_some_and(is_terminal);
            if acked_terminal {
                if let Some(task) = framework.tasks.remove(&ack.task_id.value) {
                    let cap = self.config.max_completed_tasks_per_framework;
                    framework.add_completed_task(task, cap);
                }
            }
        }
        self.relay_acknowledgement(
            &ack.agent_id.value,
            ToAgent::Acknowledge {
                framework_id: FrameworkId {
                    value: framework_id.to_string(),
                },
                task_id: ack.task_id,
                uuid: ack.uuid,
            },
        );
    }

    pub(super) fn reconcile(&mut self, framework_id: &str, tasks: Vec<call::reconcile::Task>) {
        let Some(framework) = self.frameworks.get(framework_id) else {
            return;
        };
        let partition_aware = framework.has_capability(FrameworkCapability::PartitionAware);
        let mut statuses = Vec::new();
        let unreachable_status = |task: &Task| {
            let state = if partition_aware {
                TaskState::TaskUnreachable
            } else {
                TaskState::TaskLost
            };
            let mut status = master_status(
                &task.task_id,
                Some(&task.agent_id),
                state,
                task_status::Reason::Reconciliation,
                "Reconciliation: Task is unreachable",
            );
            status.executor_id = task.executor_id.clone();
            status
        };
        if tasks.is_empty() {
            for task in framework.tasks.values() {
                statuses.push(reconcile_status(task));
            }
            for task in framework.unreachable_tasks.values() {
                statuses.push(unreachable_status(task));
            }
        } else {
            for wanted in tasks {
                let known = framework.tasks.get(&wanted.task_id.value);
                let unreachable_task = framework.unreachable_tasks.get(&wanted.task_id.value);
                let agent_id = wanted.agent_id.as_ref().map(|a| a.value.as_str());
                let gone = agent_id.is_some_and(|a| self.is_gone(a));
                match (known, unreachable_task) {
                    (Some(task), _) => statuses.push(reconcile_status(task)),
                    (None, Some(task)) => statuses.push(unreachable_status(task)),
                    (None, None) if gone => {
                        let state = if partition_aware {
                            TaskState::TaskGoneByOperator
                        } else {
                            TaskState::TaskLost
                        };
                        statuses.push(master_status(
                            &wanted.task_id,
                            wanted.agent_id.as_ref(),
                            state,
                            task_status::Reason::Reconciliation,
                            "Reconciliation: Task is gone",
                        ));
                    }
                    (None, None) => {
                        let registered = agent_id.and_then(|a| self.agents.get(a));
                        let in_unreachable =
                            agent_id.is_some_and(|a| self.unreachable_agents.contains_key(a));
                        let agent = registered.map(|_| ()).or(in_unreachable.then_some(()));
                        let unreachable = in_unreachable
                            || registered.is_some_and(|a| a.disconnected_since.is_some());
                        let (state, message) = match (partition_aware, agent, unreachable) {
                            (true, Some(_), true) => (
                                TaskState::TaskUnreachable,
                                "Reconciliation: Task is unreachable",
                            ),
                            (false, Some(_), true) => {
                                (TaskState::TaskLost, "Reconciliation: Task is unreachable")
                            }
                            (true, Some(_), false) => (
                                TaskState::TaskGone,
                                "Reconciliation: Task is unknown to the agent",
                            ),
                            (false, Some(_), false) => (
                                TaskState::TaskLost,
                                "Reconciliation: Task is unknown to the agent",
                            ),
                            (true, None, _) => {
                                (TaskState::TaskUnknown, "Reconciliation: Task is unknown")
                            }
                            (false, None, _) => {
                                (TaskState::TaskLost, "Reconciliation: Task is unknown")
                            }
                        };
                        statuses.push(master_status(
                            &wanted.task_id,
                            wanted.agent_id.as_ref(),
                            state,
                            task_status::Reason::Reconciliation,
                            message,
                        ));
                    }
                }
            }
        }
        for status in statuses {
            framework.send(&update_event(status));
        }
    }

    /// Sends a master-generated status update and records it when the task is known.
    pub(super) fn send_update(&mut self, framework_id: &str, status: TaskStatus) {
        if let Some(framework) = self.frameworks.get(framework_id) {
            framework.send(&update_event(status));
        }
    }
}

/// Whether a task state is terminal.
pub(crate) fn is_terminal(state: i32) -> bool {
    TaskState::try_from(state).is_ok_and(TaskState::is_terminal)
}

pub(super) fn master_status(
    task_id: &TaskId,
    agent_id: Option<&AgentId>,
    state: TaskState,
    reason: task_status::Reason,
    message: &str,
) -> TaskStatus {
    TaskStatus {
        task_id: task_id.clone(),
        state: state as i32,
        message: Some(crate::status_message::bounded(message.to_string())),
        source: Some(task_status::Source::Master as i32),
        reason: Some(reason as i32),
        agent_id: agent_id.filter(|a| !a.value.is_empty()).cloned(),
        timestamp: Some(now_secs()),
        ..Default::default()
    }
}

pub(super) fn reconcile_status(task: &Task) -> TaskStatus {
    let latest = task.statuses.last();
    TaskStatus {
        task_id: task.task_id.clone(),
        state: task.status_update_state.unwrap_or(task.state),
        message: Some("Reconciliation: Latest task state".into()),
        source: Some(task_status::Source::Master as i32),
        reason: Some(task_status::Reason::Reconciliation as i32),
        agent_id: Some(task.agent_id.clone()),
        executor_id: task.executor_id.clone(),
        timestamp: Some(now_secs()),
        healthy: latest.and_then(|s| s.healthy),
        container_status: latest.and_then(|s| s.container_status.clone()),
        ..Default::default()
    }
}
