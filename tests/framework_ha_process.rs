//! `Framework::run_ha` with real processes: two instances of `examples/ha_controller.rs`
//! (separate processes, `--etcd`) against the embedded Mesos cluster (in this process, over
//! real HTTP on loopback) and a real etcd. The leader is SIGKILLed once its tasks run; the
//! standby leads after the lease expires, resumes the same framework and launches nothing
//! again: the master keeps exactly the same tasks, all running.
#![cfg(feature = "etcd")]

#[path = "common/etcd.rs"]
mod etcd_support;
#[path = "common/ha_instances.rs"]
mod ha_instances;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use etcd_support::EtcdCluster;
use mesos_local::cluster::LocalCluster;
use serde_json::Value;

const NAME: &str = "ha-controller";
const WAIT: Duration = Duration::from_secs(40);

/// The example binary, built with the same cargo (`cargo test --test NAME` builds no
/// examples).
fn example_binary() -> PathBuf {
    ha_instances::build_example("ha_controller")
}

/// A child process killed when dropped.
struct Instance(Child);

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts instance `id`; its stdout lines go to `tx` as `(id, line)`.
fn spawn(
    binary: &PathBuf,
    cluster: &LocalCluster,
    etcd: &EtcdCluster,
    id: &str,
    tx: &tokio::sync::mpsc::UnboundedSender<(String, String)>,
) -> Instance {
    let mut command = Command::new(binary);
    command
        .args(["--master", &cluster.master_url()])
        .args(["--etcd", &etcd.endpoint()])
        .args(["--id", id, "--tasks", "3", "--ttl-ms", "3000"]);
    let child = ha_instances::spawn_tagged(command, id, tx);
    Instance(child)
}

/// The master's `/master/state` frameworks named [`NAME`].
async fn our_frameworks(cluster: &LocalCluster) -> Vec<Value> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(cluster.master().addr())
        .await
        .expect("connect");
    stream
        .write_all(b"GET /master/state HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await
        .expect("request");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("response");
    let text = String::from_utf8_lossy(&response);
    let body = text.split("\r\n\r\n").nth(1).expect("a body");
    let doc: Value = serde_json::from_str(body).expect("JSON state");
    doc["frameworks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["name"] == NAME)
        .cloned()
        .collect()
}

/// Every task of a framework with its state.
fn tasks_of(framework: &Value) -> Vec<(String, String)> {
    ["tasks", "completed_tasks"]
        .iter()
        .flat_map(|list| framework[*list].as_array().cloned().unwrap_or_default())
        .map(|t| {
            (
                t["id"].as_str().unwrap_or_default().to_owned(),
                t["state"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Waits for a `LEADING <id>` line.
async fn wait_leading(
    lines: &mut tokio::sync::mpsc::UnboundedReceiver<(String, String)>,
    id: &str,
) {
    let deadline = Instant::now() + WAIT;
    let want = format!("LEADING {id}");
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, lines.recv()).await {
            Ok(Some((_, line))) if line == want => return,
            Ok(Some(_)) => {}
            other => panic!("no `{want}` line: {other:?}"),
        }
    }
}

/// Waits until the master shows one framework of ours, connected, with exactly three running
/// tasks; answers its id and task ids.
async fn steady(cluster: &LocalCluster) -> (String, BTreeSet<String>) {
    let deadline = Instant::now() + WAIT;
    loop {
        let frameworks = our_frameworks(cluster).await;
        if let [framework] = frameworks.as_slice() {
            let tasks = tasks_of(framework);
            if framework["connected"] == true
                && tasks.len() == 3
                && tasks.iter().all(|(_, state)| state == "TASK_RUNNING")
            {
                let id = framework["id"].as_str().unwrap_or_default().to_owned();
                return (id, tasks.into_iter().map(|(id, _)| id).collect());
            }
        }
        assert!(
            Instant::now() < deadline,
            "not steady: {:#?}",
            our_frameworks(cluster).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkilled_leader_is_replaced_by_the_standby_without_launching_again() {
    let binary = tokio::task::spawn_blocking(example_binary)
        .await
        .expect("build");
    let etcd = EtcdCluster::single().await;
    let cluster = ha_instances::quick_cluster()
        .agents(2)
        .start()
        .await
        .expect("local cluster starts");
    let (tx, mut lines) = tokio::sync::mpsc::unbounded_channel();

    let a = spawn(&binary, &cluster, &etcd, "a", &tx);
    wait_leading(&mut lines, "a").await;
    let (id, before) = steady(&cluster).await;
    let b = spawn(&binary, &cluster, &etcd, "b", &tx);
    tokio::time::sleep(Duration::from_millis(500)).await;

    let killed = Instant::now();
    drop(a); // SIGKILL: nothing resigns; the lease expires
    wait_leading(&mut lines, "b").await;
    let (after_id, after) = steady(&cluster).await;
    println!(
        "standby subscribed {} ms after the SIGKILL",
        killed.elapsed().as_millis()
    );
    assert_eq!(after_id, id, "the standby resumed the same framework");
    assert_eq!(after, before, "the same tasks");
    // Reconciliation rounds and many offer cycles later, still exactly those tasks.
    for _ in 0..20 {
        let frameworks = our_frameworks(&cluster).await;
        assert_eq!(frameworks.len(), 1, "{frameworks:#?}");
        let tasks = tasks_of(&frameworks[0]);
        let ids: BTreeSet<String> = tasks.iter().map(|(id, _)| id.clone()).collect();
        assert_eq!(ids, before, "{tasks:?}");
        assert!(tasks.iter().all(|(_, s)| s == "TASK_RUNNING"), "{tasks:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(b);
    cluster.shutdown().await;
}
