//! The master's HTTP surface: routing, the header and body checks Mesos 1.12 makes before a call
//! reaches the master (in the same order, with the same status codes and texts), streaming
//! responses, and the read-only endpoints.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::any;
use bytes::Bytes;
use futures::Stream;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use tokio::sync::mpsc;

use super::endpoints;
use super::state::{CallOutcome, Shared};
use crate::server::v1::{
    decode_call, empty, event_format, method_not_allowed, not_found, not_implemented, text,
    valid_uuid,
};
use mesos_sdk::codec::{Format, JSON_CONTENT_TYPE};
use mesos_sdk::v1::scheduler::{Call, call};

const STREAM_ID: &str = "Mesos-Stream-Id";

pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/api/v1/scheduler", any(scheduler))
        .route("/master/api/v1/scheduler", any(scheduler))
        .route("/api/v1", any(operator))
        .route("/master/api/v1", any(operator))
        .route("/state", any(state_endpoint))
        .route("/master/state", any(state_endpoint))
        .route("/state.json", any(state_endpoint))
        .route("/master/state.json", any(state_endpoint))
        .route("/health", any(health))
        .route("/master/health", any(health))
        .route("/redirect", any(redirect))
        .route("/master/redirect", any(redirect))
        .route("/metrics/snapshot", any(super::metrics::metrics_snapshot))
        .route(
            "/master/metrics/snapshot",
            any(super::metrics::metrics_snapshot),
        )
        .route("/version", any(endpoints::version))
        .route("/master/version", any(endpoints::version))
        .route("/flags", any(endpoints::flags_endpoint))
        .route("/master/flags", any(endpoints::flags_endpoint))
        .route("/frameworks", any(endpoints::frameworks))
        .route("/master/frameworks", any(endpoints::frameworks))
        .route("/roles", any(endpoints::roles_endpoint))
        .route("/master/roles", any(endpoints::roles_endpoint))
        .route("/slaves", any(endpoints::slaves))
        .route("/master/slaves", any(endpoints::slaves))
        .route("/state-summary", any(endpoints::state_summary))
        .route("/master/state-summary", any(endpoints::state_summary))
        .route("/tasks", any(endpoints::tasks))
        .route("/master/tasks", any(endpoints::tasks))
        .fallback(not_found)
        .with_state(shared)
}

fn redirect_to(leader: &str, uri: &Uri) -> Response {
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut response = empty(StatusCode::TEMPORARY_REDIRECT);
    if let Ok(value) = HeaderValue::from_str(&format!("//{leader}{path}")) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// 307 to the leader, or 503 when no leader is elected, as Mesos' `redirect`.
fn not_leading(shared: &Shared, uri: &Uri) -> Option<Response> {
    let state = shared.lock();
    if state.no_leader {
        return Some(text(StatusCode::SERVICE_UNAVAILABLE, "No leader elected"));
    }
    state.leader.as_ref().map(|leader| redirect_to(leader, uri))
}

/// `validation::scheduler::call::validate`: the checks that need no master state.
fn validate_call(call: &Call) -> Option<&'static str> {
    let Some(kind) = call.r#type.and_then(|t| call::Type::try_from(t).ok()) else {
        return Some("Expecting 'type' to be present");
    };
    if kind == call::Type::Subscribe {
        let Some(subscribe) = &call.subscribe else {
            return Some("Expecting 'subscribe' to be present");
        };
        if subscribe.framework_info.id != call.framework_id {
            return Some("'framework_id' differs from 'subscribe.framework_info.id'");
        }
        return None;
    }
    if call.framework_id.is_none() {
        return Some("Expecting 'framework_id' to be present");
    }
    match kind {
        call::Type::Accept if call.accept.is_none() => Some("Expecting 'accept' to be present"),
        call::Type::Decline if call.decline.is_none() => Some("Expecting 'decline' to be present"),
        call::Type::AcceptInverseOffers if call.accept_inverse_offers.is_none() => {
            Some("Expecting 'accept_inverse_offers' to be present")
        }
        call::Type::DeclineInverseOffers if call.decline_inverse_offers.is_none() => {
            Some("Expecting 'decline_inverse_offers' to be present")
        }
        call::Type::Kill if call.kill.is_none() => Some("Expecting 'kill' to be present"),
        call::Type::Shutdown if call.shutdown.is_none() => {
            Some("Expecting 'shutdown' to be present")
        }
        call::Type::Acknowledge => match &call.acknowledge {
            None => Some("Expecting 'acknowledge' to be present"),
            Some(ack) if !valid_uuid(&ack.uuid) => Some("Not a valid UUID"),
            Some(_) => None,
        },
        call::Type::AcknowledgeOperationStatus => match &call.acknowledge_operation_status {
            None => Some("Expecting 'acknowledge_operation_status' to be present"),
            Some(ack) if !valid_uuid(&ack.uuid) => Some("Not a valid UUID"),
            Some(ack) if ack.agent_id.is_none() => Some("Expecting 'agent_id' to be present"),
            Some(_) => None,
        },
        call::Type::Reconcile if call.reconcile.is_none() => {
            Some("Expecting 'reconcile' to be present")
        }
        call::Type::ReconcileOperations if call.reconcile_operations.is_none() => {
            Some("Expecting 'reconcile_operations' to be present")
        }
        call::Type::Message if call.message.is_none() => Some("Expecting 'message' to be present"),
        call::Type::Request if call.request.is_none() => Some("Expecting 'request' to be present"),
        call::Type::UpdateFramework => match &call.update_framework {
            None => Some("Expecting 'update_framework' to be present"),
            Some(update) if update.framework_info.id != call.framework_id => {
                Some("'framework_id' differs from 'update_framework.framework_info.id'")
            }
            Some(_) => None,
        },
        _ => None,
    }
}

/// The realm of scheduler API authentication.
const SCHEDULER_REALM: &str = "mesos-master-scheduler";

/// HTTP Basic authentication against the configured credentials: `Ok(None)` when none are
/// configured, `Ok(Some(principal))` on success, `Err(401)` otherwise.
fn authenticate(shared: &Shared, headers: &HeaderMap) -> Result<Option<String>, Box<Response>> {
    use base64::Engine;
    let credentials = &shared.config.credentials;
    if credentials.is_empty() {
        return Ok(None);
    }
    let principal = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|pair| {
            let (principal, secret) = pair.split_once(':')?;
            credentials
                .iter()
                .any(|(p, s)| p == principal && s == secret)
                .then(|| principal.to_string())
        });
    match principal {
        Some(principal) => Ok(Some(principal)),
        None => {
            let mut response = empty(StatusCode::UNAUTHORIZED);
            if let Ok(value) = HeaderValue::from_str(&format!("Basic realm=\"{SCHEDULER_REALM}\""))
            {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, value);
            }
            Err(Box::new(response))
        }
    }
}

async fn scheduler(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let (method, uri, headers) = (parts.method, parts.uri, parts.headers);
    let principal = match authenticate(&shared, &headers) {
        Ok(principal) => principal,
        Err(response) => return *response,
    };
    if let Some(response) = not_leading(&shared, &uri) {
        return response;
    }
    if method != Method::POST {
        return method_not_allowed(&["POST"], &method);
    }
    let call: Call = match decode_call(&headers, body, &shared.config.http, "Call").await {
        Ok(call) => call,
        Err(response) => return *response,
    };
    if let Some(error) = validate_call(&call) {
        return text(
            StatusCode::BAD_REQUEST,
            format!("Failed to validate scheduler::Call: {error}"),
        );
    }
    let stream_id = headers.get(STREAM_ID).and_then(|v| v.to_str().ok());
    if call.r#type == Some(call::Type::Subscribe as i32) {
        let format = match event_format(&headers) {
            Ok(format) => format,
            Err(response) => return *response,
        };
        if headers.contains_key(STREAM_ID) {
            return text(
                StatusCode::BAD_REQUEST,
                "Subscribe calls should not include the 'Mesos-Stream-Id' header",
            );
        }
        let Some(mut subscribe) = call.subscribe else {
            return text(
                StatusCode::BAD_REQUEST,
                "Expecting 'subscribe' to be present",
            );
        };
        if let Some(principal) = principal {
            let info = &mut subscribe.framework_info;
            match info.principal.as_deref() {
                None => info.principal = Some(principal),
                Some(declared) if declared != principal => {
                    return text(
                        StatusCode::BAD_REQUEST,
                        format!(
                            "Authenticated principal '{principal}' does not match principal '{declared}' set in `FrameworkInfo`"
                        ),
                    );
                }
                Some(_) => {}
            }
        }
        let (stream_id, rx, framework_id) = shared.lock().subscribe(&shared, subscribe, format);
        let stream = EventStream {
            rx,
            on_close: framework_id.map(|id| (shared.clone(), id, stream_id.clone())),
        };
        return streaming(format, Some(&stream_id), stream);
    }
    let outcome = shared
        .lock()
        .call(&shared, call, stream_id, principal.as_deref());
    match outcome {
        CallOutcome::Accepted => empty(StatusCode::ACCEPTED),
        CallOutcome::Ok => empty(StatusCode::OK),
        CallOutcome::NotImplemented => not_implemented(),
        CallOutcome::Error(status, message) => text(status, message),
    }
}

fn streaming(format: Format, stream_id: Option<&str>, stream: EventStream) -> Response {
    let mut response = Response::new(Body::from_stream(stream));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if let Some(id) = stream_id.and_then(|id| HeaderValue::from_str(id).ok()) {
        headers.insert(STREAM_ID, id);
    }
    response
}

/// The body of an event stream; tells the master when the client goes away.
struct EventStream {
    rx: mpsc::UnboundedReceiver<Bytes>,
    on_close: Option<(Arc<Shared>, String, String)>,
}

impl Stream for EventStream {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx).map(|item| item.map(Ok))
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        if let Some((shared, framework_id, stream_id)) = self.on_close.take() {
            if shared.shutdown.is_cancelled() {
                return;
            }
            shared
                .lock()
                .stream_closed(&shared, &framework_id, &stream_id);
        }
    }
}

async fn operator(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let (method, uri, headers) = (parts.method, parts.uri, parts.headers);
    use mesos_sdk::v1::master::response as oresponse;
    use mesos_sdk::v1::master::{
        Call as OperatorCall, Response as OperatorResponse, call as ocall,
    };
    if let Some(response) = not_leading(&shared, &uri) {
        return response;
    }
    if method != Method::POST {
        return method_not_allowed(&["POST"], &method);
    }
    let call: OperatorCall = match decode_call(&headers, body, &shared.config.http, "Call").await {
        Ok(call) => call,
        Err(response) => return *response,
    };
    let Some(kind) = call.r#type.and_then(|t| ocall::Type::try_from(t).ok()) else {
        return text(
            StatusCode::BAD_REQUEST,
            "Failed to validate master::Call: Expecting 'type' to be present",
        );
    };
    let format = match event_format(&headers) {
        Ok(format) => format,
        Err(response) => return *response,
    };
    if kind == ocall::Type::Subscribe {
        let rx = shared.lock().operator_subscribe(&shared, format);
        return streaming(format, None, EventStream { rx, on_close: None });
    }
    if kind == ocall::Type::Teardown {
        let Some(teardown) = call.teardown else {
            return text(
                StatusCode::BAD_REQUEST,
                "Failed to validate master::Call: Expecting 'teardown' to be present",
            );
        };
        let mut state = shared.lock();
        if !state.frameworks.contains_key(&teardown.framework_id.value) {
            return text(
                StatusCode::BAD_REQUEST,
                "No framework found with specified ID",
            );
        }
        state.remove_framework(&teardown.framework_id.value);
        return empty(StatusCode::OK);
    }
    if let Some(answer) = super::operator_calls::answer(&shared, &call, format) {
        return answer;
    }
    let mut response = OperatorResponse::default();
    {
        let state = shared.lock();
        match kind {
            ocall::Type::GetHealth => {
                response.r#type = Some(oresponse::Type::GetHealth as i32);
                response.get_health = Some(oresponse::GetHealth { healthy: true });
            }
            ocall::Type::GetVersion => {
                response.r#type = Some(oresponse::Type::GetVersion as i32);
                response.get_version = Some(oresponse::GetVersion {
                    version_info: mesos_sdk::v1::VersionInfo {
                        version: super::MESOS_VERSION.to_string(),
                        ..Default::default()
                    },
                });
            }
            ocall::Type::GetState => {
                response.r#type = Some(oresponse::Type::GetState as i32);
                response.get_state = Some(state.get_state());
            }
            ocall::Type::GetFrameworks => {
                response.r#type = Some(oresponse::Type::GetFrameworks as i32);
                response.get_frameworks = Some(state.get_frameworks());
            }
            ocall::Type::GetAgents => {
                response.r#type = Some(oresponse::Type::GetAgents as i32);
                response.get_agents = Some(state.get_agents());
            }
            ocall::Type::GetExecutors => {
                response.r#type = Some(oresponse::Type::GetExecutors as i32);
                response.get_executors = Some(state.get_executors());
            }
            ocall::Type::GetTasks => {
                response.r#type = Some(oresponse::Type::GetTasks as i32);
                response.get_tasks = Some(state.get_tasks());
            }
            ocall::Type::GetMaster => {
                response.r#type = Some(oresponse::Type::GetMaster as i32);
                response.get_master = Some(oresponse::GetMaster {
                    master_info: Some(state.master_info.clone()),
                    start_time: Some(state.start_time),
                    elected_time: Some(state.start_time),
                });
            }
            ocall::Type::GetFlags => {
                response.r#type = Some(oresponse::Type::GetFlags as i32);
                response.get_flags =
                    Some(endpoints::get_flags(&shared.config, state.master_info.port));
            }
            ocall::Type::GetMetrics => {
                response.r#type = Some(oresponse::Type::GetMetrics as i32);
                response.get_metrics = Some(super::metrics::get_metrics(&state));
            }
            ocall::Type::GetRoles => {
                response.r#type = Some(oresponse::Type::GetRoles as i32);
                response.get_roles = Some(endpoints::get_roles(&state));
            }
            ocall::Type::GetLoggingLevel => {
                response.r#type = Some(oresponse::Type::GetLoggingLevel as i32);
                response.get_logging_level = Some(oresponse::GetLoggingLevel { level: 0 });
            }
            ocall::Type::GetQuota => {
                response.r#type = Some(oresponse::Type::GetQuota as i32);
                response.get_quota = Some(oresponse::GetQuota::default());
            }
            ocall::Type::GetMaintenanceSchedule => {
                response.r#type = Some(oresponse::Type::GetMaintenanceSchedule as i32);
                response.get_maintenance_schedule =
                    Some(oresponse::GetMaintenanceSchedule::default());
            }
            ocall::Type::GetMaintenanceStatus => {
                response.r#type = Some(oresponse::Type::GetMaintenanceStatus as i32);
                response.get_maintenance_status = Some(oresponse::GetMaintenanceStatus::default());
            }
            _ => return not_implemented(),
        }
        super::operator_views::complete(&state, &mut response);
    }
    let encoded = format.encode(&response).and_then(|bytes| {
        if format != Format::Json {
            return Ok(bytes);
        }
        // Mesos writes some empty lists of these views as `[]`; the codec leaves them out.
        let mut value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| mesos_sdk::codec::CodecError::Json(e.to_string()))?;
        super::operator_views::add_json_empty_lists(&mut value);
        Ok(Bytes::from(value.to_string()))
    });
    match encoded {
        Ok(bytes) => {
            let mut out = Response::new(Body::from(bytes));
            out.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(format.content_type()),
            );
            out
        }
        Err(error) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("Failed to encode response: {error}"),
        ),
    }
}

async fn state_endpoint(State(shared): State<Arc<Shared>>, method: Method) -> Response {
    if method != Method::GET && method != Method::POST {
        return method_not_allowed(&["GET", "POST"], &method);
    }
    let state = shared.lock();
    let flags = endpoints::flags_json(&shared.config, state.master_info.port);
    let json = super::state_json::state(&state, flags);
    drop(state);
    let mut response = Response::new(Body::from(json.to_string()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(JSON_CONTENT_TYPE),
    );
    response
}

async fn health() -> Response {
    empty(StatusCode::OK)
}

async fn redirect(State(shared): State<Arc<Shared>>) -> Response {
    let state = shared.lock();
    let target = state.leader.clone().unwrap_or_else(|| state.host_port());
    let mut response = empty(StatusCode::TEMPORARY_REDIRECT);
    if let Ok(value) = HeaderValue::from_str(&format!("//{target}")) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}
