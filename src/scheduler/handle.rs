//! The [`Scheduler`] handle and what it shares with the driver: the state snapshot the driver
//! publishes through a `watch` channel, and the commands handles send it.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch};

use super::Termination;
use crate::client::Client;
use crate::v1::{FrameworkId, Offer, OfferId};

/// The driver's state as handles see it. Only the driver writes it (`watch::Sender`); handles
/// read the latest value.
#[derive(Debug, Default)]
pub(super) struct Shared {
    pub(super) framework_id: Option<FrameworkId>,
    /// Set from SUBSCRIBED to the end of that subscription.
    pub(super) stream_id: Option<String>,
    pub(super) offers: HashMap<String, Offer>,
    pub(super) termination: Option<Termination>,
}

/// What handles ask of the driver.
#[derive(Debug)]
pub(super) enum Command {
    /// Stop without TEARDOWN.
    Stop,
    /// A call on `stream_id` found the subscription gone (403), or the framework removed (409 on
    /// UPDATE_FRAMEWORK, `removed`). Ignored unless `stream_id` is the live subscription.
    Lost {
        stream_id: String,
        reason: String,
        removed: bool,
    },
    /// ACCEPT or DECLINE is about to use these offers: drop them from the cache, then answer.
    ForgetOffers {
        offer_ids: Vec<OfferId>,
        done: oneshot::Sender<()>,
    },
    /// TEARDOWN is about to be sent (`true`), or failed (`false`): while it is under way the end
    /// of the stream is expected, not a reason to resubscribe.
    TearingDown {
        active: bool,
        done: oneshot::Sender<()>,
    },
}

/// The way to the driver: a handle's (keeps the driver alive) or the driver's own (does not).
#[derive(Debug, Clone)]
pub(super) enum CommandSender {
    Handle(mpsc::UnboundedSender<Command>),
    Driver(mpsc::WeakUnboundedSender<Command>),
}

impl CommandSender {
    /// Sends `command`; false when the driver is gone.
    pub(super) fn send(&self, command: Command) -> bool {
        match self {
            CommandSender::Handle(tx) => tx.send(command).is_ok(),
            CommandSender::Driver(weak) => {
                weak.upgrade().is_some_and(|tx| tx.send(command).is_ok())
            }
        }
    }

    /// Sends the command `make` builds and waits until the driver has carried it out (at once
    /// when the driver is gone).
    pub(super) async fn request(&self, make: impl FnOnce(oneshot::Sender<()>) -> Command) {
        let (done, carried_out) = oneshot::channel();
        if self.send(make(done)) {
            let _ = carried_out.await;
        }
    }
}

/// What sending a call needs: the transport, the endpoint path, the state, the driver.
#[derive(Debug, Clone)]
pub(super) struct Caller {
    pub(super) client: Client,
    pub(super) path: Arc<str>,
    pub(super) state: watch::Receiver<Shared>,
    pub(super) commands: CommandSender,
}

/// A cheap-to-clone handle to a running scheduler: sends calls with the current stream id and
/// framework id, and reads the driver's published state (framework id, stream id, offer cache,
/// termination).
///
/// The driver stops when every handle is dropped. See the [module documentation](super) for an
/// example.
#[derive(Debug, Clone)]
pub struct Scheduler {
    pub(super) caller: Caller,
}

impl Scheduler {
    /// The framework id (given, or learned from SUBSCRIBED).
    pub fn framework_id(&self) -> Option<FrameworkId> {
        self.caller.state.borrow().framework_id.clone()
    }

    /// The current `Mesos-Stream-Id`, while subscribed.
    pub fn stream_id(&self) -> Option<String> {
        self.caller.state.borrow().stream_id.clone()
    }

    /// Whether a subscription is established right now.
    pub fn is_connected(&self) -> bool {
        self.caller.state.borrow().stream_id.is_some()
    }

    /// Why the driver stopped, once it has.
    pub fn termination(&self) -> Option<Termination> {
        self.caller.state.borrow().termination.clone()
    }

    /// The outstanding offers (received, not yet rescinded, accepted or declined through a
    /// handle; emptied on every disconnection).
    pub fn offers(&self) -> Vec<Offer> {
        self.caller
            .state
            .borrow()
            .offers
            .values()
            .cloned()
            .collect()
    }

    /// One outstanding offer.
    pub fn offer(&self, id: &OfferId) -> Option<Offer> {
        self.caller.state.borrow().offers.get(&id.value).cloned()
    }

    /// Stops the driver without TEARDOWN (tasks keep running for the failover timeout).
    pub fn stop(&self) {
        self.caller.commands.send(Command::Stop);
    }
}
