//! Operation feedback: offer operations that carry an `id` (RESERVE, UNRESERVE, CREATE,
//! DESTROY) are answered with UPDATE_OPERATION_STATUS, OPERATION_FINISHED with the converted
//! resources or OPERATION_ERROR with the reason, carrying a uuid the framework acknowledges with
//! ACKNOWLEDGE_OPERATION_STATUS. Until then RECONCILE_OPERATIONS answers the operation's latest
//! state (without uuid); unknown operations are OPERATION_UNKNOWN. An update not acknowledged
//! within `operation_status_retry` is sent again (same uuid), as Mesos agents resend them. Not
//! imitated: feedback for LAUNCH operations.

use super::*;

impl State {
    /// Sends the outcome of operation `operation_id` and keeps it until acknowledged.
    pub(super) fn operation_feedback(
        &mut self,
        framework_id: &str,
        agent_id: &str,
        operation_id: v1::OperationId,
        outcome: Result<Vec<Resource>, String>,
    ) {
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            return;
        };
        let (state, message, converted) = match outcome {
            Ok(converted) => (v1::OperationState::OperationFinished, None, converted),
            Err(message) => (
                v1::OperationState::OperationError,
                Some(message),
                Vec::new(),
            ),
        };
        let status = v1::OperationStatus {
            operation_id: Some(operation_id.clone()),
            state: state as i32,
            message,
            converted_resources: converted,
            uuid: Some(v1::Uuid {
                value: Bytes::copy_from_slice(uuid::Uuid::new_v4().as_bytes()),
            }),
            agent_id: Some(AgentId {
                value: agent_id.to_string(),
            }),
            resource_provider_id: None,
        };
        framework
            .operations
            .insert(operation_id.value.clone(), (status.clone(), Instant::now()));
        framework.send(&operation_event(status));
    }

    /// ACKNOWLEDGE_OPERATION_STATUS: forgets the operation once its update is acknowledged.
    pub(super) fn acknowledge_operation(
        &mut self,
        framework_id: &str,
        ack: call::AcknowledgeOperationStatus,
    ) {
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            return;
        };
        let matches = framework
            .operations
            .get(&ack.operation_id.value)
            .and_then(|(s, _)| s.uuid.as_ref())
            .is_some_and(|u| u.value == ack.uuid);
        if matches {
            framework.operations.remove(&ack.operation_id.value);
        }
    }

    /// RECONCILE_OPERATIONS: the latest state of each operation named (every known one when
    /// none is named), OPERATION_UNKNOWN for the others.
    pub(super) fn reconcile_operations(
        &mut self,
        framework_id: &str,
        operations: Vec<call::reconcile_operations::Operation>,
    ) {
        let Some(framework) = self.frameworks.get(framework_id) else {
            return;
        };
        let latest = |status: &v1::OperationStatus| v1::OperationStatus {
            uuid: None,
            ..status.clone()
        };
        if operations.is_empty() {
            for (status, _) in framework.operations.values() {
                framework.send(&operation_event(latest(status)));
            }
            return;
        }
        for operation in operations {
            let status = match framework.operations.get(&operation.operation_id.value) {
                Some((status, _)) => latest(status),
                None => v1::OperationStatus {
                    operation_id: Some(operation.operation_id),
                    state: v1::OperationState::OperationUnknown as i32,
                    message: operation.agent_id.is_none().then(|| {
                        "Reconciliation: Operation is unknown and no 'agent_id' was provided"
                            .to_string()
                    }),
                    agent_id: operation.agent_id,
                    resource_provider_id: operation.resource_provider_id,
                    ..Default::default()
                },
            };
            framework.send(&operation_event(status));
        }
    }
}

impl State {
    /// Sends again the operation updates of connected frameworks left unacknowledged for
    /// `operation_status_retry`.
    pub(super) fn resend_operation_updates(&mut self) {
        let retry = self.config.operation_status_retry;
        let now = Instant::now();
        for framework in self.frameworks.values_mut() {
            if !framework.connected() {
                continue;
            }
            let mut due = Vec::new();
            for (status, sent) in framework.operations.values_mut() {
                if now.duration_since(*sent) >= retry {
                    *sent = now;
                    due.push(status.clone());
                }
            }
            for status in due {
                framework.send(&operation_event(status));
            }
        }
    }
}

fn operation_event(status: v1::OperationStatus) -> scheduler::Event {
    scheduler::Event {
        r#type: Some(scheduler::event::Type::UpdateOperationStatus as i32),
        update_operation_status: Some(event::UpdateOperationStatus { status }),
        ..Default::default()
    }
}
