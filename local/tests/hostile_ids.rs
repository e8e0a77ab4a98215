//! Issue 9, section 1 (ids): task, executor and framework ids that would name a directory
//! outside the agent's work directory (or are otherwise invalid for Mesos) are refused, by the
//! master over its HTTP API (TASK_ERROR / REASON_TASK_INVALID with Mesos' message, an ERROR event
//! for a framework id) and by the agent itself when a launch reaches it directly; nothing is
//! created outside the work directory. Also: a status message is bounded.

mod local_agent_support;
mod local_master_support;

use std::path::Path;

use local_master_support::{LinkAgent, call, framework_info, open_stream, start_master, subscribe};
use mesos_local::link::ToAgent;
use mesos_sdk::v1::{CommandInfo, ExecutorId, FrameworkId, TaskGroupInfo, TaskState, task_status};
use serde_json::{Value, json};

/// The invalid ids of the attack and Mesos' message for each.
fn invalid_ids() -> Vec<(String, String)> {
    let long = "x".repeat(5000);
    vec![
        (
            "../../../x".into(),
            "'../../../x' contains invalid characters".into(),
        ),
        ("a/b".into(), "'a/b' contains invalid characters".into()),
        ("a\\b".into(), "'a\\b' contains invalid characters".into()),
        (".".into(), "'.' is disallowed".into()),
        ("..".into(), "'..' is disallowed".into()),
        ("a\nb".into(), "'a\nb' contains invalid characters".into()),
        (long, "ID must not be greater than 255 characters".into()),
        ("".into(), "ID must not be empty".into()),
    ]
}

fn task_json(task_id: &str, offer: &Value) -> Value {
    json!({
        "name": "n",
        "task_id": {"value": task_id},
        "agent_id": offer["agent_id"],
        "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.01}}],
        "command": {"value": "true"}
    })
}

#[tokio::test]
async fn the_master_refuses_invalid_task_and_executor_ids_with_mesos_messages() {
    let master = start_master(|_| {}).await;
    let mut agent = LinkAgent::register(&master, "a1", "cpus:1;mem:256", "");
    let (mut stream, id) = subscribe(master.addr(), framework_info("ids")).await;
    let sid = stream.stream_id();
    let offers = stream.next_of("OFFERS").await;
    let offer = offers["offers"]["offers"][0].clone();
    let mut tasks: Vec<Value> = invalid_ids()
        .iter()
        .map(|(task_id, _)| task_json(task_id, &offer))
        .collect();
    // A valid task id with an invalid executor id.
    let mut with_executor = task_json("exec-bad", &offer);
    with_executor.as_object_mut().unwrap().remove("command");
    with_executor["executor"] = json!({
        "executor_id": {"value": "../e"},
        "command": {"value": "true"}
    });
    tasks.push(with_executor);
    tasks.push(task_json("fine", &offer));
    let accept = json!({
        "type": "ACCEPT",
        "framework_id": {"value": id},
        "accept": {
            "offer_ids": [offer["id"]],
            "operations": [{"type": "LAUNCH", "launch": {"task_infos": tasks}}]
        }
    });
    let response = call(master.addr(), &sid, accept).await;
    assert_eq!(response.status, 202, "{}", response.text());

    let mut expected = invalid_ids();
    expected.push((
        "exec-bad".into(),
        "'../e' contains invalid characters".into(),
    ));
    for (task_id, message) in expected {
        let update = stream.next_of("UPDATE").await;
        let status = &update["update"]["status"];
        assert_eq!(status["task_id"]["value"], task_id.as_str());
        assert_eq!(status["state"], "TASK_ERROR");
        assert_eq!(status["reason"], "REASON_TASK_INVALID");
        assert_eq!(status["source"], "SOURCE_MASTER");
        assert_eq!(status["message"], message.as_str());
    }
    // Only the valid task reaches the agent.
    match agent.next().await {
        ToAgent::RunTask { task, .. } => assert_eq!(task.task_id.value, "fine"),
        other => panic!("unexpected {other:?}"),
    }
    master.shutdown().await;
}

#[tokio::test]
async fn the_master_refuses_an_invalid_framework_id_on_subscribe() {
    let master = start_master(|_| {}).await;
    let mut info = framework_info("fw");
    info["id"] = json!({"value": "../../fw"});
    let body = json!({
        "type": "SUBSCRIBE",
        "framework_id": {"value": "../../fw"},
        "subscribe": {"framework_info": info}
    });
    let mut stream = open_stream(
        master.addr(),
        "/api/v1/scheduler",
        &[
            ("Content-Type", "application/json"),
            ("Accept", "application/json"),
        ],
        body.to_string().as_bytes(),
    )
    .await;
    assert_eq!(stream.status, 200);
    let error = stream.next_json().await;
    assert_eq!(error["type"], "ERROR", "{error}");
    assert_eq!(
        error["error"]["message"],
        "'../../fw' contains invalid characters"
    );
    assert!(stream.next_record().await.is_none(), "stream closed");
    master.shutdown().await;
}

/// Every path below `root`, relative.
fn all_paths(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            found.push(path.strip_prefix(root).unwrap().display().to_string());
            if path.is_dir() && !path.is_symlink() {
                stack.push(path);
            }
        }
    }
    found
}

#[tokio::test]
async fn the_agent_refuses_invalid_ids_itself_and_creates_nothing_outside_its_work_dir() {
    use local_agent_support as support;
    let root = tempfile::tempdir().unwrap();
    let work_dir = root.path().join("a").join("b").join("c").join("work");
    std::fs::create_dir_all(&work_dir).unwrap();
    let (agent, mut master) = support::start(support::config(Some(work_dir.clone()))).await;
    let escape = "../../../../../../../../../escaped";

    // A task id that climbs out of the sandbox root.
    master.run_task(
        support::framework(false),
        None,
        support::task(escape, Some(support::shell("touch pwned"))),
    );
    let status = master.next_update().await;
    master.ack(&status);
    assert_eq!(status.task_id.value, escape);
    assert_eq!(support::state_of(&status), TaskState::TaskError);
    assert_eq!(status.reason(), task_status::Reason::TaskInvalid);
    assert_eq!(status.source(), task_status::Source::Agent);
    assert_eq!(
        status.message(),
        format!("'{escape}' contains invalid characters")
    );

    // A framework id that does the same.
    let mut framework = support::framework(false);
    framework.id = Some(FrameworkId {
        value: escape.into(),
    });
    master.run_task(
        framework.clone(),
        None,
        support::task("t-fw", Some(support::shell("true"))),
    );
    let status = loop {
        match master.next_raw().await {
            mesos_local::link::FromAgent::StatusUpdate { status, .. } => break status,
            _ => continue,
        }
    };
    assert_eq!(status.task_id.value, "t-fw");
    assert_eq!(support::state_of(&status), TaskState::TaskError);
    assert_eq!(
        status.message(),
        format!("'{escape}' contains invalid characters")
    );

    // An executor id, on a custom executor and on a task group.
    let executor = support::custom_executor("..", support::shell("true"));
    master.run_task(
        support::framework(false),
        Some(executor.clone()),
        support::task("t-ex", None),
    );
    let status = master.next_update().await;
    master.ack(&status);
    assert_eq!(status.task_id.value, "t-ex");
    assert_eq!(support::state_of(&status), TaskState::TaskError);
    assert_eq!(status.message(), "'..' is disallowed");
    let mut default_executor = executor;
    default_executor.executor_id = ExecutorId {
        value: "fine".into(),
    };
    default_executor.r#type = Some(mesos_sdk::v1::executor_info::Type::Default as i32);
    master.send(ToAgent::RunTaskGroup {
        framework_info: support::framework(false),
        executor: default_executor,
        task_group: TaskGroupInfo {
            tasks: vec![
                support::task("g-ok", Some(support::shell("true"))),
                support::task("g/../../bad", Some(support::shell("true"))),
            ],
        },
    });
    for expected in ["g-ok", "g/../../bad"] {
        let status = master.next_update().await;
        master.ack(&status);
        assert_eq!(status.task_id.value, expected);
        assert_eq!(support::state_of(&status), TaskState::TaskError);
        assert_eq!(status.reason(), task_status::Reason::TaskGroupInvalid);
        assert_eq!(
            status.message(),
            "'g/../../bad' contains invalid characters"
        );
    }

    // Nothing was created anywhere but in the work directory.
    let outside: Vec<String> = all_paths(root.path())
        .into_iter()
        .filter(|p| !p.starts_with("a/b/c/work"))
        .filter(|p| !["a", "a/b", "a/b/c"].contains(&p.as_str()))
        .collect();
    assert!(
        outside.is_empty(),
        "created outside the work dir: {outside:?}"
    );
    assert!(
        !all_paths(root.path())
            .iter()
            .any(|p| p.ends_with("escaped") || p.ends_with("pwned")),
        "{:?}",
        all_paths(root.path())
    );
    agent.shutdown().await;
}

#[tokio::test]
async fn a_huge_command_does_not_end_up_whole_in_the_status_message() {
    use local_agent_support as support;
    let (agent, mut master) = support::start(support::config(None)).await;
    // A 1 MB program name that cannot be started: its name is quoted in the TASK_FAILED message.
    let command = CommandInfo {
        value: Some(format!("/nonexistent/{}", "y".repeat(1 << 20))),
        shell: Some(false),
        ..Default::default()
    };
    master.run_task(
        support::framework(false),
        None,
        support::task("t-huge", Some(command)),
    );
    let updates = master.updates_until_terminal("t-huge").await;
    let last = updates.last().unwrap();
    assert_eq!(support::state_of(last), TaskState::TaskFailed);
    assert!(
        last.message().len() <= mesos_local::status_message::MAX_STATUS_MESSAGE,
        "{}",
        last.message().len()
    );
    assert!(
        last.message().ends_with("bytes truncated]"),
        "{}",
        &last.message()[..200]
    );
    agent.shutdown().await;
}
