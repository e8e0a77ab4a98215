//! Completes the operator API's views (GET_AGENTS, GET_FRAMEWORKS, GET_TASKS and GET_STATE) with
//! what a Mesos 1.12 master writes there besides the facts `state::operator` collects: resources
//! with `allocation_info` (when allocated or offered) and the legacy `role`, agent capabilities,
//! each framework's outstanding `offers` and its `offer_constraints`; and, in JSON answers, the
//! empty lists Mesos writes as `[]` (`recovered_agents`, `executors`, `unreachable_tasks`, ...).

// `role` (Resource) is deprecated in the schema but Mesos still writes it.
#![allow(deprecated)]

use serde_json::Value;

use super::state::{State, is_terminal};
use super::state_json::AGENT_CAPABILITIES;
use mesos_sdk::resourcemgr::reservation_role;
use mesos_sdk::v1::master::response::{self, GetAgents, GetFrameworks, GetTasks};
use mesos_sdk::v1::resource::AllocationInfo;
use mesos_sdk::v1::{self, Resource};

/// `resource` with the legacy `role` and, when given, `allocation_info`.
fn with_roles(resource: &Resource, allocated_to: Option<&str>) -> Resource {
    let mut r = resource.clone();
    if r.role.is_none() {
        r.role = Some(reservation_role(resource).to_string());
    }
    if let Some(role) = allocated_to {
        if r.allocation_info.is_none() {
            r.allocation_info = Some(AllocationInfo {
                role: Some(role.to_string()),
            });
        }
    }
    r
}

/// The role a framework's resources are allocated to when they do not say.
fn framework_role(state: &State, framework_id: &str) -> String {
    state
        .frameworks
        .get(framework_id)
        .and_then(|f| f.roles().into_iter().next())
        .unwrap_or_else(|| "*".to_string())
}

fn complete_tasks_list(state: &State, tasks: &mut [v1::Task]) {
    for task in tasks {
        let role = framework_role(state, &task.framework_id.value);
        for r in &mut task.resources {
            *r = with_roles(r, Some(&role));
        }
    }
}

fn complete_tasks(state: &State, tasks: &mut GetTasks) {
    complete_tasks_list(state, &mut tasks.pending_tasks);
    complete_tasks_list(state, &mut tasks.tasks);
    complete_tasks_list(state, &mut tasks.unreachable_tasks);
    complete_tasks_list(state, &mut tasks.completed_tasks);
}

fn complete_agents(state: &State, agents: &mut GetAgents) {
    for agent in &mut agents.agents {
        let id = agent
            .agent_info
            .id
            .as_ref()
            .map(|i| i.value.clone())
            .unwrap_or_default();
        agent.capabilities = AGENT_CAPABILITIES
            .iter()
            .filter_map(|name| v1::agent_info::capability::Type::from_str_name(name))
            .map(|t| v1::agent_info::Capability {
                r#type: Some(t as i32),
            })
            .collect();
        agent.total_resources = agent
            .total_resources
            .iter()
            .map(|r| with_roles(r, None))
            .collect();
        let mut allocated = Vec::new();
        let mut offered = Vec::new();
        for f in state.frameworks.values() {
            let role = framework_role(state, &f.id);
            for task in f.tasks.values() {
                if task.agent_id.value == id && !is_terminal(task.state) {
                    allocated.extend(task.resources.iter().map(|r| with_roles(r, Some(&role))));
                }
            }
            for ((agent_id, _), executor) in &f.executors {
                if *agent_id == id {
                    allocated.extend(
                        executor
                            .resources
                            .iter()
                            .map(|r| with_roles(r, Some(&role))),
                    );
                }
            }
            for (_, agent_id, resources) in state.offered_to(&f.id) {
                if agent_id == id {
                    offered.extend(resources.iter().map(|r| with_roles(r, Some(&role))));
                }
            }
        }
        agent.allocated_resources = allocated;
        agent.offered_resources = offered;
    }
}

fn complete_frameworks(state: &State, frameworks: &mut GetFrameworks) {
    for framework in &mut frameworks.frameworks {
        let id = framework
            .framework_info
            .id
            .as_ref()
            .map(|i| i.value.clone())
            .unwrap_or_default();
        let role = framework_role(state, &id);
        framework.allocated_resources = framework
            .allocated_resources
            .iter()
            .map(|r| with_roles(r, Some(&role)))
            .collect();
        framework.offered_resources = framework
            .offered_resources
            .iter()
            .map(|r| with_roles(r, Some(&role)))
            .collect();
        framework.offer_constraints = Some(Default::default());
        // Mesos sets both times when a framework first registers.
        if framework.reregistered_time.is_none() {
            framework.reregistered_time = framework.registered_time;
        }
        framework.offers = state
            .offered_to(&id)
            .into_iter()
            .map(|(offer_id, agent_id, resources)| v1::Offer {
                id: v1::OfferId { value: offer_id },
                framework_id: v1::FrameworkId { value: id.clone() },
                hostname: state
                    .agents
                    .get(&agent_id)
                    .map(|a| a.info.hostname.clone())
                    .unwrap_or_default(),
                agent_id: v1::AgentId { value: agent_id },
                resources: resources
                    .iter()
                    .map(|r| with_roles(r, Some(&role)))
                    .collect(),
                ..Default::default()
            })
            .collect();
    }
    for framework in &mut frameworks.completed_frameworks {
        framework.offer_constraints = Some(Default::default());
    }
}

/// Adds what Mesos writes to the views in `response`.
pub(super) fn complete(state: &State, response: &mut v1::master::Response) {
    if let Some(agents) = response.get_agents.as_mut() {
        complete_agents(state, agents);
    }
    if let Some(frameworks) = response.get_frameworks.as_mut() {
        complete_frameworks(state, frameworks);
    }
    if let Some(tasks) = response.get_tasks.as_mut() {
        complete_tasks(state, tasks);
    }
    if let Some(all) = response.get_state.as_mut() {
        complete_state(state, all);
    }
}

fn complete_state(state: &State, all: &mut response::GetState) {
    if let Some(agents) = all.get_agents.as_mut() {
        complete_agents(state, agents);
    }
    if let Some(frameworks) = all.get_frameworks.as_mut() {
        complete_frameworks(state, frameworks);
    }
    if let Some(tasks) = all.get_tasks.as_mut() {
        complete_tasks(state, tasks);
    }
}

/// The lists each view always has in Mesos' JSON, empty or not.
const ALWAYS_LISTED: [(&str, &[&str]); 4] = [
    ("get_agents", &["agents", "recovered_agents"]),
    ("get_frameworks", &["frameworks", "completed_frameworks"]),
    ("get_executors", &["executors"]),
    (
        "get_tasks",
        &[
            "pending_tasks",
            "tasks",
            "unreachable_tasks",
            "completed_tasks",
        ],
    ),
];

fn add_empty_lists(view_name: &str, view: &mut Value) {
    let Some(object) = view.as_object_mut() else {
        return;
    };
    if view_name == "get_frameworks" {
        if let Some(Value::Array(frameworks)) = object.get_mut("frameworks") {
            for framework in frameworks.iter_mut().filter_map(Value::as_object_mut) {
                framework
                    .entry("offers")
                    .or_insert_with(|| Value::Array(Vec::new()));
            }
        }
    }
    for (name, lists) in ALWAYS_LISTED {
        if name != view_name {
            continue;
        }
        for list in lists {
            object
                .entry(list.to_string())
                .or_insert_with(|| Value::Array(Vec::new()));
        }
    }
}

/// `agent_info.checkpoint`: Mesos writes it (agents always checkpoint since 1.x); the SDK's
/// `AgentInfo` has no such field, so it is added to the JSON.
fn add_agent_checkpoint(view: &mut Value) {
    if let Some(Value::Array(agents)) = view.get_mut("agents") {
        for info in agents
            .iter_mut()
            .filter_map(|a| a.get_mut("agent_info"))
            .filter_map(Value::as_object_mut)
        {
            info.entry("checkpoint").or_insert(Value::Bool(true));
        }
    }
}

/// Writes the empty lists Mesos writes into a JSON operator answer, and the agents'
/// `checkpoint`.
pub(super) fn add_json_empty_lists(answer: &mut Value) {
    if let Some(view) = answer.get_mut("get_agents") {
        add_agent_checkpoint(view);
    }
    if let Some(view) = answer
        .get_mut("get_state")
        .and_then(|s| s.get_mut("get_agents"))
    {
        add_agent_checkpoint(view);
    }
    for (view, _) in ALWAYS_LISTED {
        if let Some(value) = answer.get_mut(view) {
            add_empty_lists(view, value);
        }
    }
    if let Some(all) = answer.get_mut("get_state") {
        for (view, _) in ALWAYS_LISTED {
            let Some(object) = all.as_object_mut() else {
                return;
            };
            let value = object
                .entry(view.to_string())
                .or_insert_with(|| Value::Object(Default::default()));
            add_empty_lists(view, value);
        }
    }
}
