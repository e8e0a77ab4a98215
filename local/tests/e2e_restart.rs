//! End to end: the `mesos-local` process is killed (SIGKILL) while a checkpointing custom executor
//! runs a task, and started again on the same work directory. The executor reconnects to the
//! recovered agent, and the same SDK scheduler resubscribes, finds the task by reconciliation,
//! talks to the executor and kills the task.

use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use mesos_sdk::client::Client;
use mesos_sdk::scheduler::calls::operations;
use mesos_sdk::scheduler::{FrameworkInfoBuilder, Scheduler, SchedulerEvent, SchedulerEvents};
use mesos_sdk::v1::{
    CommandInfo, ExecutorId, ExecutorInfo, TaskId, TaskInfo, TaskState, TaskStatus, command_info,
};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::time::timeout;

mod e2e_support;
use e2e_support::{WAIT, connected, next_event, next_offer, next_update, scalar, serve_file, user};

/// Starts `mesos-local` and returns it with the master URL it printed.
async fn start_mesos_local(port: u16, work_dir: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mesos-local"))
        .args(["--port", &port.to_string()])
        .arg("--work_dir")
        .arg(work_dir)
        .args(["--agents", "1"])
        .args([
            "--resources",
            "cpus:2;mem:2048;disk:1000;ports:[31000-31100]",
        ])
        .args(["--heartbeat_interval", "300ms"])
        .args(["--allocation_interval", "50ms"])
        .args(["--executor_reregistration_timeout", "3secs"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("mesos-local starts");
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut lines = BufReader::new(stdout).lines();
    let url = timeout(WAIT, lines.next_line())
        .await
        .expect("mesos-local prints its URL in time")
        .expect("stdout is readable")
        .expect("mesos-local printed a line");
    (child, url)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

async fn update_for(events: &mut SchedulerEvents, wanted: TaskState) -> TaskStatus {
    loop {
        let status = next_update(events).await;
        if status.state() == wanted {
            return status;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpointing_executor_survives_a_killed_mesos_local() {
    let work_dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let binary = std::fs::read(env!("CARGO_BIN_EXE_mesos-example-executor")).unwrap();
    let executor_url = serve_file("mesos-example-executor", binary).await;

    let (mut first, url) = start_mesos_local(port, work_dir.path()).await;
    let client = Client::builder()
        .endpoint(&url)
        .call_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    // FrameworkInfoBuilder checkpoints by default: the agent checkpoints the executor and task.
    let framework = FrameworkInfoBuilder::new(user(), "restart")
        .roles(["restart"])
        .build();
    let (scheduler, mut events) = Scheduler::builder(client, framework)
        .reconnect_backoff(Duration::from_millis(50), Duration::from_millis(300))
        .start();

    let offer = next_offer(&mut events).await;
    let agent = offer.agent_id.clone();
    let executor_id = ExecutorId {
        value: "survivor".into(),
    };
    let executor = ExecutorInfo {
        executor_id: executor_id.clone(),
        framework_id: scheduler.framework_id(),
        command: Some(CommandInfo {
            value: Some("./mesos-example-executor".into()),
            uris: vec![command_info::Uri {
                value: executor_url,
                executable: Some(true),
                extract: Some(false),
                ..Default::default()
            }],
            ..Default::default()
        }),
        resources: vec![
            scalar("cpus", 0.1, "restart"),
            scalar("mem", 32.0, "restart"),
        ],
        ..Default::default()
    };
    let task = TaskInfo {
        name: "long".into(),
        task_id: TaskId {
            value: "long".into(),
        },
        agent_id: agent.clone(),
        executor: Some(Box::new(executor)),
        resources: vec![
            scalar("cpus", 0.1, "restart"),
            scalar("mem", 32.0, "restart"),
        ],
        data: Some(Bytes::from_static(b"sleep 600")),
        ..Default::default()
    };
    scheduler
        .accept(vec![offer.id], vec![operations::launch(vec![task])], None)
        .await
        .unwrap();
    update_for(&mut events, TaskState::TaskRunning).await;

    // Crash: no clean shutdown, the executor process lives on.
    first.kill().await.unwrap();
    loop {
        if let SchedulerEvent::Disconnected { .. } = next_event(&mut events).await {
            break;
        }
    }

    let (mut second, second_url) = start_mesos_local(port, work_dir.path()).await;
    assert_eq!(second_url, url, "same port, same URL");
    // The same scheduler resubscribes by itself with its framework id.
    connected(&mut events).await;

    // The recovered agent reported the task: reconciliation finds it running.
    scheduler
        .reconcile(vec![(
            TaskId {
                value: "long".into(),
            },
            Some(agent.clone()),
        )])
        .await
        .unwrap();
    let answer = update_for(&mut events, TaskState::TaskRunning).await;
    assert_eq!(answer.task_id.value, "long");

    // The executor reconnected to the new agent process: messages reach it and come back.
    let echoed = timeout(WAIT, async {
        loop {
            let _ = scheduler
                .message(
                    agent.clone(),
                    executor_id.clone(),
                    Bytes::from_static(b"still there?"),
                )
                .await;
            let wait = tokio::time::sleep(Duration::from_millis(500));
            tokio::pin!(wait);
            loop {
                tokio::select! {
                    _ = &mut wait => break,
                    event = events.next() => {
                        if let Some(SchedulerEvent::Message { data, .. }) = event {
                            return data;
                        }
                    }
                }
            }
        }
    })
    .await
    .expect("the executor answers after the restart");
    assert_eq!(&echoed[..], b"echo:still there?");

    scheduler
        .kill(
            TaskId {
                value: "long".into(),
            },
            Some(agent),
            None,
        )
        .await
        .unwrap();
    let killed = update_for(&mut events, TaskState::TaskKilled).await;
    assert_eq!(killed.task_id.value, "long");

    scheduler.stop();
    // A clean stop of mesos-local shuts the executor down too.
    let pid = second.id().expect("running") as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = timeout(WAIT, second.wait()).await.unwrap().unwrap();
    assert!(
        status.success(),
        "mesos-local exits cleanly on SIGTERM: {status:?}"
    );
}
