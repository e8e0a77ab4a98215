//! The agent's HTTP server: the V1 executor API on `POST /api/v1/executor` (also reachable as
//! `/slave(1)/api/v1/executor`, the path Mesos' own executor library builds from
//! `MESOS_SLAVE_PID`).
//!
//! Status codes and texts follow Mesos 1.12 (`src/slave/http.cpp`, `validateExecutorCall`):
//! 405 for other methods, 400 without a Content-Type, 415 for any Content-Type other than the
//! two exact media types, 400 for undecodable or invalid calls, 406 when a SUBSCRIBE's `Accept`
//! allows neither format (no `Accept` means JSON), 400 `Framework cannot be found` / `Executor
//! cannot be found`, 403 `Executor is not subscribed` for calls before SUBSCRIBE, 501 for
//! UNKNOWN, 202 with an empty body for UPDATE, MESSAGE and HEARTBEAT, and 200 with a chunked
//! RecordIO event stream for SUBSCRIBE. `/health` answers 200 with an empty body; other paths
//! 404. The header, body and decode checks are the ones the master makes
//! ([`crate::server::v1`]), on the same server stack ([`crate::server`]).

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::any;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use http::{HeaderValue, Method, StatusCode, header};

use super::{Agent, ExecutorKind, QueuedLaunch, Subscriber, launch_event, send_event};
use crate::link::FromAgent;
use crate::server::v1::{
    decode_call, empty, event_format, method_not_allowed, not_found, not_implemented, text,
    valid_uuid,
};
use mesos_sdk::codec::Format;
use mesos_sdk::v1::executor::{Call, Event, call, event};
use mesos_sdk::v1::{ContainerId, TaskState, task_status};

/// The agent's routes; the agent is held weakly so that the server never keeps it alive.
pub(super) fn router(agent: Weak<Agent>) -> Router {
    super::http::routes(Router::new())
        .route("/api/v1/executor", any(executor))
        .route("/slave(1)/api/v1/executor", any(executor))
        .route("/health", any(health))
        .route("/slave(1)/health", any(health))
        .fallback(not_found)
        .with_state(agent)
}

async fn health() -> Response {
    empty(StatusCode::OK)
}

/// `validateExecutorCall`: the call's type and its required payload.
pub(crate) fn validate(call: &Call) -> Result<call::Type, String> {
    if call.executor_id.value.is_empty() {
        return Err("Not initialized: executor_id.value".to_string());
    }
    if call.framework_id.value.is_empty() {
        return Err("Not initialized: framework_id.value".to_string());
    }
    let kind = call
        .r#type
        .and_then(|t| call::Type::try_from(t).ok())
        .ok_or_else(|| "Expecting 'type' to be present".to_string())?;
    match kind {
        call::Type::Subscribe if call.subscribe.is_none() => {
            Err("Expecting 'subscribe' to be present".to_string())
        }
        call::Type::Update => {
            let update = call
                .update
                .as_ref()
                .ok_or_else(|| "Expecting 'update' to be present".to_string())?;
            let status = &update.status;
            let uuid = status
                .uuid
                .as_ref()
                .ok_or_else(|| "Expecting 'uuid' to be present".to_string())?;
            if !valid_uuid(uuid) {
                return Err("Not a valid UUID".to_string());
            }
            if let Some(executor_id) = &status.executor_id {
                if executor_id.value != call.executor_id.value {
                    return Err(format!(
                        "ExecutorID in Call: {} does not match ExecutorID in TaskStatus: {}",
                        call.executor_id.value, executor_id.value
                    ));
                }
            }
            if status.source() != task_status::Source::Executor {
                return Err(format!(
                    "Received Call from executor {} of framework {} with invalid source, expecting 'SOURCE_EXECUTOR'",
                    call.executor_id.value, call.framework_id.value
                ));
            }
            if status.state() == TaskState::TaskStaging {
                return Err(format!(
                    "Received TASK_STAGING from executor {} of framework {} which is not allowed",
                    call.executor_id.value, call.framework_id.value
                ));
            }
            Ok(kind)
        }
        call::Type::Message if call.message.is_none() => {
            Err("Expecting 'message' to be present".to_string())
        }
        _ => Ok(kind),
    }
}

async fn executor(State(agent): State<Weak<Agent>>, request: Request) -> Response {
    let Some(agent) = agent.upgrade().filter(|a| !a.lock().stopped) else {
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
    let kind = match validate(&call) {
        Ok(kind) => kind,
        Err(message) => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("Failed to validate Executor::Call: {message}"),
            );
        }
    };
    if kind == call::Type::Unknown {
        // Mesos looks the framework up before it looks at the call's type.
        if !agent
            .lock()
            .frameworks
            .contains_key(&call.framework_id.value)
        {
            return text(StatusCode::BAD_REQUEST, "Framework cannot be found");
        }
        return not_implemented();
    }
    let event_format = if kind == call::Type::Subscribe {
        match event_format(&parts.headers) {
            Ok(format) => Some(format),
            Err(response) => return *response,
        }
    } else {
        None
    };
    match agent.executor_call(call, kind, event_format) {
        Ok(Some(stream)) => {
            let mut response = Response::new(Body::from_stream(stream));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(event_format.unwrap_or_default().content_type()),
            );
            response
        }
        Ok(None) => empty(StatusCode::ACCEPTED),
        Err((status, message)) => text(status, message),
    }
}

/// A subscribed executor's event stream; when the connection goes away the agent forgets the
/// subscription.
pub(super) struct EventStream {
    events: futures::channel::mpsc::UnboundedReceiver<Bytes>,
    agent: Weak<Agent>,
    framework_id: String,
    executor_id: String,
    connection: u64,
}

impl Stream for EventStream {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.events.poll_next_unpin(cx).map(|record| record.map(Ok))
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        if let Some(agent) = self.agent.upgrade() {
            agent.executor_disconnected(&self.framework_id, &self.executor_id, self.connection);
        }
    }
}

type CallError = (StatusCode, String);

impl Agent {
    /// Handles a validated executor call; `Some(stream)` for SUBSCRIBE.
    fn executor_call(
        self: &Arc<Self>,
        call: Call,
        kind: call::Type,
        event_format: Option<Format>,
    ) -> Result<Option<EventStream>, CallError> {
        let framework_id = call.framework_id.value.clone();
        let executor_id = call.executor_id.value.clone();
        {
            let state = self.lock();
            let framework = state.frameworks.get(&framework_id).ok_or((
                StatusCode::BAD_REQUEST,
                "Framework cannot be found".to_string(),
            ))?;
            let executor = framework
                .executors
                .get(&executor_id)
                .filter(|e| e.kind == ExecutorKind::Custom)
                .ok_or((
                    StatusCode::BAD_REQUEST,
                    "Executor cannot be found".to_string(),
                ))?;
            if kind != call::Type::Subscribe && executor.subscriber.is_none() {
                return Err((
                    StatusCode::FORBIDDEN,
                    "Executor is not subscribed".to_string(),
                ));
            }
        }
        match kind {
            call::Type::Subscribe => {
                let subscribe = call.subscribe.unwrap_or_default();
                self.subscribe_executor(
                    &framework_id,
                    &executor_id,
                    subscribe,
                    event_format.unwrap_or_default(),
                )
                .map(Some)
            }
            call::Type::Update => {
                let status = call.update.map(|u| u.status).unwrap_or_default();
                self.executor_update(&framework_id, &executor_id, status);
                Ok(None)
            }
            call::Type::Message => {
                let data = call.message.map(|m| m.data).unwrap_or_default();
                self.send_master(FromAgent::ExecutorMessage {
                    framework_id: call.framework_id,
                    executor_id: call.executor_id,
                    data,
                });
                Ok(None)
            }
            call::Type::Heartbeat | call::Type::Unknown => Ok(None),
        }
    }

    /// Opens an executor's event stream: SUBSCRIBED, then the queued launches the executor does
    /// not already know; records the unacknowledged updates it resent.
    fn subscribe_executor(
        self: &Arc<Self>,
        framework_id: &str,
        executor_id: &str,
        subscribe: call::Subscribe,
        format: Format,
    ) -> Result<EventStream, CallError> {
        let (sender, receiver) = futures::channel::mpsc::unbounded();
        {
            let mut state = self.lock();
            state.next_connection += 1;
            let connection = state.next_connection;
            let framework = state.frameworks.get_mut(framework_id).ok_or((
                StatusCode::BAD_REQUEST,
                "Framework cannot be found".to_string(),
            ))?;
            let framework_info = framework.info.clone();
            let executor = framework.executors.get_mut(executor_id).ok_or((
                StatusCode::BAD_REQUEST,
                "Executor cannot be found".to_string(),
            ))?;
            if executor.terminating {
                return Err((StatusCode::FORBIDDEN, "Executor is terminating".to_string()));
            }
            let subscriber = Subscriber {
                connection,
                format,
                events: sender,
            };
            let subscribed = Event {
                r#type: Some(event::Type::Subscribed as i32),
                subscribed: Some(event::Subscribed {
                    executor_info: executor.info.clone(),
                    framework_info,
                    agent_info: self.info.clone(),
                    container_id: Some(ContainerId {
                        value: executor.run_id.clone(),
                        parent: None,
                    }),
                }),
                ..Default::default()
            };
            send_event(&subscriber, &subscribed);
            let known: std::collections::HashSet<&str> = subscribe
                .unacknowledged_tasks
                .iter()
                .map(|t| t.task_id.value.as_str())
                .collect();
            for launch in std::mem::take(&mut executor.queued) {
                let launch = match launch {
                    QueuedLaunch::Task(task) if known.contains(task.task_id.value.as_str()) => {
                        continue;
                    }
                    QueuedLaunch::Group(mut group) => {
                        group
                            .tasks
                            .retain(|t| !known.contains(t.task_id.value.as_str()));
                        if group.tasks.is_empty() {
                            continue;
                        }
                        QueuedLaunch::Group(group)
                    }
                    other => other,
                };
                send_event(&subscriber, &launch_event(&launch));
            }
            for pending in std::mem::take(&mut executor.pending_events) {
                send_event(&subscriber, &pending);
            }
            if executor.subscriber.is_some() {
                tracing::info!(
                    executor_id,
                    "executor subscribed again; closing its old stream"
                );
            }
            executor.subscriber = Some(subscriber);
            executor.subscribed_once = true;
            tracing::info!(executor_id, "executor subscribed");
            let stream = EventStream {
                events: receiver,
                agent: Arc::downgrade(self),
                framework_id: framework_id.to_string(),
                executor_id: executor_id.to_string(),
                connection,
            };
            drop(state);
            for update in subscribe.unacknowledged_updates {
                self.executor_update(framework_id, executor_id, update.status);
            }
            Ok(stream)
        }
    }

    /// Records an executor's update and acknowledges it to the executor.
    fn executor_update(
        self: &Arc<Self>,
        framework_id: &str,
        executor_id: &str,
        mut status: mesos_sdk::v1::TaskStatus,
    ) {
        status.agent_id = Some(self.id.clone());
        if status.executor_id.is_none() {
            status.executor_id = Some(mesos_sdk::v1::ExecutorId {
                value: executor_id.to_string(),
            });
        }
        let task_id = status.task_id.clone();
        let uuid = status.uuid.clone().unwrap_or_default();
        self.record_update(framework_id, status, None);
        let state = self.lock();
        if let Some(subscriber) = state
            .frameworks
            .get(framework_id)
            .and_then(|f| f.executors.get(executor_id))
            .and_then(|e| e.subscriber.as_ref())
        {
            let acknowledged = Event {
                r#type: Some(event::Type::Acknowledged as i32),
                acknowledged: Some(event::Acknowledged { task_id, uuid }),
                ..Default::default()
            };
            send_event(subscriber, &acknowledged);
        }
    }

    /// The stream of connection `connection` went away.
    fn executor_disconnected(&self, framework_id: &str, executor_id: &str, connection: u64) {
        let mut state = self.lock();
        if let Some(executor) = state
            .frameworks
            .get_mut(framework_id)
            .and_then(|f| f.executors.get_mut(executor_id))
        {
            if executor
                .subscriber
                .as_ref()
                .is_some_and(|s| s.connection == connection)
            {
                tracing::info!(executor_id, "executor disconnected");
                executor.subscriber = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesos_sdk::v1::{ExecutorId, FrameworkId, TaskStatus};

    fn update_call(status: TaskStatus) -> Call {
        Call {
            executor_id: ExecutorId { value: "e".into() },
            framework_id: FrameworkId { value: "f".into() },
            r#type: Some(call::Type::Update as i32),
            update: Some(call::Update { status }),
            ..Default::default()
        }
    }

    #[test]
    fn update_validation_follows_mesos() {
        let good = TaskStatus {
            state: TaskState::TaskRunning as i32,
            source: Some(task_status::Source::Executor as i32),
            uuid: Some(Bytes::copy_from_slice(uuid::Uuid::new_v4().as_bytes())),
            ..Default::default()
        };
        assert_eq!(validate(&update_call(good.clone())), Ok(call::Type::Update));
        let missing = TaskStatus {
            uuid: None,
            ..good.clone()
        };
        assert_eq!(
            validate(&update_call(missing)),
            Err("Expecting 'uuid' to be present".to_string())
        );
        let version_zero = TaskStatus {
            uuid: Some(Bytes::from_static(&[0u8; 16])),
            ..good.clone()
        };
        assert_eq!(
            validate(&update_call(version_zero)),
            Err("Not a valid UUID".to_string())
        );
        let no_type = Call {
            r#type: None,
            ..update_call(good.clone())
        };
        assert_eq!(
            validate(&no_type),
            Err("Expecting 'type' to be present".to_string())
        );
        let unknown_number = Call {
            r#type: Some(99),
            ..update_call(good)
        };
        assert_eq!(
            validate(&unknown_number),
            Err("Expecting 'type' to be present".to_string())
        );
    }
}
