//! The embedded agent's built-in executors, driven over the master link: command tasks, update
//! sequences, reliable resends, kills, sandboxes, the fetcher, health checks and task groups.

mod local_agent_support;
#[path = "../../tests/common/scripted.rs"]
mod scripted;
#[path = "../../tests/common/tls_fixtures.rs"]
mod tls_fixtures;

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

use local_agent_support::*;
use mesos_local::link::{FromAgent, ToAgent};
use mesos_sdk::v1::command_info::Uri;
use mesos_sdk::v1::environment::Variable;
use mesos_sdk::v1::{
    CommandInfo, Environment, ExecutorId, ExecutorInfo, HealthCheck, TaskGroupInfo, TaskState,
    executor_info, health_check, task_status,
};

fn uri(value: &str) -> Uri {
    Uri {
        value: value.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn command_true_reports_starting_running_finished() {
    let (agent, mut master) = start(config(None)).await;
    assert_eq!(master.registration.url, agent.url());
    assert_eq!(master.registration.info.id.as_ref(), Some(agent.id()));
    assert_eq!(
        master.registration.info.port,
        Some(i32::from(agent.endpoint().port()))
    );
    master.run_task(framework(false), None, task("t-true", Some(shell("true"))));
    let updates = master.updates_until_terminal("t-true").await;
    assert_eq!(
        states(&updates),
        vec![
            TaskState::TaskStarting,
            TaskState::TaskRunning,
            TaskState::TaskFinished
        ]
    );
    for update in &updates {
        assert_eq!(update.uuid.as_ref().map(|u| u.len()), Some(16));
        assert_eq!(update.agent_id.as_ref(), Some(agent.id()));
        assert_eq!(
            update.executor_id.as_ref().map(|e| e.value.as_str()),
            Some("t-true")
        );
        assert_eq!(update.source(), task_status::Source::Executor);
        assert!(update.timestamp.is_some());
    }
    agent.shutdown().await;
}

#[tokio::test]
async fn failing_commands_report_their_exit_status() {
    let (agent, mut master) = start(config(None)).await;
    master.run_task(
        framework(false),
        None,
        task("t-false", Some(shell("false"))),
    );
    let updates = master.updates_until_terminal("t-false").await;
    let last = updates.last().unwrap();
    assert_eq!(state_of(last), TaskState::TaskFailed);
    assert_eq!(last.message(), "Command exited with status 1");
    assert_eq!(last.reason, None);

    master.run_task(
        framework(false),
        None,
        task("t-exit3", Some(shell("exit 3"))),
    );
    let updates = master.updates_until_terminal("t-exit3").await;
    let last = updates.last().unwrap();
    assert_eq!(state_of(last), TaskState::TaskFailed);
    assert_eq!(last.message(), "Command exited with status 3");

    master.run_task(
        framework(false),
        None,
        task("t-signal", Some(shell("kill -9 $$"))),
    );
    let updates = master.updates_until_terminal("t-signal").await;
    assert_eq!(
        updates.last().unwrap().message(),
        "Command terminated with signal Killed"
    );
    agent.shutdown().await;
}

#[tokio::test]
async fn argv_commands_environment_and_sandbox_output() {
    let (agent, mut master) = start(config(None)).await;
    let argv = CommandInfo {
        shell: Some(false),
        value: Some("/bin/sh".into()),
        arguments: vec![
            "sh".into(),
            "-c".into(),
            "echo out:$GREETING; echo err >&2; pwd".into(),
        ],
        environment: Some(Environment {
            variables: vec![Variable {
                name: "GREETING".into(),
                value: Some("hello".into()),
                ..Default::default()
            }],
        }),
        ..Default::default()
    };
    master.run_task(framework(false), None, task("t-argv", Some(argv)));
    let updates = master.updates_until_terminal("t-argv").await;
    assert_eq!(state_of(updates.last().unwrap()), TaskState::TaskFinished);
    let sandbox = agent
        .executor_sandbox(
            &framework_id(),
            &ExecutorId {
                value: "t-argv".into(),
            },
        )
        .expect("sandbox known");
    let expected_prefix = agent
        .sandbox_root()
        .join("frameworks")
        .join(FRAMEWORK)
        .join("executors")
        .join("t-argv")
        .join("runs");
    assert!(sandbox.starts_with(&expected_prefix), "{sandbox:?}");
    let stdout = std::fs::read_to_string(sandbox.join("stdout")).unwrap();
    assert!(stdout.contains("out:hello"), "{stdout}");
    assert!(
        stdout.contains(sandbox.to_str().unwrap()),
        "runs in its sandbox: {stdout}"
    );
    let stderr = std::fs::read_to_string(sandbox.join("stderr")).unwrap();
    assert_eq!(stderr.trim(), "err");
    agent.shutdown().await;
}

#[tokio::test]
async fn updates_are_resent_until_acknowledged_one_at_a_time() {
    let (agent, mut master) = start(config(None)).await;
    master.run_task(
        framework(false),
        None,
        task("t-resend", Some(shell("true"))),
    );
    let mut starting = None;
    let mut resends = 0;
    while resends < 2 {
        match master.next_raw().await {
            FromAgent::StatusUpdate { status, .. } => {
                assert_eq!(
                    state_of(&status),
                    TaskState::TaskStarting,
                    "nothing else goes out before STARTING is acknowledged"
                );
                match &starting {
                    None => starting = Some(status),
                    Some(first) => {
                        assert_eq!(first.uuid, status.uuid, "a resend keeps the uuid");
                        resends += 1;
                    }
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    master.ack(starting.as_ref().unwrap());
    let updates = master.updates_until_terminal("t-resend").await;
    assert_eq!(
        states(&updates),
        vec![TaskState::TaskRunning, TaskState::TaskFinished]
    );
    agent.shutdown().await;
}

#[tokio::test]
async fn kill_sends_sigterm_then_sigkill_after_the_grace_period() {
    let (agent, mut master) = start(config(None)).await;
    master.run_task(
        framework(false),
        None,
        task("t-sleep", Some(shell("sleep 30"))),
    );
    let starting = master.next_update().await;
    assert_eq!(state_of(&starting), TaskState::TaskStarting);
    master.ack(&starting);
    let running = loop {
        let status = master.next_update().await;
        master.ack(&status);
        if state_of(&status) == TaskState::TaskRunning {
            break status;
        }
    };
    assert_eq!(running.task_id.value, "t-sleep");
    master.kill("t-sleep", None);
    let updates = master.updates_until_terminal("t-sleep").await;
    let last = updates.last().unwrap();
    assert_eq!(state_of(last), TaskState::TaskKilled);
    assert_eq!(last.message(), "Command terminated with signal Terminated");

    // A task that ignores SIGTERM is SIGKILLed once the kill policy's grace period is over.
    let stubborn = "trap 'echo got-term' TERM; touch ready; while true; do sleep 0.05; done";
    master.run_task(
        framework(false),
        None,
        task("t-stubborn", Some(shell(stubborn))),
    );
    loop {
        let status = master.next_update().await;
        master.ack(&status);
        if state_of(&status) == TaskState::TaskRunning {
            break;
        }
    }
    let sandbox = agent
        .executor_sandbox(
            &framework_id(),
            &ExecutorId {
                value: "t-stubborn".into(),
            },
        )
        .unwrap();
    eventually("the trap to be set", || sandbox.join("ready").exists()).await;
    let started = Instant::now();
    master.kill("t-stubborn", Some(Duration::from_millis(400)));
    let updates = master.updates_until_terminal("t-stubborn").await;
    let last = updates.last().unwrap();
    assert_eq!(state_of(last), TaskState::TaskKilled);
    assert_eq!(last.message(), "Command terminated with signal Killed");
    assert!(started.elapsed() >= Duration::from_millis(400));
    let stdout = std::fs::read_to_string(sandbox.join("stdout")).unwrap();
    assert!(stdout.contains("got-term"), "{stdout}");
    agent.shutdown().await;
}

#[tokio::test]
async fn shutdown_framework_kills_its_tasks() {
    let (agent, mut master) = start(config(None)).await;
    master.run_task(framework(false), None, task("t-a", Some(shell("sleep 30"))));
    master.run_task(framework(false), None, task("t-b", Some(shell("sleep 30"))));
    let mut running = 0;
    while running < 2 {
        let status = master.next_update().await;
        master.ack(&status);
        if state_of(&status) == TaskState::TaskRunning {
            running += 1;
        }
    }
    master.send(ToAgent::ShutdownFramework {
        framework_id: framework_id(),
    });
    let mut killed = Vec::new();
    while killed.len() < 2 {
        let status = master.next_update().await;
        master.ack(&status);
        if state_of(&status) == TaskState::TaskKilled {
            killed.push(status.task_id.value.clone());
        }
    }
    killed.sort();
    assert_eq!(killed, vec!["t-a", "t-b"]);
    agent.shutdown().await;
}

fn tar_gz(files: &[(&str, &[u8], u32)]) -> Vec<u8> {
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut builder = tar::Builder::new(encoder);
    for (name, data, mode) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(*mode);
        header.set_cksum();
        builder.append_data(&mut header, name, *data).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

fn zip_archive(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, data) in files {
        writer
            .start_file(*name, zip::write::SimpleFileOptions::default())
            .unwrap();
        writer.write_all(data).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

#[tokio::test]
async fn fetcher_downloads_extracts_renames_and_caches() {
    let local = tempfile::tempdir().unwrap();
    let local_file = local.path().join("local.txt");
    std::fs::write(&local_file, "from disk").unwrap();
    let mut files = HashMap::new();
    files.insert(
        "/tool.sh".to_string(),
        b"#!/bin/sh\necho tool-ran\n".to_vec(),
    );
    files.insert(
        "/bundle.tar.gz".to_string(),
        tar_gz(&[("bundle/inside.txt", b"tarred", 0o644)]),
    );
    files.insert(
        "/pack.zip".to_string(),
        zip_archive(&[("zipped.txt", b"zipped")]),
    );
    files.insert("/data.bin".to_string(), b"renamed".to_vec());
    files.insert("/cached.txt".to_string(), b"cached".to_vec());
    files.insert(
        "/moved.txt".to_string(),
        b"REDIRECT /real/moved.txt".to_vec(),
    );
    files.insert("/real/moved.txt".to_string(), b"moved".to_vec());
    let server = FileServer::start(files).await;
    let (agent, mut master) = start(config(None)).await;
    let command = CommandInfo {
        value: Some(
            "./tool.sh && cat bundle/inside.txt zipped.txt renamed.dat cached.txt local.txt copy/local.txt moved.txt".into(),
        ),
        uris: vec![
            Uri {
                executable: Some(true),
                ..uri(&server.url("/tool.sh"))
            },
            uri(&server.url("/bundle.tar.gz")),
            uri(&server.url("/pack.zip")),
            Uri {
                output_file: Some("renamed.dat".into()),
                ..uri(&server.url("/data.bin"))
            },
            Uri {
                cache: Some(true),
                ..uri(&server.url("/cached.txt"))
            },
            uri(&server.url("/moved.txt")),
            uri(local_file.to_str().unwrap()),
            Uri {
                output_file: Some("copy/local.txt".into()),
                ..uri(&format!("file://{}", local_file.display()))
            },
        ],
        ..Default::default()
    };
    master.run_task(
        framework(false),
        None,
        task("t-fetch", Some(command.clone())),
    );
    let updates = master.updates_until_terminal("t-fetch").await;
    assert_eq!(
        state_of(updates.last().unwrap()),
        TaskState::TaskFinished,
        "{updates:?}"
    );
    let sandbox = agent
        .executor_sandbox(
            &framework_id(),
            &ExecutorId {
                value: "t-fetch".into(),
            },
        )
        .unwrap();
    let stdout = std::fs::read_to_string(sandbox.join("stdout")).unwrap();
    assert_eq!(
        stdout,
        "tool-ran\ntarredzippedrenamedcachedfrom diskfrom diskmoved",
        "stderr: {}",
        std::fs::read_to_string(sandbox.join("stderr")).unwrap()
    );
    assert!(sandbox.join("bundle.tar.gz").exists(), "archives are kept");

    // The same URIs again: the cached one is not downloaded a second time.
    master.run_task(framework(false), None, task("t-fetch-2", Some(command)));
    let updates = master.updates_until_terminal("t-fetch-2").await;
    assert_eq!(state_of(updates.last().unwrap()), TaskState::TaskFinished);
    assert_eq!(server.hits("/cached.txt"), 1);
    assert_eq!(server.hits("/tool.sh"), 2);

    // A URI that cannot be fetched fails the task before launch.
    let broken = CommandInfo {
        value: Some("true".into()),
        uris: vec![uri(&server.url("/missing"))],
        ..Default::default()
    };
    master.run_task(framework(false), None, task("t-fetch-404", Some(broken)));
    let updates = master.updates_until_terminal("t-fetch-404").await;
    let last = updates.last().unwrap();
    assert_eq!(states(&updates), vec![TaskState::TaskFailed]);
    assert_eq!(last.reason(), task_status::Reason::ContainerLaunchFailed);
    assert_eq!(last.source(), task_status::Source::Agent);
    assert!(last.message().contains("404"), "{}", last.message());
    agent.shutdown().await;
}

#[tokio::test]
async fn fetcher_downloads_over_https_from_a_trusted_ca_only() {
    let server = scripted::ScriptedServer::start_tls(
        tls_fixtures::SERVER_CERT_PEM,
        tls_fixtures::SERVER_KEY_PEM,
        |_| async { scripted::Reply::body(200, "text/plain", "fetched over https\n") },
    )
    .await;
    let url = format!("{}/hello.txt", server.https_url());
    let command = CommandInfo {
        value: Some("cat hello.txt".into()),
        uris: vec![uri(&url)],
        ..Default::default()
    };

    // With the test CA trusted, the file is fetched and the task reads it.
    let mut trusting = config(None);
    trusting.fetcher_ca_pem = vec![tls_fixtures::CA_PEM.as_bytes().to_vec()];
    let (agent, mut master) = start(trusting).await;
    master.run_task(
        framework(false),
        None,
        task("t-https", Some(command.clone())),
    );
    let updates = master.updates_until_terminal("t-https").await;
    assert_eq!(state_of(updates.last().unwrap()), TaskState::TaskFinished);
    let stdout = std::fs::read_to_string(
        agent
            .executor_sandbox(
                &framework_id(),
                &ExecutorId {
                    value: "t-https".into(),
                },
            )
            .expect("sandbox of the finished task")
            .join("stdout"),
    )
    .unwrap();
    assert_eq!(stdout, "fetched over https\n");
    agent.shutdown().await;

    // Without it (webpki roots only), the certificate is refused and the task fails to launch.
    let (agent, mut master) = start(config(None)).await;
    master.run_task(
        framework(false),
        None,
        task("t-https-untrusted", Some(command)),
    );
    let updates = master.updates_until_terminal("t-https-untrusted").await;
    let last = updates.last().unwrap();
    assert_eq!(states(&updates), vec![TaskState::TaskFailed]);
    assert_eq!(last.reason(), task_status::Reason::ContainerLaunchFailed);
    assert!(last.message().contains("TLS"), "{}", last.message());
    agent.shutdown().await;
}

fn command_check(value: &str, consecutive_failures: u32) -> HealthCheck {
    HealthCheck {
        r#type: Some(health_check::Type::Command as i32),
        command: Some(shell(value)),
        delay_seconds: Some(0.0),
        interval_seconds: Some(0.05),
        timeout_seconds: Some(5.0),
        grace_period_seconds: Some(0.0),
        consecutive_failures: Some(consecutive_failures),
        ..Default::default()
    }
}

#[tokio::test]
async fn command_health_checks_report_health_and_kill_unhealthy_tasks() {
    let (agent, mut master) = start(config(None)).await;
    let mut healthy = task("t-healthy", Some(shell("sleep 30")));
    healthy.health_check = Some(Box::new(command_check("true", 3)));
    master.run_task(framework(false), None, healthy);
    let report = loop {
        let status = master.next_update().await;
        master.ack(&status);
        if status.healthy.is_some() {
            break status;
        }
    };
    assert_eq!(state_of(&report), TaskState::TaskRunning);
    assert_eq!(report.healthy, Some(true));
    assert_eq!(
        report.reason(),
        task_status::Reason::TaskHealthCheckStatusUpdated
    );
    master.kill("t-healthy", None);
    let updates = master.updates_until_terminal("t-healthy").await;
    assert_eq!(state_of(updates.last().unwrap()), TaskState::TaskKilled);

    let mut sick = task("t-sick", Some(shell("sleep 30")));
    sick.health_check = Some(Box::new(command_check("false", 2)));
    master.run_task(framework(false), None, sick);
    let updates = master.updates_until_terminal("t-sick").await;
    let unhealthy = updates
        .iter()
        .find(|u| state_of(u) == TaskState::TaskRunning && u.healthy == Some(false))
        .expect("an unhealthy report");
    assert_eq!(unhealthy.task_id.value, "t-sick");
    let last = updates.last().unwrap();
    assert_eq!(state_of(last), TaskState::TaskKilled);
    assert_eq!(last.healthy, Some(false));
    agent.shutdown().await;
}

#[tokio::test]
async fn http_health_checks_probe_the_port() {
    let mut files = HashMap::new();
    files.insert("/health".to_string(), b"ok".to_vec());
    let server = FileServer::start(files).await;
    let (agent, mut master) = start(config(None)).await;
    let mut probed = task("t-http", Some(shell("sleep 30")));
    probed.health_check = Some(Box::new(HealthCheck {
        r#type: Some(health_check::Type::Http as i32),
        http: Some(health_check::HttpCheckInfo {
            port: u32::from(server.addr.port()),
            path: Some("/health".into()),
            ..Default::default()
        }),
        delay_seconds: Some(0.0),
        interval_seconds: Some(0.05),
        grace_period_seconds: Some(0.0),
        ..Default::default()
    }));
    master.run_task(framework(false), None, probed);
    let report = loop {
        let status = master.next_update().await;
        master.ack(&status);
        if status.healthy.is_some() {
            break status;
        }
    };
    assert_eq!(report.healthy, Some(true));
    assert!(server.hits("/health") >= 1);
    master.kill("t-http", None);
    master.updates_until_terminal("t-http").await;
    agent.shutdown().await;
}

#[tokio::test]
async fn task_groups_run_on_the_default_executor_and_fail_together() {
    let (agent, mut master) = start(config(None)).await;
    let executor = ExecutorInfo {
        r#type: Some(executor_info::Type::Default as i32),
        executor_id: ExecutorId {
            value: "default-ex".into(),
        },
        framework_id: Some(framework_id()),
        ..Default::default()
    };
    master.send(ToAgent::RunTaskGroup {
        framework_info: framework(false),
        executor: executor.clone(),
        task_group: TaskGroupInfo {
            tasks: vec![
                task("g-long", Some(shell("sleep 30"))),
                task("g-fail", Some(shell("sleep 0.3; echo in-group; exit 2"))),
            ],
        },
    });
    let mut terminal = HashMap::new();
    while terminal.len() < 2 {
        let status = master.next_update().await;
        master.ack(&status);
        assert_eq!(
            status.executor_id.as_ref().map(|e| e.value.as_str()),
            Some("default-ex")
        );
        if is_terminal(state_of(&status)) {
            terminal.insert(status.task_id.value.clone(), state_of(&status));
        }
    }
    assert_eq!(terminal["g-fail"], TaskState::TaskFailed);
    assert_eq!(terminal["g-long"], TaskState::TaskKilled);
    let exited = master
        .next_other(|m| match m {
            FromAgent::ExecutorExited { executor_id, .. } => Some(executor_id.value.clone()),
            _ => None,
        })
        .await;
    assert_eq!(exited, "default-ex");
    let sandbox = agent
        .executor_sandbox(&framework_id(), &executor.executor_id)
        .unwrap();
    let stdout =
        std::fs::read_to_string(sandbox.join("tasks").join("g-fail").join("stdout")).unwrap();
    assert_eq!(stdout.trim(), "in-group");
    agent.shutdown().await;
}

/// A thousand `true` tasks at once all end TASK_FINISHED (about a second). It prints the rate
/// as well (`--nocapture`); the throughput figures themselves come from
/// `cargo run --release --example local_throughput`, not from a test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_true_tasks_all_finish() {
    let (agent, mut master) = start(config(None)).await;
    let count = 1000;
    let started = Instant::now();
    for i in 0..count {
        master.run_task(
            framework(false),
            None,
            task(&format!("p-{i}"), Some(shell("true"))),
        );
    }
    let mut finished = 0;
    while finished < count {
        let status = master.next_update().await;
        master.ack(&status);
        if is_terminal(state_of(&status)) {
            assert_eq!(state_of(&status), TaskState::TaskFinished);
            finished += 1;
        }
    }
    let elapsed = started.elapsed();
    println!(
        "{count} tasks in {elapsed:?}: {:.0} tasks/s",
        count as f64 / elapsed.as_secs_f64()
    );
    let stopping = Instant::now();
    agent.shutdown().await;
    println!("shutdown took {:?}", stopping.elapsed());
}

#[tokio::test]
async fn frameworks_with_task_killing_state_see_task_killing() {
    use mesos_sdk::v1::framework_info::{Capability, capability};
    let (agent, mut master) = start(config(None)).await;
    let mut info = framework(false);
    info.capabilities = vec![Capability {
        r#type: Some(capability::Type::TaskKillingState as i32),
    }];
    master.run_task(info, None, task("t-killing", Some(shell("sleep 30"))));
    loop {
        let status = master.next_update().await;
        master.ack(&status);
        if state_of(&status) == TaskState::TaskRunning {
            break;
        }
    }
    master.kill("t-killing", None);
    let updates = master.updates_until_terminal("t-killing").await;
    assert_eq!(
        states(&updates),
        vec![TaskState::TaskKilling, TaskState::TaskKilled]
    );
    agent.shutdown().await;
}

/// Directories under `dir` whose path ends with `suffix`.
fn find_dirs(dir: &std::path::Path, suffix: &str, found: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path.ends_with(suffix) {
                found.push(path.clone());
            }
            find_dirs(&path, suffix, found);
        }
    }
}

#[tokio::test]
async fn a_duplicate_task_id_is_refused_without_touching_the_running_tasks_checkpoint() {
    let work_dir = tempfile::tempdir().unwrap();
    let (agent, mut master) = start(config(Some(work_dir.path().to_path_buf()))).await;
    master.run_task(framework(true), None, task("dup", Some(shell("sleep 30"))));
    loop {
        let status = master.next_update().await;
        master.ack(&status);
        if state_of(&status) == TaskState::TaskRunning {
            break;
        }
    }

    master.run_task(framework(true), None, task("dup", Some(shell("true"))));
    let refused = loop {
        let status = master.next_update().await;
        master.ack(&status);
        if state_of(&status) == TaskState::TaskError {
            break status;
        }
    };
    assert_eq!(refused.message(), "Task has duplicate ID");

    // The checkpoint still knows only the run that is executing the first task.
    let mut runs = Vec::new();
    find_dirs(
        &work_dir.path().join("meta"),
        "executors/dup/runs",
        &mut runs,
    );
    assert_eq!(runs.len(), 1, "one checkpointed executor: {runs:?}");
    let run_ids: Vec<_> = std::fs::read_dir(&runs[0])
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name())
        .collect();
    assert_eq!(run_ids.len(), 1, "one checkpointed run: {run_ids:?}");

    master.kill("dup", Some(Duration::from_millis(100)));
    let updates = master.updates_until_terminal("dup").await;
    assert_eq!(state_of(updates.last().unwrap()), TaskState::TaskKilled);
    agent.shutdown().await;
}
