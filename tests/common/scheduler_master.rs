//! A scripted Mesos master for the scheduler runtime's tests: hands each SUBSCRIBE's event stream
//! to the test, records every other call, and builds the events a test sends. Include it beside
//! `scripted.rs`:
//! `#[path = "common/scripted.rs"] mod scripted;` and
//! `#[path = "common/scheduler_master.rs"] mod scheduler_master;`.

#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::FutureExt;
use futures::StreamExt;
use futures::future::BoxFuture;
use mesos_sdk::client::Client;
use mesos_sdk::codec::Format;
use mesos_sdk::scheduler::{
    FrameworkInfoBuilder, Scheduler, SchedulerBuilder, SchedulerEvent, SchedulerEvents, Termination,
};
use mesos_sdk::v1::scheduler::call::Type as CallType;
use mesos_sdk::v1::scheduler::event::{self, Type as EventType};
use mesos_sdk::v1::scheduler::{Call, Event};
use mesos_sdk::v1::{AgentId, FrameworkId, Offer, OfferId, TaskId, TaskStatus};
use tokio::sync::mpsc;

use crate::scripted::{Recorded, Reply, ScriptedServer, StreamHandle};

pub const WAIT: Duration = Duration::from_secs(5);

/// A scripted master: hands each SUBSCRIBE's stream to the test and records every other call.
pub struct Master {
    pub format: Format,
    pub server: ScriptedServer,
    pub subscriptions: mpsc::UnboundedReceiver<(Call, Recorded, StreamHandle)>,
    pub calls: mpsc::UnboundedReceiver<(Call, Recorded)>,
}

pub type CallAnswer = Arc<dyn Fn(&Call) -> Reply + Send + Sync>;
pub type SubscribeAnswer = Arc<dyn Fn(usize) -> Option<Reply> + Send + Sync>;
/// Like [`SubscribeAnswer`], but the answer may come later (a master that is slow to process).
pub type LateSubscribeAnswer =
    Arc<dyn Fn(usize) -> Option<BoxFuture<'static, Reply>> + Send + Sync>;

impl Master {
    pub async fn start(format: Format) -> Self {
        Self::scripted(format, Arc::new(|_| None), Arc::new(|_| Reply::empty(202))).await
    }

    pub async fn scripted(
        format: Format,
        on_subscribe: SubscribeAnswer,
        on_call: CallAnswer,
    ) -> Self {
        let on_subscribe: LateSubscribeAnswer =
            Arc::new(move |n| on_subscribe(n).map(|reply| futures::future::ready(reply).boxed()));
        Self::scripted_late(format, on_subscribe, on_call).await
    }

    /// A master whose answers to SUBSCRIBE `n` may come whenever the future `on_subscribe(n)`
    /// gives resolves; `None` answers at once with a stream handed to the test.
    pub async fn scripted_late(
        format: Format,
        on_subscribe: LateSubscribeAnswer,
        on_call: CallAnswer,
    ) -> Self {
        let (sub_tx, subscriptions) = mpsc::unbounded_channel();
        let (call_tx, calls) = mpsc::unbounded_channel();
        let count = Arc::new(AtomicUsize::new(0));
        let server = ScriptedServer::start(move |req: Recorded| {
            let call: Call = format
                .decode(&req.body)
                .expect("a Call in the client's format");
            if call.r#type() == CallType::Subscribe {
                let n = count.fetch_add(1, Ordering::SeqCst) + 1;
                match on_subscribe(n) {
                    Some(reply) => reply,
                    None => {
                        let id = format!("stream-{n}");
                        let (reply, handle) = Reply::stream(format.content_type(), Some(&id));
                        let _ = sub_tx.send((call, req, handle));
                        futures::future::ready(reply).boxed()
                    }
                }
            } else {
                let reply = on_call(&call);
                let _ = call_tx.send((call, req));
                futures::future::ready(reply).boxed()
            }
        })
        .await;
        Self {
            format,
            server,
            subscriptions,
            calls,
        }
    }

    pub async fn next_subscription(&mut self) -> (Call, Recorded, EventStream) {
        let (call, req, handle) = tokio::time::timeout(WAIT, self.subscriptions.recv())
            .await
            .expect("a SUBSCRIBE in time")
            .expect("master running");
        let stream = EventStream {
            handle,
            format: self.format,
        };
        (call, req, stream)
    }

    pub async fn next_call(&mut self) -> (Call, Recorded) {
        tokio::time::timeout(WAIT, self.calls.recv())
            .await
            .expect("a call in time")
            .expect("master running")
    }

    pub fn client(&self) -> Client {
        Client::builder()
            .endpoint(self.server.url())
            .format(self.format)
            .retry_backoff(Duration::from_millis(1), Duration::from_millis(5))
            .max_attempts(1)
            .build()
            .unwrap()
    }
}

/// One SUBSCRIBE's event stream, encoding events in the master's format.
#[derive(Clone)]
pub struct EventStream {
    handle: StreamHandle,
    format: Format,
}

impl EventStream {
    pub fn send(&self, event: Event) -> bool {
        self.handle.record(self.format.encode(&event).unwrap())
    }
    pub fn raw(&self, data: &'static [u8]) -> bool {
        self.handle.raw(data)
    }
    pub fn abort(&self) {
        self.handle.abort()
    }
    pub fn is_closed(&self) -> bool {
        self.handle.is_closed()
    }
    /// Sends a HEARTBEAT every `every` until the client is gone or the task is aborted.
    pub fn heartbeats(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let stream = self.clone();
        tokio::spawn(async move {
            while stream.send(heartbeat()) {
                tokio::time::sleep(every).await;
            }
        })
    }
}

pub fn typed(kind: EventType) -> Event {
    let mut event = Event::default();
    event.set_type(kind);
    event
}

pub fn subscribed(framework_id: &str) -> Event {
    Event {
        subscribed: Some(Box::new(event::Subscribed {
            framework_id: FrameworkId {
                value: framework_id.into(),
            },
            heartbeat_interval_seconds: Some(15.0),
            master_info: None,
        })),
        ..typed(EventType::Subscribed)
    }
}

pub fn heartbeat() -> Event {
    typed(EventType::Heartbeat)
}

pub fn offers(ids: &[&str]) -> Event {
    Event {
        offers: Some(event::Offers {
            offers: ids
                .iter()
                .map(|id| Offer {
                    id: OfferId {
                        value: (*id).into(),
                    },
                    ..Offer::default()
                })
                .collect(),
        }),
        ..typed(EventType::Offers)
    }
}

pub fn rescind(id: &str) -> Event {
    Event {
        rescind: Some(event::Rescind {
            offer_id: OfferId { value: id.into() },
        }),
        ..typed(EventType::Rescind)
    }
}

pub fn error(message: &str) -> Event {
    Event {
        error: Some(event::Error {
            message: message.into(),
        }),
        ..typed(EventType::Error)
    }
}

pub fn update(task: &str, uuid: Option<&'static [u8]>) -> Event {
    Event {
        update: Some(event::Update {
            status: TaskStatus {
                task_id: TaskId { value: task.into() },
                agent_id: Some(AgentId {
                    value: "agent-1".into(),
                }),
                uuid: uuid.map(Bytes::from_static),
                ..TaskStatus::default()
            },
        }),
        ..typed(EventType::Update)
    }
}

pub fn start(master: &Master) -> (Scheduler, SchedulerEvents) {
    start_with(master, |b| b)
}

pub fn start_with(
    master: &Master,
    configure: impl FnOnce(SchedulerBuilder) -> SchedulerBuilder,
) -> (Scheduler, SchedulerEvents) {
    let framework = FrameworkInfoBuilder::new("tester", "scripted").build();
    let builder = Scheduler::builder(master.client(), framework)
        .reconnect_backoff(Duration::from_millis(5), Duration::from_millis(20));
    configure(builder).start()
}

/// The next event matching `pred`, skipping others.
pub async fn wait_for(
    events: &mut SchedulerEvents,
    mut pred: impl FnMut(&SchedulerEvent) -> bool,
) -> SchedulerEvent {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = tokio::time::timeout(left, events.next())
            .await
            .expect("the expected event in time")
            .expect("events still flowing");
        if pred(&event) {
            return event;
        }
    }
}

/// Waits until the client has dropped `stream` (writing nudges the server to notice).
pub async fn assert_closed(stream: &EventStream) {
    let deadline = Instant::now() + WAIT;
    while !stream.is_closed() {
        assert!(Instant::now() < deadline, "the old stream is still open");
        stream.send(heartbeat());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn connected(events: &mut SchedulerEvents) -> FrameworkId {
    match wait_for(events, |e| matches!(e, SchedulerEvent::Connected { .. })).await {
        SchedulerEvent::Connected { framework_id, .. } => framework_id,
        _ => unreachable!(),
    }
}

/// The reason of the next `Disconnected` event.
pub async fn disconnected_reason(events: &mut SchedulerEvents) -> String {
    match wait_for(events, |e| matches!(e, SchedulerEvent::Disconnected { .. })).await {
        SchedulerEvent::Disconnected { reason } => reason,
        _ => unreachable!(),
    }
}

pub async fn terminated(events: &mut SchedulerEvents) -> Termination {
    match wait_for(events, |e| matches!(e, SchedulerEvent::Terminated(_))).await {
        SchedulerEvent::Terminated(t) => t,
        _ => unreachable!(),
    }
}

/// Runs each scenario (an `async fn(Format)` of the including file) once per wire format.
macro_rules! in_both_formats {
    ($($name:ident),* $(,)?) => {
        mod protobuf {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Format::Protobuf).await
                }
            )*
        }
        mod json {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Format::Json).await
                }
            )*
        }
    };
}
