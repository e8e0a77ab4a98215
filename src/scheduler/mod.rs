//! The V1 scheduler runtime: a background driver task that owns the subscription to the leading
//! master and all of the scheduler's state, a cloneable [`Scheduler`] handle that sends calls
//! from any task, and a [`futures::Stream`] of typed [`SchedulerEvent`]s.
//!
//! Design (one owner of the state, in the manner of async-nats):
//! - the **driver task** alone writes the state: framework id, stream id, offer cache,
//!   termination. It publishes every change through a `tokio::sync::watch` channel, which the
//!   handles read ([`Scheduler::framework_id`], [`Scheduler::offers`], ...);
//! - **handles** send calls over HTTP themselves (calls run concurrently, never queued behind
//!   the driver) with the stream id they read from the watch, and send the driver **commands**
//!   over one channel: stop, "this call found the subscription lost (403) or the framework
//!   removed (409)", "these offers are being used", "TEARDOWN under way". The driver serves
//!   commands wherever it waits: on the master, on a full event stream, in backoff;
//! - events reach the user over a channel, unbounded by default or bounded with back-pressure
//!   ([`SchedulerBuilder::event_capacity`]): while it is full the driver stops reading from the
//!   master, and the heartbeat watchdog, which only counts time spent waiting on the socket,
//!   does not take the pause for a dead master;
//! - the driver stops when every handle is dropped (its own acknowledgements use a weak sender).
//!
//! The driver SUBSCRIBEs (as a new framework, or resuming `framework_info.id`), keeps the
//! `Mesos-Stream-Id` for every other call, watches heartbeats, resubscribes with capped
//! exponential backoff and jitter after any disconnection (using the framework id learned from
//! SUBSCRIBED), drops the offer cache on every resubscription and acknowledges status updates
//! that carry a uuid, automatically or through the handler ([`AckMode`]).
//!
//! ```no_run
//! use futures::StreamExt;
//! use mesos_sdk::client::Client;
//! use mesos_sdk::scheduler::{FrameworkInfoBuilder, Scheduler, SchedulerEvent};
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
//!         SchedulerEvent::Offers(offers) => {
//!             let ids = offers.into_iter().map(|offer| offer.id).collect();
//!             scheduler.decline(ids, None).await?;
//!         }
//!         SchedulerEvent::Update { status, .. } => {
//!             println!("task {} is {:?}", status.task_id.value, status.state());
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
//!   SUBSCRIBE that gets no SUBSCRIBED. The heartbeat interval is the one SUBSCRIBED announces
//!   (15 s on a real Mesos master) unless [`SchedulerBuilder::heartbeat_interval`] overrides it
//!   for a test master;
//! - `ERROR "Framework failed over"` (another instance subscribed with the same id) stops the
//!   driver for good with [`Termination::FailedOver`], except within the watchdog window after a
//!   SUBSCRIBE of our own that the watchdog abandoned (the master may process it late): then the
//!   driver resubscribes, once per abandoned SUBSCRIBE ([`SchedulerBuilder::failover_grace`]);
//! - `ERROR "Framework has been removed"` stops it with [`Termination::FrameworkRemoved`]; other
//!   ERRORs resubscribe;
//! - a 403 on any call means the master no longer sees the subscription: the driver resubscribes;
//! - a 409 on UPDATE_FRAMEWORK means the framework was removed meanwhile: the driver stops with
//!   [`Termination::FrameworkRemoved`];
//! - a SUBSCRIBE refused with 401, 400 or another client error stops the driver with
//!   [`Termination::Rejected`].

mod ack;
mod builder;
mod calls_impl;
mod control;
mod driver;
mod events;
mod framework;
mod handle;

pub mod calls;

use std::time::Duration;

use crate::codec::CodecError;

pub use ack::{AckMode, AckToken, OperationAckToken};
pub use builder::SchedulerBuilder;
pub use events::{ExitStatus, SchedulerEvent, SchedulerEvents};
pub use framework::{DEFAULT_CAPABILITIES, DEFAULT_FAILOVER_TIMEOUT, FrameworkInfoBuilder};
pub use handle::Scheduler;

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
    /// The [subscribe guard](SchedulerBuilder::subscribe_guard) refused a (re)subscription,
    /// e.g. because this instance no longer leads.
    #[error("subscribing is not allowed: {reason}")]
    NotAllowed {
        /// The guard's reason.
        reason: String,
    },
}

/// Asked before every SUBSCRIBE, the first and each resubscription: `Ok(())` lets it go,
/// `Err(reason)` stops the driver with [`Termination::NotAllowed`]. See
/// [`SchedulerBuilder::subscribe_guard`].
pub type SubscribeGuard = std::sync::Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

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
