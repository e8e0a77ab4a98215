//! The scheduler driver task: owns the subscription, its heartbeat watchdog, the resubscription
//! backoff, the offer cache and automatic acknowledgements.

use std::time::Duration;

use futures::StreamExt;
use tokio::sync::mpsc;

use super::{
    CallContext, Command, DEFAULT_HEARTBEAT_INTERVAL, DEFAULT_HEARTBEAT_MISSES,
    DEFAULT_RECONNECT_BACKOFF_MAX, DEFAULT_RECONNECT_BACKOFF_MIN, FAILED_OVER_MESSAGE, Lost,
    REMOVED_MESSAGE, SCHEDULER_PATH, SchedulerEvent, Termination, calls, calls_impl,
};
use crate::client::{CallRequest, ErrorKind};
use crate::v1::scheduler::event::Type as EventType;
use crate::v1::scheduler::{Event, OfferConstraints};
use crate::v1::{FrameworkInfo, OfferId};

/// Driver settings (see [`super::SchedulerBuilder`]).
#[derive(Debug, Clone)]
pub(super) struct Config {
    pub(super) path: String,
    pub(super) auto_acknowledge: bool,
    pub(super) heartbeat_override: Option<Duration>,
    pub(super) heartbeat_misses: u32,
    pub(super) backoff_min: Duration,
    pub(super) backoff_max: Duration,
    pub(super) suppressed_roles: Vec<String>,
    pub(super) offer_constraints: Option<OfferConstraints>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            path: SCHEDULER_PATH.to_owned(),
            auto_acknowledge: true,
            heartbeat_override: None,
            heartbeat_misses: DEFAULT_HEARTBEAT_MISSES,
            backoff_min: DEFAULT_RECONNECT_BACKOFF_MIN,
            backoff_max: DEFAULT_RECONNECT_BACKOFF_MAX,
            suppressed_roles: Vec::new(),
            offer_constraints: None,
        }
    }
}

/// How one subscription ended.
enum SessionEnd {
    /// Resubscribe after backoff. `connected` says whether SUBSCRIBED had arrived.
    Lost { reason: String, connected: bool },
    /// Stop for good.
    Terminated(Termination),
}

pub(super) struct Driver {
    context: CallContext,
    framework_info: FrameworkInfo,
    config: Config,
    commands: mpsc::UnboundedReceiver<Command>,
    lost: mpsc::UnboundedReceiver<Lost>,
    events: mpsc::UnboundedSender<SchedulerEvent>,
}

impl Driver {
    pub(super) fn new(
        context: CallContext,
        framework_info: FrameworkInfo,
        config: Config,
        commands: mpsc::UnboundedReceiver<Command>,
        lost: mpsc::UnboundedReceiver<Lost>,
        events: mpsc::UnboundedSender<SchedulerEvent>,
    ) -> Self {
        Self {
            context,
            framework_info,
            config,
            commands,
            lost,
            events,
        }
    }

    fn emit(&self, event: SchedulerEvent) {
        if self.events.send(event).is_err() {
            tracing::trace!("scheduler events dropped: nobody listens");
        }
    }

    fn watchdog_window(&self, announced: Option<Duration>) -> Duration {
        let interval = self
            .config
            .heartbeat_override
            .or(announced)
            .unwrap_or(DEFAULT_HEARTBEAT_INTERVAL);
        interval.saturating_mul(self.config.heartbeat_misses)
    }

    fn backoff(&self, attempt: u32) -> Duration {
        crate::backoff::exponential_with_jitter(
            self.config.backoff_min,
            self.config.backoff_max,
            attempt,
        )
    }

    pub(super) async fn run(mut self) {
        let mut failures = 0u32;
        let termination = loop {
            match self.session().await {
                SessionEnd::Terminated(termination) => break termination,
                SessionEnd::Lost { reason, connected } => {
                    if self.context.state().tearing_down {
                        tracing::debug!(%reason, "stream ended after TEARDOWN");
                        break Termination::Stopped;
                    }
                    self.invalidate(&reason, connected);
                    if connected {
                        failures = 0;
                    }
                    let delay = self.backoff(failures);
                    failures = failures.saturating_add(1);
                    tracing::info!(%reason, ?delay, "resubscribing after backoff");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        command = self.commands.recv() => match command {
                            Some(Command::Stop) | None => break Termination::Stopped,
                        },
                    }
                }
            }
        };
        tracing::info!(%termination, "scheduler driver stopped");
        let offer_ids = {
            let mut state = self.context.state();
            state.stream_id = None;
            state.terminated = Some(termination.clone());
            drain_offers(&mut state)
        };
        if !offer_ids.is_empty() {
            self.emit(SchedulerEvent::OffersInvalidated { offer_ids });
        }
        self.emit(SchedulerEvent::Terminated(termination));
    }

    /// Forgets the subscription: stream id and offers go, the user hears about it.
    fn invalidate(&self, reason: &str, connected: bool) {
        let offer_ids = {
            let mut state = self.context.state();
            state.stream_id = None;
            drain_offers(&mut state)
        };
        if !offer_ids.is_empty() {
            self.emit(SchedulerEvent::OffersInvalidated { offer_ids });
        }
        if connected {
            tracing::warn!(%reason, "disconnected from the master");
            self.emit(SchedulerEvent::Disconnected {
                reason: reason.to_owned(),
            });
        } else {
            tracing::warn!(%reason, "subscription attempt failed");
        }
    }

    fn subscribe_request(&self) -> Result<CallRequest, String> {
        let mut info = self.framework_info.clone();
        info.id = self.context.state().framework_id.clone();
        let call = calls::subscribe(
            info,
            self.config.suppressed_roles.clone(),
            self.config.offer_constraints.clone(),
        );
        let body = self
            .context
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

    /// One subscription, from SUBSCRIBE to its end.
    async fn session(&mut self) -> SessionEnd {
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
        let mut window = self.watchdog_window(None);
        let client = self.context.client.clone();
        let subscribing = tokio::time::timeout(window, client.subscribe(request));
        let subscription = tokio::select! {
            answer = subscribing => match answer {
                Err(_) => {
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
            },
            command = self.commands.recv() => match command {
                Some(Command::Stop) | None => return SessionEnd::Terminated(Termination::Stopped),
            },
        };
        let stream_id = subscription.stream_id.clone();
        let endpoint = subscription.endpoint.clone();
        let mut events = subscription.into_events::<Event>();
        let Some(stream_id) = stream_id else {
            return lost(
                "SUBSCRIBE answer carried no Mesos-Stream-Id".to_owned(),
                false,
            );
        };
        tracing::debug!(%endpoint, %stream_id, "event stream open");
        let mut connected = false;
        loop {
            let event = tokio::select! {
                biased;
                command = self.commands.recv() => match command {
                    Some(Command::Stop) | None => return SessionEnd::Terminated(Termination::Stopped),
                },
                report = self.lost.recv() => {
                    match report {
                        Some(report) if report.stream_id == stream_id && report.removed => {
                            return SessionEnd::Terminated(Termination::FrameworkRemoved {
                                message: report.reason,
                            });
                        }
                        Some(report) if report.stream_id == stream_id => {
                            return lost(report.reason, connected);
                        }
                        _ => continue,
                    }
                }
                event = tokio::time::timeout(window, events.next()) => event,
            };
            let event = match event {
                Err(_) => {
                    return lost(
                        format!("no event for {window:?}: heartbeat watchdog fired"),
                        connected,
                    );
                }
                Ok(None) => return lost("the master closed the event stream".into(), connected),
                Ok(Some(Err(err))) => {
                    return lost(format!("event stream failed: {err}"), connected);
                }
                Ok(Some(Ok(event))) => event,
            };
            match event.r#type() {
                EventType::Subscribed => {
                    let Some(subscribed) = event.subscribed else {
                        return lost("SUBSCRIBED without payload".into(), connected);
                    };
                    let announced = subscribed
                        .heartbeat_interval_seconds
                        .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
                        .filter(|interval| !interval.is_zero());
                    let heartbeat_interval = self
                        .config
                        .heartbeat_override
                        .or(announced)
                        .unwrap_or(DEFAULT_HEARTBEAT_INTERVAL);
                    window = self.watchdog_window(announced);
                    {
                        let mut state = self.context.state();
                        state.framework_id = Some(subscribed.framework_id.clone());
                        state.stream_id = Some(stream_id.clone());
                    }
                    connected = true;
                    tracing::info!(
                        framework_id = %subscribed.framework_id.value,
                        %endpoint,
                        ?heartbeat_interval,
                        "subscribed"
                    );
                    self.emit(SchedulerEvent::Connected {
                        framework_id: subscribed.framework_id.clone(),
                        heartbeat_interval,
                        subscribed,
                        endpoint: endpoint.clone(),
                    });
                }
                EventType::Offers => {
                    if let Some(offers) = &event.offers {
                        let mut state = self.context.state();
                        for offer in &offers.offers {
                            state.offers.insert(offer.id.value.clone(), offer.clone());
                        }
                    }
                    self.emit(SchedulerEvent::Event(event));
                }
                EventType::Rescind => {
                    if let Some(rescind) = &event.rescind {
                        self.context.state().offers.remove(&rescind.offer_id.value);
                    }
                    self.emit(SchedulerEvent::Event(event));
                }
                EventType::Update => {
                    let ack = event
                        .update
                        .as_ref()
                        .filter(|_| self.config.auto_acknowledge)
                        .and_then(|update| calls::acknowledge(&update.status));
                    self.emit(SchedulerEvent::Event(event));
                    if let Some(ack) = ack {
                        self.spawn_acknowledgement(ack);
                    }
                }
                EventType::UpdateOperationStatus => {
                    let ack = event
                        .update_operation_status
                        .as_ref()
                        .filter(|_| self.config.auto_acknowledge)
                        .and_then(|update| calls::acknowledge_operation_status(&update.status));
                    self.emit(SchedulerEvent::Event(event));
                    if let Some(ack) = ack {
                        self.spawn_acknowledgement(ack);
                    }
                }
                EventType::Error => {
                    let message = event
                        .error
                        .as_ref()
                        .map(|error| error.message.clone())
                        .unwrap_or_default();
                    self.emit(SchedulerEvent::Event(event));
                    if message == FAILED_OVER_MESSAGE {
                        return SessionEnd::Terminated(Termination::FailedOver { message });
                    }
                    if message == REMOVED_MESSAGE {
                        return SessionEnd::Terminated(Termination::FrameworkRemoved { message });
                    }
                    return lost(format!("ERROR event: {message}"), connected);
                }
                EventType::Unknown => {
                    tracing::debug!("event of unknown type passed on");
                    self.emit(SchedulerEvent::Event(event));
                }
                _ => self.emit(SchedulerEvent::Event(event)),
            }
        }
    }

    fn spawn_acknowledgement(&self, call: crate::v1::scheduler::Call) {
        let context = self.context.clone();
        tokio::spawn(async move {
            if let Err(err) = calls_impl::send(&context, call).await {
                tracing::warn!(error = %err, "automatic acknowledgement failed; the agent will resend the update");
            }
        });
    }
}

fn lost(reason: String, connected: bool) -> SessionEnd {
    SessionEnd::Lost { reason, connected }
}

fn drain_offers(state: &mut super::State) -> Vec<OfferId> {
    state.offers.drain().map(|(_, offer)| offer.id).collect()
}
