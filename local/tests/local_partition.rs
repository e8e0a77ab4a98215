//! Agent loss on a whole local cluster, as a Mesos master shows it: a partitioned agent becomes
//! unreachable after the ping timeout (TASK_UNREACHABLE for PARTITION_AWARE frameworks,
//! TASK_LOST for the others, FAILURE, unreachable tasks in GET_TASKS and `/state`), comes back
//! with its running tasks when the partition heals, and MARK_AGENT_GONE ends its tasks for good.
//! Raw HTTP with hand-written JSON.

mod local_faults_support;
mod local_master_support;

use std::time::Duration;

use local_faults_support::*;
use local_master_support::raw;
use serde_json::json;

#[tokio::test]
async fn partitioned_agent_becomes_unreachable_and_its_task_comes_back_running() {
    let cluster = builder(1).start().await.unwrap();
    let addr = cluster.master().addr();
    let mut fw = Fw::subscribe(addr, info("pa", true)).await;
    let agent_id = fw.launch("t1", "sleep 20").await;
    fw.wait_state("t1", "TASK_RUNNING").await;

    cluster.partition_agent(0, None).unwrap();
    let status = fw.wait_state("t1", "TASK_UNREACHABLE").await;
    assert_eq!(status["reason"], "REASON_AGENT_REMOVED");
    assert_eq!(status["source"], "SOURCE_MASTER");
    assert!(status.get("uuid").is_none(), "master updates carry no uuid");
    let failure = fw.stream.next_of("FAILURE").await;
    assert_eq!(failure["failure"]["agent_id"]["value"], agent_id.as_str());
    assert_eq!(cluster.master().unreachable_agents(), 1);
    assert_eq!(cluster.master().registered_agents(), 0);

    // The unreachable task is listed as such.
    let tasks = operator(addr, json!({"type": "GET_TASKS"})).await.json();
    let unreachable = tasks["get_tasks"]["unreachable_tasks"].as_array().unwrap();
    assert_eq!(unreachable.len(), 1, "{tasks}");
    assert_eq!(unreachable[0]["task_id"]["value"], "t1");
    assert_eq!(unreachable[0]["state"], "TASK_UNREACHABLE");
    assert!(
        tasks["get_tasks"]
            .get("tasks")
            .is_none_or(|t| t.as_array().unwrap().is_empty())
    );
    let status = fw.reconcile("t1", &agent_id).await;
    assert_eq!(status["state"], "TASK_UNREACHABLE");
    let state = raw(addr, "GET", "/state", &[], b"").await.json();
    assert_eq!(state["unreachable_slaves"], 1);
    assert_eq!(state["frameworks"][0]["unreachable_tasks"][0]["id"], "t1");
    assert_eq!(
        state["frameworks"][0]["unreachable_tasks"][0]["state"],
        "TASK_UNREACHABLE"
    );

    // Healing: the agent registers again and the task is running.
    assert!(cluster.heal_agent(0).unwrap());
    let master = cluster.master();
    eventually("the agent registers again", || {
        master.registered_agents() == 1
    })
    .await;
    assert_eq!(master.unreachable_agents(), 0);
    let status = fw.reconcile("t1", &agent_id).await;
    assert_eq!(status["state"], "TASK_RUNNING");
    let tasks = operator(addr, json!({"type": "GET_TASKS"})).await.json();
    assert_eq!(tasks["get_tasks"]["tasks"][0]["task_id"]["value"], "t1");
    assert!(
        tasks["get_tasks"]
            .get("unreachable_tasks")
            .is_none_or(|t| t.as_array().unwrap().is_empty())
    );

    // And it can be killed as usual.
    fw.call(json!({"type": "KILL", "framework_id": {"value": fw.id},
                   "kill": {"task_id": {"value": "t1"}, "agent_id": {"value": agent_id}}}))
        .await;
    fw.wait_state("t1", "TASK_KILLED").await;
    cluster.shutdown().await;
}

#[tokio::test]
async fn lost_task_of_a_framework_without_partition_awareness_comes_back_running() {
    let cluster = builder(1).start().await.unwrap();
    let addr = cluster.master().addr();
    let mut fw = Fw::subscribe(addr, info("classic", false)).await;
    let agent_id = fw.launch("t1", "sleep 20").await;
    fw.wait_state("t1", "TASK_RUNNING").await;

    // A partition that heals by itself after a while longer than the ping timeout.
    cluster
        .partition_agent(0, Some(Duration::from_secs(2)))
        .unwrap();
    let status = fw.wait_state("t1", "TASK_LOST").await;
    assert_eq!(status["reason"], "REASON_AGENT_REMOVED");
    let status = fw.reconcile("t1", &agent_id).await;
    assert_eq!(status["state"], "TASK_LOST");
    let master = cluster.master();
    eventually("the partition heals", || master.registered_agents() == 1).await;
    let status = fw.reconcile("t1", &agent_id).await;
    assert_eq!(status["state"], "TASK_RUNNING", "a lost task can come back");
    cluster.shutdown().await;
}

#[tokio::test]
async fn updates_held_during_a_partition_arrive_after_it_heals() {
    let cluster = builder(1).start().await.unwrap();
    let addr = cluster.master().addr();
    let mut fw = Fw::subscribe(addr, info("pa", true)).await;
    let agent_id = fw.launch("t1", "sleep 0.5").await;
    fw.wait_state("t1", "TASK_RUNNING").await;
    cluster.partition_agent(0, None).unwrap();
    fw.wait_state("t1", "TASK_UNREACHABLE").await;
    // The task ends while the agent is cut off; its update waits in the agent.
    tokio::time::sleep(Duration::from_millis(700)).await;
    cluster.heal_agent(0).unwrap();
    let status = fw.wait_state("t1", "TASK_FINISHED").await;
    assert!(
        status["uuid"].is_string(),
        "the agent's own update: {status}"
    );
    assert_eq!(status["agent_id"]["value"], agent_id.as_str());
    cluster.shutdown().await;
}

#[tokio::test]
async fn killed_agent_is_unreachable_then_marked_gone() {
    let mut cluster = builder(2).start().await.unwrap();
    let addr = cluster.master().addr();
    let mut fw = Fw::subscribe(addr, info("pa", true)).await;
    let agent_id = fw.launch("t1", "sleep 5").await;
    fw.wait_state("t1", "TASK_RUNNING").await;
    let index = cluster
        .agents()
        .iter()
        .position(|a| a.id().value == agent_id)
        .unwrap();
    let killed = cluster.kill_agent(index).await.unwrap();
    assert_eq!(killed.value, agent_id);
    fw.wait_state("t1", "TASK_UNREACHABLE").await;

    let r = operator(
        addr,
        json!({"type": "MARK_AGENT_GONE", "mark_agent_gone": {"agent_id": {"value": agent_id}}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let status = fw.wait_state("t1", "TASK_GONE_BY_OPERATOR").await;
    assert_eq!(status["reason"], "REASON_AGENT_REMOVED_BY_OPERATOR");
    let status = fw.reconcile("t1", &agent_id).await;
    assert_eq!(status["state"], "TASK_GONE_BY_OPERATOR");
    // Marking it gone again is fine; an unknown agent is not.
    let again =
        json!({"type": "MARK_AGENT_GONE", "mark_agent_gone": {"agent_id": {"value": agent_id}}});
    assert_eq!(operator(addr, again).await.status, 200);
    let unknown =
        json!({"type": "MARK_AGENT_GONE", "mark_agent_gone": {"agent_id": {"value": "nope"}}});
    assert_eq!(operator(addr, unknown).await.status, 404);
    let missing = operator(addr, json!({"type": "MARK_AGENT_GONE"})).await;
    assert_eq!(missing.status, 400);

    // A gone agent may not come back.
    cluster.revive_agent(&killed).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(cluster.master().registered_agents(), 1);
    cluster.shutdown().await;
}

#[tokio::test]
async fn marking_a_registered_agent_gone_ends_its_tasks() {
    let cluster = builder(1).start().await.unwrap();
    let addr = cluster.master().addr();
    let mut fw = Fw::subscribe(addr, info("classic", false)).await;
    let agent_id = fw.launch("t1", "sleep 20").await;
    fw.wait_state("t1", "TASK_RUNNING").await;
    let r = operator(
        addr,
        json!({"type": "MARK_AGENT_GONE", "mark_agent_gone": {"agent_id": {"value": agent_id}}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let status = fw.wait_state("t1", "TASK_LOST").await;
    assert_eq!(status["reason"], "REASON_AGENT_REMOVED_BY_OPERATOR");
    let failure = fw.stream.next_of("FAILURE").await;
    assert_eq!(failure["failure"]["agent_id"]["value"], agent_id.as_str());
    let agents = operator(addr, json!({"type": "GET_AGENTS"})).await.json();
    assert!(
        agents["get_agents"]
            .get("agents")
            .is_none_or(|a| a.as_array().unwrap().is_empty()),
        "{agents}"
    );
    cluster.shutdown().await;
}
