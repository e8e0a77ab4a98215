//! The artifact server feeding the Mesos fetcher of a real (embedded) cluster: the agents of
//! `mesos_local` download registered artifacts named in `CommandInfo.uris` and run them, as a
//! task's command (also from a task spec naming the artifact), as an archive the fetcher
//! extracts (made with the system `tar`), and as a custom executor (the workspace's
//! `mesos-example-executor` binary). The master is driven with raw `mesos_sdk::client::Client`
//! calls.

#![cfg(feature = "server")]

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use mesos_local::cluster::LocalCluster;
use mesos_sdk::client::{CallRequest, Client};
use mesos_sdk::codec::Format;
use mesos_sdk::resourcemgr::OfferResources;
use mesos_sdk::server::Server;
use mesos_sdk::taskmgr::spec::{ExecutorSpec, TaskSpec, UriSpec};
use mesos_sdk::v1::scheduler::{Call, Event, call, event};
use mesos_sdk::v1::{
    CommandInfo, ExecutorId, ExecutorInfo, FrameworkId, FrameworkInfo, Offer, TaskId, TaskInfo,
    TaskState, offer,
};
use prost::Message;

/// A guard against a hung run, far above what a run takes.
const RUN_GUARD: Duration = Duration::from_secs(120);

fn request(call: &Call, stream_id: Option<&str>) -> CallRequest {
    CallRequest {
        path: "/api/v1/scheduler".into(),
        body: Bytes::from(call.encode_to_vec()),
        stream_id: stream_id.map(str::to_string),
    }
}

async fn cluster() -> LocalCluster {
    LocalCluster::builder()
        .agents(1)
        .heartbeat_interval(Duration::from_secs(5))
        .allocation_interval(Duration::from_millis(50))
        .start()
        .await
        .unwrap()
}

fn small() -> Vec<mesos_sdk::v1::Resource> {
    mesos_sdk::resourcemgr::parse_resources("cpus:0.1;mem:32").unwrap()
}

/// Subscribes, launches the tasks `build` makes from the first offer, acknowledges every
/// update and returns each task's terminal state and message. The one place that matches
/// scheduler events.
async fn run_tasks(
    cluster: &LocalCluster,
    build: impl Fn(&FrameworkId, &Offer) -> Vec<TaskInfo>,
) -> HashMap<String, (TaskState, String)> {
    let client = Client::builder()
        .endpoint(cluster.master_url())
        .format(Format::Protobuf)
        .build()
        .unwrap();
    let subscribe = Call {
        r#type: Some(call::Type::Subscribe as i32),
        subscribe: Some(call::Subscribe {
            framework_info: FrameworkInfo {
                user: "nobody".into(),
                name: "server-fetcher-test".into(),
                ..Default::default()
            },
            ..Default::default()
        }),
        ..Default::default()
    };
    let subscription = client.subscribe(request(&subscribe, None)).await.unwrap();
    let stream_id = subscription.stream_id.clone();
    let mut events = subscription.into_events::<Event>();
    let mut framework_id = None;
    let mut expected = 0;
    let mut done = HashMap::new();
    let run = async {
        while let Some(event) = events.next().await {
            let event = event.unwrap();
            match event.r#type.and_then(|t| event::Type::try_from(t).ok()) {
                Some(event::Type::Subscribed) => {
                    framework_id = event.subscribed.map(|s| s.framework_id);
                }
                Some(event::Type::Offers) if expected == 0 => {
                    let (Some(id), Some(offer)) = (
                        framework_id.as_ref(),
                        event.offers.and_then(|o| o.offers.into_iter().next()),
                    ) else {
                        continue;
                    };
                    let tasks = build(id, &offer);
                    expected = tasks.len();
                    let accept = Call {
                        framework_id: Some(id.clone()),
                        r#type: Some(call::Type::Accept as i32),
                        accept: Some(call::Accept {
                            offer_ids: vec![offer.id.clone()],
                            operations: vec![offer::Operation {
                                r#type: Some(offer::operation::Type::Launch as i32),
                                launch: Some(offer::operation::Launch { task_infos: tasks }),
                                ..Default::default()
                            }],
                            filters: None,
                        }),
                        ..Default::default()
                    };
                    client
                        .call(request(&accept, stream_id.as_deref()))
                        .await
                        .unwrap();
                }
                Some(event::Type::Update) => {
                    let Some(status) = event.update.map(|u| u.status) else {
                        continue;
                    };
                    if let (Some(uuid), Some(agent_id), Some(id)) = (
                        status.uuid.clone(),
                        status.agent_id.clone(),
                        framework_id.as_ref(),
                    ) {
                        let ack = Call {
                            framework_id: Some(id.clone()),
                            r#type: Some(call::Type::Acknowledge as i32),
                            acknowledge: Some(call::Acknowledge {
                                agent_id,
                                task_id: status.task_id.clone(),
                                uuid,
                            }),
                            ..Default::default()
                        };
                        client
                            .call(request(&ack, stream_id.as_deref()))
                            .await
                            .unwrap();
                    }
                    let state = status.state();
                    if !matches!(
                        state,
                        TaskState::TaskStaging | TaskState::TaskStarting | TaskState::TaskRunning
                    ) {
                        done.insert(
                            status.task_id.value.clone(),
                            (state, status.message.clone().unwrap_or_default()),
                        );
                        if done.len() == expected {
                            break;
                        }
                    }
                }
                _ => {}
            }
        }
    };
    tokio::time::timeout(RUN_GUARD, run)
        .await
        .expect("the tasks did not finish");
    if let Some(id) = framework_id {
        let teardown = Call {
            framework_id: Some(id),
            r#type: Some(call::Type::Teardown as i32),
            ..Default::default()
        };
        let _ = client.call(request(&teardown, stream_id.as_deref())).await;
    }
    done
}

fn shell_task(name: &str, offer: &Offer, command: CommandInfo) -> TaskInfo {
    TaskInfo {
        name: name.into(),
        task_id: TaskId { value: name.into() },
        agent_id: offer.agent_id.clone(),
        resources: small(),
        command: Some(command),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fetcher_downloads_a_registered_script_and_runs_it() {
    let server = Server::builder().start().await.unwrap();
    let artifacts = server.artifacts();
    // The script checks that it runs from the sandbox, executable, under its artifact name.
    artifacts
        .register_bytes(
            "hello.sh",
            &b"#!/bin/sh\nset -e\ntest -x ./hello.sh\necho hello from the artifact server\n"[..],
        )
        .unwrap();
    let script = artifacts.uri("hello.sh").unwrap().executable(true).build();
    let cached = artifacts
        .uri("hello.sh")
        .unwrap()
        .executable(true)
        .cache(true)
        .output_file("again.sh")
        .build();
    // An artifact unregistered after its URI was made: the fetch fails, and so does the task.
    artifacts
        .register_bytes("gone.sh", &b"#!/bin/sh\n"[..])
        .unwrap();
    let gone = artifacts.uri("gone.sh").unwrap().executable(true).build();
    artifacts.unregister("gone.sh");

    // An archive, extracted into the sandbox by the fetcher.
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle");
    std::fs::create_dir(&bundle).unwrap();
    std::fs::write(bundle.join("run.sh"), "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(
        bundle.join("run.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let archive = dir.path().join("bundle.tar.gz");
    let tar = std::process::Command::new("tar")
        .arg("czf")
        .arg(&archive)
        .arg("-C")
        .arg(&bundle)
        .arg("run.sh")
        .status()
        .unwrap();
    assert!(tar.success());
    artifacts
        .register_file("bundle.tar.gz", &archive)
        .await
        .unwrap();
    let bundle_uri = artifacts
        .uri("bundle.tar.gz")
        .unwrap()
        .extract(true)
        .build();

    // A task spec naming the artifact, turned into a TaskInfo on the offer.
    let spec = TaskSpec::new("from-spec")
        .shell("./hello.sh")
        .cpus(0.1)
        .mem(32.0)
        .uri(UriSpec::artifact("hello.sh").executable());

    let cluster = cluster().await;
    let states = run_tasks(&cluster, |_, offer| {
        let mut pool = OfferResources::new(offer);
        vec![
            spec.task_info("from-spec", &mut pool, &artifacts).unwrap(),
            shell_task(
                "script",
                offer,
                CommandInfo {
                    value: Some("./hello.sh".into()),
                    uris: vec![script.clone()],
                    ..Default::default()
                },
            ),
            shell_task(
                "cached",
                offer,
                CommandInfo {
                    value: Some("test -x ./again.sh && ! test -e ./hello.sh".into()),
                    uris: vec![cached.clone()],
                    ..Default::default()
                },
            ),
            shell_task(
                "archive",
                offer,
                CommandInfo {
                    value: Some("./run.sh".into()),
                    uris: vec![bundle_uri.clone()],
                    ..Default::default()
                },
            ),
            shell_task(
                "gone",
                offer,
                CommandInfo {
                    value: Some("./gone.sh".into()),
                    uris: vec![gone.clone()],
                    ..Default::default()
                },
            ),
        ]
    })
    .await;
    assert_eq!(states["script"].0, TaskState::TaskFinished, "{states:?}");
    assert_eq!(states["from-spec"].0, TaskState::TaskFinished, "{states:?}");
    assert_eq!(states["cached"].0, TaskState::TaskFinished, "{states:?}");
    assert_eq!(states["archive"].0, TaskState::TaskFinished, "{states:?}");
    assert_eq!(states["gone"].0, TaskState::TaskFailed, "{states:?}");
    assert!(states["gone"].1.contains("gone.sh"), "{states:?}");
    let metrics = server.metrics().encode();
    assert!(
        metrics
            .contains("mesos_sdk_artifact_requests_total{artifact=\"hello.sh\",status=\"200\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics
            .contains("mesos_sdk_artifact_requests_total{artifact=\"unknown\",status=\"404\"} 1"),
        "{metrics}"
    );
    cluster.shutdown().await;
    server.shutdown().await;
}

/// The `mesos-example-executor` binary of the workspace, next to this test's executable
/// (`cargo test --workspace` and `scripts/test-all.sh` build it before the tests run).
fn example_executor() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let binary = dir.join("mesos-example-executor");
    assert!(
        binary.exists(),
        "{} is missing: build it first with `cargo build -p mesos-local --bin mesos-example-executor`",
        binary.display()
    );
    binary
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fetcher_downloads_a_custom_executor_built_from_this_workspace() {
    let server = Server::builder().start().await.unwrap();
    let artifacts = server.artifacts();
    artifacts
        .register_file("mesos-example-executor", example_executor())
        .await
        .unwrap();
    let uri = artifacts
        .uri("mesos-example-executor")
        .unwrap()
        .executable(true)
        .build();
    // The same executor from a task spec (the master fills in the executor's framework id).
    let spec = TaskSpec::new("custom-spec")
        .cpus(0.1)
        .mem(32.0)
        .executor(ExecutorSpec::artifact("mesos-example-executor"))
        .data(b"test -x ./mesos-example-executor".to_vec());
    let cluster = cluster().await;
    let states = run_tasks(&cluster, |framework_id, offer| {
        let executor = ExecutorInfo {
            executor_id: ExecutorId {
                value: "example".into(),
            },
            framework_id: Some(framework_id.clone()),
            command: Some(CommandInfo {
                value: Some("./mesos-example-executor".into()),
                uris: vec![uri.clone()],
                ..Default::default()
            }),
            resources: small(),
            ..Default::default()
        };
        let by_hand = TaskInfo {
            name: "custom".into(),
            task_id: TaskId {
                value: "custom".into(),
            },
            agent_id: offer.agent_id.clone(),
            executor: Some(Box::new(executor)),
            resources: small(),
            // The example executor runs `data` as a shell command when the task has none.
            data: Some(Bytes::from_static(b"test -x ./mesos-example-executor")),
            ..Default::default()
        };
        let mut pool = OfferResources::new(offer);
        pool.take(&small()).unwrap();
        vec![
            by_hand,
            spec.task_info("custom-spec", &mut pool, &artifacts)
                .unwrap(),
        ]
    })
    .await;
    assert_eq!(states["custom"].0, TaskState::TaskFinished, "{states:?}");
    assert_eq!(
        states["custom-spec"].0,
        TaskState::TaskFinished,
        "{states:?}"
    );
    let metrics = server.metrics().encode();
    assert!(
        metrics.contains(
            "mesos_sdk_artifact_requests_total{artifact=\"mesos-example-executor\",status=\"200\"} 2"
        ),
        "{metrics}"
    );
    cluster.shutdown().await;
    server.shutdown().await;
}
