//! Placement constraints through the pipeline, on two mesos-local agents: a processor whose
//! `constraints` pin it to one agent's hostname has every task on that agent (read from the
//! master's `/state`) and every message still gets its output; a soft `PREFER` puts the tasks
//! on the preferred agent; a constraint no agent meets leaves the message pending with the
//! placer's reason.

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use brigade::kafka::{KafkaConfig, create_topics};
use brigade::processor::Processor;
use mesos_local::cluster::LocalCluster;
use support::kafka::{by_offset, produce, read};

const WAIT: Duration = Duration::from_secs(90);

/// The agent ids of every task (live or completed) the master knows.
async fn task_agents(master: &str) -> Vec<String> {
    let state: serde_json::Value = reqwest::get(format!("{master}/state"))
        .await
        .expect("state answers")
        .json()
        .await
        .expect("state is JSON");
    let mut agents = Vec::new();
    for framework in state["frameworks"].as_array().into_iter().flatten() {
        for key in ["tasks", "completed_tasks"] {
            for task in framework[key].as_array().into_iter().flatten() {
                if let Some(agent) = task["slave_id"].as_str() {
                    agents.push(agent.to_string());
                }
            }
        }
    }
    agents
}

/// Two agents, fast allocation.
async fn two_agents(work: &std::path::Path) -> LocalCluster {
    LocalCluster::builder()
        .agents(2)
        .resources("cpus:8;mem:16384;disk:20000;ports:[31000-32000]")
        .work_dir(work)
        .allocation_interval(Duration::from_millis(50))
        .heartbeat_interval(Duration::from_millis(500))
        .status_update_retry(Duration::from_millis(500), Duration::from_secs(2))
        .start()
        .await
        .expect("mesos-local starts")
}

fn processor(json: serde_json::Value) -> Processor {
    Processor::from_json(&json.to_string()).expect("valid processor")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_soft_preference_puts_the_tasks_on_the_preferred_agent() {
    support::init_logs();
    let Some(broker) = support::tansu::tansu_or_skip("a_soft_preference") else {
        return;
    };
    let brokers = broker.brokers();
    create_topics(
        &KafkaConfig::new(&brokers),
        &["pref-in", "pref-out", "pref-err"],
        1,
    )
    .await
    .expect("topics created");
    let work = tempfile::tempdir().unwrap();
    let cluster = two_agents(work.path()).await;
    let target = &cluster.agents()[1];
    let target_id = target.id().value.clone();
    let hostname = target.endpoint().ip().to_string();
    let brigade = support::brigade(support::scheduler_config(
        &cluster.master_url(),
        &brokers,
        None,
    ))
    .await;
    brigade
        .add(processor(serde_json::json!({
            "name": "pref", "input": "pref-in", "output": "pref-out", "error": "pref-err",
            "command": "cat", "cpus": 0.1, "mem": 32, "max_in_flight": 4,
            "constraints": [["hostname", "PREFER", hostname]]
        })))
        .await
        .unwrap();
    let n = 6;
    let payloads: Vec<Vec<u8>> = (0..n).map(|i| format!("p{i}").into_bytes()).collect();
    produce(&brokers, "pref-in", &payloads).await;
    let records = read(&brokers, "pref-out", n, WAIT).await;
    assert_eq!(records.len(), n, "outputs: {records:?}");
    let agents = task_agents(&cluster.master_url()).await;
    let distinct: HashSet<&String> = agents.iter().collect();
    assert_eq!(
        distinct,
        HashSet::from([&target_id]),
        "every task on the preferred agent {target_id} ({hostname})"
    );
    brigade.shutdown().await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unmet_constraint_leaves_the_message_pending_with_the_placer_reason() {
    support::init_logs();
    let Some(broker) = support::tansu::tansu_or_skip("an_unmet_constraint") else {
        return;
    };
    let brokers = broker.brokers();
    create_topics(
        &KafkaConfig::new(&brokers),
        &["nowhere-in", "nowhere-out", "nowhere-err"],
        1,
    )
    .await
    .expect("topics created");
    let work = tempfile::tempdir().unwrap();
    let cluster = two_agents(work.path()).await;
    let brigade = support::brigade(support::scheduler_config(
        &cluster.master_url(),
        &brokers,
        None,
    ))
    .await;
    brigade
        .add(processor(serde_json::json!({
            "name": "nowhere", "input": "nowhere-in", "output": "nowhere-out",
            "error": "nowhere-err", "command": "cat", "cpus": 0.1, "mem": 32,
            "constraints": [["rack", "IS", "z"]]
        })))
        .await
        .unwrap();
    produce(&brokers, "nowhere-in", &[b"stuck".to_vec()]).await;
    let deadline = Instant::now() + WAIT;
    let reason = loop {
        if let Some(reason) = brigade.unplaced().await.get("nowhere") {
            break reason.clone();
        }
        assert!(Instant::now() < deadline, "no unplaced reason reported");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(reason.contains("rack"), "reason: {reason}");
    assert!(
        task_agents(&cluster.master_url()).await.is_empty(),
        "no task launched"
    );
    let counters = brigade.counters().await["nowhere"];
    assert_eq!(counters.launched, 0, "{counters:?}");
    brigade.shutdown().await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostname_constraint_puts_every_task_on_the_matching_agent() {
    support::init_logs();
    let Some(broker) = support::tansu::tansu_or_skip("a_hostname_constraint") else {
        return;
    };
    let brokers = broker.brokers();
    create_topics(
        &KafkaConfig::new(&brokers),
        &["pin-in", "pin-out", "pin-err"],
        1,
    )
    .await
    .expect("topics created");
    let work = tempfile::tempdir().unwrap();
    let cluster = two_agents(work.path()).await;
    let target = &cluster.agents()[1];
    let target_id = target.id().value.clone();
    let hostname = target.endpoint().ip().to_string();
    let brigade = support::brigade(support::scheduler_config(
        &cluster.master_url(),
        &brokers,
        None,
    ))
    .await;
    brigade
        .add(
            Processor::from_json(
                &serde_json::json!({
                    "name": "pin", "input": "pin-in", "output": "pin-out", "error": "pin-err",
                    "command": "tr a-z A-Z", "cpus": 0.1, "mem": 32, "max_in_flight": 4,
                    "constraints": [["hostname", "IS", hostname]]
                })
                .to_string(),
            )
            .expect("valid processor"),
        )
        .await
        .unwrap();
    let n = 12;
    let payloads: Vec<Vec<u8>> = (0..n).map(|i| format!("pin {i}").into_bytes()).collect();
    let offsets = produce(&brokers, "pin-in", &payloads).await;
    let records = read(&brokers, "pin-out", n, WAIT).await;
    assert_eq!(records.len(), n, "outputs: {records:?}");
    let map = by_offset(&records);
    for (i, offset) in offsets.iter().enumerate() {
        assert_eq!(map[offset][0].payload, format!("PIN {i}").into_bytes());
    }
    let agents = task_agents(&cluster.master_url()).await;
    assert!(agents.len() >= n, "tasks seen by the master: {agents:?}");
    let distinct: HashSet<&String> = agents.iter().collect();
    assert_eq!(
        distinct,
        HashSet::from([&target_id]),
        "every task on agent {target_id} ({hostname})"
    );
    brigade.shutdown().await;
    cluster.shutdown().await;
}
