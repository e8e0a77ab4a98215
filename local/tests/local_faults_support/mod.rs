//! Test support for agent loss, partitions and fault injection on a whole local cluster: a
//! cluster with short ping intervals, a framework that launches one command task and waits for
//! it to run, acknowledgements, reconciliation and operator calls, all as raw HTTP with
//! hand-written JSON.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use crate::local_master_support::*;
use mesos_local::cluster::{LocalCluster, LocalClusterBuilder};
use serde_json::{Value, json};

/// A cluster whose master pings every 50 ms and marks an agent unreachable after 1 s of
/// silence (long enough that a busy machine does not lose agents by itself); updates are resent
/// every 200 ms.
pub fn builder(agents: usize) -> LocalClusterBuilder {
    LocalCluster::builder()
        .agents(agents)
        .resources("cpus:2;mem:1024;disk:1000;ports:[31000-31099]")
        .heartbeat_interval(Duration::from_secs(30))
        .allocation_interval(Duration::from_millis(20))
        .agent_ping_interval(Duration::from_millis(50))
        .agent_removal_timeout(Duration::from_secs(1))
        .status_update_retry(Duration::from_millis(200), Duration::from_secs(1))
        .executor_shutdown_grace_period(Duration::from_millis(200))
}

/// A framework info, PARTITION_AWARE or not.
pub fn info(name: &str, partition_aware: bool) -> Value {
    let mut info = json!({"user": "tester", "name": name});
    if partition_aware {
        info["capabilities"] = json!([{"type": "PARTITION_AWARE"}]);
    }
    info
}

/// A subscribed framework.
pub struct Fw {
    pub addr: SocketAddr,
    pub stream: Stream,
    pub id: String,
    pub sid: String,
}

impl Fw {
    pub async fn subscribe(addr: SocketAddr, info: Value) -> Self {
        let (stream, id) = subscribe(addr, info).await;
        let sid = stream.stream_id();
        Self {
            addr,
            stream,
            id,
            sid,
        }
    }

    pub async fn call(&self, body: Value) -> RawResponse {
        let r = call(self.addr, &self.sid, body).await;
        assert!(
            r.status == 202 || r.status == 200,
            "{} {}",
            r.status,
            r.text()
        );
        r
    }

    pub async fn ack(&self, status: &Value) {
        if status["uuid"].is_string() {
            self.call(
                json!({"type": "ACKNOWLEDGE", "framework_id": {"value": self.id},
                   "acknowledge": {"agent_id": status["agent_id"], "task_id": status["task_id"],
                                   "uuid": status["uuid"]}}),
            )
            .await;
        }
    }

    /// Launches `command` as task `task_id` on the first offer; returns the offer's agent id.
    pub async fn launch(&mut self, task_id: &str, command: &str) -> String {
        let offer = self.stream.next_of("OFFERS").await["offers"]["offers"][0].clone();
        let task = json!({
            "name": task_id, "task_id": {"value": task_id}, "agent_id": offer["agent_id"],
            "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                          {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}}],
            "command": {"value": command}
        });
        self.call(json!({"type": "ACCEPT", "framework_id": {"value": self.id},
               "accept": {"offer_ids": [offer["id"]],
                          "operations": [{"type": "LAUNCH", "launch": {"task_infos": [task]}}]}}))
            .await;
        offer["agent_id"]["value"].as_str().unwrap().to_string()
    }

    /// The next UPDATE's status (acknowledged when it carries a uuid).
    pub async fn update(&mut self) -> Value {
        let status = self.stream.next_of("UPDATE").await["update"]["status"].clone();
        self.ack(&status).await;
        status
    }

    /// Waits (acknowledging) for an update of `task_id` in `state`.
    pub async fn wait_state(&mut self, task_id: &str, state: &str) -> Value {
        loop {
            let status = self.update().await;
            if status["task_id"]["value"] == task_id && status["state"] == state {
                return status;
            }
        }
    }

    /// Explicit reconciliation of one task; returns the answer's status.
    pub async fn reconcile(&mut self, task_id: &str, agent_id: &str) -> Value {
        self.call(
            json!({"type": "RECONCILE", "framework_id": {"value": self.id},
               "reconcile": {"tasks": [{"task_id": {"value": task_id},
                                        "agent_id": {"value": agent_id}}]}}),
        )
        .await;
        loop {
            let status = self.update().await;
            if status["task_id"]["value"] == task_id && status["reason"] == "REASON_RECONCILIATION"
            {
                return status;
            }
        }
    }
}

/// An operator API call with a JSON body; the whole answer.
pub async fn operator(addr: SocketAddr, body: Value) -> RawResponse {
    raw(
        addr,
        "POST",
        "/api/v1",
        &[
            ("Content-Type", "application/json"),
            ("Accept", "application/json"),
        ],
        body.to_string().as_bytes(),
    )
    .await
}

/// Polls `check` every 10 ms until it holds (panics after [`WAIT`]).
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
