//! Sending calls: stream id and framework id handling, 403 reporting, and the typed call methods
//! of [`Scheduler`].

use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;

use super::ack::{AckToken, OperationAckToken};
use super::handle::{Caller, Command};
use super::{Scheduler, SchedulerError, calls};
use crate::client::{CallRequest, CallResponse, ErrorKind};
use crate::v1::offer::Operation;
use crate::v1::scheduler::Call;
use crate::v1::scheduler::call::Type as CallType;
use crate::v1::scheduler::call::reconcile_operations;
use crate::v1::{AgentId, ExecutorId, FrameworkInfo, KillPolicy, OfferId, TaskId, TaskInfo};

/// Sends `call` on the current subscription.
pub(super) async fn send(caller: &Caller, mut call: Call) -> Result<CallResponse, SchedulerError> {
    match call.r#type() {
        CallType::Subscribe => {
            return Err(SchedulerError::InvalidCall(
                "SUBSCRIBE is sent by the scheduler driver".into(),
            ));
        }
        CallType::Unknown => {
            return Err(SchedulerError::InvalidCall(
                "a call of type UNKNOWN is never sent".into(),
            ));
        }
        _ => {}
    }
    let (framework_id, stream_id) = {
        let state = caller.state.borrow();
        if let Some(termination) = &state.termination {
            return Err(SchedulerError::Terminated(termination.clone()));
        }
        (state.framework_id.clone(), state.stream_id.clone())
    };
    let stream_id = stream_id.ok_or(SchedulerError::NotSubscribed)?;
    if call.framework_id.is_none() {
        call.framework_id = framework_id;
    }
    forget_used_offers(caller, &call).await;
    let body = caller.client.format().encode(&call)?;
    let kind = call.r#type();
    let result = caller
        .client
        .call(CallRequest {
            path: caller.path.to_string(),
            body,
            stream_id: Some(stream_id.clone()),
        })
        .await;
    match result {
        Ok(response) => {
            tracing::trace!(call = kind.as_str_name(), status = %response.status, "call accepted");
            Ok(response)
        }
        Err(err) => {
            if kind == CallType::UpdateFramework && err.status() == Some(StatusCode::CONFLICT) {
                // scheduler.proto: 409 means the framework was removed while the call was in flight.
                tracing::warn!(error = %err, "UPDATE_FRAMEWORK: the framework has been removed");
                caller.commands.send(Command::Lost {
                    stream_id,
                    reason: format!("UPDATE_FRAMEWORK answered 409: {}", err.message()),
                    removed: true,
                });
            } else if err.kind() == ErrorKind::SubscriptionLost {
                tracing::info!(call = kind.as_str_name(), error = %err, "the master lost the subscription");
                caller.commands.send(Command::Lost {
                    stream_id,
                    reason: format!("{} answered: {err}", kind.as_str_name()),
                    removed: false,
                });
            } else {
                tracing::debug!(call = kind.as_str_name(), error = %err, "call failed");
            }
            Err(err.into())
        }
    }
}

/// Has the driver drop the offers an ACCEPT or DECLINE uses from the offer cache (an offer id is
/// usable once, whether the call succeeds or not) before the call goes out.
async fn forget_used_offers(caller: &Caller, call: &Call) {
    let used = match call.r#type() {
        CallType::Accept => call.accept.as_ref().map(|a| &a.offer_ids),
        CallType::Decline => call.decline.as_ref().map(|d| &d.offer_ids),
        _ => None,
    };
    if let Some(used) = used.filter(|used| !used.is_empty()) {
        let offer_ids = used.clone();
        caller
            .commands
            .request(|done| Command::ForgetOffers { offer_ids, done })
            .await;
    }
}

impl Scheduler {
    /// Sends any call but SUBSCRIBE. The top-level `framework_id` is filled in when unset.
    pub async fn call(&self, call: Call) -> Result<CallResponse, SchedulerError> {
        send(&self.caller, call).await
    }

    /// ACCEPT `offer_ids` with `operations` (see [`calls::operations`]); unused resources are
    /// declined for `refuse` (Mesos' default 5 s when `None`).
    pub async fn accept(
        &self,
        offer_ids: Vec<OfferId>,
        operations: Vec<Operation>,
        refuse: Option<Duration>,
    ) -> Result<CallResponse, SchedulerError> {
        self.call(calls::accept(offer_ids, operations, refuse))
            .await
    }

    /// ACCEPT `offer_ids` with one LAUNCH of `tasks` (for example built with
    /// [`CommandTask::launch_on`](crate::resourcemgr::CommandTask::launch_on)); what the tasks do
    /// not use is declined with Mesos' default filter (5 s).
    pub async fn launch(
        &self,
        offer_ids: Vec<OfferId>,
        tasks: Vec<TaskInfo>,
    ) -> Result<CallResponse, SchedulerError> {
        self.accept(offer_ids, vec![calls::operations::launch(tasks)], None)
            .await
    }

    /// DECLINE `offer_ids`, not to be re-offered for `refuse` (Mesos' default 5 s when `None`).
    pub async fn decline(
        &self,
        offer_ids: Vec<OfferId>,
        refuse: Option<Duration>,
    ) -> Result<CallResponse, SchedulerError> {
        self.call(calls::decline(offer_ids, refuse)).await
    }

    /// ACCEPT_INVERSE_OFFERS.
    pub async fn accept_inverse_offers(
        &self,
        inverse_offer_ids: Vec<OfferId>,
        refuse: Option<Duration>,
    ) -> Result<CallResponse, SchedulerError> {
        self.call(calls::accept_inverse_offers(inverse_offer_ids, refuse))
            .await
    }

    /// DECLINE_INVERSE_OFFERS.
    pub async fn decline_inverse_offers(
        &self,
        inverse_offer_ids: Vec<OfferId>,
        refuse: Option<Duration>,
    ) -> Result<CallResponse, SchedulerError> {
        self.call(calls::decline_inverse_offers(inverse_offer_ids, refuse))
            .await
    }

    /// KILL a task.
    pub async fn kill(
        &self,
        task_id: TaskId,
        agent_id: Option<AgentId>,
        kill_policy: Option<KillPolicy>,
    ) -> Result<CallResponse, SchedulerError> {
        self.call(calls::kill(task_id, agent_id, kill_policy)).await
    }

    /// ACKNOWLEDGE the task status update `token` stands for (see
    /// [`AckMode::Explicit`](super::AckMode::Explicit)): call it after the new state is recorded
    /// durably. When it fails (e.g. [`SchedulerError::NotSubscribed`] while reconnecting),
    /// nothing is lost: the agent resends the update, with a new token.
    pub async fn acknowledge(&self, token: AckToken) -> Result<CallResponse, SchedulerError> {
        self.call(token.into_call()).await
    }

    /// ACKNOWLEDGE_OPERATION_STATUS for the operation status update `token` stands for.
    pub async fn acknowledge_operation(
        &self,
        token: OperationAckToken,
    ) -> Result<CallResponse, SchedulerError> {
        self.call(token.into_call()).await
    }

    /// Explicit RECONCILE of `(task, agent)` pairs.
    pub async fn reconcile(
        &self,
        tasks: Vec<(TaskId, Option<AgentId>)>,
    ) -> Result<CallResponse, SchedulerError> {
        if tasks.is_empty() {
            return Err(SchedulerError::InvalidCall(
                "explicit reconciliation needs tasks; use reconcile_all".into(),
            ));
        }
        self.call(calls::reconcile(tasks)).await
    }

    /// Implicit RECONCILE: the master answers with every task it knows.
    pub async fn reconcile_all(&self) -> Result<CallResponse, SchedulerError> {
        self.call(calls::reconcile(Vec::new())).await
    }

    /// RECONCILE_OPERATIONS (implicit when `operations` is empty).
    pub async fn reconcile_operations(
        &self,
        operations: Vec<reconcile_operations::Operation>,
    ) -> Result<CallResponse, SchedulerError> {
        self.call(calls::reconcile_operations(operations)).await
    }

    /// REVIVE `roles` (all when empty).
    pub async fn revive(&self, roles: Vec<String>) -> Result<CallResponse, SchedulerError> {
        self.call(calls::revive(roles)).await
    }

    /// SUPPRESS `roles` (all when empty).
    pub async fn suppress(&self, roles: Vec<String>) -> Result<CallResponse, SchedulerError> {
        self.call(calls::suppress(roles)).await
    }

    /// UPDATE_FRAMEWORK. `framework_info.id` is filled in with the current id when unset.
    pub async fn update_framework(
        &self,
        mut framework_info: FrameworkInfo,
        suppressed_roles: Vec<String>,
    ) -> Result<CallResponse, SchedulerError> {
        if framework_info.id.is_none() {
            framework_info.id = self.framework_id();
        }
        self.call(calls::update_framework(framework_info, suppressed_roles))
            .await
    }

    /// MESSAGE to an executor.
    pub async fn message(
        &self,
        agent_id: AgentId,
        executor_id: ExecutorId,
        data: Bytes,
    ) -> Result<CallResponse, SchedulerError> {
        self.call(calls::message(agent_id, executor_id, data)).await
    }

    /// SHUTDOWN a custom executor.
    pub async fn shutdown_executor(
        &self,
        executor_id: ExecutorId,
        agent_id: AgentId,
    ) -> Result<CallResponse, SchedulerError> {
        self.call(calls::shutdown(executor_id, agent_id)).await
    }

    /// REQUEST resources (ignored by Mesos' built-in allocator).
    pub async fn request(
        &self,
        requests: Vec<crate::v1::Request>,
    ) -> Result<CallResponse, SchedulerError> {
        self.call(calls::request(requests)).await
    }

    /// TEARDOWN: kills every task and removes the framework for good, then stops the driver.
    /// Never call it on an ordinary shutdown (use [`Scheduler::stop`]).
    pub async fn teardown(&self) -> Result<CallResponse, SchedulerError> {
        let commands = &self.caller.commands;
        commands
            .request(|done| Command::TearingDown { active: true, done })
            .await;
        match self.call(calls::teardown()).await {
            Ok(response) => {
                self.stop();
                Ok(response)
            }
            Err(err) => {
                commands
                    .request(|done| Command::TearingDown {
                        active: false,
                        done,
                    })
                    .await;
                Err(err)
            }
        }
    }
}
