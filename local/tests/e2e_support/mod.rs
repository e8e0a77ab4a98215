//! Helpers shared by the end-to-end tests.

#![allow(dead_code)]

use std::time::Duration;

use futures::StreamExt;
use mesos_sdk::scheduler::{SchedulerEvent, SchedulerEvents};
use mesos_sdk::v1::{FrameworkId, Offer, Resource, TaskStatus, value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::time::timeout;

/// Serves one file over HTTP/1.1 on loopback, for the agent's fetcher.
pub async fn serve_file(name: &str, bytes: Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let bytes = std::sync::Arc::new(bytes);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let bytes = bytes.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
                    bytes.len()
                );
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(&bytes).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    format!("http://{addr}/{name}")
}

/// How long a test waits for any one event.
pub const WAIT: Duration = Duration::from_secs(30);

/// The user tasks run as: the current one.
pub fn user() -> String {
    std::env::var("USER").unwrap_or_else(|_| "root".to_string())
}

/// The next scheduler event, failing the test after [`WAIT`].
pub async fn next_event(events: &mut SchedulerEvents) -> SchedulerEvent {
    timeout(WAIT, events.next())
        .await
        .expect("an event arrives in time")
        .expect("the event stream is open")
}

/// Waits for SUBSCRIBED and returns the framework id.
pub async fn connected(events: &mut SchedulerEvents) -> FrameworkId {
    loop {
        if let SchedulerEvent::Connected { framework_id, .. } = next_event(events).await {
            return framework_id;
        }
    }
}

/// The first offer of the next OFFERS event.
pub async fn next_offer(events: &mut SchedulerEvents) -> Offer {
    loop {
        if let SchedulerEvent::Offers(offers) = next_event(events).await
            && let Some(offer) = offers.into_iter().next()
        {
            return offer;
        }
    }
}

/// The status of the next UPDATE event.
pub async fn next_update(events: &mut SchedulerEvents) -> TaskStatus {
    loop {
        if let SchedulerEvent::Update { status, .. } = next_event(events).await {
            return *status;
        }
    }
}

/// A scalar resource allocated to `role`.
pub fn scalar(name: &str, amount: f64, role: &str) -> Resource {
    Resource {
        name: name.to_string(),
        r#type: value::Type::Scalar as i32,
        scalar: Some(value::Scalar { value: amount }),
        allocation_info: Some(mesos_sdk::v1::resource::AllocationInfo {
            role: Some(role.to_string()),
        }),
        ..Default::default()
    }
}
