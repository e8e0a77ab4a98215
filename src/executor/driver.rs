//! The executor driver: subscription, event dispatch, reliable updates, reconnection and the
//! SHUTDOWN sequence.

use std::future::pending;
use std::time::Duration;

use std::collections::HashSet;

use futures::StreamExt;
use rand::Rng;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until, timeout_at};
use tracing::{debug, info, warn};
use uuid::Uuid;

use super::bookkeeping::Bookkeeping;

/// How many UPDATE calls (of different tasks) an executor has in flight at once.
const UPDATE_WAVE: usize = 32;
use super::config::{EXECUTOR_API_PATH, ExecutorConfig};
use super::handle::{Command, ExecutorHandle, StatusUpdate};
use super::{Error, Executor, Outcome};
use crate::client::{self, CallRequest, Client, ErrorKind, Subscription};
use crate::v1::executor::{Call, Event, call, event};
use crate::v1::{AgentId, DurationInfo, KillPolicy, TaskState, TaskStatus};

/// A configured executor runtime, before it runs.
///
/// Use it instead of [`run`] when code outside the [`Executor`] needs an [`ExecutorHandle`]
/// before the driver starts (for example to stop it from a signal handler).
#[derive(Debug)]
pub struct Runtime {
    config: ExecutorConfig,
    client: Client,
    handle: ExecutorHandle,
    commands: mpsc::UnboundedReceiver<Command>,
}

impl Runtime {
    /// Builds the transport to the agent described by `config`.
    pub fn new(config: ExecutorConfig) -> Result<Self, Error> {
        // One attempt per request: the driver applies Mesos' own backoff rules between them.
        let mut builder = Client::builder()
            .endpoint(config.agent_url())
            .format(config.format)
            .max_record_size(config.max_record_size)
            .max_attempts(1);
        if let Some(token) = &config.authentication_token {
            builder = builder.bearer_token(token.clone());
        }
        if let Some(call_timeout) = config.call_timeout {
            builder = builder.call_timeout(call_timeout);
        }
        if let Some(path) = &config.tls_ca_file {
            let pem = std::fs::read(path).map_err(|source| Error::CaFile {
                path: path.clone(),
                source,
            })?;
            builder = builder.add_ca_pem(pem);
        }
        let client = builder.build().map_err(Error::Transport)?;
        if let Some(socket) = &config.domain_socket {
            info!(
                socket = %socket.display(),
                "MESOS_DOMAIN_SOCKET is set but unix sockets are not supported; using TCP"
            );
        }
        let (sender, commands) = mpsc::unbounded_channel();
        let handle = ExecutorHandle::new(config.executor_id.clone(), sender);
        Ok(Self {
            config,
            client,
            handle,
            commands,
        })
    }

    /// A handle to the driver that [`run`](Self::run) will start.
    pub fn handle(&self) -> ExecutorHandle {
        self.handle.clone()
    }

    /// The configuration.
    pub fn config(&self) -> &ExecutorConfig {
        &self.config
    }

    /// Subscribes and dispatches events to `executor` until the executor is done.
    pub async fn run<E: Executor>(self, executor: E) -> Result<Outcome, Error> {
        Driver {
            executor,
            config: self.config,
            client: self.client,
            handle: self.handle,
            commands: self.commands,
            book: Bookkeeping::default(),
            agent_id: None,
            shutdown: None,
            subscribed_once: false,
            connected: false,
            subscribe_batch: Vec::new(),
            stop_requested: false,
            sending: JoinSet::new(),
            sending_tasks: HashSet::new(),
            update_failed: false,
        }
        .drive()
        .await
    }
}

/// Runs `executor` against the agent described by `config` until it is done.
///
/// Returns [`Outcome::Shutdown`] after the agent's SHUTDOWN, [`Outcome::Disconnected`] when the
/// stream broke and the framework does not checkpoint, and [`Outcome::Stopped`] after
/// [`ExecutorHandle::stop`]. See the [module documentation](super) for an example.
pub async fn run<E: Executor>(executor: E, config: ExecutorConfig) -> Result<Outcome, Error> {
    Runtime::new(config)?.run(executor).await
}

struct ShutdownClock {
    /// Tasks still running then get a TASK_KILLED from the driver.
    force_at: Instant,
    /// The driver returns then, whatever is left.
    exit_at: Instant,
    forced: bool,
}

enum StreamEnd {
    Finished(Outcome),
    Broken { subscribed: bool, reason: String },
    ErrorEvent(String),
}

struct Driver<E> {
    executor: E,
    config: ExecutorConfig,
    client: Client,
    handle: ExecutorHandle,
    commands: mpsc::UnboundedReceiver<Command>,
    book: Bookkeeping,
    agent_id: Option<AgentId>,
    shutdown: Option<ShutdownClock>,
    subscribed_once: bool,
    /// SUBSCRIBED was received on the current stream.
    connected: bool,
    /// The updates carried by the last SUBSCRIBE call.
    subscribe_batch: Vec<Uuid>,
    stop_requested: bool,
    /// UPDATE calls in flight (sent beside the event loop, one per task at a time).
    sending: JoinSet<(Uuid, String, UpdateAnswer)>,
    /// The tasks with an UPDATE call in flight.
    sending_tasks: HashSet<String>,
    /// An UPDATE call failed on this stream: no more are sent before the retry timer.
    update_failed: bool,
}

/// The answer to an UPDATE call.
type UpdateAnswer = Result<Result<(), client::Error>, Error>;

impl<E: Executor> Driver<E> {
    async fn drive(mut self) -> Result<Outcome, Error> {
        let mut failing_since: Option<Instant> = None;
        let mut last_error = String::new();
        loop {
            if let Some(since) = failing_since {
                let (limit, recovering) = self.retry_limit();
                let deadline = since + limit;
                if self.backoff_wait(deadline).await {
                    return Ok(Outcome::Stopped);
                }
                if Instant::now() >= deadline {
                    return Err(if recovering {
                        Error::RecoveryTimedOut {
                            timeout: limit,
                            last_error,
                        }
                    } else {
                        Error::RegistrationTimedOut {
                            timeout: limit,
                            last_error,
                        }
                    });
                }
            }
            self.absorb_queued_commands();
            if self.stop_requested {
                return Ok(Outcome::Stopped);
            }

            let subscription = match self.subscribe().await? {
                Ok(subscription) => subscription,
                Err(err) => {
                    last_error = retryable(err)?;
                    warn!(error = %last_error, "SUBSCRIBE failed");
                    failing_since.get_or_insert_with(Instant::now);
                    continue;
                }
            };
            let end = self.serve(subscription, &mut failing_since).await;
            self.connected = false;
            match end? {
                StreamEnd::Finished(outcome) => return Ok(outcome),
                StreamEnd::Broken {
                    subscribed: true,
                    reason,
                } => {
                    warn!(%reason, "event stream broken");
                    if self.shutdown.is_some() {
                        return Ok(Outcome::Shutdown);
                    }
                    self.executor.disconnected(&self.handle).await;
                    if !self.config.checkpoint {
                        info!("framework does not checkpoint: exiting");
                        return Ok(Outcome::Disconnected);
                    }
                    last_error = reason;
                    failing_since = Some(Instant::now());
                }
                StreamEnd::Broken {
                    subscribed: false,
                    reason,
                } => {
                    warn!(%reason, "event stream ended before SUBSCRIBED");
                    last_error = reason;
                    failing_since.get_or_insert_with(Instant::now);
                }
                StreamEnd::ErrorEvent(message) => {
                    last_error = format!("ERROR event: {message}");
                    failing_since.get_or_insert_with(Instant::now);
                }
            }
        }
    }

    /// How long retries may go on after the first failure, and whether that is the recovery
    /// timeout (as opposed to the registration timeout).
    fn retry_limit(&self) -> (Duration, bool) {
        if self.subscribed_once && self.config.checkpoint {
            (self.config.recovery_timeout, true)
        } else {
            (self.config.registration_timeout, false)
        }
    }

    /// Waits a uniformly random time in `[0, subscription_backoff_max]` (never past `deadline`),
    /// recording updates queued meanwhile. Returns true if the author asked to stop.
    async fn backoff_wait(&mut self, deadline: Instant) -> bool {
        let wait = random_wait(self.config.subscription_backoff_max);
        let until = (Instant::now() + wait).min(deadline);
        debug!(?wait, "waiting before resubscribing");
        loop {
            tokio::select! {
                _ = sleep_until(until) => return false,
                command = self.commands.recv() => match command {
                    Some(Command::Update(status)) => self.record(*status),
                    Some(Command::Message(_)) => warn!("dropping a message: not connected"),
                    Some(Command::Stop) | None => return true,
                },
            }
        }
    }

    /// Records queued updates without sending them (they go in the next SUBSCRIBE).
    fn absorb_queued_commands(&mut self) {
        while let Ok(command) = self.commands.try_recv() {
            match command {
                Command::Update(status) => self.record(*status),
                Command::Message(_) => warn!("dropping a message: not connected"),
                Command::Stop => self.stop_requested = true,
            }
        }
    }

    fn record(&mut self, mut status: TaskStatus) {
        if status.agent_id.is_none() {
            status.agent_id = self.agent_id.clone().or(self.config.agent_id.clone());
        }
        if self.book.record(status).is_none() {
            warn!("dropping a status update without a valid uuid");
        }
    }

    fn call(&self, kind: call::Type) -> Call {
        let mut call = Call {
            executor_id: self.config.executor_id.clone(),
            framework_id: self.config.framework_id.clone(),
            ..Call::default()
        };
        call.set_type(kind);
        call
    }

    /// Sends SUBSCRIBE; the outer error is final, the inner one is the transport's.
    async fn subscribe(&mut self) -> Result<Result<Subscription, client::Error>, Error> {
        let mut call = self.call(call::Type::Subscribe);
        let updates = self.book.unacknowledged_updates();
        self.subscribe_batch = updates
            .iter()
            .filter_map(|u| u.status.uuid.as_deref())
            .filter_map(|uuid| Uuid::from_slice(uuid).ok())
            .collect();
        call.subscribe = Some(call::Subscribe {
            unacknowledged_tasks: self.book.unacknowledged_tasks(),
            unacknowledged_updates: updates,
        });
        info!(
            tasks = call
                .subscribe
                .as_ref()
                .map_or(0, |s| s.unacknowledged_tasks.len()),
            updates = call
                .subscribe
                .as_ref()
                .map_or(0, |s| s.unacknowledged_updates.len()),
            "subscribing"
        );
        let body = self.config.format.encode(&call)?;
        Ok(self
            .client
            .subscribe(CallRequest {
                path: EXECUTOR_API_PATH.to_owned(),
                body,
                stream_id: None,
            })
            .await)
    }

    /// Sends a non-streaming call; the outer error is final, the inner one is the transport's.
    async fn send_call(&self, call: Call) -> Result<Result<(), client::Error>, Error> {
        let body = self.config.format.encode(&call)?;
        Ok(self
            .client
            .call(CallRequest {
                path: EXECUTOR_API_PATH.to_owned(),
                body,
                stream_id: None,
            })
            .await
            .map(|_| ()))
    }

    async fn serve(
        &mut self,
        subscription: Subscription,
        failing_since: &mut Option<Instant>,
    ) -> Result<StreamEnd, Error> {
        let mut events = subscription.into_events::<Event>();
        self.connected = false;
        // Calls of an earlier stream are abandoned; their updates are resent.
        self.sending.abort_all();
        self.sending = JoinSet::new();
        self.sending_tasks.clear();
        self.update_failed = false;
        let retry_every = self
            .config
            .update_retry_interval
            .max(Duration::from_millis(1));
        let mut retry = tokio::time::interval_at(Instant::now() + retry_every, retry_every);
        retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // An accepted subscription must bring SUBSCRIBED within the registration timeout.
        let subscribed_by = Instant::now() + self.config.registration_timeout;
        loop {
            if self.stop_requested {
                if self.connected {
                    self.wait_for_updates_in_flight().await?;
                    self.send_undelivered().await?;
                }
                return Ok(StreamEnd::Finished(Outcome::Stopped));
            }
            if self.shutdown_complete() {
                info!("shutdown complete");
                return Ok(StreamEnd::Finished(Outcome::Shutdown));
            }
            let shutdown_alarm = self.shutdown.as_ref().map(|clock| {
                if clock.forced {
                    clock.exit_at
                } else {
                    clock.force_at
                }
            });
            tokio::select! {
                event = events.next() => {
                    let event = match event {
                        Some(Ok(event)) => event,
                        Some(Err(err)) => {
                            return Ok(StreamEnd::Broken {
                                subscribed: self.connected,
                                reason: err.to_string(),
                            });
                        }
                        None => {
                            return Ok(StreamEnd::Broken {
                                subscribed: self.connected,
                                reason: "the agent closed the event stream".to_owned(),
                            });
                        }
                    };
                    if let Some(end) = self.on_event(event, failing_since).await? {
                        return Ok(end);
                    }
                }
                command = self.commands.recv() => {
                    self.on_command(command).await?;
                }
                Some(sent) = self.sending.join_next(), if !self.sending.is_empty() => {
                    match sent {
                        Ok((uuid, task, answer)) => self.on_update_sent(uuid, task, answer)?,
                        Err(e) => {
                            // Not expected (the calls are never aborted on this stream).
                            warn!(error = %e, "an UPDATE call ended abnormally; will retry");
                            self.sending_tasks.clear();
                            self.update_failed = true;
                        }
                    }
                    self.send_updates();
                }
                _ = retry.tick(), if self.connected => {
                    self.update_failed = false;
                    self.send_updates();
                }
                _ = sleep_until_some((!self.connected).then_some(subscribed_by)) => {
                    return Ok(StreamEnd::Broken {
                        subscribed: false,
                        reason: format!(
                            "no SUBSCRIBED event within {:?}",
                            self.config.registration_timeout
                        ),
                    });
                }
                _ = sleep_until_some(shutdown_alarm) => {
                    if let Some(outcome) = self.on_shutdown_alarm().await? {
                        return Ok(StreamEnd::Finished(outcome));
                    }
                }
            }
        }
    }

    async fn on_event(
        &mut self,
        event: Box<Event>,
        failing_since: &mut Option<Instant>,
    ) -> Result<Option<StreamEnd>, Error> {
        let kind = event.r#type();
        debug!(event = kind.as_str_name(), "event");
        match kind {
            event::Type::Subscribed => {
                let Some(info) = event.subscribed else {
                    warn!("SUBSCRIBED event without payload");
                    return Ok(None);
                };
                info!(agent = ?info.agent_info.id.as_ref().map(|id| &id.value), "subscribed");
                self.connected = true;
                *failing_since = None;
                self.subscribed_once = true;
                if let Some(agent_id) = &info.agent_info.id {
                    self.agent_id = Some(agent_id.clone());
                }
                for uuid in std::mem::take(&mut self.subscribe_batch) {
                    self.book.delivered(uuid);
                }
                self.send_updates();
                self.executor.subscribed(&self.handle, &info).await;
            }
            event::Type::Launch => {
                let Some(launch) = event.launch else {
                    warn!("LAUNCH event without payload");
                    return Ok(None);
                };
                self.book.launched(launch.task.clone());
                self.executor.launch(&self.handle, launch.task).await;
            }
            event::Type::LaunchGroup => {
                let Some(launch_group) = event.launch_group else {
                    warn!("LAUNCH_GROUP event without payload");
                    return Ok(None);
                };
                for task in &launch_group.task_group.tasks {
                    self.book.launched(task.clone());
                }
                self.executor
                    .launch_group(&self.handle, launch_group.task_group)
                    .await;
            }
            event::Type::Kill => {
                let Some(kill) = event.kill else {
                    warn!("KILL event without payload");
                    return Ok(None);
                };
                self.executor
                    .kill(&self.handle, kill.task_id, kill.kill_policy)
                    .await;
            }
            event::Type::Acknowledged => {
                let Some(ack) = event.acknowledged else {
                    warn!("ACKNOWLEDGED event without payload");
                    return Ok(None);
                };
                let Ok(uuid) = Uuid::from_slice(&ack.uuid) else {
                    warn!(task = %ack.task_id.value, "ACKNOWLEDGED with a malformed uuid");
                    return Ok(None);
                };
                if !self.book.acknowledged(&ack.task_id, uuid) {
                    debug!(task = %ack.task_id.value, %uuid, "acknowledgement of an unknown update");
                }
                self.executor
                    .acknowledged(&self.handle, &ack.task_id, uuid)
                    .await;
            }
            event::Type::Message => {
                let Some(message) = event.message else {
                    warn!("MESSAGE event without payload");
                    return Ok(None);
                };
                self.executor.message(&self.handle, message.data).await;
            }
            event::Type::Error => {
                let message = event.error.map(|e| e.message).unwrap_or_default();
                warn!(%message, "ERROR event: resubscribing");
                self.executor.error(&self.handle, &message).await;
                return Ok(Some(StreamEnd::ErrorEvent(message)));
            }
            event::Type::Shutdown => self.begin_shutdown().await?,
            event::Type::Heartbeat => {}
            event::Type::Unknown => warn!("ignoring an event of unknown type"),
        }
        Ok(None)
    }

    async fn on_command(&mut self, command: Option<Command>) -> Result<(), Error> {
        match command {
            Some(Command::Update(status)) => {
                self.record(*status);
                if self.connected {
                    self.send_updates();
                }
                Ok(())
            }
            Some(Command::Message(_)) if !self.connected => {
                warn!("dropping a message: not subscribed");
                Ok(())
            }
            Some(Command::Message(data)) => self.send_message(data).await,
            Some(Command::Stop) | None => {
                // What was queued before the stop still goes out.
                self.stop_requested = true;
                while let Ok(command) = self.commands.try_recv() {
                    match command {
                        Command::Update(status) => self.record(*status),
                        Command::Message(data) if self.connected => {
                            self.send_message(data).await?;
                        }
                        Command::Message(_) => warn!("dropping a message: not subscribed"),
                        Command::Stop => {}
                    }
                }
                Ok(())
            }
        }
    }

    /// Sends a MESSAGE call; failures other than 401 are logged (messages are unreliable).
    async fn send_message(&mut self, data: bytes::Bytes) -> Result<(), Error> {
        // The executor's calls reach the agent in the order it made them.
        self.wait_for_updates_in_flight().await?;
        let mut call = self.call(call::Type::Message);
        call.message = Some(call::Message { data });
        match self.send_call(call).await? {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == ErrorKind::Unauthorized => Err(Error::Unauthorized(err)),
            Err(err) => {
                warn!(error = %err, "MESSAGE call failed");
                Ok(())
            }
        }
    }

    /// Starts UPDATE calls beside the event loop for the updates the agent has not accepted: a
    /// task's updates one after another, in order (its next one once the agent accepted the
    /// previous), different tasks' concurrently, at most [`UPDATE_WAVE`] at once. Events (a
    /// LAUNCH, an acknowledgement) are handled while calls are in flight, so an executor running
    /// many short tasks is not held to one round trip per update. After a failed call nothing
    /// more is sent until the retry timer, so the agent never sees a task's updates out of
    /// order.
    fn send_updates(&mut self) {
        if !self.connected || self.update_failed || self.sending.len() >= UPDATE_WAVE {
            return;
        }
        for (uuid, update) in self.book.undelivered() {
            if self.sending.len() >= UPDATE_WAVE {
                break;
            }
            let task = update.status.task_id.value.clone();
            if !self.sending_tasks.insert(task.clone()) {
                continue;
            }
            let mut call = self.call(call::Type::Update);
            call.update = Some(update);
            let body = self.config.format.encode(&call);
            let client = self.client.clone();
            self.sending.spawn(async move {
                let answer = match body {
                    Ok(body) => Ok(client
                        .call(CallRequest {
                            path: EXECUTOR_API_PATH.to_owned(),
                            body,
                            stream_id: None,
                        })
                        .await
                        .map(|_| ())),
                    Err(e) => Err(e.into()),
                };
                (uuid, task, answer)
            });
        }
    }

    /// Waits for the UPDATE calls in flight to answer (a MESSAGE, or the stop, comes after the
    /// updates made before it).
    async fn wait_for_updates_in_flight(&mut self) -> Result<(), Error> {
        while let Some(sent) = self.sending.join_next().await {
            if let Ok((uuid, task, answer)) = sent {
                self.on_update_sent(uuid, task, answer)?;
            }
        }
        self.sending_tasks.clear();
        Ok(())
    }

    /// Books the answer to an UPDATE call.
    fn on_update_sent(
        &mut self,
        uuid: Uuid,
        task: String,
        answer: UpdateAnswer,
    ) -> Result<(), Error> {
        self.sending_tasks.remove(&task);
        match answer? {
            Ok(()) => {
                debug!(%task, %uuid, "update delivered");
                self.book.delivered(uuid);
            }
            Err(err) if err.kind() == ErrorKind::Unauthorized => {
                return Err(Error::Unauthorized(err));
            }
            Err(err) => {
                warn!(%task, error = %err, "UPDATE call failed; will retry");
                self.update_failed = true;
            }
        }
        Ok(())
    }

    /// Sends the updates the agent has not accepted, in order, one at a time, stopping at the
    /// first failure (used when stopping, after the calls in flight have answered).
    async fn send_undelivered(&mut self) -> Result<(), Error> {
        for (uuid, update) in self.book.undelivered() {
            let state = update.status.state();
            let task = update.status.task_id.value.clone();
            let mut call = self.call(call::Type::Update);
            call.update = Some(update);
            match self.send_call(call).await? {
                Ok(()) => {
                    debug!(%task, state = state.as_str_name(), %uuid, "update delivered");
                    self.book.delivered(uuid);
                }
                Err(err) if err.kind() == ErrorKind::Unauthorized => {
                    return Err(Error::Unauthorized(err));
                }
                Err(err) => {
                    warn!(%task, error = %err, "UPDATE call failed; will retry");
                    break;
                }
            }
        }
        Ok(())
    }

    /// Drains queued commands, sending what can be sent.
    async fn process_queued_commands(&mut self) -> Result<(), Error> {
        while let Ok(command) = self.commands.try_recv() {
            self.on_command(Some(command)).await?;
        }
        Ok(())
    }

    async fn begin_shutdown(&mut self) -> Result<(), Error> {
        if self.shutdown.is_some() {
            return Ok(());
        }
        let grace = self.config.shutdown_grace_period;
        let now = Instant::now();
        let force_at = now + grace.mul_f64(0.75);
        self.shutdown = Some(ShutdownClock {
            force_at,
            exit_at: now + grace.mul_f64(0.9),
            forced: false,
        });
        info!(?grace, "SHUTDOWN: killing every task");
        if timeout_at(force_at, self.executor.shutdown(&self.handle))
            .await
            .is_err()
        {
            warn!("the executor's shutdown did not return in time");
        }
        self.process_queued_commands().await?;
        let kill_policy = KillPolicy {
            grace_period: Some(DurationInfo {
                nanoseconds: i64::try_from((grace / 2).as_nanos()).unwrap_or(i64::MAX),
            }),
        };
        for task_id in self.book.active_tasks() {
            let kill = self.executor.kill(&self.handle, task_id, Some(kill_policy));
            if timeout_at(force_at, kill).await.is_err() {
                warn!("the executor's kill did not return in time");
            }
        }
        self.process_queued_commands().await
    }

    fn shutdown_complete(&self) -> bool {
        self.shutdown.is_some() && !self.book.has_active_tasks() && self.book.everything_delivered()
    }

    async fn on_shutdown_alarm(&mut self) -> Result<Option<Outcome>, Error> {
        let Some(clock) = self.shutdown.as_mut() else {
            return Ok(None);
        };
        if clock.forced {
            warn!("shutdown grace period used up: exiting with undelivered updates");
            return Ok(Some(Outcome::Shutdown));
        }
        clock.forced = true;
        self.process_queued_commands().await?;
        for task_id in self.book.active_tasks() {
            warn!(task = %task_id.value, "task still running at shutdown: reporting TASK_KILLED");
            let update = StatusUpdate::new(task_id, TaskState::TaskKilled)
                .message("Executor shut down before the task ended");
            if let Err(err) = self.handle.update(update) {
                warn!(error = %err, "cannot queue TASK_KILLED");
            }
        }
        self.process_queued_commands().await?;
        Ok(None)
    }
}

/// Classifies a SUBSCRIBE failure: `Ok(description)` when a retry may succeed, `Err` when it is
/// final.
fn retryable(err: client::Error) -> Result<String, Error> {
    let has_client_status = err
        .status()
        .is_some_and(|status| status.is_client_error() || status.as_u16() == 501);
    match err.kind() {
        ErrorKind::Unauthorized => Err(Error::Unauthorized(err)),
        ErrorKind::BadRequest | ErrorKind::Config => Err(Error::Rejected(err)),
        ErrorKind::SubscriptionLost | ErrorKind::Protocol if has_client_status => {
            Err(Error::Rejected(err))
        }
        _ => Ok(err.to_string()),
    }
}

/// A uniformly random duration in `[0, max]`.
fn random_wait(max: Duration) -> Duration {
    let max_nanos = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(rand::rng().random_range(0..=max_nanos))
}

async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => sleep_until(at).await,
        None => pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_waits_stay_within_the_bound() {
        let max = Duration::from_millis(20);
        for _ in 0..1000 {
            assert!(random_wait(max) <= max);
        }
        assert_eq!(random_wait(Duration::ZERO), Duration::ZERO);
    }
}
