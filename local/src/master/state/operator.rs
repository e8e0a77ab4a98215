//! The operator API's view of the state (`GET_*` answers, the event stream) and the conversions
//! of frameworks and agents into `mesos.v1.master` messages.

use super::*;

impl State {
    /// Opens an operator event stream: SUBSCRIBED with the full state, then events.
    pub fn operator_subscribe(
        &mut self,
        shared: &Arc<Shared>,
        format: Format,
    ) -> mpsc::UnboundedReceiver<Bytes> {
        let (tx, rx) = mpsc::unbounded_channel();
        let subscribed = v1::master::Event {
            r#type: Some(v1::master::event::Type::Subscribed as i32),
            subscribed: Some(v1::master::event::Subscribed {
                get_state: Some(self.get_state()),
                heartbeat_interval_seconds: Some(self.config.heartbeat_interval.as_secs_f64()),
            }),
            ..Default::default()
        };
        if let Some(bytes) = record(format, &subscribed) {
            let _ = tx.send(bytes);
        }
        let heartbeat = v1::master::Event {
            r#type: Some(v1::master::event::Type::Heartbeat as i32),
            ..Default::default()
        };
        if let Some(bytes) = record(format, &heartbeat) {
            let _ = tx.send(bytes);
        }
        spawn_heartbeats(shared, tx.clone(), format, Heartbeat::Operator);
        self.operator_streams.push(Subscription {
            stream_id: String::new(),
            format,
            tx,
        });
        rx
    }

    pub(super) fn publish(&mut self, event: v1::master::Event) {
        if self.operator_streams.is_empty() {
            return;
        }
        let mut json = None;
        let mut protobuf = None;
        self.operator_streams.retain(|sub| {
            let slot = match sub.format {
                Format::Json => &mut json,
                Format::Protobuf => &mut protobuf,
            };
            if slot.is_none() {
                *slot = record(sub.format, &event);
            }
            match slot {
                Some(bytes) => sub.tx.send(bytes.clone()).is_ok(),
                None => true,
            }
        });
    }

    pub fn get_frameworks(&self) -> v1::master::response::GetFrameworks {
        let mut frameworks: Vec<&Framework> = self.frameworks.values().collect();
        frameworks.sort_by(|a, b| a.id.cmp(&b.id));
        v1::master::response::GetFrameworks {
            frameworks: frameworks
                .into_iter()
                .filter(|f| !f.recovered)
                .map(|f| {
                    let mut out = operator_framework(f);
                    let mut offered = Resources::new();
                    for (_, _, resources) in self.offered_to(&f.id) {
                        offered.add_all(&resources);
                    }
                    let mut allocated = Resources::new();
                    for task in f.tasks.values().filter(|t| !is_terminal(t.state)) {
                        allocated.add_all(&task.resources);
                    }
                    for executor in f.executors.values() {
                        allocated.add_all(&executor.resources);
                    }
                    out.offered_resources = offered.into_vec();
                    out.allocated_resources = allocated.into_vec();
                    out
                })
                .collect(),
            completed_frameworks: self
                .completed_frameworks
                .iter()
                .map(|c| v1::master::response::get_frameworks::Framework {
                    framework_info: c.info.clone(),
                    active: false,
                    connected: false,
                    recovered: false,
                    registered_time: c.registered_time.map(time_info),
                    unregistered_time: c.unregistered_time.map(time_info),
                    ..Default::default()
                })
                .collect(),
            recovered_frameworks: self
                .frameworks
                .values()
                .filter(|f| f.recovered)
                .map(|f| f.info.clone())
                .collect(),
        }
    }

    pub fn get_executors(&self) -> v1::master::response::GetExecutors {
        let mut executors: Vec<v1::master::response::get_executors::Executor> = self
            .frameworks
            .values()
            .flat_map(|f| {
                f.executors.iter().map(|((agent_id, _), executor)| {
                    v1::master::response::get_executors::Executor {
                        executor_info: executor.clone(),
                        agent_id: AgentId {
                            value: agent_id.clone(),
                        },
                    }
                })
            })
            .collect();
        executors.sort_by(|a, b| {
            a.executor_info
                .executor_id
                .value
                .cmp(&b.executor_info.executor_id.value)
        });
        v1::master::response::GetExecutors {
            executors,
            orphan_executors: Vec::new(),
        }
    }

    pub fn get_agents(&self) -> v1::master::response::GetAgents {
        v1::master::response::GetAgents {
            agents: self
                .agent_order
                .iter()
                .filter_map(|id| self.agents.get(id))
                .map(operator_agent)
                .collect(),
            recovered_agents: Vec::new(),
        }
    }

    pub fn get_tasks(&self) -> v1::master::response::GetTasks {
        let mut tasks = Vec::new();
        let mut completed = Vec::new();
        let mut unreachable = Vec::new();
        for framework in self.frameworks.values() {
            unreachable.extend(framework.unreachable_tasks.values().cloned());
            for task in framework.tasks.values() {
                if is_terminal(task.state) {
                    completed.push(task.clone());
                } else {
                    tasks.push(task.clone());
                }
            }
            completed.extend(framework.completed_tasks.iter());
        }
        for framework in &self.completed_frameworks {
            completed.extend(framework.completed_tasks.iter());
        }
        v1::master::response::GetTasks {
            tasks,
            completed_tasks: completed,
            unreachable_tasks: unreachable,
            ..Default::default()
        }
    }

    pub fn get_state(&self) -> v1::master::response::GetState {
        v1::master::response::GetState {
            get_tasks: Some(self.get_tasks()),
            get_executors: Some(self.get_executors()),
            get_frameworks: Some(self.get_frameworks()),
            get_agents: Some(self.get_agents()),
        }
    }

    /// Offers of one framework, in the form they were sent (for `/state`).
    pub fn offered_to(&self, framework_id: &str) -> Vec<(String, String, Vec<Resource>)> {
        self.offers
            .iter()
            .filter(|(_, o)| o.framework_id == framework_id)
            .map(|(id, o)| (id.clone(), o.agent_id.clone(), o.resources.clone()))
            .collect()
    }
}

pub(crate) fn time_info(seconds: f64) -> v1::TimeInfo {
    v1::TimeInfo {
        nanoseconds: (seconds * 1e9) as i64,
    }
}

pub(crate) fn operator_framework(
    framework: &Framework,
) -> v1::master::response::get_frameworks::Framework {
    v1::master::response::get_frameworks::Framework {
        framework_info: framework.info.clone(),
        active: framework.active,
        connected: framework.connected(),
        recovered: framework.recovered,
        registered_time: framework.registered_time.map(time_info),
        reregistered_time: framework.reregistered_time.map(time_info),
        unregistered_time: framework.unregistered_time.map(time_info),
        ..Default::default()
    }
}

pub(super) fn operator_framework_event(framework: &Framework, added: bool) -> v1::master::Event {
    let framework = operator_framework(framework);
    if added {
        v1::master::Event {
            r#type: Some(v1::master::event::Type::FrameworkAdded as i32),
            framework_added: Some(v1::master::event::FrameworkAdded { framework }),
            ..Default::default()
        }
    } else {
        v1::master::Event {
            r#type: Some(v1::master::event::Type::FrameworkUpdated as i32),
            framework_updated: Some(v1::master::event::FrameworkUpdated { framework }),
            ..Default::default()
        }
    }
}

pub(crate) fn operator_agent(agent: &Agent) -> v1::master::response::get_agents::Agent {
    v1::master::response::get_agents::Agent {
        agent_info: agent.info.clone(),
        active: true,
        deactivated: Some(agent.drain.deactivated),
        drain_info: agent.drain.info,
        version: MESOS_VERSION.to_string(),
        pid: Some(format!(
            "slave(1)@{}",
            agent.url.trim_start_matches("http://")
        )),
        registered_time: Some(time_info(agent.registered_time)),
        total_resources: agent.total.as_slice().to_vec(),
        allocated_resources: agent.used.as_slice().to_vec(),
        offered_resources: agent.offered.as_slice().to_vec(),
        ..Default::default()
    }
}
