//! What the scheduler runtime tells its user: the typed [`SchedulerEvent`]s, the decoded exit
//! status of FAILURE events, and the [`SchedulerEvents`] stream that carries them (unbounded, or
//! bounded with back-pressure).

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use http::Uri;
use tokio::sync::mpsc;

use super::Termination;
use super::ack::{AckToken, OperationAckToken};
use crate::v1::scheduler::{Event, event};
use crate::v1::{
    AgentId, ExecutorId, FrameworkId, InverseOffer, Offer, OfferId, OperationStatus, TaskStatus,
};

/// What the scheduler runtime tells its user.
///
/// Every event of the master has a variant of its own, so handlers match without touching the
/// prost enums; events of types newer than this SDK arrive whole as [`SchedulerEvent::Other`].
/// The driver's own events are [`Connected`](SchedulerEvent::Connected) (the translation of
/// SUBSCRIBED), [`OffersInvalidated`](SchedulerEvent::OffersInvalidated),
/// [`Disconnected`](SchedulerEvent::Disconnected) and [`Terminated`](SchedulerEvent::Terminated).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SchedulerEvent {
    /// SUBSCRIBED arrived: the framework is connected (again). Persist the id, then reconcile.
    Connected {
        /// The framework id (persist it).
        framework_id: FrameworkId,
        /// The heartbeat interval the watchdog uses (the override, else the announced one).
        heartbeat_interval: Duration,
        /// The whole SUBSCRIBED payload (master info, the announced heartbeat interval).
        subscribed: Box<event::Subscribed>,
        /// The master that accepted the subscription.
        endpoint: Uri,
    },
    /// OFFERS: resources offered to the framework (also kept in the offer cache,
    /// [`Scheduler::offers`](super::Scheduler::offers)).
    Offers(Vec<Offer>),
    /// INVERSE_OFFERS: maintenance asks the framework to release agents or resources.
    InverseOffers(Vec<InverseOffer>),
    /// RESCIND: an offer is gone (it left the offer cache); accepting it would fail.
    Rescind(OfferId),
    /// RESCIND_INVERSE_OFFER: an inverse offer was withdrawn.
    RescindInverseOffer(OfferId),
    /// UPDATE: a task status update.
    Update {
        /// The status.
        status: Box<TaskStatus>,
        /// In [`AckMode::Explicit`](super::AckMode::Explicit), the token to acknowledge the
        /// update with once its state is recorded; `None` when the update must not be
        /// acknowledged (no uuid) and always in automatic mode.
        ack: Option<AckToken>,
    },
    /// UPDATE_OPERATION_STATUS: the status of an offer operation that was given an id.
    OperationUpdate {
        /// The status.
        status: Box<OperationStatus>,
        /// In [`AckMode::Explicit`](super::AckMode::Explicit), the token to acknowledge it with;
        /// `None` without uuid and always in automatic mode.
        ack: Option<OperationAckToken>,
    },
    /// MESSAGE: bytes from an executor (no delivery guarantee).
    Message {
        /// The executor's agent.
        agent_id: AgentId,
        /// The executor.
        executor_id: ExecutorId,
        /// The bytes.
        data: Bytes,
    },
    /// FAILURE: an agent was removed (no executor id) or an executor exited (with its exit
    /// status). No ordering with the related UPDATE and RESCIND events is guaranteed.
    Failure {
        /// The agent.
        agent_id: Option<AgentId>,
        /// The executor that exited, if this is about an executor.
        executor_id: Option<ExecutorId>,
        /// How the executor ended, when the master said.
        status: Option<ExitStatus>,
    },
    /// ERROR: the master aborted the subscription with this text. The driver resubscribes or
    /// stops; [`Disconnected`](SchedulerEvent::Disconnected) or
    /// [`Terminated`](SchedulerEvent::Terminated) follows.
    Error(String),
    /// HEARTBEAT: the master is alive (the watchdog has already taken note).
    Heartbeat,
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
    /// An event this SDK has no variant for (a newer type, or a known type without its payload),
    /// passed on whole.
    Other(Box<Event>),
}

/// How an executor ended, decoded from the POSIX wait status Mesos puts in FAILURE events.
///
/// Mesos forwards the raw `waitpid` status; it is decoded with the bit layout Linux and the BSDs
/// share (`WIFEXITED`/`WEXITSTATUS`, `WIFSIGNALED`/`WTERMSIG`/`WCOREDUMP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExitStatus {
    /// The process exited with this code (0 to 255).
    Exited(i32),
    /// The process was killed by this signal.
    Signaled {
        /// The signal number (9 for SIGKILL, 15 for SIGTERM, ...).
        signal: i32,
        /// Whether it dumped core.
        core_dumped: bool,
    },
    /// A status that is neither (stopped, continued, or not a wait status): the raw value.
    Other(i32),
}

impl ExitStatus {
    /// Decodes a raw wait status.
    pub fn from_wait_status(raw: i32) -> Self {
        let low = raw & 0x7f;
        if raw & !0xffff != 0 {
            ExitStatus::Other(raw)
        } else if low == 0 {
            ExitStatus::Exited((raw >> 8) & 0xff)
        } else if low != 0x7f {
            ExitStatus::Signaled {
                signal: low,
                core_dumped: raw & 0x80 != 0,
            }
        } else {
            ExitStatus::Other(raw)
        }
    }

    /// Whether the process exited with code 0.
    pub fn success(&self) -> bool {
        *self == ExitStatus::Exited(0)
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Exited(code) => write!(f, "exited with code {code}"),
            ExitStatus::Signaled {
                signal,
                core_dumped: false,
            } => write!(f, "killed by signal {signal}"),
            ExitStatus::Signaled {
                signal,
                core_dumped: true,
            } => write!(f, "killed by signal {signal} (core dumped)"),
            ExitStatus::Other(raw) => write!(f, "wait status {raw:#x}"),
        }
    }
}

/// The sending side of the event stream, owned by the driver.
#[derive(Debug)]
pub(super) enum EventSender {
    Unbounded(mpsc::UnboundedSender<SchedulerEvent>),
    Bounded(mpsc::Sender<SchedulerEvent>),
}

/// A new event channel: unbounded, or bounded to `capacity` (at least 1).
pub(super) fn channel(capacity: Option<usize>) -> (EventSender, SchedulerEvents) {
    match capacity {
        None => {
            let (tx, rx) = mpsc::unbounded_channel();
            (
                EventSender::Unbounded(tx),
                SchedulerEvents {
                    inner: EventReceiver::Unbounded(rx),
                },
            )
        }
        Some(capacity) => {
            let (tx, rx) = mpsc::channel(capacity.max(1));
            (
                EventSender::Bounded(tx),
                SchedulerEvents {
                    inner: EventReceiver::Bounded(rx),
                },
            )
        }
    }
}

#[derive(Debug)]
enum EventReceiver {
    Unbounded(mpsc::UnboundedReceiver<SchedulerEvent>),
    Bounded(mpsc::Receiver<SchedulerEvent>),
}

/// The events of a running scheduler. Ends after [`SchedulerEvent::Terminated`].
///
/// By default events are buffered without bound, so a slow consumer never stalls the driver.
/// With [`SchedulerBuilder::event_capacity`](super::SchedulerBuilder::event_capacity) the buffer
/// is bounded and the driver stops reading from the master while it is full (back-pressure).
#[derive(Debug)]
pub struct SchedulerEvents {
    inner: EventReceiver,
}

impl Stream for SchedulerEvents {
    type Item = SchedulerEvent;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<SchedulerEvent>> {
        match &mut self.inner {
            EventReceiver::Unbounded(rx) => rx.poll_recv(cx),
            EventReceiver::Bounded(rx) => rx.poll_recv(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_statuses_decode_as_posix_encodes_them() {
        let cases = [
            (0x0000, ExitStatus::Exited(0)),
            (0x0300, ExitStatus::Exited(3)),
            (0xff00, ExitStatus::Exited(255)),
            (
                0x0009,
                ExitStatus::Signaled {
                    signal: 9,
                    core_dumped: false,
                },
            ),
            (
                0x008b,
                ExitStatus::Signaled {
                    signal: 11,
                    core_dumped: true,
                },
            ),
            (0x137f, ExitStatus::Other(0x137f)), // stopped by SIGSTOP
            (0xffff, ExitStatus::Other(0xffff)), // continued
            (-1, ExitStatus::Other(-1)),
            (0x10000, ExitStatus::Other(0x10000)),
        ];
        for (raw, expected) in cases {
            assert_eq!(ExitStatus::from_wait_status(raw), expected, "{raw:#x}");
        }
        assert!(ExitStatus::Exited(0).success());
        assert!(!ExitStatus::Exited(1).success());
        assert_eq!(ExitStatus::Exited(3).to_string(), "exited with code 3");
        assert_eq!(
            ExitStatus::from_wait_status(0x000f).to_string(),
            "killed by signal 15"
        );
    }
}
