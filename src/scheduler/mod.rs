//! The V1 scheduler runtime: a background driver that owns the subscription to the leading
//! master, and a cloneable [`Scheduler`] handle that sends calls from any task.
//!
//! The driver SUBSCRIBEs (as a new framework, or resuming `framework_info.id`), keeps the
//! `Mesos-Stream-Id` for every other call, watches heartbeats, resubscribes with capped
//! exponential backoff and jitter after any disconnection (using the framework id learned from
//! SUBSCRIBED), drops the offer cache on every resubscription and acknowledges status updates
//! that carry a uuid. Events reach the caller as a [`futures::Stream`] of [`SchedulerEvent`].
//!
//! ```no_run
//! use futures::StreamExt;
//! use mesos_sdk::client::Client;
//! use mesos_sdk::scheduler::{FrameworkInfoBuilder, Scheduler, SchedulerEvent};
//! use mesos_sdk::v1::scheduler::event::Type;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::builder().endpoint("http://master:5050").build()?;
//! let framework = FrameworkInfoBuilder::new("nobody", "example").build();
//! let (scheduler, mut events) = Scheduler::builder(client, framework).start();
//! while let Some(event) = events.next().await {
//!     match event {
//!         SchedulerEvent::Connected { framework_id, .. } => {
//!             println!("subscribed as {}", framework_id.value);
//!             scheduler.reconcile_all().await?;
//!         }
//!         SchedulerEvent::Event(event) if event.r#type() == Type::Offers => {
//!             let ids = event.offers.iter().flat_map(|o| &o.offers).map(|o| o.id.clone());
//!             scheduler.decline(ids.collect(), None).await?;
//!         }
//!         SchedulerEvent::Terminated(why) => {
//!             eprintln!("scheduler stopped: {why}");
//!             break;
//!         }
//!         other => println!("{other:?}"),
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Disconnection rules:
//! - no event at all (heartbeats included) for [`SchedulerBuilder::heartbeat_misses`] heartbeat
//!   intervals: the stream is closed and the driver resubscribes; the same window bounds a
//!   SUBSCRIBE that gets no SUBSCRIBED;
//! - `ERROR "Framework failed over"` (another instance subscribed with the same id) stops the
//!   driver for good with [`Termination::FailedOver`]; `ERROR "Framework has been removed"` with
//!   [`Termination::FrameworkRemoved`]; other ERRORs resubscribe;
//! - a 403 on any call means the master no longer sees the subscription: the driver resubscribes;
//! - a 409 on UPDATE_FRAMEWORK means the framework was removed meanwhile: the driver stops with
//!   [`Termination::FrameworkRemoved`];
//! - a SUBSCRIBE refused with 401, 400 or another client error stops the driver with
//!   [`Termination::Rejected`].

mod calls_impl;
mod driver;
mod framework;

pub mod calls;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::Stream;
use http::Uri;
use tokio::sync::mpsc;

use crate::client::{CallResponse, Client};
use crate::codec::CodecError;
use crate::v1::scheduler::{Event, OfferConstraints, event};
use crate::v1::{FrameworkId, FrameworkInfo, Offer, OfferId};

pub use framework::{DEFAULT_CAPABILITIES, DEFAULT_FAILOVER_TIMEOUT, FrameworkInfoBuilder};

/// The scheduler endpoint's path.
pub const SCHEDULER_PATH: &str = "/api/v1/scheduler";
/// Heartbeat interval assumed until the master announces one (Mesos' default, 15 s).
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(15);
/// Missed heartbeat intervals after which the connection is considered dead.
pub const DEFAULT_HEARTBEAT_MISSES: u32 = 5;
/// Default shortest wait before resubscribing.
pub const DEFAULT_RECONNECT_BACKOFF_MIN: Duration = Duration::from_secs(1);
/// Default longest wait before resubscribing.
pub const DEFAULT_RECONNECT_BACKOFF_MAX: Duration = Duration::from_secs(15);

/// The text of the ERROR event a superseded subscription receives.
pub const FAILED_OVER_MESSAGE: &str = "Framework failed over";
/// The text of the ERROR event a removed framework receives.
pub const REMOVED_MESSAGE: &str = "Framework has been removed";

/// Why the driver stopped for good.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Termination {
    /// Another scheduler instance subscribed with this framework id (`ERROR "Framework failed
    /// over"`): stop acting, do not resubscribe (HA fencing).
    #[error("another scheduler instance took over the framework: {message}")]
    FailedOver {
        /// The master's text.
        message: String,
    },
    /// The framework id belongs to a removed framework (`ERROR "Framework has been removed"`:
    /// failover timeout elapsed, TEARDOWN). Only a subscription as a new framework can work.
    #[error("the framework has been removed: {message}")]
    FrameworkRemoved {
        /// The master's text.
        message: String,
    },
    /// SUBSCRIBE was refused for a reason retrying cannot fix (401, 400, other 4xx, bad
    /// configuration).
    #[error("SUBSCRIBE refused ({kind:?}, status {status:?}): {message}")]
    Rejected {
        /// The transport error kind.
        kind: crate::client::ErrorKind,
        /// The HTTP status.
        status: Option<u16>,
        /// The master's text.
        message: String,
    },
    /// [`Scheduler::stop`] was called, every handle was dropped, or TEARDOWN was sent.
    #[error("the scheduler was stopped")]
    Stopped,
}

/// What the scheduler runtime tells its user.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SchedulerEvent {
    /// SUBSCRIBED arrived: the framework is connected (again). Reconcile now.
    Connected {
        /// The framework id (persist it).
        framework_id: FrameworkId,
        /// The heartbeat interval the watchdog uses.
        heartbeat_interval: Duration,
        /// The whole SUBSCRIBED payload (master info).
        subscribed: Box<event::Subscribed>,
        /// The master that accepted the subscription.
        endpoint: Uri,
    },
    /// Any other event from the master (OFFERS, UPDATE, HEARTBEAT, ERROR, ...).
    Event(Box<Event>),
    /// Outstanding offers became invalid (the subscription ended): forget them.
    OffersInvalidated {
        /// The ids of the dropped offers.
        offer_ids: Vec<OfferId>,
    },
    /// The connection was lost; the driver resubscribes.
    Disconnected {
        /// Why.
        reason: String,
    },
    /// The driver stopped for good; the stream ends after this.
    Terminated(Termination),
}

/// Errors of [`Scheduler`] calls.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SchedulerError {
    /// No subscription is established right now (before SUBSCRIBED, or while reconnecting).
    #[error("not subscribed")]
    NotSubscribed,
    /// The driver stopped for good.
    #[error("scheduler terminated: {0}")]
    Terminated(Termination),
    /// The call cannot be sent (SUBSCRIBE is the driver's, UNKNOWN is never sent).
    #[error("invalid call: {0}")]
    InvalidCall(String),
    /// The call could not be encoded.
    #[error("encoding the call failed: {0}")]
    Codec(#[from] CodecError),
    /// The transport failed or the master refused the call (403 also makes the driver resubscribe).
    #[error(transparent)]
    Client(#[from] crate::client::Error),
}

/// State shared by the handles and the driver.
#[derive(Debug, Default)]
struct State {
    framework_id: Option<FrameworkId>,
    stream_id: Option<String>,
    offers: HashMap<String, Offer>,
    terminated: Option<Termination>,
    /// TEARDOWN is under way: the end of the stream is expected, not a reason to resubscribe.
    tearing_down: bool,
}

/// A stream id whose subscription a call found lost (403).
#[derive(Debug)]
struct Lost {
    stream_id: String,
    reason: String,
    /// The master said the framework is gone (409 on UPDATE_FRAMEWORK): stop for good.
    removed: bool,
}

/// What a call needs: the transport, the shared state, the way to report a lost subscription.
#[derive(Debug, Clone)]
struct CallContext {
    client: Client,
    path: String,
    state: Arc<Mutex<State>>,
    lost: mpsc::UnboundedSender<Lost>,
}

impl CallContext {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Commands from handles to the driver.
#[derive(Debug)]
enum Command {
    Stop,
}

/// Configures and starts a [`Scheduler`].
#[derive(Debug)]
pub struct SchedulerBuilder {
    client: Client,
    framework_info: FrameworkInfo,
    config: driver::Config,
}

impl SchedulerBuilder {
    /// The endpoint path (default [`SCHEDULER_PATH`]).
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.config.path = path.into();
        self
    }

    /// Acknowledge status updates that carry a uuid automatically, right after handing the
    /// event to the stream (default true). Turn off to acknowledge after durable handling with
    /// [`Scheduler::acknowledge`].
    pub fn auto_acknowledge(mut self, enabled: bool) -> Self {
        self.config.auto_acknowledge = enabled;
        self
    }

    /// Replaces the master's heartbeat interval for the watchdog (tests use milliseconds).
    pub fn heartbeat_interval(mut self, interval: Duration) -> Self {
        self.config.heartbeat_override = Some(interval);
        self
    }

    /// How many heartbeat intervals without any event mean a dead connection (default
    /// [`DEFAULT_HEARTBEAT_MISSES`]).
    pub fn heartbeat_misses(mut self, misses: u32) -> Self {
        self.config.heartbeat_misses = misses.max(1);
        self
    }

    /// Shortest and longest wait before resubscribing (defaults 1 s and 15 s); the wait doubles
    /// per failed attempt, with jitter.
    pub fn reconnect_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.config.backoff_min = min;
        self.config.backoff_max = max.max(min);
        self
    }

    /// Roles to subscribe suppressed.
    pub fn suppressed_roles<I, S>(mut self, roles: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.config.suppressed_roles = roles.into_iter().map(Into::into).collect();
        self
    }

    /// Offer constraints to subscribe with.
    pub fn offer_constraints(mut self, constraints: OfferConstraints) -> Self {
        self.config.offer_constraints = Some(constraints);
        self
    }

    /// Spawns the driver on the current tokio runtime and returns the handle and the events.
    ///
    /// The driver runs until it terminates (see [`Termination`]), [`Scheduler::stop`] is called,
    /// or every [`Scheduler`] handle is dropped.
    pub fn start(self) -> (Scheduler, SchedulerEvents) {
        let state = Arc::new(Mutex::new(State {
            framework_id: self.framework_info.id.clone(),
            ..State::default()
        }));
        let (lost_tx, lost_rx) = mpsc::unbounded_channel();
        let (command_tx, command_rx) = mpsc::unbounded_channel();
        let (event_tx, event_rx) = mpsc::unbounded_channel();
        let context = CallContext {
            client: self.client,
            path: self.config.path.clone(),
            state,
            lost: lost_tx,
        };
        let driver = driver::Driver::new(
            context.clone(),
            self.framework_info,
            self.config,
            command_rx,
            lost_rx,
            event_tx,
        );
        tokio::spawn(driver.run());
        (
            Scheduler {
                context,
                commands: command_tx,
            },
            SchedulerEvents { events: event_rx },
        )
    }
}

/// The events of a running scheduler. Ends after [`SchedulerEvent::Terminated`].
///
/// Events are buffered without bound so that a slow consumer never stalls heartbeat handling.
#[derive(Debug)]
pub struct SchedulerEvents {
    events: mpsc::UnboundedReceiver<SchedulerEvent>,
}

impl Stream for SchedulerEvents {
    type Item = SchedulerEvent;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<SchedulerEvent>> {
        self.events.poll_recv(cx)
    }
}

/// A cheap-to-clone handle to a running scheduler: sends calls with the current stream id and
/// framework id, reads the offer cache and connection state.
///
/// See the [module documentation](self) for an example.
#[derive(Debug, Clone)]
pub struct Scheduler {
    context: CallContext,
    commands: mpsc::UnboundedSender<Command>,
}

impl Scheduler {
    /// A builder for a scheduler subscribing with `framework_info` through `client`.
    pub fn builder(client: Client, framework_info: FrameworkInfo) -> SchedulerBuilder {
        SchedulerBuilder {
            client,
            framework_info,
            config: driver::Config::default(),
        }
    }

    /// The framework id (given, or learned from SUBSCRIBED).
    pub fn framework_id(&self) -> Option<FrameworkId> {
        self.context.state().framework_id.clone()
    }

    /// The current `Mesos-Stream-Id`, while subscribed.
    pub fn stream_id(&self) -> Option<String> {
        self.context.state().stream_id.clone()
    }

    /// Whether a subscription is established right now.
    pub fn is_connected(&self) -> bool {
        self.context.state().stream_id.is_some()
    }

    /// Why the driver stopped, once it has.
    pub fn termination(&self) -> Option<Termination> {
        self.context.state().terminated.clone()
    }

    /// The outstanding offers (received, not yet rescinded, accepted or declined through this
    /// handle; emptied on every disconnection).
    pub fn offers(&self) -> Vec<Offer> {
        self.context.state().offers.values().cloned().collect()
    }

    /// One outstanding offer.
    pub fn offer(&self, id: &OfferId) -> Option<Offer> {
        self.context.state().offers.get(&id.value).cloned()
    }

    /// Stops the driver without TEARDOWN (tasks keep running for the failover timeout).
    pub fn stop(&self) {
        let _ = self.commands.send(Command::Stop);
    }

    /// Sends any call but SUBSCRIBE. The top-level `framework_id` is filled in when unset.
    pub async fn call(
        &self,
        call: crate::v1::scheduler::Call,
    ) -> Result<CallResponse, SchedulerError> {
        calls_impl::send(&self.context, call).await
    }
}
