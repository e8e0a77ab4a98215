//! The `mesos-example-executor` binary, run as an agent would run it (the `MESOS_*`
//! environment), against a scripted agent.

#[path = "../../tests/executor_support/mod.rs"]
mod executor_support;

use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use bytes::Bytes;
use executor_support::*;
use mesos_sdk::v1::executor::call;
use mesos_sdk::v1::{CommandInfo, DurationInfo, KillPolicy, TaskState};
use tokio::process::{Child, Command};

struct ExampleExecutor {
    child: Child,
    sandbox: tempfile::TempDir,
}

impl ExampleExecutor {
    fn start(agent: &ScriptedAgent, checkpoint: bool) -> Self {
        let sandbox = tempfile::tempdir().unwrap();
        let mut env = environment(&agent.endpoint(), checkpoint);
        env.retain(|(name, _)| name != "MESOS_DIRECTORY");
        env.push((
            "MESOS_DIRECTORY".into(),
            sandbox.path().display().to_string(),
        ));
        let stdout = std::fs::File::create(sandbox.path().join("stdout")).unwrap();
        let stderr = std::fs::File::create(sandbox.path().join("stderr")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_mesos-example-executor"))
            .envs(env)
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        Self { child, sandbox }
    }

    async fn exit_status(&mut self) -> ExitStatus {
        tokio::time::timeout(WAIT, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("the executor did not exit; stderr:\n{}", self.log()))
            .unwrap()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.sandbox.path().join("stderr")).unwrap_or_default()
    }

    fn sandbox(&self) -> &Path {
        self.sandbox.path()
    }
}

/// Receives `count` updates, acknowledging each as an agent would; returns (task, state, message).
async fn updates(
    agent: &mut ScriptedAgent,
    stream: &StreamHandle,
    count: usize,
) -> Vec<(String, TaskState, String)> {
    let mut seen = Vec::new();
    while seen.len() < count {
        let call = agent.next_call().await;
        if call.kind() != call::Type::Update {
            continue;
        }
        let status = call.status();
        send(stream, &acknowledged_event(status));
        seen.push((
            status.task_id.value.clone(),
            status.state(),
            status.message.clone().unwrap_or_default(),
        ));
    }
    seen
}

fn states_of(updates: &[(String, TaskState, String)], task: &str) -> Vec<TaskState> {
    updates
        .iter()
        .filter(|(id, _, _)| id == task)
        .map(|(_, state, _)| *state)
        .collect()
}

async fn shut_down(
    agent: &mut ScriptedAgent,
    executor: &mut ExampleExecutor,
    stream: &StreamHandle,
) {
    send(stream, &shutdown_event());
    let status = executor.exit_status().await;
    assert!(
        status.success(),
        "exit {status:?}; log:\n{}",
        executor.log()
    );
    assert!(agent.no_call_within(Duration::from_millis(50)).await);
}

#[tokio::test]
async fn echo_hi_reports_starting_running_finished() {
    let mut agent = ScriptedAgent::start().await;
    let mut executor = ExampleExecutor::start(&agent, false);
    let subscription = agent.accept_subscription().await;
    let stream = subscription.stream();
    send(stream, &launch_event(task("hello", Some("echo hi"))));
    let seen = updates(&mut agent, stream, 3).await;
    assert_eq!(
        states_of(&seen, "hello"),
        [
            TaskState::TaskStarting,
            TaskState::TaskRunning,
            TaskState::TaskFinished
        ]
    );
    assert!(seen[2].2.contains("status 0"), "{:?}", seen[2]);
    shut_down(&mut agent, &mut executor, stream).await;
    let stdout = std::fs::read_to_string(executor.sandbox().join("stdout")).unwrap();
    assert_eq!(stdout, "hi\n");
}

#[tokio::test]
async fn a_failing_command_reports_its_exit_status() {
    let mut agent = ScriptedAgent::start().await;
    let mut executor = ExampleExecutor::start(&agent, false);
    let subscription = agent.accept_subscription().await;
    let stream = subscription.stream();
    send(stream, &launch_event(task("fails", Some("exit 3"))));
    let seen = updates(&mut agent, stream, 3).await;
    assert_eq!(seen[2].1, TaskState::TaskFailed);
    assert!(seen[2].2.contains("status 3"), "{:?}", seen[2]);
    shut_down(&mut agent, &mut executor, stream).await;
}

#[tokio::test]
async fn argv_commands_and_data_scripts_run_too() {
    let mut agent = ScriptedAgent::start().await;
    let mut executor = ExampleExecutor::start(&agent, false);
    let subscription = agent.accept_subscription().await;
    let stream = subscription.stream();

    let mut argv = task("argv", None);
    argv.command = Some(CommandInfo {
        shell: Some(false),
        value: Some("/bin/sh".into()),
        arguments: vec!["sh".into(), "-c".into(), "test \"$0\" = sh".into()],
        ..CommandInfo::default()
    });
    let mut data = task("data", None);
    data.data = Some(Bytes::from_static(b"exit 4"));
    let mut with_env = task("env", Some("test \"$GREETING\" = hello"));
    with_env.command.as_mut().unwrap().environment = Some(mesos_sdk::v1::Environment {
        variables: vec![mesos_sdk::v1::environment::Variable {
            name: "GREETING".into(),
            value: Some("hello".into()),
            ..Default::default()
        }],
    });
    let nothing = task("nothing", None);

    send(stream, &launch_event(argv));
    send(stream, &launch_event(data));
    send(stream, &launch_event(with_env));
    send(stream, &launch_event(nothing));
    let seen = updates(&mut agent, stream, 10).await;
    assert_eq!(
        states_of(&seen, "argv").last(),
        Some(&TaskState::TaskFinished)
    );
    // The data script ran and its exit status came back.
    let data_end = seen.iter().rfind(|(id, _, _)| id == "data").unwrap();
    assert_eq!(data_end.1, TaskState::TaskFailed);
    assert!(data_end.2.contains("status 4"), "{data_end:?}");
    assert_eq!(
        states_of(&seen, "env").last(),
        Some(&TaskState::TaskFinished)
    );
    assert_eq!(states_of(&seen, "nothing"), [TaskState::TaskError]);
    shut_down(&mut agent, &mut executor, stream).await;
}

#[tokio::test]
async fn kill_terminates_the_task_with_sigterm_then_sigkill() {
    let mut agent = ScriptedAgent::start().await;
    let mut executor = ExampleExecutor::start(&agent, false);
    let subscription = agent.accept_subscription().await;
    let stream = subscription.stream();
    send(stream, &launch_event(task("polite", Some("sleep 30"))));
    send(
        stream,
        &launch_event(task(
            "stubborn",
            Some("trap '' TERM; touch trap-installed; sleep 30"),
        )),
    );
    let seen = updates(&mut agent, stream, 4).await;
    assert_eq!(
        states_of(&seen, "polite").last(),
        Some(&TaskState::TaskRunning)
    );
    assert_eq!(
        states_of(&seen, "stubborn").last(),
        Some(&TaskState::TaskRunning)
    );
    // Wait until the stubborn shell has installed its trap.
    let marker = executor.sandbox().join("trap-installed");
    let waited = tokio::time::Instant::now();
    while !marker.exists() {
        assert!(waited.elapsed() < WAIT, "the stubborn task never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let started = tokio::time::Instant::now();
    let short = KillPolicy {
        grace_period: Some(DurationInfo {
            nanoseconds: 200_000_000,
        }),
    };
    send(stream, &kill_event("polite", Some(short)));
    send(stream, &kill_event("stubborn", Some(short)));
    let seen = updates(&mut agent, stream, 2).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    for (task, state, message) in &seen {
        assert_eq!(*state, TaskState::TaskKilled, "{task}: {message}");
    }
    let polite = seen.iter().find(|(id, _, _)| id == "polite").unwrap();
    assert!(polite.2.contains("SIGTERM"), "{polite:?}");
    let stubborn = seen.iter().find(|(id, _, _)| id == "stubborn").unwrap();
    assert!(stubborn.2.contains("SIGKILL"), "{stubborn:?}");
    shut_down(&mut agent, &mut executor, stream).await;
}

#[tokio::test]
async fn messages_are_echoed_back() {
    let mut agent = ScriptedAgent::start().await;
    let mut executor = ExampleExecutor::start(&agent, false);
    let subscription = agent.accept_subscription().await;
    let stream = subscription.stream();
    send(stream, &message_event(b"ping"));
    let message = agent.expect(call::Type::Message).await;
    assert_eq!(
        message.call.message.as_ref().unwrap().data,
        Bytes::from_static(b"echo:ping")
    );
    shut_down(&mut agent, &mut executor, stream).await;
}

#[tokio::test]
async fn shutdown_kills_running_tasks_and_exits_zero() {
    let mut agent = ScriptedAgent::start().await;
    let mut executor = ExampleExecutor::start(&agent, true);
    let subscription = agent.accept_subscription().await;
    let stream = subscription.stream();
    send(
        stream,
        &launch_group_event(vec![
            task("g1", Some("sleep 30")),
            task("g2", Some("sleep 30")),
        ]),
    );
    let seen = updates(&mut agent, stream, 4).await;
    assert_eq!(states_of(&seen, "g1").last(), Some(&TaskState::TaskRunning));
    assert_eq!(states_of(&seen, "g2").last(), Some(&TaskState::TaskRunning));
    send(stream, &shutdown_event());
    let seen = updates(&mut agent, stream, 2).await;
    assert!(
        seen.iter()
            .all(|(_, state, _)| *state == TaskState::TaskKilled)
    );
    let status = executor.exit_status().await;
    assert!(
        status.success(),
        "exit {status:?}; log:\n{}",
        executor.log()
    );
}

#[tokio::test]
async fn losing_the_agent_without_checkpointing_exits_zero() {
    let mut agent = ScriptedAgent::start().await;
    let mut executor = ExampleExecutor::start(&agent, false);
    let subscription = agent.accept_subscription().await;
    send(subscription.stream(), &heartbeat_event());
    drop(subscription);
    let status = executor.exit_status().await;
    assert!(
        status.success(),
        "exit {status:?}; log:\n{}",
        executor.log()
    );
}

#[tokio::test]
async fn a_bad_environment_exits_non_zero() {
    let output = Command::new(env!("CARGO_BIN_EXE_mesos-example-executor"))
        .env_remove("MESOS_FRAMEWORK_ID")
        .env_remove("MESOS_EXECUTOR_ID")
        .env("MESOS_AGENT_ENDPOINT", "127.0.0.1:1")
        .env_remove("MESOS_DIRECTORY")
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(log.contains("MESOS_FRAMEWORK_ID"), "{log}");
}

#[tokio::test]
async fn a_checkpointing_executor_survives_an_agent_restart() {
    let mut agent = ScriptedAgent::start().await;
    let mut executor = ExampleExecutor::start(&agent, true);
    let first = agent.accept_subscription().await;
    send(
        first.stream(),
        &launch_event(task("long", Some("sleep 30"))),
    );
    // STARTING and RUNNING arrive, but the "agent" dies before acknowledging them.
    let starting = agent.expect(call::Type::Update).await;
    let running = agent.expect(call::Type::Update).await;
    assert_eq!(running.status().state(), TaskState::TaskRunning);
    first.stream().abort();

    let second = agent.accept_subscription().await;
    let body = second.call.subscribe.as_ref().unwrap();
    let tasks: Vec<&str> = body
        .unacknowledged_tasks
        .iter()
        .map(|t| t.task_id.value.as_str())
        .collect();
    assert_eq!(tasks, ["long"]);
    let resent: Vec<_> = body
        .unacknowledged_updates
        .iter()
        .map(|u| u.status.uuid.clone())
        .collect();
    assert_eq!(
        resent,
        [
            starting.status().uuid.clone(),
            running.status().uuid.clone()
        ]
    );

    // The task kept running across the reconnection and can still be killed.
    send(second.stream(), &kill_event("long", None));
    let seen = updates(&mut agent, second.stream(), 1).await;
    assert_eq!(seen[0].1, TaskState::TaskKilled);
    shut_down(&mut agent, &mut executor, second.stream()).await;
}
