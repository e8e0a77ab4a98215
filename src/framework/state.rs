//! The framework's state as JSON (served at the server's `/state`): the connection state, the
//! leadership, counts per phase, every instance with its state and reason, and the pending
//! instances with their placement's reason. The event loop publishes a fresh snapshot on
//! every tick and on (dis)connection into a `watch` channel, so a request costs no lock and no
//! store read.

use serde_json::{Value, json};
use tokio::sync::watch;

use crate::taskmgr::{Phase, TaskManager};

/// The connection to the master, as the event loop saw it last.
#[derive(Debug, Clone, Default)]
pub(crate) struct Connection {
    /// `connecting`, `subscribed` or `disconnected`.
    pub(crate) state: &'static str,
    /// The framework id of the last subscription.
    pub(crate) framework_id: Option<String>,
    /// Subscriptions so far.
    pub(crate) subscriptions: u64,
    /// Why the last subscription ended, if it did.
    pub(crate) last_error: Option<String>,
}

/// Publishes the snapshots.
#[derive(Debug)]
pub(crate) struct StatePublisher {
    name: String,
    leadership: &'static str,
    connection: std::sync::Mutex<Connection>,
    tx: watch::Sender<Value>,
}

impl StatePublisher {
    /// A publisher for framework `name` with `leadership` (`leader`, `ha-term`) and the
    /// receiving end for the server.
    pub(crate) fn new(name: &str, leadership: &'static str) -> (Self, watch::Receiver<Value>) {
        let (tx, rx) = watch::channel(json!({"framework": name, "connection": "connecting"}));
        let publisher = Self {
            name: name.to_owned(),
            leadership,
            connection: std::sync::Mutex::new(Connection {
                state: "connecting",
                ..Connection::default()
            }),
            tx,
        };
        (publisher, rx)
    }

    /// Changes the connection state with `f`; answers the state after.
    pub(crate) fn connection(&self, f: impl FnOnce(&mut Connection)) -> Connection {
        let mut connection = self
            .connection
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut connection);
        connection.clone()
    }

    /// Builds and publishes a snapshot (skipped while nobody listens).
    pub(crate) async fn publish(&self, tasks: &TaskManager) {
        if self.tx.receiver_count() == 0 {
            return;
        }
        let connection = self.connection(|_| {});
        let records = tasks.tasks().await;
        let summary = tasks.summary().await;
        let pending: Vec<Value> = records
            .iter()
            .filter(|r| r.phase == Phase::Pending)
            .map(|r| {
                json!({
                    "spec": r.spec,
                    "index": r.index,
                    "reason": r.reason,
                    "not_before_ms": r.not_before_ms,
                    "restarts": r.restarts,
                })
            })
            .collect();
        let value = json!({
            "framework": self.name,
            "framework_id": connection.framework_id,
            "leadership": self.leadership,
            "connection": connection.state,
            "subscriptions": connection.subscriptions,
            "last_error": connection.last_error,
            "summary": {
                "pending": summary.pending,
                "launching": summary.launching,
                "active": summary.active,
                "killing": summary.killing,
                "done": summary.done,
                "given_up": summary.given_up,
            },
            "pending": pending,
            "tasks": records,
        });
        self.tx.send_replace(value);
    }
}
