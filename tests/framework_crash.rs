//! kill -9 of the scheduler PROCESS during 1,000 launches, on mesos-local with the etcd store:
//! the scheduler runs as a child process (this test binary, re-run as the test
//! `child_scheduler` with its settings in the environment), is killed with SIGKILL while the
//! launches are under way and started again over the same etcd. Afterwards every instance
//! runs exactly once: per instance index one running task on the master, no other task of
//! the framework alive anywhere, and the master's running tasks are exactly the attempts the
//! store records (no orphan, no duplicate). Counted and asserted.
//!
//! It starts 1,000 task processes and takes about a minute on a quiet 2-core machine (two on a
//! loaded one).
#![cfg(feature = "etcd")]

#[path = "common/etcd.rs"]
mod etcd_support;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mesos_local::cluster::LocalCluster;
use mesos_sdk::framework::{DefaultController, Framework};
use mesos_sdk::resourcemgr::etiquette::EtiquetteConfig;
use mesos_sdk::storage::{EtcdStore, Namespace, Store};
use mesos_sdk::taskmgr::spec::TaskSpec;
use mesos_sdk::taskmgr::{Phase, ReconcileConfig, TaskManager, record};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const NAME: &str = "crashy";
const WAIT: Duration = Duration::from_secs(600);

/// The number of instances the child scheduler runs (set by the parent).
fn instances() -> u32 {
    std::env::var("CRASH_TEST_INSTANCES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200)
}

/// The scheduler process: runs only when started by the parent test (it sets
/// `CRASH_CHILD_MASTER` and `CRASH_CHILD_ETCD`); runs until killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_scheduler() {
    let (Ok(master), Ok(etcd)) = (
        std::env::var("CRASH_CHILD_MASTER"),
        std::env::var("CRASH_CHILD_ETCD"),
    ) else {
        return;
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let store = EtcdStore::builder(vec![etcd])
        .connect_timeout(Duration::from_secs(2))
        .request_timeout(Duration::from_secs(30))
        .connect()
        .await
        .expect("etcd");
    let framework = Framework::builder(master, NAME)
        .store(Arc::new(store))
        .tick(Duration::from_millis(50))
        .reconcile(ReconcileConfig {
            retry_min: Duration::from_millis(300),
            retry_max: Duration::from_secs(2),
            implicit_interval: Duration::from_secs(60),
            launch_timeout: Duration::from_secs(15),
        })
        .etiquette(EtiquetteConfig {
            revive_burst: 100,
            revive_interval: Duration::from_millis(10),
            refuse: Duration::from_millis(200),
            ..EtiquetteConfig::default()
        })
        .scheduler(|s| s.reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200)))
        .task(
            TaskSpec::new("many")
                .instances(instances())
                .shell("sleep 1000")
                .cpus(0.01)
                .mem(1.0),
        )
        .start(DefaultController)
        .await
        .expect("framework starts");
    eprintln!("child scheduler running");
    framework.wait().await;
}

/// The scheduler process, killed (SIGKILL) when dropped, also when the test fails.
struct Scheduler(Child);

impl Drop for Scheduler {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the scheduler process; its stderr goes to `log` (inspect it when the test fails).
fn spawn_child(master: &str, etcd: &str, n: u32, log: &std::path::Path) -> Scheduler {
    let log = std::fs::File::create(log).expect("child log file");
    Command::new(std::env::current_exe().expect("the test binary"))
        .args([
            "child_scheduler",
            "--exact",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env("CRASH_CHILD_MASTER", master)
        .env("CRASH_CHILD_ETCD", etcd)
        .env("CRASH_TEST_INSTANCES", n.to_string())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map(Scheduler)
        .expect("child scheduler starts")
}

/// The master's `/master/state` document.
async fn master_state(cluster: &LocalCluster) -> Value {
    let addr = cluster.master().addr();
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"GET /master/state HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await
        .expect("request");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("response");
    let text = String::from_utf8_lossy(&response);
    let body = text.split("\r\n\r\n").nth(1).expect("a body");
    serde_json::from_str(body).expect("JSON state")
}

/// The framework's live (non-terminal) tasks on the master: id → state.
async fn live_tasks(cluster: &LocalCluster) -> BTreeMap<String, String> {
    let doc = master_state(cluster).await;
    let mut out = BTreeMap::new();
    for framework in doc["frameworks"].as_array().into_iter().flatten() {
        if framework["name"] != NAME {
            continue;
        }
        for task in framework["tasks"].as_array().into_iter().flatten() {
            let state = task["state"].as_str().unwrap_or_default();
            if !matches!(
                state,
                "TASK_FINISHED"
                    | "TASK_FAILED"
                    | "TASK_KILLED"
                    | "TASK_LOST"
                    | "TASK_ERROR"
                    | "TASK_DROPPED"
                    | "TASK_GONE"
            ) {
                out.insert(
                    task["id"].as_str().unwrap_or_default().to_owned(),
                    state.to_owned(),
                );
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_scheduler_process_during_1000_launches() {
    kill_9_during_launches(1000).await;
}

/// Every instance runs exactly once after a SIGKILL of the scheduler during `n` launches.
async fn kill_9_during_launches(n: u32) {
    let cluster = LocalCluster::builder()
        .agents(2)
        .resources("cpus:16;mem:8192;disk:1024;ports:[31000-31100]")
        // Mesos' default is 15 s; 300 ms (as elsewhere in the tests) lets the scheduler's
        // watchdog fire while 1,000 tasks start on a loaded machine.
        .heartbeat_interval(Duration::from_secs(2))
        .allocation_interval(Duration::from_millis(20))
        .status_update_retry(Duration::from_millis(200), Duration::from_secs(1))
        .executor_shutdown_grace_period(Duration::from_millis(300))
        .start()
        .await
        .expect("local cluster starts");
    let etcd = etcd_support::EtcdCluster::single().await;
    let master = cluster.master_url();

    let logs = tempfile::Builder::new()
        .prefix("crashy-scheduler-")
        .tempdir()
        .expect("log dir")
        .keep();
    println!("scheduler logs in {}", logs.display());
    let child = spawn_child(&master, &etcd.endpoint(), n, &logs.join("first.log"));
    // Kill it while the launches are under way: as soon as the master has some of them (its
    // ACCEPTs are sent, statuses are arriving unacknowledged, more intents may be stored).
    let started = Instant::now();
    let live_before = loop {
        let live = live_tasks(&cluster).await;
        if !live.is_empty() {
            break live;
        }
        assert!(started.elapsed() < WAIT, "launches did not start");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    // SIGKILL.
    drop(child);
    println!(
        "killed the scheduler with {} of {n} tasks on the master, {} of them running",
        live_before.len(),
        live_before
            .values()
            .filter(|s| *s == "TASK_RUNNING")
            .count()
    );

    let child = spawn_child(&master, &etcd.endpoint(), n, &logs.join("second.log"));
    // Until every instance runs exactly once and nothing else is alive.
    let store: Arc<dyn Store> = Arc::new(
        EtcdStore::builder(etcd.endpoints())
            .connect_timeout(Duration::from_secs(10))
            .request_timeout(Duration::from_secs(30))
            .connect()
            .await
            .expect("connect to etcd"),
    );
    let namespace = Namespace::new(NAME).expect("namespace");
    let mut last_print = Instant::now();
    let settled = loop {
        let last: String;
        let live = live_tasks(&cluster).await;
        let running = live.values().filter(|s| *s == "TASK_RUNNING").count();
        if running == n as usize && live.len() == n as usize {
            // The store's view, loaded as a restarted scheduler would.
            let tasks = TaskManager::load(store.clone(), namespace.clone())
                .await
                .expect("load the records");
            let records = tasks.tasks().await;
            let recorded: BTreeSet<String> = records
                .iter()
                .filter(|r| r.phase == Phase::Active)
                .filter_map(|r| r.task_id.clone())
                .collect();
            let on_master: BTreeSet<String> = live.keys().cloned().collect();
            if records.len() == n as usize && recorded == on_master {
                break live;
            }
            last = format!(
                "{} records, {} active; store and master differ in {} ids",
                records.len(),
                recorded.len(),
                recorded.symmetric_difference(&on_master).count()
            );
        } else {
            last = format!("{running} running, {} alive", live.len());
        }
        assert!(
            started.elapsed() < WAIT,
            "not settled after {WAIT:?}: {last}"
        );
        if last_print.elapsed() >= Duration::from_secs(10) {
            println!("{:?}: {last}", started.elapsed());
            last_print = Instant::now();
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    // Exactly one running task per instance index, every index present.
    let mut per_index: BTreeMap<u32, usize> = BTreeMap::new();
    for id in settled.keys() {
        let (spec, index) = record::parse_task_id(id).expect("one of our ids");
        assert_eq!(spec, "many");
        *per_index.entry(index).or_insert(0) += 1;
    }
    assert_eq!(per_index.len(), n as usize, "every instance runs");
    assert!(
        per_index.values().all(|c| *c == 1),
        "duplicates: {:?}",
        per_index
            .iter()
            .filter(|(_, c)| **c > 1)
            .collect::<Vec<_>>()
    );
    // And it stays so (no late duplicate from the killed scheduler's ACCEPTs).
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(live_tasks(&cluster).await, settled);
    println!(
        "after the restart: {n} instances, each running once, in {:?}",
        started.elapsed()
    );
    drop(child);
    cluster.shutdown().await;
}
