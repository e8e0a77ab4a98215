//! The agent operator API on `POST /api/v1` (also `/slave(1)/api/v1`), as a Mesos 1.12 agent
//! answers it: GET_HEALTH, GET_FLAGS, GET_VERSION, GET_METRICS, GET_STATE, GET_AGENT,
//! GET_CONTAINERS, GET_FRAMEWORKS, GET_EXECUTORS, GET_TASKS, GET_RESOURCE_PROVIDERS (empty);
//! other calls 501 `501 Not Implemented.`. Calls are checked as the master's are (405 with
//! `Allow: POST`, 400 / 415 on `Content-Type`, Mesos' decode texts, 400 `Failed to validate
//! agent::Call: Expecting 'type' to be present`).

use std::sync::Weak;

use axum::body::Body;
use axum::extract::{Request, State as AxumState};
use axum::response::Response;
use http::{HeaderValue, Method, StatusCode, header};

use super::Agent;
use super::http::{flags, is_terminal, metrics, task_of};
use crate::master::MESOS_VERSION;
use crate::master::state_json::{BUILD_DATE, BUILD_TIME, BUILD_USER, GIT_SHA};
use crate::server::v1::{decode_call, event_format, method_not_allowed, not_implemented, text};
use mesos_sdk::v1::agent::{Call, Response as AgentResponse, call, response};
use mesos_sdk::v1::{self, ContainerId, FrameworkId, TaskState};

/// GET_TASKS, GET_EXECUTORS and GET_FRAMEWORKS from the agent's state.
fn operator_views(
    agent: &Agent,
) -> (
    response::GetTasks,
    response::GetExecutors,
    response::GetFrameworks,
) {
    let state = agent.lock();
    let mut tasks = response::GetTasks::default();
    let mut executors = response::GetExecutors::default();
    let mut frameworks = response::GetFrameworks::default();
    let mut ids: Vec<&String> = state.frameworks.keys().collect();
    ids.sort();
    for id in ids {
        let Some(f) = state.frameworks.get(id) else {
            continue;
        };
        frameworks
            .frameworks
            .push(response::get_frameworks::Framework {
                framework_info: f.info.clone(),
            });
        let mut executor_ids: Vec<&String> = f.executors.keys().collect();
        executor_ids.sort();
        for e in executor_ids.into_iter().filter_map(|e| f.executors.get(e)) {
            executors.executors.push(response::get_executors::Executor {
                executor_info: e.info.clone(),
            });
            for entry in e.tasks.values() {
                let task = task_of(agent, id, e, &entry.info, entry.state);
                if is_terminal(entry.state) {
                    tasks.terminated_tasks.push(task);
                } else {
                    tasks.launched_tasks.push(task);
                }
            }
            for launch in &e.queued {
                let infos = match launch {
                    super::QueuedLaunch::Task(task) => vec![(**task).clone()],
                    super::QueuedLaunch::Group(group) => group.tasks.clone(),
                };
                for info in infos {
                    tasks
                        .queued_tasks
                        .push(task_of(agent, id, e, &info, TaskState::TaskStaging));
                }
            }
        }
    }
    (tasks, executors, frameworks)
}

/// The `ContainerStatus` the agent puts on status updates and GET_CONTAINERS, as Mesos does:
/// the run's container id, the executor's pid, and the agent's IP as the container's network.
pub(super) fn container_status(
    run_id: &str,
    pid: Option<i32>,
    ip: std::net::IpAddr,
) -> v1::ContainerStatus {
    v1::ContainerStatus {
        container_id: Some(ContainerId {
            value: run_id.to_string(),
            parent: None,
        }),
        executor_pid: pid.and_then(|p| u32::try_from(p).ok()),
        network_infos: vec![v1::NetworkInfo {
            ip_addresses: vec![v1::network_info::IpAddress {
                protocol: None,
                ip_address: Some(ip.to_string()),
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// GET_CONTAINERS: one container per executor run (the run id is the container id).
fn containers(agent: &Agent) -> response::GetContainers {
    let state = agent.lock();
    let mut containers = Vec::new();
    for (id, f) in &state.frameworks {
        for e in f.executors.values() {
            containers.push(response::get_containers::Container {
                framework_id: Some(FrameworkId { value: id.clone() }),
                executor_id: Some(e.info.executor_id.clone()),
                executor_name: e.info.name.clone(),
                container_id: ContainerId {
                    value: e.run_id.clone(),
                    parent: None,
                },
                container_status: Some(container_status(
                    &e.run_id,
                    e.pgid.or_else(|| e.tasks.values().find_map(|t| t.pgid)),
                    agent.endpoint.ip(),
                )),
                ..Default::default()
            });
        }
    }
    containers.sort_by(|a, b| a.container_id.value.cmp(&b.container_id.value));
    response::GetContainers { containers }
}

pub(super) async fn operator(
    AxumState(agent): AxumState<Weak<Agent>>,
    request: Request,
) -> Response {
    let Some(agent) = agent.upgrade() else {
        return text(StatusCode::SERVICE_UNAVAILABLE, "Agent is shutting down");
    };
    let (parts, body) = request.into_parts();
    if parts.method != Method::POST {
        return method_not_allowed(&["POST"], &parts.method);
    }
    let call: Call = match decode_call(&parts.headers, body, &agent.config.http, "Call").await {
        Ok(call) => call,
        Err(response) => return *response,
    };
    let Some(kind) = call.r#type.and_then(|t| call::Type::try_from(t).ok()) else {
        return text(
            StatusCode::BAD_REQUEST,
            "Failed to validate agent::Call: Expecting 'type' to be present",
        );
    };
    let format = match event_format(&parts.headers) {
        Ok(format) => format,
        Err(response) => return *response,
    };
    let mut out = AgentResponse {
        r#type: None,
        ..Default::default()
    };
    use response::Type as R;
    match kind {
        call::Type::GetHealth => {
            out.r#type = Some(R::GetHealth as i32);
            out.get_health = Some(response::GetHealth { healthy: true });
        }
        call::Type::GetFlags => {
            out.r#type = Some(R::GetFlags as i32);
            out.get_flags = Some(response::GetFlags {
                flags: flags(&agent)
                    .into_iter()
                    .map(|(name, value)| v1::Flag {
                        name: name.to_string(),
                        value: Some(value),
                    })
                    .collect(),
            });
        }
        call::Type::GetVersion => {
            out.r#type = Some(R::GetVersion as i32);
            out.get_version = Some(response::GetVersion {
                version_info: v1::VersionInfo {
                    version: MESOS_VERSION.to_string(),
                    build_date: Some(BUILD_DATE.to_string()),
                    build_time: Some(BUILD_TIME),
                    build_user: Some(BUILD_USER.to_string()),
                    git_sha: Some(GIT_SHA.to_string()),
                    git_tag: Some(MESOS_VERSION.to_string()),
                    ..Default::default()
                },
            });
        }
        call::Type::GetMetrics => {
            out.r#type = Some(R::GetMetrics as i32);
            out.get_metrics = Some(response::GetMetrics {
                metrics: metrics(&agent)
                    .into_iter()
                    .map(|(name, value)| v1::Metric {
                        name,
                        value: Some(value),
                    })
                    .collect(),
            });
        }
        call::Type::GetState => {
            let (tasks, executors, frameworks) = operator_views(&agent);
            out.r#type = Some(R::GetState as i32);
            out.get_state = Some(response::GetState {
                get_tasks: Some(tasks),
                get_executors: Some(executors),
                get_frameworks: Some(frameworks),
            });
        }
        call::Type::GetAgent => {
            out.r#type = Some(R::GetAgent as i32);
            out.get_agent = Some(response::GetAgent {
                agent_info: Some(agent.info.clone()),
                ..Default::default()
            });
        }
        call::Type::GetContainers => {
            out.r#type = Some(R::GetContainers as i32);
            out.get_containers = Some(containers(&agent));
        }
        call::Type::GetFrameworks => {
            out.r#type = Some(R::GetFrameworks as i32);
            out.get_frameworks = Some(operator_views(&agent).2);
        }
        call::Type::GetExecutors => {
            out.r#type = Some(R::GetExecutors as i32);
            out.get_executors = Some(operator_views(&agent).1);
        }
        call::Type::GetTasks => {
            out.r#type = Some(R::GetTasks as i32);
            out.get_tasks = Some(operator_views(&agent).0);
        }
        call::Type::GetResourceProviders => {
            out.r#type = Some(R::GetResourceProviders as i32);
            out.get_resource_providers = Some(response::GetResourceProviders::default());
        }
        _ => return not_implemented(),
    }
    match format.encode(&out) {
        Ok(bytes) => {
            let mut response = Response::new(Body::from(bytes));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(format.content_type()),
            );
            response
        }
        Err(error) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("Failed to encode response: {error}"),
        ),
    }
}
