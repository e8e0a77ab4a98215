//! The embedded agent's executor API (`/api/v1/executor`): status codes and texts with
//! hand-written JSON and protobuf bodies, the event stream seen by an executor (the test plays
//! the executor of a process that never subscribes by itself), the registration timeout and the
//! executor environment.

mod local_agent_support;

use std::time::Duration;

use bytes::Bytes;
use local_agent_support::*;
use mesos_local::link::{FromAgent, ToAgent};
use mesos_sdk::v1::executor::{Call, call, event};
use mesos_sdk::v1::{ExecutorId, FrameworkId, TaskId, TaskState, TaskStatus, task_status};
use prost::Message;

const JSON: &str = "application/json";
const PROTOBUF: &str = "application/x-protobuf";

fn json_call(kind: &str, framework: &str, executor: &str) -> String {
    format!(
        r#"{{"type":"{kind}","framework_id":{{"value":"{framework}"}},"executor_id":{{"value":"{executor}"}}}}"#
    )
}

/// Starts an agent with custom executor `ex-1` (a process that never subscribes) holding the
/// queued task `t-1`.
async fn agent_with_silent_executor() -> (mesos_local::agent::AgentHandle, TestMaster) {
    let (agent, master) = start(config(None)).await;
    master.run_task(
        framework(false),
        Some(custom_executor("ex-1", shell("sleep 30"))),
        task("t-1", None),
    );
    (agent, master)
}

#[tokio::test]
async fn status_codes_and_texts() {
    let (agent, _master) = agent_with_silent_executor().await;
    let addr = agent.endpoint();
    let path = "/api/v1/executor";

    let (status, headers, body) = raw_http(addr, "GET", path, &[], b"").await;
    assert_eq!(status, 405);
    assert_eq!(header(&headers, "allow"), Some("POST"));
    assert_eq!(
        String::from_utf8_lossy(&body),
        "405 Method Not Allowed. Expecting one of { 'POST' }, but received 'GET'."
    );

    let heartbeat = json_call("HEARTBEAT", FRAMEWORK, "ex-1");
    let (status, _, body) = raw_http(addr, "POST", path, &[], heartbeat.as_bytes()).await;
    assert_eq!(status, 400);
    assert_eq!(body, b"Expecting 'Content-Type' to be present");

    for content_type in [
        "application/json; charset=utf-8",
        "APPLICATION/JSON",
        "text/plain",
    ] {
        let (status, headers, body) = raw_http(
            addr,
            "POST",
            path,
            &[("Content-Type", content_type)],
            heartbeat.as_bytes(),
        )
        .await;
        assert_eq!(status, 415, "{content_type}");
        assert_eq!(
            body,
            b"Expecting 'Content-Type' of application/json or application/x-protobuf"
        );
        assert_eq!(
            header(&headers, "content-type"),
            Some("text/plain; charset=utf-8")
        );
    }

    let (status, _, body) = raw_http(
        addr,
        "POST",
        path,
        &[("Content-Type", PROTOBUF)],
        b"\xff\xff\xff",
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        String::from_utf8_lossy(&body).starts_with("Failed to parse body into Call protobuf"),
        "{}",
        String::from_utf8_lossy(&body)
    );

    let (status, _, body) =
        raw_http(addr, "POST", path, &[("Content-Type", JSON)], b"{not json").await;
    assert_eq!(status, 400);
    // Mesos answers text that is not JSON alike on the master and the agent.
    assert!(
        String::from_utf8_lossy(&body).starts_with("Failed to parse body into JSON: "),
        "{}",
        String::from_utf8_lossy(&body)
    );

    // JSON lacking required fields: the names, comma-separated (as on the master).
    let (status, _, body) = raw_http(
        addr,
        "POST",
        path,
        &[("Content-Type", JSON)],
        br#"{"type":"HEARTBEAT"}"#,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        String::from_utf8_lossy(&body),
        "Failed to convert JSON into Call protobuf: Missing required fields: executor_id, framework_id"
    );

    let expect_400 = |body: &[u8], text: &str| {
        assert_eq!(String::from_utf8_lossy(body), text);
    };
    let (status, _, body) = raw_http(
        addr,
        "POST",
        path,
        &[("Content-Type", JSON)],
        json_call("BOGUS", FRAMEWORK, "ex-1").as_bytes(),
    )
    .await;
    assert_eq!(status, 400);
    expect_400(
        &body,
        "Failed to validate Executor::Call: Expecting 'type' to be present",
    );

    let (status, _, body) = raw_http(
        addr,
        "POST",
        path,
        &[("Content-Type", JSON)],
        json_call("SUBSCRIBE", FRAMEWORK, "ex-1").as_bytes(),
    )
    .await;
    assert_eq!(status, 400);
    expect_400(
        &body,
        "Failed to validate Executor::Call: Expecting 'subscribe' to be present",
    );

    let subscribe = r#"{"type":"SUBSCRIBE","framework_id":{"value":"fw-test"},"executor_id":{"value":"ex-1"},"subscribe":{}}"#;
    let (status, _, body) = raw_http(
        addr,
        "POST",
        path,
        &[("Content-Type", JSON), ("Accept", "text/plain")],
        subscribe.as_bytes(),
    )
    .await;
    assert_eq!(status, 406);
    expect_400(
        &body,
        "Expecting 'Accept' to allow 'application/x-protobuf' or 'application/json'",
    );

    let (status, _, _) = raw_http(
        addr,
        "POST",
        path,
        &[("Content-Type", JSON)],
        json_call("UNKNOWN", FRAMEWORK, "ex-1").as_bytes(),
    )
    .await;
    assert_eq!(status, 501);

    let (status, _, body) = raw_http(
        addr,
        "POST",
        path,
        &[("Content-Type", JSON)],
        json_call("HEARTBEAT", "no-such-framework", "ex-1").as_bytes(),
    )
    .await;
    assert_eq!(status, 400);
    expect_400(&body, "Framework cannot be found");

    let (status, _, body) = raw_http(
        addr,
        "POST",
        path,
        &[("Content-Type", JSON)],
        json_call("HEARTBEAT", FRAMEWORK, "no-such-executor").as_bytes(),
    )
    .await;
    assert_eq!(status, 400);
    expect_400(&body, "Executor cannot be found");

    for path in ["/api/v1/executor", "/slave(1)/api/v1/executor"] {
        let (status, _, body) = raw_http(
            addr,
            "POST",
            path,
            &[("Content-Type", JSON)],
            heartbeat.as_bytes(),
        )
        .await;
        assert_eq!(status, 403, "{path}");
        expect_400(&body, "Executor is not subscribed");
    }

    // UPDATE validation.
    let update = |uuid: &str, source: &str, state: &str, executor: &str| {
        format!(
            r#"{{"type":"UPDATE","framework_id":{{"value":"fw-test"}},"executor_id":{{"value":"ex-1"}},
               "update":{{"status":{{"task_id":{{"value":"t-1"}},"state":"{state}","source":"{source}",
               "executor_id":{{"value":"{executor}"}},"uuid":"{uuid}"}}}}}}"#
        )
    };
    let good_uuid = "t+Wonz5fRFKMzCnEptlv5A==";
    let cases = [
        (
            update("YWRmYWRmYWRiaGd2amF5ZDIz", "SOURCE_EXECUTOR", "TASK_RUNNING", "ex-1"),
            "Failed to validate Executor::Call: Not a valid UUID".to_string(),
        ),
        (
            update(good_uuid, "SOURCE_MASTER", "TASK_RUNNING", "ex-1"),
            "Failed to validate Executor::Call: Received Call from executor ex-1 of framework fw-test with invalid source, expecting 'SOURCE_EXECUTOR'".to_string(),
        ),
        (
            update(good_uuid, "SOURCE_EXECUTOR", "TASK_STAGING", "ex-1"),
            "Failed to validate Executor::Call: Received TASK_STAGING from executor ex-1 of framework fw-test which is not allowed".to_string(),
        ),
        (
            update(good_uuid, "SOURCE_EXECUTOR", "TASK_RUNNING", "other"),
            "Failed to validate Executor::Call: ExecutorID in Call: ex-1 does not match ExecutorID in TaskStatus: other".to_string(),
        ),
    ];
    for (body, text) in cases {
        let (status, _, answer) = raw_http(
            addr,
            "POST",
            path,
            &[("Content-Type", JSON)],
            body.as_bytes(),
        )
        .await;
        assert_eq!(status, 400);
        assert_eq!(String::from_utf8_lossy(&answer), text);
    }
    agent.shutdown().await;
}

fn executor_call(kind: call::Type) -> Call {
    Call {
        executor_id: ExecutorId {
            value: "ex-1".into(),
        },
        framework_id: FrameworkId {
            value: FRAMEWORK.into(),
        },
        r#type: Some(kind as i32),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_subscribed_executor_gets_its_events_and_reports_updates() {
    let (agent, mut master) = agent_with_silent_executor().await;
    let addr = agent.endpoint();

    // JSON is the default event format.
    let json_subscribe = r#"{"type":"SUBSCRIBE","framework_id":{"value":"fw-test"},"executor_id":{"value":"ex-1"},"subscribe":{}}"#;
    let mut json_stream = subscribe_with(
        addr,
        JSON,
        None,
        Bytes::from_static(json_subscribe.as_bytes()),
    )
    .await;
    assert_eq!(json_stream.status, 200);
    assert_eq!(json_stream.headers["content-type"], JSON);
    assert!(json_stream.headers.get("content-length").is_none());
    let first: serde_json::Value =
        serde_json::from_slice(&json_stream.next_record().await.unwrap()).unwrap();
    assert_eq!(first["type"], "SUBSCRIBED");
    assert_eq!(
        first["subscribed"]["executor_info"]["executor_id"]["value"],
        "ex-1"
    );
    let launch: serde_json::Value =
        serde_json::from_slice(&json_stream.next_record().await.unwrap()).unwrap();
    assert_eq!(launch["type"], "LAUNCH");
    assert_eq!(launch["launch"]["task"]["task_id"]["value"], "t-1");

    // A protobuf subscription replaces it; the old stream ends. The executor resends the task
    // it has not seen acknowledged, so it is not launched again.
    let mut subscribe = executor_call(call::Type::Subscribe);
    subscribe.subscribe = Some(call::Subscribe {
        unacknowledged_tasks: vec![task("t-1", None)],
        unacknowledged_updates: Vec::new(),
    });
    let mut stream = local_agent_support::subscribe(addr, &subscribe).await;
    assert_eq!(stream.status, 200);
    assert_eq!(stream.headers["content-type"], PROTOBUF);
    let subscribed = stream.next().await.unwrap();
    assert_eq!(subscribed.r#type(), event::Type::Subscribed);
    let subscribed = subscribed.subscribed.unwrap();
    assert_eq!(subscribed.executor_info.executor_id.value, "ex-1");
    assert_eq!(subscribed.framework_info.id.unwrap().value, FRAMEWORK);
    assert_eq!(subscribed.agent_info.id.as_ref(), Some(agent.id()));
    assert!(subscribed.container_id.is_some());
    let rest = json_stream.next_record().await;
    assert!(rest.is_none(), "the replaced stream ends: {rest:?}");

    let (status, headers, body) = raw_http(
        addr,
        "POST",
        "/api/v1/executor",
        &[("Content-Type", PROTOBUF)],
        &executor_call(call::Type::Heartbeat).encode_to_vec(),
    )
    .await;
    assert_eq!(status, 202);
    assert_eq!(header(&headers, "content-length"), Some("0"));
    assert_eq!(header(&headers, "content-type"), None);
    assert!(body.is_empty());

    // UPDATE: recorded, acknowledged to the executor, forwarded to the master.
    let uuid = Bytes::copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    let mut update = executor_call(call::Type::Update);
    update.update = Some(call::Update {
        status: TaskStatus {
            task_id: TaskId {
                value: "t-1".into(),
            },
            state: TaskState::TaskRunning as i32,
            source: Some(task_status::Source::Executor as i32),
            uuid: Some(uuid.clone()),
            ..Default::default()
        },
    });
    let (status, _, _) = raw_http(
        addr,
        "POST",
        "/api/v1/executor",
        &[("Content-Type", PROTOBUF)],
        &update.encode_to_vec(),
    )
    .await;
    assert_eq!(status, 202);
    let acknowledged = stream.next().await.unwrap();
    assert_eq!(acknowledged.r#type(), event::Type::Acknowledged);
    let acknowledged = acknowledged.acknowledged.unwrap();
    assert_eq!(acknowledged.uuid, uuid);
    assert_eq!(acknowledged.task_id.value, "t-1");
    let forwarded = master.next_update().await;
    assert_eq!(
        forwarded.uuid.as_ref(),
        Some(&uuid),
        "executor uuids are kept"
    );
    assert_eq!(forwarded.agent_id.as_ref(), Some(agent.id()));
    assert_eq!(forwarded.executor_id.as_ref().unwrap().value, "ex-1");
    master.ack(&forwarded);

    // MESSAGE to the framework; a framework message to the executor.
    let mut message = executor_call(call::Type::Message);
    message.message = Some(call::Message {
        data: Bytes::from_static(b"to-scheduler"),
    });
    let (status, _, _) = raw_http(
        addr,
        "POST",
        "/slave(1)/api/v1/executor",
        &[("Content-Type", PROTOBUF)],
        &message.encode_to_vec(),
    )
    .await;
    assert_eq!(status, 202);
    let data = master
        .next_other(|m| match m {
            FromAgent::ExecutorMessage {
                executor_id, data, ..
            } if executor_id.value == "ex-1" => Some(data.clone()),
            _ => None,
        })
        .await;
    assert_eq!(&data[..], b"to-scheduler");
    master.send(ToAgent::FrameworkMessage {
        framework_id: framework_id(),
        executor_id: ExecutorId {
            value: "ex-1".into(),
        },
        data: Bytes::from_static(b"to-executor"),
    });
    let event = stream.next().await.unwrap();
    assert_eq!(event.r#type(), event::Type::Message);
    assert_eq!(&event.message.unwrap().data[..], b"to-executor");

    // KILL goes to the executor.
    master.kill("t-1", Some(Duration::from_millis(100)));
    let kill = stream.next().await.unwrap();
    assert_eq!(kill.r#type(), event::Type::Kill);
    assert_eq!(kill.kill.unwrap().task_id.value, "t-1");

    // SHUTDOWN: the event, then the process is signalled after the grace period; its task is
    // reported and the master learns that the executor exited.
    master.send(ToAgent::ShutdownExecutor {
        framework_id: framework_id(),
        executor_id: ExecutorId {
            value: "ex-1".into(),
        },
    });
    let shutdown = stream.next().await.unwrap();
    assert_eq!(shutdown.r#type(), event::Type::Shutdown);
    let terminal = master.updates_until_terminal("t-1").await;
    let last = terminal.last().unwrap();
    assert_eq!(state_of(last), TaskState::TaskKilled);
    assert_eq!(last.reason(), task_status::Reason::ExecutorTerminated);
    let (executor_id, status) = master
        .next_other(|m| match m {
            FromAgent::ExecutorExited {
                executor_id,
                status,
                ..
            } => Some((executor_id.value.clone(), *status)),
            _ => None,
        })
        .await;
    assert_eq!(executor_id, "ex-1");
    assert_eq!(status, libc_sigterm(), "terminated by SIGTERM");
    agent.shutdown().await;
}

fn libc_sigterm() -> i32 {
    nix::sys::signal::Signal::SIGTERM as i32
}

fn read_env(path: &std::path::Path) -> std::collections::HashMap<String, String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn executors_that_never_subscribe_are_killed_and_see_the_mesos_environment() {
    let work_dir = tempfile::tempdir().unwrap();
    let mut config = config(Some(work_dir.path().to_path_buf()));
    config.executor_registration_timeout = Duration::from_millis(2000);
    let (agent, mut master) = start(config).await;
    let mut command = shell("env > env.txt; exec sleep 30");
    command.environment = Some(mesos_sdk::v1::Environment {
        variables: vec![mesos_sdk::v1::environment::Variable {
            name: "EXTRA".into(),
            value: Some("yes".into()),
            ..Default::default()
        }],
    });
    let executors = [(false, "ex-plain"), (true, "ex-checkpoint")];
    for (checkpoint, executor) in executors {
        master.run_task(
            framework(checkpoint),
            Some(custom_executor(executor, command.clone())),
            task(&format!("t-{executor}"), None),
        );
    }
    for (checkpoint, executor) in executors {
        let task_id = format!("t-{executor}");
        let updates = master.updates_until_terminal(&task_id).await;
        let last = updates.last().unwrap();
        assert_eq!(state_of(last), TaskState::TaskFailed);
        assert_eq!(
            last.reason(),
            task_status::Reason::ExecutorRegistrationTimeout
        );
        let status = master
            .next_other(|m| match m {
                FromAgent::ExecutorExited {
                    executor_id,
                    status,
                    ..
                } if executor_id.value == executor => Some(*status),
                _ => None,
            })
            .await;
        assert_eq!(status, nix::sys::signal::Signal::SIGKILL as i32);

        let sandbox = agent
            .executor_sandbox(
                &framework_id(),
                &ExecutorId {
                    value: executor.into(),
                },
            )
            .unwrap();
        let env = read_env(&sandbox.join("env.txt"));
        let endpoint = agent.endpoint().to_string();
        let sandbox_text = sandbox.to_string_lossy().to_string();
        assert_eq!(env["MESOS_FRAMEWORK_ID"], FRAMEWORK);
        assert_eq!(env["MESOS_EXECUTOR_ID"], executor);
        assert_eq!(env["MESOS_AGENT_ENDPOINT"], endpoint);
        assert_eq!(env["MESOS_DIRECTORY"], sandbox_text);
        assert_eq!(env["MESOS_SANDBOX"], sandbox_text);
        assert_eq!(env["MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD"], "500ms");
        assert_eq!(env["MESOS_HTTP_COMMAND_EXECUTOR"], "0");
        assert_eq!(env["MESOS_SLAVE_ID"], agent.id().value);
        assert_eq!(env["MESOS_SLAVE_PID"], format!("slave(1)@{endpoint}"));
        assert_eq!(env["EXTRA"], "yes");
        if checkpoint {
            assert_eq!(env["MESOS_CHECKPOINT"], "1");
            assert_eq!(env["MESOS_RECOVERY_TIMEOUT"], "15mins");
            assert_eq!(env["MESOS_SUBSCRIPTION_BACKOFF_MAX"], "2secs");
        } else {
            assert_eq!(env["MESOS_CHECKPOINT"], "0");
            assert!(!env.contains_key("MESOS_RECOVERY_TIMEOUT"));
            assert!(!env.contains_key("MESOS_SUBSCRIPTION_BACKOFF_MAX"));
        }
    }
    agent.shutdown().await;
}

#[tokio::test]
async fn executor_exits_and_launch_failures_end_their_tasks() {
    let (agent, mut master) = start(config(None)).await;
    // Exits before subscribing.
    master.run_task(
        framework(false),
        Some(custom_executor("ex-exit", shell("exit 3"))),
        task("t-exit", None),
    );
    let updates = master.updates_until_terminal("t-exit").await;
    let last = updates.last().unwrap();
    assert_eq!(state_of(last), TaskState::TaskFailed);
    assert_eq!(last.reason(), task_status::Reason::ExecutorTerminated);
    assert_eq!(last.source(), task_status::Source::Agent);
    let status = master
        .next_other(|m| match m {
            FromAgent::ExecutorExited {
                executor_id,
                status,
                ..
            } if executor_id.value == "ex-exit" => Some(*status),
            _ => None,
        })
        .await;
    assert_eq!(status, 3 << 8, "raw wait status of exit 3");

    // Its URI cannot be fetched.
    let mut command = shell("true");
    command.uris = vec![mesos_sdk::v1::command_info::Uri {
        value: "file:///nonexistent/executor.tar.gz".into(),
        ..Default::default()
    }];
    master.run_task(
        framework(false),
        Some(custom_executor("ex-unfetchable", command)),
        task("t-unfetchable", None),
    );
    let updates = master.updates_until_terminal("t-unfetchable").await;
    let last = updates.last().unwrap();
    assert_eq!(state_of(last), TaskState::TaskFailed);
    assert_eq!(last.reason(), task_status::Reason::ContainerLaunchFailed);
    assert!(
        last.message().contains("/nonexistent/executor.tar.gz"),
        "{}",
        last.message()
    );
    let exited = master
        .next_other(|m| match m {
            FromAgent::ExecutorExited { executor_id, .. } => Some(executor_id.value.clone()),
            _ => None,
        })
        .await;
    assert_eq!(exited, "ex-unfetchable");
    agent.shutdown().await;
}

#[tokio::test]
async fn tasks_killed_before_the_executor_subscribes_never_reach_it() {
    let (agent, mut master) = agent_with_silent_executor().await;
    master.kill("t-1", None);
    let updates = master.updates_until_terminal("t-1").await;
    assert_eq!(states(&updates), vec![TaskState::TaskKilled]);
    assert_eq!(
        updates[0].reason(),
        task_status::Reason::TaskKilledDuringLaunch
    );

    // The executor then subscribes and gets no LAUNCH.
    let mut subscribe = executor_call(call::Type::Subscribe);
    subscribe.subscribe = Some(call::Subscribe::default());
    let mut stream = local_agent_support::subscribe(agent.endpoint(), &subscribe).await;
    assert_eq!(
        stream.next().await.unwrap().r#type(),
        event::Type::Subscribed
    );
    master.send(ToAgent::FrameworkMessage {
        framework_id: framework_id(),
        executor_id: ExecutorId {
            value: "ex-1".into(),
        },
        data: Bytes::from_static(b"next"),
    });
    assert_eq!(stream.next().await.unwrap().r#type(), event::Type::Message);

    let (status, headers, body) = raw_http(agent.endpoint(), "GET", "/health", &[], b"").await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-type"), None);
    assert!(body.is_empty());
    agent.shutdown().await;
}
