//! The texts a Mesos 1.12 master and agent answer (section 3 of the protocol notes), byte for
//! byte, on every endpoint that decodes calls: stout's JSON parse errors, type errors, missing
//! required fields, garbage protobuf; the UPDATE_FRAMEWORK, invalid-role, insufficient-resources
//! and OPERATION_UNKNOWN texts; and a 202 answer to `Connection: close` without a `Connection`
//! header of its own. Requests are raw HTTP.

mod local_master_support;

use local_master_support::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const JSON: &str = "application/json";
const PROTOBUF: &str = "application/x-protobuf";
const TEXT: &str = "text/plain; charset=utf-8";

/// (body, content type, expected text) cases that every call endpoint answers alike.
fn decode_cases() -> Vec<(&'static [u8], &'static str, String)> {
    vec![
        (
            b"hello",
            JSON,
            "Failed to parse body into JSON: syntax error at line 1 near: hello".into(),
        ),
        (
            b"",
            JSON,
            "Failed to parse body into JSON: syntax error at line 1 near: ".into(),
        ),
        (
            br#"{"type": "#,
            JSON,
            "Failed to parse body into JSON: syntax error at line 1 near: ".into(),
        ),
        (
            b"[]",
            JSON,
            "Failed to convert JSON into Call protobuf: Expecting a JSON object".into(),
        ),
        (
            b"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
            PROTOBUF,
            "Failed to parse body into Call protobuf".into(),
        ),
    ]
}

async fn post(
    addr: std::net::SocketAddr,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> RawResponse {
    raw(addr, "POST", path, &[("Content-Type", content_type)], body).await
}

#[tokio::test]
async fn decode_texts_are_the_same_on_every_endpoint() {
    let master = start_master(|_| {}).await;
    let (agent, _fake_master) = {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let handle = mesos_local::agent::start(mesos_local::agent::AgentConfig::default(), tx)
            .await
            .unwrap();
        let first = rx.recv().await.unwrap();
        (handle, (rx, first))
    };
    let endpoints = [
        (master.addr(), "/api/v1/scheduler"),
        (master.addr(), "/api/v1"),
        (agent.endpoint(), "/api/v1/executor"),
        (agent.endpoint(), "/api/v1"),
    ];
    for (addr, path) in endpoints {
        for (body, content_type, want) in decode_cases() {
            let r = post(addr, path, content_type, body).await;
            assert_eq!(r.status, 400, "{path} {:?}", String::from_utf8_lossy(body));
            assert_eq!(r.header("content-type"), Some(TEXT));
            assert_eq!(r.text(), want, "{path}");
        }
    }
    let r = post(
        master.addr(),
        "/api/v1/scheduler",
        JSON,
        br#"{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":5,"name":"n"}}}"#,
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.text(),
        "Failed to convert JSON into Call protobuf: Not expecting a JSON number for field 'user'"
    );
    let r = post(
        agent.endpoint(),
        "/api/v1/executor",
        JSON,
        br#"{"type":"SUBSCRIBE"}"#,
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.text(),
        "Failed to convert JSON into Call protobuf: Missing required fields: executor_id, framework_id"
    );
    agent.shutdown().await;
}

#[tokio::test]
async fn update_framework_changing_the_user_is_refused_in_mesos_words() {
    let master = start_master(|_| {}).await;
    let (stream, id) = subscribe(master.addr(), framework_info("upd")).await;
    let r = call(
        master.addr(),
        &stream.stream_id(),
        json!({"type": "UPDATE_FRAMEWORK", "framework_id": {"value": id},
               "update_framework": {"framework_info": {"user": "other", "name": "upd", "id": {"value": id}}}}),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.header("content-type"), Some(TEXT));
    assert_eq!(
        r.text(),
        "FrameworkInfo update is not valid: Updating 'FrameworkInfo.user' is unsupported; attempted to update from 'tester' to 'other'"
    );
    let r = call(
        master.addr(),
        &stream.stream_id(),
        json!({"type": "UPDATE_FRAMEWORK", "framework_id": {"value": id},
               "update_framework": {"framework_info": {"user": "tester", "name": "renamed", "id": {"value": id}}}}),
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
}

#[tokio::test]
async fn invalid_roles_get_mesos_texts() {
    let master = start_master(|_| {}).await;
    let cases = [
        (
            json!({"user": "u", "name": "n", "role": "."}),
            "'FrameworkInfo.role' is not a valid role: Role '.' cannot include '.' as a component",
        ),
        (
            json!({"user": "u", "name": "n", "roles": ["a b"], "capabilities": [{"type": "MULTI_ROLE"}]}),
            "'FrameworkInfo.roles' contains invalid role: Role component 'a b' is invalid because it contains backspace or whitespace",
        ),
    ];
    for (info, want) in cases {
        let body = json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": info}});
        let mut stream = open_stream(
            master.addr(),
            "/api/v1/scheduler",
            &[("Content-Type", JSON), ("Accept", JSON)],
            body.to_string().as_bytes(),
        )
        .await;
        assert_eq!(stream.status, 200);
        let event = stream.next_of("ERROR").await;
        assert_eq!(event["error"]["message"], want);
    }
}

#[tokio::test]
async fn a_task_bigger_than_its_offer_gets_mesos_resource_text() {
    let master = start_master(|_| {}).await;
    let mut agent = LinkAgent::register(&master, "a1", "cpus:2;mem:256", "");
    let info = json!({"user": "u", "name": "big", "roles": ["*"], "capabilities": [{"type": "MULTI_ROLE"}]});
    let (mut stream, id) = subscribe(master.addr(), info).await;
    let offer = stream.next_of("OFFERS").await["offers"]["offers"][0].clone();
    let allocated = |name: &str, value: f64| {
        json!({"name": name, "type": "SCALAR", "scalar": {"value": value},
               "allocation_info": {"role": "*"}})
    };
    let task = json!({"name": "big", "task_id": {"value": "big"}, "agent_id": offer["agent_id"],
                      "resources": [allocated("cpus", 1000.0), allocated("mem", 64.0)],
                      "command": {"value": "true"}});
    let r = call(
        master.addr(),
        &stream.stream_id(),
        json!({"type": "ACCEPT", "framework_id": {"value": id},
               "accept": {"offer_ids": [offer["id"]],
                          "operations": [{"type": "LAUNCH", "launch": {"task_infos": [task]}}]}}),
    )
    .await;
    assert_eq!(r.status, 202);
    let status = stream.next_of("UPDATE").await["update"]["status"].clone();
    assert_eq!(status["state"], "TASK_ERROR");
    let message = status["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "Total resources cpus(allocated: *):1000; mem(allocated: *):64 required by task and its executor is more than available "
        ),
        "{message}"
    );
    assert!(message.contains("cpus(allocated: *):2"), "{message}");
    assert!(message.contains("mem(allocated: *):256"), "{message}");
    drop(agent.inbox.try_recv());
}

#[tokio::test]
async fn unknown_operations_are_reconciled_with_mesos_message() {
    let master = start_master(|_| {}).await;
    let (mut stream, id) = subscribe(master.addr(), framework_info("ops")).await;
    let r = call(
        master.addr(),
        &stream.stream_id(),
        json!({"type": "RECONCILE_OPERATIONS", "framework_id": {"value": id},
               "reconcile_operations": {"operations": [{"operation_id": {"value": "op-1"}}]}}),
    )
    .await;
    assert_eq!(r.status, 202);
    let event = stream.next_of("UPDATE_OPERATION_STATUS").await;
    let status = &event["update_operation_status"]["status"];
    assert_eq!(status["state"], "OPERATION_UNKNOWN");
    assert_eq!(
        status["message"],
        "Reconciliation: Operation is unknown and no 'agent_id' was provided"
    );
}

#[tokio::test]
async fn accepted_answers_add_no_connection_header() {
    let master = start_master(|_| {}).await;
    let (stream, id) = subscribe(master.addr(), framework_info("close")).await;
    let body = json!({"type": "REVIVE", "framework_id": {"value": id}}).to_string();
    let request = format!(
        "POST /api/v1/scheduler HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nMesos-Stream-Id: {}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        stream.stream_id(),
        body.len()
    );
    let mut tcp = tokio::net::TcpStream::connect(master.addr()).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(WAIT, tcp.read_to_end(&mut answer))
        .await
        .expect("the server closes")
        .unwrap();
    let answer = String::from_utf8(answer).unwrap();
    let (head, rest) = answer.split_once("\r\n\r\n").unwrap();
    let mut lines = head.split("\r\n");
    assert_eq!(lines.next(), Some("HTTP/1.1 202 Accepted"));
    let headers: Vec<String> = lines
        .map(|l| l.split(':').next().unwrap().to_ascii_lowercase())
        .filter(|name| name != "date")
        .collect();
    assert_eq!(headers, ["content-length"], "{head}");
    assert!(head.to_ascii_lowercase().contains("content-length: 0"));
    assert!(rest.is_empty());

    // Kept-alive connections are untouched: two calls on one connection, then a close.
    let mut tcp = tokio::net::TcpStream::connect(master.addr()).await.unwrap();
    let keep = format!(
        "POST /api/v1/scheduler HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nMesos-Stream-Id: {}\r\nContent-Length: {}\r\n\r\n{body}",
        stream.stream_id(),
        body.len()
    );
    tcp.write_all(format!("{keep}{keep}{request}").as_bytes())
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(WAIT, tcp.read_to_end(&mut answer))
        .await
        .expect("the server closes after the third")
        .unwrap();
    let answer = String::from_utf8(answer).unwrap();
    assert_eq!(
        answer.matches("HTTP/1.1 202 Accepted").count(),
        3,
        "{answer}"
    );
    assert!(
        !answer.to_ascii_lowercase().contains("connection:"),
        "{answer}"
    );
}
