//! The master's endpoints tools read besides the scheduler API, against what a Mesos 1.12 master
//! answers: `/version`, `/metrics/snapshot`, `/flags`, `/frameworks`, `/roles`, `/slaves`,
//! `/state-summary`, `/tasks` (with and without the `/master` prefix), the fields of `/state`,
//! and the operator calls GET_FLAGS, GET_LOGGING_LEVEL, GET_MAINTENANCE_*, GET_METRICS,
//! GET_QUOTA and GET_ROLES. Requests are raw HTTP; the agent is played over the real link.

mod local_master_support;

use local_master_support::*;
use mesos_sdk::v1::TaskState;
use serde_json::{Value, json};

const JSON: &str = "application/json";
const TEXT: &str = "text/plain; charset=utf-8";

async fn get(addr: std::net::SocketAddr, path: &str) -> RawResponse {
    let r = raw(addr, "GET", path, &[], b"").await;
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    assert_eq!(r.header("content-type"), Some(JSON), "{path}");
    r
}

fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

/// A master with one agent and one framework running one task (RUNNING, reported by the agent).
async fn cluster_with_a_task() -> (mesos_local::master::MasterHandle, LinkAgent, Stream, String) {
    let master = start_master(|_| {}).await;
    let mut agent = LinkAgent::register(
        &master,
        "agent-1",
        "cpus:2;mem:512;ports:[31000-31010]",
        "rack:r1",
    );
    let (mut stream, id) = subscribe(master.addr(), framework_info("tools")).await;
    let offers = stream.next_of("OFFERS").await;
    let offer = offers["offers"]["offers"][0].clone();
    let sid = stream.stream_id();
    let task = json!({
        "name": "t1", "task_id": {"value": "t1"}, "agent_id": offer["agent_id"],
        "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.5}},
                      {"name": "mem", "type": "SCALAR", "scalar": {"value": 64.0}}],
        "command": {"value": "true"}
    });
    let r = call(
        master.addr(),
        &sid,
        json!({"type": "ACCEPT", "framework_id": {"value": id},
               "accept": {"offer_ids": [offer["id"]],
                          "operations": [{"type": "LAUNCH", "launch": {"task_infos": [task]}}]}}),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let _launch = agent.next().await;
    agent.update(&id, "t1", TaskState::TaskRunning);
    let update = stream.next_of("UPDATE").await;
    assert_eq!(update["update"]["status"]["state"], "TASK_RUNNING");
    (master, agent, stream, id)
}

#[tokio::test]
async fn version_answers_like_mesos() {
    let master = start_master(|_| {}).await;
    for path in ["/version", "/master/version"] {
        let v = get(master.addr(), path).await.json();
        assert_eq!(
            keys(&v),
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
        assert!(v["build_time"].is_number());
    }
    let r = raw(master.addr(), "PUT", "/version", &[], b"").await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, POST"));
}

#[tokio::test]
async fn flags_are_strings_under_flags() {
    let master =
        start_master(|c| c.allocation_interval = std::time::Duration::from_millis(50)).await;
    for path in ["/flags", "/master/flags"] {
        let v = get(master.addr(), path).await.json();
        assert_eq!(keys(&v), ["flags"]);
        let flags = v["flags"].as_object().unwrap();
        assert!(flags.values().all(Value::is_string), "{v}");
        assert_eq!(flags["allocation_interval"], "50ms");
        assert_eq!(flags["port"], master.addr().port().to_string());
        assert_eq!(flags["max_completed_frameworks"], "50");
    }
}

#[tokio::test]
async fn unknown_paths_and_calls_get_mesos_texts() {
    let master = start_master(|_| {}).await;
    let r = raw(master.addr(), "GET", "/master/nothing-here", &[], b"").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.header("content-type"), Some(TEXT));
    assert_eq!(r.text(), "404 Not Found.");
    let r = raw(
        master.addr(),
        "POST",
        "/api/v1",
        &[("Content-Type", JSON)],
        br#"{"type":"GET_OPERATIONS"}"#,
    )
    .await;
    assert_eq!(r.status, 501);
    assert_eq!(r.header("content-type"), Some(TEXT));
    assert_eq!(r.text(), "501 Not Implemented.");
}

#[tokio::test]
async fn operator_calls_that_answered_501_now_answer() {
    let master = start_master(|_| {}).await;
    let _agent = LinkAgent::register(&master, "a1", "cpus:1;mem:128", "");
    let (_stream, _id) = subscribe(master.addr(), framework_info("ops")).await;
    let cases: [(&str, &str); 7] = [
        ("GET_FLAGS", "get_flags"),
        ("GET_LOGGING_LEVEL", "get_logging_level"),
        ("GET_MAINTENANCE_SCHEDULE", "get_maintenance_schedule"),
        ("GET_MAINTENANCE_STATUS", "get_maintenance_status"),
        ("GET_METRICS", "get_metrics"),
        ("GET_QUOTA", "get_quota"),
        ("GET_ROLES", "get_roles"),
    ];
    for (kind, field) in cases {
        let body = json!({"type": kind}).to_string();
        let r = raw(
            master.addr(),
            "POST",
            "/api/v1",
            &[("Content-Type", JSON), ("Accept", JSON)],
            body.as_bytes(),
        )
        .await;
        assert_eq!(r.status, 200, "{kind}: {}", r.text());
        assert_eq!(r.header("content-type"), Some(JSON));
        let v = r.json();
        assert_eq!(v["type"], kind);
        assert!(v[field].is_object(), "{kind}: {v}");
    }
    let flags = raw(
        master.addr(),
        "POST",
        "/api/v1",
        &[("Content-Type", JSON)],
        br#"{"type":"GET_FLAGS"}"#,
    )
    .await
    .json();
    let names: Vec<&str> = flags["get_flags"]["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"allocation_interval"), "{flags}");
    let metrics = raw(
        master.addr(),
        "POST",
        "/api/v1",
        &[("Content-Type", JSON)],
        br#"{"type":"GET_METRICS"}"#,
    )
    .await
    .json();
    let elected = metrics["get_metrics"]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "master/elected")
        .cloned();
    assert_eq!(elected.unwrap()["value"], 1.0);
    let roles = raw(
        master.addr(),
        "POST",
        "/api/v1",
        &[("Content-Type", JSON)],
        br#"{"type":"GET_ROLES"}"#,
    )
    .await
    .json();
    assert_eq!(roles["get_roles"]["roles"][0]["name"], "*", "{roles}");
    assert_eq!(roles["get_roles"]["roles"][0]["weight"], 1.0);
}

#[tokio::test]
async fn metrics_snapshot_has_mesos_names() {
    let (master, _agent, _stream, _id) = cluster_with_a_task().await;
    for path in ["/metrics/snapshot", "/master/metrics/snapshot"] {
        let m = get(master.addr(), path).await.json();
        assert!(m.as_object().unwrap().values().all(Value::is_number), "{m}");
        assert_eq!(m["master/elected"], 1.0);
        assert_eq!(m["master/tasks_running"], 1.0);
        assert_eq!(m["master/tasks_finished"], 0.0);
        assert_eq!(m["master/slaves_active"], 1.0);
        assert_eq!(m["master/slaves_connected"], 1.0);
        assert_eq!(m["master/frameworks_active"], 1.0);
        assert_eq!(m["master/cpus_total"], 2.0);
        assert_eq!(m["master/cpus_used"], 0.5);
        assert_eq!(m["master/mem_total"], 512.0);
        assert!(m["master/uptime_secs"].as_f64().unwrap() >= 0.0);
    }
}

#[tokio::test]
async fn frameworks_slaves_roles_and_tasks_in_mesos_shapes() {
    let (master, _agent, _stream, id) = cluster_with_a_task().await;
    let addr = master.addr();
    for path in ["/frameworks", "/master/frameworks"] {
        let v = get(addr, path).await.json();
        assert_eq!(
            keys(&v),
            [
                "completed_frameworks",
                "frameworks",
                "unregistered_frameworks"
            ]
        );
        let f = &v["frameworks"][0];
        assert_eq!(f["id"], id.as_str());
        assert_eq!(f["tasks"][0]["id"], "t1");
        assert_eq!(f["offer_constraints"], json!({}));
    }
    for path in ["/slaves", "/master/slaves"] {
        let v = get(addr, path).await.json();
        assert_eq!(keys(&v), ["recovered_slaves", "slaves"]);
        assert_eq!(v["recovered_slaves"], json!([]));
        let s = &v["slaves"][0];
        assert_eq!(s["id"], "agent-1");
        assert_eq!(s["resources"]["cpus"], 2.0);
        assert_eq!(s["used_resources"]["cpus"], 0.5);
        assert_eq!(s["attributes"]["rack"], "r1");
    }
    for path in ["/roles", "/master/roles"] {
        let v = get(addr, path).await.json();
        let role = &v["roles"][0];
        assert_eq!(role["name"], "*", "{v}");
        assert_eq!(role["weight"], 1.0);
        assert_eq!(role["frameworks"], json!([id]));
        assert_eq!(role["allocated"]["cpus"], 0.5);
        assert!(role["quota"].is_object());
    }
    for path in ["/tasks", "/master/tasks"] {
        let v = get(addr, path).await.json();
        assert_eq!(keys(&v), ["tasks"]);
        let t = &v["tasks"][0];
        assert_eq!(t["id"], "t1");
        assert_eq!(t["state"], "TASK_RUNNING");
        assert_eq!(t["role"], "*");
        assert_eq!(t["slave_id"], "agent-1");
    }
    let v = get(addr, "/tasks?limit=0").await.json();
    assert_eq!(v["tasks"], json!([]));
    let r = raw(addr, "GET", "/tasks?limit=x", &[], b"").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.header("content-type"), Some(TEXT));
    for path in ["/state-summary", "/master/state-summary"] {
        let v = get(addr, path).await.json();
        assert_eq!(keys(&v), ["frameworks", "hostname", "slaves"]);
        let s = &v["slaves"][0];
        assert_eq!(s["TASK_RUNNING"], 1);
        assert_eq!(s["TASK_FINISHED"], 0);
        assert_eq!(s["framework_ids"], json!([id]));
        let f = &v["frameworks"][0];
        assert_eq!(f["TASK_RUNNING"], 1);
        assert_eq!(f["slave_ids"], json!(["agent-1"]));
        assert!(f.get("tasks").is_none());
    }
}

#[tokio::test]
async fn state_has_the_fields_mesos_writes_and_no_others() {
    let (master, _agent, _stream, _id) = cluster_with_a_task().await;
    let v = get(master.addr(), "/master/state").await.json();
    for key in [
        "build_date",
        "build_time",
        "build_user",
        "capabilities",
        "log_dir",
        "recovered_slaves",
        "flags",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    assert_eq!(
        v["capabilities"],
        json!(["AGENT_UPDATE", "AGENT_DRAINING", "QUOTA_V2"])
    );
    assert_eq!(v["recovered_slaves"], json!([]));
    assert_eq!(v["flags"]["max_completed_frameworks"], "50");
    let f = &v["frameworks"][0];
    assert_eq!(f["offer_constraints"], json!({}));
    assert_eq!(f["role"], "*");
    assert_eq!(f["unreachable_tasks"], json!([]));
    for absent in [
        "allocated_resources",
        "labels",
        "principal",
        "reregistered_time",
        "roles",
    ] {
        assert!(f.get(absent).is_none(), "framework has {absent}");
    }
    let t = &f["tasks"][0];
    assert_eq!(t["role"], "*");
    for absent in ["agent_id", "user"] {
        assert!(t.get(absent).is_none(), "task has {absent}");
    }
}

#[tokio::test]
async fn completed_frameworks_keep_their_info() {
    let master = start_master(|_| {}).await;
    let info = json!({"user": "tester", "name": "gone", "hostname": "h", "webui_url": "http://ui",
                      "checkpoint": true, "failover_timeout": 5.0,
                      "capabilities": [{"type": "PARTITION_AWARE"}]});
    let (stream, id) = subscribe(master.addr(), info).await;
    let r = call(
        master.addr(),
        &stream.stream_id(),
        json!({"type": "TEARDOWN", "framework_id": {"value": id}}),
    )
    .await;
    assert_eq!(r.status, 202);
    let v = get(master.addr(), "/state").await.json();
    let c = &v["completed_frameworks"][0];
    assert_eq!(c["id"], id.as_str());
    assert_eq!(c["hostname"], "h");
    assert_eq!(c["webui_url"], "http://ui");
    assert_eq!(c["checkpoint"], true);
    assert_eq!(c["failover_timeout"], 5.0);
    assert_eq!(c["capabilities"], json!(["PARTITION_AWARE"]));
    assert_eq!(c["recovered"], false);
    assert_eq!(c["unreachable_tasks"], json!([]));
    assert_eq!(c["offer_constraints"], json!({}));
}

#[tokio::test]
async fn offers_carry_the_agent_url() {
    let master = start_master(|_| {}).await;
    let _agent = LinkAgent::register(&master, "a-url", "cpus:1;mem:128", "");
    let (mut stream, _id) = subscribe(master.addr(), framework_info("url")).await;
    let offer = stream.next_of("OFFERS").await["offers"]["offers"][0].clone();
    assert_eq!(
        offer["url"],
        json!({"scheme": "http",
               "address": {"hostname": "a-url.local", "ip": "127.0.0.1", "port": 5051},
               "path": "/slave(1)"})
    );
}

async fn operator_json(addr: std::net::SocketAddr, kind: &str) -> Value {
    let body = json!({"type": kind}).to_string();
    let r = raw(
        addr,
        "POST",
        "/api/v1",
        &[("Content-Type", JSON), ("Accept", JSON)],
        body.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200, "{kind}: {}", r.text());
    r.json()
}

#[tokio::test]
async fn operator_views_carry_what_mesos_writes() {
    let (master, _agent, _stream, id) = cluster_with_a_task().await;
    let addr = master.addr();

    let agents = operator_json(addr, "GET_AGENTS").await;
    let view = &agents["get_agents"];
    assert_eq!(view["recovered_agents"], json!([]));
    let agent = &view["agents"][0];
    assert_eq!(agent["agent_info"]["checkpoint"], true);
    assert!(
        agent["capabilities"]
            .as_array()
            .unwrap()
            .contains(&json!({"type": "MULTI_ROLE"})),
        "{agent}"
    );
    assert!(
        agent["total_resources"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["role"] == "*")
    );
    let allocated = agent["allocated_resources"].as_array().unwrap();
    assert!(!allocated.is_empty());
    assert!(
        allocated
            .iter()
            .all(|r| r["allocation_info"]["role"] == "*" && r["role"] == "*")
    );

    let frameworks = operator_json(addr, "GET_FRAMEWORKS").await;
    let framework = &frameworks["get_frameworks"]["frameworks"][0];
    assert_eq!(framework["framework_info"]["id"]["value"], id.as_str());
    assert_eq!(framework["offer_constraints"], json!({}));
    assert!(framework["offers"].is_array());
    assert_eq!(framework["reregistered_time"], framework["registered_time"]);
    assert_eq!(
        frameworks["get_frameworks"]["completed_frameworks"],
        json!([])
    );

    let tasks = operator_json(addr, "GET_TASKS").await;
    let view = &tasks["get_tasks"];
    assert_eq!(view["unreachable_tasks"], json!([]));
    assert_eq!(view["completed_tasks"], json!([]));
    let task = &view["tasks"][0];
    assert!(
        task["resources"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["allocation_info"]["role"] == "*" && r["role"] == "*"),
        "{task}"
    );

    let state = operator_json(addr, "GET_STATE").await;
    let all = &state["get_state"];
    assert_eq!(all["get_agents"]["recovered_agents"], json!([]));
    assert_eq!(all["get_executors"]["executors"], json!([]));
    assert_eq!(all["get_tasks"]["unreachable_tasks"], json!([]));
    assert_eq!(
        all["get_frameworks"]["frameworks"][0]["offer_constraints"],
        json!({})
    );
}
