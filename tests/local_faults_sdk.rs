//! The SDK's framework layer against mesos-local's fault injection, which shows what a real
//! Mesos cluster shows for the same faults: a killed executor (TASK_FAILED: the task runs
//! again), a partitioned agent (TASK_UNREACHABLE, then running again after the partition heals),
//! a killed agent marked gone (TASK_GONE_BY_OPERATOR: the task runs elsewhere) and a restarted
//! master (the task keeps running).

use std::time::Duration;

use mesos_local::cluster::LocalCluster;
use mesos_sdk::framework::{DefaultController, Framework, FrameworkBuilder, FrameworkHandle};
use mesos_sdk::resourcemgr::etiquette::EtiquetteConfig;
use mesos_sdk::taskmgr::spec::{RestartPolicy, TaskSpec};
use mesos_sdk::taskmgr::{Phase, ReconcileConfig, TaskRecord};
use tokio::time::timeout;

/// How long a test waits for any one outcome.
const WAIT: Duration = Duration::from_secs(60);

async fn cluster(agents: usize) -> LocalCluster {
    LocalCluster::builder()
        .agents(agents)
        .resources("cpus:4;mem:2048;disk:1024;ports:[31000-31100]")
        .heartbeat_interval(Duration::from_millis(300))
        .allocation_interval(Duration::from_millis(20))
        .agent_ping_interval(Duration::from_millis(50))
        .agent_removal_timeout(Duration::from_secs(1))
        .status_update_retry(Duration::from_millis(100), Duration::from_millis(400))
        .executor_shutdown_grace_period(Duration::from_millis(200))
        .start()
        .await
        .expect("local cluster starts")
}

async fn framework(cluster: &LocalCluster, name: &str) -> FrameworkHandle {
    framework_with(cluster, name, |b| b).await
}

async fn framework_with(
    cluster: &LocalCluster,
    name: &str,
    tweak: impl FnOnce(FrameworkBuilder) -> FrameworkBuilder,
) -> FrameworkHandle {
    let spec = TaskSpec::new("sleeper")
        .shell("sleep 1000")
        .cpus(0.1)
        .mem(16.0)
        .restart(
            RestartPolicy::on_failure()
                .max_retries(5)
                .backoff(Duration::from_millis(20), Duration::from_millis(50)),
        );
    let builder = Framework::builder(cluster.master_url(), name)
        .tick(Duration::from_millis(50))
        .reconcile(ReconcileConfig {
            retry_min: Duration::from_millis(200),
            retry_max: Duration::from_secs(1),
            // A task back from a partition shows up only by reconciliation, as with Mesos.
            implicit_interval: Duration::from_millis(500),
            launch_timeout: Duration::from_secs(10),
        })
        .etiquette(EtiquetteConfig {
            revive_burst: 100,
            revive_interval: Duration::from_millis(10),
            ..EtiquetteConfig::default()
        })
        .scheduler(|s| s.reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200)))
        .task(spec);
    tweak(builder)
        .start(DefaultController)
        .await
        .expect("framework starts")
}

/// Polls the framework's records until `done` holds; returns them.
async fn until(
    framework: &FrameworkHandle,
    what: &str,
    done: impl Fn(&TaskRecord) -> bool,
) -> TaskRecord {
    let wait = async {
        loop {
            let records = framework.tasks().tasks().await;
            if let Some(record) = records.into_iter().find(|r| done(r)) {
                return record;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    match timeout(WAIT, wait).await {
        Ok(record) => record,
        Err(_) => panic!(
            "timed out waiting for {what}: {:#?}",
            framework.tasks().tasks().await
        ),
    }
}

/// The master's `/master/state` document.
async fn master_state(cluster: &LocalCluster) -> serde_json::Value {
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
    serde_json::from_str(body).expect("JSON state")
}

fn running(record: &TaskRecord) -> bool {
    record.phase == Phase::Active && record.state.as_deref() == Some("TASK_RUNNING")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_executor_fails_its_task_and_the_task_runs_again() {
    let cluster = cluster(1).await;
    let framework = framework(&cluster, "executor-crash").await;
    let first = until(&framework, "the task runs", running).await;
    let framework_id = framework
        .scheduler()
        .framework_id()
        .expect("subscribed")
        .value;
    let task_id = first.task_id.clone().expect("a task id");
    assert!(cluster.kill_executor(&framework_id, &task_id));
    let again = until(&framework, "the task runs again", |r| {
        running(r) && r.task_id.as_deref() != Some(task_id.as_str())
    })
    .await;
    assert_eq!(again.restarts, 1, "{again:#?}");
    framework.teardown().await.expect("teardown");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_behind_a_partition_is_unreachable_then_runs_again() {
    let cluster = cluster(2).await;
    let framework = framework(&cluster, "partitioned").await;
    let first = until(&framework, "the task runs", running).await;
    let agent = first.agent_id.clone().expect("an agent");
    let index = cluster
        .agents()
        .iter()
        .position(|a| a.id().value == agent)
        .expect("a known agent");
    cluster.partition_agent(index, None).expect("partition");
    until(&framework, "the task is unreachable", |r| {
        r.state.as_deref() == Some("TASK_UNREACHABLE")
    })
    .await;
    assert!(cluster.heal_agent(index).expect("heal"));
    // The agent registers again with the task; reconciliation finds it running.
    let back = until(&framework, "the task runs again", running).await;
    assert_eq!(back.task_id, first.task_id);
    assert_eq!(back.restarts, 0);
    framework.teardown().await.expect("teardown");
    cluster.shutdown().await;
}

/// The state of task `id` on the master: among the frameworks' live tasks or completed ones.
async fn master_task_state(cluster: &LocalCluster, id: &str) -> Option<String> {
    let state = master_state(cluster).await;
    for framework in state["frameworks"].as_array().into_iter().flatten() {
        for list in ["tasks", "completed_tasks", "unreachable_tasks"] {
            for task in framework[list].as_array().into_iter().flatten() {
                if task["id"] == id {
                    return task["state"].as_str().map(str::to_owned);
                }
            }
        }
    }
    None
}

/// Unreachable past the timeout: the instance is replaced on the other agent; when the
/// partition heals, the old task comes back and is killed as a duplicate (as Marathon does).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_task_is_replaced_and_killed_when_it_comes_back() {
    let cluster = cluster(2).await;
    let framework = framework_with(&cluster, "replaced", |b| {
        b.unreachable_timeout(Some(Duration::from_millis(500)))
    })
    .await;
    let first = until(&framework, "the task runs", running).await;
    let first_id = first.task_id.clone().expect("a task id");
    let agent = first.agent_id.clone().expect("an agent");
    let index = cluster
        .agents()
        .iter()
        .position(|a| a.id().value == agent)
        .expect("a known agent");
    cluster.partition_agent(index, None).expect("partition");
    // Unreachable past the timeout: a replacement runs on the other agent.
    let replacement = until(&framework, "a replacement runs", |r| {
        running(r) && r.task_id.as_deref() != Some(first_id.as_str())
    })
    .await;
    assert_ne!(replacement.agent_id.as_deref(), Some(agent.as_str()));
    // The partition heals: the old task comes back and is killed, the replacement stays.
    assert!(cluster.heal_agent(index).expect("heal"));
    let killed = async {
        loop {
            if master_task_state(&cluster, &first_id).await.as_deref() == Some("TASK_KILLED") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    if timeout(WAIT, killed).await.is_err() {
        panic!(
            "the returning task was not killed: {:?}",
            master_task_state(&cluster, &first_id).await
        );
    }
    let replacement_id = replacement.task_id.clone().expect("a task id");
    assert_eq!(
        master_task_state(&cluster, &replacement_id)
            .await
            .as_deref(),
        Some("TASK_RUNNING")
    );
    let records = framework.tasks().tasks().await;
    assert_eq!(
        records.iter().filter(|r| running(r)).count(),
        1,
        "{records:#?}"
    );
    framework.teardown().await.expect("teardown");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_on_a_killed_agent_marked_gone_is_launched_elsewhere() {
    let mut cluster = cluster(2).await;
    let framework = framework(&cluster, "agent-gone").await;
    let first = until(&framework, "the task runs", running).await;
    let lost_agent = first.agent_id.clone().expect("an agent");
    let index = cluster
        .agents()
        .iter()
        .position(|a| a.id().value == lost_agent)
        .expect("a known agent");
    cluster.kill_agent(index).await.expect("kill");
    until(&framework, "the task is unreachable", |r| {
        r.state.as_deref() == Some("TASK_UNREACHABLE")
    })
    .await;
    cluster
        .master()
        .mark_agent_gone(&lost_agent)
        .expect("a known agent");
    let replaced = until(&framework, "the task runs on the other agent", |r| {
        running(r) && r.agent_id.as_deref() != Some(lost_agent.as_str())
    })
    .await;
    assert_eq!(replaced.restarts, 1, "{replaced:#?}");
    framework.teardown().await.expect("teardown");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_keep_running_across_a_master_restart() {
    let mut cluster = cluster(2).await;
    let framework = framework(&cluster, "master-restart").await;
    let first = until(&framework, "the task runs", running).await;
    cluster.restart_master().await.expect("master restarts");
    // The framework subscribes again to the new master, which knows the task from its agent.
    let wait = async {
        loop {
            let state = master_state(&cluster).await;
            let framework = &state["frameworks"][0];
            if framework["active"] == true && framework["tasks"][0]["state"] == "TASK_RUNNING" {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    timeout(WAIT, wait)
        .await
        .expect("the framework subscribes again");
    let after = until(&framework, "the task still runs", running).await;
    assert_eq!(after.task_id, first.task_id);
    assert_eq!(after.restarts, 0, "{after:#?}");
    framework.teardown().await.expect("teardown");
    cluster.shutdown().await;
}
