//! The scheduler driver task: the one owner of the scheduler's state. It runs the subscription,
//! its heartbeat watchdog, the resubscription backoff and the failover grace, keeps the offer
//! cache, acknowledges updates in automatic mode, and serves the handles' commands wherever it
//! waits (on the master, on a full event stream, in backoff).

use std::collections::VecDeque;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::ack::{AckMode, AckToken, OperationAckToken};
use super::control::{Control, Interrupt, SessionEnd};
use super::events::{EventSender, ExitStatus, SchedulerEvent};
use super::handle::{Caller, Command, Shared};
use super::{
    DEFAULT_HEARTBEAT_INTERVAL, DEFAULT_HEARTBEAT_MISSES, DEFAULT_RECONNECT_BACKOFF_MAX,
    DEFAULT_RECONNECT_BACKOFF_MIN, FAILED_OVER_MESSAGE, REMOVED_MESSAGE, SCHEDULER_PATH,
    Termination, calls, calls_impl,
};
use crate::client::{CallRequest, ErrorKind};
use crate::v1::scheduler::Event;
use crate::v1::scheduler::OfferConstraints;
use crate::v1::scheduler::event::Type as EventType;
use crate::v1::{FrameworkInfo, OfferId};

/// Driver settings (see [`SchedulerBuilder`](super::SchedulerBuilder)).
#[derive(Debug, Clone)]
pub(super) struct Config {
    pub(super) path: String,
    pub(super) ack_mode: AckMode,
    pub(super) heartbeat_override: Option<Duration>,
    pub(super) heartbeat_misses: u32,
    pub(super) backoff_min: Duration,
    pub(super) backoff_max: Duration,
    pub(super) suppressed_roles: Vec<String>,
    pub(super) offer_constraints: Option<OfferConstraints>,
    pub(super) event_capacity: Option<usize>,
    pub(super) failover_grace: bool,
    pub(super) subscribe_guard: Option<GuardFn>,
}

/// The subscribe guard, printable for the config's `Debug`.
#[derive(Clone)]
pub(super) struct GuardFn(pub(super) super::SubscribeGuard);

impl std::fmt::Debug for GuardFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SubscribeGuard")
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            path: SCHEDULER_PATH.to_owned(),
            ack_mode: AckMode::Automatic,
            heartbeat_override: None,
            heartbeat_misses: DEFAULT_HEARTBEAT_MISSES,
            backoff_min: DEFAULT_RECONNECT_BACKOFF_MIN,
            backoff_max: DEFAULT_RECONNECT_BACKOFF_MAX,
            suppressed_roles: Vec::new(),
            offer_constraints: None,
            event_capacity: None,
            failover_grace: true,
            subscribe_guard: None,
        }
    }
}

/// What the driver knows about the subscription under way.
struct Session {
    stream_id: String,
    endpoint: http::Uri,
    /// The watchdog window: no event for this long means a dead connection.
    window: Duration,
    connected: bool,
}

pub(super) struct Driver {
    /// Sends the automatic acknowledgements (holds no handle: the driver stops with the last).
    caller: Caller,
    framework_info: FrameworkInfo,
    config: Config,
    control: Control,
    events: EventSender,
    /// Until when each SUBSCRIBE the watchdog abandoned may still explain a failover.
    abandoned: VecDeque<Instant>,
    warned_heartbeat_override: bool,
}

impl Driver {
    pub(super) fn new(
        caller: Caller,
        framework_info: FrameworkInfo,
        config: Config,
        state: watch::Sender<Shared>,
        commands: mpsc::UnboundedReceiver<Command>,
        events: EventSender,
    ) -> Self {
        Self {
            caller,
            framework_info,
            config,
            control: Control {
                commands,
                state,
                live_stream: None,
                tearing_down: false,
            },
            events,
            abandoned: VecDeque::new(),
            warned_heartbeat_override: false,
        }
    }

    fn watchdog_window(&self, announced: Option<Duration>) -> Duration {
        self.heartbeat_interval(announced)
            .saturating_mul(self.config.heartbeat_misses)
    }

    fn heartbeat_interval(&self, announced: Option<Duration>) -> Duration {
        self.config
            .heartbeat_override
            .or(announced)
            .unwrap_or(DEFAULT_HEARTBEAT_INTERVAL)
    }

    fn backoff(&self, attempt: u32) -> Duration {
        crate::backoff::exponential_with_jitter(
            self.config.backoff_min,
            self.config.backoff_max,
            attempt,
        )
    }

    async fn emit(&mut self, event: SchedulerEvent) -> Result<(), Interrupt> {
        self.control.emit(&self.events, event).await
    }

    pub(super) async fn run(mut self) {
        let mut failures = 0u32;
        let termination = loop {
            let end = self.session().await;
            self.control.live_stream = None;
            match end {
                SessionEnd::Terminated(termination) => break termination,
                SessionEnd::Lost { reason, connected } => {
                    if self.control.tearing_down {
                        tracing::debug!(%reason, "stream ended after TEARDOWN");
                        break Termination::Stopped;
                    }
                    if self.invalidate(&reason, connected).await.is_err() {
                        break Termination::Stopped;
                    }
                    if connected {
                        failures = 0;
                    }
                    let delay = self.backoff(failures);
                    failures = failures.saturating_add(1);
                    tracing::info!(%reason, ?delay, "resubscribing after backoff");
                    // Outside a subscription only Stop interrupts.
                    if self.control.serve(tokio::time::sleep(delay)).await.is_err() {
                        break Termination::Stopped;
                    }
                }
            }
        };
        tracing::info!(%termination, "scheduler driver stopped");
        // The last events may wait for room on a bounded stream; no handle may wait on the driver
        // meanwhile.
        self.control.close();
        let mut offer_ids = Vec::new();
        self.control.state.send_modify(|state| {
            state.stream_id = None;
            state.termination = Some(termination.clone());
            offer_ids = drain_offers(state);
        });
        if !offer_ids.is_empty() {
            self.deliver(SchedulerEvent::OffersInvalidated { offer_ids })
                .await;
        }
        self.deliver(SchedulerEvent::Terminated(termination)).await;
    }

    /// Hands over one of the last events, waiting for room without serving commands.
    async fn deliver(&self, event: SchedulerEvent) {
        let delivered = match &self.events {
            EventSender::Unbounded(tx) => tx.send(event).is_ok(),
            EventSender::Bounded(tx) => tx.send(event).await.is_ok(),
        };
        if !delivered {
            tracing::trace!("scheduler event dropped: nobody listens");
        }
    }

    /// Forgets the subscription: stream id and offers go, the user hears about it.
    async fn invalidate(&mut self, reason: &str, connected: bool) -> Result<(), Interrupt> {
        let mut offer_ids = Vec::new();
        self.control.state.send_modify(|state| {
            state.stream_id = None;
            offer_ids = drain_offers(state);
        });
        if !offer_ids.is_empty() {
            self.emit(SchedulerEvent::OffersInvalidated { offer_ids })
                .await?;
        }
        if connected {
            tracing::warn!(%reason, "disconnected from the master");
            self.emit(SchedulerEvent::Disconnected {
                reason: reason.to_owned(),
            })
            .await?;
        } else {
            tracing::warn!(%reason, "subscription attempt failed");
        }
        Ok(())
    }

    fn subscribe_request(&self) -> Result<CallRequest, String> {
        let mut info = self.framework_info.clone();
        info.id = self.control.state.borrow().framework_id.clone();
        let call = calls::subscribe(
            info,
            self.config.suppressed_roles.clone(),
            self.config.offer_constraints.clone(),
        );
        let body = self
            .caller
            .client
            .format()
            .encode(&call)
            .map_err(|err| format!("encoding SUBSCRIBE failed: {err}"))?;
        Ok(CallRequest {
            path: self.config.path.clone(),
            body,
            stream_id: None,
        })
    }

    /// Notes a SUBSCRIBE given up on before SUBSCRIBED: the master may still process it later.
    fn abandon_subscribe(&mut self, window: Duration) {
        if self.config.failover_grace {
            self.abandoned.push_back(Instant::now() + window);
        }
    }

    /// Whether a `Framework failed over` may be the late effect of a SUBSCRIBE of our own that
    /// was abandoned within the watchdog window; uses up that SUBSCRIBE's grace.
    fn failover_grace(&mut self) -> bool {
        let now = Instant::now();
        self.abandoned.retain(|until| *until >= now);
        self.abandoned.pop_front().is_some()
    }

    /// One subscription, from SUBSCRIBE to its end.
    async fn session(&mut self) -> SessionEnd {
        // Asked right before the SUBSCRIBE goes out, after any backoff: a process that was paused
        // (SIGSTOP, a long GC-like stall) past its leadership must not take the framework back.
        if let Some(GuardFn(guard)) = &self.config.subscribe_guard {
            if let Err(reason) = guard() {
                tracing::warn!(%reason, "subscribe guard refused to subscribe");
                return SessionEnd::Terminated(Termination::NotAllowed { reason });
            }
        }
        let request = match self.subscribe_request() {
            Ok(request) => request,
            Err(message) => {
                return SessionEnd::Terminated(Termination::Rejected {
                    kind: ErrorKind::Config,
                    status: None,
                    message,
                });
            }
        };
        let window = self.watchdog_window(None);
        let client = self.caller.client.clone();
        let subscribing = tokio::time::timeout(window, client.subscribe(request));
        let answer = match self.control.serve(subscribing).await {
            Ok(answer) => answer,
            Err(interrupt) => return interrupt.end(false),
        };
        let subscription = match answer {
            Err(_) => {
                self.abandon_subscribe(window);
                return lost(format!("no answer to SUBSCRIBE within {window:?}"), false);
            }
            Ok(Err(err)) => {
                return match err.kind() {
                    ErrorKind::Unauthorized | ErrorKind::BadRequest | ErrorKind::Config => {
                        SessionEnd::Terminated(Termination::Rejected {
                            kind: err.kind(),
                            status: err.status().map(|s| s.as_u16()),
                            message: err.message().to_owned(),
                        })
                    }
                    _ => lost(format!("SUBSCRIBE failed: {err}"), false),
                };
            }
            Ok(Ok(subscription)) => subscription,
        };
        let Some(stream_id) = subscription.stream_id.clone() else {
            return lost(
                "SUBSCRIBE answer carried no Mesos-Stream-Id".to_owned(),
                false,
            );
        };
        let mut session = Session {
            stream_id,
            endpoint: subscription.endpoint.clone(),
            window,
            connected: false,
        };
        let mut events = subscription.into_events::<Event>();
        tracing::debug!(endpoint = %session.endpoint, stream_id = %session.stream_id, "event stream open");
        loop {
            // The watchdog's clock runs only while the driver waits on the socket: time spent
            // waiting for room on a bounded event stream does not count.
            let next = self
                .control
                .serve(tokio::time::timeout(session.window, events.next()))
                .await;
            let event = match next {
                Err(interrupt) => return interrupt.end(session.connected),
                Ok(Err(_)) => {
                    if !session.connected {
                        self.abandon_subscribe(session.window);
                    }
                    return lost(
                        format!(
                            "no event for {:?}: heartbeat watchdog fired",
                            session.window
                        ),
                        session.connected,
                    );
                }
                Ok(Ok(None)) => {
                    return lost(
                        "the master closed the event stream".into(),
                        session.connected,
                    );
                }
                Ok(Ok(Some(Err(err)))) => {
                    return lost(format!("event stream failed: {err}"), session.connected);
                }
                Ok(Ok(Some(Ok(event)))) => event,
            };
            if let Err(end) = self.dispatch(&mut session, *event).await {
                return end;
            }
        }
    }

    /// Acts on one event of the master and hands it to the user, typed.
    async fn dispatch(&mut self, session: &mut Session, event: Event) -> Result<(), SessionEnd> {
        let connected = session.connected;
        let interrupted = |interrupt: Interrupt| interrupt.end(connected);
        let typed = match event.r#type() {
            EventType::Subscribed if event.subscribed.is_some() => {
                return self.subscribed(session, event).await;
            }
            EventType::Subscribed => {
                return Err(lost("SUBSCRIBED without payload".into(), connected));
            }
            EventType::Offers if event.offers.is_some() => {
                let offers = event.offers.map(|o| o.offers).unwrap_or_default();
                self.control.state.send_modify(|state| {
                    for offer in &offers {
                        state.offers.insert(offer.id.value.clone(), offer.clone());
                    }
                });
                SchedulerEvent::Offers(offers)
            }
            EventType::InverseOffers if event.inverse_offers.is_some() => {
                let inverse = event.inverse_offers.map(|o| o.inverse_offers);
                SchedulerEvent::InverseOffers(inverse.unwrap_or_default())
            }
            EventType::Rescind if event.rescind.is_some() => {
                let offer_id = event.rescind.map(|r| r.offer_id).unwrap_or_default();
                self.control
                    .state
                    .send_if_modified(|state| state.offers.remove(&offer_id.value).is_some());
                SchedulerEvent::Rescind(offer_id)
            }
            EventType::RescindInverseOffer if event.rescind_inverse_offer.is_some() => {
                let rescind = event.rescind_inverse_offer.map(|r| r.inverse_offer_id);
                SchedulerEvent::RescindInverseOffer(rescind.unwrap_or_default())
            }
            EventType::Update if event.update.is_some() => {
                let status = Box::new(event.update.map(|u| u.status).unwrap_or_default());
                let token = AckToken::from_status(&status);
                match self.config.ack_mode {
                    AckMode::Explicit => SchedulerEvent::Update { status, ack: token },
                    AckMode::Automatic => {
                        self.emit(SchedulerEvent::Update { status, ack: None })
                            .await
                            .map_err(interrupted)?;
                        if let Some(token) = token {
                            self.spawn_acknowledgement(token.into_call());
                        }
                        return Ok(());
                    }
                }
            }
            EventType::UpdateOperationStatus if event.update_operation_status.is_some() => {
                let status = event.update_operation_status.map(|u| u.status);
                let status = Box::new(status.unwrap_or_default());
                let token = OperationAckToken::from_status(&status);
                match self.config.ack_mode {
                    AckMode::Explicit => SchedulerEvent::OperationUpdate { status, ack: token },
                    AckMode::Automatic => {
                        self.emit(SchedulerEvent::OperationUpdate { status, ack: None })
                            .await
                            .map_err(interrupted)?;
                        if let Some(token) = token {
                            self.spawn_acknowledgement(token.into_call());
                        }
                        return Ok(());
                    }
                }
            }
            EventType::Message if event.message.is_some() => {
                let message = event.message.unwrap_or_default();
                SchedulerEvent::Message {
                    agent_id: message.agent_id,
                    executor_id: message.executor_id,
                    data: message.data,
                }
            }
            EventType::Failure if event.failure.is_some() => {
                let failure = event.failure.unwrap_or_default();
                SchedulerEvent::Failure {
                    agent_id: failure.agent_id,
                    executor_id: failure.executor_id,
                    status: failure.status.map(ExitStatus::from_wait_status),
                }
            }
            EventType::Error => {
                let message = event.error.map(|e| e.message).unwrap_or_default();
                self.emit(SchedulerEvent::Error(message.clone()))
                    .await
                    .map_err(interrupted)?;
                return Err(self.error_end(message, connected));
            }
            EventType::Heartbeat => SchedulerEvent::Heartbeat,
            kind => {
                tracing::debug!(?kind, "event without a typed variant passed on whole");
                SchedulerEvent::Other(Box::new(event))
            }
        };
        self.emit(typed).await.map_err(interrupted)
    }

    /// SUBSCRIBED: publish the subscription, warn about a too short heartbeat override.
    async fn subscribed(&mut self, session: &mut Session, event: Event) -> Result<(), SessionEnd> {
        let Some(subscribed) = event.subscribed else {
            return Err(lost("SUBSCRIBED without payload".into(), session.connected));
        };
        let announced = subscribed
            .heartbeat_interval_seconds
            .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
            .filter(|interval| !interval.is_zero());
        if let (Some(override_), Some(announced)) = (self.config.heartbeat_override, announced)
            && override_ < announced
            && !self.warned_heartbeat_override
        {
            self.warned_heartbeat_override = true;
            tracing::warn!(
                heartbeat_override = ?override_,
                announced = ?announced,
                "the heartbeat override is shorter than the interval the master announced: the \
                 watchdog will drop healthy subscriptions; the override is meant for test masters"
            );
        }
        let heartbeat_interval = self.heartbeat_interval(announced);
        session.window = self.watchdog_window(announced);
        let framework_id = subscribed.framework_id.clone();
        let stream_id = session.stream_id.clone();
        self.control.state.send_modify(|state| {
            state.framework_id = Some(framework_id.clone());
            state.stream_id = Some(stream_id.clone());
        });
        self.control.live_stream = Some(session.stream_id.clone());
        session.connected = true;
        tracing::info!(
            framework_id = %framework_id.value,
            endpoint = %session.endpoint,
            ?heartbeat_interval,
            "subscribed"
        );
        self.emit(SchedulerEvent::Connected {
            framework_id,
            heartbeat_interval,
            subscribed,
            endpoint: session.endpoint.clone(),
        })
        .await
        .map_err(|interrupt| interrupt.end(true))
    }

    /// How an ERROR event ends the subscription.
    fn error_end(&mut self, message: String, connected: bool) -> SessionEnd {
        if message == FAILED_OVER_MESSAGE {
            if self.failover_grace() {
                tracing::warn!(
                    "'{FAILED_OVER_MESSAGE}' within the watchdog window after a SUBSCRIBE of our \
                     own was abandoned: the master most likely processed that SUBSCRIBE late; \
                     resubscribing"
                );
                return lost(
                    format!(
                        "ERROR event: {message} (blamed on an abandoned SUBSCRIBE of our own; \
                         resubscribing)"
                    ),
                    connected,
                );
            }
            return SessionEnd::Terminated(Termination::FailedOver { message });
        }
        if message == REMOVED_MESSAGE {
            return SessionEnd::Terminated(Termination::FrameworkRemoved { message });
        }
        lost(format!("ERROR event: {message}"), connected)
    }

    fn spawn_acknowledgement(&self, call: crate::v1::scheduler::Call) {
        let caller = self.caller.clone();
        tokio::spawn(async move {
            if let Err(err) = calls_impl::send(&caller, call).await {
                tracing::warn!(error = %err, "automatic acknowledgement failed; the agent will resend the update");
            }
        });
    }
}

fn lost(reason: String, connected: bool) -> SessionEnd {
    SessionEnd::Lost { reason, connected }
}

fn drain_offers(state: &mut Shared) -> Vec<OfferId> {
    state.offers.drain().map(|(_, offer)| offer.id).collect()
}
