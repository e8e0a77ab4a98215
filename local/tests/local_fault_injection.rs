//! Fault injection on a whole local cluster, each with the effect real Mesos shows for the same
//! fault: a killed executor (command and custom), rescinded offers, lost and delayed
//! acknowledgements, a restarted master that learns the running tasks from its agents, and the
//! `/__local/` control endpoint (off by default). Raw HTTP with hand-written JSON.

mod local_faults_support;
mod local_master_support;

use std::time::Duration;

use local_faults_support::*;
use local_master_support::*;
use mesos_local::master::AckFault;
use serde_json::json;

#[tokio::test]
async fn killing_a_command_tasks_executor_fails_the_task() {
    let cluster = builder(1).start().await.unwrap();
    let mut fw = Fw::subscribe(cluster.master().addr(), info("fw", false)).await;
    fw.launch("t1", "sleep 20").await;
    fw.wait_state("t1", "TASK_RUNNING").await;
    assert!(!cluster.kill_executor(&fw.id, "unknown"));
    assert!(!cluster.kill_executor("unknown", "t1"));
    assert!(cluster.kill_executor(&fw.id, "t1"));
    let status = fw.wait_state("t1", "TASK_FAILED").await;
    assert!(status["uuid"].is_string());
    cluster.shutdown().await;
}

#[tokio::test]
async fn killing_a_custom_executor_fails_its_tasks_and_reports_the_executor() {
    let cluster = builder(1).start().await.unwrap();
    let mut fw = Fw::subscribe(cluster.master().addr(), info("fw", false)).await;
    let offer = fw.stream.next_of("OFFERS").await["offers"]["offers"][0].clone();
    let resources = json!([{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                           {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}}]);
    let task = json!({
        "name": "custom", "task_id": {"value": "c1"}, "agent_id": offer["agent_id"],
        "resources": resources,
        "data": b64(b"sleep 20"),
        "executor": {"executor_id": {"value": "ex"},
                     "command": {"value": env!("CARGO_BIN_EXE_mesos-example-executor")},
                     "resources": resources}
    });
    fw.call(json!({"type": "ACCEPT", "framework_id": {"value": fw.id},
                   "accept": {"offer_ids": [offer["id"]],
                              "operations": [{"type": "LAUNCH", "launch": {"task_infos": [task]}}]}}))
        .await;
    fw.wait_state("c1", "TASK_RUNNING").await;
    assert!(cluster.kill_executor(&fw.id, "ex"));
    let status = fw.wait_state("c1", "TASK_FAILED").await;
    assert_eq!(status["reason"], "REASON_EXECUTOR_TERMINATED");
    let failure = fw.stream.next_of("FAILURE").await;
    assert_eq!(failure["failure"]["executor_id"]["value"], "ex");
    assert_eq!(failure["failure"]["agent_id"], offer["agent_id"]);
    cluster.shutdown().await;
}

#[tokio::test]
async fn rescinded_offers_are_offered_again() {
    let cluster = builder(1).start().await.unwrap();
    let mut fw = Fw::subscribe(cluster.master().addr(), info("fw", false)).await;
    let offer = fw.stream.next_of("OFFERS").await["offers"]["offers"][0].clone();
    assert_eq!(cluster.rescind_all_offers(), 1);
    let rescind = fw.stream.next_of("RESCIND").await;
    assert_eq!(rescind["rescind"]["offer_id"], offer["id"]);
    let again = fw.stream.next_of("OFFERS").await["offers"]["offers"][0].clone();
    assert_ne!(again["id"], offer["id"]);
    assert_eq!(again["agent_id"], offer["agent_id"]);
    // The rescinded offer is no longer valid.
    fw.call(json!({"type": "ACCEPT", "framework_id": {"value": fw.id},
                   "accept": {"offer_ids": [offer["id"]], "operations": [{"type": "LAUNCH",
                   "launch": {"task_infos": [{"name": "x", "task_id": {"value": "x"},
                       "agent_id": offer["agent_id"], "command": {"value": "true"},
                       "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}}]}]}}]}}))
        .await;
    let status = fw.stream.next_of("UPDATE").await["update"]["status"].clone();
    assert_eq!(status["state"], "TASK_LOST");
    assert_eq!(status["reason"], "REASON_INVALID_OFFERS");
    cluster.shutdown().await;
}

#[tokio::test]
async fn lost_acknowledgements_make_the_agent_resend_the_update() {
    let cluster = builder(1).start().await.unwrap();
    let mut fw = Fw::subscribe(cluster.master().addr(), info("fw", false)).await;
    cluster.set_ack_fault(AckFault::Drop);
    fw.launch("t1", "sleep 20").await;
    let first = fw.update().await;
    // The acknowledgement was lost: the same update (same uuid) comes again after the retry
    // interval, and the task's next update waits behind it.
    let second = fw.update().await;
    assert_eq!(second["uuid"], first["uuid"]);
    assert_eq!(second["state"], first["state"]);
    cluster.set_ack_fault(AckFault::Delay(Duration::from_millis(50)));
    // Acknowledged (late) this time: the task's updates move on to TASK_RUNNING.
    fw.ack(&second).await;
    fw.wait_state("t1", "TASK_RUNNING").await;
    cluster.set_ack_fault(AckFault::None);
    cluster.shutdown().await;
}

#[tokio::test]
async fn restarted_master_learns_the_running_tasks_from_its_agents() {
    let mut cluster = builder(2).start().await.unwrap();
    let addr = cluster.master().addr();
    let old_id = cluster.master().id();
    let mut fw = Fw::subscribe(addr, info("fw", true)).await;
    let agent_id = fw.launch("t1", "sleep 20").await;
    fw.wait_state("t1", "TASK_RUNNING").await;

    cluster.restart_master().await.unwrap();
    assert_eq!(cluster.master().addr(), addr, "same address");
    assert_ne!(cluster.master().id(), old_id, "a new master");
    assert_eq!(cluster.master().registered_agents(), 2);
    // The old stream ends; the framework subscribes again with its id.
    while fw.stream.next_record().await.is_some() {}
    let mut again = info("fw", true);
    again["id"] = json!({"value": fw.id});
    let mut fw = Fw::subscribe(addr, again).await;
    let status = fw.reconcile("t1", &agent_id).await;
    assert_eq!(status["state"], "TASK_RUNNING");
    fw.call(json!({"type": "KILL", "framework_id": {"value": fw.id},
                   "kill": {"task_id": {"value": "t1"}, "agent_id": {"value": agent_id}}}))
        .await;
    fw.wait_state("t1", "TASK_KILLED").await;
    cluster.shutdown().await;
}

#[tokio::test]
async fn control_endpoint_is_off_by_default() {
    let cluster = builder(1).start().await.unwrap();
    let addr = cluster.master().addr();
    let r = raw(addr, "POST", "/__local/offers/rescind", &[], b"").await;
    assert_eq!(r.status, 404);
    cluster.shutdown().await;
}

#[tokio::test]
async fn control_endpoint_injects_faults_over_http() {
    let cluster = builder(1).fault_injection(true).start().await.unwrap();
    let addr = cluster.master().addr();
    let agent_id = cluster.agents()[0].id().value.clone();
    let mut fw = Fw::subscribe(addr, info("fw", true)).await;
    fw.launch("t1", "sleep 20").await;
    fw.wait_state("t1", "TASK_RUNNING").await;

    let post = |path: String| async move { raw(addr, "POST", &path, &[], b"").await };
    let r = post(format!("/__local/agents/{agent_id}/partition?seconds=soon")).await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = post("/__local/agents/nope/partition".into()).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.text(), "404 Not Found.");
    let r = post(format!("/__local/agents/{agent_id}/heal")).await;
    assert_eq!(r.status, 404, "not partitioned");
    let r = post(format!("/__local/agents/{agent_id}/partition")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["partitioned"], agent_id.as_str());
    fw.wait_state("t1", "TASK_UNREACHABLE").await;
    let r = post(format!("/__local/agents/{agent_id}/heal")).await;
    assert_eq!(r.status, 200);
    let master = cluster.master();
    eventually("the agent is back", || master.registered_agents() == 1).await;

    let r = post("/__local/acknowledgements?mode=sometimes".into()).await;
    assert_eq!(r.status, 400);
    let r = post("/__local/acknowledgements?mode=delay".into()).await;
    assert_eq!(r.status, 400);
    let r = post("/__local/acknowledgements?mode=deliver".into()).await;
    assert_eq!(r.status, 200);
    let r = post("/__local/offers/rescind".into()).await;
    assert_eq!(r.status, 200);
    assert!(r.json()["rescinded"].is_u64());
    let r = raw(addr, "GET", "/__local/offers/rescind", &[], b"").await;
    assert_eq!(r.status, 405);

    let r = post(format!("/__local/frameworks/{}/executors/t1/kill", fw.id)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    fw.wait_state("t1", "TASK_FAILED").await;
    let r = post(format!("/__local/agents/{agent_id}/crash")).await;
    assert_eq!(r.status, 200);
    let failure = fw.stream.next_of("FAILURE").await;
    assert_eq!(failure["failure"]["agent_id"]["value"], agent_id.as_str());
    cluster.shutdown().await;
}

#[tokio::test]
async fn the_binary_serves_the_control_endpoint_with_its_flag() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_mesos-local"))
        .args([
            "--port",
            "0",
            "--fault-injection",
            "--agent_ping_timeout",
            "100ms",
            "--max_agent_ping_timeouts",
            "3",
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let url = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        line.trim().to_string()
    })
    .await
    .unwrap();
    let addr: std::net::SocketAddr = url.trim_start_matches("http://").parse().unwrap();
    let state = raw(addr, "GET", "/master/state", &[], b"").await.json();
    let agent_id = state["slaves"][0]["id"].as_str().unwrap().to_string();
    let r = raw(
        addr,
        "POST",
        &format!("/__local/agents/{agent_id}/partition"),
        &[],
        b"",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // Three pings of 100 ms unanswered: unreachable.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let state = raw(addr, "GET", "/master/state", &[], b"").await.json();
        if state["unreachable_slaves"] == 1 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{state}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
}
