//! The HTTP transport against scripted servers: headers, redirects, candidate failover, typed
//! errors with status and body text, timeouts, and RecordIO subscription streams.

#[path = "common/scripted.rs"]
mod scripted;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use mesos_sdk::client::{CallRequest, Client, ClientBuilder, ErrorKind};
use mesos_sdk::codec::Format;
use mesos_sdk::v1::scheduler::{Event, event};
use prost::Message;
use scripted::{Reply, ScriptedServer};

const PATH: &str = "/api/v1/scheduler";

fn fast(builder: ClientBuilder) -> ClientBuilder {
    builder
        .retry_backoff(Duration::from_millis(1), Duration::from_millis(5))
        .connect_timeout(Duration::from_secs(2))
        .call_timeout(Duration::from_secs(5))
}

fn call(body: &'static [u8], stream_id: Option<&str>) -> CallRequest {
    CallRequest {
        path: PATH.into(),
        body: Bytes::from_static(body),
        stream_id: stream_id.map(str::to_owned),
    }
}

async fn accepted_server() -> ScriptedServer {
    ScriptedServer::start(|_| async { Reply::empty(202) }).await
}

#[tokio::test]
async fn call_sends_mesos_headers_and_body() {
    let server = accepted_server().await;
    let client = fast(Client::builder().endpoint(server.url()))
        .build()
        .unwrap();
    let response = client
        .call(call(b"payload", Some("abc-123")))
        .await
        .unwrap();
    assert_eq!(response.status.as_u16(), 202);
    assert!(response.body.is_empty());

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let req = &requests[0];
    assert_eq!(req.method, http::Method::POST);
    assert_eq!(req.path, PATH);
    assert_eq!(
        req.header("content-type").as_deref(),
        Some("application/x-protobuf")
    );
    assert_eq!(req.header("mesos-stream-id").as_deref(), Some("abc-123"));
    assert_eq!(req.header("authorization"), None);
    assert_eq!(&req.body[..], b"payload");
}

#[tokio::test]
async fn json_format_sets_exact_media_types() {
    let server = ScriptedServer::start(|req| async move {
        if req.header("accept").as_deref() == Some("application/json") {
            let (reply, handle) = Reply::stream("application/json", Some("s-1"));
            handle.record(br#"{"type":"HEARTBEAT"}"#);
            std::mem::forget(handle);
            reply
        } else {
            Reply::text(406, "bad accept")
        }
    })
    .await;
    let client = fast(
        Client::builder()
            .endpoint(server.url())
            .format(Format::Json),
    )
    .build()
    .unwrap();
    assert_eq!(client.format(), Format::Json);
    let sub = client.subscribe(call(b"{}", None)).await.unwrap();
    assert_eq!(sub.format, Format::Json);
    let mut records = sub.into_records();
    let record = records.next().await.unwrap().unwrap();
    assert_eq!(&record[..], br#"{"type":"HEARTBEAT"}"#);
    let req = &server.requests()[0];
    assert_eq!(
        req.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(req.header("accept").as_deref(), Some("application/json"));
}

#[tokio::test]
async fn subscribe_never_sends_stream_id_and_returns_the_new_one() {
    let server = ScriptedServer::start(|_| async {
        let (reply, handle) = Reply::stream("application/x-protobuf", Some("stream-7"));
        handle.record(b"first");
        std::mem::forget(handle);
        reply
    })
    .await;
    let client = fast(Client::builder().endpoint(server.url()))
        .build()
        .unwrap();
    let sub = client
        .subscribe(call(b"subscribe", Some("stale")))
        .await
        .unwrap();
    assert_eq!(sub.stream_id.as_deref(), Some("stream-7"));
    assert_eq!(sub.format, Format::Protobuf);
    assert_eq!(
        sub.endpoint.authority().unwrap().as_str(),
        server.authority()
    );
    let mut records = sub.into_records();
    assert_eq!(&records.next().await.unwrap().unwrap()[..], b"first");
    let req = &server.requests()[0];
    assert_eq!(req.header("mesos-stream-id"), None);
    assert_eq!(
        req.header("accept").as_deref(),
        Some("application/x-protobuf")
    );
}

#[tokio::test]
async fn records_are_reassembled_across_chunks_and_clean_end_finishes_the_stream() {
    let (reply, handle) = Reply::stream("application/x-protobuf", Some("s"));
    let reply = Arc::new(std::sync::Mutex::new(Some(reply)));
    let server = ScriptedServer::start(move |_| {
        let reply = reply.lock().unwrap().take();
        async move { reply.unwrap_or_else(|| Reply::empty(500)) }
    })
    .await;
    let client = fast(Client::builder().endpoint(server.url()))
        .build()
        .unwrap();
    let sub = client.subscribe(call(b"s", None)).await.unwrap();
    for piece in ["1", "3", "\n", "13 character", "s", "0\n", "5\nhel", "lo"] {
        handle.raw(piece.as_bytes().to_vec());
    }
    let mut records = sub.into_records();
    assert_eq!(
        &records.next().await.unwrap().unwrap()[..],
        b"13 characters"
    );
    assert_eq!(&records.next().await.unwrap().unwrap()[..], b"hello");
    drop(handle);
    assert!(records.next().await.is_none());
}

#[tokio::test]
async fn stream_cut_mid_record_is_subscription_lost() {
    let (reply, handle) = Reply::stream("application/x-protobuf", Some("s"));
    let reply = Arc::new(std::sync::Mutex::new(Some(reply)));
    let server = ScriptedServer::start(move |_| {
        let reply = reply.lock().unwrap().take();
        async move { reply.unwrap_or_else(|| Reply::empty(500)) }
    })
    .await;
    let client = fast(Client::builder().endpoint(server.url()))
        .build()
        .unwrap();
    let sub = client.subscribe(call(b"s", None)).await.unwrap();
    handle.record(b"whole");
    let mut records = sub.into_records();
    assert_eq!(&records.next().await.unwrap().unwrap()[..], b"whole");
    handle.raw(&b"10\nhalf"[..]);
    // Let the half record reach the client before the connection breaks.
    tokio::time::sleep(Duration::from_millis(50)).await;
    handle.abort();
    let err = records.next().await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SubscriptionLost, "{err}");
    assert!(records.next().await.is_none());
}

#[tokio::test]
async fn framing_error_and_oversized_record_are_protocol_errors() {
    let server = ScriptedServer::start(|req| async move {
        let (reply, handle) = Reply::stream("application/x-protobuf", Some("s"));
        if &req.body[..] == b"bad-header" {
            handle.raw(&b"not a number\n"[..]);
        } else {
            handle.raw(&b"100\n"[..]);
        }
        std::mem::forget(handle);
        reply
    })
    .await;
    let client = fast(Client::builder().endpoint(server.url()).max_record_size(10))
        .build()
        .unwrap();
    for body in [&b"bad-header"[..], &b"too-big"[..]] {
        let sub = client
            .subscribe(CallRequest {
                path: PATH.into(),
                body: Bytes::copy_from_slice(body),
                stream_id: None,
            })
            .await
            .unwrap();
        let mut records = sub.into_records();
        let err = records.next().await.unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
        assert!(records.next().await.is_none());
    }
}

#[tokio::test]
async fn typed_events_are_decoded_in_either_format_and_a_bad_record_ends_the_stream() {
    let server = ScriptedServer::start(|req| async move {
        let json = req.header("accept").as_deref() == Some("application/json");
        let (reply, handle) = if json {
            let (reply, handle) = Reply::stream("application/json", Some("s"));
            handle.record(br#"{"type":"HEARTBEAT"}"#);
            handle.record(br#"{"type":"#);
            (reply, handle)
        } else {
            let (reply, handle) = Reply::stream("application/x-protobuf", Some("s"));
            let heartbeat = Event {
                r#type: Some(event::Type::Heartbeat as i32),
                ..Default::default()
            };
            handle.record(heartbeat.encode_to_vec());
            // A length-delimited field whose length runs past the record's end.
            handle.record([0x12, 0x05, 0x01]);
            (reply, handle)
        };
        handle.record(b"never read");
        std::mem::forget(handle);
        reply
    })
    .await;
    for format in [Format::Protobuf, Format::Json] {
        let client = fast(Client::builder().endpoint(server.url()).format(format))
            .build()
            .unwrap();
        let sub = client.subscribe(call(b"s", None)).await.unwrap();
        assert_eq!(sub.format, format);
        let mut events = sub.into_events::<Event>();
        let first = events.next().await.unwrap().unwrap();
        assert_eq!(first.r#type(), event::Type::Heartbeat);
        let err = events.next().await.unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
        assert!(err.to_string().contains("undecodable event"), "{err}");
        assert!(events.next().await.is_none());
    }
}

#[tokio::test]
async fn typed_event_stream_cut_mid_record_is_subscription_lost() {
    let server = ScriptedServer::start(|_| async move {
        let (reply, handle) = Reply::stream("application/x-protobuf", Some("s"));
        handle.raw(&b"10\nhalf"[..]);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            handle.abort();
        });
        reply
    })
    .await;
    let client = fast(Client::builder().endpoint(server.url()))
        .build()
        .unwrap();
    let sub = client.subscribe(call(b"s", None)).await.unwrap();
    let mut events = sub.into_events::<Event>();
    let err = events.next().await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SubscriptionLost, "{err}");
    assert!(events.next().await.is_none());
}

#[tokio::test]
async fn redirect_chain_is_followed_and_the_leader_remembered() {
    let leader = accepted_server().await;
    let leader_authority = leader.authority();
    // Middle hop answers the docs' bare `host:port` form.
    let middle = ScriptedServer::start(move |_| {
        let location = leader_authority.clone();
        async move { Reply::redirect(&location) }
    })
    .await;
    let middle_authority = middle.authority();
    // First hop answers the master's scheme-relative form.
    let first = ScriptedServer::start(move |_| {
        let location = format!("//{middle_authority}{PATH}");
        async move { Reply::redirect(&location) }
    })
    .await;
    let client = fast(Client::builder().endpoint(first.url()))
        .build()
        .unwrap();
    let response = client.call(call(b"x", Some("id"))).await.unwrap();
    assert_eq!(response.status.as_u16(), 202);
    assert_eq!(first.requests().len(), 1);
    assert_eq!(middle.requests().len(), 1);
    assert_eq!(leader.requests().len(), 1);
    assert_eq!(
        leader.requests()[0].header("mesos-stream-id").as_deref(),
        Some("id")
    );
    assert_eq!(
        client.leader().unwrap().authority().unwrap().as_str(),
        leader.authority()
    );

    // The next call goes straight to the remembered leader.
    client.call(call(b"y", Some("id"))).await.unwrap();
    assert_eq!(first.requests().len(), 1);
    assert_eq!(leader.requests().len(), 2);
}

#[tokio::test]
async fn absolute_location_is_followed_for_subscriptions() {
    let leader = ScriptedServer::start(|_| async {
        let (reply, handle) = Reply::stream("application/x-protobuf", Some("sid"));
        std::mem::forget(handle);
        reply
    })
    .await;
    let location = format!("{}{PATH}", leader.url());
    let follower = ScriptedServer::start(move |_| {
        let location = location.clone();
        async move { Reply::redirect(&location) }
    })
    .await;
    let client = fast(Client::builder().endpoint(follower.url()))
        .build()
        .unwrap();
    let sub = client.subscribe(call(b"s", None)).await.unwrap();
    assert_eq!(
        sub.endpoint.authority().unwrap().as_str(),
        leader.authority()
    );
    assert_eq!(sub.stream_id.as_deref(), Some("sid"));
}

#[tokio::test]
async fn too_long_redirect_chain_is_not_leader() {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let server = ScriptedServer::start(move |req| {
        counter.fetch_add(1, Ordering::SeqCst);
        let host = req.header("host").unwrap_or_default();
        async move { Reply::redirect(&format!("//{host}{PATH}")) }
    })
    .await;
    let client = fast(Client::builder().endpoint(server.url()).max_redirects(3))
        .build()
        .unwrap();
    let err = client.call(call(b"x", None)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotLeader, "{err}");
    assert_eq!(err.status().map(|s| s.as_u16()), Some(307));
    assert_eq!(hits.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn redirect_without_location_is_not_leader() {
    let server = ScriptedServer::start(|_| async { Reply::empty(307) }).await;
    let client = fast(Client::builder().endpoint(server.url()))
        .build()
        .unwrap();
    let err = client.call(call(b"x", None)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotLeader, "{err}");
}

#[tokio::test]
async fn unavailable_master_moves_on_to_the_next_candidate() {
    let starting = ScriptedServer::start(|_| async { Reply::text(503, "No leader elected") }).await;
    let recovering = ScriptedServer::start(|_| async { Reply::text(404, "") }).await;
    let good = accepted_server().await;
    let client = fast(
        Client::builder()
            .endpoint(starting.url())
            .endpoint(recovering.url())
            .endpoint(good.url()),
    )
    .build()
    .unwrap();
    let response = client.call(call(b"x", None)).await.unwrap();
    assert_eq!(response.status.as_u16(), 202);
    assert_eq!(starting.requests().len(), 1);
    assert_eq!(recovering.requests().len(), 1);
    assert_eq!(good.requests().len(), 1);
}

#[tokio::test]
async fn only_unavailable_candidates_give_unavailable_with_body_text() {
    let server =
        ScriptedServer::start(|_| async { Reply::text(503, "Master has not finished recovery") })
            .await;
    let client = fast(Client::builder().endpoint(server.url()).max_attempts(3))
        .build()
        .unwrap();
    let err = client.call(call(b"x", None)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert_eq!(err.status().map(|s| s.as_u16()), Some(503));
    assert_eq!(err.message(), "Master has not finished recovery");
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn refused_connection_moves_on_to_the_next_candidate() {
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let good = ScriptedServer::start(|_| async {
        let (reply, handle) = Reply::stream("application/x-protobuf", Some("s"));
        std::mem::forget(handle);
        reply
    })
    .await;
    let client = fast(
        Client::builder()
            .endpoint(format!("http://{dead}"))
            .endpoint(good.url()),
    )
    .build()
    .unwrap();
    let sub = client.subscribe(call(b"s", None)).await.unwrap();
    assert_eq!(sub.endpoint.authority().unwrap().as_str(), good.authority());
    // The answering endpoint is remembered: calls go there first.
    assert_eq!(
        client.leader().unwrap().authority().unwrap().as_str(),
        good.authority()
    );

    let only_dead = fast(Client::builder().endpoint(format!("http://{dead}")))
        .max_attempts(2)
        .build()
        .unwrap();
    let err = only_dead.call(call(b"x", None)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert_eq!(err.status(), None);
}

#[tokio::test]
async fn unauthorized_keeps_status_and_body_and_basic_auth_is_sent() {
    let server =
        ScriptedServer::start(|_| async { Reply::text(401, "Authentication failed: bad secret") })
            .await;
    let client = fast(
        Client::builder()
            .endpoint(server.url())
            .basic_auth("principal", "secret"),
    )
    .build()
    .unwrap();
    let err = client.subscribe(call(b"s", None)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
    assert_eq!(err.status().map(|s| s.as_u16()), Some(401));
    assert_eq!(err.message(), "Authentication failed: bad secret");
    // base64("principal:secret")
    assert_eq!(
        server.requests()[0].header("authorization").as_deref(),
        Some("Basic cHJpbmNpcGFsOnNlY3JldA==")
    );
}

#[tokio::test]
async fn bearer_token_is_sent() {
    let server = accepted_server().await;
    let client = fast(
        Client::builder()
            .endpoint(server.url())
            .bearer_token("t0k3n"),
    )
    .build()
    .unwrap();
    client.call(call(b"x", None)).await.unwrap();
    assert_eq!(
        server.requests()[0].header("authorization").as_deref(),
        Some("Bearer t0k3n")
    );
}

#[tokio::test]
async fn bad_request_keeps_the_masters_text() {
    let text = "Failed to validate scheduler::Call: Expecting 'framework_id' to be present";
    let server = ScriptedServer::start(move |_| async move { Reply::text(400, text) }).await;
    let client = fast(Client::builder().endpoint(server.url()))
        .build()
        .unwrap();
    let err = client.call(call(b"x", None)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadRequest);
    assert_eq!(err.status().map(|s| s.as_u16()), Some(400));
    assert_eq!(err.message(), text);
    assert!(err.to_string().contains(text));
    // Not retried.
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn other_statuses_map_to_their_kinds() {
    let server = ScriptedServer::start(|req| async move {
        let code: u16 = String::from_utf8_lossy(&req.body).parse().unwrap();
        Reply::text(code, "why")
    })
    .await;
    let client = fast(Client::builder().endpoint(server.url()))
        .build()
        .unwrap();
    for (code, kind) in [
        (403, ErrorKind::SubscriptionLost),
        (405, ErrorKind::BadRequest),
        (406, ErrorKind::BadRequest),
        (409, ErrorKind::BadRequest),
        (415, ErrorKind::BadRequest),
        (501, ErrorKind::BadRequest),
        (302, ErrorKind::Protocol),
        (500, ErrorKind::Unavailable),
    ] {
        let err = client
            .call(CallRequest {
                path: PATH.into(),
                body: Bytes::from(code.to_string()),
                stream_id: None,
            })
            .await
            .unwrap_err();
        assert_eq!(err.kind(), kind, "status {code}: {err}");
        assert_eq!(err.status().map(|s| s.as_u16()), Some(code));
        assert_eq!(err.message(), "why");
    }
}

#[tokio::test]
async fn slow_call_times_out() {
    let server = ScriptedServer::start(|_| async {
        tokio::time::sleep(Duration::from_secs(5)).await;
        Reply::empty(202)
    })
    .await;
    let client = fast(Client::builder().endpoint(server.url()))
        .call_timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let started = Instant::now();
    let err = client.call(call(b"x", None)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[tokio::test]
async fn a_call_answer_carries_its_body() {
    let server =
        ScriptedServer::start(|_| async { Reply::body(200, "application/x-protobuf", "abc") })
            .await;
    let client = fast(Client::builder().endpoint(server.url()))
        .build()
        .unwrap();
    let response = client.call(call(b"x", None)).await.unwrap();
    assert_eq!(response.status.as_u16(), 200);
    assert_eq!(&response.body[..], b"abc");
    assert_eq!(
        response
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/x-protobuf")
    );
}

#[test]
fn bad_configuration_is_a_config_error() {
    let no_endpoint = Client::builder().build().unwrap_err();
    assert_eq!(no_endpoint.kind(), ErrorKind::Config);
    let bad_scheme = Client::builder().endpoint("ftp://x:1").build().unwrap_err();
    assert_eq!(bad_scheme.kind(), ErrorKind::Config);
    let bad_pem = Client::builder()
        .endpoint("https://x:1")
        .add_ca_pem("garbage")
        .build()
        .unwrap_err();
    assert_eq!(bad_pem.kind(), ErrorKind::Config);
    let bad_token = Client::builder()
        .endpoint("http://x:1")
        .bearer_token("line\nbreak")
        .build()
        .unwrap_err();
    assert_eq!(bad_token.kind(), ErrorKind::Config);
    // A bare host:port is taken as http.
    let bare = Client::builder()
        .endpoint("127.0.0.1:5051")
        .build()
        .unwrap();
    assert_eq!(bare.endpoints()[0].scheme_str(), Some("http"));
}

#[tokio::test]
async fn https_endpoint_with_plain_server_fails_with_io() {
    let server = accepted_server().await;
    let client = fast(Client::builder().endpoint(format!("https://{}", server.authority())))
        .build()
        .unwrap();
    let err = client.subscribe(call(b"s", None)).await.unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Io | ErrorKind::Timeout),
        "{err}"
    );
    let err = client.call(call(b"x", None)).await.unwrap_err();
    assert!(
        matches!(
            err.kind(),
            ErrorKind::Io | ErrorKind::Unavailable | ErrorKind::Timeout
        ),
        "{err}"
    );
}

#[tokio::test]
async fn extra_headers_and_the_decorator_reach_every_request() {
    let server = ScriptedServer::start(|req| async move {
        if req.header("mesos-stream-id").is_some() {
            Reply::empty(202)
        } else {
            let (reply, handle) = Reply::stream("application/x-protobuf", Some("s"));
            std::mem::forget(handle);
            reply
        }
    })
    .await;
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let client = fast(Client::builder().endpoint(server.url()))
        .header("X-Team", "infra")
        .request_decorator(move |headers| {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            headers.insert(
                "authorization",
                http::HeaderValue::from_str(&format!("Bearer rotated-{n}")).unwrap(),
            );
        })
        .build()
        .unwrap();
    client.call(call(b"x", Some("id"))).await.unwrap();
    client.subscribe(call(b"s", None)).await.unwrap();
    let requests = server.requests();
    assert_eq!(requests[0].header("x-team").as_deref(), Some("infra"));
    assert_eq!(
        requests[0].header("authorization").as_deref(),
        Some("Bearer rotated-0")
    );
    assert_eq!(requests[1].header("x-team").as_deref(), Some("infra"));
    assert_eq!(
        requests[1].header("authorization").as_deref(),
        Some("Bearer rotated-1")
    );

    let bad = Client::builder()
        .endpoint("http://x:1")
        .header("bad name", "v")
        .build()
        .unwrap_err();
    assert_eq!(bad.kind(), ErrorKind::Config);
}

#[tokio::test]
async fn subscribe_without_an_answer_times_out() {
    let server = ScriptedServer::start(|_| async {
        tokio::time::sleep(Duration::from_secs(5)).await;
        Reply::empty(200)
    })
    .await;
    let client = fast(Client::builder().endpoint(server.url()))
        .call_timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let started = Instant::now();
    let err = client.subscribe(call(b"s", None)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[tokio::test]
async fn a_silent_subscription_stays_open_past_the_call_timeout() {
    let server = ScriptedServer::start(|_| async {
        let (reply, handle) = Reply::stream("application/x-protobuf", Some("s"));
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            handle.record(b"late");
            tokio::time::sleep(Duration::from_secs(5)).await;
        });
        reply
    })
    .await;
    let client = fast(Client::builder().endpoint(server.url()))
        .call_timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let sub = client.subscribe(call(b"s", None)).await.unwrap();
    let mut records = sub.into_records();
    assert_eq!(&records.next().await.unwrap().unwrap()[..], b"late");
}
