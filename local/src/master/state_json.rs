//! The `/state` (`/master/state`) JSON document in the shape Mesos' web UI and tools read:
//! frameworks with their tasks and resources, completed frameworks, agents (`slaves`) with total,
//! used and offered resources and attributes, and the master's identity.

// `role` (FrameworkInfo, Resource) is deprecated in the schema but Mesos still reads and writes it.
#![allow(deprecated)]

use serde_json::{Map, Value, json};

use super::MESOS_VERSION;
use super::state::{State, is_terminal};
use mesos_sdk::resourcemgr::{Resources, reservation_role};
use mesos_sdk::v1::{Attribute, Label, Resource, Task, TaskState, value};

/// Resources as `/state` shows them: `{"cpus": 4.0, "mem": 1024.0, "ports": "[31000-32000]"}`.
pub(super) fn resources_json(resources: &[Resource]) -> Value {
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

fn attributes_json(attributes: &[Attribute]) -> Value {
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

fn state_name(state: i32) -> &'static str {
    TaskState::try_from(state)
        .map(|s| s.as_str_name())
        .unwrap_or("TASK_UNKNOWN")
}

fn task_json(task: &Task) -> Value {
    let statuses: Vec<Value> = task
        .statuses
        .iter()
        .map(|s| {
            json!({
                "state": state_name(s.state),
                "timestamp": s.timestamp.unwrap_or(0.0),
            })
        })
        .collect();
    let mut out = json!({
        "id": task.task_id.value,
        "name": task.name,
        "framework_id": task.framework_id.value,
        "executor_id": task.executor_id.as_ref().map(|e| e.value.clone()).unwrap_or_default(),
        "slave_id": task.agent_id.value,
        "agent_id": task.agent_id.value,
        "state": state_name(task.state),
        "resources": resources_json(&task.resources),
        "statuses": statuses,
    });
    if let (Some(labels), Some(obj)) = (&task.labels, out.as_object_mut()) {
        obj.insert("labels".into(), labels_json(&labels.labels));
    }
    if let (Some(user), Some(obj)) = (&task.user, out.as_object_mut()) {
        obj.insert("user".into(), json!(user));
    }
    out
}

/// The whole document.
pub(super) fn state(state: &State) -> Value {
    let info = &state.master_info;
    let pid = info.pid.clone().unwrap_or_default();
    let leader = state
        .leader
        .as_ref()
        .map(|l| format!("master@{l}"))
        .unwrap_or_else(|| pid.clone());
    let mut frameworks: Vec<_> = state.frameworks.values().collect();
    frameworks.sort_by(|a, b| a.id.cmp(&b.id));
    let frameworks_json: Vec<Value> = frameworks
        .iter()
        .map(|f| {
            let mut used = Resources::new();
            let mut tasks = Vec::new();
            let mut completed: Vec<Value> =
                f.completed_tasks.iter().map(|t| task_json(&t)).collect();
            let mut sorted: Vec<&Task> = f.tasks.values().collect();
            sorted.sort_by(|a, b| a.task_id.value.cmp(&b.task_id.value));
            for task in sorted {
                if is_terminal(task.state) {
                    completed.push(task_json(task));
                } else {
                    used.add_all(&task.resources);
                    tasks.push(task_json(task));
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
            let capabilities: Vec<Value> = f
                .info
                .capabilities
                .iter()
                .filter_map(|c| c.r#type)
                .filter_map(|t| {
                    mesos_sdk::v1::framework_info::capability::Type::try_from(t)
                        .ok()
                        .map(|t| json!(t.as_str_name()))
                })
                .collect();
            let executors: Vec<Value> = f
                .executors
                .iter()
                .map(|((agent, id), e)| {
                    json!({
                        "executor_id": id,
                        "slave_id": agent,
                        "name": e.name.clone().unwrap_or_default(),
                        "resources": resources_json(&e.resources),
                    })
                })
                .collect();
            json!({
                "id": f.id,
                "name": f.info.name,
                "user": f.info.user,
                "hostname": f.info.hostname.clone().unwrap_or_default(),
                "webui_url": f.info.webui_url.clone().unwrap_or_default(),
                "principal": f.info.principal,
                "role": f.info.role.clone().unwrap_or_else(|| "*".into()),
                "roles": f.roles(),
                "failover_timeout": f.info.failover_timeout.unwrap_or(0.0),
                "checkpoint": f.info.checkpoint.unwrap_or(false),
                "capabilities": capabilities,
                "active": f.active,
                "connected": f.connected(),
                "recovered": f.recovered,
                "registered_time": f.registered_time.unwrap_or(0.0),
                "reregistered_time": f.reregistered_time.unwrap_or(0.0),
                "unregistered_time": f.unregistered_time.unwrap_or(0.0),
                "resources": resources_json(used.as_slice()),
                "allocated_resources": resources_json(used.as_slice()),
                "used_resources": resources_json(used.as_slice()),
                "offered_resources": resources_json(offered.as_slice()),
                "tasks": tasks,
                "unreachable_tasks": f.unreachable_tasks.values().map(task_json).collect::<Vec<_>>(),
                "completed_tasks": completed,
                "offers": offers,
                "executors": executors,
                "labels": labels_json(f.info.labels.as_ref().map(|l| &l.labels[..]).unwrap_or(&[])),
            })
        })
        .collect();
    let completed_frameworks: Vec<Value> = state
        .completed_frameworks
        .iter()
        .map(|f| {
            json!({
                "id": f.id,
                "name": f.info.name,
                "user": f.info.user,
                "role": f.info.role.clone().unwrap_or_else(|| "*".into()),
                "active": false,
                "connected": false,
                "registered_time": f.registered_time.unwrap_or(0.0),
                "unregistered_time": f.unregistered_time.unwrap_or(0.0),
                "tasks": [],
                "completed_tasks": f.completed_tasks.iter().map(|t| task_json(&t)).collect::<Vec<_>>(),
                "offers": [],
                "executors": [],
                "resources": resources_json(&[]),
                "used_resources": resources_json(&[]),
                "offered_resources": resources_json(&[]),
            })
        })
        .collect();
    let mut agents: Vec<_> = state.agents.values().collect();
    agents.sort_by(|a, b| a.id.cmp(&b.id));
    let slaves: Vec<Value> = agents
        .iter()
        .map(|a| {
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
                "capabilities": ["MULTI_ROLE", "HIERARCHICAL_ROLE", "RESERVATION_REFINEMENT"],
            })
        })
        .collect();
    let hostname = info.hostname.clone().unwrap_or_default();
    json!({
        "version": MESOS_VERSION,
        "id": info.id,
        "pid": pid,
        "hostname": hostname,
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
        },
        "flags": {},
        "slaves": slaves,
        "frameworks": frameworks_json,
        "completed_frameworks": completed_frameworks,
        "orphan_tasks": [],
        "unregistered_frameworks": [],
    })
}
