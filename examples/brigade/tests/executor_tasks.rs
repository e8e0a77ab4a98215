//! `brigade-executor` for real: an in-process mesos-local cluster, the executor binary served to
//! the Mesos fetcher by the SDK's artifact server, and a small `mesos_sdk::scheduler` in the
//! test that launches protocol-encoded tasks (one executor per task, executor id = task id) and
//! collects their terminal statuses through `brigade::protocol::outcome`.
//!
//! Covered: an upper-casing command processor returns its output in `TaskStatus.data`; a
//! failing command gives TASK_FAILED with the tail of stderr; a hanging one fails by timeout;
//! an oversized stdout fails with a clear reason; a binary message travels in `TaskInfo.data`;
//! a KILL or the executor's SHUTDOWN gives TASK_KILLED; a task with a broken processor label
//! fails cleanly; a warm worker answers MESSAGE work items in order with MESSAGE results and,
//! killed mid-stream, stops; every executor exits (status 0) once its task is done; a Docker
//! processor (an image built here `FROM scratch` with the static busybox) upper-cases stdin
//! with an env var and a read-only volume, and one that hangs is stopped by its timeout with its
//! container removed; skipped with a printed reason without a Docker engine.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use brigade::processor::Processor;
use brigade::protocol::warm::{WorkItem, WorkResult};
use brigade::protocol::{self, FailureCause, InputMessage, Outcome};
use futures::StreamExt;
use mesos_local::cluster::LocalCluster;
use mesos_sdk::client::Client;
use mesos_sdk::scheduler::{ExitStatus, FrameworkInfoBuilder, Scheduler, SchedulerEvent};
use mesos_sdk::server::Server;
use mesos_sdk::v1::{self, TaskState};

/// A guard against a hung run, far above what a run takes.
const RUN_GUARD: Duration = Duration::from_secs(120);

struct Launch {
    processor: Processor,
    msg: InputMessage,
    /// Send a KILL once the task runs.
    kill: bool,
    /// Shut its executor down once the task runs.
    shutdown: bool,
    /// Break the task's processor label after encoding.
    corrupt: bool,
    /// Warm mode: launch a worker and send it these messages once it runs; it is killed once
    /// it answered them all (or `warm_kill_after` of them).
    warm: Vec<InputMessage>,
    /// Warm mode: kill the worker after this many answers.
    warm_kill_after: Option<usize>,
}

impl Launch {
    fn new(processor: &Processor, msg: InputMessage) -> Self {
        Self {
            processor: processor.clone(),
            msg,
            kill: false,
            shutdown: false,
            corrupt: false,
            warm: Vec::new(),
            warm_kill_after: None,
        }
    }
}

struct Done {
    status: v1::TaskStatus,
    outcome: Outcome,
    /// A warm worker's answers, in arrival order.
    results: Vec<WorkResult>,
}

fn processor(json: &str) -> Processor {
    Processor::from_json(json).unwrap_or_else(|e| panic!("{e}"))
}

fn msg(offset: i64, payload: &[u8]) -> InputMessage {
    InputMessage {
        topic: "in".into(),
        partition: 0,
        offset,
        key: Some(b"key".to_vec()),
        payload: payload.to_vec(),
    }
}

fn resources(cpus: f64, mem: f64) -> Vec<v1::Resource> {
    mesos_sdk::resourcemgr::parse_resources(&format!("cpus:{cpus};mem:{mem}")).unwrap()
}

/// Runs `launches` on a fresh cluster, each as one task with its own executor; returns the
/// terminal status and outcome by task id, in launch order, and checks that every executor
/// exited with status 0.
async fn run_all(launches: Vec<Launch>) -> Vec<Done> {
    let work_dir = tempfile::tempdir().unwrap();
    let cluster = LocalCluster::builder()
        .agents(1)
        .work_dir(work_dir.path())
        .resources("cpus:8;mem:8192;disk:1000")
        .heartbeat_interval(Duration::from_secs(5))
        .allocation_interval(Duration::from_millis(50))
        .start()
        .await
        .unwrap();
    let server = Server::builder().start().await.unwrap();
    let artifacts = server.artifacts();
    artifacts
        .register_file("brigade-executor", env!("CARGO_BIN_EXE_brigade-executor"))
        .await
        .unwrap();
    let uri = artifacts
        .uri("brigade-executor")
        .unwrap()
        .executable(true)
        .build();
    let client = Client::builder()
        .endpoint(cluster.master_url())
        .build()
        .unwrap();
    let framework = FrameworkInfoBuilder::new("nobody", "brigade-executor-test").build();
    let (scheduler, mut events) = Scheduler::builder(client, framework).start();

    let mut ids: Vec<String> = Vec::new();
    let mut to_kill: HashSet<String> = HashSet::new();
    let mut to_shut_down: HashSet<String> = HashSet::new();
    let mut launched = false;
    let mut done: HashMap<String, Done> = HashMap::new();
    let mut exited: HashMap<String, Option<ExitStatus>> = HashMap::new();
    let mut warm: HashMap<String, Vec<InputMessage>> = HashMap::new();
    let mut results: HashMap<String, Vec<WorkResult>> = HashMap::new();
    let mut warm_kill_after: HashMap<String, usize> = HashMap::new();
    let mut framework_id = None;
    let run = async {
        while let Some(event) = events.next().await {
            match event {
                SchedulerEvent::Connected {
                    framework_id: id, ..
                } => framework_id = Some(id),
                SchedulerEvent::Offers(offers) if !launched => {
                    let (Some(fw), Some(offer)) = (framework_id.as_ref(), offers.first()) else {
                        continue;
                    };
                    let mut tasks = Vec::new();
                    for l in &launches {
                        let mut task = if l.warm.is_empty() {
                            protocol::message_task(fw, uri.clone(), &l.processor, &l.msg).unwrap()
                        } else {
                            let id = format!("brigade-{}-worker-1", l.processor.name());
                            let mut t = v1::TaskInfo {
                                name: id.clone(),
                                task_id: v1::TaskId { value: id.clone() },
                                executor: Some(Box::new(protocol::executor_info(
                                    fw,
                                    &id,
                                    uri.clone(),
                                    &l.processor,
                                ))),
                                ..Default::default()
                            };
                            protocol::warm::encode_worker(&mut t, &l.processor);
                            let n = l.warm_kill_after.unwrap_or(l.warm.len());
                            warm.insert(id.clone(), l.warm.clone());
                            warm_kill_after.insert(id, n);
                            t
                        };
                        let id = task.task_id.value.clone();
                        task.agent_id = offer.agent_id.clone();
                        task.resources = resources(l.processor.cpus(), l.processor.mem());
                        if let Some(e) = task.executor.as_mut() {
                            e.resources =
                                resources(protocol::EXECUTOR_CPUS, protocol::EXECUTOR_MEM);
                        }
                        if l.corrupt {
                            for label in &mut task.labels.as_mut().unwrap().labels {
                                if label.key == protocol::LABEL_PROCESSOR {
                                    label.value = Some(r#"{"name":"p","cpus":"many"}"#.into());
                                }
                            }
                        }
                        if l.kill {
                            to_kill.insert(id.clone());
                        }
                        if l.shutdown {
                            to_shut_down.insert(id.clone());
                        }
                        ids.push(id);
                        tasks.push(task);
                    }
                    launched = true;
                    scheduler
                        .launch(vec![offer.id.clone()], tasks)
                        .await
                        .unwrap();
                }
                SchedulerEvent::Offers(offers) => {
                    let ids = offers.into_iter().map(|o| o.id).collect();
                    let _ = scheduler.decline(ids, Some(Duration::from_secs(60))).await;
                }
                SchedulerEvent::Update { status, .. } => {
                    let id = status.task_id.value.clone();
                    if status.state() == TaskState::TaskRunning && to_kill.remove(&id) {
                        scheduler
                            .kill(status.task_id.clone(), status.agent_id.clone(), None)
                            .await
                            .unwrap();
                    }
                    if status.state() == TaskState::TaskRunning && to_shut_down.remove(&id) {
                        if let Some(agent) = status.agent_id.clone() {
                            scheduler
                                .shutdown_executor(v1::ExecutorId { value: id.clone() }, agent)
                                .await
                                .unwrap();
                        }
                    }
                    if status.state() == TaskState::TaskRunning {
                        if let (Some(items), Some(agent)) = (warm.get(&id), &status.agent_id) {
                            for item in items {
                                let data = WorkItem(item.clone()).encode();
                                scheduler
                                    .message(
                                        agent.clone(),
                                        v1::ExecutorId { value: id.clone() },
                                        data.into(),
                                    )
                                    .await
                                    .unwrap();
                            }
                        }
                    }
                    if let Some(outcome) = protocol::outcome(&status) {
                        done.insert(
                            id,
                            Done {
                                status: *status,
                                outcome,
                                results: Vec::new(),
                            },
                        );
                    }
                }
                SchedulerEvent::Message {
                    agent_id,
                    executor_id,
                    data,
                } => {
                    let result = WorkResult::decode(&data).unwrap();
                    let id = executor_id.value.clone();
                    let got = results.entry(id.clone()).or_default();
                    got.push(result);
                    if warm_kill_after.get(&id) == Some(&got.len()) {
                        scheduler
                            .kill(v1::TaskId { value: id }, Some(agent_id), None)
                            .await
                            .unwrap();
                    }
                }
                SchedulerEvent::Failure {
                    executor_id: Some(e),
                    status,
                    ..
                } => {
                    exited.insert(e.value, status);
                }
                _ => {}
            }
            if launched && done.len() == ids.len() && exited.len() == ids.len() {
                break;
            }
        }
    };
    let finished = tokio::time::timeout(RUN_GUARD, run).await;
    // The stderr of every executor that did not exit 0, for the failure message below.
    let mut logs = String::new();
    for id in &ids {
        if exited.get(id) != Some(&Some(ExitStatus::Exited(0))) {
            for file in stderr_files(work_dir.path(), id) {
                let text = std::fs::read_to_string(&file).unwrap_or_default();
                logs.push_str(&format!("--- {}\n{text}\n", file.display()));
            }
        }
    }
    let _ = scheduler.teardown().await;
    scheduler.stop();
    cluster.shutdown().await;
    server.shutdown().await;
    assert!(
        finished.is_ok(),
        "tasks did not finish: done {:?}, executors exited {exited:?}",
        done.keys().collect::<Vec<_>>()
    );
    for id in &ids {
        assert_eq!(
            exited.get(id),
            Some(&Some(ExitStatus::Exited(0))),
            "executor {id} should exit 0 after its task: {exited:?}\n{logs}"
        );
        if let Ok(r) = protocol::message_ref(id) {
            assert_eq!(r.partition, 0);
        }
    }
    ids.iter()
        .map(|id| {
            let mut d = done.remove(id).expect("every task has an outcome");
            d.results = results.remove(id).unwrap_or_default();
            d
        })
        .collect()
}

/// The `stderr` files of the sandboxes under `dir` whose path names `executor_id`.
fn stderr_files(dir: &Path, executor_id: &str) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() && !path.is_symlink() {
                stack.push(path);
            } else if path.file_name().is_some_and(|n| n == "stderr")
                && path.to_string_lossy().contains(executor_id)
            {
                out.push(path);
            }
        }
    }
    out
}

fn failed(d: &Done) -> (&str, Option<FailureCause>) {
    match &d.outcome {
        Outcome::Failed { reason } => (reason.as_str(), protocol::failure_cause(&d.status)),
        Outcome::Output(o) => panic!(
            "expected a failure, got output {:?}",
            String::from_utf8_lossy(o)
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_processors_report_output_failures_timeouts_and_kills() {
    let base = r#""input":"in","error":"err","cpus":0.1,"mem":32"#;
    let upper = processor(&format!(
        r#"{{"name":"upper",{base},"command":"tr a-z A-Z; printf ' %s' \"$BRIGADE_OFFSET\""}}"#
    ));
    let failing = processor(&format!(
        r#"{{"name":"failing",{base},"command":"echo first line >&2; echo 'bad input' >&2; exit 4"}}"#
    ));
    let hanging = processor(&format!(
        r#"{{"name":"hanging",{base},"command":"sleep 60","timeout":"1secs"}}"#
    ));
    let chatty = processor(&format!(
        r#"{{"name":"chatty",{base},"command":"yes brigade","max_output":4096}}"#
    ));
    let binary = processor(&format!(
        r#"{{"name":"binary",{base},"command":"od -An -tx1 | tr -d ' \n'"}}"#
    ));
    let killed = processor(&format!(
        r#"{{"name":"killed",{base},"command":"sleep 60","timeout":"1mins"}}"#
    ));
    let big_text = "x".repeat(protocol::LABEL_MESSAGE_LIMIT + 10);
    let mut kill_me = Launch::new(&killed, msg(13, b"x"));
    kill_me.kill = true;
    let mut shut_down = Launch::new(&killed, msg(14, b"x"));
    shut_down.shutdown = true;
    let launches = vec![
        Launch::new(&upper, msg(7, b"hello brigade")),
        Launch::new(&failing, msg(8, b"x")),
        Launch::new(&hanging, msg(9, b"x")),
        Launch::new(&chatty, msg(10, b"x")),
        Launch::new(&binary, msg(11, &[0x00, 0xff, 0x10, 0x80])),
        Launch::new(&upper, msg(12, big_text.as_bytes())),
        kill_me,
        shut_down,
    ];
    let done = run_all(launches).await;

    assert_eq!(done[0].status.state(), TaskState::TaskFinished);
    assert_eq!(
        done[0].outcome,
        Outcome::Output(b"HELLO BRIGADE 7".to_vec())
    );

    assert_eq!(done[1].status.state(), TaskState::TaskFailed);
    let (reason, cause) = failed(&done[1]);
    assert_eq!(cause, Some(FailureCause::Exit));
    assert_eq!(
        reason,
        "exited with status 4; stderr: first line\nbad input"
    );

    let (reason, cause) = failed(&done[2]);
    assert_eq!(cause, Some(FailureCause::Timeout), "{reason}");
    assert!(reason.starts_with("timed out after 1secs"), "{reason}");

    let (reason, cause) = failed(&done[3]);
    assert_eq!(cause, Some(FailureCause::OutputTooLarge), "{reason}");
    assert!(
        reason.contains("exceeded the limit of 4096 bytes"),
        "{reason}"
    );

    assert_eq!(done[4].outcome, Outcome::Output(b"00ff1080".to_vec()));

    let mut expected = big_text.to_uppercase().into_bytes();
    expected.extend_from_slice(b" 12");
    assert_eq!(done[5].outcome, Outcome::Output(expected));

    assert_eq!(done[6].status.state(), TaskState::TaskKilled);
    let (reason, cause) = failed(&done[6]);
    assert_eq!(cause, Some(FailureCause::Killed), "{reason}");

    // SHUTDOWN of the executor kills the processor and reports TASK_KILLED.
    assert_eq!(done[7].status.state(), TaskState::TaskKilled);
    let (reason, cause) = failed(&done[7]);
    assert_eq!(cause, Some(FailureCause::Killed), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_with_a_broken_processor_label_fails_cleanly() {
    // Where a scheduler finds the executor to serve: next to this test, as cargo built it.
    if std::env::var_os("BRIGADE_EXECUTOR").is_none() {
        let found = brigade::exec::executor_binary().expect("brigade-executor is found");
        assert_eq!(
            found.canonicalize().unwrap(),
            Path::new(env!("CARGO_BIN_EXE_brigade-executor"))
                .canonicalize()
                .unwrap()
        );
    }
    let p = processor(r#"{"name":"p","input":"in","error":"err","command":"cat"}"#);
    let mut broken = Launch::new(&p, msg(1, b"x"));
    broken.corrupt = true;
    let done = run_all(vec![broken, Launch::new(&p, msg(2, b"fine"))]).await;
    assert_eq!(done[0].status.state(), TaskState::TaskFailed);
    let (reason, cause) = failed(&done[0]);
    assert_eq!(cause, Some(FailureCause::BadTask), "{reason}");
    assert!(reason.contains("cpus: must be a number"), "{reason}");
    assert!(reason.contains("input: missing"), "{reason}");
    assert_eq!(done[1].outcome, Outcome::Output(b"fine".to_vec()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_worker_answers_every_message_in_order() {
    let p = processor(
        r#"{"name":"warm","input":"in","error":"err","command":"read x; if [ \"$x\" = fail ]; then echo nope >&2; exit 1; fi; printf %s \"$x\" | tr a-z A-Z","mode":"warm"}"#,
    );
    let items: Vec<InputMessage> = ["one", "two", "fail", "three"]
        .iter()
        .enumerate()
        .map(|(i, s)| msg(100 + i as i64, s.as_bytes()))
        .collect();
    let mut worker = Launch::new(&p, msg(0, b""));
    worker.warm = items.clone();
    let done = run_all(vec![worker]).await;
    assert_eq!(done[0].status.state(), TaskState::TaskKilled);
    let results = &done[0].results;
    let offsets: Vec<i64> = results.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, vec![100, 101, 102, 103]);
    assert_eq!(results[0].outcome, Outcome::Output(b"ONE".to_vec()));
    assert_eq!(results[1].outcome, Outcome::Output(b"TWO".to_vec()));
    assert_eq!(
        results[2].outcome,
        Outcome::Failed {
            reason: "exited with status 1; stderr: nope".into()
        }
    );
    assert_eq!(results[2].cause, Some(FailureCause::Exit));
    assert_eq!(results[3].outcome, Outcome::Output(b"THREE".to_vec()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_worker_killed_mid_stream_reports_killed_and_exits() {
    let p = processor(
        r#"{"name":"warmkill","input":"in","error":"err","command":"read x; if [ \"$x\" = slow ]; then sleep 60; fi; printf %s \"$x\"","mode":"warm","timeout":"2mins"}"#,
    );
    let mut worker = Launch::new(&p, msg(0, b""));
    worker.warm = ["one", "slow", "three"]
        .iter()
        .enumerate()
        .map(|(i, s)| msg(200 + i as i64, s.as_bytes()))
        .collect();
    worker.warm_kill_after = Some(1);
    let started = std::time::Instant::now();
    let done = run_all(vec![worker]).await;
    assert!(
        started.elapsed() < Duration::from_secs(50),
        "the kill did not stop the slow item"
    );
    assert_eq!(done[0].status.state(), TaskState::TaskKilled);
    assert_eq!(done[0].results.len(), 1, "only the first item was answered");
    assert_eq!(done[0].results[0].outcome, Outcome::Output(b"one".to_vec()));
}

/// The Docker CLI, when an engine answers.
fn docker_engine() -> Result<(), String> {
    let out = std::process::Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .map_err(|e| format!("no docker CLI: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "no Docker engine answers: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

const IMAGE: &str = "brigade-test-upper:2";

/// Builds (once; the tag is fixed) an image `FROM scratch` with the static busybox whose
/// default command upper-cases stdin, then prints `$GREETING` and the mounted `/in/note`, and
/// whether `/in` is writable; with `MODE=hang` it sleeps first.
fn build_image() -> Result<(), String> {
    let inspect = std::process::Command::new("docker")
        .args(["image", "inspect", IMAGE])
        .output()
        .map_err(|e| e.to_string())?;
    if inspect.status.success() {
        return Ok(());
    }
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .ok_or("busybox-static is not installed (apt-get install -y busybox-static)")?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).map_err(|e| e.to_string())?;
    std::fs::copy(busybox, bin.join("busybox")).map_err(|e| e.to_string())?;
    for tool in ["sh", "tr", "cat", "touch", "printf", "echo", "[", "sleep"] {
        std::os::unix::fs::symlink("busybox", bin.join(tool)).map_err(|e| e.to_string())?;
    }
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\nCOPY bin /bin\nCMD [\"/bin/sh\", \"-c\", \"if [ \\\"$MODE\\\" = hang ]; then sleep 60; fi; tr a-z A-Z; printf ' %s %s ' \\\"$GREETING\\\" \\\"$(cat /in/note)\\\"; if touch /in/probe 2>/dev/null; then echo writable; else echo read-only; fi\"]\n",
    )
    .map_err(|e| e.to_string())?;
    let out = std::process::Command::new("docker")
        .args(["build", "-q", "-t", IMAGE])
        .arg(dir.path())
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "docker build failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_docker_processor_upper_cases_with_env_and_a_read_only_volume() {
    if let Err(why) = docker_engine() {
        eprintln!("SKIPPED a_docker_processor_upper_cases_with_env_and_a_read_only_volume: {why}");
        return;
    }
    build_image().unwrap();
    let volume = tempfile::tempdir().unwrap();
    std::fs::write(volume.path().join("note"), "from-the-host").unwrap();
    let p = processor(&format!(
        r#"{{"name":"dockerized","input":"in","error":"err","docker":"{IMAGE}","cpus":"0.5","mem":"64",
            "env":["GREETING=hi there"],
            "volumes":[{{"host-path":"{}","container-path":"/in","mode":"RO"}}],
            "docker_options":{{"network":"none"}},"timeout":"60secs"}}"#,
        volume.path().display()
    ));
    let hang = processor(&format!(
        r#"{{"name":"dockerhang","input":"in","error":"err","docker":"{IMAGE}","env":["MODE=hang"],"timeout":"2secs"}}"#
    ));
    let done = run_all(vec![
        Launch::new(&p, msg(3, b"docker says hello")),
        Launch::new(&hang, msg(4, b"x")),
    ])
    .await;
    let (reason, cause) = failed(&done[1]);
    assert_eq!(cause, Some(FailureCause::Timeout), "{reason}");
    let name = brigade::exec::run::container_name(&done[1].status.task_id.value);
    // `--rm` removal happens in the engine after the kill: give it a moment.
    let mut left = String::new();
    for _ in 0..50 {
        let ps = std::process::Command::new("docker")
            .args(["ps", "-aq", "--filter", &format!("name={name}")])
            .output()
            .unwrap();
        left = String::from_utf8_lossy(&ps.stdout).trim().to_string();
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(left, "", "the timed-out container {name} must be gone");
    let Outcome::Output(out) = &done[0].outcome else {
        panic!("docker processor failed: {:?}", done[0].outcome);
    };
    assert_eq!(
        String::from_utf8_lossy(out),
        "DOCKER SAYS HELLO hi there from-the-host read-only\n"
    );
    assert!(!volume.path().join("probe").exists());
}
