//! DOCKER containers on the embedded agent, against the real Docker Engine of the machine: a
//! command task's output, environment, sandbox and volumes; its resource limits; kills with a
//! grace period; a bridge network with a port mapping reached from the host; a custom executor
//! in a container; health checks inside the container; teardown and agent drop removing the
//! containers; and the launch failures without an engine, socket or image. The test plays the
//! master over the in-process link (`local_docker_cluster` goes through the SDK and a cluster).
//!
//! No registry is reachable: the image is built locally `FROM scratch` with the machine's
//! static busybox, under a fixed tag, once. Where no engine answers, the tests that need one
//! print why and pass without running.

mod local_agent_support;
mod local_docker_support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use local_agent_support::*;
use local_docker_support::*;
use mesos_local::agent::{AgentConfig, DockerConfig};
use mesos_sdk::v1::command_info::Uri;
use mesos_sdk::v1::container_info::docker_info::{Network, PortMapping};
use mesos_sdk::v1::environment::Variable;
use mesos_sdk::v1::{
    CommandInfo, Environment, TaskInfo, TaskState, TaskStatus, task_status, volume,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_task_runs_in_a_container_with_env_sandbox_and_volumes() {
    if !ready() {
        return;
    }
    let (agent, mut master) = start(config(None)).await;
    let ro = tempfile::tempdir().unwrap();
    std::fs::write(ro.path().join("input"), "from-host\n").unwrap();
    let rw = tempfile::tempdir().unwrap();
    let script = "echo hello; echo \"FOO=$FOO\"; echo \"SANDBOX=$MESOS_SANDBOX\"; \
                  echo \"TASK=$MESOS_TASK_ID\"; echo data > $MESOS_SANDBOX/from-container; \
                  cat /ro/input; if touch /ro/x 2>/dev/null; then echo RO=writable; \
                  else echo RO=readonly; fi; echo written > /rw/out; echo oops >&2";
    let command = CommandInfo {
        environment: Some(Environment {
            variables: vec![Variable {
                name: "FOO".into(),
                value: Some("bar baz".into()),
                ..Default::default()
            }],
        }),
        ..shell(script)
    };
    let mut info = container(Network::Host);
    info.volumes = vec![
        volume(ro.path(), "/ro", volume::Mode::Ro),
        volume(rw.path(), "/rw", volume::Mode::Rw),
    ];
    master.run_task(framework(false), None, docker_task("d-echo", command, info));
    let updates = master.updates_until_terminal("d-echo").await;
    assert_eq!(
        states(&updates),
        vec![
            TaskState::TaskStarting,
            TaskState::TaskRunning,
            TaskState::TaskFinished
        ],
        "{updates:?}"
    );
    let last = updates.last().unwrap();
    assert_eq!(last.message(), "Container exited with status 0");
    let status = last.container_status.as_ref().expect("container_status");
    assert!(status.container_id.is_some());
    assert_eq!(
        status.network_infos[0].ip_addresses[0]
            .ip_address
            .as_deref(),
        Some("127.0.0.1"),
        "the agent's address on the host network"
    );
    let sandbox = agent
        .executor_sandbox(
            &framework_id(),
            &mesos_sdk::v1::ExecutorId {
                value: "d-echo".into(),
            },
        )
        .unwrap();
    let stdout = std::fs::read_to_string(sandbox.join("stdout")).unwrap();
    for line in [
        "hello",
        "FOO=bar baz",
        "SANDBOX=/mnt/mesos/sandbox",
        "TASK=d-echo",
        "from-host",
        "RO=readonly",
    ] {
        assert!(stdout.lines().any(|l| l == line), "{line:?} in {stdout:?}");
    }
    let stderr = std::fs::read_to_string(sandbox.join("stderr")).unwrap();
    assert!(stderr.contains("oops"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(sandbox.join("from-container")).unwrap(),
        "data\n"
    );
    assert_eq!(
        std::fs::read_to_string(rw.path().join("out")).unwrap(),
        "written\n"
    );
    assert!(!ro.path().join("x").exists());
    // Removed after its end (`--rm`).
    assert_eq!(leftovers(&agent.id().value), "");

    // shell=false: the image's entrypoint stays, value and arguments are the command.
    let argv = CommandInfo {
        shell: Some(false),
        value: Some("/bin/sh".into()),
        arguments: vec!["-c".into(), "exit 3".into()],
        ..Default::default()
    };
    master.run_task(
        framework(false),
        None,
        docker_task("d-exit", argv, container(Network::Host)),
    );
    let updates = master.updates_until_terminal("d-exit").await;
    let last = updates.last().unwrap();
    assert_eq!(state_of(last), TaskState::TaskFailed, "{updates:?}");
    assert_eq!(last.message(), "Container exited with status 3");
    let id = agent.id().value.clone();
    agent.shutdown().await;
    assert_eq!(leftovers(&id), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_are_applied_and_kills_use_the_grace_period() {
    if !ready() {
        return;
    }
    let (agent, mut master) = start(config(None)).await;
    let graceful = "trap 'echo got-term; exit 0' TERM; touch $MESOS_SANDBOX/ready; \
                    while true; do sleep 0.1; done";
    master.run_task(
        framework(false),
        None,
        docker_task("d-trap", shell(graceful), container(Network::Host)),
    );
    let running = until_running(&mut master, "d-trap").await;
    let name = name_of(&running);
    let limits = docker(&[
        "inspect",
        "--format",
        "{{.HostConfig.Memory}} {{.HostConfig.CpuShares}} {{.HostConfig.NanoCpus}}",
        &name,
    ]);
    assert_eq!(
        String::from_utf8_lossy(&limits.stdout).trim(),
        "67108864 512 500000000",
        "{}",
        String::from_utf8_lossy(&limits.stderr)
    );
    let pid = running.container_status.as_ref().unwrap().executor_pid;
    assert!(pid.is_some_and(|p| p > 1), "{running:?}");
    let sandbox = agent
        .executor_sandbox(
            &framework_id(),
            &mesos_sdk::v1::ExecutorId {
                value: "d-trap".into(),
            },
        )
        .unwrap();
    eventually("the trap to be set", || sandbox.join("ready").exists()).await;
    let started = Instant::now();
    master.kill("d-trap", Some(Duration::from_secs(10)));
    let updates = master.updates_until_terminal("d-trap").await;
    let last = updates.last().unwrap();
    assert_eq!(state_of(last), TaskState::TaskKilled, "{updates:?}");
    assert_eq!(last.message(), "Container exited with status 0");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "a task that exits on SIGTERM does not wait for the grace period"
    );
    let stdout = std::fs::read_to_string(sandbox.join("stdout")).unwrap();
    assert!(stdout.contains("got-term"), "{stdout}");

    // PID 1 without a handler ignores SIGTERM: SIGKILL after the grace period.
    master.run_task(
        framework(false),
        None,
        docker_task(
            "d-stubborn",
            shell("exec sleep 1000"),
            container(Network::Host),
        ),
    );
    until_running(&mut master, "d-stubborn").await;
    let started = Instant::now();
    master.kill("d-stubborn", Some(Duration::from_millis(1500)));
    let updates = master.updates_until_terminal("d-stubborn").await;
    let last = updates.last().unwrap();
    assert_eq!(state_of(last), TaskState::TaskKilled, "{updates:?}");
    assert_eq!(last.message(), "Container exited with status 137");
    assert!(started.elapsed() >= Duration::from_millis(1500));
    let id = agent.id().value.clone();
    agent.shutdown().await;
    assert_eq!(leftovers(&id), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bridge_port_mapping_is_reachable_from_the_host() {
    if !ready() {
        return;
    }
    let (agent, mut master) = start(config(None)).await;
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut info = container(Network::Bridge);
    info.docker.as_mut().unwrap().port_mappings = vec![PortMapping {
        host_port: u32::from(port),
        container_port: 8080,
        protocol: Some("tcp".into()),
    }];
    let serve = "echo hello-bridge > $MESOS_SANDBOX/index.html; \
                 exec httpd -f -p 8080 -h /mnt/mesos/sandbox";
    let mut web = docker_task("d-web", shell(serve), info);
    web.resources.extend(
        mesos_sdk::resourcemgr::parse_resources(&format!("ports:[{port}-{port}]")).unwrap(),
    );
    master.run_task(framework(false), None, web);
    let running = until_running(&mut master, "d-web").await;
    let ip = running.container_status.as_ref().unwrap().network_infos[0].ip_addresses[0]
        .ip_address
        .clone()
        .unwrap();
    assert_ne!(ip, "127.0.0.1", "a bridge container has its own address");
    let deadline = Instant::now() + WAIT;
    let body = loop {
        let answer = async move {
            let (status, _, body) = raw_http(
                std::net::SocketAddr::from(([127, 0, 0, 1], port)),
                "GET",
                "/index.html",
                &[],
                b"",
            )
            .await;
            (status == 200).then_some(body)
        };
        let attempt = tokio::time::timeout(Duration::from_secs(2), tokio::spawn(answer)).await;
        if let Ok(Ok(Some(body))) = attempt {
            break body;
        }
        assert!(Instant::now() < deadline, "the mapped port never answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(String::from_utf8_lossy(&body), "hello-bridge\n");
    master.kill("d-web", Some(Duration::from_millis(500)));
    let updates = master.updates_until_terminal("d-web").await;
    assert_eq!(
        state_of(updates.last().unwrap()),
        TaskState::TaskKilled,
        "{updates:?}"
    );
    let id = agent.id().value.clone();
    agent.shutdown().await;
    assert_eq!(leftovers(&id), "");
}

/// Runs one DOCKER task on an agent with `docker` and returns its terminal update.
async fn launch_failure(docker: DockerConfig, image: &str) -> TaskStatus {
    let (agent, mut master) = start(AgentConfig {
        docker,
        ..config(None)
    })
    .await;
    let mut info = container(Network::Host);
    info.docker.as_mut().unwrap().image = image.into();
    master.run_task(
        framework(false),
        None,
        docker_task("d-fail", shell("true"), info),
    );
    let updates = master.updates_until_terminal("d-fail").await;
    agent.shutdown().await;
    assert_eq!(updates.len(), 1, "{updates:?}");
    updates.into_iter().next().unwrap()
}

fn assert_launch_failed(status: &TaskStatus, text: &str) {
    assert_eq!(state_of(status), TaskState::TaskFailed, "{status:?}");
    assert_eq!(
        status.reason(),
        task_status::Reason::ContainerLaunchFailed,
        "{status:?}"
    );
    assert!(
        status.message().starts_with("Failed to launch container: "),
        "{status:?}"
    );
    assert!(status.message().contains(text), "{text:?} in {status:?}");
}

#[tokio::test]
async fn without_an_engine_or_image_docker_tasks_fail_to_launch() {
    // No docker program at all: needs no engine.
    let missing = launch_failure(
        DockerConfig {
            binary: PathBuf::from("/nonexistent/docker"),
            ..DockerConfig::default()
        },
        IMAGE,
    )
    .await;
    assert_launch_failed(
        &missing,
        "cannot run the docker command line '/nonexistent/docker'",
    );
    if !engine() {
        return;
    }
    // A socket nobody listens on.
    let socket = launch_failure(
        DockerConfig {
            host: Some("unix:///nonexistent/docker.sock".into()),
            ..DockerConfig::default()
        },
        IMAGE,
    )
    .await;
    assert_launch_failed(&socket, "'docker create' failed");
    eprintln!("{}", socket.message());
    // An image the engine does not have (nothing is pulled).
    let image = launch_failure(DockerConfig::default(), "mesos-local-test-missing:0").await;
    assert_launch_failed(&image, "No such image");
    // A container the engine cannot start (its program does not exist in the image).
    if ready() {
        let (agent, mut master) = start(config(None)).await;
        let missing_program = CommandInfo {
            shell: Some(false),
            value: Some("/nonexistent".into()),
            ..Default::default()
        };
        master.run_task(
            framework(false),
            None,
            docker_task("d-nostart", missing_program, container(Network::Host)),
        );
        let updates = master.updates_until_terminal("d-nostart").await;
        assert_eq!(updates.len(), 1, "{updates:?}");
        assert_launch_failed(&updates[0], "'docker start' failed");
        let id = agent.id().value.clone();
        agent.shutdown().await;
        assert_eq!(leftovers(&id), "");
    }
    eprintln!("{}", image.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_executor_runs_in_a_container() {
    if !ready() {
        return;
    }
    let executor_binary = PathBuf::from(env!("CARGO_BIN_EXE_mesos-example-executor"));
    let (agent, mut master) = start(config(None)).await;
    // The workspace's executor is linked dynamically: the host's libraries, read-only.
    let mut info = container(Network::Host);
    for dir in ["/lib", "/lib64", "/usr/lib"] {
        if Path::new(dir).exists() {
            info.volumes
                .push(volume(Path::new(dir), dir, volume::Mode::Ro));
        }
    }
    let mut executor = custom_executor(
        "d-exec",
        CommandInfo {
            uris: vec![Uri {
                value: executor_binary.display().to_string(),
                executable: Some(true),
                ..Default::default()
            }],
            ..shell("exec $MESOS_SANDBOX/mesos-example-executor")
        },
    );
    executor.container = Some(Box::new(info));
    executor.resources = mesos_sdk::resourcemgr::parse_resources("cpus:0.1;mem:32").unwrap();
    // The task waits for `go` so that its container can be looked at.
    let work = TaskInfo {
        data: Some(bytes::Bytes::from_static(
            b"echo in-container > $MESOS_SANDBOX/proof; \
              while [ ! -f $MESOS_SANDBOX/go ]; do sleep 0.1; done; test -f /.dockerenv",
        )),
        resources: mesos_sdk::resourcemgr::parse_resources("cpus:0.4;mem:48").unwrap(),
        ..task("d-exec-task", None)
    };
    master.run_task(framework(false), Some(executor), work);
    until_running(&mut master, "d-exec-task").await;
    let sandbox = agent
        .executor_sandbox(
            &framework_id(),
            &mesos_sdk::v1::ExecutorId {
                value: "d-exec".into(),
            },
        )
        .unwrap();
    // Limited to the executor's and the task's resources together.
    let limits = docker(&[
        "inspect",
        "--format",
        "{{.HostConfig.Memory}} {{.HostConfig.CpuShares}}",
        &format!("mes-{}", sandbox.file_name().unwrap().to_string_lossy()),
    ]);
    assert_eq!(
        String::from_utf8_lossy(&limits.stdout).trim(),
        "83886080 512",
        "{}",
        String::from_utf8_lossy(&limits.stderr)
    );
    std::fs::write(sandbox.join("go"), b"").unwrap();
    let updates = master.updates_until_terminal("d-exec-task").await;
    let last = updates.last().unwrap();
    assert_eq!(state_of(last), TaskState::TaskFinished, "{updates:?}");
    assert_eq!(
        std::fs::read_to_string(sandbox.join("proof")).unwrap(),
        "in-container\n"
    );
    let id = agent.id().value.clone();
    agent.shutdown().await;
    assert_eq!(leftovers(&id), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teardown_and_a_dropped_agent_leave_no_container() {
    if !ready() {
        return;
    }
    let (agent, mut master) = start(config(None)).await;
    let id = agent.id().value.clone();
    master.run_task(
        framework(false),
        None,
        docker_task(
            "d-teardown",
            shell("exec sleep 1000"),
            container(Network::Host),
        ),
    );
    until_running(&mut master, "d-teardown").await;
    master.send(mesos_local::link::ToAgent::ShutdownFramework {
        framework_id: framework_id(),
    });
    let updates = master.updates_until_terminal("d-teardown").await;
    assert_eq!(
        state_of(updates.last().unwrap()),
        TaskState::TaskKilled,
        "{updates:?}"
    );
    assert_eq!(leftovers(&id), "");

    master.run_task(
        framework(false),
        None,
        docker_task(
            "d-dropped",
            shell("exec sleep 1000"),
            container(Network::Host),
        ),
    );
    until_running(&mut master, "d-dropped").await;
    assert_ne!(leftovers(&id), "");
    drop(agent);
    eventually("the dropped agent's container to go", || {
        leftovers(&id).is_empty()
    })
    .await;
}

fn command_check(value: &str, consecutive_failures: u32) -> mesos_sdk::v1::HealthCheck {
    mesos_sdk::v1::HealthCheck {
        r#type: Some(mesos_sdk::v1::health_check::Type::Command as i32),
        command: Some(shell(value)),
        delay_seconds: Some(0.0),
        interval_seconds: Some(0.2),
        timeout_seconds: Some(10.0),
        grace_period_seconds: Some(0.0),
        consecutive_failures: Some(consecutive_failures),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_health_checks_run_inside_the_container() {
    if !ready() {
        return;
    }
    let (agent, mut master) = start(config(None)).await;
    // `/inside` exists in the container only.
    let mut healthy = docker_task(
        "d-healthy",
        shell("touch /inside; exec sleep 1000"),
        container(Network::Host),
    );
    // Failures before the first success (the container still starting) are within the grace.
    healthy.health_check = Some(Box::new(mesos_sdk::v1::HealthCheck {
        grace_period_seconds: Some(20.0),
        ..command_check("test -f /inside", 3)
    }));
    master.run_task(framework(false), None, healthy);
    let report = loop {
        let status = master.next_update().await;
        master.ack(&status);
        assert!(!state_of(&status).is_terminal(), "{status:?}");
        if status.healthy.is_some() {
            break status;
        }
    };
    assert_eq!(report.healthy, Some(true), "{report:?}");
    master.kill("d-healthy", Some(Duration::ZERO));
    let updates = master.updates_until_terminal("d-healthy").await;
    assert_eq!(state_of(updates.last().unwrap()), TaskState::TaskKilled);

    let mut unhealthy = docker_task(
        "d-unhealthy",
        shell("exec sleep 1000"),
        container(Network::Host),
    );
    unhealthy.health_check = Some(Box::new(command_check("test -f /inside", 2)));
    master.run_task(framework(false), None, unhealthy);
    let updates = master.updates_until_terminal("d-unhealthy").await;
    let last = updates.last().unwrap();
    assert_eq!(state_of(last), TaskState::TaskKilled, "{updates:?}");
    assert_eq!(
        last.reason(),
        task_status::Reason::TaskHealthCheckStatusUpdated
    );
    assert_eq!(last.healthy, Some(false));
    let id = agent.id().value.clone();
    agent.shutdown().await;
    assert_eq!(leftovers(&id), "");
}
