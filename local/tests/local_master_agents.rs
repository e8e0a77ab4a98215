//! The embedded master and its agents over the link: agents that recover tasks from their
//! checkpoints, agents that re-register without some tasks, and agents that go away.

mod local_master_support;

use std::time::{Duration, Instant};

use local_master_support::*;
use mesos_sdk::resourcemgr::parse_resources;
use mesos_sdk::v1::{AgentId, FrameworkId, FrameworkInfo, Task, TaskId, TaskState};
use serde_json::json;

#[tokio::test]
async fn recovered_tasks_are_found_by_the_resubscribing_framework() {
    let master = start_master(|_| {}).await;
    let addr = master.addr();
    let framework = FrameworkInfo {
        user: "u".into(),
        name: "recovered".into(),
        id: Some(FrameworkId {
            value: "fw-from-before".into(),
        }),
        checkpoint: Some(true),
        ..Default::default()
    };
    let task = Task {
        name: "t1".into(),
        task_id: TaskId { value: "t1".into() },
        framework_id: FrameworkId {
            value: "fw-from-before".into(),
        },
        agent_id: AgentId { value: "a1".into() },
        state: TaskState::TaskRunning as i32,
        resources: parse_resources("cpus:0.5;mem:128").unwrap(),
        ..Default::default()
    };
    let mut agent = LinkAgent::register_recovered(
        &master,
        "a1",
        "cpus:1;mem:256",
        "",
        vec![framework],
        vec![task],
    );
    // Known from the agent but not subscribed yet: 403.
    let deadline = Instant::now() + WAIT;
    loop {
        let r = call(
            addr,
            "x",
            json!({"type": "REVIVE", "framework_id": {"value": "fw-from-before"}}),
        )
        .await;
        if r.status == 403 {
            assert_eq!(r.text(), "Framework is not subscribed");
            break;
        }
        assert!(Instant::now() < deadline, "{}", r.text());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut info = framework_info("recovered");
    info["id"] = json!({"value": "fw-from-before"});
    let (mut stream, id) = subscribe(addr, info).await;
    assert_eq!(id, "fw-from-before");
    // The agent holding its task learns the framework's current info.
    match agent.next().await {
        mesos_local::link::ToAgent::UpdateFramework { framework_info } => {
            assert_eq!(framework_info.id.unwrap().value, "fw-from-before");
            assert_eq!(framework_info.name, "recovered");
        }
        other => panic!("unexpected {other:?}"),
    }
    let offers = stream.next_of("OFFERS").await;
    assert_eq!(
        scalars(&offers["offers"]["offers"][0]["resources"])["cpus"],
        0.5,
        "the recovered task holds its resources"
    );
    call(
        addr,
        &stream.stream_id(),
        json!({"type": "RECONCILE", "framework_id": {"value": id}, "reconcile": {}}),
    )
    .await;
    let update = stream.next_of("UPDATE").await;
    assert_eq!(update["update"]["status"]["task_id"]["value"], "t1");
    assert_eq!(update["update"]["status"]["state"], "TASK_RUNNING");
    master.shutdown().await;
}

#[tokio::test]
async fn reregistering_agent_that_lost_a_task() {
    let master = start_master(|_| {}).await;
    let addr = master.addr();
    let mut agent = LinkAgent::register(&master, "a1", "cpus:1;mem:256", "");
    let (mut stream, id) = subscribe(addr, framework_info("rereg")).await;
    let offer = stream.next_of("OFFERS").await["offers"]["offers"][0].clone();
    call(
        addr,
        &stream.stream_id(),
        json!({"type": "ACCEPT", "framework_id": {"value": id},
               "accept": {"offer_ids": [offer["id"]], "operations": [{"type": "LAUNCH", "launch": {
                   "task_infos": [{"name": "t", "task_id": {"value": "t"}, "agent_id": offer["agent_id"],
                                   "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.5}}],
                                   "command": {"value": "sleep 10"}}]}}]}}),
    )
    .await;
    let _ = agent.next().await;
    // The agent restarts and reports nothing.
    let _again = LinkAgent::register(&master, "a1", "cpus:1;mem:256", "");
    let update = stream.next_of("UPDATE").await;
    let status = &update["update"]["status"];
    assert_eq!(status["task_id"]["value"], "t");
    assert_eq!(status["state"], "TASK_LOST");
    assert_eq!(status["reason"], "REASON_AGENT_RESTARTED");
    assert!(status.get("uuid").is_none());
    master.shutdown().await;
}

#[tokio::test]
async fn agent_that_goes_away_is_removed() {
    let master = start_master(|c| c.agent_removal_timeout = Duration::from_millis(50)).await;
    let addr = master.addr();
    let mut agent = LinkAgent::register(&master, "a1", "cpus:1;mem:256", "");
    let info = json!({"user": "u", "name": "pa", "capabilities": [{"type": "PARTITION_AWARE"}]});
    let (mut stream, id) = subscribe(addr, info).await;
    let offer = stream.next_of("OFFERS").await["offers"]["offers"][0].clone();
    call(
        addr,
        &stream.stream_id(),
        json!({"type": "ACCEPT", "framework_id": {"value": id},
               "accept": {"offer_ids": [offer["id"]], "operations": [{"type": "LAUNCH", "launch": {
                   "task_infos": [{"name": "t", "task_id": {"value": "t"}, "agent_id": offer["agent_id"],
                                   "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.5}}],
                                   "command": {"value": "sleep 10"}}]}}]}}),
    )
    .await;
    let _ = agent.next().await;
    drop(agent);
    let update = stream.next_of("UPDATE").await;
    let status = &update["update"]["status"];
    assert_eq!(status["state"], "TASK_UNREACHABLE");
    assert_eq!(status["reason"], "REASON_AGENT_REMOVED");
    let failure = stream.next_of("FAILURE").await;
    assert_eq!(failure["failure"]["agent_id"]["value"], "a1");
    assert!(failure["failure"].get("executor_id").is_none());
    let state = raw(addr, "GET", "/state", &[], b"").await.json();
    assert!(state["slaves"].as_array().unwrap().is_empty());
    master.shutdown().await;
}

#[tokio::test]
async fn tasks_on_a_disconnected_agent_reconcile_as_unreachable() {
    let master = start_master(|c| c.agent_removal_timeout = Duration::from_secs(60)).await;
    let addr = master.addr();
    let agent = LinkAgent::register(&master, "a1", "cpus:1;mem:256", "");
    let info = json!({"user": "u", "name": "pa", "capabilities": [{"type": "PARTITION_AWARE"}]});
    let (mut stream, id) = subscribe(addr, info).await;
    let _ = stream.next_of("OFFERS").await;
    drop(agent);
    // The offer of the gone agent is rescinded once the master notices.
    let _ = stream.next_of("RESCIND").await;
    call(
        addr,
        &stream.stream_id(),
        json!({"type": "RECONCILE", "framework_id": {"value": id},
               "reconcile": {"tasks": [{"task_id": {"value": "x"}, "agent_id": {"value": "a1"}}]}}),
    )
    .await;
    let update = stream.next_of("UPDATE").await;
    assert_eq!(update["update"]["status"]["state"], "TASK_UNREACHABLE");
    master.shutdown().await;
}
