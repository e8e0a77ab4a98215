//! The etcd watch producer: a task that feeds a [`WatchStream`] and survives broken
//! connections.
//!
//! It remembers the revision after the last one it delivered and, when the gRPC stream breaks
//! (etcd restarted, member lost, network cut), opens a new watch from exactly there after a
//! short capped backoff, so no event is missed or repeated (etcd sends all events of one
//! revision in one response). A compacted start or resume point yields [`Error::Compacted`]
//! and ends the stream. Dropping the stream stops the task.

use std::time::Duration;

use etcd_client as ec;
use tokio::sync::mpsc;

use super::convert;
use crate::storage::channel_stream::ChannelStream;
use crate::storage::types::{EventKind, KeyValue, WatchEvent, prefix_end};
use crate::storage::{Error, Result, WatchStream};

/// First pause before reconnecting a broken watch.
const RETRY_MIN: Duration = Duration::from_millis(50);
/// Longest pause between reconnection attempts.
const RETRY_MAX: Duration = Duration::from_secs(1);

/// Starts the producer task and answers its stream.
pub(super) fn start(client: ec::Client, prefix: String, from_revision: i64) -> WatchStream {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let closed = tx.clone();
        tokio::select! {
            () = closed.closed() => {}
            () = run(client, prefix, from_revision, tx) => {}
        }
    });
    Box::pin(ChannelStream::new(rx))
}

/// How one watch connection ended.
enum End {
    /// The consumer is gone or the watch is over for good.
    Done,
    /// The connection broke: reconnect.
    Broken(String),
}

async fn run(
    client: ec::Client,
    prefix: String,
    mut next: i64,
    tx: mpsc::UnboundedSender<Result<WatchEvent>>,
) {
    let mut pause = RETRY_MIN;
    loop {
        match connection(&client, &prefix, &mut next, &tx, &mut pause).await {
            End::Done => return,
            End::Broken(reason) => {
                tracing::debug!(%prefix, next, %reason, "etcd watch broken; resuming");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(RETRY_MAX);
            }
        }
    }
}

/// One watch connection, from revision `next`; advances `next` past every delivered revision.
async fn connection(
    client: &ec::Client,
    prefix: &str,
    next: &mut i64,
    tx: &mpsc::UnboundedSender<Result<WatchEvent>>,
    pause: &mut Duration,
) -> End {
    let mut options = ec::WatchOptions::new().with_start_revision(*next);
    options = match prefix_end(prefix) {
        Some(end) => options.with_range(end),
        None => options.with_from_key(),
    };
    let key = if prefix.is_empty() { "\0" } else { prefix };
    let mut stream = match client.watch_client().watch(key, Some(options)).await {
        Ok(stream) => stream,
        Err(e) => return End::Broken(e.to_string()),
    };
    loop {
        let response = match stream.message().await {
            Ok(Some(response)) => response,
            Ok(None) => return End::Broken("stream ended".into()),
            Err(e) => return End::Broken(e.to_string()),
        };
        if response.compact_revision() > 0 {
            let _ = tx.send(Err(Error::Compacted {
                requested: *next,
                compacted: response.compact_revision(),
            }));
            return End::Done;
        }
        if response.canceled() {
            return End::Broken(format!("canceled: {}", response.cancel_reason()));
        }
        if response.created() {
            *pause = RETRY_MIN;
        }
        let mut last = None;
        for event in response.events() {
            let Some(kv) = event.kv() else { continue };
            let kind = match event.event_type() {
                ec::EventType::Put => EventKind::Put,
                ec::EventType::Delete => EventKind::Delete,
            };
            let kv = match kind {
                EventKind::Put => convert::kv(kv),
                EventKind::Delete => KeyValue {
                    key: convert::key_string(kv.key()),
                    value: bytes::Bytes::new(),
                    create_revision: 0,
                    mod_revision: kv.mod_revision(),
                    version: 0,
                    lease: None,
                },
            };
            last = Some(kv.mod_revision);
            if tx.send(Ok(WatchEvent { kind, kv })).is_err() {
                return End::Done;
            }
        }
        if let Some(last) = last {
            *next = last + 1;
        }
    }
}
