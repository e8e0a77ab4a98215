//! A whole local cluster (embedded master and real embedded agents): offers from every agent,
//! command tasks run to completion with acknowledged updates, KILL, and the cluster builder's
//! error paths. Raw HTTP with hand-written JSON, as a foreign client would send.

mod local_master_support;

use std::collections::HashSet;
use std::time::Duration;

use local_master_support::*;
use mesos_local::cluster::{LocalCluster, LocalError};
use serde_json::{Value, json};

async fn cluster(agents: usize) -> LocalCluster {
    LocalCluster::builder()
        .agents(agents)
        .resources("cpus:2;mem:1024;disk:1000;ports:[31000-31099]")
        .attributes("rack:r1")
        .heartbeat_interval(Duration::from_secs(30))
        .allocation_interval(Duration::from_millis(20))
        .status_update_retry(Duration::from_millis(200), Duration::from_secs(1))
        .executor_shutdown_grace_period(Duration::from_millis(200))
        .start()
        .await
        .unwrap()
}

fn addr_of(cluster: &LocalCluster) -> std::net::SocketAddr {
    cluster.master().addr()
}

async fn ack(addr: std::net::SocketAddr, sid: &str, id: &str, status: &Value) {
    let r = call(
        addr,
        sid,
        json!({"type": "ACKNOWLEDGE", "framework_id": {"value": id},
               "acknowledge": {"agent_id": status["agent_id"], "task_id": status["task_id"],
                               "uuid": status["uuid"]}}),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text());
}

/// Collects offers until one from each of `agents` agents has arrived.
async fn offers_from(stream: &mut Stream, agents: usize) -> Vec<Value> {
    let mut offers = Vec::new();
    let mut seen = HashSet::new();
    while seen.len() < agents {
        let event = stream.next_of("OFFERS").await;
        for offer in event["offers"]["offers"].as_array().unwrap() {
            seen.insert(offer["agent_id"]["value"].as_str().unwrap().to_string());
            offers.push(offer.clone());
        }
    }
    offers
}

#[tokio::test]
async fn command_task_runs_to_completion_on_a_real_agent() {
    let cluster = cluster(2).await;
    assert_eq!(cluster.agents().len(), 2);
    let ids: HashSet<String> = cluster
        .agents()
        .iter()
        .map(|a| a.id().value.clone())
        .collect();
    assert_eq!(ids.len(), 2, "distinct agent ids");
    let addr = addr_of(&cluster);
    assert_eq!(cluster.master_url(), format!("http://{addr}"));

    let (mut stream, id) = subscribe(addr, framework_info("e2e")).await;
    let sid = stream.stream_id();
    let offers = offers_from(&mut stream, 2).await;
    let agent_hosts: HashSet<String> = cluster
        .agents()
        .iter()
        .map(|a| a.endpoint().ip().to_string())
        .collect();
    let offered_hosts: HashSet<String> = offers
        .iter()
        .map(|o| o["hostname"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(agent_hosts.len(), 2, "distinct agent addresses");
    assert_eq!(
        offered_hosts, agent_hosts,
        "each agent reports its own address as hostname"
    );
    for offer in &offers {
        assert_eq!(offer["attributes"][0]["text"]["value"], "r1");
        assert_eq!(scalars(&offer["resources"])["cpus"], 2.0);
    }
    let offer = &offers[0];
    let task = json!({
        "name": "true", "task_id": {"value": "t-true"}, "agent_id": offer["agent_id"],
        "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                      {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}}],
        "command": {"value": "true"}
    });
    let r = call(
        addr,
        &sid,
        json!({"type": "ACCEPT", "framework_id": {"value": id},
               "accept": {"offer_ids": [offer["id"]],
                          "operations": [{"type": "LAUNCH", "launch": {"task_infos": [task]}}]}}),
    )
    .await;
    assert_eq!(r.status, 202);
    let mut states = Vec::new();
    loop {
        let update = stream.next_of("UPDATE").await;
        let status = update["update"]["status"].clone();
        assert_eq!(status["task_id"]["value"], "t-true");
        assert!(
            status["uuid"].is_string(),
            "agent updates carry a uuid: {status}"
        );
        ack(addr, &sid, &id, &status).await;
        let state = status["state"].as_str().unwrap().to_string();
        states.push(state.clone());
        if state != "TASK_STARTING" && state != "TASK_RUNNING" {
            break;
        }
    }
    assert_eq!(states.last().unwrap(), "TASK_FINISHED", "{states:?}");

    // Implicit reconciliation no longer knows the acknowledged, finished task.
    let state = raw(addr, "GET", "/master/state", &[], b"").await.json();
    let framework = &state["frameworks"][0];
    assert!(
        framework["tasks"].as_array().unwrap().is_empty(),
        "{framework}"
    );
    assert_eq!(framework["completed_tasks"][0]["state"], "TASK_FINISHED");
    cluster.shutdown().await;
}

#[tokio::test]
async fn kill_a_running_task() {
    let cluster = cluster(1).await;
    let addr = addr_of(&cluster);
    let (mut stream, id) = subscribe(addr, framework_info("kill")).await;
    let sid = stream.stream_id();
    let offer = offers_from(&mut stream, 1).await.remove(0);
    let task = json!({
        "name": "sleep", "task_id": {"value": "t-sleep"}, "agent_id": offer["agent_id"],
        "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                      {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}}],
        "command": {"value": "sleep 30"}
    });
    call(
        addr,
        &sid,
        json!({"type": "ACCEPT", "framework_id": {"value": id},
               "accept": {"offer_ids": [offer["id"]],
                          "operations": [{"type": "LAUNCH", "launch": {"task_infos": [task]}}]}}),
    )
    .await;
    loop {
        let update = stream.next_of("UPDATE").await;
        let status = update["update"]["status"].clone();
        ack(addr, &sid, &id, &status).await;
        if status["state"] == "TASK_RUNNING" {
            break;
        }
        assert_eq!(status["state"], "TASK_STARTING", "{status}");
    }
    call(
        addr,
        &sid,
        json!({"type": "KILL", "framework_id": {"value": id},
               "kill": {"task_id": {"value": "t-sleep"}, "agent_id": offer["agent_id"]}}),
    )
    .await;
    loop {
        let update = stream.next_of("UPDATE").await;
        let status = update["update"]["status"].clone();
        ack(addr, &sid, &id, &status).await;
        if status["state"] == "TASK_KILLED" {
            break;
        }
        assert_eq!(status["state"], "TASK_KILLING", "{status}");
    }
    cluster.shutdown().await;
}

#[tokio::test]
async fn builder_rejects_bad_resource_text() {
    let error = LocalCluster::builder()
        .resources("cpus:abc")
        .start()
        .await
        .unwrap_err();
    assert!(matches!(error, LocalError::Resources(_)), "{error}");
    let error = LocalCluster::builder()
        .attributes("rack")
        .start()
        .await
        .unwrap_err();
    assert!(matches!(error, LocalError::Attributes(_)), "{error}");
}

#[tokio::test]
async fn agent_restart_reports_its_lost_command_task() {
    let work_dir = tempfile::tempdir().unwrap();
    let mut cluster = LocalCluster::builder()
        .agents(1)
        .resources("cpus:2;mem:1024")
        .work_dir(work_dir.path())
        .heartbeat_interval(Duration::from_secs(30))
        .allocation_interval(Duration::from_millis(20))
        .status_update_retry(Duration::from_millis(200), Duration::from_secs(1))
        .executor_shutdown_grace_period(Duration::from_millis(200))
        .start()
        .await
        .unwrap();
    let addr = addr_of(&cluster);
    let mut info = framework_info("restart");
    info["checkpoint"] = json!(true);
    info["failover_timeout"] = json!(3600.0);
    let (mut stream, id) = subscribe(addr, info).await;
    let sid = stream.stream_id();
    let offer = offers_from(&mut stream, 1).await.remove(0);
    let task = json!({
        "name": "sleep", "task_id": {"value": "t-long"}, "agent_id": offer["agent_id"],
        "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.5}},
                      {"name": "mem", "type": "SCALAR", "scalar": {"value": 64}}],
        "command": {"value": "sleep 30"}
    });
    call(
        addr,
        &sid,
        json!({"type": "ACCEPT", "framework_id": {"value": id},
               "accept": {"offer_ids": [offer["id"]],
                          "operations": [{"type": "LAUNCH", "launch": {"task_infos": [task]}}]}}),
    )
    .await;
    loop {
        let status = stream.next_of("UPDATE").await["update"]["status"].clone();
        ack(addr, &sid, &id, &status).await;
        if status["state"] == "TASK_RUNNING" {
            break;
        }
    }
    let agent_id = cluster.agents()[0].id().value.clone();
    cluster.restart_agent(0).await.unwrap();
    assert_eq!(cluster.agents()[0].id().value, agent_id);

    // The restarted agent re-registers under the same id; built-in command executors do not
    // survive it, so the agent reports the task failed, reliably (with a uuid).
    let status = stream.next_of("UPDATE").await["update"]["status"].clone();
    assert_eq!(status["task_id"]["value"], "t-long");
    assert_eq!(status["state"], "TASK_FAILED", "{status}");
    assert_eq!(status["agent_id"]["value"], agent_id.as_str());
    assert!(status["uuid"].is_string());

    // Until acknowledged, reconciliation answers the latest state.
    let reconcile = json!({"type": "RECONCILE", "framework_id": {"value": id},
                           "reconcile": {"tasks": [{"task_id": {"value": "t-long"},
                                                    "agent_id": {"value": agent_id}}]}});
    call(addr, &sid, reconcile.clone()).await;
    let answer = stream.next_of("UPDATE").await["update"]["status"].clone();
    assert_eq!(answer["reason"], "REASON_RECONCILIATION");
    assert_eq!(answer["state"], "TASK_FAILED");
    assert!(answer.get("uuid").is_none());

    // Once acknowledged the master forgets it: the agent is known, the task is not.
    ack(addr, &sid, &id, &status).await;
    call(addr, &sid, reconcile).await;
    let answer = stream.next_of("UPDATE").await["update"]["status"].clone();
    assert_eq!(answer["state"], "TASK_LOST");
    assert_eq!(
        answer["message"],
        "Reconciliation: Task is unknown to the agent"
    );

    // The agent's whole resources are offered again (possibly over several offers).
    let deadline = std::time::Instant::now() + WAIT;
    let mut outstanding = std::collections::HashMap::new();
    loop {
        let event = stream.next_non_heartbeat().await;
        match event["type"].as_str().unwrap() {
            "OFFERS" => {
                for offer in event["offers"]["offers"].as_array().unwrap() {
                    outstanding.insert(
                        offer["id"]["value"].as_str().unwrap().to_string(),
                        scalars(&offer["resources"])["cpus"],
                    );
                }
            }
            "RESCIND" => {
                outstanding.remove(event["rescind"]["offer_id"]["value"].as_str().unwrap());
            }
            _ => {}
        }
        if (outstanding.values().sum::<f64>() - 2.0).abs() < 1e-9 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{outstanding:?}");
    }
    cluster.shutdown().await;
}

#[tokio::test]
async fn many_true_tasks_end_to_end() {
    let cluster = LocalCluster::builder()
        .agents(2)
        .resources("cpus:64;mem:65536")
        .heartbeat_interval(Duration::from_secs(30))
        .allocation_interval(Duration::from_millis(10))
        .status_update_retry(Duration::from_secs(5), Duration::from_secs(10))
        .start()
        .await
        .unwrap();
    let addr = addr_of(&cluster);
    let (mut stream, id) = subscribe(addr, framework_info("many")).await;
    let sid = stream.stream_id();
    let total = 200;
    let started = std::time::Instant::now();
    let mut launched = 0;
    let mut finished = 0;
    while finished < total {
        let event = stream.next_json().await;
        match event["type"].as_str().unwrap() {
            "OFFERS" => {
                for offer in event["offers"]["offers"].as_array().unwrap() {
                    let count = (total - launched).min(100);
                    let tasks: Vec<Value> = (launched..launched + count)
                        .map(|i| {
                            json!({"name": "true", "task_id": {"value": format!("t{i}")},
                                   "agent_id": offer["agent_id"],
                                   "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                                                 {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}}],
                                   "command": {"value": "true"}})
                        })
                        .collect();
                    launched += count;
                    let r = call(
                        addr,
                        &sid,
                        json!({"type": "ACCEPT", "framework_id": {"value": id},
                               "accept": {"offer_ids": [offer["id"]],
                                          "operations": [{"type": "LAUNCH", "launch": {"task_infos": tasks}}],
                                          "filters": {"refuse_seconds": 0}}}),
                    )
                    .await;
                    assert_eq!(r.status, 202);
                }
            }
            "UPDATE" => {
                let status = event["update"]["status"].clone();
                if status["uuid"].is_string() {
                    ack(addr, &sid, &id, &status).await;
                }
                match status["state"].as_str().unwrap() {
                    "TASK_STARTING" | "TASK_RUNNING" => {}
                    "TASK_FINISHED" => finished += 1,
                    other => panic!("unexpected {other}: {status}"),
                }
            }
            _ => {}
        }
    }
    let elapsed = started.elapsed();
    println!(
        "{total} true tasks in {elapsed:?}: {:.0} tasks/s",
        total as f64 / elapsed.as_secs_f64()
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn agents_can_be_added_while_running() {
    let mut cluster = cluster(1).await;
    let addr = addr_of(&cluster);
    let (mut stream, _) = subscribe(addr, framework_info("grow")).await;
    offers_from(&mut stream, 1).await;
    let index = cluster.add_agent().await.unwrap();
    assert_eq!(index, 1);
    let added = cluster.agents()[1].id().value.clone();
    let offer = stream.next_of("OFFERS").await;
    assert_eq!(
        offer["offers"]["offers"][0]["agent_id"]["value"],
        added.as_str()
    );
    assert!(matches!(
        cluster.restart_agent(7).await,
        Err(LocalError::NoSuchAgent(7))
    ));
    cluster.shutdown().await;
}
