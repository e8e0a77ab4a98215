//! The framework when agents and health checks fail, on mesos-local: the tasks of an agent
//! whose process dies become `TASK_UNREACHABLE` once the master removes the agent (the SDK's
//! frameworks are PARTITION_AWARE) and are replaced on another agent after the
//! unreachable timeout; a task whose health check fails is killed and relaunched by the
//! controller's default `unhealthy` callback (the executor's own kill after consecutive
//! failures is out of reach: its threshold is set high).

use std::time::Duration;

use mesos_local::agent::{self, AgentConfig, AgentHandle};
use mesos_local::cluster::LocalCluster;
use mesos_local::master::MasterConfig;
use mesos_sdk::framework::{DefaultController, Framework, FrameworkBuilder, FrameworkHandle};
use mesos_sdk::resourcemgr::etiquette::EtiquetteConfig;
use mesos_sdk::taskmgr::spec::{Command, HealthCheckSpec, RestartPolicy, TaskSpec};
use mesos_sdk::taskmgr::{Phase, ReconcileConfig, TaskRecord};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(60);

async fn cluster(agents: usize) -> LocalCluster {
    LocalCluster::builder()
        .master_config(MasterConfig {
            agent_removal_timeout: Duration::from_millis(300),
            ..MasterConfig::default()
        })
        .agents(agents)
        .resources("cpus:4;mem:2048;disk:1024;ports:[31000-31100]")
        .heartbeat_interval(Duration::from_millis(300))
        .allocation_interval(Duration::from_millis(20))
        .status_update_retry(Duration::from_millis(100), Duration::from_millis(400))
        .executor_shutdown_grace_period(Duration::from_millis(300))
        .start()
        .await
        .expect("local cluster starts")
}

/// An agent of our own (so the test can crash it), registered with `cluster`'s master.
async fn own_agent(cluster: &LocalCluster) -> AgentHandle {
    let before = cluster.master().registered_agents();
    let agent = agent::start(
        AgentConfig {
            status_update_retry_min: Duration::from_millis(100),
            status_update_retry_max: Duration::from_millis(400),
            executor_shutdown_grace_period: Duration::from_millis(300),
            ..AgentConfig::default()
        },
        cluster.master().link(),
    )
    .await
    .expect("agent starts");
    timeout(WAIT, async {
        while cluster.master().registered_agents() <= before {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("agent registers");
    agent
}

fn builder(cluster: &LocalCluster, name: &str) -> FrameworkBuilder {
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
            refuse: Duration::from_millis(200),
            ..EtiquetteConfig::default()
        })
        .scheduler(|s| s.reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200)))
}

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

fn running_on(records: &[TaskRecord], n: usize, agent: &str) -> bool {
    records.len() == n
        && records.iter().all(|r| {
            r.phase == Phase::Active
                && r.state.as_deref() == Some("TASK_RUNNING")
                && r.agent_id.as_deref() == Some(agent)
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_of_a_dead_agent_become_unreachable_and_are_replaced_elsewhere() {
    let cluster = cluster(0).await;
    let first = own_agent(&cluster).await;
    let first_id = first.id().value.clone();
    let framework = builder(&cluster, "partitioned")
        .unreachable_timeout(Some(Duration::from_millis(500)))
        .task(
            TaskSpec::new("svc")
                .instances(2)
                // The processes outlive the crashed agent: keep them short.
                .shell("sleep 20")
                .cpus(0.1)
                .mem(16.0)
                .restart(
                    RestartPolicy::on_failure()
                        .backoff(Duration::from_millis(50), Duration::from_millis(100)),
                ),
        )
        .start(DefaultController)
        .await
        .expect("framework starts");
    until(&framework, "both running on the first agent", |r| {
        running_on(r, 2, &first_id)
    })
    .await;
    let old_ids: Vec<String> = framework
        .tasks()
        .tasks()
        .await
        .into_iter()
        .filter_map(|r| r.task_id)
        .collect();
    let mut changes = Box::pin(framework.tasks().changes());
    let second = own_agent(&cluster).await;
    let second_id = second.id().value.clone();
    first.crash().await;
    until(&framework, "both running on the second agent", |r| {
        running_on(r, 2, &second_id)
    })
    .await;
    // They went through TASK_UNREACHABLE, and were replaced (new ids, one restart each).
    let mut saw_unreachable = 0;
    while let Ok(Some(change)) = timeout(
        Duration::from_millis(100),
        futures::StreamExt::next(&mut changes),
    )
    .await
    {
        if change.state.as_deref() == Some("TASK_UNREACHABLE") {
            saw_unreachable += 1;
        }
    }
    assert!(
        saw_unreachable >= 2,
        "saw {saw_unreachable} unreachable changes"
    );
    let records = framework.tasks().tasks().await;
    for record in &records {
        assert_eq!(record.restarts, 1, "{record:#?}");
        assert!(
            !old_ids.contains(record.task_id.as_ref().expect("an id")),
            "{record:#?}"
        );
    }
    framework.teardown().await.expect("teardown");
    second.shutdown().await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unhealthy_task_is_restarted_by_the_controller() {
    let cluster = cluster(1).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let marks = dir.path().display().to_string();
    // The first attempt never becomes healthy; later ones do at once.
    let command = format!(
        "if [ -e {marks}/started ]; then touch {marks}/healthy; else touch {marks}/started; fi; sleep 1000"
    );
    let check = HealthCheckSpec::command(Command::Shell(format!("test -e {marks}/healthy")))
        .delay(Duration::from_millis(100))
        .interval(Duration::from_millis(100))
        .timeout(Duration::from_secs(5))
        .grace_period(Duration::ZERO)
        .consecutive_failures(1000);
    let framework = builder(&cluster, "unhealthy")
        .task(
            TaskSpec::new("checked")
                .shell(command)
                .cpus(0.1)
                .mem(16.0)
                .health_check(check)
                .restart(
                    RestartPolicy::on_failure()
                        .backoff(Duration::from_millis(50), Duration::from_millis(100)),
                ),
        )
        .start(DefaultController)
        .await
        .expect("framework starts");
    until(&framework, "a healthy second attempt", |r| {
        r.len() == 1
            && r[0].restarts == 1
            && r[0].healthy == Some(true)
            && r[0].state.as_deref() == Some("TASK_RUNNING")
    })
    .await;
    framework.teardown().await.expect("teardown");
    cluster.shutdown().await;
}

/// Stickiness against the placer's own preference: after the first attempt, a filler on the
/// other agent makes that agent the smaller bin, which first fit (smallest bin first) would
/// pick; the sticky instance goes back to its last agent instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sticky_instance_returns_to_its_agent_though_first_fit_prefers_another() {
    use mesos_sdk::taskmgr::spec::Operator;

    let cluster = cluster(2).await;
    let spec = TaskSpec::new("sticky")
        .shell("sleep 2; exit 1")
        .cpus(1.0)
        .mem(16.0)
        .restart(
            RestartPolicy::on_failure()
                .max_retries(1)
                .backoff(Duration::from_millis(50), Duration::from_millis(100))
                .sticky(),
        );
    let framework = builder(&cluster, "sticky")
        .sticky_wait(Duration::from_secs(600))
        .task(spec)
        .start(DefaultController)
        .await
        .expect("framework starts");
    until(&framework, "the first attempt running", |r| {
        r.len() == 1 && r[0].state.as_deref() == Some("TASK_RUNNING")
    })
    .await;
    let first_agent = framework.tasks().tasks().await[0]
        .agent_id
        .clone()
        .expect("an agent");
    let first_host = cluster
        .agents()
        .iter()
        .find(|a| a.id().value == first_agent)
        .expect("a known agent")
        .endpoint()
        .ip()
        .to_string();
    let elsewhere = first_host.replace('.', "\\.");
    framework
        .tasks()
        .add(
            TaskSpec::new("filler")
                .shell("sleep 1000")
                .cpus(1.0)
                .mem(16.0)
                .constraint("hostname", Operator::Unlike, Some(&elsewhere)),
        )
        .await
        .expect("filler added");
    let summary = timeout(WAIT, async {
        loop {
            let summary = framework.tasks().summary().await;
            if summary.given_up == 1 {
                return summary;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the sticky instance gives up");
    assert_eq!(summary.active, 1, "the filler runs: {summary:?}");
    let filler_agent = framework.tasks().by_spec("filler").await[0]
        .agent_id
        .clone();
    assert_ne!(filler_agent.as_deref(), Some(first_agent.as_str()));
    // The given-up record keeps the second attempt's agent.
    let sticky = &framework.tasks().by_spec("sticky").await[0];
    assert_eq!(sticky.restarts, 1, "{sticky:#?}");
    assert_eq!(
        sticky.agent_id.as_deref(),
        Some(first_agent.as_str()),
        "{sticky:#?}"
    );
    framework.teardown().await.expect("teardown");
    cluster.shutdown().await;
}
