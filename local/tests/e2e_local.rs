//! End to end: the SDK's scheduler runtime against the embedded cluster (`mesos_sdk::local`),
//! over real HTTP on loopback, with real processes on the agents.
//!
//! Command tasks, kills, a custom executor fetched over HTTP (the crate's own
//! `mesos-example-executor`), framework messages both ways, reconciliation, failover fencing and
//! teardown, in protobuf and in JSON.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use mesos_local::cluster::LocalCluster;
use mesos_sdk::client::Client;
use mesos_sdk::codec::Format;
use mesos_sdk::scheduler::calls::operations;
use mesos_sdk::scheduler::{
    FrameworkInfoBuilder, Scheduler, SchedulerEvent, SchedulerEvents, Termination,
};
use mesos_sdk::v1::{
    AgentId, CommandInfo, ExecutorId, ExecutorInfo, FrameworkId, Resource, TaskId, TaskInfo,
    TaskState, TaskStatus, command_info,
};
use tokio::time::timeout;

mod e2e_support;
use e2e_support::{connected, next_event, next_offer, next_update, scalar, serve_file, user};

async fn cluster(agents: usize) -> LocalCluster {
    LocalCluster::builder()
        .agents(agents)
        .resources("cpus:4;mem:4096;disk:4096;ports:[31000-31100]")
        .heartbeat_interval(Duration::from_millis(300))
        .allocation_interval(Duration::from_millis(20))
        .status_update_retry(Duration::from_millis(200), Duration::from_secs(1))
        .executor_shutdown_grace_period(Duration::from_millis(500))
        .start()
        .await
        .expect("local cluster starts")
}

fn start_scheduler(
    cluster: &LocalCluster,
    format: Format,
    id: Option<&FrameworkId>,
) -> (Scheduler, SchedulerEvents) {
    let client = Client::builder()
        .endpoint(cluster.master_url())
        .format(format)
        .call_timeout(Duration::from_secs(10))
        .build()
        .expect("client builds");
    let mut framework = FrameworkInfoBuilder::new(user(), "e2e").roles(["e2e"]);
    if let Some(id) = id {
        framework = framework.id(id.value.clone());
    }
    Scheduler::builder(client, framework.build())
        .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200))
        .start()
}

fn small_resources() -> Vec<Resource> {
    vec![scalar("cpus", 0.1, "e2e"), scalar("mem", 32.0, "e2e")]
}

fn command_task(id: &str, agent: &AgentId, shell_command: &str) -> TaskInfo {
    TaskInfo {
        name: id.to_string(),
        task_id: TaskId {
            value: id.to_string(),
        },
        agent_id: agent.clone(),
        resources: small_resources(),
        command: Some(CommandInfo {
            value: Some(shell_command.to_string()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Collects updates until every task in `tasks` reached a terminal state; returns them by task.
async fn terminal_states(
    events: &mut SchedulerEvents,
    tasks: &[&str],
) -> HashMap<String, Vec<TaskStatus>> {
    let mut seen: HashMap<String, Vec<TaskStatus>> = HashMap::new();
    loop {
        let done = tasks.iter().all(|t| {
            seen.get(*t)
                .and_then(|updates| updates.last())
                .is_some_and(|s| TaskState::is_terminal(s.state()))
        });
        if done {
            return seen;
        }
        let status = next_update(events).await;
        seen.entry(status.task_id.value.clone())
            .or_default()
            .push(status);
    }
}

async fn command_tasks_finish_fail_and_are_acknowledged(format: Format) {
    let cluster = cluster(1).await;
    let (scheduler, mut events) = start_scheduler(&cluster, format, None);
    connected(&mut events).await;
    let offer = next_offer(&mut events).await;
    let tasks = vec![
        command_task("ok", &offer.agent_id, "true"),
        command_task("bad", &offer.agent_id, "exit 3"),
        command_task("out", &offer.agent_id, "echo hello-from-task"),
    ];
    scheduler
        .accept(
            vec![offer.id.clone()],
            vec![operations::launch(tasks)],
            None,
        )
        .await
        .expect("accept is taken");
    let seen = terminal_states(&mut events, &["ok", "bad", "out"]).await;

    let states = |t: &str| seen[t].iter().map(|s| s.state()).collect::<Vec<_>>();
    assert_eq!(
        states("ok").last(),
        Some(&TaskState::TaskFinished),
        "{:?}",
        states("ok")
    );
    assert_eq!(states("out").last(), Some(&TaskState::TaskFinished));
    assert!(
        states("ok").contains(&TaskState::TaskRunning),
        "{:?}",
        states("ok")
    );
    let failed = seen["bad"].last().unwrap();
    assert_eq!(failed.state(), TaskState::TaskFailed);
    assert!(
        failed.message().contains('3'),
        "exit status in message: {:?}",
        failed.message()
    );
    for updates in seen.values() {
        for update in updates {
            assert_eq!(
                update.uuid.as_ref().map(|u| u.len()),
                Some(16),
                "agent updates carry a uuid"
            );
        }
    }

    // Acknowledged updates are not resent: nothing more arrives for these tasks.
    let quiet = timeout(Duration::from_millis(1500), async {
        loop {
            let status = next_update(&mut events).await;
            if ["ok", "bad", "out"].contains(&status.task_id.value.as_str()) {
                return status;
            }
        }
    })
    .await;
    assert!(
        quiet.is_err(),
        "an acknowledged update was resent: {quiet:?}"
    );

    // The task's stdout landed in its sandbox.
    let sandbox = cluster.agents()[0].sandbox_root();
    let found = find_file_containing(&sandbox, "stdout", "hello-from-task");
    assert!(found, "stdout of task `out` under {}", sandbox.display());

    scheduler.stop();
    cluster.shutdown().await;
}

fn find_file_containing(dir: &std::path::Path, name: &str, needle: &str) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if find_file_containing(&path, name, needle) {
                return true;
            }
        } else if path.file_name().is_some_and(|n| n == name)
            && std::fs::read_to_string(&path).is_ok_and(|text| text.contains(needle))
        {
            return true;
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_tasks_protobuf() {
    command_tasks_finish_fail_and_are_acknowledged(Format::Protobuf).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_tasks_json() {
    command_tasks_finish_fail_and_are_acknowledged(Format::Json).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_and_reconcile_a_running_task() {
    let cluster = cluster(1).await;
    let (scheduler, mut events) = start_scheduler(&cluster, Format::Protobuf, None);
    connected(&mut events).await;
    let offer = next_offer(&mut events).await;
    let agent = offer.agent_id.clone();
    scheduler
        .accept(
            vec![offer.id.clone()],
            vec![operations::launch(vec![command_task(
                "sleeper", &agent, "sleep 30",
            )])],
            None,
        )
        .await
        .unwrap();
    loop {
        if next_update(&mut events).await.state() == TaskState::TaskRunning {
            break;
        }
    }

    // Explicit reconciliation answers from the master: latest state, no uuid, REASON_RECONCILIATION.
    scheduler
        .reconcile(vec![(
            TaskId {
                value: "sleeper".into(),
            },
            Some(agent.clone()),
        )])
        .await
        .unwrap();
    let answer = next_update(&mut events).await;
    assert_eq!(answer.task_id.value, "sleeper");
    assert_eq!(answer.state(), TaskState::TaskRunning);
    assert!(
        answer.uuid.is_none(),
        "reconciliation answers carry no uuid"
    );
    assert_eq!(
        answer.reason(),
        mesos_sdk::v1::task_status::Reason::Reconciliation
    );

    // Implicit reconciliation covers it too.
    scheduler.reconcile_all().await.unwrap();
    let answer = next_update(&mut events).await;
    assert_eq!(
        (answer.task_id.value.as_str(), answer.state()),
        ("sleeper", TaskState::TaskRunning)
    );

    scheduler
        .kill(
            TaskId {
                value: "sleeper".into(),
            },
            Some(agent),
            None,
        )
        .await
        .unwrap();
    let killed = loop {
        let status = next_update(&mut events).await;
        if TaskState::is_terminal(status.state()) {
            break status;
        }
    };
    assert_eq!(killed.state(), TaskState::TaskKilled);

    scheduler.stop();
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_executor_fetched_over_http_runs_tasks_and_echoes_messages() {
    let binary = std::fs::read(env!("CARGO_BIN_EXE_mesos-example-executor")).unwrap();
    let url = serve_file("mesos-example-executor", binary).await;
    let cluster = cluster(1).await;
    let (scheduler, mut events) = start_scheduler(&cluster, Format::Protobuf, None);
    let framework_id = connected(&mut events).await;
    let offer = next_offer(&mut events).await;
    let agent = offer.agent_id.clone();

    let executor = ExecutorInfo {
        executor_id: ExecutorId {
            value: "example".into(),
        },
        framework_id: Some(framework_id.clone()),
        command: Some(CommandInfo {
            value: Some("./mesos-example-executor".into()),
            uris: vec![command_info::Uri {
                value: url,
                executable: Some(true),
                extract: Some(false),
                ..Default::default()
            }],
            ..Default::default()
        }),
        resources: small_resources(),
        ..Default::default()
    };
    let task = TaskInfo {
        name: "custom".into(),
        task_id: TaskId {
            value: "custom".into(),
        },
        agent_id: agent.clone(),
        executor: Some(Box::new(executor)),
        resources: small_resources(),
        data: Some(Bytes::from_static(b"sleep 0.5; echo done")),
        ..Default::default()
    };
    scheduler
        .accept(
            vec![offer.id.clone()],
            vec![operations::launch(vec![task])],
            None,
        )
        .await
        .unwrap();

    let mut states: Vec<TaskState> = Vec::new();
    let mut echoed = None;
    while !states.last().is_some_and(|s| s.is_terminal()) || echoed.is_none() {
        match next_event(&mut events).await {
            SchedulerEvent::Update { status, .. } => {
                assert_eq!(status.task_id.value, "custom");
                if status.state() == TaskState::TaskRunning
                    && !states.contains(&TaskState::TaskRunning)
                {
                    scheduler
                        .message(
                            agent.clone(),
                            ExecutorId {
                                value: "example".into(),
                            },
                            Bytes::from_static(b"ping"),
                        )
                        .await
                        .unwrap();
                }
                states.push(status.state());
            }
            SchedulerEvent::Message { data, .. } => {
                echoed = Some(data);
            }
            _ => {}
        }
    }
    assert_eq!(states.last(), Some(&TaskState::TaskFinished), "{states:?}");
    assert!(states.contains(&TaskState::TaskRunning), "{states:?}");
    assert_eq!(echoed.as_deref(), Some(&b"echo:ping"[..]));

    // Shutting the executor down ends it; its exit reaches the scheduler as FAILURE.
    scheduler
        .shutdown_executor(
            ExecutorId {
                value: "example".into(),
            },
            agent,
        )
        .await
        .unwrap();
    loop {
        if let SchedulerEvent::Failure {
            executor_id,
            status,
            ..
        } = next_event(&mut events).await
        {
            assert_eq!(executor_id.map(|e| e.value).as_deref(), Some("example"));
            assert!(
                status.is_some(),
                "an executor's FAILURE carries its exit status"
            );
            break;
        }
    }
    scheduler.stop();
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_instance_fences_the_first_and_teardown_removes_the_framework() {
    let cluster = cluster(1).await;
    let (first, mut first_events) = start_scheduler(&cluster, Format::Protobuf, None);
    let id = connected(&mut first_events).await;

    let (second, mut second_events) = start_scheduler(&cluster, Format::Json, Some(&id));
    assert_eq!(
        connected(&mut second_events).await,
        id,
        "the second instance resumes the same id"
    );
    let termination = loop {
        if let SchedulerEvent::Terminated(why) = next_event(&mut first_events).await {
            break why;
        }
    };
    assert!(
        matches!(termination, Termination::FailedOver { .. }),
        "{termination:?}"
    );
    assert!(first.termination().is_some());

    second.teardown().await.unwrap();
    // A third instance resuming the removed id is told so, and stops for good.
    let (_third, mut third_events) = start_scheduler(&cluster, Format::Protobuf, Some(&id));
    let termination = loop {
        if let SchedulerEvent::Terminated(why) = next_event(&mut third_events).await {
            break why;
        }
    };
    assert!(
        matches!(termination, Termination::FrameworkRemoved { .. }),
        "{termination:?}"
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_authentication_against_a_master_that_requires_it() {
    let cluster = LocalCluster::builder()
        .credentials(vec![("fw-principal".into(), "s3cret".into())])
        .heartbeat_interval(Duration::from_millis(300))
        .start()
        .await
        .unwrap();
    let framework = || {
        FrameworkInfoBuilder::new(user(), "auth")
            .principal("fw-principal")
            .build()
    };

    // Right credentials: subscribed.
    let client = Client::builder()
        .endpoint(cluster.master_url())
        .basic_auth("fw-principal", "s3cret")
        .build()
        .unwrap();
    let (scheduler, mut events) = Scheduler::builder(client, framework()).start();
    connected(&mut events).await;
    scheduler.stop();

    // Wrong secret: the 401 stops the driver with the master's answer kept.
    let client = Client::builder()
        .endpoint(cluster.master_url())
        .basic_auth("fw-principal", "wrong")
        .build()
        .unwrap();
    let (_rejected, mut events) = Scheduler::builder(client, framework()).start();
    let termination = loop {
        if let SchedulerEvent::Terminated(why) = next_event(&mut events).await {
            break why;
        }
    };
    match termination {
        Termination::Rejected { status, .. } => assert_eq!(status, Some(401)),
        other => panic!("expected a 401 rejection, got {other:?}"),
    }
    cluster.shutdown().await;
}
