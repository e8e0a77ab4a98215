//! Constructors for the scheduler `Call`s and the offer operations ACCEPT carries.
//!
//! Every function returns a complete `Call` except for the top-level `framework_id`, which the
//! [`Scheduler`](super::Scheduler) fills in when it sends the call.

use std::time::Duration;

use bytes::Bytes;

use super::ack::{AckToken, OperationAckToken};
use crate::v1::offer::Operation;
use crate::v1::offer::operation::{self, Type as OperationType};
use crate::v1::scheduler::Call;
use crate::v1::scheduler::call::{self, Type as CallType};
use crate::v1::{
    AgentId, ExecutorId, ExecutorInfo, Filters, FrameworkInfo, KillPolicy, OfferId, OperationId,
    OperationStatus, Resource, TaskGroupInfo, TaskId, TaskInfo, TaskStatus,
};

fn call_of(kind: CallType) -> Call {
    let mut call = Call::default();
    call.set_type(kind);
    call
}

fn filters(refuse: Option<Duration>) -> Option<Filters> {
    refuse.map(|refuse| Filters {
        refuse_seconds: Some(refuse.as_secs_f64()),
    })
}

/// ACCEPT: run `operations` on `offer_ids`; unused resources are declined for `refuse` (Mesos'
/// default is 5 s when `None`).
pub fn accept(
    offer_ids: Vec<OfferId>,
    operations: Vec<Operation>,
    refuse: Option<Duration>,
) -> Call {
    Call {
        accept: Some(call::Accept {
            offer_ids,
            operations,
            filters: filters(refuse),
        }),
        ..call_of(CallType::Accept)
    }
}

/// DECLINE: give `offer_ids` back, not to be re-offered for `refuse` (Mesos' default 5 s when
/// `None`).
pub fn decline(offer_ids: Vec<OfferId>, refuse: Option<Duration>) -> Call {
    Call {
        decline: Some(call::Decline {
            offer_ids,
            filters: filters(refuse),
        }),
        ..call_of(CallType::Decline)
    }
}

/// ACCEPT_INVERSE_OFFERS: agree to vacate for maintenance.
pub fn accept_inverse_offers(inverse_offer_ids: Vec<OfferId>, refuse: Option<Duration>) -> Call {
    Call {
        accept_inverse_offers: Some(call::AcceptInverseOffers {
            inverse_offer_ids,
            filters: filters(refuse),
        }),
        ..call_of(CallType::AcceptInverseOffers)
    }
}

/// DECLINE_INVERSE_OFFERS: refuse to vacate.
pub fn decline_inverse_offers(inverse_offer_ids: Vec<OfferId>, refuse: Option<Duration>) -> Call {
    Call {
        decline_inverse_offers: Some(call::DeclineInverseOffers {
            inverse_offer_ids,
            filters: filters(refuse),
        }),
        ..call_of(CallType::DeclineInverseOffers)
    }
}

/// REVIVE: un-suppress `roles` (all roles when empty) and clear their filters.
pub fn revive(roles: Vec<String>) -> Call {
    Call {
        revive: Some(call::Revive { roles }),
        ..call_of(CallType::Revive)
    }
}

/// SUPPRESS: stop offers for `roles` (all roles when empty).
pub fn suppress(roles: Vec<String>) -> Call {
    Call {
        suppress: Some(call::Suppress { roles }),
        ..call_of(CallType::Suppress)
    }
}

/// KILL: kill a task (give `agent_id` when known).
pub fn kill(task_id: TaskId, agent_id: Option<AgentId>, kill_policy: Option<KillPolicy>) -> Call {
    Call {
        kill: Some(call::Kill {
            task_id,
            agent_id,
            kill_policy,
        }),
        ..call_of(CallType::Kill)
    }
}

/// SHUTDOWN: ask a custom executor to kill its tasks and exit.
pub fn shutdown(executor_id: ExecutorId, agent_id: AgentId) -> Call {
    Call {
        shutdown: Some(call::Shutdown {
            executor_id,
            agent_id,
        }),
        ..call_of(CallType::Shutdown)
    }
}

/// Whether a task status update must be acknowledged: iff its `uuid` is set and non-empty.
pub fn needs_acknowledgement(status: &TaskStatus) -> bool {
    status.uuid.as_ref().is_some_and(|uuid| !uuid.is_empty())
}

/// ACKNOWLEDGE for a task status update, or `None` when it must not be acknowledged (no uuid,
/// e.g. master-generated and reconciliation updates) or has no agent id.
pub fn acknowledge(status: &TaskStatus) -> Option<Call> {
    AckToken::from_status(status).map(AckToken::into_call)
}

/// ACKNOWLEDGE_OPERATION_STATUS for an operation status update, or `None` when it carries no
/// (non-empty) uuid or no operation id.
pub fn acknowledge_operation_status(status: &OperationStatus) -> Option<Call> {
    OperationAckToken::from_status(status).map(OperationAckToken::into_call)
}

/// RECONCILE: explicit for the listed `(task, agent)` pairs, implicit (every task the master
/// knows) when `tasks` is empty.
pub fn reconcile(tasks: Vec<(TaskId, Option<AgentId>)>) -> Call {
    Call {
        reconcile: Some(call::Reconcile {
            tasks: tasks
                .into_iter()
                .map(|(task_id, agent_id)| call::reconcile::Task { task_id, agent_id })
                .collect(),
        }),
        ..call_of(CallType::Reconcile)
    }
}

/// RECONCILE_OPERATIONS: explicit for the listed operations, implicit when empty.
pub fn reconcile_operations(operations: Vec<call::reconcile_operations::Operation>) -> Call {
    Call {
        reconcile_operations: Some(call::ReconcileOperations { operations }),
        ..call_of(CallType::ReconcileOperations)
    }
}

/// MESSAGE: opaque bytes to an executor (no delivery guarantee).
pub fn message(agent_id: AgentId, executor_id: ExecutorId, data: Bytes) -> Call {
    Call {
        message: Some(call::Message {
            agent_id,
            executor_id,
            data,
        }),
        ..call_of(CallType::Message)
    }
}

/// REQUEST: resource requests (ignored by Mesos' built-in allocator).
pub fn request(requests: Vec<crate::v1::Request>) -> Call {
    Call {
        request: Some(call::Request { requests }),
        ..call_of(CallType::Request)
    }
}

/// UPDATE_FRAMEWORK: change roles, name, capabilities, ... (`framework_info.id` must be set).
pub fn update_framework(framework_info: FrameworkInfo, suppressed_roles: Vec<String>) -> Call {
    Call {
        update_framework: Some(call::UpdateFramework {
            framework_info,
            suppressed_roles,
            ..call::UpdateFramework::default()
        }),
        ..call_of(CallType::UpdateFramework)
    }
}

/// TEARDOWN: kill every task and remove the framework for good.
pub fn teardown() -> Call {
    call_of(CallType::Teardown)
}

/// SUBSCRIBE for `framework_info`; when it has an id, the top-level `framework_id` is set to it
/// too (resubscription).
pub fn subscribe(
    framework_info: FrameworkInfo,
    suppressed_roles: Vec<String>,
    offer_constraints: Option<crate::v1::scheduler::OfferConstraints>,
) -> Call {
    Call {
        framework_id: framework_info.id.clone(),
        subscribe: Some(call::Subscribe {
            framework_info,
            suppressed_roles,
            offer_constraints,
        }),
        ..call_of(CallType::Subscribe)
    }
}

fn operation_of(kind: OperationType) -> Operation {
    let mut op = Operation::default();
    op.set_type(kind);
    op
}

/// Offer operations for [`accept`].
pub mod operations {
    use super::*;

    /// LAUNCH tasks.
    pub fn launch(task_infos: Vec<TaskInfo>) -> Operation {
        Operation {
            launch: Some(operation::Launch { task_infos }),
            ..operation_of(OperationType::Launch)
        }
    }

    /// LAUNCH_GROUP: a task group on one executor.
    pub fn launch_group(executor: ExecutorInfo, task_group: TaskGroupInfo) -> Operation {
        Operation {
            launch_group: Some(Box::new(operation::LaunchGroup {
                executor,
                task_group,
            })),
            ..operation_of(OperationType::LaunchGroup)
        }
    }

    /// RESERVE resources (dynamic reservation).
    pub fn reserve(resources: Vec<Resource>) -> Operation {
        Operation {
            reserve: Some(operation::Reserve {
                resources,
                ..operation::Reserve::default()
            }),
            ..operation_of(OperationType::Reserve)
        }
    }

    /// UNRESERVE resources.
    pub fn unreserve(resources: Vec<Resource>) -> Operation {
        Operation {
            unreserve: Some(operation::Unreserve { resources }),
            ..operation_of(OperationType::Unreserve)
        }
    }

    /// CREATE persistent volumes.
    pub fn create(volumes: Vec<Resource>) -> Operation {
        Operation {
            create: Some(operation::Create { volumes }),
            ..operation_of(OperationType::Create)
        }
    }

    /// DESTROY persistent volumes.
    pub fn destroy(volumes: Vec<Resource>) -> Operation {
        Operation {
            destroy: Some(operation::Destroy { volumes }),
            ..operation_of(OperationType::Destroy)
        }
    }

    /// Gives an operation an id, so that its status updates are sent (and must be acknowledged).
    pub fn with_id(mut operation: Operation, id: impl Into<String>) -> Operation {
        operation.id = Some(OperationId { value: id.into() });
        operation
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(uuid: Option<&'static [u8]>) -> TaskStatus {
        TaskStatus {
            task_id: TaskId { value: "t".into() },
            agent_id: Some(AgentId { value: "a".into() }),
            uuid: uuid.map(Bytes::from_static),
            ..TaskStatus::default()
        }
    }

    #[test]
    fn acknowledge_only_with_a_uuid() {
        assert!(acknowledge(&status(None)).is_none());
        assert!(acknowledge(&status(Some(b""))).is_none());
        let call = acknowledge(&status(Some(b"0123456789abcdef"))).unwrap();
        assert_eq!(call.r#type(), CallType::Acknowledge);
        let ack = call.acknowledge.unwrap();
        assert_eq!(ack.task_id.value, "t");
        assert_eq!(ack.agent_id.value, "a");
        assert_eq!(&ack.uuid[..], b"0123456789abcdef");
    }

    #[test]
    fn subscribe_copies_the_id_to_the_top_level() {
        let info = FrameworkInfo {
            id: Some(crate::v1::FrameworkId { value: "f".into() }),
            ..FrameworkInfo::default()
        };
        let call = subscribe(info, vec![], None);
        assert_eq!(call.framework_id.unwrap().value, "f");
        let fresh = subscribe(FrameworkInfo::default(), vec![], None);
        assert!(fresh.framework_id.is_none());
    }

    #[test]
    fn decline_sets_refuse_seconds() {
        let call = decline(
            vec![OfferId { value: "o".into() }],
            Some(Duration::from_secs(30)),
        );
        assert_eq!(call.r#type(), CallType::Decline);
        assert_eq!(
            call.decline.unwrap().filters.unwrap().refuse_seconds(),
            30.0
        );
    }

    #[test]
    fn operations_carry_their_type() {
        let op = operations::launch(vec![TaskInfo::default()]);
        assert_eq!(op.r#type(), OperationType::Launch);
        assert_eq!(operations::reserve(vec![]).r#type(), OperationType::Reserve);
        assert_eq!(
            operations::unreserve(vec![]).r#type(),
            OperationType::Unreserve
        );
        assert_eq!(operations::create(vec![]).r#type(), OperationType::Create);
        assert_eq!(operations::destroy(vec![]).r#type(), OperationType::Destroy);
        let group = operations::launch_group(ExecutorInfo::default(), TaskGroupInfo::default());
        assert_eq!(group.r#type(), OperationType::LaunchGroup);
        let with_id = operations::with_id(op, "op-1");
        assert_eq!(with_id.id.unwrap().value, "op-1");
    }
}
