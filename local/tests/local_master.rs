//! The embedded master's scheduler endpoint against what Mesos 1.12 answers: status codes, texts,
//! headers, RecordIO framing, subscription life cycle, plus `/state`, `/health`, redirects and
//! the operator API. Requests are raw HTTP with hand-written JSON bodies.

mod local_master_support;

use std::time::Duration;

use local_master_support::*;
use mesos_sdk::v1::scheduler::Event;
use prost::Message;
use serde_json::{Value, json};

const TEXT: &str = "text/plain; charset=utf-8";

#[tokio::test]
async fn request_errors_match_mesos() {
    let master = start_master(|_| {}).await;
    let addr = master.addr();

    let r = raw(addr, "GET", "/api/v1/scheduler", &[], b"").await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("POST"));
    assert_eq!(r.header("content-type"), Some(TEXT));
    assert_eq!(
        r.text(),
        "405 Method Not Allowed. Expecting one of { 'POST' }, but received 'GET'."
    );

    let r = raw(addr, "POST", "/api/v1/scheduler", &[], b"{}").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.text(), "Expecting 'Content-Type' to be present");
    assert_eq!(r.header("content-type"), Some(TEXT));

    for content_type in [
        "application/json; charset=utf-8",
        "APPLICATION/JSON",
        "text/plain",
    ] {
        let r = post_scheduler(addr, content_type, None, b"{}").await;
        assert_eq!(r.status, 415, "{content_type}");
        assert_eq!(
            r.text(),
            "Expecting 'Content-Type' of application/json or application/x-protobuf"
        );
    }

    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"type": "BOGUS"}),
            "Failed to validate scheduler::Call: Expecting 'type' to be present",
        ),
        (
            json!({"type": "SUBSCRIBE"}),
            "Failed to validate scheduler::Call: Expecting 'subscribe' to be present",
        ),
        (
            json!({"type": "SUBSCRIBE", "framework_id": {"value": "a"},
                   "subscribe": {"framework_info": {"user": "u", "name": "n", "id": {"value": "b"}}}}),
            "Failed to validate scheduler::Call: 'framework_id' differs from 'subscribe.framework_info.id'",
        ),
        (
            json!({"type": "TEARDOWN"}),
            "Failed to validate scheduler::Call: Expecting 'framework_id' to be present",
        ),
        (
            json!({"type": "ACCEPT", "framework_id": {"value": "x"}}),
            "Failed to validate scheduler::Call: Expecting 'accept' to be present",
        ),
        (
            json!({"type": "ACKNOWLEDGE", "framework_id": {"value": "x"},
                   "acknowledge": {"agent_id": {"value": "a"}, "task_id": {"value": "t"}, "uuid": "AAAA"}}),
            "Failed to validate scheduler::Call: Not a valid UUID",
        ),
        (
            json!({"type": "REVIVE", "framework_id": {"value": "nope"}}),
            "Framework cannot be found",
        ),
    ];
    for (body, text) in cases {
        let r = post_scheduler(addr, "application/json", None, body.to_string().as_bytes()).await;
        assert_eq!(r.status, 400, "{body}");
        assert_eq!(r.text(), text, "{body}");
        assert_eq!(r.header("content-type"), Some(TEXT));
    }

    let r = post_scheduler(
        addr,
        "application/json",
        None,
        br#"{"type":"SUBSCRIBE","subscribe":{"framework_info":{"name":"x"}}}"#,
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.text(),
        "Failed to convert JSON into Call protobuf: Missing required fields: subscribe.framework_info.user"
    );

    let r = post_scheduler(addr, "application/json", None, b"{not json").await;
    assert_eq!(r.status, 400);
    assert!(
        r.text().starts_with("Failed to parse body into JSON: "),
        "{}",
        r.text()
    );

    let r = post_scheduler(addr, "application/x-protobuf", None, b"\xff\xff\xff").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.text(), "Failed to parse body into Call protobuf");
    // type SUBSCRIBE with an empty `subscribe`: the required framework_info is missing.
    let r = post_scheduler(addr, "application/x-protobuf", None, b"\x10\x01\x1a\x00").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.text(), "Failed to parse body into Call protobuf");

    let subscribe =
        json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": framework_info("f")}})
            .to_string();
    let r = raw(
        addr,
        "POST",
        "/api/v1/scheduler",
        &[
            ("Content-Type", "application/json"),
            ("Accept", "text/plain"),
        ],
        subscribe.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 406);
    assert_eq!(
        r.text(),
        "Expecting 'Accept' to allow 'application/x-protobuf' or 'application/json'"
    );

    let r = post_scheduler(addr, "application/json", Some("abc"), subscribe.as_bytes()).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.text(),
        "Subscribe calls should not include the 'Mesos-Stream-Id' header"
    );
    master.shutdown().await;
}

#[tokio::test]
async fn subscribe_streams_subscribed_then_heartbeat() {
    let master = start_master(|c| c.heartbeat_interval = Duration::from_secs(30)).await;
    let addr = master.addr();
    let body = json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": framework_info("f")}});
    // No Accept header: JSON.
    let mut stream = open_stream(
        addr,
        "/api/v1/scheduler",
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    )
    .await;
    assert_eq!(stream.status, 200);
    assert_eq!(stream.header("content-type"), Some("application/json"));
    assert_eq!(stream.header("transfer-encoding"), Some("chunked"));
    assert_eq!(stream.header("content-length"), None);
    let stream_id = stream.stream_id();
    assert!(uuid::Uuid::parse_str(&stream_id).is_ok(), "{stream_id}");

    let subscribed = stream.next_json().await;
    assert_eq!(subscribed["type"], "SUBSCRIBED");
    let s = &subscribed["subscribed"];
    assert_eq!(s["heartbeat_interval_seconds"], 30.0);
    assert!(!s["framework_id"]["value"].as_str().unwrap().is_empty());
    let info = &s["master_info"];
    assert_eq!(info["version"], "1.12.0");
    assert_eq!(info["port"], addr.port());
    assert_eq!(info["hostname"], "localhost");
    assert!(!info["id"].as_str().unwrap().is_empty());
    let capabilities: Vec<&str> = info["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(capabilities, ["AGENT_UPDATE", "AGENT_DRAINING", "QUOTA_V2"]);

    // The first HEARTBEAT comes at once, byte for byte.
    let record = stream.next_record().await.unwrap();
    assert_eq!(&record[..], br#"{"type":"HEARTBEAT"}"#);
    master.shutdown().await;
}

#[tokio::test]
async fn subscribe_in_protobuf() {
    let master = start_master(|_| {}).await;
    let body = json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": framework_info("pb")}});
    let mut stream = open_stream(
        master.addr(),
        "/api/v1/scheduler",
        &[
            ("Content-Type", "application/json"),
            ("Accept", "application/x-protobuf"),
        ],
        body.to_string().as_bytes(),
    )
    .await;
    assert_eq!(stream.status, 200);
    assert_eq!(
        stream.header("content-type"),
        Some("application/x-protobuf")
    );
    let first = Event::decode(stream.next_record().await.unwrap()).unwrap();
    assert_eq!(first.r#type, Some(1));
    let subscribed = first.subscribed.unwrap();
    assert_eq!(subscribed.heartbeat_interval_seconds, Some(30.0));
    let second = Event::decode(stream.next_record().await.unwrap()).unwrap();
    assert_eq!(second.r#type, Some(8));
    master.shutdown().await;
}

#[tokio::test]
async fn heartbeats_every_interval() {
    let master = start_master(|c| c.heartbeat_interval = Duration::from_millis(40)).await;
    let (mut stream, _) = subscribe(master.addr(), framework_info("hb")).await;
    for _ in 0..4 {
        let event = stream.next_json().await;
        assert_eq!(event["type"], "HEARTBEAT");
    }
    master.shutdown().await;
}

#[tokio::test]
async fn stream_id_checks_and_accepted_answer() {
    let master = start_master(|_| {}).await;
    let addr = master.addr();
    let (_stream, id) = subscribe(addr, framework_info("ids")).await;
    let revive = json!({"type": "REVIVE", "framework_id": {"value": id}}).to_string();

    let r = post_scheduler(addr, "application/json", None, revive.as_bytes()).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.text(),
        "All non-subscribe calls should include the 'Mesos-Stream-Id' header"
    );

    let r = post_scheduler(addr, "application/json", Some("stale"), revive.as_bytes()).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.text(),
        format!(
            "The stream ID 'stale' included in this request didn't match the stream ID currently associated with framework ID {id}"
        )
    );

    let stream_id = _stream.stream_id();
    let r = post_scheduler(
        addr,
        "application/json",
        Some(&stream_id),
        revive.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 202);
    assert_eq!(r.header("content-length"), Some("0"));
    assert_eq!(r.header("content-type"), None);
    assert!(r.body.is_empty());

    // UNKNOWN from a subscribed framework: 501, never a crash.
    let r = call(
        addr,
        &stream_id,
        json!({"type": "UNKNOWN", "framework_id": {"value": id}}),
    )
    .await;
    assert_eq!(r.status, 501);

    // REQUEST and inverse offers are accepted and ignored.
    for body in [
        json!({"type": "REQUEST", "framework_id": {"value": id}, "request": {"requests": []}}),
        json!({"type": "ACCEPT_INVERSE_OFFERS", "framework_id": {"value": id},
               "accept_inverse_offers": {"inverse_offer_ids": []}}),
        json!({"type": "DECLINE_INVERSE_OFFERS", "framework_id": {"value": id},
               "decline_inverse_offers": {"inverse_offer_ids": []}}),
    ] {
        let r = call(addr, &stream_id, body.clone()).await;
        assert_eq!(r.status, 202, "{body}");
    }
    master.shutdown().await;
}

#[tokio::test]
async fn protobuf_calls_are_accepted() {
    use mesos_sdk::v1::FrameworkId;
    use mesos_sdk::v1::scheduler::{Call, call};
    let master = start_master(|_| {}).await;
    let (stream, id) = subscribe(master.addr(), framework_info("pbcall")).await;
    let suppress = Call {
        framework_id: Some(FrameworkId { value: id }),
        r#type: Some(call::Type::Suppress as i32),
        suppress: Some(call::Suppress { roles: vec![] }),
        ..Default::default()
    };
    let r = post_scheduler(
        master.addr(),
        "application/x-protobuf",
        Some(&stream.stream_id()),
        &suppress.encode_to_vec(),
    )
    .await;
    assert_eq!(r.status, 202);
    master.shutdown().await;
}

#[tokio::test]
async fn resubscribe_with_an_id_never_issued_is_accepted() {
    let master = start_master(|_| {}).await;
    let mut info = framework_info("resume");
    info["id"] = json!({"value": "made-up-framework-id"});
    let (_stream, id) = subscribe(master.addr(), info).await;
    assert_eq!(id, "made-up-framework-id");
    master.shutdown().await;
}

#[tokio::test]
async fn second_subscribe_fails_over_the_old_stream() {
    let master = start_master(|_| {}).await;
    let addr = master.addr();
    let (mut old, id) = subscribe(addr, framework_info("fo")).await;
    let mut info = framework_info("fo");
    info["id"] = json!({"value": id});
    let (new, new_id) = subscribe(addr, info).await;
    assert_eq!(new_id, id);
    let error = old.next_non_heartbeat().await;
    assert_eq!(error["type"], "ERROR");
    assert_eq!(error["error"]["message"], "Framework failed over");
    assert!(old.next_record().await.is_none(), "old stream closed");
    assert_ne!(old.stream_id(), new.stream_id());
    // The old stream id is now stale.
    let r = call(
        addr,
        &old.stream_id(),
        json!({"type": "REVIVE", "framework_id": {"value": id}}),
    )
    .await;
    assert_eq!(r.status, 400);
    master.shutdown().await;
}

#[tokio::test]
async fn teardown_closes_the_stream_and_removes_the_framework() {
    let master = start_master(|_| {}).await;
    let addr = master.addr();
    let (mut stream, id) = subscribe(addr, framework_info("td")).await;
    let r = call(
        addr,
        &stream.stream_id(),
        json!({"type": "TEARDOWN", "framework_id": {"value": id}}),
    )
    .await;
    assert_eq!(r.status, 202);
    loop {
        match stream.next_record().await {
            None => break,
            Some(record) => {
                let event: Value = serde_json::from_slice(&record).unwrap();
                assert_eq!(
                    event["type"], "HEARTBEAT",
                    "no event but heartbeats: {event}"
                );
            }
        }
    }
    let mut info = framework_info("td");
    info["id"] = json!({"value": id});
    let body = json!({"type": "SUBSCRIBE", "framework_id": {"value": id},
                      "subscribe": {"framework_info": info}});
    let mut again = open_stream(
        addr,
        "/api/v1/scheduler",
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    )
    .await;
    assert_eq!(again.status, 200);
    let error = again.next_json().await;
    assert_eq!(error["type"], "ERROR");
    assert_eq!(error["error"]["message"], "Framework has been removed");
    assert!(again.next_record().await.is_none());

    let state = raw(addr, "GET", "/master/state", &[], b"").await.json();
    assert_eq!(state["frameworks"].as_array().unwrap().len(), 0);
    assert_eq!(state["completed_frameworks"][0]["id"], id.as_str());
    master.shutdown().await;
}

#[tokio::test]
async fn disconnect_then_forbidden_then_failover_timeout_removes() {
    let master = start_master(|_| {}).await;
    let addr = master.addr();
    let mut info = framework_info("dc");
    info["failover_timeout"] = json!(1.0);
    let (stream, id) = subscribe(addr, info.clone()).await;
    let stream_id = stream.stream_id();
    drop(stream);
    let revive = json!({"type": "REVIVE", "framework_id": {"value": id}});
    // The master notices the closed connection and answers 403 until the framework is removed.
    let started = std::time::Instant::now();
    let mut saw_forbidden = false;
    loop {
        let r = call(addr, &stream_id, revive.clone()).await;
        if r.status == 403 {
            assert_eq!(r.text(), "Framework is not subscribed");
            saw_forbidden = true;
        } else if r.status == 400 && r.text() == "Framework cannot be found" {
            break;
        } else {
            assert_eq!(r.status, 202, "{}", r.text());
        }
        assert!(started.elapsed() < WAIT, "framework never removed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(saw_forbidden, "403 while disconnected");
    info["id"] = json!({"value": id});
    let body = json!({"type": "SUBSCRIBE", "framework_id": {"value": id},
                      "subscribe": {"framework_info": info}});
    let mut again = open_stream(
        addr,
        "/api/v1/scheduler",
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    )
    .await;
    let error = again.next_json().await;
    assert_eq!(error["error"]["message"], "Framework has been removed");
    master.shutdown().await;
}

#[tokio::test]
async fn invalid_framework_info_gets_an_error_event_then_close() {
    let master = start_master(|_| {}).await;
    let cases = [
        (
            json!({"user": "u", "name": "n", "roles": ["a"]}),
            "'FrameworkInfo.roles' must not be set when the framework is not MULTI_ROLE capable",
        ),
        (
            json!({"user": "u", "name": "n", "role": "a", "roles": ["a"],
                   "capabilities": [{"type": "MULTI_ROLE"}]}),
            "'FrameworkInfo.role' must not be set when the framework is MULTI_ROLE capable",
        ),
        (
            json!({"user": "u", "name": "n", "roles": ["bad role"],
                   "capabilities": [{"type": "MULTI_ROLE"}]}),
            "'FrameworkInfo.roles' contains invalid role",
        ),
        (
            json!({"user": "u", "name": "n", "role": ".."}),
            "'FrameworkInfo.role' is not a valid role",
        ),
    ];
    for (info, message) in cases {
        let body = json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": info}});
        let mut stream = open_stream(
            master.addr(),
            "/api/v1/scheduler",
            &[("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        )
        .await;
        assert_eq!(stream.status, 200);
        let event = stream.next_json().await;
        assert_eq!(event["type"], "ERROR", "{info}");
        assert!(
            event["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with(message),
            "{event}"
        );
        assert!(stream.next_record().await.is_none(), "stream closed");
    }
    master.shutdown().await;
}

#[tokio::test]
async fn update_framework_answers_200_or_400() {
    let master = start_master(|_| {}).await;
    let addr = master.addr();
    let mut info = json!({"user": "u", "name": "n", "roles": ["a"],
                          "capabilities": [{"type": "MULTI_ROLE"}]});
    let (stream, id) = subscribe(addr, info.clone()).await;
    info["id"] = json!({"value": id});
    info["roles"] = json!(["a", "b"]);
    info["name"] = json!("renamed");
    let r = call(
        addr,
        &stream.stream_id(),
        json!({"type": "UPDATE_FRAMEWORK", "framework_id": {"value": id},
               "update_framework": {"framework_info": info}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.body.is_empty());
    let state = raw(addr, "GET", "/state", &[], b"").await.json();
    assert_eq!(state["frameworks"][0]["name"], "renamed");
    assert_eq!(state["frameworks"][0]["roles"], json!(["a", "b"]));

    let mut other = info.clone();
    other["id"] = json!({"value": "other"});
    let r = call(
        addr,
        &stream.stream_id(),
        json!({"type": "UPDATE_FRAMEWORK", "framework_id": {"value": id},
               "update_framework": {"framework_info": other}}),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.text(),
        "Failed to validate scheduler::Call: 'framework_id' differs from 'update_framework.framework_info.id'"
    );

    let mut user = info.clone();
    user["user"] = json!("someone-else");
    let r = call(
        addr,
        &stream.stream_id(),
        json!({"type": "UPDATE_FRAMEWORK", "framework_id": {"value": id},
               "update_framework": {"framework_info": user}}),
    )
    .await;
    assert_eq!(r.status, 400);
    master.shutdown().await;
}

#[tokio::test]
async fn health_redirect_and_state_endpoints() {
    let master = start_master(|_| {}).await;
    let addr = master.addr();
    let r = raw(addr, "DELETE", "/master/state", &[], b"").await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, POST"));
    assert_eq!(
        r.text(),
        "405 Method Not Allowed. Expecting one of { 'GET', 'POST' }, but received 'DELETE'."
    );

    let r = raw(addr, "GET", "/health", &[], b"").await;
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    assert_eq!(r.header("content-type"), None);

    let r = raw(addr, "GET", "/master/redirect", &[], b"").await;
    assert_eq!(r.status, 307);
    assert_eq!(
        r.header("location").unwrap(),
        format!("//localhost:{}", addr.port())
    );

    let _agent = LinkAgent::register(
        &master,
        "agent-1",
        "cpus:2;mem:1024;ports:[31000-31009]",
        "rack:r1",
    );
    let (_stream, id) = subscribe(addr, framework_info("state")).await;
    let state = loop {
        let state = raw(addr, "GET", "/master/state", &[], b"").await.json();
        if !state["slaves"].as_array().unwrap().is_empty() {
            break state;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(state["version"], "1.12.0");
    assert_eq!(state["leader"], state["pid"]);
    assert_eq!(state["hostname"], "localhost");
    let slave = &state["slaves"][0];
    assert_eq!(slave["id"], "agent-1");
    assert_eq!(slave["hostname"], "agent-1.local");
    assert_eq!(slave["resources"]["cpus"], 2.0);
    assert_eq!(slave["resources"]["mem"], 1024.0);
    assert_eq!(slave["resources"]["ports"], "[31000-31009]");
    assert_eq!(slave["attributes"]["rack"], "r1");
    assert!(slave["used_resources"].is_object());
    let framework = &state["frameworks"][0];
    assert_eq!(framework["id"], id.as_str());
    assert_eq!(framework["name"], "state");
    assert_eq!(framework["active"], true);
    assert!(framework["tasks"].is_array());
    assert!(state["completed_frameworks"].is_array());
    master.shutdown().await;
}

#[tokio::test]
async fn follower_redirects_to_the_leader() {
    let master = start_master(|_| {}).await;
    let addr = master.addr();
    let (mut stream, _) = subscribe(addr, framework_info("ha")).await;
    master.set_leader(Some("host2:5050".into()));
    // Losing leadership breaks the subscription, as a master failover would.
    loop {
        match stream.next_record().await {
            None => break,
            Some(record) => {
                let event: Value = serde_json::from_slice(&record).unwrap();
                assert_eq!(event["type"], "HEARTBEAT", "{event}");
            }
        }
    }
    let state = raw(addr, "GET", "/state", &[], b"").await.json();
    assert_eq!(state["leader"], "master@host2:5050");
    let r = post_scheduler(addr, "application/json", None, b"{}").await;
    assert_eq!(r.status, 307);
    assert_eq!(r.header("location"), Some("//host2:5050/api/v1/scheduler"));
    let r = raw(addr, "GET", "/master/redirect", &[], b"").await;
    assert_eq!(r.header("location"), Some("//host2:5050"));
    master.set_no_leader();
    let r = post_scheduler(addr, "application/json", None, b"{}").await;
    assert_eq!(r.status, 503);
    assert_eq!(r.text(), "No leader elected");
    master.set_leader(None);
    let r = post_scheduler(addr, "application/json", None, b"{}").await;
    assert_eq!(r.status, 400);
    master.shutdown().await;
}

#[tokio::test]
async fn operator_api_calls_and_stream() {
    let master = start_master(|c| c.heartbeat_interval = Duration::from_secs(30)).await;
    let addr = master.addr();
    let post = |body: Value| async move {
        raw(
            addr,
            "POST",
            "/api/v1",
            &[
                ("Content-Type", "application/json"),
                ("Accept", "application/json"),
            ],
            body.to_string().as_bytes(),
        )
        .await
    };
    let r = post(json!({"type": "GET_HEALTH"})).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.json()["get_health"]["healthy"], true);
    let r = post(json!({"type": "GET_VERSION"})).await;
    assert_eq!(r.json()["get_version"]["version_info"]["version"], "1.12.0");

    let mut events = open_stream(
        addr,
        "/api/v1",
        &[
            ("Content-Type", "application/json"),
            ("Accept", "application/json"),
        ],
        json!({"type": "SUBSCRIBE"}).to_string().as_bytes(),
    )
    .await;
    assert_eq!(events.status, 200);
    let subscribed = events.next_json().await;
    assert_eq!(subscribed["type"], "SUBSCRIBED");
    assert_eq!(subscribed["subscribed"]["heartbeat_interval_seconds"], 30.0);

    let _agent = LinkAgent::register(&master, "agent-op", "cpus:1;mem:256", "");
    let added = events.next_of("AGENT_ADDED").await;
    assert_eq!(
        added["agent_added"]["agent"]["agent_info"]["id"]["value"],
        "agent-op"
    );
    let (_stream, id) = subscribe(addr, framework_info("op")).await;
    let added = events.next_of("FRAMEWORK_ADDED").await;
    assert_eq!(
        added["framework_added"]["framework"]["framework_info"]["id"]["value"],
        id.as_str()
    );

    let r = post(json!({"type": "GET_FRAMEWORKS"})).await;
    assert_eq!(
        r.json()["get_frameworks"]["frameworks"][0]["framework_info"]["name"],
        "op"
    );
    let r = post(json!({"type": "GET_AGENTS"})).await;
    assert_eq!(
        r.json()["get_agents"]["agents"][0]["agent_info"]["hostname"],
        "agent-op.local"
    );
    let r = post(json!({"type": "GET_TASKS"})).await;
    assert_eq!(r.json()["type"], "GET_TASKS");
    let r = post(json!({"type": "GET_STATE"})).await;
    assert!(r.json()["get_state"]["get_agents"]["agents"].is_array());

    // Operator TEARDOWN removes the framework: its stream ends.
    let r = post(json!({"type": "TEARDOWN", "teardown": {"framework_id": {"value": id}}})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let removed = events.next_of("FRAMEWORK_REMOVED").await;
    assert_eq!(
        removed["framework_removed"]["framework_info"]["id"]["value"],
        id.as_str()
    );
    let r =
        post(json!({"type": "TEARDOWN", "teardown": {"framework_id": {"value": "nope"}}})).await;
    assert_eq!(r.status, 400);

    let r = raw(addr, "GET", "/api/v1", &[], b"").await;
    assert_eq!(r.status, 405);
    master.shutdown().await;
}

#[tokio::test]
async fn several_calls_on_one_kept_alive_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let master = start_master(|_| {}).await;
    let mut conn = tokio::net::TcpStream::connect(master.addr()).await.unwrap();
    let mut pending = Vec::new();
    for (request, status, body) in [
        (
            "GET /health HTTP/1.1\r\nHost: x\r\n\r\n".to_string(),
            "200",
            "",
        ),
        (
            "POST /api/v1/scheduler HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}".to_string(),
            "400",
            "Expecting 'Content-Type' to be present",
        ),
    ] {
        conn.write_all(request.as_bytes()).await.unwrap();
        // Read one response: head, then Content-Length bytes.
        loop {
            if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8(pending[..end].to_vec()).unwrap();
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap();
                if pending.len() >= end + 4 + length {
                    assert!(head.starts_with(&format!("HTTP/1.1 {status}")), "{head}");
                    assert_eq!(&pending[end + 4..end + 4 + length], body.as_bytes());
                    pending.drain(..end + 4 + length);
                    break;
                }
            }
            let mut buf = [0u8; 1024];
            let n = tokio::time::timeout(WAIT, conn.read(&mut buf))
                .await
                .unwrap()
                .unwrap();
            assert!(n > 0, "connection kept open");
            pending.extend_from_slice(&buf[..n]);
        }
    }
    master.shutdown().await;
}

#[tokio::test]
async fn basic_authentication_of_the_scheduler_api() {
    use base64::Engine;
    let master = start_master(|c| {
        c.credentials = vec![
            ("fw".into(), "secret".into()),
            ("other".into(), "pw".into()),
        ]
    })
    .await;
    let addr = master.addr();
    let basic = |pair: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    };
    let body =
        json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": framework_info("auth")}})
            .to_string();
    for authorization in [None, Some(basic("fw:wrong")), Some("Bearer x".to_string())] {
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(value) = authorization.as_deref() {
            headers.push(("Authorization", value));
        }
        let r = raw(addr, "POST", "/api/v1/scheduler", &headers, body.as_bytes()).await;
        assert_eq!(r.status, 401, "{authorization:?}");
        assert_eq!(
            r.header("www-authenticate"),
            Some("Basic realm=\"mesos-master-scheduler\"")
        );
    }

    let fw = basic("fw:secret");
    let mut declared = framework_info("auth");
    declared["principal"] = json!("someone");
    let r = raw(
        addr,
        "POST",
        "/api/v1/scheduler",
        &[("Content-Type", "application/json"), ("Authorization", &fw)],
        json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": declared}})
            .to_string()
            .as_bytes(),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.text(),
        "Authenticated principal 'fw' does not match principal 'someone' set in `FrameworkInfo`"
    );

    let mut stream = open_stream(
        addr,
        "/api/v1/scheduler",
        &[("Content-Type", "application/json"), ("Authorization", &fw)],
        body.as_bytes(),
    )
    .await;
    assert_eq!(stream.status, 200);
    let subscribed = stream.next_json().await;
    let id = subscribed["subscribed"]["framework_id"]["value"]
        .as_str()
        .unwrap()
        .to_string();
    let state = raw(addr, "GET", "/state", &[], b"").await.json();
    assert_eq!(state["frameworks"][0]["principal"], "fw");

    let revive = json!({"type": "REVIVE", "framework_id": {"value": id}}).to_string();
    let sid = stream.stream_id();
    let other = basic("other:pw");
    let r = raw(
        addr,
        "POST",
        "/api/v1/scheduler",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &other),
            ("Mesos-Stream-Id", &sid),
        ],
        revive.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.text(),
        "Authenticated principal 'other' does not match principal 'fw' used to subscribe"
    );
    let r = raw(
        addr,
        "POST",
        "/api/v1/scheduler",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &fw),
            ("Mesos-Stream-Id", &sid),
        ],
        revive.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 202);
    master.shutdown().await;
}
