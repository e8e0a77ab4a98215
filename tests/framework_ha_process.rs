//! `Framework::run_ha` with real processes: two instances of `examples/ha_controller.rs`
//! (separate processes, `--etcd`) against the embedded Mesos cluster (in this process, over
//! real HTTP on loopback) and a real etcd. The leader is SIGKILLed once its tasks run; the
//! standby leads after the lease expires, resumes the same framework and launches nothing
//! again: the master keeps exactly the same tasks, all running.
#![cfg(feature = "etcd")]

#[path = "common/etcd.rs"]
mod etcd_support;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use etcd_support::EtcdCluster;
use mesos_local::cluster::LocalCluster;
use serde_json::Value;

const NAME: &str = "ha-controller";
const WAIT: Duration = Duration::from_secs(40);

/// The example binary, built with the same cargo (`cargo test --test NAME` builds no
/// examples); cargo's variables for this test are removed so build scripts see no change.
fn example_binary() -> PathBuf {
    let mut cargo = Command::new(env!("CARGO"));
    cargo
        .args(["build", "--example", "ha_controller", "--features", "etcd"])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        let keep = matches!(name.as_str(), "CARGO_HOME" | "CARGO_TARGET_DIR");
        if (name.starts_with("CARGO_") && !keep) || name == "OUT_DIR" {
            cargo.env_remove(&name);
        }
    }
    let status = cargo.status().expect("cargo build --example ha_controller");
    assert!(
        status.success(),
        "building the ha_controller example failed"
    );
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("target directory")
        .join("examples")
        .join("ha_controller")
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
    let mut child = Command::new(binary)
        .args(["--master", &cluster.master_url()])
        .args(["--etcd", &etcd.endpoint()])
        .args(["--id", id, "--tasks", "3", "--ttl-ms", "3000"])
        .env(
            "RUST_LOG",
            std::env::var("HA_CHILD_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start an ha_controller instance");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, who) = (tx.clone(), id.to_string());
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send((who.clone(), line)).is_err() {
                break;
            }
        }
    });
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
    let cluster = LocalCluster::builder()
        .agents(2)
        .heartbeat_interval(Duration::from_millis(300))
        .allocation_interval(Duration::from_millis(50))
        .status_update_retry(Duration::from_millis(200), Duration::from_secs(1))
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
