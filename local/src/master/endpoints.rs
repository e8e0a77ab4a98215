//! The master's read-only endpoints besides `/state` and `/metrics/snapshot` (`super::metrics`),
//! in the JSON shapes of a Mesos 1.12 master: `/version`, `/flags`, `/frameworks`, `/roles`,
//! `/slaves`, `/state-summary` and `/tasks` (each also under `/master/`), and the operator API's
//! views of the same facts (GET_FLAGS, GET_ROLES).

// `role` (FrameworkInfo, Resource) is deprecated in the schema but Mesos still reads and writes it.
#![allow(deprecated)]

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, State as AxumState};
use axum::response::Response;
use http::{HeaderValue, Method, StatusCode, header};
use serde_json::{Map, Value, json};

use super::state::{Shared, State, is_terminal};
use super::state_json::{
    BUILD_DATE, BUILD_TIME, BUILD_USER, GIT_SHA, agent_json, completed_framework_json,
    framework_json, framework_role, resources_json, sorted_agents, sorted_frameworks, state_name,
    task_json,
};
use super::{MESOS_VERSION, MasterConfig};
use crate::server::v1::{method_not_allowed, text};
use mesos_sdk::codec::JSON_CONTENT_TYPE;
use mesos_sdk::duration::format_duration;
use mesos_sdk::resourcemgr::reservation_role;
use mesos_sdk::v1::{self, Resource, TaskState};

/// A 200 answer with a JSON body.
pub(crate) fn json_response(value: &Value) -> Response {
    let mut response = Response::new(Body::from(value.to_string()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(JSON_CONTENT_TYPE),
    );
    response
}

/// The read-only endpoints take GET and POST, as Mesos' do.
pub(super) fn read_only(method: &Method) -> Option<Response> {
    (method != Method::GET && method != Method::POST)
        .then(|| method_not_allowed(&["GET", "POST"], method))
}

/// `/version`: the version and build of the master.
pub(crate) fn version_json() -> Value {
    json!({
        "build_date": BUILD_DATE,
        "build_time": BUILD_TIME,
        "build_user": BUILD_USER,
        "git_sha": GIT_SHA,
        "git_tag": MESOS_VERSION,
        "version": MESOS_VERSION,
    })
}

pub(super) async fn version(method: Method) -> Response {
    read_only(&method).unwrap_or_else(|| json_response(&version_json()))
}

/// The master's flags as Mesos names them, with string values, from its configuration.
pub(super) fn flags(config: &MasterConfig, port: u32) -> BTreeMap<&'static str, String> {
    let mut flags = BTreeMap::new();
    flags.insert(
        "allocation_interval",
        format_duration(config.allocation_interval),
    );
    flags.insert(
        "agent_ping_timeout",
        format_duration(config.agent_removal_timeout / 5),
    );
    flags.insert("max_agent_ping_timeouts", "5".to_string());
    flags.insert(
        "authenticate_http_frameworks",
        (!config.credentials.is_empty()).to_string(),
    );
    flags.insert("authenticate_frameworks", "false".to_string());
    flags.insert("authenticate_agents", "false".to_string());
    flags.insert("hostname", config.hostname.clone());
    flags.insert("ip", config.ip.to_string());
    flags.insert("port", port.to_string());
    flags.insert(
        "max_completed_frameworks",
        config.max_completed_frameworks.to_string(),
    );
    flags.insert(
        "max_completed_tasks_per_framework",
        config.max_completed_tasks_per_framework.to_string(),
    );
    if let Some(timeout) = config.offer_timeout {
        flags.insert("offer_timeout", format_duration(timeout));
    }
    flags.insert("registry", "in_memory".to_string());
    flags.insert("logging_level", "INFO".to_string());
    flags.insert("quiet", "false".to_string());
    flags
}

/// The flags as one JSON object (`/flags`, `/state`).
pub(super) fn flags_json(config: &MasterConfig, port: u32) -> Value {
    Value::Object(
        flags(config, port)
            .into_iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect(),
    )
}

pub(super) async fn flags_endpoint(
    AxumState(shared): AxumState<Arc<Shared>>,
    method: Method,
) -> Response {
    if let Some(response) = read_only(&method) {
        return response;
    }
    let port = shared.lock().master_info.port;
    json_response(&json!({"flags": flags_json(&shared.config, port)}))
}

/// Tasks by state name of the given tasks, for every state Mesos counts.
fn task_counts<'a>(tasks: impl Iterator<Item = &'a v1::Task>) -> BTreeMap<&'static str, u64> {
    let mut counts: BTreeMap<&'static str, u64> = COUNTED_STATES
        .iter()
        .map(|s| (s.as_str_name(), 0))
        .collect();
    for task in tasks {
        *counts.entry(state_name(task.state)).or_default() += 1;
    }
    counts
}

/// The task states `/state-summary` counts.
const COUNTED_STATES: [TaskState; 13] = [
    TaskState::TaskStaging,
    TaskState::TaskStarting,
    TaskState::TaskRunning,
    TaskState::TaskKilling,
    TaskState::TaskFinished,
    TaskState::TaskKilled,
    TaskState::TaskFailed,
    TaskState::TaskLost,
    TaskState::TaskError,
    TaskState::TaskDropped,
    TaskState::TaskUnreachable,
    TaskState::TaskGone,
    TaskState::TaskGoneByOperator,
];

/// Every task the master knows (live and completed) of every framework.
fn all_tasks(state: &State) -> Vec<v1::Task> {
    let mut tasks = Vec::new();
    for f in sorted_frameworks(state) {
        let mut live: Vec<&v1::Task> = f.tasks.values().collect();
        live.sort_by(|a, b| a.task_id.value.cmp(&b.task_id.value));
        tasks.extend(live.into_iter().cloned());
        tasks.extend(f.completed_tasks.iter());
    }
    for f in &state.completed_frameworks {
        tasks.extend(f.completed_tasks.iter());
    }
    tasks
}

pub(super) async fn frameworks(
    AxumState(shared): AxumState<Arc<Shared>>,
    method: Method,
) -> Response {
    if let Some(response) = read_only(&method) {
        return response;
    }
    let state = shared.lock();
    let frameworks: Vec<Value> = sorted_frameworks(&state)
        .into_iter()
        .map(|f| framework_json(&state, f))
        .collect();
    let completed: Vec<Value> = state
        .completed_frameworks
        .iter()
        .map(completed_framework_json)
        .collect();
    json_response(&json!({
        "frameworks": frameworks,
        "completed_frameworks": completed,
        "unregistered_frameworks": [],
    }))
}

pub(super) async fn slaves(AxumState(shared): AxumState<Arc<Shared>>, method: Method) -> Response {
    if let Some(response) = read_only(&method) {
        return response;
    }
    let state = shared.lock();
    let slaves: Vec<Value> = sorted_agents(&state).into_iter().map(agent_json).collect();
    json_response(&json!({"slaves": slaves, "recovered_slaves": []}))
}

/// One role's facts: its frameworks, and the resources allocated, offered and reserved to it.
#[derive(Default)]
struct RoleFacts {
    frameworks: Vec<String>,
    allocated: Vec<Resource>,
    offered: Vec<Resource>,
    reserved: Vec<Resource>,
}

/// The roles the master knows (of subscribed frameworks, allocations and reservations), by name.
fn roles(state: &State) -> BTreeMap<String, RoleFacts> {
    let mut roles: BTreeMap<String, RoleFacts> = BTreeMap::new();
    for f in sorted_frameworks(state) {
        if f.recovered {
            continue;
        }
        let fallback = framework_role(&f.info);
        for role in f.roles() {
            roles.entry(role).or_default().frameworks.push(f.id.clone());
        }
        for task in f.tasks.values().filter(|t| !is_terminal(t.state)) {
            for r in &task.resources {
                let role = r
                    .allocation_info
                    .as_ref()
                    .and_then(|a| a.role.clone())
                    .unwrap_or_else(|| fallback.clone());
                roles.entry(role).or_default().allocated.push(r.clone());
            }
        }
        for (_, _, resources) in state.offered_to(&f.id) {
            for r in resources {
                let role = r
                    .allocation_info
                    .as_ref()
                    .and_then(|a| a.role.clone())
                    .unwrap_or_else(|| fallback.clone());
                roles.entry(role).or_default().offered.push(r);
            }
        }
    }
    for agent in state.agents.values() {
        for r in agent.total.as_slice() {
            let role = reservation_role(r);
            if role != "*" {
                roles
                    .entry(role.to_string())
                    .or_default()
                    .reserved
                    .push(r.clone());
            }
        }
    }
    roles
}

pub(super) async fn roles_endpoint(
    AxumState(shared): AxumState<Arc<Shared>>,
    method: Method,
) -> Response {
    if let Some(response) = read_only(&method) {
        return response;
    }
    let roles: Vec<Value> = roles(&shared.lock())
        .into_iter()
        .map(|(name, facts)| {
            json!({
                "name": name,
                "weight": 1.0,
                "frameworks": facts.frameworks,
                "resources": resources_json(&facts.allocated),
                "allocated": resources_json(&facts.allocated),
                "offered": resources_json(&facts.offered),
                "reserved": resources_json(&facts.reserved),
                "quota": {"role": name, "guarantee": {}, "limit": {}, "consumed": resources_json(&facts.allocated)},
            })
        })
        .collect();
    json_response(&json!({"roles": roles}))
}

pub(super) async fn state_summary(
    AxumState(shared): AxumState<Arc<Shared>>,
    method: Method,
) -> Response {
    if let Some(response) = read_only(&method) {
        return response;
    }
    let state = shared.lock();
    let tasks = all_tasks(&state);
    let slaves: Vec<Value> = sorted_agents(&state)
        .into_iter()
        .map(|a| {
            let mut out = match agent_json(a) {
                Value::Object(map) => map,
                _ => Map::new(),
            };
            let here = tasks.iter().filter(|t| t.agent_id.value == a.id);
            for (name, count) in task_counts(here) {
                out.insert(name.into(), json!(count));
            }
            let mut ids: Vec<String> = tasks
                .iter()
                .filter(|t| t.agent_id.value == a.id)
                .map(|t| t.framework_id.value.clone())
                .collect();
            ids.sort();
            ids.dedup();
            out.insert("framework_ids".into(), json!(ids));
            Value::Object(out)
        })
        .collect();
    let frameworks: Vec<Value> = sorted_frameworks(&state)
        .into_iter()
        .map(|f| {
            let full = framework_json(&state, f);
            let mut out = Map::new();
            for key in [
                "id",
                "name",
                "used_resources",
                "offered_resources",
                "capabilities",
                "hostname",
                "webui_url",
                "active",
                "connected",
                "recovered",
                "role",
                "roles",
            ] {
                if let Some(value) = full.get(key) {
                    out.insert(key.into(), value.clone());
                }
            }
            let mine = tasks.iter().filter(|t| t.framework_id.value == f.id);
            for (name, count) in task_counts(mine) {
                out.insert(name.into(), json!(count));
            }
            let mut ids: Vec<String> = tasks
                .iter()
                .filter(|t| t.framework_id.value == f.id && !is_terminal(t.state))
                .map(|t| t.agent_id.value.clone())
                .collect();
            ids.sort();
            ids.dedup();
            out.insert("slave_ids".into(), json!(ids));
            Value::Object(out)
        })
        .collect();
    json_response(&json!({
        "hostname": state.master_info.hostname.clone().unwrap_or_default(),
        "slaves": slaves,
        "frameworks": frameworks,
    }))
}

/// The query of `/tasks`, as Mesos reads it.
#[derive(Debug, serde::Deserialize)]
pub(super) struct TasksQuery {
    limit: Option<String>,
    offset: Option<String>,
    order: Option<String>,
    framework_id: Option<String>,
    task_id: Option<String>,
}

/// Mesos' default page size of `/tasks`.
const TASKS_LIMIT: usize = 100;

pub(super) async fn tasks(
    AxumState(shared): AxumState<Arc<Shared>>,
    method: Method,
    Query(query): Query<TasksQuery>,
) -> Response {
    if let Some(response) = read_only(&method) {
        return response;
    }
    let number = |value: &Option<String>, name: &str, default: usize| match value {
        None => Ok(default),
        Some(v) => v.parse::<usize>().map_err(|_| {
            Box::new(text(
                StatusCode::BAD_REQUEST,
                format!(
                    "Failed to parse query parameter '{name}': Failed to convert '{v}' to number"
                ),
            ))
        }),
    };
    let limit = match number(&query.limit, "limit", TASKS_LIMIT) {
        Ok(n) => n,
        Err(response) => return *response,
    };
    let offset = match number(&query.offset, "offset", 0) {
        Ok(n) => n,
        Err(response) => return *response,
    };
    let ascending = match query.order.as_deref() {
        None | Some("des") => false,
        Some("asc") => true,
        Some(other) => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("Failed to parse query parameter 'order': Unknown order '{other}'"),
            );
        }
    };
    let state = shared.lock();
    let roles: BTreeMap<&str, String> = state
        .frameworks
        .values()
        .map(|f| (f.id.as_str(), framework_role(&f.info)))
        .collect();
    let mut tasks: Vec<v1::Task> = all_tasks(&state)
        .into_iter()
        .filter(|t| {
            query
                .framework_id
                .as_ref()
                .is_none_or(|id| *id == t.framework_id.value)
        })
        .filter(|t| {
            query
                .task_id
                .as_ref()
                .is_none_or(|id| *id == t.task_id.value)
        })
        .collect();
    let start = |t: &v1::Task| t.statuses.first().and_then(|s| s.timestamp).unwrap_or(0.0);
    tasks.sort_by(|a, b| start(a).total_cmp(&start(b)));
    if !ascending {
        tasks.reverse();
    }
    let page: Vec<Value> = tasks
        .iter()
        .skip(offset)
        .take(limit)
        .map(|t| {
            let role = roles
                .get(t.framework_id.value.as_str())
                .cloned()
                .unwrap_or_else(|| "*".to_string());
            task_json(t, &role)
        })
        .collect();
    json_response(&json!({"tasks": page}))
}

/// GET_FLAGS.
pub(super) fn get_flags(config: &MasterConfig, port: u32) -> v1::master::response::GetFlags {
    v1::master::response::GetFlags {
        flags: flags(config, port)
            .into_iter()
            .map(|(name, value)| v1::Flag {
                name: name.to_string(),
                value: Some(value),
            })
            .collect(),
    }
}

/// GET_ROLES: the roles of `/roles` with weight 1 and their allocated resources.
pub(super) fn get_roles(state: &State) -> v1::master::response::GetRoles {
    v1::master::response::GetRoles {
        roles: roles(state)
            .into_iter()
            .map(|(name, facts)| v1::Role {
                name,
                weight: 1.0,
                frameworks: facts
                    .frameworks
                    .into_iter()
                    .map(|value| v1::FrameworkId { value })
                    .collect(),
                resources: facts.allocated,
            })
            .collect(),
    }
}
