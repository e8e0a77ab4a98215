//! Agents over the link: registration and re-registration with recovered state, status
//! updates, executor messages and exits, and the removal of agents whose link closed.

use super::*;

impl State {
    pub fn agent_message(&mut self, shared: &Arc<Shared>, message: AgentMessage) {
        let agent_id = message.agent_id.value;
        if !self.accept_agent_message(&agent_id, &message.message) {
            return;
        }
        match message.message {
            FromAgent::Pong => {}
            FromAgent::Register {
                info,
                link,
                url,
                frameworks,
                executors,
                tasks,
            } => self.register_agent(
                shared, agent_id, info, link, url, frameworks, executors, tasks,
            ),
            FromAgent::StatusUpdate {
                framework_id,
                status,
            } => self.status_update(&agent_id, &framework_id.value, status),
            FromAgent::ExecutorMessage {
                framework_id,
                executor_id,
                data,
            } => {
                if let Some(framework) = self.frameworks.get(&framework_id.value) {
                    framework.send(&scheduler::Event {
                        r#type: Some(scheduler::event::Type::Message as i32),
                        message: Some(event::Message {
                            agent_id: AgentId { value: agent_id },
                            executor_id,
                            data,
                        }),
                        ..Default::default()
                    });
                }
            }
            FromAgent::ExecutorExited {
                framework_id,
                executor_id,
                status,
                resources: freed,
            } => {
                if let Some(framework) = self.frameworks.get_mut(&framework_id.value) {
                    let key = (agent_id.clone(), executor_id.value.clone());
                    // Built-in command executors are unknown here: their end shows only in
                    // the tasks' updates, with no FAILURE event (as in Mesos).
                    let is_command = !framework.executors.contains_key(&key);
                    framework.executors.remove(&key);
                    if !is_command {
                        framework.send(&scheduler::Event {
                            r#type: Some(scheduler::event::Type::Failure as i32),
                            failure: Some(event::Failure {
                                agent_id: Some(AgentId {
                                    value: agent_id.clone(),
                                }),
                                executor_id: Some(executor_id),
                                status: Some(status),
                            }),
                            ..Default::default()
                        });
                    }
                    if !is_command {
                        if let Some(agent) = self.agents.get_mut(&agent_id) {
                            let normalized: Vec<Resource> =
                                freed.iter().map(resources::normalize).collect();
                            agent.used.subtract_all(&normalized);
                        }
                    }
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn register_agent(
        &mut self,
        shared: &Arc<Shared>,
        agent_id: String,
        mut info: AgentInfo,
        link: AgentLink,
        url: String,
        frameworks: Vec<FrameworkInfo>,
        executors: Vec<ExecutorInfo>,
        tasks: Vec<Task>,
    ) {
        info.id = Some(AgentId {
            value: agent_id.clone(),
        });
        if self.is_gone(&agent_id) {
            tracing::info!(agent = %agent_id, "agent marked gone tried to register: shut down");
            let _ = link.send(ToAgent::Shutdown);
            return;
        }
        if self.on_down_machine(&info, &url) {
            tracing::info!(agent = %agent_id, "agent on a DOWN machine tried to register: shut down");
            let _ = link.send(ToAgent::Shutdown);
            return;
        }
        let normalized: Vec<Resource> = info.resources.iter().map(resources::normalize).collect();
        let mut total = Resources::from_slice(&normalized);
        if let Some(old) = self.take_unreachable(&agent_id) {
            total = old.total;
        }
        // A re-registration replaces the old entry: its offers are void, reservations and
        // volumes made through the master stay, and tasks the agent no longer reports are gone.
        if let Some(old) = self.agents.get(&agent_id) {
            total = old.total.clone();
            self.rescind_agent_offers(&agent_id);
            let reported: HashSet<(String, String)> = tasks
                .iter()
                .map(|t| (t.framework_id.value.clone(), t.task_id.value.clone()))
                .collect();
            self.drop_agent_tasks(
                &agent_id,
                |framework_id, task_id| {
                    !reported.contains(&(framework_id.to_string(), task_id.to_string()))
                },
                task_status::Reason::AgentRestarted,
                "Task was not reported by the re-registering agent",
            );
        } else if !self.agent_order.contains(&agent_id) {
            self.agent_order.push(agent_id.clone());
        }
        let mut agent = Agent {
            id: agent_id.clone(),
            info: info.clone(),
            url,
            link,
            total,
            used: Resources::new(),
            offered: Resources::new(),
            registered_time: now_secs(),
            disconnected_since: None,
            awaiting_pong_since: None,
            partitioned: false,
            drain: draining::Drain::default(),
        };
        for framework_info in frameworks {
            let Some(id) = framework_info.id.as_ref().map(|i| i.value.clone()) else {
                continue;
            };
            if self.removed_frameworks.contains(&id) {
                agent.send(ToAgent::ShutdownFramework {
                    framework_id: FrameworkId { value: id },
                });
                continue;
            }
            self.frameworks.entry(id.clone()).or_insert_with(|| {
                let mut f = Framework::new(id.clone(), framework_info.clone());
                f.recovered = true;
                f
            });
        }
        for executor in executors {
            let Some(framework_id) = executor.framework_id.as_ref().map(|f| f.value.clone()) else {
                continue;
            };
            if let Some(framework) = self.frameworks.get_mut(&framework_id) {
                agent.used.add_all(
                    &executor
                        .resources
                        .iter()
                        .map(resources::normalize)
                        .collect::<Vec<_>>(),
                );
                framework.executors.insert(
                    (agent_id.clone(), executor.executor_id.value.clone()),
                    executor,
                );
            }
        }
        for mut task in tasks {
            let framework_id = task.framework_id.value.clone();
            let Some(framework) = self.frameworks.get_mut(&framework_id) else {
                continue;
            };
            task.agent_id = AgentId {
                value: agent_id.clone(),
            };
            task.resources = task.resources.iter().map(resources::normalize).collect();
            if !is_terminal(task.state) {
                agent.used.add_all(&task.resources);
            }
            framework.tasks.insert(task.task_id.value.clone(), task);
        }
        let event = v1::master::Event {
            r#type: Some(v1::master::event::Type::AgentAdded as i32),
            agent_added: Some(v1::master::event::AgentAdded {
                agent: operator_agent(&agent),
            }),
            ..Default::default()
        };
        tracing::info!(agent = %agent_id, hostname = %info.hostname, "agent registered");
        self.agents.insert(agent_id, agent);
        self.publish(event);
        self.allocate(shared);
    }

    /// Ends the non-terminal tasks on `agent_id` that `select` picks (TASK_LOST, or for
    /// PARTITION_AWARE frameworks TASK_GONE), frees their resources and forgets the agent's
    /// executors of those frameworks.
    pub(super) fn drop_agent_tasks(
        &mut self,
        agent_id: &str,
        select: impl Fn(&str, &str) -> bool,
        reason: task_status::Reason,
        message: &str,
    ) {
        let cap = self.config.max_completed_tasks_per_framework;
        let mut freed = Vec::new();
        for framework in self.frameworks.values_mut() {
            let partition_aware = framework.has_capability(FrameworkCapability::PartitionAware);
            let state = if partition_aware {
                TaskState::TaskGone
            } else {
                TaskState::TaskLost
            };
            let gone: Vec<String> = framework
                .tasks
                .values()
                .filter(|t| t.agent_id.value == agent_id && !is_terminal(t.state))
                .filter(|t| select(&framework.id, &t.task_id.value))
                .map(|t| t.task_id.value.clone())
                .collect();
            for task_id in gone {
                let Some(mut task) = framework.tasks.remove(&task_id) else {
                    continue;
                };
                let status =
                    master_status(&task.task_id, Some(&task.agent_id), state, reason, message);
                framework.send(&update_event(status.clone()));
                freed.extend(task.resources.iter().cloned());
                task.state = state as i32;
                task.statuses.push(status);
                framework.add_completed_task(task, cap);
            }
            framework.executors.retain(|(agent, _), executor| {
                if agent == agent_id {
                    freed.extend(executor.resources.iter().cloned());
                    false
                } else {
                    true
                }
            });
        }
        if let Some(agent) = self.agents.get_mut(agent_id) {
            agent.used.subtract_all(&freed);
        }
    }

    /// Rescinds every outstanding offer of `agent_id` (without a new allocation round).
    pub(super) fn rescind_agent_offers(&mut self, agent_id: &str) {
        let stale: Vec<String> = self
            .offers
            .iter()
            .filter(|(_, o)| o.agent_id == agent_id)
            .map(|(id, _)| id.clone())
            .collect();
        for offer_id in stale {
            self.rescind_offer_no_allocate(&offer_id);
        }
    }

    pub(super) fn rescind_offer_no_allocate(&mut self, offer_id: &str) {
        if let Some(entry) = self.remove_offer(offer_id) {
            if let Some(framework) = self.frameworks.get(&entry.framework_id) {
                framework.send(&scheduler::Event {
                    r#type: Some(scheduler::event::Type::Rescind as i32),
                    rescind: Some(event::Rescind {
                        offer_id: OfferId {
                            value: offer_id.to_string(),
                        },
                    }),
                    ..Default::default()
                });
            }
        }
    }

    pub(super) fn status_update(&mut self, agent_id: &str, framework_id: &str, status: TaskStatus) {
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            tracing::debug!(framework = %framework_id, "status update for an unknown framework dropped");
            return;
        };
        let mut freed = None;
        if let Some(task) = framework.tasks.get_mut(&status.task_id.value) {
            let was_terminal = is_terminal(task.state);
            task.state = status.state;
            task.status_update_state = Some(status.state);
            task.status_update_uuid = status.uuid.clone();
            let mut latest = status.clone();
            latest.data = None;
            if task.statuses.len() >= 8 {
                task.statuses.remove(0);
            }
            task.statuses.push(latest);
            if !was_terminal && is_terminal(status.state) {
                freed = Some(task.resources.clone());
            }
        }
        framework.send(&update_event(status.clone()));
        if let Some(freed) = freed {
            if let Some(agent) = self.agents.get_mut(agent_id) {
                agent.used.subtract_all(&freed);
            }
            self.check_drained(agent_id);
        }
        if !self.operator_streams.is_empty() {
            let state = status.state;
            self.publish(v1::master::Event {
                r#type: Some(v1::master::event::Type::TaskUpdated as i32),
                task_updated: Some(v1::master::event::TaskUpdated {
                    framework_id: FrameworkId {
                        value: framework_id.to_string(),
                    },
                    status,
                    state,
                }),
                ..Default::default()
            });
        }
    }
}

/// Applies agent messages to the state until the master stops.
pub(crate) async fn run_agent_messages(
    shared: Arc<Shared>,
    mut messages: mpsc::UnboundedReceiver<AgentMessage>,
) {
    loop {
        tokio::select! {
            message = messages.recv() => {
                let Some(message) = message else { return };
                let mut state = shared.lock();
                state.agent_message(&shared, message);
                // Drain what is already queued under the same lock.
                while let Ok(more) = messages.try_recv() {
                    state.agent_message(&shared, more);
                }
            }
            _ = shared.shutdown.cancelled() => return,
        }
    }
}
