//! [`SchedulerBuilder`]: the driver's settings, and the start that wires the handle, the driver
//! task and the event stream together.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::ack::AckMode;
use super::driver::{Config, Driver};
use super::events::{self, SchedulerEvents};
use super::handle::{Caller, CommandSender, Scheduler, Shared};
use crate::client::Client;
use crate::v1::FrameworkInfo;
use crate::v1::scheduler::OfferConstraints;

/// Configures and starts a [`Scheduler`].
#[derive(Debug)]
pub struct SchedulerBuilder {
    client: Client,
    framework_info: FrameworkInfo,
    config: Config,
}

impl Scheduler {
    /// A builder for a scheduler subscribing with `framework_info` through `client`.
    pub fn builder(client: Client, framework_info: FrameworkInfo) -> SchedulerBuilder {
        SchedulerBuilder {
            client,
            framework_info,
            config: Config::default(),
        }
    }
}

impl SchedulerBuilder {
    /// The endpoint path (default [`SCHEDULER_PATH`](super::SCHEDULER_PATH)).
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.config.path = path.into();
        self
    }

    /// How status updates are acknowledged (default [`AckMode::Automatic`]; see [`AckMode`]).
    pub fn ack_mode(mut self, mode: AckMode) -> Self {
        self.config.ack_mode = mode;
        self
    }

    /// Replaces the heartbeat interval the master announces in SUBSCRIBED for the watchdog.
    ///
    /// Meant for test masters that heartbeat fast (mesos-local's `heartbeat_interval`). A real
    /// Mesos master heartbeats every 15 s and has no flag to change that: an override below the
    /// announced interval makes the watchdog drop healthy subscriptions, so the driver logs a
    /// warning when SUBSCRIBED announces a longer interval than the override.
    pub fn heartbeat_interval(mut self, interval: Duration) -> Self {
        self.config.heartbeat_override = Some(interval);
        self
    }

    /// How many heartbeat intervals without any event mean a dead connection (default
    /// [`DEFAULT_HEARTBEAT_MISSES`](super::DEFAULT_HEARTBEAT_MISSES)).
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

    /// Bounds the event stream to `capacity` events (at least 1; default: unbounded).
    ///
    /// While the stream is full the driver stops reading from the master (back-pressure: TCP
    /// holds the master's events, Mesos buffers the rest). It still serves the handles meanwhile
    /// (offer bookkeeping, stop, lost subscriptions). The heartbeat watchdog counts only the time
    /// the driver actually waits on the socket, so heartbeats held up by a slow consumer never
    /// trip it: once there is room, the driver reads what arrived meanwhile.
    pub fn event_capacity(mut self, capacity: usize) -> Self {
        self.config.event_capacity = Some(capacity.max(1));
        self
    }

    /// Whether a `Framework failed over` ERROR may be blamed on a SUBSCRIBE of our own that the
    /// watchdog abandoned (default true).
    ///
    /// A SUBSCRIBE the watchdog gave up on may still reach the master after the resubscription
    /// that replaced it; the master then "fails over" the live subscription to the dead
    /// connection. With the grace on, a `Framework failed over` that arrives within the watchdog
    /// window after such an abandoned SUBSCRIBE makes the driver resubscribe, once per abandoned
    /// SUBSCRIBE, instead of stopping with [`Termination::FailedOver`](super::Termination).
    /// Any other `Framework failed over` stops the driver.
    ///
    /// With high availability on, the HA layer's leadership is the authority on whether this
    /// instance should act: turn the grace off and let the leader election decide (a leader that
    /// still holds its lease subscribes again; one that lost it stays stopped).
    pub fn failover_grace(mut self, enabled: bool) -> Self {
        self.config.failover_grace = enabled;
        self
    }

    /// A check asked right before every SUBSCRIBE, the first one and each resubscription (after
    /// the backoff): when it answers `Err(reason)`, the driver sends nothing and stops with
    /// [`Termination::NotAllowed`](super::Termination). The HA runner installs one that checks
    /// the instance still leads (its local step-down deadline has not passed), so that a
    /// leader paused past its lease and woken up later cannot fail over the new leader's
    /// subscription by resubscribing.
    pub fn subscribe_guard(
        mut self,
        guard: impl Fn() -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        self.config.subscribe_guard = Some(super::driver::GuardFn(std::sync::Arc::new(guard)));
        self
    }

    /// Spawns the driver on the current tokio runtime and returns the handle and the events.
    ///
    /// The driver runs until it terminates (see [`Termination`](super::Termination)),
    /// [`Scheduler::stop`] is called, or every [`Scheduler`] handle is dropped.
    pub fn start(self) -> (Scheduler, SchedulerEvents) {
        let (state_tx, state_rx) = watch::channel(Shared {
            framework_id: self.framework_info.id.clone(),
            ..Shared::default()
        });
        let (command_tx, command_rx) = mpsc::unbounded_channel();
        let (event_tx, events) = events::channel(self.config.event_capacity);
        let path: Arc<str> = Arc::from(self.config.path.as_str());
        let driver_caller = Caller {
            client: self.client.clone(),
            path: path.clone(),
            state: state_rx.clone(),
            commands: CommandSender::Driver(command_tx.downgrade()),
        };
        let driver = Driver::new(
            driver_caller,
            self.framework_info,
            self.config,
            state_tx,
            command_rx,
            event_tx,
        );
        tokio::spawn(driver.run());
        let scheduler = Scheduler {
            caller: Caller {
                client: self.client,
                path,
                state: state_rx,
                commands: CommandSender::Handle(command_tx),
            },
        };
        (scheduler, events)
    }
}
