//! The embedded agent with real custom executors (`mesos-example-executor`, fetched over
//! loopback HTTP) and restart recovery on the same work directory.

mod local_agent_support;

use std::collections::HashMap;
use std::time::Duration;

use local_agent_support::*;
use mesos_local::link::{FromAgent, ToAgent};
use mesos_sdk::v1::command_info::Uri;
use mesos_sdk::v1::{CommandInfo, ExecutorId, ExecutorInfo, TaskState, task_status};

const EXECUTOR_PATH: &str = "/mesos-example-executor";

async fn executor_server() -> FileServer {
    let binary = std::fs::read(env!("CARGO_BIN_EXE_mesos-example-executor")).unwrap();
    let mut files = HashMap::new();
    files.insert(EXECUTOR_PATH.to_string(), binary);
    FileServer::start(files).await
}

fn example_executor(server: &FileServer, id: &str) -> ExecutorInfo {
    let command = CommandInfo {
        value: Some("./mesos-example-executor".into()),
        uris: vec![Uri {
            value: server.url(EXECUTOR_PATH),
            executable: Some(true),
            cache: Some(true),
            ..Default::default()
        }],
        ..Default::default()
    };
    custom_executor(id, command)
}

fn exited(master: &mut TestMaster) -> impl std::future::Future<Output = (String, i32)> + '_ {
    master.next_other(|m| match m {
        FromAgent::ExecutorExited {
            executor_id,
            status,
            ..
        } => Some((executor_id.value.clone(), *status)),
        _ => None,
    })
}

async fn until_running(master: &mut TestMaster, task_id: &str) {
    loop {
        let status = master.next_update().await;
        master.ack(&status);
        assert!(
            !is_terminal(state_of(&status)),
            "task ended early: {status:?}"
        );
        if status.task_id.value == task_id && state_of(&status) == TaskState::TaskRunning {
            return;
        }
    }
}

#[tokio::test]
async fn a_real_executor_runs_tasks_echoes_messages_and_shuts_down() {
    let server = executor_server().await;
    let (agent, mut master) = start(config(None)).await;
    let executor = example_executor(&server, "example");
    master.run_task(
        framework(false),
        Some(executor.clone()),
        task("r-echo", Some(shell("echo from-task"))),
    );
    let updates = master.updates_until_terminal("r-echo").await;
    assert_eq!(
        states(&updates),
        vec![
            TaskState::TaskStarting,
            TaskState::TaskRunning,
            TaskState::TaskFinished
        ]
    );
    for update in &updates {
        assert_eq!(update.source(), task_status::Source::Executor);
        assert_eq!(update.executor_id.as_ref().unwrap().value, "example");
    }

    master.send(ToAgent::FrameworkMessage {
        framework_id: framework_id(),
        executor_id: ExecutorId {
            value: "example".into(),
        },
        data: bytes::Bytes::from_static(b"ping"),
    });
    let echo = master
        .next_other(|m| match m {
            FromAgent::ExecutorMessage { data, .. } => Some(data.clone()),
            _ => None,
        })
        .await;
    assert_eq!(&echo[..], b"echo:ping");

    master.run_task(
        framework(false),
        Some(executor.clone()),
        task("r-sleep", Some(shell("sleep 30"))),
    );
    until_running(&mut master, "r-sleep").await;
    master.kill("r-sleep", Some(Duration::from_millis(200)));
    let updates = master.updates_until_terminal("r-sleep").await;
    assert_eq!(state_of(updates.last().unwrap()), TaskState::TaskKilled);

    master.send(ToAgent::ShutdownExecutor {
        framework_id: framework_id(),
        executor_id: ExecutorId {
            value: "example".into(),
        },
    });
    let (executor_id, status) = exited(&mut master).await;
    assert_eq!(executor_id, "example");
    assert_eq!(status, 0, "the executor exits cleanly on SHUTDOWN");
    assert_eq!(server.hits(EXECUTOR_PATH), 1);
    agent.shutdown().await;
}

#[tokio::test]
async fn a_checkpointing_executor_resubscribes_after_an_agent_restart() {
    let server = executor_server().await;
    let work_dir = tempfile::tempdir().unwrap();
    let (agent, mut master) = start(config(Some(work_dir.path().to_path_buf()))).await;
    let agent_id = agent.id().clone();
    let port = agent.endpoint().port();
    let executor = example_executor(&server, "survivor");
    master.run_task(
        framework(true),
        Some(executor.clone()),
        task("r-long", Some(shell("sleep 30"))),
    );
    until_running(&mut master, "r-long").await;
    // Let the acknowledgement of TASK_RUNNING reach the agent's checkpoint.
    tokio::time::sleep(Duration::from_millis(200)).await;
    agent.crash().await;
    drop(master);

    let (agent, mut master) = start(config(Some(work_dir.path().to_path_buf()))).await;
    assert_eq!(agent.id(), &agent_id, "the agent id is recovered");
    assert_eq!(agent.endpoint().port(), port, "the port is recovered");
    let registration = &master.registration;
    assert_eq!(registration.frameworks.len(), 1);
    assert_eq!(registration.executors.len(), 1);
    assert_eq!(registration.executors[0].executor_id.value, "survivor");
    assert_eq!(registration.tasks.len(), 1);
    assert_eq!(registration.tasks[0].task_id.value, "r-long");
    assert_eq!(registration.tasks[0].state(), TaskState::TaskRunning);

    // The executor comes back on its own; a kill (held until it has subscribed) goes
    // through it.
    master.kill("r-long", Some(Duration::from_millis(200)));
    let updates = master.updates_until_terminal("r-long").await;
    let last = updates.last().unwrap();
    assert_eq!(state_of(last), TaskState::TaskKilled);
    assert_eq!(last.source(), task_status::Source::Executor);

    master.send(ToAgent::ShutdownExecutor {
        framework_id: framework_id(),
        executor_id: ExecutorId {
            value: "survivor".into(),
        },
    });
    let (executor_id, _) = exited(&mut master).await;
    assert_eq!(executor_id, "survivor");
    agent.shutdown().await;
}

#[tokio::test]
async fn executors_that_do_not_come_back_and_command_tasks_are_reported_after_a_restart() {
    let work_dir = tempfile::tempdir().unwrap();
    let (agent, mut master) = start(config(Some(work_dir.path().to_path_buf()))).await;
    // A checkpointed custom executor process that never subscribes, and a command task.
    master.run_task(
        framework(true),
        Some(custom_executor(
            "silent",
            shell("touch started; exec sleep 30"),
        )),
        task("r-queued", None),
    );
    master.run_task(
        framework(true),
        None,
        task("r-command", Some(shell("echo $$ > pid; exec sleep 30"))),
    );
    until_running(&mut master, "r-command").await;
    let silent_sandbox = agent
        .executor_sandbox(
            &framework_id(),
            &ExecutorId {
                value: "silent".into(),
            },
        )
        .unwrap();
    eventually("the silent executor to start", || {
        silent_sandbox.join("started").exists()
    })
    .await;
    let command_sandbox = agent
        .executor_sandbox(
            &framework_id(),
            &ExecutorId {
                value: "r-command".into(),
            },
        )
        .unwrap();
    agent.crash().await;
    drop(master);

    let (agent, mut master) = start(config(Some(work_dir.path().to_path_buf()))).await;
    let mut recovered: Vec<String> = master
        .registration
        .tasks
        .iter()
        .map(|t| t.task_id.value.clone())
        .collect();
    recovered.sort();
    assert_eq!(recovered, vec!["r-command", "r-queued"]);

    let updates = master.updates_until_terminal("r-command").await;
    let last = updates.last().unwrap();
    assert_eq!(state_of(last), TaskState::TaskFailed);
    assert_eq!(last.reason(), task_status::Reason::ExecutorTerminated);

    let updates = master.updates_until_terminal("r-queued").await;
    let last = updates.last().unwrap();
    assert_eq!(state_of(last), TaskState::TaskLost);
    assert_eq!(
        last.reason(),
        task_status::Reason::ExecutorReregistrationTimeout
    );
    let (executor_id, _) = exited(&mut master).await;
    assert_eq!(executor_id, "silent");
    assert!(
        command_sandbox.join("stdout").exists(),
        "sandboxes are kept"
    );
    let pid = std::fs::read_to_string(command_sandbox.join("pid")).unwrap();
    let stat = format!("/proc/{}/stat", pid.trim());
    eventually("the leftover command process to be killed", || {
        std::fs::read_to_string(&stat)
            .map(|s| {
                s.rsplit_once(") ")
                    .is_some_and(|(_, rest)| rest.starts_with('Z'))
            })
            .unwrap_or(true)
    })
    .await;
    agent.shutdown().await;
}

#[tokio::test]
async fn unacknowledged_updates_are_resent_after_a_restart() {
    let work_dir = tempfile::tempdir().unwrap();
    let (agent, mut master) = start(config(Some(work_dir.path().to_path_buf()))).await;
    master.run_task(
        framework(true),
        None,
        task("r-true", Some(shell("touch done"))),
    );
    let starting = master.next_update().await;
    assert_eq!(state_of(&starting), TaskState::TaskStarting);
    master.ack(&starting);
    let running = master.next_update().await;
    assert_eq!(state_of(&running), TaskState::TaskRunning);
    // Let the task finish (its FINISHED update is queued behind the unacknowledged RUNNING).
    let sandbox = agent
        .executor_sandbox(
            &framework_id(),
            &ExecutorId {
                value: "r-true".into(),
            },
        )
        .unwrap();
    eventually("the task to finish", || sandbox.join("done").exists()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    agent.crash().await;
    drop(master);

    let (agent, mut master) = start(config(Some(work_dir.path().to_path_buf()))).await;
    let resent = master.next_update().await;
    assert_eq!(resent.uuid, running.uuid, "the same update, same uuid");
    master.ack(&resent);
    let finished = master.next_update().await;
    assert_eq!(state_of(&finished), TaskState::TaskFinished);
    master.ack(&finished);
    assert!(sandbox.exists());
    agent.shutdown().await;
}

#[tokio::test]
async fn queued_tasks_reach_an_executor_that_subscribes_after_a_restart() {
    use mesos_sdk::v1::executor::{Call, call, event};
    let work_dir = tempfile::tempdir().unwrap();
    let (agent, master) = start(config(Some(work_dir.path().to_path_buf()))).await;
    master.run_task(
        framework(true),
        Some(custom_executor(
            "late",
            shell("touch started; exec sleep 30"),
        )),
        task("r-waiting", None),
    );
    let sandbox = loop {
        if let Some(sandbox) = agent.executor_sandbox(
            &framework_id(),
            &ExecutorId {
                value: "late".into(),
            },
        ) {
            break sandbox;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    eventually("the executor to start", || sandbox.join("started").exists()).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    agent.crash().await;
    drop(master);

    let (agent, mut master) = start(config(Some(work_dir.path().to_path_buf()))).await;
    // The test subscribes on behalf of the recovered executor process.
    let subscribe_call = Call {
        executor_id: ExecutorId {
            value: "late".into(),
        },
        framework_id: framework_id(),
        r#type: Some(call::Type::Subscribe as i32),
        subscribe: Some(call::Subscribe::default()),
        ..Default::default()
    };
    let mut stream = subscribe(agent.endpoint(), &subscribe_call).await;
    assert_eq!(stream.status, 200);
    assert_eq!(
        stream.next().await.unwrap().r#type(),
        event::Type::Subscribed
    );
    let launch = stream.next().await.unwrap();
    assert_eq!(launch.r#type(), event::Type::Launch);
    assert_eq!(launch.launch.unwrap().task.task_id.value, "r-waiting");
    // Past the reregistration timeout the executor is still there: a kill goes to it.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    master.kill("r-waiting", None);
    assert_eq!(stream.next().await.unwrap().r#type(), event::Type::Kill);
    master.send(ToAgent::ShutdownExecutor {
        framework_id: framework_id(),
        executor_id: ExecutorId {
            value: "late".into(),
        },
    });
    let (executor_id, _) = exited(&mut master).await;
    assert_eq!(executor_id, "late");
    agent.shutdown().await;
}

#[tokio::test]
async fn a_clean_shutdown_makes_the_next_start_fresh() {
    let work_dir = tempfile::tempdir().unwrap();
    let (agent, master) = start(config(Some(work_dir.path().to_path_buf()))).await;
    let first = agent.id().clone();
    master.run_task(
        framework(true),
        None,
        task("r-gone", Some(shell("sleep 30"))),
    );
    agent.shutdown().await;
    drop(master);
    let (agent, master) = start(config(Some(work_dir.path().to_path_buf()))).await;
    assert_ne!(agent.id(), &first);
    assert!(master.registration.frameworks.is_empty());
    assert!(master.registration.tasks.is_empty());
    agent.shutdown().await;
}
