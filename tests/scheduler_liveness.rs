//! The scheduler runtime's liveness edges against a scripted master: a SUBSCRIBE the watchdog
//! abandoned that the master processes late (the failover grace), a slow consumer of a bounded
//! event stream (back-pressure without a false watchdog), a driver stopping while its stream is
//! full, and the warning for a heartbeat override below the interval the master announces.

#[path = "common/scheduler_master.rs"]
#[macro_use]
mod scheduler_master;
#[path = "common/scripted.rs"]
mod scripted;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use mesos_sdk::codec::Format;
use mesos_sdk::scheduler::{SchedulerError, SchedulerEvent, Termination};
use mesos_sdk::v1::OfferId;
use scheduler_master::*;
use scripted::Reply;
use tokio::sync::oneshot;

/// A driver that stopped while its bounded stream is full waits for the user to read its last
/// events, but no handle waits on it.
async fn a_stopped_driver_with_a_full_stream_releases_its_handles(format: Format) {
    let mut master = Master::start(format).await;
    let (scheduler, mut events) = start_with(&master, |b| b.event_capacity(1));
    let (_, _, stream) = master.next_subscription().await;
    stream.send(subscribed("fw-1"));
    connected(&mut events).await;
    stream.send(offers(&["o1"]));
    stream.send(offers(&["o2"]));
    let deadline = Instant::now() + WAIT;
    while scheduler.offers().len() < 2 {
        assert!(Instant::now() < deadline, "both offers read");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    scheduler.stop();
    while scheduler.termination().is_none() {
        assert!(Instant::now() < deadline, "the driver stops");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let declined = tokio::time::timeout(
        WAIT,
        scheduler.decline(vec![OfferId { value: "o1".into() }], None),
    )
    .await
    .expect("the handle is not held up");
    assert!(
        matches!(declined, Err(SchedulerError::Terminated(_))),
        "{declined:?}"
    );
    let torn = tokio::time::timeout(WAIT, scheduler.teardown())
        .await
        .expect("the handle is not held up");
    assert!(
        matches!(torn, Err(SchedulerError::Terminated(_))),
        "{torn:?}"
    );
    assert!(matches!(
        events.next().await,
        Some(SchedulerEvent::Offers(_))
    ));
    let invalidated = wait_for(&mut events, |e| {
        matches!(e, SchedulerEvent::OffersInvalidated { .. })
    })
    .await;
    assert!(
        matches!(invalidated, SchedulerEvent::OffersInvalidated { offer_ids } if offer_ids.len() == 2)
    );
    assert_eq!(terminated(&mut events).await, Termination::Stopped);
    assert!(events.next().await.is_none());
}

/// A master slow to process the first SUBSCRIBE: it answers nothing until the test lets it
/// process that SUBSCRIBE, which then fails over the subscription the test hands in (as a Mesos
/// master does to the stream of the framework's current subscription).
async fn master_holding_the_first_subscribe(
    format: Format,
) -> (Master, oneshot::Sender<EventStream>) {
    let (process, processed) = oneshot::channel::<EventStream>();
    tokio::spawn(async move {
        if let Ok(current) = processed.await {
            current.send(error("Framework failed over"));
        }
    });
    let master = Master::scripted_late(
        format,
        Arc::new(move |n| (n == 1).then(|| futures::future::pending().boxed())),
        Arc::new(|_| Reply::empty(202)),
    )
    .await;
    (master, process)
}

/// The order seen against a real master: SUBSCRIBE #1 gets no answer, the watchdog abandons it,
/// SUBSCRIBE #2 is answered and connected, then the master processes #1 and fails #2 over.
async fn a_late_abandoned_subscribe_does_not_end_the_driver(format: Format) {
    let (mut master, process) = master_holding_the_first_subscribe(format).await;
    let (scheduler, mut events) = start_with(&master, |b| {
        b.heartbeat_interval(Duration::from_millis(300))
            .heartbeat_misses(2)
    });
    // SUBSCRIBE #1 is held; the watchdog gives up on it and the driver subscribes again.
    let (_, _, live) = master.next_subscription().await;
    live.send(subscribed("fw-1"));
    connected(&mut events).await;
    let _beating = live.heartbeats(Duration::from_millis(50));
    // The master gets to SUBSCRIBE #1 at last and fails the live subscription over to it.
    process.send(live.clone()).ok().unwrap();
    let event = wait_for(&mut events, |e| {
        matches!(
            e,
            SchedulerEvent::Disconnected { .. } | SchedulerEvent::Terminated(_)
        )
    })
    .await;
    match &event {
        SchedulerEvent::Disconnected { reason } => {
            assert!(reason.contains("abandoned SUBSCRIBE"), "{reason}")
        }
        other => panic!("the driver must resubscribe, not {other:?}"),
    }
    let (call, _, again) = master.next_subscription().await;
    assert_eq!(call.framework_id.unwrap().value, "fw-1");
    again.send(subscribed("fw-1"));
    connected(&mut events).await;
    assert!(scheduler.is_connected());
    assert_eq!(master.server.requests().len(), 3, "SUBSCRIBE #1, #2, #3");

    // The grace covers one abandoned SUBSCRIBE: the next failover is another instance's.
    again.send(error("Framework failed over"));
    let termination = terminated(&mut events).await;
    assert!(
        matches!(termination, Termination::FailedOver { .. }),
        "{termination:?}"
    );
}

async fn without_failover_grace_a_late_subscribe_is_terminal(format: Format) {
    let (mut master, process) = master_holding_the_first_subscribe(format).await;
    let (_scheduler, mut events) = start_with(&master, |b| {
        b.heartbeat_interval(Duration::from_millis(300))
            .heartbeat_misses(2)
            .failover_grace(false)
    });
    let (_, _, live) = master.next_subscription().await;
    live.send(subscribed("fw-1"));
    connected(&mut events).await;
    process.send(live.clone()).ok().unwrap();
    let termination = terminated(&mut events).await;
    assert!(
        matches!(termination, Termination::FailedOver { .. }),
        "{termination:?}"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        master.subscriptions.try_recv().is_err(),
        "no resubscription"
    );
}

/// A consumer slower than the watchdog window on a bounded stream: the driver stops reading
/// (back-pressure) and the held-up heartbeats do not trip the watchdog.
async fn a_slow_consumer_of_a_bounded_stream_is_no_dead_master(format: Format) {
    let mut master = Master::start(format).await;
    let (scheduler, mut events) = start_with(&master, |b| {
        b.heartbeat_interval(Duration::from_millis(50))
            .heartbeat_misses(2)
            .event_capacity(1)
    });
    let (_, _, stream) = master.next_subscription().await;
    stream.send(subscribed("fw-1"));
    connected(&mut events).await;
    let ids: Vec<String> = (0..10).map(|i| format!("o{i}")).collect();
    for id in &ids {
        stream.send(offers(&[id.as_str()]));
    }
    let _beating = stream.heartbeats(Duration::from_millis(20));

    // Nobody reads for many watchdog windows: one event waits in the stream, one in the
    // driver's hand, the rest on the socket.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cached = scheduler.offers().len();
    assert!(
        cached <= 2,
        "the driver read on although the stream was full: {cached}"
    );
    // The driver still serves the handles meanwhile.
    tokio::time::timeout(
        WAIT,
        scheduler.decline(vec![OfferId { value: "o0".into() }], None),
    )
    .await
    .expect("the handle is served while the stream is full")
    .unwrap();

    // Read slowly: each read waits longer than the watchdog window.
    let mut seen = Vec::new();
    while seen.len() < ids.len() {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let event = tokio::time::timeout(WAIT, events.next())
            .await
            .expect("an event in time")
            .expect("events still flowing");
        match event {
            SchedulerEvent::Offers(offers) => {
                seen.extend(offers.into_iter().map(|offer| offer.id.value))
            }
            SchedulerEvent::Heartbeat => {}
            other => panic!("a slow consumer is no dead master: {other:?}"),
        }
    }
    assert_eq!(seen, ids);
    assert!(scheduler.is_connected());
    assert!(!stream.is_closed());
    assert_eq!(
        master.server.requests().len(),
        2,
        "one SUBSCRIBE, one DECLINE"
    );
}

/// Log lines captured from this thread's tracing events.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// A real master announces 15 s and cannot be told otherwise: an override below that is a
/// mistake outside test masters, and the driver says so.
#[tokio::test]
async fn a_heartbeat_override_below_the_announced_interval_warns() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    // The test's runtime runs on this thread, the driver task included.
    let _guard = tracing::subscriber::set_default(subscriber);

    let mut master = Master::start(Format::Protobuf).await;
    let (scheduler, mut events) =
        start_with(&master, |b| b.heartbeat_interval(Duration::from_secs(20)));
    let (_, _, stream) = master.next_subscription().await;
    stream.send(subscribed("fw-1")); // announces 15 s
    connected(&mut events).await;
    scheduler.stop();
    terminated(&mut events).await;
    assert!(
        !captured.text().contains("heartbeat override"),
        "an override above the announced interval is fine: {}",
        captured.text()
    );

    let (scheduler, mut events) =
        start_with(&master, |b| b.heartbeat_interval(Duration::from_secs(1)));
    let (_, _, stream) = master.next_subscription().await;
    stream.send(subscribed("fw-2"));
    match wait_for(&mut events, |e| {
        matches!(e, SchedulerEvent::Connected { .. })
    })
    .await
    {
        SchedulerEvent::Connected {
            heartbeat_interval, ..
        } => assert_eq!(
            heartbeat_interval,
            Duration::from_secs(1),
            "the override holds"
        ),
        _ => unreachable!(),
    }
    let text = captured.text();
    assert!(
        text.contains("WARN") && text.contains("heartbeat override is shorter"),
        "{text}"
    );
    assert!(text.contains("test masters"), "{text}");
    scheduler.stop();
}

/// The subscribe guard is asked before every SUBSCRIBE: while it allows, the driver subscribes
/// and resubscribes as usual; once it refuses (a leader paused past its lease), a lost
/// connection ends the driver with `NotAllowed` and no SUBSCRIBE reaches the master.
async fn a_refusing_subscribe_guard_stops_resubscription(format: Format) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let mut master = Master::start(format).await;
    let allowed = Arc::new(AtomicBool::new(true));
    let guard = allowed.clone();
    let (_scheduler, mut events) = start_with(&master, move |b| {
        let guard = guard.clone();
        b.subscribe_guard(move || {
            if guard.load(Ordering::SeqCst) {
                Ok(())
            } else {
                Err("not the leader".to_string())
            }
        })
    });
    let (_, _, first) = master.next_subscription().await;
    first.send(subscribed("fw-1"));
    connected(&mut events).await;
    // Allowed: a lost connection is followed by a resubscription.
    first.abort();
    let (_, _, second) = master.next_subscription().await;
    second.send(subscribed("fw-1"));
    connected(&mut events).await;
    // Refused: the next loss ends the driver, and nothing more is sent.
    allowed.store(false, Ordering::SeqCst);
    second.abort();
    let termination = terminated(&mut events).await;
    assert_eq!(
        termination,
        Termination::NotAllowed {
            reason: "not the leader".into()
        }
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        master.subscriptions.try_recv().is_err(),
        "no SUBSCRIBE after the guard refused"
    );
}

in_both_formats!(
    a_refusing_subscribe_guard_stops_resubscription,
    a_stopped_driver_with_a_full_stream_releases_its_handles,
    a_late_abandoned_subscribe_does_not_end_the_driver,
    without_failover_grace_a_late_subscribe_is_terminal,
    a_slow_consumer_of_a_bounded_stream_is_no_dead_master,
);
