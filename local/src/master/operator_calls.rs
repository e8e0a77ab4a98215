//! Operator API calls that change the cluster beyond the read-only views of `http`: agent
//! removal and draining (MARK_AGENT_GONE, DRAIN_AGENT, DEACTIVATE_AGENT, REACTIVATE_AGENT),
//! maintenance (UPDATE_MAINTENANCE_SCHEDULE, START_MAINTENANCE,
//! STOP_MAINTENANCE, GET_MAINTENANCE_SCHEDULE, GET_MAINTENANCE_STATUS) and the allocator's
//! quota and weights (UPDATE_QUOTA, GET_QUOTA, UPDATE_WEIGHTS, GET_WEIGHTS). The operator endpoint
//! hands a decoded call here first; `None` means the call is not one of these.

use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};
use mesos_sdk::codec::Format;
use mesos_sdk::v1::master::{Call, Response as OperatorResponse, call, response};
use prost::Message;

use super::state::Shared;
use crate::server::v1::{empty, text};

/// Answers the operator calls this file implements; `None` for every other call.
pub(super) fn answer(shared: &Shared, call: &Call, format: Format) -> Option<Response> {
    let kind = call.r#type.and_then(|t| call::Type::try_from(t).ok())?;
    match kind {
        call::Type::MarkAgentGone => {
            let Some(gone) = &call.mark_agent_gone else {
                return Some(invalid("Expecting 'mark_agent_gone' to be present"));
            };
            Some(match shared.lock().mark_agent_gone(&gone.agent_id.value) {
                Ok(()) => empty(StatusCode::OK),
                Err(message) => text(StatusCode::NOT_FOUND, message),
            })
        }
        call::Type::DrainAgent => {
            let Some(drain) = &call.drain_agent else {
                return Some(invalid("Expecting 'drain_agent' to be present"));
            };
            let grace = match drain.max_grace_period {
                None => None,
                Some(d) if d.seconds < 0 || d.nanos < 0 => {
                    return Some(text(
                        StatusCode::BAD_REQUEST,
                        "Negative 'max_grace_period' is not allowed",
                    ));
                }
                Some(d) => Some(
                    std::time::Duration::from_secs(d.seconds.unsigned_abs())
                        + std::time::Duration::from_nanos(u64::from(d.nanos.unsigned_abs())),
                ),
            };
            let outcome = shared.lock().drain_agent(
                &drain.agent_id.value,
                grace,
                drain.mark_gone.unwrap_or(false),
            );
            Some(done(outcome))
        }
        call::Type::DeactivateAgent => {
            let Some(deactivate) = &call.deactivate_agent else {
                return Some(invalid("Expecting 'deactivate_agent' to be present"));
            };
            Some(done(
                shared.lock().deactivate_agent(&deactivate.agent_id.value),
            ))
        }
        call::Type::ReactivateAgent => {
            let Some(reactivate) = &call.reactivate_agent else {
                return Some(invalid("Expecting 'reactivate_agent' to be present"));
            };
            Some(done(
                shared.lock().reactivate_agent(&reactivate.agent_id.value),
            ))
        }
        call::Type::UpdateMaintenanceSchedule => {
            let Some(update) = &call.update_maintenance_schedule else {
                return Some(invalid(
                    "Expecting 'update_maintenance_schedule' to be present",
                ));
            };
            let outcome = shared
                .lock()
                .update_maintenance_schedule(update.schedule.clone());
            Some(done(outcome))
        }
        call::Type::StartMaintenance => {
            let Some(start) = &call.start_maintenance else {
                return Some(invalid("Expecting 'start_maintenance' to be present"));
            };
            Some(done(shared.lock().start_maintenance(&start.machines)))
        }
        call::Type::StopMaintenance => {
            let Some(stop) = &call.stop_maintenance else {
                return Some(invalid("Expecting 'stop_maintenance' to be present"));
            };
            Some(done(shared.lock().stop_maintenance(&stop.machines)))
        }
        call::Type::GetMaintenanceSchedule => {
            let schedule = shared.lock().maintenance_schedule();
            Some(encoded(
                format,
                &OperatorResponse {
                    r#type: Some(response::Type::GetMaintenanceSchedule as i32),
                    get_maintenance_schedule: Some(response::GetMaintenanceSchedule { schedule }),
                    ..Default::default()
                },
            ))
        }
        call::Type::GetMaintenanceStatus => {
            let status = shared.lock().maintenance_status();
            Some(encoded(
                format,
                &OperatorResponse {
                    r#type: Some(response::Type::GetMaintenanceStatus as i32),
                    get_maintenance_status: Some(response::GetMaintenanceStatus { status }),
                    ..Default::default()
                },
            ))
        }
        call::Type::UpdateQuota => {
            let Some(update) = &call.update_quota else {
                return Some(invalid("Expecting 'update_quota' to be present"));
            };
            Some(done(
                shared.lock().update_quota(update.quota_configs.clone()),
            ))
        }
        call::Type::GetQuota => {
            let configs = shared.lock().quota_configs();
            Some(encoded(
                format,
                &OperatorResponse {
                    r#type: Some(response::Type::GetQuota as i32),
                    get_quota: Some(response::GetQuota {
                        status: mesos_sdk::v1::quota::QuotaStatus {
                            configs,
                            ..Default::default()
                        },
                    }),
                    ..Default::default()
                },
            ))
        }
        call::Type::UpdateWeights => {
            let Some(update) = &call.update_weights else {
                return Some(invalid("Expecting 'update_weights' to be present"));
            };
            Some(done(shared.lock().update_weights(&update.weight_infos)))
        }
        call::Type::GetWeights => {
            let weight_infos = shared.lock().weight_infos();
            Some(encoded(
                format,
                &OperatorResponse {
                    r#type: Some(response::Type::GetWeights as i32),
                    get_weights: Some(response::GetWeights { weight_infos }),
                    ..Default::default()
                },
            ))
        }
        _ => None,
    }
}

/// 200 with an empty body, or 400 with the error's text.
fn done(outcome: Result<(), String>) -> Response {
    match outcome {
        Ok(()) => empty(StatusCode::OK),
        Err(message) => text(StatusCode::BAD_REQUEST, message),
    }
}

/// 400 with Mesos' prefix for operator call validation errors.
pub(super) fn invalid(message: &str) -> Response {
    text(
        StatusCode::BAD_REQUEST,
        format!("Failed to validate master::Call: {message}"),
    )
}

/// 200 with `message` encoded in `format`.
pub(super) fn encoded<M: Message + prost::Name>(format: Format, message: &M) -> Response {
    match format.encode(message) {
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
