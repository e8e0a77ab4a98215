//! Offers and operations: DECLINE and refuse filters, rescinds, ACCEPT with its operations
//! (RESERVE/UNRESERVE, CREATE/DESTROY volumes, LAUNCH and LAUNCH_GROUP handed to `tasks`).

use super::*;

impl State {
    pub(super) fn decline_offer(
        &mut self,
        framework_id: &str,
        offer_id: &str,
        refuse_seconds: f64,
    ) {
        let Some(entry) = self.offers.get(offer_id) else {
            return;
        };
        if entry.framework_id != framework_id {
            return;
        }
        let agent_id = entry.agent_id.clone();
        let role = entry.role.clone();
        let resources = entry.resources.clone();
        self.remove_offer(offer_id);
        self.add_filter(framework_id, &agent_id, &role, &resources, refuse_seconds);
    }

    pub(super) fn add_filter(
        &mut self,
        framework_id: &str,
        agent_id: &str,
        role: &str,
        resources: &[Resource],
        refuse_seconds: f64,
    ) {
        if resources.is_empty() || !refuse_seconds.is_finite() || refuse_seconds <= 0.0 {
            return;
        }
        let duration =
            Duration::from_secs_f64(refuse_seconds.min(self.config.max_refuse.as_secs_f64()));
        if let Some(framework) = self.frameworks.get_mut(framework_id) {
            framework
                .filters
                .entry((agent_id.to_string(), role.to_string()))
                .or_default()
                .push(RefuseFilter {
                    resources: Resources::from_slice(resources),
                    until: Instant::now() + duration,
                });
        }
    }

    /// Removes an offer and returns its resources to the agent. No event is sent.
    pub(super) fn remove_offer(&mut self, offer_id: &str) -> Option<OfferEntry> {
        let entry = self.offers.remove(offer_id)?;
        if let Some(agent) = self.agents.get_mut(&entry.agent_id) {
            agent.offered.subtract_all(&entry.resources);
        }
        if let Some(framework) = self.frameworks.get_mut(&entry.framework_id) {
            framework.offers.remove(offer_id);
        }
        Some(entry)
    }

    /// Rescinds an outstanding offer (RESCIND event).
    pub fn rescind_offer(&mut self, offer_id: &str) {
        let Some(entry) = self.remove_offer(offer_id) else {
            return;
        };
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

    // ---------------------------------------------------------------- accept

    pub(super) fn accept(&mut self, framework_id: &str, accept: call::Accept) {
        let partition_aware = self
            .frameworks
            .get(framework_id)
            .is_some_and(|f| f.has_capability(FrameworkCapability::PartitionAware));
        // Validate the offers: each known, this framework's, all on one agent, none repeated.
        let mut error: Option<String> = None;
        let mut agent_id: Option<String> = None;
        let mut seen = HashSet::new();
        for offer_id in &accept.offer_ids {
            if !seen.insert(offer_id.value.clone()) {
                error = Some(format!("Duplicate offer {} in offer list", offer_id.value));
                break;
            }
            match self.offers.get(&offer_id.value) {
                Some(entry) if entry.framework_id == framework_id => match &agent_id {
                    Some(a) if *a != entry.agent_id => {
                        error = Some("Aggregated offers must belong to one single agent".into());
                        break;
                    }
                    _ => agent_id = Some(entry.agent_id.clone()),
                },
                _ => {
                    error = Some(format!("Offer {} is no longer valid", offer_id.value));
                    break;
                }
            }
        }
        if accept.offer_ids.is_empty() {
            error = Some("No offers specified".into());
        }
        if let Some(message) = error {
            // Valid offers among them go back to the pool.
            for offer_id in &accept.offer_ids {
                if self
                    .offers
                    .get(&offer_id.value)
                    .is_some_and(|o| o.framework_id == framework_id)
                {
                    self.remove_offer(&offer_id.value);
                }
            }
            let state = if partition_aware {
                TaskState::TaskDropped
            } else {
                TaskState::TaskLost
            };
            let text = format!("Task launched with invalid offers: {message}");
            for operation in &accept.operations {
                for task in operation_tasks(operation) {
                    let status = master_status(
                        &task.task_id,
                        Some(&task.agent_id),
                        state,
                        task_status::Reason::InvalidOffers,
                        &text,
                    );
                    self.send_update(framework_id, status);
                }
            }
            return;
        }
        let Some(agent_id) = agent_id else {
            return;
        };
        let mut offered = Resources::new();
        let mut role = String::from("*");
        for offer_id in &accept.offer_ids {
            if let Some(entry) = self.remove_offer(&offer_id.value) {
                offered.add_all(&entry.resources);
                role = entry.role;
            }
        }
        let mut remaining = offered;
        if let Some(framework) = self.frameworks.get_mut(framework_id) {
            for operation in &accept.operations {
                for task in operation_tasks(operation) {
                    framework
                        .task_roles
                        .insert(task.task_id.value.clone(), role.clone());
                }
            }
        }
        for operation in accept.operations {
            self.apply_operation(framework_id, &agent_id, &mut remaining, operation);
        }
        let refuse = accept.filters.as_ref().map_or(5.0, |f| f.refuse_seconds());
        let unused = remaining.into_vec();
        self.add_filter(framework_id, &agent_id, &role, &unused, refuse);
    }

    pub(super) fn apply_operation(
        &mut self,
        framework_id: &str,
        agent_id: &str,
        remaining: &mut Resources,
        operation: v1::offer::Operation,
    ) {
        let kind = operation
            .r#type
            .and_then(|t| OperationType::try_from(t).ok());
        let id = operation.id.clone();
        let outcome = match kind {
            Some(OperationType::Launch) => {
                let tasks = operation.launch.map(|l| l.task_infos).unwrap_or_default();
                for task in tasks {
                    self.launch_task(framework_id, agent_id, remaining, task);
                }
                return;
            }
            Some(OperationType::LaunchGroup) => {
                if let Some(group) = operation.launch_group {
                    self.launch_group(framework_id, agent_id, remaining, *group);
                }
                return;
            }
            Some(OperationType::Reserve) => {
                let Some(reserve) = operation.reserve else {
                    return;
                };
                let wanted: Vec<Resource> =
                    reserve.resources.iter().map(resources::normalize).collect();
                let source: Vec<Resource> = if reserve.source.is_empty() {
                    wanted.iter().map(pop_reservation).collect()
                } else {
                    reserve.source.iter().map(resources::normalize).collect()
                };
                self.convert(agent_id, remaining, &source, &wanted, "RESERVE")
            }
            Some(OperationType::Unreserve) => {
                let Some(unreserve) = operation.unreserve else {
                    return;
                };
                let reserved: Vec<Resource> = unreserve
                    .resources
                    .iter()
                    .map(resources::normalize)
                    .collect();
                let unreserved: Vec<Resource> = reserved.iter().map(pop_reservation).collect();
                self.convert(agent_id, remaining, &reserved, &unreserved, "UNRESERVE")
            }
            Some(OperationType::Create) => {
                let Some(create) = operation.create else {
                    return;
                };
                let volumes: Vec<Resource> =
                    create.volumes.iter().map(resources::normalize).collect();
                let source: Vec<Resource> = volumes.iter().map(strip_volume).collect();
                self.convert(agent_id, remaining, &source, &volumes, "CREATE")
            }
            Some(OperationType::Destroy) => {
                let Some(destroy) = operation.destroy else {
                    return;
                };
                let volumes: Vec<Resource> =
                    destroy.volumes.iter().map(resources::normalize).collect();
                let plain: Vec<Resource> = volumes.iter().map(strip_volume).collect();
                self.convert(agent_id, remaining, &volumes, &plain, "DESTROY")
            }
            other => {
                tracing::warn!(?other, "unsupported offer operation dropped");
                Err("Unsupported operation".to_string())
            }
        };
        if let Some(id) = id {
            self.operation_feedback(framework_id, agent_id, id, outcome);
        }
    }

    /// Replaces `from` by `to` in the offered `remaining` and in the agent's total.
    pub(super) fn convert(
        &mut self,
        agent_id: &str,
        remaining: &mut Resources,
        from: &[Resource],
        to: &[Resource],
        what: &str,
    ) -> Result<Vec<Resource>, String> {
        if from.is_empty() || !remaining.contains(from) {
            tracing::warn!(
                operation = what,
                "operation dropped: its resources are not in the offer"
            );
            return Err(format!(
                "{what} needs resources that are not in the offered resources"
            ));
        }
        remaining.subtract_all(from);
        remaining.add_all(to);
        if let Some(agent) = self.agents.get_mut(agent_id) {
            agent.total.subtract_all(from);
            agent.total.add_all(to);
        }
        Ok(to.to_vec())
    }
}

// -------------------------------------------------------------------- helpers

pub(super) fn pop_reservation(resource: &Resource) -> Resource {
    let mut r = resource.clone();
    r.reservations.pop();
    r
}

pub(super) fn strip_volume(resource: &Resource) -> Resource {
    let mut r = resource.clone();
    if let Some(disk) = r.disk.as_mut() {
        disk.persistence = None;
        disk.volume = None;
        if disk.source.is_none() {
            r.disk = None;
        }
    }
    r
}

pub(super) fn operation_tasks(operation: &v1::offer::Operation) -> Vec<TaskInfo> {
    let mut tasks = Vec::new();
    if let Some(launch) = &operation.launch {
        tasks.extend(launch.task_infos.iter().cloned());
    }
    if let Some(group) = &operation.launch_group {
        tasks.extend(group.task_group.tasks.iter().cloned());
    }
    tasks
}
