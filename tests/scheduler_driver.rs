//! The scheduler runtime against a scripted master: subscription and resubscription, stream ids,
//! heartbeat watchdog, ERROR handling, 403s, offer cache, acknowledgement modes, stopping.
//! The liveness edges (failover grace, bounded stream, heartbeat override) are in
//! `scheduler_liveness.rs`.

#[path = "common/scheduler_master.rs"]
#[macro_use]
mod scheduler_master;
#[path = "common/scripted.rs"]
mod scripted;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use mesos_sdk::client::{Client, ErrorKind};
use mesos_sdk::codec::Format;
use mesos_sdk::scheduler::{
    AckMode, FrameworkInfoBuilder, Scheduler, SchedulerError, SchedulerEvent, Termination,
};
use mesos_sdk::v1::scheduler::Call;
use mesos_sdk::v1::scheduler::call::Type as CallType;
use mesos_sdk::v1::{AgentId, OfferId, TaskId};
use scheduler_master::*;
use scripted::Reply;

async fn subscribes_and_sends_the_stream_id_on_every_other_call(format: Format) {
    let mut master = Master::start(format).await;
    let (scheduler, mut events) = start(&master);
    let (call, req, stream) = master.next_subscription().await;
    assert!(call.framework_id.is_none(), "a new framework has no id");
    let info = &call.subscribe.as_ref().unwrap().framework_info;
    assert!(info.id.is_none());
    assert_eq!(info.checkpoint, Some(true));
    assert_eq!(req.header("mesos-stream-id"), None);
    assert_eq!(req.header("accept").as_deref(), Some(format.content_type()));

    // Before SUBSCRIBED there is nothing to send with.
    let early = scheduler.revive(vec![]).await.unwrap_err();
    assert!(matches!(early, SchedulerError::NotSubscribed), "{early}");

    stream.send(subscribed("fw-1"));
    assert_eq!(connected(&mut events).await.value, "fw-1");
    assert_eq!(scheduler.framework_id().unwrap().value, "fw-1");
    assert!(scheduler.is_connected());

    scheduler.suppress(vec!["*".into()]).await.unwrap();
    let (call, req) = master.next_call().await;
    assert_eq!(call.r#type(), CallType::Suppress);
    assert_eq!(call.framework_id.unwrap().value, "fw-1");
    assert_eq!(req.header("mesos-stream-id").as_deref(), Some("stream-1"));
    assert_eq!(
        req.header("content-type").as_deref(),
        Some(format.content_type())
    );

    scheduler
        .kill(TaskId { value: "t".into() }, None, None)
        .await
        .unwrap();
    let (call, req) = master.next_call().await;
    assert_eq!(call.r#type(), CallType::Kill);
    assert_eq!(req.header("mesos-stream-id").as_deref(), Some("stream-1"));
}

async fn resubscribes_with_the_framework_id_and_drops_offers(format: Format) {
    let mut master = Master::start(format).await;
    let (scheduler, mut events) = start(&master);
    let (_, _, stream) = master.next_subscription().await;
    stream.send(subscribed("fw-9"));
    connected(&mut events).await;
    stream.send(offers(&["o1", "o2", "o3"]));
    wait_for(&mut events, |e| matches!(e, SchedulerEvent::Offers(_))).await;
    assert_eq!(scheduler.offers().len(), 3);
    stream.send(rescind("o3"));
    wait_for(&mut events, |e| matches!(e, SchedulerEvent::Rescind(_))).await;
    assert_eq!(scheduler.offers().len(), 2);
    assert!(scheduler.offer(&OfferId { value: "o1".into() }).is_some());

    // The master closes the stream.
    drop(stream);
    let invalidated = wait_for(&mut events, |e| {
        matches!(e, SchedulerEvent::OffersInvalidated { .. })
    })
    .await;
    match invalidated {
        SchedulerEvent::OffersInvalidated { mut offer_ids } => {
            offer_ids.sort_by(|a, b| a.value.cmp(&b.value));
            let ids: Vec<_> = offer_ids.into_iter().map(|o| o.value).collect();
            assert_eq!(ids, ["o1", "o2"]);
        }
        _ => unreachable!(),
    }
    wait_for(&mut events, |e| {
        matches!(e, SchedulerEvent::Disconnected { .. })
    })
    .await;
    assert!(scheduler.offers().is_empty());
    assert!(!scheduler.is_connected());

    let (call, req, stream) = master.next_subscription().await;
    assert_eq!(call.framework_id.as_ref().unwrap().value, "fw-9");
    assert_eq!(
        call.subscribe.unwrap().framework_info.id.unwrap().value,
        "fw-9"
    );
    assert_eq!(req.header("mesos-stream-id"), None);
    stream.send(subscribed("fw-9"));
    connected(&mut events).await;

    scheduler.revive(vec![]).await.unwrap();
    let (_, req) = master.next_call().await;
    assert_eq!(req.header("mesos-stream-id").as_deref(), Some("stream-2"));
}

async fn a_given_framework_id_is_resumed_from_the_first_subscribe(format: Format) {
    let mut master = Master::start(format).await;
    let framework = FrameworkInfoBuilder::new("tester", "scripted")
        .id("stored-id")
        .build();
    let (_scheduler, _events) = Scheduler::builder(master.client(), framework).start();
    let (call, _, _stream) = master.next_subscription().await;
    assert_eq!(call.framework_id.unwrap().value, "stored-id");
    assert_eq!(
        call.subscribe.unwrap().framework_info.id.unwrap().value,
        "stored-id"
    );
}

async fn stream_cut_mid_record_reconnects(format: Format) {
    let mut master = Master::start(format).await;
    let (_scheduler, mut events) = start(&master);
    let (_, _, stream) = master.next_subscription().await;
    stream.send(subscribed("fw-1"));
    connected(&mut events).await;
    stream.raw(b"100\npartial");
    tokio::time::sleep(Duration::from_millis(50)).await;
    stream.abort();
    let reason = disconnected_reason(&mut events).await;
    assert!(reason.contains("event stream failed"), "{reason}");
    let (call, _, _stream) = master.next_subscription().await;
    assert_eq!(call.framework_id.unwrap().value, "fw-1");
}

async fn undecodable_event_reconnects(format: Format) {
    let mut master = Master::start(format).await;
    let (_scheduler, mut events) = start(&master);
    let (_, _, stream) = master.next_subscription().await;
    stream.send(subscribed("fw-1"));
    connected(&mut events).await;
    // Well framed, but neither a protobuf Event (a field whose length runs past the record) nor
    // a JSON object.
    stream.raw(b"3\n\x12\x05{");
    let reason = disconnected_reason(&mut events).await;
    assert!(reason.contains("undecodable event"), "{reason}");
    let (call, _, _stream) = master.next_subscription().await;
    assert_eq!(call.framework_id.unwrap().value, "fw-1");
    assert_closed(&stream).await;
}

async fn silent_stream_trips_the_heartbeat_watchdog(format: Format) {
    let mut master = Master::start(format).await;
    let (_scheduler, mut events) = start_with(&master, |b| {
        b.heartbeat_interval(Duration::from_millis(50))
            .heartbeat_misses(3)
    });
    let (_, _, stream) = master.next_subscription().await;
    stream.send(subscribed("fw-1"));
    connected(&mut events).await;
    // Heartbeats keep it alive.
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(40)).await;
        stream.send(heartbeat());
    }
    let went_silent = Instant::now();
    let reason = disconnected_reason(&mut events).await;
    assert!(reason.contains("watchdog"), "{reason}");
    assert!(went_silent.elapsed() < Duration::from_secs(3));
    // It resubscribes; the old stream was closed.
    master.next_subscription().await;
    assert_closed(&stream).await;
}

async fn a_hanging_subscribe_is_bounded_by_the_watchdog(format: Format) {
    let hangs = Arc::new(AtomicUsize::new(0));
    let seen = hangs.clone();
    let mut master = Master::scripted(
        format,
        Arc::new(move |n| {
            if n == 1 {
                seen.fetch_add(1, Ordering::SeqCst);
                // An answer that never sends SUBSCRIBED.
                let (reply, handle) = Reply::stream(format.content_type(), Some("silent"));
                std::mem::forget(handle);
                Some(reply)
            } else {
                None
            }
        }),
        Arc::new(|_| Reply::empty(202)),
    )
    .await;
    let (_scheduler, mut events) = start_with(&master, |b| {
        b.heartbeat_interval(Duration::from_millis(50))
            .heartbeat_misses(2)
    });
    let (_, _, stream) = master.next_subscription().await;
    assert_eq!(hangs.load(Ordering::SeqCst), 1);
    stream.send(subscribed("fw-1"));
    connected(&mut events).await;
}

async fn failed_over_error_is_terminal(format: Format) {
    let mut master = Master::start(format).await;
    let (scheduler, mut events) = start(&master);
    let (_, _, stream) = master.next_subscription().await;
    stream.send(subscribed("fw-1"));
    connected(&mut events).await;
    stream.send(error("Framework failed over"));
    let termination = terminated(&mut events).await;
    assert!(
        matches!(&termination, Termination::FailedOver { message } if message == "Framework failed over"),
        "{termination:?}"
    );
    // The stream ends and nobody resubscribes.
    assert!(
        tokio::time::timeout(WAIT, events.next())
            .await
            .unwrap()
            .is_none()
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(master.subscriptions.try_recv().is_err());
    let err = scheduler.revive(vec![]).await.unwrap_err();
    assert!(
        matches!(
            err,
            SchedulerError::Terminated(Termination::FailedOver { .. })
        ),
        "{err}"
    );
    assert_eq!(scheduler.termination(), Some(termination));
}

async fn removed_error_is_terminal(format: Format) {
    let mut master = Master::start(format).await;
    let (_scheduler, mut events) = start(&master);
    let (_, _, stream) = master.next_subscription().await;
    stream.send(error("Framework has been removed"));
    let termination = terminated(&mut events).await;
    assert!(
        matches!(termination, Termination::FrameworkRemoved { .. }),
        "{termination:?}"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(master.subscriptions.try_recv().is_err());
}

async fn other_errors_resubscribe(format: Format) {
    let mut master = Master::start(format).await;
    let (_scheduler, mut events) = start(&master);
    let (_, _, stream) = master.next_subscription().await;
    stream.send(subscribed("fw-1"));
    connected(&mut events).await;
    stream.send(error("Role 'x' is not allowed"));
    let error_event = wait_for(&mut events, |e| matches!(e, SchedulerEvent::Error(_))).await;
    assert!(
        matches!(&error_event, SchedulerEvent::Error(text) if text == "Role 'x' is not allowed"),
        "{error_event:?}"
    );
    let reason = disconnected_reason(&mut events).await;
    assert!(reason.contains("Role 'x' is not allowed"), "{reason}");
    let (call, _, stream) = master.next_subscription().await;
    assert_eq!(call.framework_id.unwrap().value, "fw-1");
    stream.send(subscribed("fw-1"));
    connected(&mut events).await;
}

async fn forbidden_call_makes_the_driver_resubscribe(format: Format) {
    let mut master = Master::scripted(
        format,
        Arc::new(|_| None),
        Arc::new(|call| {
            if call.r#type() == CallType::Revive {
                Reply::text(403, "Framework is not subscribed")
            } else {
                Reply::empty(202)
            }
        }),
    )
    .await;
    let (scheduler, mut events) = start(&master);
    let (_, _, first) = master.next_subscription().await;
    first.send(subscribed("fw-1"));
    connected(&mut events).await;

    let err = scheduler.revive(vec![]).await.unwrap_err();
    match &err {
        SchedulerError::Client(err) => {
            assert_eq!(err.kind(), ErrorKind::SubscriptionLost);
            assert_eq!(err.message(), "Framework is not subscribed");
        }
        other => panic!("unexpected {other:?}"),
    }
    wait_for(&mut events, |e| {
        matches!(e, SchedulerEvent::Disconnected { .. })
    })
    .await;
    let (call, _, second) = master.next_subscription().await;
    assert_eq!(call.framework_id.unwrap().value, "fw-1");
    assert_closed(&first).await;
    second.send(subscribed("fw-1"));
    connected(&mut events).await;
    scheduler.suppress(vec![]).await.unwrap();
    let (_, req) = master.next_call().await; // the 403'd REVIVE
    assert_eq!(req.header("mesos-stream-id").as_deref(), Some("stream-1"));
    let (_, req) = master.next_call().await;
    assert_eq!(req.header("mesos-stream-id").as_deref(), Some("stream-2"));
}

async fn acknowledges_only_updates_with_a_uuid(format: Format) {
    let mut master = Master::start(format).await;
    let (_scheduler, mut events) = start(&master);
    let (_, _, stream) = master.next_subscription().await;
    stream.send(subscribed("fw-1"));
    connected(&mut events).await;
    stream.send(update("reconciled", None));
    stream.send(update("empty-uuid", Some(b"")));
    stream.send(update("reliable", Some(b"0123456789abcdef")));
    for _ in 0..3 {
        let event = wait_for(&mut events, |e| matches!(e, SchedulerEvent::Update { .. })).await;
        assert!(
            matches!(event, SchedulerEvent::Update { ack: None, .. }),
            "automatic mode hands out no tokens: {event:?}"
        );
    }
    let (call, req) = master.next_call().await;
    assert_eq!(call.r#type(), CallType::Acknowledge);
    assert_eq!(req.header("mesos-stream-id").as_deref(), Some("stream-1"));
    let ack = call.acknowledge.unwrap();
    assert_eq!(ack.task_id.value, "reliable");
    assert_eq!(ack.agent_id.value, "agent-1");
    assert_eq!(&ack.uuid[..], b"0123456789abcdef");
    assert_eq!(call.framework_id.unwrap().value, "fw-1");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(master.calls.try_recv().is_err(), "no other acknowledgement");
}

async fn explicit_mode_hands_out_tokens_and_acknowledges_on_request(format: Format) {
    let mut master = Master::start(format).await;
    let (scheduler, mut events) = start_with(&master, |b| b.ack_mode(AckMode::Explicit));
    let (_, _, stream) = master.next_subscription().await;
    stream.send(subscribed("fw-1"));
    connected(&mut events).await;
    stream.send(update("reconciled", None));
    stream.send(update("empty-uuid", Some(b"")));
    stream.send(update("reliable", Some(b"0123456789abcdef")));
    let mut tokens = Vec::new();
    for task in ["reconciled", "empty-uuid", "reliable"] {
        match wait_for(&mut events, |e| matches!(e, SchedulerEvent::Update { .. })).await {
            SchedulerEvent::Update { status, ack } => {
                assert_eq!(status.task_id.value, task);
                assert_eq!(ack.is_some(), task == "reliable", "{task}: {ack:?}");
                tokens.extend(ack);
            }
            _ => unreachable!(),
        }
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(master.calls.try_recv().is_err(), "nothing acknowledged yet");
    let token = tokens.pop().unwrap();
    assert_eq!(token.task_id().value, "reliable");
    assert_eq!(token.agent_id().value, "agent-1");
    scheduler.acknowledge(token).await.unwrap();
    let (call, req) = master.next_call().await;
    assert_eq!(call.r#type(), CallType::Acknowledge);
    assert_eq!(req.header("mesos-stream-id").as_deref(), Some("stream-1"));
    assert_eq!(call.framework_id.unwrap().value, "fw-1");
    let ack = call.acknowledge.unwrap();
    assert_eq!(ack.task_id.value, "reliable");
    assert_eq!(&ack.uuid[..], b"0123456789abcdef");
}

async fn unauthorized_subscribe_is_terminal_with_the_masters_text(format: Format) {
    let master = Master::scripted(
        format,
        Arc::new(|_| Some(Reply::text(401, "Authentication required"))),
        Arc::new(|_| Reply::empty(202)),
    )
    .await;
    let (_scheduler, mut events) = start(&master);
    let termination = terminated(&mut events).await;
    assert_eq!(
        termination,
        Termination::Rejected {
            kind: ErrorKind::Unauthorized,
            status: Some(401),
            message: "Authentication required".into(),
        }
    );
}

async fn unavailable_master_is_retried(format: Format) {
    let mut master = Master::scripted(
        format,
        Arc::new(|n| (n <= 2).then(|| Reply::text(503, "No leader elected"))),
        Arc::new(|_| Reply::empty(202)),
    )
    .await;
    let (_scheduler, mut events) = start(&master);
    let (_, _, stream) = master.next_subscription().await;
    stream.send(subscribed("fw-1"));
    connected(&mut events).await;
    assert_eq!(master.server.requests().len(), 3);
}

async fn stop_ends_without_teardown_and_teardown_is_sent_once(format: Format) {
    let mut master = Master::start(format).await;
    let (scheduler, mut events) = start(&master);
    let (_, _, stream) = master.next_subscription().await;
    stream.send(subscribed("fw-1"));
    connected(&mut events).await;
    scheduler.stop();
    assert_eq!(terminated(&mut events).await, Termination::Stopped);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(master.calls.try_recv().is_err(), "stop sends no TEARDOWN");

    let (scheduler, mut events) = start(&master);
    let (_, _, stream) = master.next_subscription().await;
    stream.send(subscribed("fw-2"));
    connected(&mut events).await;
    scheduler.teardown().await.unwrap();
    let (call, _) = master.next_call().await;
    assert_eq!(call.r#type(), CallType::Teardown);
    // The master closes the stream after TEARDOWN: that is no disconnection to report.
    drop(stream);
    let end = wait_for(&mut events, |e| {
        matches!(
            e,
            SchedulerEvent::Terminated(_) | SchedulerEvent::Disconnected { .. }
        )
    })
    .await;
    assert!(
        matches!(end, SchedulerEvent::Terminated(Termination::Stopped)),
        "{end:?}"
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        master.subscriptions.try_recv().is_err(),
        "no resubscription"
    );
}

async fn invalid_calls_are_refused_locally(format: Format) {
    let mut master = Master::start(format).await;
    let (scheduler, mut events) = start(&master);
    let (_, _, stream) = master.next_subscription().await;
    stream.send(subscribed("fw-1"));
    connected(&mut events).await;
    let unknown = scheduler.call(Call::default()).await.unwrap_err();
    assert!(
        matches!(unknown, SchedulerError::InvalidCall(_)),
        "{unknown}"
    );
    let mut subscribe = Call::default();
    subscribe.set_type(CallType::Subscribe);
    let err = scheduler.call(subscribe).await.unwrap_err();
    assert!(matches!(err, SchedulerError::InvalidCall(_)), "{err}");
    let err = scheduler.reconcile(vec![]).await.unwrap_err();
    assert!(matches!(err, SchedulerError::InvalidCall(_)), "{err}");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(master.calls.try_recv().is_err());
}

async fn typed_calls_carry_their_payloads(format: Format) {
    let mut master = Master::start(format).await;
    let (scheduler, mut events) = start(&master);
    let (_, _, stream) = master.next_subscription().await;
    stream.send(subscribed("fw-1"));
    connected(&mut events).await;
    stream.send(offers(&["o1"]));
    wait_for(&mut events, |e| matches!(e, SchedulerEvent::Offers(_))).await;

    let o1 = OfferId { value: "o1".into() };
    let task = mesos_sdk::v1::TaskInfo {
        name: "t".into(),
        task_id: TaskId { value: "t1".into() },
        agent_id: AgentId { value: "a".into() },
        ..Default::default()
    };
    scheduler
        .accept(
            vec![o1.clone()],
            vec![mesos_sdk::scheduler::calls::operations::launch(vec![task])],
            Some(Duration::from_secs(10)),
        )
        .await
        .unwrap();
    assert!(
        scheduler.offers().is_empty(),
        "accepted offers leave the cache"
    );
    let (call, _) = master.next_call().await;
    let accept = call.accept.unwrap();
    assert_eq!(accept.offer_ids, vec![o1.clone()]);
    assert_eq!(
        accept.operations[0].launch.as_ref().unwrap().task_infos[0].name,
        "t"
    );
    assert_eq!(accept.filters.unwrap().refuse_seconds(), 10.0);

    scheduler
        .decline(vec![o1], Some(Duration::from_secs(60)))
        .await
        .unwrap();
    let (call, _) = master.next_call().await;
    assert_eq!(call.r#type(), CallType::Decline);

    scheduler
        .reconcile(vec![(TaskId { value: "t1".into() }, None)])
        .await
        .unwrap();
    let (call, _) = master.next_call().await;
    assert_eq!(call.reconcile.unwrap().tasks.len(), 1);

    scheduler.reconcile_all().await.unwrap();
    let (call, _) = master.next_call().await;
    assert!(call.reconcile.unwrap().tasks.is_empty());

    scheduler
        .message(
            AgentId { value: "a".into() },
            mesos_sdk::v1::ExecutorId { value: "e".into() },
            Bytes::from_static(b"hi"),
        )
        .await
        .unwrap();
    let (call, _) = master.next_call().await;
    assert_eq!(&call.message.unwrap().data[..], b"hi");

    let info = FrameworkInfoBuilder::new("tester", "renamed").build();
    scheduler.update_framework(info, vec![]).await.unwrap();
    let (call, _) = master.next_call().await;
    let update = call.update_framework.unwrap();
    assert_eq!(update.framework_info.id.unwrap().value, "fw-1");
    assert_eq!(update.framework_info.name, "renamed");

    scheduler
        .shutdown_executor(
            mesos_sdk::v1::ExecutorId { value: "e".into() },
            AgentId { value: "a".into() },
        )
        .await
        .unwrap();
    let (call, _) = master.next_call().await;
    assert_eq!(call.r#type(), CallType::Shutdown);
}

#[tokio::test]
async fn protobuf_is_the_default_format() {
    let client = Client::builder()
        .endpoint("http://127.0.0.1:1")
        .build()
        .unwrap();
    assert_eq!(client.format(), Format::Protobuf);
}

async fn raw_accept_and_decline_calls_leave_the_offer_cache(format: Format) {
    let mut master = Master::start(format).await;
    let (scheduler, mut events) = start(&master);
    let (_, _, stream) = master.next_subscription().await;
    stream.send(subscribed("fw-1"));
    connected(&mut events).await;
    stream.send(offers(&["o1", "o2", "o3"]));
    wait_for(&mut events, |e| matches!(e, SchedulerEvent::Offers(_))).await;
    assert_eq!(scheduler.offers().len(), 3);

    let id = |v: &str| OfferId { value: v.into() };
    scheduler
        .call(mesos_sdk::scheduler::calls::decline(vec![id("o1")], None))
        .await
        .unwrap();
    scheduler
        .call(mesos_sdk::scheduler::calls::accept(
            vec![id("o2")],
            vec![],
            None,
        ))
        .await
        .unwrap();
    let left: Vec<_> = scheduler.offers().into_iter().map(|o| o.id.value).collect();
    assert_eq!(left, ["o3"], "offers used by raw calls leave the cache");
    let (call, _) = master.next_call().await;
    assert_eq!(call.r#type(), CallType::Decline);
}

async fn conflict_on_update_framework_means_removed(format: Format) {
    let mut master = Master::scripted(
        format,
        Arc::new(|_| None),
        Arc::new(|call| {
            if call.r#type() == CallType::UpdateFramework {
                Reply::text(409, "Framework has been removed")
            } else {
                Reply::empty(202)
            }
        }),
    )
    .await;
    let (scheduler, mut events) = start(&master);
    let (_, _, stream) = master.next_subscription().await;
    stream.send(subscribed("fw-1"));
    connected(&mut events).await;

    let framework = mesos_sdk::scheduler::FrameworkInfoBuilder::new("u", "n")
        .id("fw-1")
        .build();
    let err = scheduler
        .update_framework(framework, vec![])
        .await
        .unwrap_err();
    match &err {
        SchedulerError::Client(err) => assert_eq!(err.status().map(|s| s.as_u16()), Some(409)),
        other => panic!("unexpected {other:?}"),
    }
    let termination = terminated(&mut events).await;
    assert!(
        matches!(termination, Termination::FrameworkRemoved { .. }),
        "{termination:?}"
    );
    assert_closed(&stream).await;
}

async fn dropping_every_handle_stops_the_driver(format: Format) {
    let mut master = Master::start(format).await;
    let (scheduler, mut events) = start(&master);
    let (_, _, stream) = master.next_subscription().await;
    stream.send(subscribed("fw-1"));
    connected(&mut events).await;
    let clone = scheduler.clone();
    drop(scheduler);
    stream.send(heartbeat());
    wait_for(&mut events, |e| matches!(e, SchedulerEvent::Heartbeat)).await;
    drop(clone);
    assert_eq!(terminated(&mut events).await, Termination::Stopped);
    assert_closed(&stream).await;
    assert!(master.calls.try_recv().is_err(), "no TEARDOWN");
}

in_both_formats!(
    subscribes_and_sends_the_stream_id_on_every_other_call,
    resubscribes_with_the_framework_id_and_drops_offers,
    a_given_framework_id_is_resumed_from_the_first_subscribe,
    stream_cut_mid_record_reconnects,
    undecodable_event_reconnects,
    silent_stream_trips_the_heartbeat_watchdog,
    a_hanging_subscribe_is_bounded_by_the_watchdog,
    failed_over_error_is_terminal,
    removed_error_is_terminal,
    other_errors_resubscribe,
    forbidden_call_makes_the_driver_resubscribe,
    acknowledges_only_updates_with_a_uuid,
    explicit_mode_hands_out_tokens_and_acknowledges_on_request,
    unauthorized_subscribe_is_terminal_with_the_masters_text,
    unavailable_master_is_retried,
    stop_ends_without_teardown_and_teardown_is_sent_once,
    invalid_calls_are_refused_locally,
    typed_calls_carry_their_payloads,
    raw_accept_and_decline_calls_leave_the_offer_cache,
    conflict_on_update_framework_means_removed,
    dropping_every_handle_stops_the_driver,
);
