//! The framework layer (task manager, reconciliation, default controller, `Framework` builder)
//! against mesos-local over real HTTP with real task processes and the memory store: tasks run
//! to completion; a failing task is restarted with backoff and given up after its retries; kill
//! and scale down; a restarted scheduler over the same store finds its tasks by reconciliation
//! and launches no duplicate (memory store, and etcd with the feature `etcd`); tasks the
//! store does not know are killed.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use mesos_local::cluster::LocalCluster;
use mesos_sdk::framework::{
    Context, Controller, DefaultController, Framework, FrameworkHandle, UnknownTaskPolicy,
};
use mesos_sdk::resourcemgr::etiquette::EtiquetteConfig;
use mesos_sdk::storage::{MemoryStore, Store};
use mesos_sdk::taskmgr::spec::{RestartPolicy, TaskSpec};
use mesos_sdk::taskmgr::{Decision, Phase, ReconcileConfig, TaskRecord};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

/// How long a test waits for any one outcome.
const WAIT: Duration = Duration::from_secs(60);

async fn cluster() -> LocalCluster {
    LocalCluster::builder()
        .agents(2)
        .resources("cpus:4;mem:2048;disk:1024;ports:[31000-31100]")
        .heartbeat_interval(Duration::from_millis(300))
        .allocation_interval(Duration::from_millis(20))
        .status_update_retry(Duration::from_millis(100), Duration::from_millis(400))
        .executor_shutdown_grace_period(Duration::from_millis(500))
        .start()
        .await
        .expect("local cluster starts")
}

fn builder(cluster: &LocalCluster, name: &str) -> mesos_sdk::framework::FrameworkBuilder {
    Framework::builder(cluster.master_url(), name)
        .tick(Duration::from_millis(50))
        .reconcile(ReconcileConfig {
            retry_min: Duration::from_millis(200),
            retry_max: Duration::from_secs(1),
            implicit_interval: Duration::from_secs(60),
            launch_timeout: Duration::from_secs(10),
        })
        .etiquette(EtiquetteConfig {
            revive_burst: 100,
            revive_interval: Duration::from_millis(10),
            ..EtiquetteConfig::default()
        })
        .scheduler(|s| s.reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200)))
}

fn sleeper(name: &str, instances: u32) -> TaskSpec {
    TaskSpec::new(name)
        .instances(instances)
        .shell("sleep 1000")
        .cpus(0.1)
        .mem(16.0)
}

/// Polls the framework's records until `done` holds.
async fn until(framework: &FrameworkHandle, what: &str, done: impl Fn(&[TaskRecord]) -> bool) {
    let wait = async {
        loop {
            if done(&framework.tasks().tasks().await) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    if timeout(WAIT, wait).await.is_err() {
        panic!(
            "timed out waiting for {what}: {:#?}",
            framework.tasks().tasks().await
        );
    }
}

fn all_running(records: &[TaskRecord], n: usize) -> bool {
    records.len() == n
        && records
            .iter()
            .all(|r| r.phase == Phase::Active && r.state.as_deref() == Some("TASK_RUNNING"))
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

/// Task ids in `state` of framework `id` as the master sees them.
async fn master_tasks(cluster: &LocalCluster, id: &str, state: &str) -> BTreeSet<String> {
    let doc = master_state(cluster).await;
    let mut out = BTreeSet::new();
    for framework in doc["frameworks"].as_array().into_iter().flatten() {
        if framework["id"] != id {
            continue;
        }
        for list in ["tasks", "completed_tasks"] {
            for task in framework[list].as_array().into_iter().flatten() {
                if task["state"] == state {
                    out.insert(task["id"].as_str().unwrap_or_default().to_owned());
                }
            }
        }
    }
    out
}

async fn until_master(cluster: &LocalCluster, what: &str, id: &str, state: &str, n: usize) {
    let wait = async {
        loop {
            if master_tasks(cluster, id, state).await.len() == n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    timeout(WAIT, wait)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_task_finishes() {
    let cluster = cluster().await;
    let spec = TaskSpec::new("echo")
        .instances(8)
        .shell("echo hi")
        .cpus(0.1)
        .mem(16.0);
    let framework = builder(&cluster, "finish")
        .task(spec)
        .start(DefaultController)
        .await
        .expect("framework starts");
    let summary = timeout(WAIT, framework.settled()).await.expect("settles");
    assert_eq!(summary.done, 8, "{summary:?}");
    let records = framework.tasks().tasks().await;
    assert!(
        records
            .iter()
            .all(|r| r.state.as_deref() == Some("TASK_FINISHED") && r.restarts == 0),
        "{records:#?}"
    );
    framework.teardown().await.expect("teardown");
    cluster.shutdown().await;
}

/// Counts failures and leaves the decision to the policy (the other callbacks keep their
/// defaults).
#[derive(Default)]
struct CountFailures(AtomicU32);

#[async_trait::async_trait]
impl Controller for CountFailures {
    async fn failed(&self, _ctx: &Context, _task: &TaskRecord) -> Decision {
        self.0.fetch_add(1, Ordering::SeqCst);
        Decision::PerPolicy
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_task_is_restarted_with_backoff_then_given_up() {
    let cluster = cluster().await;
    let spec = TaskSpec::new("flaky")
        .shell("exit 3")
        .cpus(0.1)
        .mem(16.0)
        .restart(
            RestartPolicy::on_failure()
                .max_retries(3)
                .backoff(Duration::from_millis(50), Duration::from_millis(100)),
        );
    let counter = Arc::new(CountFailures::default());
    let framework = builder(&cluster, "flaky")
        .task(spec)
        .start(counter.clone())
        .await
        .expect("framework starts");
    let summary = timeout(WAIT, framework.settled()).await.expect("settles");
    assert_eq!(summary.given_up, 1, "{summary:?}");
    let record = &framework.tasks().by_spec("flaky").await[0];
    assert_eq!(record.restarts, 3);
    assert_eq!(record.state.as_deref(), Some("TASK_FAILED"));
    assert!(
        record
            .reason
            .as_deref()
            .unwrap_or("")
            .starts_with("given up after 3 restarts"),
        "{record:?}"
    );
    // the first run and three restarts failed
    assert_eq!(counter.0.load(Ordering::SeqCst), 4);
    let id = framework.scheduler().framework_id().expect("id").value;
    assert_eq!(master_tasks(&cluster, &id, "TASK_FAILED").await.len(), 4);
    framework.teardown().await.expect("teardown");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_and_scale_down() {
    let cluster = cluster().await;
    let framework = builder(&cluster, "sleepers")
        .task(sleeper("sleep", 4))
        .start(DefaultController)
        .await
        .expect("framework starts");
    until(&framework, "4 running", |r| all_running(r, 4)).await;

    // kill one: it ends KILLED and is not restarted
    let victim = framework.tasks().by_spec("sleep").await[0]
        .task_id
        .clone()
        .expect("a task id");
    framework.tasks().kill(&victim).await.expect("kill");
    until(&framework, "the kill", |records| {
        records.iter().any(|r| {
            r.task_id.as_deref() == Some(victim.as_str())
                && r.phase == Phase::Done
                && r.state.as_deref() == Some("TASK_KILLED")
        })
    })
    .await;
    assert_eq!(framework.tasks().summary().await.active, 3);

    // scale down to 1: instances 1..3 are killed and their records removed
    framework.tasks().scale("sleep", 1).await.expect("scale");
    until(&framework, "the scale down", |records| records.len() == 1).await;
    let id = framework.scheduler().framework_id().expect("id").value;
    until_master(&cluster, "1 task left running", &id, "TASK_RUNNING", 0).await;
    assert_eq!(master_tasks(&cluster, &id, "TASK_KILLED").await.len(), 4);

    // scale up again: new instances are launched
    framework.tasks().scale("sleep", 3).await.expect("scale up");
    until(&framework, "2 new instances running", |records| {
        records.iter().filter(|r| r.phase == Phase::Active).count() == 2
    })
    .await;
    framework.teardown().await.expect("teardown");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_scheduler_reconciles_and_launches_no_duplicate() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    restart_finds_its_tasks(store.clone(), store).await;
}

#[cfg(feature = "etcd")]
#[path = "common/etcd.rs"]
mod etcd_support;

/// The same over etcd, each scheduler instance with its own connection (as two processes).
#[cfg(feature = "etcd")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_scheduler_over_etcd_reconciles_and_launches_no_duplicate() {
    let etcd = etcd_support::EtcdCluster::single().await;
    let first: Arc<dyn Store> = Arc::new(etcd.store().await);
    let second: Arc<dyn Store> = Arc::new(etcd.store().await);
    restart_finds_its_tasks(first, second).await;
}

async fn restart_finds_its_tasks(store: Arc<dyn Store>, store_after: Arc<dyn Store>) {
    let cluster = cluster().await;
    let first = builder(&cluster, "durable")
        .store(store)
        .task(sleeper("sleep", 3))
        .start(DefaultController)
        .await
        .expect("first framework starts");
    until(&first, "3 running", |r| all_running(r, 3)).await;
    let framework_id = first.scheduler().framework_id().expect("id").value;
    let ids: BTreeSet<String> = first
        .tasks()
        .tasks()
        .await
        .into_iter()
        .filter_map(|r| r.task_id)
        .collect();
    first.stop().await;

    // a new framework over the same store: same framework id, tasks found by reconciliation
    let second = builder(&cluster, "durable")
        .store(store_after)
        .task(sleeper("sleep", 3))
        .start(DefaultController)
        .await
        .expect("second framework starts");
    until(&second, "reconciliation answers", |records| {
        records.len() == 3
            && records.iter().all(|r| {
                r.phase == Phase::Active
                    && r.reason
                        .as_deref()
                        .is_some_and(|s| s.contains("RECONCILIATION"))
            })
    })
    .await;
    assert_eq!(
        second.scheduler().framework_id().expect("id").value,
        framework_id
    );
    let after: BTreeSet<String> = second
        .tasks()
        .tasks()
        .await
        .into_iter()
        .filter_map(|r| r.task_id)
        .collect();
    assert_eq!(after, ids);
    assert_eq!(
        master_tasks(&cluster, &framework_id, "TASK_RUNNING").await,
        ids
    );
    // the second instance controls the tasks: a kill goes through
    let one = ids.iter().next().expect("a task").clone();
    second.tasks().kill(&one).await.expect("kill");
    until_master(&cluster, "the kill", &framework_id, "TASK_RUNNING", 2).await;
    assert_eq!(second.tasks().summary().await.pending, 0);
    second.teardown().await.expect("teardown");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_the_store_does_not_know_are_killed() {
    let cluster = cluster().await;
    let first = builder(&cluster, "strangers")
        .task(sleeper("sleep", 2))
        .start(DefaultController)
        .await
        .expect("first framework starts");
    until(&first, "2 running", |r| all_running(r, 2)).await;
    let framework_id = first.scheduler().framework_id().expect("id").value;
    first.stop().await;

    // the same framework id with an empty store: every task is a stranger
    let second = builder(&cluster, "strangers")
        .framework_id(framework_id.clone())
        .unknown_tasks(UnknownTaskPolicy::Kill)
        .start(DefaultController)
        .await
        .expect("second framework starts");
    until_master(
        &cluster,
        "strangers killed",
        &framework_id,
        "TASK_KILLED",
        2,
    )
    .await;
    assert!(
        master_tasks(&cluster, &framework_id, "TASK_RUNNING")
            .await
            .is_empty()
    );
    assert!(second.tasks().tasks().await.is_empty());
    second.teardown().await.expect("teardown");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leadership_term_runs_the_controller_through_the_fenced_store() {
    use mesos_sdk::client::Client;
    use mesos_sdk::ha::{ElectionConfig, HaConfig, HaRunner};
    use mesos_sdk::scheduler::{AckMode, FrameworkInfoBuilder};
    use mesos_sdk::storage::{Namespace, StoreExt};
    use mesos_sdk::v1::FrameworkId;

    let cluster = cluster().await;
    let store = MemoryStore::new();
    let namespace = Namespace::new("ha-fw").expect("namespace");
    let election = ElectionConfig::new(namespace.key("leader"), "one", "http://one");
    let client = Client::builder()
        .endpoint(cluster.master_url())
        .build()
        .expect("client");
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let runner = HaRunner::new(
        store.clone(),
        HaConfig::new(election, &namespace),
        client,
        FrameworkInfoBuilder::new(user, "ha-fw").build(),
    )
    .expect("runner")
    .configure_scheduler(|s| {
        s.ack_mode(AckMode::Explicit)
            .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200))
    });
    let term = runner.lead().await.expect("leads");
    let spec = TaskSpec::new("echo")
        .instances(3)
        .shell("echo hi")
        .cpus(0.1)
        .mem(16.0);
    let framework = builder(&cluster, "ha-fw")
        .task(spec)
        .run_term(term, DefaultController)
        .await
        .expect("runs the term");
    let summary = timeout(WAIT, framework.settled()).await.expect("settles");
    assert_eq!(summary.done, 3, "{summary:?}");
    let stored: Option<FrameworkId> = store
        .get_proto(&namespace.key("framework-id"))
        .await
        .expect("read");
    assert_eq!(stored, framework.scheduler().framework_id());
    let page = store
        .range(&namespace.key("tasks/"), Default::default())
        .await
        .expect("range");
    assert_eq!(page.kvs.len(), 3);
    framework.teardown().await.expect("teardown");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn constraints_keep_instances_pending_with_the_reason() {
    use mesos_sdk::taskmgr::spec::Operator;

    let cluster = cluster().await;
    // two agents with their own hostnames: two instances run, the third waits
    let spec = sleeper("one-per-host", 3).constraint("hostname", Operator::Unique, None);
    let framework = builder(&cluster, "constrained")
        .task(spec)
        .start(DefaultController)
        .await
        .expect("framework starts");
    until(
        &framework,
        "two running, one pending with a reason",
        |records| {
            records.iter().filter(|r| r.phase == Phase::Active).count() == 2
                && records.iter().any(|r| {
                    r.phase == Phase::Pending
                        && r.reason.as_deref().is_some_and(|s| s.contains("UNIQUE"))
                })
        },
    )
    .await;
    let agents: BTreeSet<String> = framework
        .tasks()
        .by_phase(Phase::Active)
        .await
        .into_iter()
        .filter_map(|r| r.agent_id)
        .collect();
    assert_eq!(agents.len(), 2);
    framework.teardown().await.expect("teardown");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spec_update_rolls_out_one_instance_at_a_time() {
    use futures::StreamExt;
    use std::collections::BTreeMap;

    let cluster = cluster().await;
    let framework = builder(&cluster, "rolling")
        .task(sleeper("roll", 3))
        .start(DefaultController)
        .await
        .expect("framework starts");
    until(&framework, "3 running", |r| all_running(r, 3)).await;

    // watch the replacements: never more than one at a time
    let mut changes = Box::pin(framework.tasks().changes());
    let most = Arc::new(AtomicU32::new(0));
    let seen = most.clone();
    let watcher = tokio::spawn(async move {
        let mut replacing: BTreeMap<u32, bool> = BTreeMap::new();
        while let Some(record) = changes.next().await {
            replacing.insert(record.index, record.replacing);
            let now = replacing.values().filter(|r| **r).count() as u32;
            seen.fetch_max(now, Ordering::SeqCst);
        }
    });
    let before: BTreeSet<String> = framework
        .tasks()
        .tasks()
        .await
        .into_iter()
        .filter_map(|r| r.task_id)
        .collect();
    framework
        .tasks()
        .add(sleeper("roll", 3).env("VERSION", "2"))
        .await
        .expect("update");
    until(&framework, "every instance at version 2", |records| {
        all_running(records, 3) && records.iter().all(|r| r.spec_version == 2)
    })
    .await;
    let after: BTreeSet<String> = framework
        .tasks()
        .tasks()
        .await
        .into_iter()
        .filter_map(|r| r.task_id)
        .collect();
    assert!(before.is_disjoint(&after), "every instance was replaced");
    watcher.abort();
    assert_eq!(most.load(Ordering::SeqCst), 1, "one replacement at a time");
    let id = framework.scheduler().framework_id().expect("id").value;
    assert_eq!(master_tasks(&cluster, &id, "TASK_RUNNING").await, after);
    assert_eq!(master_tasks(&cluster, &id, "TASK_KILLED").await, before);
    framework.teardown().await.expect("teardown");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduler_crash_during_launches_leaves_each_instance_running_once() {
    const N: usize = 40;
    let cluster = cluster().await;
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let spec = || {
        TaskSpec::new("many")
            .instances(N as u32)
            .shell("sleep 1000")
            .cpus(0.05)
            .mem(8.0)
    };
    let first = builder(&cluster, "crash")
        .store(store.clone())
        .task(spec())
        .start(DefaultController)
        .await
        .expect("first framework starts");
    until(&first, "some launches under way", |records| {
        records.iter().filter(|r| r.phase != Phase::Pending).count() >= 5
    })
    .await;
    first.abort().await;
    let framework_id = first.scheduler().framework_id().expect("id").value;

    let second = builder(&cluster, "crash")
        .store(store)
        .task(spec())
        .start(DefaultController)
        .await
        .expect("second framework starts");
    until(&second, "every instance running", |r| all_running(r, N)).await;
    let ids: BTreeSet<String> = second
        .tasks()
        .tasks()
        .await
        .into_iter()
        .filter_map(|r| r.task_id)
        .collect();
    assert_eq!(ids.len(), N);
    // the master runs exactly these: no duplicate, no orphan
    until_master(
        &cluster,
        "exactly N running",
        &framework_id,
        "TASK_RUNNING",
        N,
    )
    .await;
    assert_eq!(
        master_tasks(&cluster, &framework_id, "TASK_RUNNING").await,
        ids
    );
    second.teardown().await.expect("teardown");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sticky_instance_restarts_on_its_last_agent() {
    use futures::StreamExt;

    let cluster = cluster().await;
    let spec = TaskSpec::new("sticky")
        .shell("exit 1")
        .cpus(0.1)
        .mem(16.0)
        .restart(
            RestartPolicy::on_failure()
                .max_retries(3)
                .backoff(Duration::from_millis(20), Duration::from_millis(50))
                .sticky(),
        );
    let framework = builder(&cluster, "sticky")
        .sticky_wait(Duration::from_secs(600))
        .task(spec)
        .start(DefaultController)
        .await
        .expect("framework starts");
    let mut changes = Box::pin(framework.tasks().changes());
    let agents = tokio::spawn(async move {
        let mut agents = BTreeSet::new();
        let mut launches = 0;
        while let Some(record) = changes.next().await {
            if record.phase == Phase::Launching {
                launches += 1;
                agents.extend(record.agent_id);
            }
            if record.phase == Phase::GivenUp {
                break;
            }
        }
        (launches, agents)
    });
    let summary = timeout(WAIT, framework.settled()).await.expect("settles");
    assert_eq!(summary.given_up, 1);
    let (launches, agents) = timeout(WAIT, agents).await.expect("ends").expect("joins");
    assert!(launches >= 3, "the restarts were seen: {launches}");
    assert_eq!(agents.len(), 1, "every attempt on one agent: {agents:?}");
    framework.teardown().await.expect("teardown");
    cluster.shutdown().await;
}
