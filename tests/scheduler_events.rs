//! The scheduler runtime's typed events against a scripted master: every event of the master
//! arrives as its own `SchedulerEvent` variant (FAILURE with its exit status decoded), events
//! without a variant arrive whole as `Other`, and operation updates are acknowledged in both
//! acknowledgement modes.

#[path = "common/scheduler_master.rs"]
#[macro_use]
mod scheduler_master;
#[path = "common/scripted.rs"]
mod scripted;

use std::time::Duration;

use bytes::Bytes;
use mesos_sdk::codec::Format;
use mesos_sdk::scheduler::{AckMode, ExitStatus, SchedulerEvent, SchedulerEvents};
use mesos_sdk::v1::scheduler::Event;
use mesos_sdk::v1::scheduler::call::Type as CallType;
use mesos_sdk::v1::scheduler::event::{self, Type as EventType};
use mesos_sdk::v1::{
    AgentId, ExecutorId, InverseOffer, OfferId, OperationId, OperationState, OperationStatus, Uuid,
};
use scheduler_master::*;

fn inverse_offers(id: &str) -> Event {
    Event {
        inverse_offers: Some(event::InverseOffers {
            inverse_offers: vec![InverseOffer {
                id: OfferId { value: id.into() },
                ..InverseOffer::default()
            }],
        }),
        ..typed(EventType::InverseOffers)
    }
}

fn rescind_inverse_offer(id: &str) -> Event {
    Event {
        rescind_inverse_offer: Some(event::RescindInverseOffer {
            inverse_offer_id: OfferId { value: id.into() },
        }),
        ..typed(EventType::RescindInverseOffer)
    }
}

fn operation_update(operation: &str, uuid: Option<&'static [u8]>) -> Event {
    let mut status = OperationStatus {
        operation_id: Some(OperationId {
            value: operation.into(),
        }),
        uuid: uuid.map(|uuid| Uuid {
            value: Bytes::from_static(uuid),
        }),
        agent_id: Some(AgentId {
            value: "agent-1".into(),
        }),
        ..OperationStatus::default()
    };
    status.set_state(OperationState::OperationFinished);
    Event {
        update_operation_status: Some(event::UpdateOperationStatus { status }),
        ..typed(EventType::UpdateOperationStatus)
    }
}

fn message(data: &'static [u8]) -> Event {
    Event {
        message: Some(event::Message {
            agent_id: AgentId {
                value: "agent-1".into(),
            },
            executor_id: ExecutorId {
                value: "executor-1".into(),
            },
            data: Bytes::from_static(data),
        }),
        ..typed(EventType::Message)
    }
}

fn failure(executor: Option<&str>, wait_status: Option<i32>) -> Event {
    Event {
        failure: Some(event::Failure {
            agent_id: Some(AgentId {
                value: "agent-1".into(),
            }),
            executor_id: executor.map(|value| ExecutorId {
                value: value.into(),
            }),
            status: wait_status,
        }),
        ..typed(EventType::Failure)
    }
}

/// The next event, whatever it is.
async fn next(events: &mut SchedulerEvents) -> SchedulerEvent {
    wait_for(events, |_| true).await
}

async fn every_master_event_has_its_variant(format: Format) {
    let mut master = Master::start(format).await;
    let (_scheduler, mut events) = start(&master);
    let (_, _, stream) = master.next_subscription().await;
    stream.send(subscribed("fw-1"));
    connected(&mut events).await;

    stream.send(offers(&["o1", "o2"]));
    stream.send(inverse_offers("i1"));
    stream.send(rescind("o1"));
    stream.send(rescind_inverse_offer("i1"));
    stream.send(update("t1", Some(b"0123456789abcdef")));
    stream.send(operation_update("op-1", Some(b"fedcba9876543210")));
    stream.send(message(b"hello"));
    stream.send(failure(None, None));
    stream.send(failure(Some("exited"), Some(3 << 8)));
    stream.send(failure(Some("killed"), Some(9)));
    stream.send(heartbeat());
    stream.send(typed(EventType::Unknown));
    stream.send(typed(EventType::Offers)); // a known type without its payload

    match next(&mut events).await {
        SchedulerEvent::Offers(offers) => {
            let ids: Vec<_> = offers.into_iter().map(|o| o.id.value).collect();
            assert_eq!(ids, ["o1", "o2"]);
        }
        other => panic!("{other:?}"),
    }
    match next(&mut events).await {
        SchedulerEvent::InverseOffers(inverse) => assert_eq!(inverse[0].id.value, "i1"),
        other => panic!("{other:?}"),
    }
    match next(&mut events).await {
        SchedulerEvent::Rescind(id) => assert_eq!(id.value, "o1"),
        other => panic!("{other:?}"),
    }
    match next(&mut events).await {
        SchedulerEvent::RescindInverseOffer(id) => assert_eq!(id.value, "i1"),
        other => panic!("{other:?}"),
    }
    match next(&mut events).await {
        SchedulerEvent::Update { status, ack } => {
            assert_eq!(status.task_id.value, "t1");
            assert!(ack.is_none(), "automatic mode acknowledges by itself");
        }
        other => panic!("{other:?}"),
    }
    match next(&mut events).await {
        SchedulerEvent::OperationUpdate { status, ack } => {
            assert_eq!(status.state(), OperationState::OperationFinished);
            assert_eq!(status.operation_id.unwrap().value, "op-1");
            assert!(ack.is_none());
        }
        other => panic!("{other:?}"),
    }
    match next(&mut events).await {
        SchedulerEvent::Message {
            agent_id,
            executor_id,
            data,
        } => {
            assert_eq!(agent_id.value, "agent-1");
            assert_eq!(executor_id.value, "executor-1");
            assert_eq!(&data[..], b"hello");
        }
        other => panic!("{other:?}"),
    }
    match next(&mut events).await {
        SchedulerEvent::Failure {
            agent_id,
            executor_id,
            status,
        } => {
            assert_eq!(agent_id.unwrap().value, "agent-1");
            assert_eq!(executor_id, None, "an agent was removed");
            assert_eq!(status, None);
        }
        other => panic!("{other:?}"),
    }
    match next(&mut events).await {
        SchedulerEvent::Failure {
            executor_id,
            status,
            ..
        } => {
            assert_eq!(executor_id.unwrap().value, "exited");
            assert_eq!(status, Some(ExitStatus::Exited(3)));
        }
        other => panic!("{other:?}"),
    }
    match next(&mut events).await {
        SchedulerEvent::Failure { status, .. } => assert_eq!(
            status,
            Some(ExitStatus::Signaled {
                signal: 9,
                core_dumped: false
            })
        ),
        other => panic!("{other:?}"),
    }
    assert!(matches!(next(&mut events).await, SchedulerEvent::Heartbeat));
    match next(&mut events).await {
        SchedulerEvent::Other(event) => assert_eq!(event.r#type(), EventType::Unknown),
        other => panic!("{other:?}"),
    }
    match next(&mut events).await {
        SchedulerEvent::Other(event) => {
            assert_eq!(event.r#type(), EventType::Offers);
            assert!(event.offers.is_none());
        }
        other => panic!("{other:?}"),
    }
    // Automatic mode acknowledged the task update and the operation update.
    let mut acknowledged = Vec::new();
    for _ in 0..2 {
        let (call, _) = master.next_call().await;
        acknowledged.push(call.r#type());
    }
    acknowledged.sort_by_key(|kind| *kind as i32);
    assert_eq!(
        acknowledged,
        [CallType::Acknowledge, CallType::AcknowledgeOperationStatus]
    );

    stream.send(error("Role 'x' is not allowed"));
    match next(&mut events).await {
        SchedulerEvent::Error(text) => assert_eq!(text, "Role 'x' is not allowed"),
        other => panic!("{other:?}"),
    }
}

async fn explicit_mode_hands_out_operation_tokens(format: Format) {
    let mut master = Master::start(format).await;
    let (scheduler, mut events) = start_with(&master, |b| b.ack_mode(AckMode::Explicit));
    let (_, _, stream) = master.next_subscription().await;
    stream.send(subscribed("fw-1"));
    connected(&mut events).await;
    stream.send(operation_update("no-uuid", None));
    stream.send(operation_update("op-1", Some(b"fedcba9876543210")));
    let mut tokens = Vec::new();
    for expected in ["no-uuid", "op-1"] {
        match wait_for(&mut events, |e| {
            matches!(e, SchedulerEvent::OperationUpdate { .. })
        })
        .await
        {
            SchedulerEvent::OperationUpdate { status, ack } => {
                assert_eq!(status.operation_id.unwrap().value, expected);
                assert_eq!(ack.is_some(), expected == "op-1", "{expected}: {ack:?}");
                tokens.extend(ack);
            }
            _ => unreachable!(),
        }
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(master.calls.try_recv().is_err(), "nothing acknowledged yet");
    scheduler
        .acknowledge_operation(tokens.pop().unwrap())
        .await
        .unwrap();
    let (call, req) = master.next_call().await;
    assert_eq!(call.r#type(), CallType::AcknowledgeOperationStatus);
    assert_eq!(req.header("mesos-stream-id").as_deref(), Some("stream-1"));
    let ack = call.acknowledge_operation_status.unwrap();
    assert_eq!(ack.operation_id.value, "op-1");
    assert_eq!(ack.agent_id.unwrap().value, "agent-1");
    assert_eq!(&ack.uuid[..], b"fedcba9876543210");
}

/// An event type this SDK does not know (protobuf keeps the number) arrives whole.
#[tokio::test]
async fn an_event_type_newer_than_the_sdk_arrives_whole() {
    let mut master = Master::start(Format::Protobuf).await;
    let (_scheduler, mut events) = start(&master);
    let (_, _, stream) = master.next_subscription().await;
    stream.send(subscribed("fw-1"));
    connected(&mut events).await;
    stream.send(Event {
        r#type: Some(99),
        ..Event::default()
    });
    match next(&mut events).await {
        SchedulerEvent::Other(event) => assert_eq!(event.r#type, Some(99)),
        other => panic!("{other:?}"),
    }
}

in_both_formats!(
    every_master_event_has_its_variant,
    explicit_mode_hands_out_operation_tokens,
);
