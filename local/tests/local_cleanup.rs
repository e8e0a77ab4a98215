//! Temporary agent work directories do not outlive their agents: a cluster whose agents have no
//! configured work directory removes each agent's `$TMPDIR/mesos-agent-<uuid>` when it is shut
//! down, and also when it is merely dropped (synchronously, so a test process exiting right after
//! cannot leak it).

mod local_master_support;

use std::path::PathBuf;
use std::time::Duration;

use local_master_support::*;
use mesos_local::cluster::LocalCluster;
use serde_json::json;

async fn cluster() -> LocalCluster {
    LocalCluster::builder()
        .agents(1)
        .resources("cpus:2;mem:1024;disk:1000;ports:[31000-31099]")
        .heartbeat_interval(Duration::from_secs(30))
        .allocation_interval(Duration::from_millis(20))
        .executor_shutdown_grace_period(Duration::from_millis(200))
        .start()
        .await
        .unwrap()
}

/// Launches a long `sleep` task writing into its sandbox and waits until it runs; returns the
/// agent's work directory.
async fn run_a_task(cluster: &LocalCluster) -> PathBuf {
    let addr = cluster.master().addr();
    let (mut stream, id) = subscribe(addr, framework_info("cleanup")).await;
    let sid = stream.stream_id();
    let event = stream.next_of("OFFERS").await;
    let offer = event["offers"]["offers"][0].clone();
    let task = json!({
        "name": "sleep", "task_id": {"value": "t-sleep"}, "agent_id": offer["agent_id"],
        "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                      {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}}],
        "command": {"value": "echo started > out.txt; sleep 30"}
    });
    let r = call(
        addr,
        &sid,
        json!({"type": "ACCEPT", "framework_id": {"value": id},
               "accept": {"offer_ids": [offer["id"]],
                          "operations": [{"type": "LAUNCH", "launch": {"task_infos": [task]}}]}}),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text());
    loop {
        let update = stream.next_of("UPDATE").await;
        let status = &update["update"]["status"];
        // The agent sends the next update once this one is acknowledged.
        let r = call(
            addr,
            &sid,
            json!({"type": "ACKNOWLEDGE", "framework_id": {"value": id},
                   "acknowledge": {"agent_id": status["agent_id"], "task_id": status["task_id"],
                                   "uuid": status["uuid"]}}),
        )
        .await;
        assert_eq!(r.status, 202, "{}", r.text());
        let state = status["state"].as_str().unwrap().to_string();
        if state == "TASK_RUNNING" {
            break;
        }
        assert_eq!(state, "TASK_STARTING", "{update}");
    }
    let work_dir = cluster.agents()[0].work_dir().to_path_buf();
    assert!(
        work_dir
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("mesos-agent-"),
        "a temporary work directory: {}",
        work_dir.display()
    );
    assert!(work_dir.is_dir());
    work_dir
}

#[tokio::test]
async fn shutdown_removes_the_temporary_work_dir_before_returning() {
    let cluster = cluster().await;
    let work_dir = run_a_task(&cluster).await;
    cluster.shutdown().await;
    assert!(
        !work_dir.exists(),
        "{} left behind after shutdown",
        work_dir.display()
    );
}

#[tokio::test]
async fn dropping_the_cluster_removes_the_temporary_work_dir_at_once() {
    let cluster = cluster().await;
    let work_dir = run_a_task(&cluster).await;
    drop(cluster);
    assert!(
        !work_dir.exists(),
        "{} left behind after drop",
        work_dir.display()
    );
}

#[tokio::test]
async fn a_configured_work_dir_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = LocalCluster::builder()
        .agents(1)
        .work_dir(dir.path())
        .start()
        .await
        .unwrap();
    let work_dir = cluster.agents()[0].work_dir().to_path_buf();
    drop(cluster);
    assert!(work_dir.is_dir(), "{} was removed", work_dir.display());
}
