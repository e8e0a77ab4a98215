//! The agent's read-only endpoints besides the executor API, in the shapes a Mesos 1.12 agent
//! answers: `/state` (also `/slave(1)/state` and `.json`: frameworks, their executors with the
//! sandbox `directory`, tasks, completed executors), `/version`, `/flags`, `/metrics/snapshot`;
//! and the routes of the agent operator API (`super::operator_api`) and the sandbox file API
//! (`super::files_api`).

// `role` (FrameworkInfo, Resource) is deprecated in the schema but Mesos still writes it.
#![allow(deprecated)]

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};

use axum::Router;
use axum::body::Body;
use axum::extract::State as AxumState;
use axum::response::Response;
use axum::routing::any;
use http::{HeaderValue, Method, StatusCode, header};
use serde_json::{Value, json};

use super::{Agent, Executor, ExecutorKind};
use crate::master::MESOS_VERSION;
use crate::master::state_json::{
    AGENT_CAPABILITIES, BUILD_DATE, BUILD_TIME, BUILD_USER, GIT_SHA, attributes_json, proto_json,
    resources_json, task_json,
};
use crate::server::v1::{method_not_allowed, text};
use mesos_sdk::codec::JSON_CONTENT_TYPE;
use mesos_sdk::duration::format_duration;
use mesos_sdk::v1::{self, ExecutorId, FrameworkId, FrameworkInfo, Task, TaskInfo, TaskState};

/// Adds the agent's read-only endpoints, its operator API and the file API to `router`.
pub(super) fn routes(router: Router<Weak<Agent>>) -> Router<Weak<Agent>> {
    let router = router
        .route("/state", any(state_endpoint))
        .route("/state.json", any(state_endpoint))
        .route("/slave(1)/state", any(state_endpoint))
        .route("/slave(1)/state.json", any(state_endpoint))
        .route("/version", any(version))
        .route("/flags", any(flags_endpoint))
        .route("/slave(1)/flags", any(flags_endpoint))
        .route("/metrics/snapshot", any(metrics_snapshot))
        .route("/api/v1", any(super::operator_api::operator))
        .route("/slave(1)/api/v1", any(super::operator_api::operator));
    super::files_api::routes(router)
}

fn json_response(value: &Value) -> Response {
    let mut response = Response::new(Body::from(value.to_string()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(JSON_CONTENT_TYPE),
    );
    response
}

/// The agent for a read-only endpoint (GET or POST), or the answer to give instead.
fn read_only(agent: &Weak<Agent>, method: &Method) -> Result<Arc<Agent>, Box<Response>> {
    if method != Method::GET && method != Method::POST {
        return Err(Box::new(method_not_allowed(&["GET", "POST"], method)));
    }
    agent.upgrade().ok_or_else(|| {
        Box::new(text(
            StatusCode::SERVICE_UNAVAILABLE,
            "Agent is shutting down",
        ))
    })
}

fn version_json() -> Value {
    json!({
        "build_date": BUILD_DATE,
        "build_time": BUILD_TIME,
        "build_user": BUILD_USER,
        "git_sha": GIT_SHA,
        "git_tag": MESOS_VERSION,
        "version": MESOS_VERSION,
    })
}

async fn version(method: Method) -> Response {
    if method != Method::GET && method != Method::POST {
        return method_not_allowed(&["GET", "POST"], &method);
    }
    json_response(&version_json())
}

/// The role `/state` shows for a framework (its first role when MULTI_ROLE).
fn framework_role(info: &FrameworkInfo) -> String {
    let multi = info
        .capabilities
        .iter()
        .any(|c| c.r#type == Some(v1::framework_info::capability::Type::MultiRole as i32));
    if multi {
        info.roles.first().cloned().unwrap_or_else(|| "*".into())
    } else {
        info.role.clone().unwrap_or_else(|| "*".into())
    }
}

/// A task as the agent knows it, in the `Task` form tools read.
pub(super) fn task_of(
    agent: &Agent,
    framework_id: &str,
    executor: &Executor,
    info: &TaskInfo,
    state: TaskState,
) -> Task {
    let executor_id = (executor.kind != ExecutorKind::Command).then(|| ExecutorId {
        value: executor.info.executor_id.value.clone(),
    });
    Task {
        name: info.name.clone(),
        task_id: info.task_id.clone(),
        framework_id: FrameworkId {
            value: framework_id.to_string(),
        },
        executor_id,
        agent_id: agent.id.clone(),
        state: state as i32,
        resources: info.resources.clone(),
        labels: info.labels.clone(),
        discovery: info.discovery.as_deref().cloned(),
        container: info.container.as_deref().cloned(),
        health_check: info.health_check.as_deref().cloned(),
        kill_policy: info.kill_policy,
        user: info.command.as_ref().and_then(|c| c.user.clone()),
        ..Default::default()
    }
}

/// Whether a task in `state` is done.
pub(super) fn is_terminal(state: TaskState) -> bool {
    matches!(
        state,
        TaskState::TaskFinished
            | TaskState::TaskFailed
            | TaskState::TaskKilled
            | TaskState::TaskLost
            | TaskState::TaskError
            | TaskState::TaskDropped
            | TaskState::TaskGone
            | TaskState::TaskGoneByOperator
    )
}

/// The agent's flags as Mesos names them, with string values.
pub(super) fn flags(agent: &Agent) -> BTreeMap<&'static str, String> {
    let config = &agent.config;
    let mut flags = BTreeMap::new();
    flags.insert("work_dir", agent.work_dir.to_string_lossy().into_owned());
    flags.insert("hostname", config.hostname.clone());
    flags.insert("ip", agent.endpoint.ip().to_string());
    flags.insert("port", agent.endpoint.port().to_string());
    flags.insert(
        "executor_registration_timeout",
        format_duration(config.executor_registration_timeout),
    );
    flags.insert(
        "executor_shutdown_grace_period",
        format_duration(config.executor_shutdown_grace_period),
    );
    flags.insert(
        "executor_reregistration_timeout",
        format_duration(config.executor_reregistration_timeout),
    );
    flags.insert("recovery_timeout", format_duration(config.recovery_timeout));
    flags.insert("launcher", "posix".to_string());
    flags.insert("isolation", "posix/cpu,posix/mem".to_string());
    flags.insert("containerizers", "mesos".to_string());
    flags.insert("logging_level", "INFO".to_string());
    flags.insert("quiet", "false".to_string());
    flags
}

fn flags_json(agent: &Agent) -> Value {
    Value::Object(
        flags(agent)
            .into_iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect(),
    )
}

async fn flags_endpoint(AxumState(agent): AxumState<Weak<Agent>>, method: Method) -> Response {
    match read_only(&agent, &method) {
        Ok(agent) => json_response(&json!({"flags": flags_json(&agent)})),
        Err(response) => *response,
    }
}

/// One executor as the agent's `/state` shows it.
fn executor_json(agent: &Agent, framework_id: &str, role: &str, executor: &Executor) -> Value {
    let mut tasks = Vec::new();
    let mut completed = Vec::new();
    let mut entries: Vec<_> = executor.tasks.values().collect();
    entries.sort_by(|a, b| a.info.task_id.value.cmp(&b.info.task_id.value));
    for entry in entries {
        let task = task_json(
            &task_of(agent, framework_id, executor, &entry.info, entry.state),
            role,
        );
        if is_terminal(entry.state) {
            completed.push(task);
        } else {
            tasks.push(task);
        }
    }
    let queued: Vec<Value> = executor
        .queued
        .iter()
        .flat_map(|launch| match launch {
            super::QueuedLaunch::Task(task) => vec![(**task).clone()],
            super::QueuedLaunch::Group(group) => group.tasks.clone(),
        })
        .map(|info| {
            task_json(
                &task_of(agent, framework_id, executor, &info, TaskState::TaskStaging),
                role,
            )
        })
        .collect();
    let info = &executor.info;
    let mut out = serde_json::Map::new();
    out.insert("id".into(), json!(info.executor_id.value));
    out.insert("name".into(), json!(info.name.clone().unwrap_or_default()));
    out.insert(
        "source".into(),
        json!(info.source.clone().unwrap_or_default()),
    );
    out.insert("container".into(), json!(executor.run_id));
    out.insert(
        "directory".into(),
        json!(executor.sandbox.to_string_lossy()),
    );
    out.insert("resources".into(), resources_json(&info.resources));
    out.insert("role".into(), json!(role));
    if let Some(kind) = info
        .r#type
        .and_then(|t| v1::executor_info::Type::try_from(t).ok())
    {
        out.insert("type".into(), json!(kind.as_str_name()));
    }
    if let Some(labels) = &info.labels {
        out.insert(
            "labels".into(),
            proto_json(labels)
                .get("labels")
                .cloned()
                .unwrap_or(json!([])),
        );
    }
    out.insert("tasks".into(), json!(tasks));
    out.insert("queued_tasks".into(), json!(queued));
    out.insert("completed_tasks".into(), json!(completed));
    Value::Object(out)
}

/// The agent's `/state` document.
fn state_json(agent: &Agent) -> Value {
    let state = agent.lock();
    let mut framework_ids: Vec<&String> = state.frameworks.keys().collect();
    framework_ids.sort();
    let frameworks: Vec<Value> = framework_ids
        .into_iter()
        .filter_map(|id| state.frameworks.get(id).map(|f| (id, f)))
        .map(|(id, f)| {
            let role = framework_role(&f.info);
            let mut executor_ids: Vec<&String> = f.executors.keys().collect();
            executor_ids.sort();
            let executors: Vec<Value> = executor_ids
                .into_iter()
                .filter_map(|e| f.executors.get(e))
                .map(|e| executor_json(agent, id, &role, e))
                .collect();
            let completed =
                completed_executors(&state, id, &role, |ex| f.executors.contains_key(ex));
            let mut out = serde_json::Map::new();
            out.insert("id".into(), json!(id));
            out.insert("name".into(), json!(f.info.name));
            out.insert("user".into(), json!(f.info.user));
            out.insert(
                "failover_timeout".into(),
                json!(f.info.failover_timeout.unwrap_or(0.0)),
            );
            out.insert(
                "checkpoint".into(),
                json!(f.info.checkpoint.unwrap_or(false)),
            );
            out.insert(
                "hostname".into(),
                json!(f.info.hostname.clone().unwrap_or_default()),
            );
            if let Some(principal) = &f.info.principal {
                out.insert("principal".into(), json!(principal));
            }
            out.insert("role".into(), json!(role));
            out.insert("executors".into(), json!(executors));
            out.insert("completed_executors".into(), json!(completed));
            Value::Object(out)
        })
        .collect();
    // Frameworks gone from the agent whose executors' sandboxes are kept.
    let mut gone: Vec<&String> = state
        .finished_order
        .iter()
        .map(|(fw, _)| fw)
        .filter(|fw| !state.frameworks.contains_key(*fw))
        .collect();
    gone.sort();
    gone.dedup();
    let completed_frameworks: Vec<Value> = gone
        .into_iter()
        .map(|id| {
            json!({
                "id": id,
                "executors": [],
                "completed_executors": completed_executors(&state, id, "*", |_| false),
            })
        })
        .collect();
    drop(state);
    let info = &agent.info;
    json!({
        "version": MESOS_VERSION,
        "build_date": BUILD_DATE,
        "build_time": BUILD_TIME,
        "build_user": BUILD_USER,
        "git_sha": GIT_SHA,
        "git_tag": MESOS_VERSION,
        "id": agent.id.value,
        "pid": format!("slave(1)@{}", agent.endpoint),
        "hostname": info.hostname,
        "capabilities": AGENT_CAPABILITIES,
        "start_time": agent.start_time,
        "resources": resources_json(&info.resources),
        "attributes": attributes_json(&info.attributes),
        "reserved_resources": {},
        "unreserved_resources": resources_json(&info.resources),
        // The embedded agent writes no log files: an empty `log_dir`.
        "log_dir": "",
        "flags": flags_json(agent),
        "frameworks": frameworks,
        "completed_frameworks": completed_frameworks,
    })
}

/// The executors of `framework_id` that are gone but whose sandboxes are kept (`live` tells the
/// ones still running), as `completed_executors` entries.
fn completed_executors(
    state: &super::State,
    framework_id: &str,
    role: &str,
    live: impl Fn(&str) -> bool,
) -> Vec<Value> {
    state
        .finished_order
        .iter()
        .filter(|(fw, ex)| fw == framework_id && !live(ex))
        .filter_map(|key| state.finished_sandboxes.get(key).map(|dir| (key, dir)))
        .map(|((_, ex), dir)| {
            json!({
                "id": ex,
                "name": "",
                "source": "",
                "container": dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
                "directory": dir.to_string_lossy(),
                "resources": resources_json(&[]),
                "role": role,
                "tasks": [],
                "queued_tasks": [],
                "completed_tasks": [],
            })
        })
        .collect()
}

async fn state_endpoint(AxumState(agent): AxumState<Weak<Agent>>, method: Method) -> Response {
    match read_only(&agent, &method) {
        Ok(agent) => json_response(&state_json(&agent)),
        Err(response) => *response,
    }
}

/// The agent's metrics under Mesos' names (those it can know).
pub(super) fn metrics(agent: &Agent) -> BTreeMap<String, f64> {
    let state = agent.lock();
    let mut out = BTreeMap::new();
    let executors: Vec<&Executor> = state
        .frameworks
        .values()
        .flat_map(|f| f.executors.values())
        .collect();
    let count = |s: TaskState| {
        executors
            .iter()
            .flat_map(|e| e.tasks.values())
            .filter(|t| t.state == s)
            .count() as f64
    };
    out.insert("slave/registered".into(), 1.0);
    out.insert(
        "slave/uptime_secs".into(),
        (super::now_seconds() - agent.start_time).max(0.0),
    );
    out.insert(
        "slave/frameworks_active".into(),
        state.frameworks.len() as f64,
    );
    out.insert("slave/executors_running".into(), executors.len() as f64);
    out.insert(
        "slave/executors_terminated".into(),
        state.finished_sandboxes.len() as f64,
    );
    for (name, s) in [
        ("staging", TaskState::TaskStaging),
        ("starting", TaskState::TaskStarting),
        ("running", TaskState::TaskRunning),
        ("killing", TaskState::TaskKilling),
        ("finished", TaskState::TaskFinished),
        ("failed", TaskState::TaskFailed),
        ("killed", TaskState::TaskKilled),
        ("lost", TaskState::TaskLost),
    ] {
        out.insert(format!("slave/tasks_{name}"), count(s));
    }
    let total = mesos_sdk::resourcemgr::Resources::from_slice(&agent.info.resources);
    let mut used = mesos_sdk::resourcemgr::Resources::new();
    for e in &executors {
        used.add_all(&e.info.resources);
        for t in e.tasks.values().filter(|t| !is_terminal(t.state)) {
            used.add_all(&t.info.resources);
        }
    }
    for name in ["cpus", "gpus", "mem", "disk"] {
        let (t, u) = (total.scalar(name), used.scalar(name));
        out.insert(format!("slave/{name}_total"), t);
        out.insert(format!("slave/{name}_used"), u);
        out.insert(
            format!("slave/{name}_percent"),
            if t > 0.0 { u / t } else { 0.0 },
        );
    }
    out
}

async fn metrics_snapshot(AxumState(agent): AxumState<Weak<Agent>>, method: Method) -> Response {
    match read_only(&agent, &method) {
        Ok(agent) => json_response(&json!(metrics(&agent))),
        Err(response) => *response,
    }
}
