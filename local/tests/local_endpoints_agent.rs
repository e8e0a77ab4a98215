//! The agent's endpoints tools read, against what a Mesos 1.12 agent answers: `/state` and
//! `/slave(1)/state` (each executor's sandbox `directory`), `/version`, `/flags`,
//! `/metrics/snapshot`, `/health`, and the agent operator API on `POST /api/v1` with its 405 /
//! 400 / 501 answers; also the executor endpoint's framework check before the call type.
//! Requests are raw HTTP; the master is played by the test over the in-process link.

mod local_agent_support;
mod local_master_support;

use local_agent_support::{FRAMEWORK, config, framework, shell, start, state_of, task};
use local_master_support::{RawResponse, raw};
use mesos_sdk::v1::TaskState;
use serde_json::{Value, json};

const JSON: &str = "application/json";
const TEXT: &str = "text/plain; charset=utf-8";

async fn get_json(addr: std::net::SocketAddr, path: &str) -> Value {
    let r = raw(addr, "GET", path, &[], b"").await;
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    assert_eq!(r.header("content-type"), Some(JSON), "{path}");
    r.json()
}

async fn operator(addr: std::net::SocketAddr, body: &str) -> RawResponse {
    raw(
        addr,
        "POST",
        "/api/v1",
        &[("Content-Type", JSON), ("Accept", JSON)],
        body.as_bytes(),
    )
    .await
}

#[tokio::test]
async fn state_lists_executors_with_their_sandbox_directory() {
    let (agent, mut master) = start(config(None)).await;
    let addr = agent.endpoint();
    master.run_task(
        framework(false),
        None,
        task("t-state", Some(shell("sleep 30"))),
    );
    let running = loop {
        let status = master.next_update().await;
        master.ack(&status);
        // Every update the agent forwards carries the container's status.
        let container = status.container_status.clone().expect("container_status");
        assert!(container.container_id.is_some());
        assert_eq!(
            container.network_infos[0].ip_addresses[0]
                .ip_address
                .as_deref(),
            Some(addr.ip().to_string().as_str())
        );
        if state_of(&status) == TaskState::TaskRunning {
            break status;
        }
    };
    let container = running.container_status.unwrap();
    assert!(container.executor_pid.is_some_and(|pid| pid > 0));
    for path in [
        "/state",
        "/slave(1)/state",
        "/state.json",
        "/slave(1)/state.json",
    ] {
        let v = get_json(addr, path).await;
        assert_eq!(v["id"], agent.id().value.as_str());
        assert_eq!(v["version"], "1.12.0");
        assert_eq!(v["pid"], format!("slave(1)@{addr}"));
        for key in [
            "build_date",
            "build_time",
            "build_user",
            "capabilities",
            "flags",
            "start_time",
        ] {
            assert!(v.get(key).is_some(), "{path} lacks {key}");
        }
        assert_eq!(v["completed_frameworks"], json!([]));
        let f = &v["frameworks"][0];
        assert_eq!(f["id"], FRAMEWORK);
        let e = &f["executors"][0];
        assert_eq!(e["id"], "t-state");
        assert_eq!(
            e["container"],
            container.container_id.as_ref().unwrap().value.as_str()
        );
        let sandbox = agent
            .executor_sandbox(
                &local_agent_support::framework_id(),
                &mesos_sdk::v1::ExecutorId {
                    value: "t-state".into(),
                },
            )
            .unwrap();
        assert_eq!(e["directory"], sandbox.to_string_lossy().as_ref());
        assert_eq!(e["tasks"][0]["id"], "t-state");
        assert_eq!(e["tasks"][0]["state"], "TASK_RUNNING");
        assert_eq!(e["queued_tasks"], json!([]));
        assert_eq!(e["completed_tasks"], json!([]));
    }
    let m = get_json(addr, "/metrics/snapshot").await;
    assert_eq!(m["slave/registered"], 1.0);
    assert_eq!(m["slave/tasks_running"], 1.0);
    assert_eq!(m["slave/executors_running"], 1.0);
    assert!(m.as_object().unwrap().values().all(Value::is_number));

    let tasks = operator(addr, r#"{"type":"GET_TASKS"}"#).await;
    assert_eq!(tasks.status, 200);
    let tasks = tasks.json();
    assert_eq!(tasks["type"], "GET_TASKS");
    assert_eq!(
        tasks["get_tasks"]["launched_tasks"][0]["task_id"]["value"],
        "t-state"
    );
    let containers = operator(addr, r#"{"type":"GET_CONTAINERS"}"#).await.json();
    assert_eq!(
        containers["get_containers"]["containers"][0]["executor_id"]["value"],
        "t-state"
    );
    let executors = operator(addr, r#"{"type":"GET_EXECUTORS"}"#).await.json();
    assert_eq!(
        executors["get_executors"]["executors"][0]["executor_info"]["executor_id"]["value"],
        "t-state"
    );
    let frameworks = operator(addr, r#"{"type":"GET_FRAMEWORKS"}"#).await.json();
    assert_eq!(
        frameworks["get_frameworks"]["frameworks"][0]["framework_info"]["id"]["value"],
        FRAMEWORK
    );
    master.kill("t-state", None);
    master.updates_until_terminal("t-state").await;
    agent.shutdown().await;
}

#[tokio::test]
async fn version_flags_and_health() {
    let (agent, _master) = start(config(None)).await;
    let addr = agent.endpoint();
    let v = get_json(addr, "/version").await;
    let mut keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "build_date",
            "build_time",
            "build_user",
            "git_sha",
            "git_tag",
            "version"
        ]
    );
    assert_eq!(v["version"], "1.12.0");
    let flags = get_json(addr, "/flags").await;
    assert_eq!(flags["flags"]["port"], addr.port().to_string());
    assert!(
        flags["flags"]
            .as_object()
            .unwrap()
            .values()
            .all(Value::is_string)
    );
    for path in ["/health", "/slave(1)/health"] {
        let r = raw(addr, "GET", path, &[], b"").await;
        assert_eq!(r.status, 200);
        assert!(r.body.is_empty());
        assert_eq!(r.header("content-type"), None);
    }
    let r = raw(addr, "GET", "/no/such/path", &[], b"").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.header("content-type"), Some(TEXT));
    assert_eq!(r.text(), "404 Not Found.");
    agent.shutdown().await;
}

#[tokio::test]
async fn operator_api_answers_and_refuses_like_mesos() {
    let (agent, _master) = start(config(None)).await;
    let addr = agent.endpoint();

    let r = raw(addr, "GET", "/api/v1", &[], b"").await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("POST"));
    assert_eq!(r.header("content-type"), Some(TEXT));
    assert_eq!(
        r.text(),
        "405 Method Not Allowed. Expecting one of { 'POST' }, but received 'GET'."
    );
    let r = raw(addr, "POST", "/api/v1", &[], br#"{"type":"GET_HEALTH"}"#).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.text(), "Expecting 'Content-Type' to be present");
    for body in [
        r#"{}"#,
        r#"{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"u","name":"n"}}}"#,
    ] {
        let r = operator(addr, body).await;
        assert_eq!(r.status, 400, "{body}");
        assert_eq!(r.header("content-type"), Some(TEXT));
        assert_eq!(
            r.text(),
            "Failed to validate agent::Call: Expecting 'type' to be present"
        );
    }
    let r = operator(addr, r#"{"type":"UNKNOWN"}"#).await;
    assert_eq!(r.status, 501);
    assert_eq!(r.header("content-type"), Some(TEXT));
    assert_eq!(r.text(), "501 Not Implemented.");

    for (kind, field) in [
        ("GET_HEALTH", "get_health"),
        ("GET_FLAGS", "get_flags"),
        ("GET_VERSION", "get_version"),
        ("GET_METRICS", "get_metrics"),
        ("GET_STATE", "get_state"),
        ("GET_AGENT", "get_agent"),
        ("GET_CONTAINERS", "get_containers"),
        ("GET_FRAMEWORKS", "get_frameworks"),
        ("GET_EXECUTORS", "get_executors"),
        ("GET_TASKS", "get_tasks"),
        ("GET_RESOURCE_PROVIDERS", "get_resource_providers"),
    ] {
        let r = operator(addr, &json!({"type": kind}).to_string()).await;
        assert_eq!(r.status, 200, "{kind}: {}", r.text());
        assert_eq!(r.header("content-type"), Some(JSON));
        let v = r.json();
        assert_eq!(v["type"], kind);
        assert!(v[field].is_object(), "{kind}: {v}");
    }
    let v = operator(addr, r#"{"type":"GET_HEALTH"}"#).await.json();
    assert_eq!(v["get_health"]["healthy"], true);
    let v = operator(addr, r#"{"type":"GET_VERSION"}"#).await.json();
    assert_eq!(v["get_version"]["version_info"]["version"], "1.12.0");
    let v = operator(addr, r#"{"type":"GET_AGENT"}"#).await.json();
    assert_eq!(
        v["get_agent"]["agent_info"]["id"]["value"],
        agent.id().value.as_str()
    );
    agent.shutdown().await;
}

#[tokio::test]
async fn executor_endpoint_checks_the_framework_before_the_call_type() {
    let (agent, _master) = start(config(None)).await;
    let body =
        br#"{"type":"UNKNOWN","framework_id":{"value":"nobody"},"executor_id":{"value":"e"}}"#;
    let r = raw(
        agent.endpoint(),
        "POST",
        "/api/v1/executor",
        &[("Content-Type", JSON)],
        body,
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.header("content-type"), Some(TEXT));
    assert_eq!(r.text(), "Framework cannot be found");
    agent.shutdown().await;
}

#[tokio::test]
async fn agents_are_named_after_their_master() {
    let mut cluster = mesos_local::cluster::LocalCluster::builder()
        .agents(2)
        .resources("cpus:1;mem:128")
        .start()
        .await
        .unwrap();
    let master_id = cluster.master().id();
    let index = cluster.add_agent().await.unwrap();
    let ids: Vec<String> = cluster
        .agents()
        .iter()
        .map(|a| a.id().value.clone())
        .collect();
    assert_eq!(index, 2);
    assert_eq!(ids, [0, 1, 2].map(|n| format!("{master_id}-S{n}")).to_vec());
    let state = get_json(cluster.agents()[1].endpoint(), "/state").await;
    assert_eq!(state["id"], format!("{master_id}-S1"));
    cluster.shutdown().await;
}

/// End to end through a real master and agent: the scheduler's updates and the master's
/// `/state` carry the container status, the agent's `/state` shows the sandbox, and the file API
/// serves the task's output from there.
#[tokio::test]
async fn a_task_is_found_through_state_and_files() {
    use local_master_support::{call, framework_info, subscribe};
    let cluster = mesos_local::cluster::LocalCluster::builder()
        .agents(1)
        .resources("cpus:1;mem:256")
        .allocation_interval(std::time::Duration::from_millis(50))
        .start()
        .await
        .unwrap();
    let master = cluster.master().addr();
    let (mut stream, id) = subscribe(master, framework_info("e2e")).await;
    let offer = stream.next_of("OFFERS").await["offers"]["offers"][0].clone();
    let task = json!({"name": "out", "task_id": {"value": "out"}, "agent_id": offer["agent_id"],
                      "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                                    {"name": "mem", "type": "SCALAR", "scalar": {"value": 32.0}}],
                      "command": {"value": "echo found-me; sleep 30"}});
    let r = call(
        master,
        &stream.stream_id(),
        json!({"type": "ACCEPT", "framework_id": {"value": id},
               "accept": {"offer_ids": [offer["id"]],
                          "operations": [{"type": "LAUNCH", "launch": {"task_infos": [task]}}]}}),
    )
    .await;
    assert_eq!(r.status, 202);
    let running = loop {
        let update = stream.next_of("UPDATE").await;
        let status = update["update"]["status"].clone();
        let uuid = status["uuid"].clone();
        call(
            master,
            &stream.stream_id(),
            json!({"type": "ACKNOWLEDGE", "framework_id": {"value": id},
                   "acknowledge": {"agent_id": status["agent_id"], "task_id": status["task_id"], "uuid": uuid}}),
        )
        .await;
        if status["state"] == "TASK_RUNNING" {
            break status;
        }
    };
    let container = &running["container_status"];
    let agent_ip = cluster.agents()[0].endpoint().ip().to_string();
    assert_eq!(
        container["network_infos"][0]["ip_addresses"][0]["ip_address"],
        agent_ip.as_str()
    );
    assert!(container["executor_pid"].as_u64().unwrap() > 0);
    let container_id = container["container_id"]["value"]
        .as_str()
        .unwrap()
        .to_string();

    let state = get_json(master, "/master/state").await;
    let statuses = &state["frameworks"][0]["tasks"][0]["statuses"];
    let last = statuses.as_array().unwrap().last().unwrap();
    assert_eq!(last["state"], "TASK_RUNNING");
    assert_eq!(
        last["container_status"]["container_id"]["value"],
        container_id.as_str()
    );

    let agent = get_json(cluster.agents()[0].endpoint(), "/slave(1)/state").await;
    let executor = &agent["frameworks"][0]["executors"][0];
    assert_eq!(executor["container"], container_id.as_str());
    let directory = executor["directory"].as_str().unwrap().to_string();
    let mut data = String::new();
    for _ in 0..100 {
        let read = get_json(
            cluster.agents()[0].endpoint(),
            &format!("/files/read?path={directory}/stdout&offset=0"),
        )
        .await;
        data = read["data"].as_str().unwrap().to_string();
        if data.contains("found-me") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(data.contains("found-me"), "{data}");
    cluster.shutdown().await;
}
