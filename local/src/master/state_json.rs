//! The `/state` (`/master/state`) JSON document in the shape Mesos' web UI and tools read:
//! frameworks with their tasks and resources, completed frameworks, agents (`slaves`) with total,
//! used and offered resources and attributes, and the master's identity. The pieces (one
//! framework, one agent, one task) are shared with the other read-only endpoints
//! (`super::endpoints`). Fields are the ones a Mesos 1.12 master writes, and only those: optional
//! ones (`principal`, `labels`, `reregistered_time`) only when set, `roles` instead of `role` for
//! MULTI_ROLE frameworks.

// `role` (FrameworkInfo, Resource) is deprecated in the schema but Mesos still reads and writes it.
#![allow(deprecated)]

use serde_json::{Map, Value, json};

use super::MESOS_VERSION;
use super::state::{Agent, CompletedFramework, Framework, State, is_terminal};
use mesos_sdk::resourcemgr::{Resources, reservation_role};
use mesos_sdk::v1::framework_info::capability::Type as FrameworkCapability;
use mesos_sdk::v1::{Attribute, FrameworkInfo, Label, Resource, Task, TaskState, value};

/// What `/version` and `/state` report as the build: this crate, imitating Mesos 1.12.0.
pub(crate) const BUILD_DATE: &str = "2020-09-06 18:44:32";
/// `build_date` in seconds since the epoch.
pub(crate) const BUILD_TIME: f64 = 1_599_417_872.0;
/// `build_user`.
pub(crate) const BUILD_USER: &str = "mesos-local";
/// `git_sha`: not a Mesos commit; names this crate instead.
pub(crate) const GIT_SHA: &str = concat!("mesos-local-", env!("CARGO_PKG_VERSION"));
/// The master's capabilities, as in `MasterInfo`.
pub(crate) const MASTER_CAPABILITIES: [&str; 3] = ["AGENT_UPDATE", "AGENT_DRAINING", "QUOTA_V2"];
/// The agent capabilities every embedded agent has.
pub(crate) const AGENT_CAPABILITIES: [&str; 3] =
    ["MULTI_ROLE", "HIERARCHICAL_ROLE", "RESERVATION_REFINEMENT"];

/// Resources as `/state` shows them: `{"cpus": 4.0, "mem": 1024.0, "ports": "[31000-32000]"}`.
pub(crate) fn resources_json(resources: &[Resource]) -> Value {
    let all = Resources::from_slice(resources);
    let mut out = Map::new();
    for name in ["cpus", "gpus", "mem", "disk"] {
        out.insert(name.into(), json!(all.scalar(name)));
    }
    for r in all.as_slice() {
        match value::Type::try_from(r.r#type) {
            Ok(value::Type::Scalar) => {
                out.insert(r.name.clone(), json!(all.scalar(&r.name)));
            }
            Ok(value::Type::Ranges) => {
                let parts: Vec<String> = all
                    .ranges(&r.name)
                    .iter()
                    .map(|(b, e)| format!("{b}-{e}"))
                    .collect();
                out.insert(r.name.clone(), json!(format!("[{}]", parts.join(", "))));
            }
            Ok(value::Type::Set) => {
                let items = r
                    .set
                    .as_ref()
                    .map(|s| s.item.join(", "))
                    .unwrap_or_default();
                out.insert(r.name.clone(), json!(format!("{{{items}}}")));
            }
            _ => {}
        }
    }
    Value::Object(out)
}

fn reserved_by_role(resources: &[Resource]) -> Value {
    let mut roles: std::collections::BTreeMap<String, Vec<Resource>> = Default::default();
    for r in resources {
        let role = reservation_role(r);
        if role != "*" {
            roles.entry(role.to_string()).or_default().push(r.clone());
        }
    }
    Value::Object(
        roles
            .into_iter()
            .map(|(role, list)| (role, resources_json(&list)))
            .collect(),
    )
}

pub(crate) fn attributes_json(attributes: &[Attribute]) -> Value {
    let mut out = Map::new();
    for a in attributes {
        let v = match value::Type::try_from(a.r#type) {
            Ok(value::Type::Scalar) => json!(a.scalar.as_ref().map_or(0.0, |s| s.value)),
            Ok(value::Type::Text) => json!(a.text.as_ref().map(|t| t.value.clone())),
            Ok(value::Type::Ranges) => {
                let parts: Vec<String> = a
                    .ranges
                    .iter()
                    .flat_map(|r| &r.range)
                    .map(|r| format!("{}-{}", r.begin, r.end))
                    .collect();
                json!(format!("[{}]", parts.join(", ")))
            }
            Ok(value::Type::Set) => {
                let items = a
                    .set
                    .as_ref()
                    .map(|s| s.item.join(", "))
                    .unwrap_or_default();
                json!(format!("{{{items}}}"))
            }
            Err(_) => Value::Null,
        };
        out.insert(a.name.clone(), v);
    }
    Value::Object(out)
}

fn labels_json(labels: &[Label]) -> Value {
    json!(
        labels
            .iter()
            .map(|l| json!({"key": l.key, "value": l.value}))
            .collect::<Vec<_>>()
    )
}

pub(super) fn state_name(state: i32) -> &'static str {
    TaskState::try_from(state)
        .map(|s| s.as_str_name())
        .unwrap_or("TASK_UNKNOWN")
}

/// A protobuf message in Mesos' JSON form (`{}` if it cannot be rendered).
pub(crate) fn proto_json<M: prost::Message + prost::Name>(message: &M) -> Value {
    mesos_sdk::codec::json::to_value(message).unwrap_or_else(|_| json!({}))
}

/// The role a task's resources are allocated to: their `allocation_info`, else `fallback`.
fn task_role(task: &Task, fallback: &str) -> String {
    task.resources
        .iter()
        .find_map(|r| r.allocation_info.as_ref().and_then(|a| a.role.clone()))
        .unwrap_or_else(|| fallback.to_string())
}

/// One task as `/state` and `/tasks` show it. `role` is the framework's role, used when the
/// task's resources carry no allocation role.
pub(crate) fn task_json(task: &Task, role: &str) -> Value {
    let statuses: Vec<Value> = task
        .statuses
        .iter()
        .map(|s| {
            let mut status = json!({
                "state": state_name(s.state),
                "timestamp": s.timestamp.unwrap_or(0.0),
            });
            if let (Some(container), Some(obj)) = (&s.container_status, status.as_object_mut()) {
                obj.insert("container_status".into(), proto_json(container));
            }
            status
        })
        .collect();
    let mut out = Map::new();
    out.insert("id".into(), json!(task.task_id.value));
    out.insert("name".into(), json!(task.name));
    out.insert("framework_id".into(), json!(task.framework_id.value));
    out.insert(
        "executor_id".into(),
        json!(
            task.executor_id
                .as_ref()
                .map(|e| e.value.clone())
                .unwrap_or_default()
        ),
    );
    out.insert("slave_id".into(), json!(task.agent_id.value));
    out.insert("state".into(), json!(state_name(task.state)));
    out.insert("resources".into(), resources_json(&task.resources));
    out.insert("role".into(), json!(task_role(task, role)));
    out.insert("statuses".into(), json!(statuses));
    if let Some(labels) = &task.labels {
        out.insert("labels".into(), labels_json(&labels.labels));
    }
    if let Some(discovery) = &task.discovery {
        out.insert("discovery".into(), proto_json(discovery));
    }
    if let Some(container) = &task.container {
        out.insert("container".into(), proto_json(container));
    }
    Value::Object(out)
}

/// A framework's single role as `/state` shows it (the first of `roles` for MULTI_ROLE).
pub(super) fn framework_role(info: &FrameworkInfo) -> String {
    if is_multi_role(info) {
        info.roles.first().cloned().unwrap_or_else(|| "*".into())
    } else {
        info.role.clone().unwrap_or_else(|| "*".into())
    }
}

fn is_multi_role(info: &FrameworkInfo) -> bool {
    info.capabilities
        .iter()
        .any(|c| c.r#type == Some(FrameworkCapability::MultiRole as i32))
}

fn capabilities_json(info: &FrameworkInfo) -> Value {
    json!(
        info.capabilities
            .iter()
            .filter_map(|c| c.r#type)
            .filter_map(|t| FrameworkCapability::try_from(t).ok())
            .map(|t| t.as_str_name())
            .collect::<Vec<_>>()
    )
}

/// The fields every framework object has, live or completed, from its `FrameworkInfo`.
fn framework_info_fields(out: &mut Map<String, Value>, id: &str, info: &FrameworkInfo) {
    out.insert("id".into(), json!(id));
    out.insert("name".into(), json!(info.name));
    out.insert("user".into(), json!(info.user));
    out.insert(
        "failover_timeout".into(),
        json!(info.failover_timeout.unwrap_or(0.0)),
    );
    out.insert("checkpoint".into(), json!(info.checkpoint.unwrap_or(false)));
    out.insert(
        "hostname".into(),
        json!(info.hostname.clone().unwrap_or_default()),
    );
    out.insert(
        "webui_url".into(),
        json!(info.webui_url.clone().unwrap_or_default()),
    );
    if let Some(principal) = &info.principal {
        out.insert("principal".into(), json!(principal));
    }
    out.insert("capabilities".into(), capabilities_json(info));
    // The master keeps no offer constraints (they are accepted and ignored): none to show.
    out.insert("offer_constraints".into(), json!({}));
    if let Some(labels) = &info.labels {
        out.insert("labels".into(), labels_json(&labels.labels));
    }
    if is_multi_role(info) {
        out.insert("roles".into(), json!(info.roles));
    } else {
        out.insert("role".into(), json!(framework_role(info)));
    }
}

/// One live framework as `/state` and `/frameworks` show it.
pub(crate) fn framework_json(state: &State, f: &Framework) -> Value {
    let role = framework_role(&f.info);
    let mut used = Resources::new();
    let mut tasks = Vec::new();
    let mut completed: Vec<Value> = f
        .completed_tasks
        .iter()
        .map(|t| task_json(&t, &role))
        .collect();
    let mut sorted: Vec<&Task> = f.tasks.values().collect();
    sorted.sort_by(|a, b| a.task_id.value.cmp(&b.task_id.value));
    for task in sorted {
        if is_terminal(task.state) {
            completed.push(task_json(task, &role));
        } else {
            used.add_all(&task.resources);
            tasks.push(task_json(task, &role));
        }
    }
    for executor in f.executors.values() {
        used.add_all(&executor.resources);
    }
    let mut offered = Resources::new();
    let offers: Vec<Value> = state
        .offered_to(&f.id)
        .into_iter()
        .map(|(id, agent_id, resources)| {
            offered.add_all(&resources);
            json!({
                "id": id,
                "framework_id": f.id,
                "slave_id": agent_id,
                "resources": resources_json(&resources),
            })
        })
        .collect();
    let mut executors: Vec<(&(String, String), &mesos_sdk::v1::ExecutorInfo)> =
        f.executors.iter().collect();
    executors.sort_by(|a, b| a.0.cmp(b.0));
    let executors: Vec<Value> = executors
        .into_iter()
        .map(|((agent, id), e)| {
            json!({
                "executor_id": id,
                "slave_id": agent,
                "name": e.name.clone().unwrap_or_default(),
                "framework_id": f.id,
                "command": e.command.as_ref().map_or_else(|| json!({}), proto_json),
                "resources": resources_json(&e.resources),
            })
        })
        .collect();
    let mut out = Map::new();
    framework_info_fields(&mut out, &f.id, &f.info);
    out.insert(
        "registered_time".into(),
        json!(f.registered_time.unwrap_or(0.0)),
    );
    if let Some(time) = f.reregistered_time {
        out.insert("reregistered_time".into(), json!(time));
    }
    out.insert(
        "unregistered_time".into(),
        json!(f.unregistered_time.unwrap_or(0.0)),
    );
    out.insert("active".into(), json!(f.active));
    out.insert("connected".into(), json!(f.connected()));
    out.insert("recovered".into(), json!(f.recovered));
    out.insert("resources".into(), resources_json(used.as_slice()));
    out.insert("used_resources".into(), resources_json(used.as_slice()));
    out.insert(
        "offered_resources".into(),
        resources_json(offered.as_slice()),
    );
    out.insert("tasks".into(), json!(tasks));
    out.insert(
        "unreachable_tasks".into(),
        f.unreachable_tasks
            .values()
            .map(|t| task_json(t, &role))
            .collect::<Vec<_>>()
            .into(),
    );
    out.insert("completed_tasks".into(), json!(completed));
    out.insert("offers".into(), json!(offers));
    out.insert("executors".into(), json!(executors));
    Value::Object(out)
}

/// One completed framework as `/state` and `/frameworks` show it: its whole info kept.
pub(crate) fn completed_framework_json(f: &CompletedFramework) -> Value {
    let role = framework_role(&f.info);
    let mut out = Map::new();
    framework_info_fields(&mut out, &f.id, &f.info);
    out.insert(
        "registered_time".into(),
        json!(f.registered_time.unwrap_or(0.0)),
    );
    out.insert(
        "unregistered_time".into(),
        json!(f.unregistered_time.unwrap_or(0.0)),
    );
    out.insert("active".into(), json!(false));
    out.insert("connected".into(), json!(false));
    out.insert("recovered".into(), json!(false));
    out.insert("resources".into(), resources_json(&[]));
    out.insert("used_resources".into(), resources_json(&[]));
    out.insert("offered_resources".into(), resources_json(&[]));
    out.insert("tasks".into(), json!([]));
    out.insert("unreachable_tasks".into(), json!([]));
    out.insert(
        "completed_tasks".into(),
        json!(
            f.completed_tasks
                .iter()
                .map(|t| task_json(&t, &role))
                .collect::<Vec<_>>()
        ),
    );
    out.insert("offers".into(), json!([]));
    out.insert("executors".into(), json!([]));
    Value::Object(out)
}

/// The frameworks of `state`, sorted by id.
pub(super) fn sorted_frameworks(state: &State) -> Vec<&Framework> {
    let mut frameworks: Vec<_> = state.frameworks.values().collect();
    frameworks.sort_by(|a, b| a.id.cmp(&b.id));
    frameworks
}

/// The agents of `state`, sorted by id.
pub(super) fn sorted_agents(state: &State) -> Vec<&Agent> {
    let mut agents: Vec<_> = state.agents.values().collect();
    agents.sort_by(|a, b| a.id.cmp(&b.id));
    agents
}

/// One agent as `/state` and `/slaves` show it.
pub(crate) fn agent_json(a: &Agent) -> Value {
    let total = a.total.as_slice();
    let unreserved: Vec<Resource> = total
        .iter()
        .filter(|r| reservation_role(r) == "*")
        .cloned()
        .collect();
    let address = a.url.trim_start_matches("http://").to_string();
    json!({
        "id": a.id,
        "pid": format!("slave(1)@{address}"),
        "hostname": a.info.hostname,
        "port": a.info.port.unwrap_or(5051),
        "registered_time": a.registered_time,
        "resources": resources_json(total),
        "used_resources": resources_json(a.used.as_slice()),
        "offered_resources": resources_json(a.offered.as_slice()),
        "reserved_resources": reserved_by_role(total),
        "unreserved_resources": resources_json(&unreserved),
        "attributes": attributes_json(&a.info.attributes),
        "active": true,
        "deactivated": false,
        "version": MESOS_VERSION,
        "capabilities": AGENT_CAPABILITIES,
    })
}

/// `pid`, `leader` and `hostname` of the master as `/state` writes them.
pub(super) fn identity(state: &State) -> (String, String, String) {
    let info = &state.master_info;
    let pid = info.pid.clone().unwrap_or_default();
    let leader = state
        .leader
        .as_ref()
        .map(|l| format!("master@{l}"))
        .unwrap_or_else(|| pid.clone());
    (pid, leader, info.hostname.clone().unwrap_or_default())
}

/// The whole document.
pub(super) fn state(state: &State, flags: Value) -> Value {
    let info = &state.master_info;
    let (pid, leader, hostname) = identity(state);
    let frameworks: Vec<Value> = sorted_frameworks(state)
        .into_iter()
        .map(|f| framework_json(state, f))
        .collect();
    let completed_frameworks: Vec<Value> = state
        .completed_frameworks
        .iter()
        .map(completed_framework_json)
        .collect();
    let slaves: Vec<Value> = sorted_agents(state).into_iter().map(agent_json).collect();
    json!({
        "version": MESOS_VERSION,
        "build_date": BUILD_DATE,
        "build_time": BUILD_TIME,
        "build_user": BUILD_USER,
        "git_sha": GIT_SHA,
        "git_tag": MESOS_VERSION,
        "id": info.id,
        "pid": pid,
        "hostname": hostname,
        "capabilities": MASTER_CAPABILITIES,
        "start_time": state.start_time,
        "elected_time": state.start_time,
        "activated_slaves": slaves.len(),
        "deactivated_slaves": 0,
        "unreachable_slaves": state.unreachable_agents.len(),
        "leader": leader,
        "leader_info": {
            "id": info.id,
            "pid": pid,
            "port": info.port,
            "hostname": hostname,
            "version": MESOS_VERSION,
            "capabilities": MASTER_CAPABILITIES
                .iter()
                .map(|c| json!({"type": c}))
                .collect::<Vec<_>>(),
        },
        // The embedded master writes no log files: an empty `log_dir` (web UIs show no LOG link).
        "log_dir": "",
        "flags": flags,
        "slaves": slaves,
        "recovered_slaves": [],
        "frameworks": frameworks,
        "completed_frameworks": completed_frameworks,
        "orphan_tasks": [],
        "unregistered_frameworks": [],
    })
}
