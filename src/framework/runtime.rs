//! The framework's event loop and the [`Context`] the controller works through: the standard
//! handling of SUBSCRIBED (persist the id, reconcile), OFFERS (place, write ahead, launch,
//! decline the rest), UPDATE (store, callbacks, acknowledge), INVERSE_OFFERS (accept when no
//! task of ours runs on the agent, else decline), strangers (kill or adopt), kills, offer
//! suppression and revival, and the timers (restart backoff, reconciliation retries, periodic
//! implicit reconciliation, launch timeouts, replacement of instances unreachable for too
//! long). Every call is counted in the metrics (see [`super::telemetry`]); every event runs
//! in a `tracing` span that the calls it causes are logged in.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::sync::{Mutex, Notify};
use tracing::Instrument;

use super::controller::{Controller, ControllerError};
use super::state::StatePublisher;
use super::telemetry::Telemetry;
use crate::resourcemgr::etiquette::{Etiquette, InverseOfferDecision};
use crate::resourcemgr::placement::Placer;
use crate::resourcemgr::pool::{AgentView, OfferPool};
use crate::scheduler::{AckToken, Scheduler, SchedulerEvent, Termination};
use crate::storage::{Namespace, Store, StoreExt};
use crate::taskmgr::manager::now_ms;
use crate::taskmgr::spec::ArtifactUrls;
use crate::taskmgr::{
    Phase, ReconcileAsk, Reconciler, StatusOutcome, TaskManager, TaskRecord, Transition, record,
};
use crate::v1::{AgentId, FrameworkId, InverseOffer, TaskId, TaskState, TaskStatus};

/// What to do with a task the master reports that the store does not know.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UnknownTaskPolicy {
    /// Kill it (the default: nothing runs that the store does not account for).
    #[default]
    Kill,
    /// Adopt it when its id names an instance of a known spec that has no live attempt; kill
    /// it otherwise.
    Adopt,
    /// Leave it alone.
    Ignore,
}

/// The store key of the framework id (a protobuf `FrameworkId`, as [`crate::ha::HaRunner`]
/// stores it), relative to the namespace.
pub const FRAMEWORK_ID_KEY: &str = "framework-id";

/// What the controller's methods work with: the scheduler handle, the task manager, the store
/// and the framework's standard behaviour.
#[derive(Debug)]
pub struct Context {
    pub(super) scheduler: Scheduler,
    pub(super) tasks: TaskManager,
    pub(super) store: Arc<dyn Store>,
    pub(super) namespace: Namespace,
    pub(super) reconciler: Mutex<Reconciler>,
    pub(super) etiquette: Mutex<Etiquette>,
    pub(super) roles: Vec<String>,
    pub(super) artifacts: Arc<dyn ArtifactUrls + Send + Sync>,
    pub(super) unknown: UnknownTaskPolicy,
    /// Hostname and attributes of the agents seen in offers (for the placer's ledger).
    pub(super) agents: Mutex<HashMap<String, AgentView>>,
    /// The offers held between placement rounds.
    pub(super) pool: Mutex<OfferPool>,
    /// The resource manager's placer.
    pub(super) placer: Mutex<Placer>,
    /// After how long an instance reported `TASK_UNREACHABLE` is replaced (`None`: never).
    pub(super) unreachable_timeout: Option<Duration>,
    /// Task ids reported unreachable, and since when.
    pub(super) unreachable: Mutex<HashMap<String, Instant>>,
    /// The metrics.
    pub(super) telemetry: Telemetry,
    /// The `/state` snapshots.
    pub(super) state: StatePublisher,
    /// While a batch of updates is recorded: their acknowledgements, sent once the batch is
    /// stored.
    pub(super) deferred_acks: Mutex<Option<Vec<AckToken>>>,
}

impl std::fmt::Debug for dyn ArtifactUrls + Send + Sync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ArtifactUrls")
    }
}

impl Context {
    /// The scheduler handle (for calls of your own).
    pub fn scheduler(&self) -> &Scheduler {
        &self.scheduler
    }

    /// The task manager.
    pub fn tasks(&self) -> &TaskManager {
        &self.tasks
    }

    /// The framework's store (namespaced keys: see [`Context::namespace`]).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The framework's key namespace.
    pub fn namespace(&self) -> &Namespace {
        &self.namespace
    }

    /// The standard handling of SUBSCRIBED: store the framework id, reconcile every task that
    /// may be alive, send again the kills of instances being killed (a KILL sent while
    /// disconnected is lost), repeat SUPPRESS/REVIVE for the new subscription.
    pub async fn connected(&self, framework_id: &FrameworkId) -> Result<(), ControllerError> {
        let connection = self.state.connection(|c| {
            c.state = "subscribed";
            c.framework_id = Some(framework_id.value.clone());
            c.subscriptions += 1;
            c.last_error = None;
        });
        self.telemetry
            .subscribed(true, connection.subscriptions > 1);
        self.state.publish(&self.tasks).await;
        self.store
            .put_proto(&self.namespace.key(FRAMEWORK_ID_KEY), framework_id, None)
            .await?;
        self.reconcile().await;
        self.tasks.requeue_kills().await;
        let calls = self.etiquette.lock().await.resubscribed();
        self.send_calls(calls).await;
        self.update_pending().await;
        Ok(())
    }

    /// Starts an explicit reconciliation round over every task that may be alive (superseding
    /// any round under way), followed by an implicit one so strangers are reported.
    pub async fn reconcile(&self) {
        let tasks = self.tasks.maybe_running().await;
        let asks = self.reconciler.lock().await.start(tasks, Instant::now());
        self.telemetry.reconcile_started();
        self.send_asks(asks).await;
    }

    async fn send_asks(&self, asks: Vec<ReconcileAsk>) {
        for ask in asks {
            let result = match ask {
                ReconcileAsk::Explicit(tasks) => {
                    let tasks = tasks
                        .into_iter()
                        .map(|(t, a)| (TaskId { value: t }, a.map(|value| AgentId { value })))
                        .collect();
                    self.scheduler.reconcile(tasks).await
                }
                ReconcileAsk::Implicit => self.scheduler.reconcile_all().await,
            };
            self.telemetry.call("reconcile", result.is_ok());
            if let Err(error) = result {
                tracing::warn!(%error, "RECONCILE failed");
            }
        }
    }

    pub(super) async fn send_calls(&self, calls: Vec<crate::v1::scheduler::Call>) {
        for call in calls {
            let kind = call.r#type().as_str_name().to_ascii_lowercase();
            let result = self.scheduler.call(call).await;
            self.telemetry.call(&kind, result.is_ok());
            if let Err(error) = result {
                tracing::warn!(%error, call = %kind, "offer etiquette call failed");
            }
        }
    }

    /// After an instance became pending: [`update_pending`](Self::update_pending) at once, or
    /// once at the end of the batch of updates being recorded (it scans every instance).
    async fn pending_changed(&self) {
        if self.deferred_acks.lock().await.is_none() {
            self.update_pending().await;
        }
    }

    /// Tells the etiquette how many instances are ready to launch: SUPPRESS when none, REVIVE
    /// when more than before.
    pub(super) async fn update_pending(&self) {
        let ready = self.tasks.ready_count(now_ms()).await;
        let now = Instant::now();
        let mut calls = Vec::new();
        {
            let mut etiquette = self.etiquette.lock().await;
            for role in &self.roles {
                calls.extend(etiquette.set_pending(role, ready, now));
            }
        }
        self.send_calls(calls).await;
    }

    /// The standard handling of UPDATE: the status is stored, the reconciliation round takes
    /// note, the task callbacks of `controller` run and their decision is stored, strangers
    /// are killed or adopted per policy, and only then is the update acknowledged.
    pub async fn record_update<C: Controller + ?Sized>(
        &self,
        controller: &C,
        status: TaskStatus,
        ack: Option<AckToken>,
    ) -> Result<(), ControllerError> {
        let task_id = status.task_id.value.clone();
        let state = status.state();
        let reason = status
            .reason
            .and_then(|r| crate::v1::task_status::Reason::try_from(r).ok())
            .map_or("none", |r| r.as_str_name());
        self.telemetry.status_update(state.as_str_name(), reason);
        let completed = self.reconciler.lock().await.answered_status(
            &task_id,
            status.timestamp,
            Instant::now(),
        );
        if let Some(length) = completed {
            tracing::debug!(?length, "reconciliation round complete");
            self.telemetry.reconcile_completed(length);
        }
        {
            let mut unreachable = self.unreachable.lock().await;
            if state == TaskState::TaskUnreachable {
                unreachable
                    .entry(task_id.clone())
                    .or_insert_with(Instant::now);
            } else {
                unreachable.remove(&task_id);
            }
        }
        match self.tasks.record_status(&status).await? {
            StatusOutcome::Unknown => self.stranger(&status).await?,
            StatusOutcome::Known { record, transition } => {
                self.dispatch(controller, &status, *record, transition)
                    .await?
            }
        }
        if let Some(token) = ack {
            if let Some(deferred) = self.deferred_acks.lock().await.as_mut() {
                deferred.push(token);
                return Ok(());
            }
            let result = self.scheduler.acknowledge(token).await;
            self.telemetry.call("acknowledge", result.is_ok());
            if let Err(error) = result {
                tracing::warn!(%error, task = %task_id, "ACKNOWLEDGE failed");
            }
        }
        Ok(())
    }

    async fn dispatch<C: Controller + ?Sized>(
        &self,
        controller: &C,
        status: &TaskStatus,
        record: TaskRecord,
        transition: Transition,
    ) -> Result<(), ControllerError> {
        let task_id = status.task_id.value.clone();
        match transition {
            Transition::Active { resurrected } => {
                if resurrected {
                    tracing::info!(task = %task_id, "instance came back after its end");
                }
                if record.phase == Phase::Killing && resurrected {
                    self.tasks
                        .queue_kill(task_id.clone(), record.agent_id.clone())
                        .await;
                }
                if status.healthy == Some(false) {
                    controller.unhealthy(self, &record).await;
                } else {
                    controller.running(self, &record).await;
                }
            }
            Transition::Ended(ending) => {
                let decision = match ending {
                    record::Ending::Finished => controller.finished(self, &record).await,
                    record::Ending::Failed => controller.failed(self, &record).await,
                    record::Ending::Lost => controller.lost(self, &record).await,
                    record::Ending::Killed => controller.killed(self, &record).await,
                };
                self.ended(&record.spec, record.index).await;
                self.tasks.conclude(&task_id, ending, decision).await?;
                self.pending_changed().await;
            }
            Transition::NotLaunched => {
                self.ended(&record.spec, record.index).await;
                self.tasks.relaunch_unlaunched(&task_id).await?;
                self.pending_changed().await;
            }
            // An attempt of an instance that has none alive (the store lost it, or it is an
            // attempt older than the record's): a stranger, killed or adopted per policy.
            Transition::Duplicate if record.phase == Phase::Pending => {
                self.stranger(status).await?;
            }
            Transition::Duplicate => {
                tracing::warn!(task = %task_id, "an older attempt is alive: killing it");
                self.kill_now(task_id, status.agent_id.clone()).await;
            }
            Transition::Ignored => {}
        }
        Ok(())
    }

    async fn stranger(&self, status: &TaskStatus) -> Result<(), ControllerError> {
        if record::ending(status.state()).is_some() {
            return Ok(());
        }
        let task_id = status.task_id.value.clone();
        match self.unknown {
            UnknownTaskPolicy::Ignore => {}
            UnknownTaskPolicy::Adopt if self.tasks.adopt(status).await? => {
                tracing::info!(task = %task_id, "adopted a task the store did not know");
            }
            UnknownTaskPolicy::Adopt | UnknownTaskPolicy::Kill => {
                tracing::warn!(task = %task_id, "killing a task the store does not know");
                self.kill_now(task_id, status.agent_id.clone()).await;
            }
        }
        Ok(())
    }

    async fn kill_now(&self, task_id: String, agent_id: Option<AgentId>) {
        let result = self
            .scheduler
            .kill(
                TaskId {
                    value: task_id.clone(),
                },
                agent_id,
                None,
            )
            .await;
        self.telemetry.call("kill", result.is_ok());
        if let Err(error) = result {
            tracing::warn!(%error, task = %task_id, "KILL failed");
        }
    }

    /// The default answer to an inverse offer (see
    /// [`Etiquette::inverse_offer`](crate::resourcemgr::etiquette::Etiquette::inverse_offer)):
    /// accept when no task of ours may run on its agent, otherwise decline. Sends the answer and
    /// returns it.
    pub async fn answer_inverse_offer(&self, offer: &InverseOffer) -> InverseOfferDecision {
        let ours = match &offer.agent_id {
            Some(agent) => self
                .tasks
                .by_agent(&agent.value)
                .await
                .iter()
                .filter(|r| r.phase.may_run())
                .count(),
            None => 0,
        };
        let decision = self.etiquette.lock().await.inverse_offer(offer, ours);
        tracing::info!(
            inverse_offer = %offer.id.value,
            accepted = decision.accepted,
            reason = %decision.reason,
            "answering an inverse offer"
        );
        self.send_calls(vec![decision.call.clone()]).await;
        decision
    }

    /// Replaces the instances reported `TASK_UNREACHABLE` for longer than the builder's
    /// `unreachable_timeout`: each attempt is concluded as lost (the controller's `lost`
    /// callback decides, per policy by default), so a replacement is launched; if the old task
    /// comes back after its replacement was launched, it is killed as a duplicate (as Marathon
    /// does); if it comes back before, the instance simply resumes.
    pub(super) async fn replace_unreachable<C: Controller + ?Sized>(&self, controller: &C) {
        let Some(timeout) = self.unreachable_timeout else {
            return;
        };
        let now = Instant::now();
        let overdue: Vec<String> = {
            let mut unreachable = self.unreachable.lock().await;
            let overdue: Vec<String> = unreachable
                .iter()
                .filter(|(_, since)| now.duration_since(**since) >= timeout)
                .map(|(id, _)| id.clone())
                .collect();
            for id in &overdue {
                unreachable.remove(id);
            }
            overdue
        };
        for task_id in overdue {
            let Some(record) = self.tasks.get(&task_id).await else {
                continue;
            };
            if record.task_id.as_deref() != Some(task_id.as_str())
                || record.phase != Phase::Active
                || record.mesos_state() != Some(TaskState::TaskUnreachable)
            {
                continue;
            }
            tracing::warn!(
                task = %task_id,
                ?timeout,
                "unreachable for too long: replacing the instance"
            );
            let decision = controller.lost(self, &record).await;
            self.ended(&record.spec, record.index).await;
            if let Err(error) = self
                .tasks
                .conclude(&task_id, record::Ending::Lost, decision)
                .await
            {
                tracing::warn!(%error, task = %task_id, "replacing an unreachable instance failed");
            }
        }
    }

    /// Kills the current attempt of an instance so that it is relaunched per policy (the kill
    /// is not the user's, so `on_failure` and `always` restart it).
    pub async fn restart(&self, task_id: &str) {
        let agent = self.tasks.get(task_id).await.and_then(|r| r.agent_id);
        self.kill_now(task_id.to_owned(), agent.map(|value| AgentId { value }))
            .await;
    }

    /// Sends the kills the task manager queued.
    pub(super) async fn send_kills(&self) {
        for (task_id, agent) in self.tasks.take_kills().await {
            self.kill_now(task_id, agent.map(|value| AgentId { value }))
                .await;
        }
    }

    /// Timers: reconciliation retries and the periodic implicit round, overdue launches, REVIVE
    /// tokens, ends of restart backoffs.
    pub(super) async fn tick(&self) {
        let now = Instant::now();
        let overdue = {
            let timeout = self.reconciler.lock().await.config().launch_timeout;
            self.tasks.overdue_launches(now_ms(), timeout).await
        };
        let in_round = self.reconciler.lock().await.in_round();
        if !overdue.is_empty() && !in_round {
            tracing::info!(
                tasks = overdue.len(),
                "launches without status: reconciling"
            );
            self.reconcile().await;
        } else {
            let asks = self.reconciler.lock().await.tick(now);
            self.send_asks(asks).await;
        }
        let calls = self.etiquette.lock().await.tick(now);
        self.send_calls(calls).await;
        if let Err(error) = self.offers_tick().await {
            tracing::warn!(%error, "placing on pooled offers failed");
        }
        if let Err(error) = self.tasks.rollout_step().await {
            tracing::warn!(%error, "rolling update step failed");
        }
        self.update_pending().await;
        self.state.publish(&self.tasks).await;
    }

    /// A subscription ended (the scheduler reconnects by itself).
    pub(super) async fn disconnected(&self, reason: String) {
        self.state.connection(|c| {
            c.state = "disconnected";
            c.last_error = Some(reason);
        });
        self.telemetry.subscribed(false, false);
        self.state.publish(&self.tasks).await;
    }
}

/// Most updates recorded in one batch.
const MAX_BATCH: usize = 256;

/// Acknowledgements of a batch in flight at once.
const ACK_CONCURRENCY: usize = 16;

/// Takes the updates that are already waiting behind `first` (up to [`MAX_BATCH`]); answers
/// them and the first other event found, if any.
fn gather_updates<E>(
    first: SchedulerEvent,
    events: &mut E,
) -> (Vec<SchedulerEvent>, Option<SchedulerEvent>)
where
    E: futures::Stream<Item = SchedulerEvent> + Unpin,
{
    use futures::FutureExt;
    let mut batch = vec![first];
    while batch.len() < MAX_BATCH {
        match events.next().now_or_never() {
            Some(Some(event @ SchedulerEvent::Update { .. })) => batch.push(event),
            Some(Some(other)) => return (batch, Some(other)),
            // Nothing waiting, or the stream ended (noticed on the next poll).
            Some(None) | None => break,
        }
    }
    (batch, None)
}

/// Records a batch of updates: one after the other through the controller, with the record
/// writes held back and stored together (one transaction per 64 records) and the
/// acknowledgements sent only after that. A batch of one takes the plain path.
async fn handle_updates<C: Controller>(ctx: &Context, controller: &C, batch: Vec<SchedulerEvent>) {
    let single = batch.len() == 1;
    if !single {
        ctx.tasks.begin_batch().await;
        *ctx.deferred_acks.lock().await = Some(Vec::new());
    }
    for event in batch {
        if let SchedulerEvent::Update { status, ack } = event
            && let Err(error) = controller.update(ctx, *status, ack).await
        {
            tracing::warn!(%error, "controller failed on an update");
        }
    }
    if single {
        return;
    }
    let acks = ctx.deferred_acks.lock().await.take().unwrap_or_default();
    ctx.update_pending().await;
    match ctx.tasks.flush_batch().await {
        Ok(written) => {
            tracing::debug!(written, acks = acks.len(), "batch of updates stored");
            // Several at a time: one round trip each, and a large batch must not hold up
            // the loop for long.
            futures::stream::iter(acks)
                .for_each_concurrent(ACK_CONCURRENCY, |token| async move {
                    let result = ctx.scheduler.acknowledge(token).await;
                    ctx.telemetry.call("acknowledge", result.is_ok());
                    if let Err(error) = result {
                        tracing::warn!(%error, "ACKNOWLEDGE failed");
                    }
                })
                .await;
        }
        Err(error) => {
            tracing::warn!(%error, acks = acks.len(), "storing a batch of updates failed: not acknowledging them");
        }
    }
}

/// Handles one event (updates in batches) in its span; answers the termination that ends the
/// loop.
async fn on_event<C, E>(
    ctx: &Context,
    controller: &C,
    event: SchedulerEvent,
    events: &mut E,
) -> Option<Termination>
where
    C: Controller,
    E: futures::Stream<Item = SchedulerEvent> + Unpin,
{
    let mut next = Some(event);
    while let Some(event) = next.take() {
        if matches!(event, SchedulerEvent::Update { .. }) {
            let (batch, other) = gather_updates(event, events);
            for _ in 0..batch.len() {
                ctx.telemetry.event("update");
            }
            let span = tracing::info_span!("event", kind = "update", batch = batch.len());
            handle_updates(ctx, controller, batch)
                .instrument(span)
                .await;
            next = other;
        } else {
            let kind = event_kind(&event);
            ctx.telemetry.event(kind);
            let span = tracing::info_span!("event", kind);
            if let Some(termination) = handle(ctx, controller, event).instrument(span).await {
                return Some(termination);
            }
        }
    }
    None
}

/// Runs the event loop until the scheduler terminates; answers why it did.
pub(super) async fn run<C, E>(
    ctx: Arc<Context>,
    controller: C,
    mut events: E,
    tick: Duration,
    stop: Arc<Notify>,
) -> Termination
where
    C: Controller,
    E: futures::Stream<Item = SchedulerEvent> + Unpin,
{
    let mut ticker = tokio::time::interval(tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            event = events.next() => {
                let Some(event) = event else { return Termination::Stopped };
                if let Some(termination) = on_event(&ctx, &controller, event, &mut events).await {
                    return termination;
                }
            }
            () = ctx.tasks.work_arrived() => {
                ctx.send_kills().await;
                ctx.update_pending().await;
            }
            _ = ticker.tick() => {
                ctx.replace_unreachable(&controller).await;
                ctx.tick().await;
            }
            () = stop.notified() => ctx.scheduler.stop(),
        }
    }
}

async fn handle<C: Controller>(
    ctx: &Context,
    controller: &C,
    event: SchedulerEvent,
) -> Option<Termination> {
    let result = match event {
        SchedulerEvent::Connected { framework_id, .. } => {
            tracing::info!(framework = %framework_id.value, "connected");
            controller.connected(ctx, &framework_id).await
        }
        SchedulerEvent::Offers(offers) => controller.offers(ctx, offers).await,
        SchedulerEvent::Update { status, ack } => controller.update(ctx, *status, ack).await,
        SchedulerEvent::Message {
            agent_id,
            executor_id,
            data,
        } => {
            controller
                .message(ctx, &agent_id, &executor_id, &data)
                .await;
            Ok(())
        }
        SchedulerEvent::InverseOffers(offers) => {
            for offer in &offers {
                controller.inverse_offer(ctx, offer).await;
            }
            Ok(())
        }
        SchedulerEvent::Rescind(ref offer_id) => {
            ctx.rescind(offer_id).await;
            controller.event(ctx, &event).await;
            Ok(())
        }
        SchedulerEvent::OffersInvalidated { .. } => {
            ctx.clear_offers().await;
            controller.event(ctx, &event).await;
            Ok(())
        }
        SchedulerEvent::Disconnected { ref reason } => {
            ctx.clear_offers().await;
            ctx.disconnected(reason.clone()).await;
            controller.event(ctx, &event).await;
            Ok(())
        }
        SchedulerEvent::Terminated(termination) => {
            controller
                .event(ctx, &SchedulerEvent::Terminated(termination.clone()))
                .await;
            return Some(termination);
        }
        other => {
            controller.event(ctx, &other).await;
            Ok(())
        }
    };
    if let Err(error) = result {
        tracing::warn!(%error, "controller failed on an event");
    }
    None
}

/// The event's type, for spans and logs.
fn event_kind(event: &SchedulerEvent) -> &'static str {
    match event {
        SchedulerEvent::Connected { .. } => "connected",
        SchedulerEvent::Offers(_) => "offers",
        SchedulerEvent::InverseOffers(_) => "inverse_offers",
        SchedulerEvent::Rescind(_) => "rescind",
        SchedulerEvent::RescindInverseOffer(_) => "rescind_inverse_offer",
        SchedulerEvent::Update { .. } => "update",
        SchedulerEvent::OperationUpdate { .. } => "operation_update",
        SchedulerEvent::Message { .. } => "message",
        SchedulerEvent::Failure { .. } => "failure",
        SchedulerEvent::Error(_) => "error",
        SchedulerEvent::Heartbeat => "heartbeat",
        SchedulerEvent::OffersInvalidated { .. } => "offers_invalidated",
        SchedulerEvent::Disconnected { .. } => "disconnected",
        SchedulerEvent::Terminated(_) => "terminated",
        _ => "other",
    }
}
