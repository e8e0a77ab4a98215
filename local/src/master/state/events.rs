//! Scheduler events the master makes itself (UPDATE, ERROR, HEARTBEAT), their RecordIO
//! framing, and the heartbeat timers of scheduler and operator streams.

use super::*;

pub(super) fn update_event(status: TaskStatus) -> scheduler::Event {
    scheduler::Event {
        r#type: Some(scheduler::event::Type::Update as i32),
        update: Some(event::Update { status }),
        ..Default::default()
    }
}

pub(super) fn error_event(message: &str) -> scheduler::Event {
    scheduler::Event {
        r#type: Some(scheduler::event::Type::Error as i32),
        error: Some(event::Error {
            message: message.to_string(),
        }),
        ..Default::default()
    }
}

pub(super) fn heartbeat_event() -> scheduler::Event {
    scheduler::Event {
        r#type: Some(scheduler::event::Type::Heartbeat as i32),
        ..Default::default()
    }
}

pub(super) fn send_error_and_close(subscription: Subscription, message: &str) {
    tracing::info!(%message, "refusing subscription");
    if let Some(bytes) = record(subscription.format, &error_event(message)) {
        let _ = subscription.tx.send(bytes);
    }
}

#[derive(Clone, Copy)]
pub(super) enum Heartbeat {
    Scheduler,
    Operator,
}

/// Sends HEARTBEAT every interval on `tx` until the stream closes or the master stops.
pub(super) fn spawn_heartbeats(
    shared: &Arc<Shared>,
    tx: mpsc::UnboundedSender<Bytes>,
    format: Format,
    kind: Heartbeat,
) {
    let interval = shared.config.heartbeat_interval;
    let shutdown = shared.shutdown.clone();
    let beat = match kind {
        Heartbeat::Scheduler => record(format, &heartbeat_event()),
        Heartbeat::Operator => record(
            format,
            &v1::master::Event {
                r#type: Some(v1::master::event::Type::Heartbeat as i32),
                ..Default::default()
            },
        ),
    };
    let Some(beat) = beat else {
        return;
    };
    // A weak sender: dropping the subscription's sender ends the stream.
    let tx = tx.downgrade();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {
                    let Some(tx) = tx.upgrade() else { return };
                    if tx.send(beat.clone()).is_err() {
                        return;
                    }
                }
                _ = shutdown.cancelled() => return,
            }
        }
    });
}
