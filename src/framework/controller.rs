//! The event controller: the [`Controller`] trait the user implements and the [`Context`] its
//! default methods use. Every method has a default that does the right thing, so
//! `impl Controller for MyFramework {}` is a complete framework; overriding one method never
//! disables another.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use super::runtime::Context;
use crate::scheduler::{AckToken, SchedulerEvent};
use crate::taskmgr::{Decision, TaskRecord};
use crate::v1::{AgentId, ExecutorId, FrameworkId, InverseOffer, Offer, TaskStatus};

/// Errors the controller's methods report; the framework logs them and goes on.
pub type ControllerError = Box<dyn std::error::Error + Send + Sync>;

/// The user's side of a framework. The event-level methods (`connected`, `offers`, `update`)
/// default to the [`Context`]'s standard handling; the per-task callbacks (`running`,
/// `finished`, `failed`, `lost`, `killed`, `unhealthy`, `message`) default to what a
/// production framework wants (relaunch per the spec's restart policy).
#[async_trait]
pub trait Controller: Send + Sync + 'static {
    /// SUBSCRIBED: persists the framework id, starts an explicit reconciliation round and
    /// repeats offer suppression/revival for the new subscription.
    async fn connected(
        &self,
        ctx: &Context,
        framework_id: &FrameworkId,
    ) -> Result<(), ControllerError> {
        ctx.connected(framework_id).await
    }

    /// OFFERS: places pending instances and launches them (intent stored first); declines the
    /// rest with the long refuse filter.
    async fn offers(&self, ctx: &Context, offers: Vec<Offer>) -> Result<(), ControllerError> {
        ctx.launch_on(offers).await
    }

    /// UPDATE: stores the status, calls the task callbacks, then acknowledges.
    async fn update(
        &self,
        ctx: &Context,
        status: TaskStatus,
        ack: Option<AckToken>,
    ) -> Result<(), ControllerError> {
        ctx.record_update(self, status, ack).await
    }

    /// One inverse offer (an operator's maintenance window for an agent): by default accepted
    /// when no task of ours runs on the agent, otherwise declined (see
    /// [`Context::answer_inverse_offer`]). Override to drain the agent first, then accept.
    async fn inverse_offer(&self, ctx: &Context, offer: &InverseOffer) {
        ctx.answer_inverse_offer(offer).await;
    }

    /// Any other event (heartbeats, rescinds, failures, errors, ...): nothing by default.
    async fn event(&self, _ctx: &Context, _event: &SchedulerEvent) {}

    /// An instance reported a non-terminal state (staging, starting, running, ...).
    async fn running(&self, _ctx: &Context, _task: &TaskRecord) {}

    /// An instance finished (`TASK_FINISHED`): restarted only under the `always` policy.
    async fn finished(&self, _ctx: &Context, _task: &TaskRecord) -> Decision {
        Decision::PerPolicy
    }

    /// An instance failed (`TASK_FAILED`, `TASK_ERROR`): relaunched per policy.
    async fn failed(&self, _ctx: &Context, _task: &TaskRecord) -> Decision {
        Decision::PerPolicy
    }

    /// An instance was lost (`TASK_LOST`, `TASK_DROPPED`, `TASK_GONE*`, `TASK_UNKNOWN`):
    /// relaunched per policy.
    async fn lost(&self, _ctx: &Context, _task: &TaskRecord) -> Decision {
        Decision::PerPolicy
    }

    /// An instance was killed. Instances the user killed are never restarted; a kill by someone
    /// else is a failure for the policy.
    async fn killed(&self, _ctx: &Context, _task: &TaskRecord) -> Decision {
        Decision::PerPolicy
    }

    /// A health check reported the instance unhealthy: by default it is killed and relaunched
    /// per policy (see [`Context::restart`]).
    async fn unhealthy(&self, ctx: &Context, task: &TaskRecord) {
        if let Some(task_id) = &task.task_id {
            ctx.restart(task_id).await;
        }
    }

    /// Bytes from an executor: dropped by default.
    async fn message(
        &self,
        _ctx: &Context,
        _agent: &AgentId,
        _executor: &ExecutorId,
        _data: &Bytes,
    ) {
    }
}

/// A controller with every default: runs the specs, relaunches per policy.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultController;

impl Controller for DefaultController {}

#[async_trait]
impl<C: Controller> Controller for Arc<C> {
    async fn connected(
        &self,
        ctx: &Context,
        framework_id: &FrameworkId,
    ) -> Result<(), ControllerError> {
        (**self).connected(ctx, framework_id).await
    }
    async fn offers(&self, ctx: &Context, offers: Vec<Offer>) -> Result<(), ControllerError> {
        (**self).offers(ctx, offers).await
    }
    async fn update(
        &self,
        ctx: &Context,
        status: TaskStatus,
        ack: Option<AckToken>,
    ) -> Result<(), ControllerError> {
        (**self).update(ctx, status, ack).await
    }
    async fn inverse_offer(&self, ctx: &Context, offer: &InverseOffer) {
        (**self).inverse_offer(ctx, offer).await
    }
    async fn event(&self, ctx: &Context, event: &SchedulerEvent) {
        (**self).event(ctx, event).await
    }
    async fn running(&self, ctx: &Context, task: &TaskRecord) {
        (**self).running(ctx, task).await
    }
    async fn finished(&self, ctx: &Context, task: &TaskRecord) -> Decision {
        (**self).finished(ctx, task).await
    }
    async fn failed(&self, ctx: &Context, task: &TaskRecord) -> Decision {
        (**self).failed(ctx, task).await
    }
    async fn lost(&self, ctx: &Context, task: &TaskRecord) -> Decision {
        (**self).lost(ctx, task).await
    }
    async fn killed(&self, ctx: &Context, task: &TaskRecord) -> Decision {
        (**self).killed(ctx, task).await
    }
    async fn unhealthy(&self, ctx: &Context, task: &TaskRecord) {
        (**self).unhealthy(ctx, task).await
    }
    async fn message(&self, ctx: &Context, agent: &AgentId, executor: &ExecutorId, data: &Bytes) {
        (**self).message(ctx, agent, executor, data).await
    }
}
