//! The driver's state and command inbox ([`Control`]): whatever the driver waits for (the
//! master, room on a full event stream, backoff), it serves the handles' commands meanwhile, and
//! a command may end the wait ([`Interrupt`]).

use std::future::Future;

use tokio::sync::{mpsc, watch};

use super::Termination;
use super::events::{EventSender, SchedulerEvent};
use super::handle::{Command, Shared};

/// How one subscription ended.
pub(super) enum SessionEnd {
    /// Resubscribe after backoff. `connected` says whether SUBSCRIBED had arrived.
    Lost {
        /// Why.
        reason: String,
        /// Whether SUBSCRIBED had arrived.
        connected: bool,
    },
    /// Stop for good.
    Terminated(Termination),
}

/// A command that ends what the driver was waiting for.
pub(super) enum Interrupt {
    /// Stop (asked to, or no handle is left).
    Stop,
    /// A call found the live subscription gone (403).
    Lost(String),
    /// The framework was removed (409 on UPDATE_FRAMEWORK).
    Removed(String),
}

impl Interrupt {
    pub(super) fn end(self, connected: bool) -> SessionEnd {
        match self {
            Interrupt::Stop => SessionEnd::Terminated(Termination::Stopped),
            Interrupt::Lost(reason) => SessionEnd::Lost { reason, connected },
            Interrupt::Removed(message) => {
                SessionEnd::Terminated(Termination::FrameworkRemoved { message })
            }
        }
    }
}

/// The driver's state and its command inbox: whatever it waits for, commands are served.
pub(super) struct Control {
    pub(super) commands: mpsc::UnboundedReceiver<Command>,
    pub(super) state: watch::Sender<Shared>,
    /// The stream id of the subscription that got SUBSCRIBED, while it lasts.
    pub(super) live_stream: Option<String>,
    /// TEARDOWN is under way: the end of the stream is expected, not a reason to resubscribe.
    pub(super) tearing_down: bool,
}

impl Control {
    /// Carries out `command`; an interrupt when it ends the current wait.
    fn handle(&mut self, command: Option<Command>) -> Option<Interrupt> {
        match command {
            // No handle left, or asked to.
            None | Some(Command::Stop) => Some(Interrupt::Stop),
            Some(Command::Lost {
                stream_id,
                reason,
                removed,
            }) => {
                if self.live_stream.as_deref() != Some(stream_id.as_str()) {
                    tracing::debug!(%stream_id, "report about an earlier subscription ignored");
                    return None;
                }
                Some(if removed {
                    Interrupt::Removed(reason)
                } else {
                    Interrupt::Lost(reason)
                })
            }
            Some(Command::ForgetOffers { offer_ids, done }) => {
                self.state.send_if_modified(|state| {
                    let before = state.offers.len();
                    for id in &offer_ids {
                        state.offers.remove(&id.value);
                    }
                    state.offers.len() != before
                });
                let _ = done.send(());
                None
            }
            Some(Command::TearingDown { active, done }) => {
                self.tearing_down = active;
                let _ = done.send(());
                None
            }
        }
    }

    /// Waits for `work` while serving commands; an interrupting command ends the wait.
    pub(super) async fn serve<F: Future>(&mut self, work: F) -> Result<F::Output, Interrupt> {
        let mut work = std::pin::pin!(work);
        loop {
            tokio::select! {
                biased;
                command = self.commands.recv() => {
                    if let Some(interrupt) = self.handle(command) {
                        return Err(interrupt);
                    }
                }
                output = &mut work => return Ok(output),
            }
        }
    }

    /// Hands `event` to the user. On a bounded stream that is full this waits for room, serving
    /// commands meanwhile; the socket is not read while it waits.
    pub(super) async fn emit(
        &mut self,
        events: &EventSender,
        event: SchedulerEvent,
    ) -> Result<(), Interrupt> {
        let tx = match events {
            EventSender::Unbounded(tx) => {
                if tx.send(event).is_err() {
                    tracing::trace!("scheduler event dropped: nobody listens");
                }
                return Ok(());
            }
            EventSender::Bounded(tx) => tx,
        };
        let event = match tx.try_send(event) {
            Ok(()) => return Ok(()),
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::trace!("scheduler event dropped: nobody listens");
                return Ok(());
            }
            Err(mpsc::error::TrySendError::Full(event)) => event,
        };
        tracing::debug!("event stream full: reading from the master paused");
        match self.serve(tx.reserve()).await? {
            Ok(permit) => permit.send(event),
            Err(_) => tracing::trace!("scheduler event dropped: nobody listens"),
        }
        Ok(())
    }

    /// Takes no more commands: handles waiting on one are released, later ones fail at once.
    pub(super) fn close(&mut self) {
        self.commands.close();
        while self.commands.try_recv().is_ok() {}
    }
}
