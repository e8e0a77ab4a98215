//! Frameworks and their subscriptions: SUBSCRIBE (new, resubscribe, failover), the end of a
//! subscription stream and the failover timeout, UPDATE_FRAMEWORK, framework removal, and the
//! FrameworkInfo and role checks made after the HTTP-level validation.

use super::*;

impl State {
    /// Handles SUBSCRIBE: opens a stream and returns its id and receiver. Problems with the
    /// FrameworkInfo come as one ERROR event followed by the end of the stream.
    pub fn subscribe(
        &mut self,
        shared: &Arc<Shared>,
        subscribe: call::Subscribe,
        format: Format,
    ) -> (String, mpsc::UnboundedReceiver<Bytes>, Option<String>) {
        let stream_id = uuid::Uuid::new_v4().to_string();
        let (tx, rx) = mpsc::unbounded_channel();
        let subscription = Subscription {
            stream_id: stream_id.clone(),
            format,
            tx,
        };
        let mut info = subscribe.framework_info;
        if let Some(message) = validate_framework_info(&info, &subscribe.suppressed_roles) {
            send_error_and_close(subscription, &message);
            return (stream_id, rx, None);
        }
        let now = now_secs();
        let id = match info.id.as_ref().map(|id| id.value.clone()) {
            Some(id) => id,
            None => {
                let id = format!("{}-{:04}", self.master_info.id, self.next_framework);
                self.next_framework += 1;
                id
            }
        };
        if self.removed_frameworks.contains(&id) {
            send_error_and_close(subscription, "Framework has been removed");
            return (stream_id, rx, None);
        }
        info.id = Some(FrameworkId { value: id.clone() });
        let existed = self.frameworks.contains_key(&id);
        let framework = self
            .frameworks
            .entry(id.clone())
            .or_insert_with(|| Framework::new(id.clone(), info.clone()));
        if existed {
            if let Some(old) = framework.subscription.take() {
                let event = error_event("Framework failed over");
                if let Some(bytes) = record(old.format, &event) {
                    let _ = old.tx.send(bytes);
                }
            }
            // `user` and `checkpoint` cannot change on re-subscription; `principal` neither.
            let old = &framework.info;
            info.user = old.user.clone();
            info.checkpoint = old.checkpoint;
            if framework.registered_time.is_some() {
                info.principal = old.principal.clone();
            }
            framework.reregistered_time = Some(now);
        } else {
            framework.registered_time = Some(now);
        }
        if framework.registered_time.is_none() {
            framework.registered_time = Some(now);
        }
        framework.info = info.clone();
        framework.recovered = false;
        framework.active = true;
        framework.unregistered_time = None;
        framework.disconnects += 1;
        framework.suppressed_roles = subscribe.suppressed_roles.into_iter().collect();
        framework.offer_constraints = subscribe.offer_constraints;
        framework.subscription = Some(subscription);
        let subscribed = scheduler::Event {
            r#type: Some(scheduler::event::Type::Subscribed as i32),
            subscribed: Some(Box::new(event::Subscribed {
                framework_id: FrameworkId { value: id.clone() },
                heartbeat_interval_seconds: Some(self.config.heartbeat_interval.as_secs_f64()),
                master_info: Some(self.master_info.clone()),
            })),
            ..Default::default()
        };
        framework.send(&subscribed);
        framework.send(&heartbeat_event());
        // Offers made to an earlier subscription are void.
        let stale: Vec<String> = framework.offers.drain().collect();
        for offer_id in stale {
            self.remove_offer(&offer_id);
        }
        if let Some(framework) = self.frameworks.get(&id) {
            if let Some(sub) = &framework.subscription {
                spawn_heartbeats(shared, sub.tx.clone(), sub.format, Heartbeat::Scheduler);
            }
            if existed {
                // Agents running its tasks learn the (possibly changed) FrameworkInfo.
                let agents: HashSet<&str> = framework
                    .tasks
                    .values()
                    .map(|t| t.agent_id.value.as_str())
                    .chain(framework.executors.keys().map(|(a, _)| a.as_str()))
                    .collect();
                for agent_id in agents {
                    if let Some(agent) = self.agents.get(agent_id) {
                        agent.send(ToAgent::UpdateFramework {
                            framework_info: info.clone(),
                        });
                    }
                }
            }
            let event = operator_framework_event(framework, !existed);
            self.publish(event);
        }
        tracing::info!(framework = %id, name = %info.name, resumed = existed, "framework subscribed");
        self.allocate(shared);
        (stream_id, rx, Some(id))
    }

    /// The subscription stream `stream_id` of `framework_id` was closed by the client.
    pub fn stream_closed(&mut self, shared: &Arc<Shared>, framework_id: &str, stream_id: &str) {
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            return;
        };
        if framework
            .subscription
            .as_ref()
            .is_none_or(|s| s.stream_id != stream_id)
        {
            return;
        }
        framework.subscription = None;
        framework.active = false;
        framework.unregistered_time = Some(now_secs());
        framework.disconnects += 1;
        let generation = framework.disconnects;
        let failover = framework.info.failover_timeout.unwrap_or(0.0);
        let offers: Vec<String> = framework.offers.drain().collect();
        tracing::info!(framework = %framework_id, failover_timeout = failover, "framework disconnected");
        for offer_id in offers {
            self.remove_offer(&offer_id);
        }
        let timeout = if failover.is_finite() && failover > 0.0 {
            Duration::from_secs_f64(failover.min(1e9))
        } else {
            Duration::ZERO
        };
        let shared2 = shared.clone();
        let framework_id = framework_id.to_string();
        // This runs from a stream's drop, possibly while the runtime shuts down.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(timeout) => {}
                _ = shared2.shutdown.cancelled() => return,
            }
            let mut state = shared2.lock();
            let still_gone = state
                .frameworks
                .get(&framework_id)
                .is_some_and(|f| f.disconnects == generation && !f.connected());
            if still_gone {
                tracing::info!(framework = %framework_id, "failover timeout elapsed");
                state.remove_framework(&framework_id);
            }
        });
    }

    /// Removes a framework: closes its stream, kills its tasks and executors, returns its
    /// resources and makes its id unusable.
    pub fn remove_framework(&mut self, framework_id: &str) {
        let Some(mut framework) = self.frameworks.remove(framework_id) else {
            return;
        };
        framework.subscription = None;
        for offer_id in std::mem::take(&mut framework.offers) {
            self.remove_offer(&offer_id);
        }
        let mut agents_involved: HashSet<String> = HashSet::new();
        let cap = self.config.max_completed_tasks_per_framework;
        let tasks: Vec<Task> = framework.tasks.drain().map(|(_, t)| t).collect();
        for mut task in tasks {
            agents_involved.insert(task.agent_id.value.clone());
            if !is_terminal(task.state) {
                if let Some(agent) = self.agents.get_mut(&task.agent_id.value) {
                    agent.used.subtract_all(&task.resources);
                }
                task.state = TaskState::TaskKilled as i32;
            }
            framework.add_completed_task(task, cap);
        }
        for ((agent_id, _), executor) in framework.executors.drain() {
            if let Some(agent) = self.agents.get_mut(&agent_id) {
                agent.used.subtract_all(&executor.resources);
            }
            agents_involved.insert(agent_id);
        }
        for agent_id in agents_involved {
            if let Some(agent) = self.agents.get(&agent_id) {
                agent.send(ToAgent::ShutdownFramework {
                    framework_id: FrameworkId {
                        value: framework_id.to_string(),
                    },
                });
            }
        }
        self.removed_frameworks.insert(framework_id.to_string());
        let cap = self.config.max_completed_frameworks;
        if cap > 0 {
            while self.completed_frameworks.len() >= cap {
                self.completed_frameworks.pop_front();
            }
            self.completed_frameworks.push_back(CompletedFramework {
                id: framework.id.clone(),
                info: framework.info.clone(),
                registered_time: framework.registered_time,
                unregistered_time: Some(now_secs()),
                completed_tasks: framework.completed_tasks,
            });
        }
        self.publish(v1::master::Event {
            r#type: Some(v1::master::event::Type::FrameworkRemoved as i32),
            framework_removed: Some(v1::master::event::FrameworkRemoved {
                framework_info: framework.info,
            }),
            ..Default::default()
        });
        tracing::info!(framework = %framework_id, "framework removed");
    }

    pub(super) fn update_framework(
        &mut self,
        shared: &Arc<Shared>,
        framework_id: &str,
        update: call::UpdateFramework,
    ) -> CallOutcome {
        let info = update.framework_info;
        if let Some(message) = validate_framework_info(&info, &update.suppressed_roles) {
            return CallOutcome::Error(StatusCode::BAD_REQUEST, message);
        }
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            return CallOutcome::Error(StatusCode::CONFLICT, "Framework has been removed".into());
        };
        let old = &framework.info;
        if old.principal != info.principal {
            return CallOutcome::Error(
                StatusCode::BAD_REQUEST,
                "Changing framework's principal is not allowed.".into(),
            );
        }
        if old.user != info.user {
            return CallOutcome::Error(
                StatusCode::BAD_REQUEST,
                format!(
                    "FrameworkInfo update is not valid: Updating 'FrameworkInfo.user' is unsupported; attempted to update from '{}' to '{}'",
                    old.user, info.user
                ),
            );
        }
        if old.checkpoint() != info.checkpoint() {
            return CallOutcome::Error(
                StatusCode::BAD_REQUEST,
                format!(
                    "FrameworkInfo update is not valid: Updating 'FrameworkInfo.checkpoint' is unsupported; attempted to update from '{}' to '{}'",
                    old.checkpoint(),
                    info.checkpoint()
                ),
            );
        }
        framework.info = info.clone();
        framework.suppressed_roles = update.suppressed_roles.into_iter().collect();
        framework.offer_constraints = update.offer_constraints;
        let event = operator_framework_event(framework, false);
        let agents: HashSet<String> = framework
            .tasks
            .values()
            .map(|t| t.agent_id.value.clone())
            .collect();
        for agent_id in agents {
            if let Some(agent) = self.agents.get(&agent_id) {
                agent.send(ToAgent::UpdateFramework {
                    framework_info: info.clone(),
                });
            }
        }
        self.publish(event);
        self.allocate(shared);
        CallOutcome::Ok
    }
}

/// Validates a role name like Mesos' `roles::validate`.
pub(super) fn validate_role(role: &str) -> Option<String> {
    if role == "*" {
        return None;
    }
    if role.is_empty() {
        return Some("Empty role name is invalid".into());
    }
    if role.starts_with('/') || role.ends_with('/') {
        return Some(format!("Role '{role}' cannot start or end with a slash"));
    }
    for component in role.split('/') {
        if component.is_empty() {
            return Some(format!("Role '{role}' cannot contain two adjacent slashes"));
        }
        if component == "." || component == ".." || component == "*" {
            return Some(format!(
                "Role '{role}' cannot include '{component}' as a component"
            ));
        }
        if component.starts_with('-') {
            return Some(format!(
                "Role component '{component}' is invalid because it starts with a dash"
            ));
        }
        if component
            .chars()
            .any(|c| c.is_ascii_control() || c == ' ' || c == '\u{7f}')
        {
            return Some(format!(
                "Role component '{component}' is invalid because it contains backspace or whitespace"
            ));
        }
    }
    None
}

/// FrameworkInfo checks done after the HTTP-level validation (answered as an ERROR event on
/// SUBSCRIBE and as 400 on UPDATE_FRAMEWORK).
pub(super) fn validate_framework_info(
    info: &FrameworkInfo,
    suppressed_roles: &[String],
) -> Option<String> {
    if let Err(err) = crate::ids::validate_framework_id(info) {
        return Some(err.to_string());
    }
    let multi_role = has_capability(info, FrameworkCapability::MultiRole);
    if multi_role {
        if info.role.is_some() {
            return Some(
                "'FrameworkInfo.role' must not be set when the framework is MULTI_ROLE capable"
                    .into(),
            );
        }
    } else if !info.roles.is_empty() {
        return Some(
            "'FrameworkInfo.roles' must not be set when the framework is not MULTI_ROLE capable"
                .into(),
        );
    }
    let roles = framework_roles(info);
    let mut seen = HashSet::new();
    for role in &roles {
        if !seen.insert(role) {
            return Some(format!(
                "'FrameworkInfo.roles' contains duplicate items: {{ {role} }}"
            ));
        }
        if let Some(error) = validate_role(role) {
            let field = if multi_role {
                "'FrameworkInfo.roles' contains invalid role"
            } else {
                "'FrameworkInfo.role' is not a valid role"
            };
            return Some(format!("{field}: {error}"));
        }
    }
    for role in suppressed_roles {
        if !roles.contains(role) {
            return Some(format!(
                "Suppressed role '{role}' is not contained in the list of roles"
            ));
        }
    }
    None
}
