//! The artifact server over real loopback sockets, with hand-written HTTP/1.1 requests so that
//! exact status lines and headers are checked: GET, HEAD, ETag and If-None-Match, byte ranges,
//! traversal attempts, unknown names, the built-in routes, user routes, TLS and shutdown.

#![cfg(feature = "server")]

#[path = "common/tls_fixtures.rs"]
mod tls_fixtures;

use std::net::SocketAddr;
use std::sync::Arc;

use mesos_sdk::server::{Artifact, Server, WatchState};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

const CONTENT: &[u8] = b"0123456789abcdefghij";

/// A parsed raw response.
#[derive(Debug)]
struct Raw {
    status_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, request: &str) -> Raw {
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).await.unwrap();
    let split = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete head");
    let head = String::from_utf8(bytes[..split].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap().to_string();
    let headers = lines
        .map(|line| {
            let (name, value) = line.split_once(':').unwrap();
            (name.trim().to_string(), value.trim().to_string())
        })
        .collect();
    Raw {
        status_line,
        headers,
        body: bytes[split + 4..].to_vec(),
    }
}

/// Sends `method target` with extra header lines and `Connection: close`.
async fn send(addr: SocketAddr, method: &str, target: &str, extra: &[&str]) -> Raw {
    let stream = TcpStream::connect(addr).await.unwrap();
    exchange(stream, &request_text(method, target, extra)).await
}

fn request_text(method: &str, target: &str, extra: &[&str]) -> String {
    let mut request =
        format!("{method} {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for line in extra {
        request.push_str(line);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    request
}

fn etag_of(content: &[u8]) -> String {
    let digest = Sha256::digest(content);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

async fn server() -> Server {
    let server = Server::builder()
        .bind("127.0.0.1:0".parse().unwrap())
        .artifact(Artifact::from_bytes("tool.bin", CONTENT).unwrap())
        .start()
        .await
        .unwrap();
    server
        .artifacts()
        .register_bytes("empty", Vec::new())
        .unwrap();
    server
}

#[tokio::test]
async fn get_serves_the_content_with_length_and_strong_etag() {
    let server = server().await;
    let r = send(server.local_addr(), "GET", "/artifacts/tool.bin", &[]).await;
    assert_eq!(r.status_line, "HTTP/1.1 200 OK");
    assert_eq!(r.header("content-length"), Some("20"));
    assert_eq!(r.header("etag"), Some(etag_of(CONTENT).as_str()));
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    assert_eq!(r.body, CONTENT);
    // A query (the version the URI helper adds) does not change what is served.
    let r = send(
        server.local_addr(),
        "GET",
        "/artifacts/tool.bin?v=0123",
        &[],
    )
    .await;
    assert_eq!(r.status_line, "HTTP/1.1 200 OK");
    assert_eq!(r.body, CONTENT);
    let r = send(server.local_addr(), "GET", "/artifacts/empty", &[]).await;
    assert_eq!(r.status_line, "HTTP/1.1 200 OK");
    assert_eq!(r.header("content-length"), Some("0"));
    assert!(r.body.is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn head_has_the_headers_of_get_and_no_body() {
    let server = server().await;
    let r = send(server.local_addr(), "HEAD", "/artifacts/tool.bin", &[]).await;
    assert_eq!(r.status_line, "HTTP/1.1 200 OK");
    assert_eq!(r.header("content-length"), Some("20"));
    assert_eq!(r.header("etag"), Some(etag_of(CONTENT).as_str()));
    assert!(r.body.is_empty());
    let r = send(
        server.local_addr(),
        "HEAD",
        "/artifacts/tool.bin",
        &["Range: bytes=0-3"],
    )
    .await;
    assert_eq!(r.status_line, "HTTP/1.1 206 Partial Content");
    assert_eq!(r.header("content-length"), Some("4"));
    assert!(r.body.is_empty());
    let r = send(server.local_addr(), "HEAD", "/artifacts/missing", &[]).await;
    assert_eq!(r.status_line, "HTTP/1.1 404 Not Found");
    server.shutdown().await;
}

#[tokio::test]
async fn if_none_match_answers_304() {
    let server = server().await;
    let addr = server.local_addr();
    let etag = etag_of(CONTENT);
    let matching = format!("If-None-Match: {etag}");
    let r = send(addr, "GET", "/artifacts/tool.bin", &[&matching]).await;
    assert_eq!(r.status_line, "HTTP/1.1 304 Not Modified");
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    assert!(r.body.is_empty());
    let r = send(addr, "HEAD", "/artifacts/tool.bin", &[&matching]).await;
    assert_eq!(r.status_line, "HTTP/1.1 304 Not Modified");
    let listed = format!("If-None-Match: \"other\", W/{etag}");
    let r = send(addr, "GET", "/artifacts/tool.bin", &[&listed]).await;
    assert_eq!(r.status_line, "HTTP/1.1 304 Not Modified");
    let r = send(addr, "GET", "/artifacts/tool.bin", &["If-None-Match: *"]).await;
    assert_eq!(r.status_line, "HTTP/1.1 304 Not Modified");
    let r = send(
        addr,
        "GET",
        "/artifacts/tool.bin",
        &["If-None-Match: \"stale\""],
    )
    .await;
    assert_eq!(r.status_line, "HTTP/1.1 200 OK");
    assert_eq!(r.body, CONTENT);
    // New content under the same name gets a new ETag: the old one no longer matches.
    server
        .artifacts()
        .register_bytes("tool.bin", &b"new content"[..])
        .unwrap();
    let r = send(addr, "GET", "/artifacts/tool.bin", &[&matching]).await;
    assert_eq!(r.status_line, "HTTP/1.1 200 OK");
    assert_eq!(r.body, b"new content");
    assert_eq!(r.header("etag"), Some(etag_of(b"new content").as_str()));
    server.shutdown().await;
}

#[tokio::test]
async fn single_ranges_get_206_and_unsatisfiable_ones_416() {
    let server = server().await;
    let addr = server.local_addr();
    let cases: &[(&str, &str, &str, &[u8])] = &[
        (
            "bytes=2-5",
            "HTTP/1.1 206 Partial Content",
            "bytes 2-5/20",
            b"2345",
        ),
        (
            "bytes=15-",
            "HTTP/1.1 206 Partial Content",
            "bytes 15-19/20",
            b"fghij",
        ),
        (
            "bytes=-3",
            "HTTP/1.1 206 Partial Content",
            "bytes 17-19/20",
            b"hij",
        ),
        (
            "bytes=18-99",
            "HTTP/1.1 206 Partial Content",
            "bytes 18-19/20",
            b"ij",
        ),
        (
            "bytes=20-",
            "HTTP/1.1 416 Range Not Satisfiable",
            "bytes */20",
            b"",
        ),
        (
            "bytes=-0",
            "HTTP/1.1 416 Range Not Satisfiable",
            "bytes */20",
            b"",
        ),
    ];
    for (range, status, content_range, body) in cases {
        let header = format!("Range: {range}");
        let r = send(addr, "GET", "/artifacts/tool.bin", &[&header]).await;
        assert_eq!(r.status_line, *status, "{range}");
        assert_eq!(r.header("content-range"), Some(*content_range), "{range}");
        assert_eq!(
            r.header("content-length"),
            Some(body.len().to_string().as_str()),
            "{range}"
        );
        assert_eq!(r.body, *body, "{range}");
    }
    // Several ranges, or one that does not parse: the whole content with 200.
    for range in ["bytes=0-1,4-5", "bytes=5-2", "lines=1-2"] {
        let header = format!("Range: {range}");
        let r = send(addr, "GET", "/artifacts/tool.bin", &[&header]).await;
        assert_eq!(r.status_line, "HTTP/1.1 200 OK", "{range}");
        assert_eq!(r.header("content-range"), None, "{range}");
        assert_eq!(r.body, CONTENT, "{range}");
    }
    // If-Range: the range applies only while the ETag still matches.
    let if_range = format!("If-Range: {}", etag_of(CONTENT));
    let r = send(
        addr,
        "GET",
        "/artifacts/tool.bin",
        &["Range: bytes=0-0", &if_range],
    )
    .await;
    assert_eq!(r.status_line, "HTTP/1.1 206 Partial Content");
    assert_eq!(r.body, b"0");
    let r = send(
        addr,
        "GET",
        "/artifacts/tool.bin",
        &["Range: bytes=0-0", "If-Range: \"old\""],
    )
    .await;
    assert_eq!(r.status_line, "HTTP/1.1 200 OK");
    assert_eq!(r.body, CONTENT);
    // Any range of an empty artifact is unsatisfiable.
    let r = send(addr, "GET", "/artifacts/empty", &["Range: bytes=0-"]).await;
    assert_eq!(r.status_line, "HTTP/1.1 416 Range Not Satisfiable");
    assert_eq!(r.header("content-range"), Some("bytes */0"));
    server.shutdown().await;
}

#[tokio::test]
async fn traversal_attempts_and_unknown_names_get_404() {
    // A file next to the working directory that a traversal would reach if paths hit the disk.
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, b"secret").unwrap();
    let secret_path = secret.to_str().unwrap().to_string();
    let server = server().await;
    let addr = server.local_addr();
    let encoded_secret = secret_path.replace('/', "%2F");
    let targets = [
        "/artifacts/../artifacts/tool.bin".to_string(),
        "/artifacts/..".to_string(),
        "/artifacts/.".to_string(),
        "/artifacts/%2e%2e".to_string(),
        "/artifacts/%2E%2E/%2E%2E/etc/passwd".to_string(),
        "/artifacts/..%2F..%2Fetc%2Fpasswd".to_string(),
        "/artifacts/%2Fetc%2Fpasswd".to_string(),
        format!("/artifacts/{encoded_secret}"),
        format!("/artifacts/..%2F..%2F..%2F..%2F..%2F..%2F..{encoded_secret}"),
        "/artifacts//etc/passwd".to_string(),
        "/artifacts/tool.bin/".to_string(),
        "/artifacts/tool.bin/..".to_string(),
        "/artifacts/tool%2Ebin".to_string(),
        "/artifacts/tool.bin%00".to_string(),
        "/artifacts/TOOL.BIN".to_string(),
        "/artifacts/".to_string(),
        "/artifacts".to_string(),
        "/etc/passwd".to_string(),
        secret_path.clone(),
        "/tool.bin".to_string(),
        "/artifacts/unknown".to_string(),
    ];
    for target in &targets {
        let r = send(addr, "GET", target, &[]).await;
        assert_eq!(r.status_line, "HTTP/1.1 404 Not Found", "{target}");
        assert!(!r.body.windows(6).any(|w| w == b"secret"), "{target}");
    }
    // An absolute-form request target still names only the path.
    let absolute = format!("http://{addr}/etc/passwd");
    let r = send(addr, "GET", &absolute, &[]).await;
    assert_eq!(r.status_line, "HTTP/1.1 404 Not Found");
    let absolute = format!("http://{addr}/artifacts/tool.bin");
    let r = send(addr, "GET", &absolute, &[]).await;
    assert_eq!(r.status_line, "HTTP/1.1 200 OK");
    // Unregistered names disappear at once.
    assert!(server.artifacts().unregister("tool.bin").is_some());
    let r = send(addr, "GET", "/artifacts/tool.bin", &[]).await;
    assert_eq!(r.status_line, "HTTP/1.1 404 Not Found");
    server.shutdown().await;
}

#[tokio::test]
async fn health_metrics_state_and_user_routes_share_the_server() {
    let (state_tx, state_rx) = tokio::sync::watch::channel(serde_json::json!({"tasks": 0}));
    let user = axum::Router::new().route("/hello", axum::routing::get(|| async { "hello\n" }));
    let server = Server::builder()
        .state(WatchState(state_rx))
        .routes(user)
        .start()
        .await
        .unwrap();
    let addr = server.local_addr();
    server
        .artifacts()
        .register_bytes("exec", &b"#!/bin/sh\n"[..])
        .unwrap();
    let r = send(addr, "GET", "/health", &[]).await;
    assert_eq!(r.status_line, "HTTP/1.1 200 OK");
    assert_eq!(r.body, b"ok\n");

    state_tx.send_replace(serde_json::json!({"tasks": 3, "leader": true}));
    let r = send(addr, "GET", "/state", &[]).await;
    assert_eq!(r.status_line, "HTTP/1.1 200 OK");
    assert_eq!(r.header("content-type"), Some("application/json"));
    let json: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(json, serde_json::json!({"tasks": 3, "leader": true}));

    let r = send(addr, "GET", "/hello", &[]).await;
    assert_eq!(r.status_line, "HTTP/1.1 200 OK");
    assert_eq!(r.body, b"hello\n");
    let r = send(addr, "GET", "/nobody-serves-this", &[]).await;
    assert_eq!(r.status_line, "HTTP/1.1 404 Not Found");

    send(addr, "GET", "/artifacts/exec", &[]).await;
    send(addr, "GET", "/artifacts/nope", &[]).await;
    let counter = prometheus_client::metrics::counter::Counter::<u64>::default();
    server
        .metrics()
        .register("framework_launches", "Tasks launched", counter.clone());
    counter.inc_by(7);
    let r = send(addr, "GET", "/metrics", &[]).await;
    assert_eq!(r.status_line, "HTTP/1.1 200 OK");
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = String::from_utf8(r.body).unwrap();
    assert!(
        text.contains("mesos_sdk_artifact_requests_total{artifact=\"exec\",status=\"200\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("mesos_sdk_artifact_requests_total{artifact=\"unknown\",status=\"404\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("mesos_sdk_artifact_bytes_sent_total{artifact=\"exec\"} 10"),
        "{text}"
    );
    assert!(text.contains("framework_launches_total 7"), "{text}");
    assert!(text.ends_with("# EOF\n"), "{text}");
    server.shutdown().await;
}

#[tokio::test]
async fn state_is_404_without_a_provider_and_closures_provide_it() {
    let server = Server::builder().start().await.unwrap();
    let r = send(server.local_addr(), "GET", "/state", &[]).await;
    assert_eq!(r.status_line, "HTTP/1.1 404 Not Found");
    server.shutdown().await;
    let server = Server::builder()
        .state(|| serde_json::json!(["a"]))
        .start()
        .await
        .unwrap();
    let r = send(server.local_addr(), "GET", "/state", &[]).await;
    assert_eq!(r.body, b"[\"a\"]");
    server.shutdown().await;
}

#[tokio::test]
async fn uris_use_the_advertised_address() {
    let server = Server::builder()
        .advertised_host("scheduler.example.com")
        .advertised_port(8443)
        .start()
        .await
        .unwrap();
    let artifact = server
        .artifacts()
        .register_bytes("exec", &b"x"[..])
        .unwrap();
    let uri = server
        .artifacts()
        .uri("exec")
        .unwrap()
        .executable(true)
        .build();
    assert_eq!(
        uri.value,
        format!(
            "http://scheduler.example.com:8443/artifacts/exec?v={}",
            &artifact.sha256()[..16]
        )
    );
    server.shutdown().await;
    let server = Server::builder().start().await.unwrap();
    assert_eq!(
        server.base_url(),
        format!("http://127.0.0.1:{}", server.local_addr().port())
    );
    server.shutdown().await;
    let server = Server::builder()
        .advertised_host("fd00::1")
        .start()
        .await
        .unwrap();
    assert_eq!(
        server.base_url(),
        format!("http://[fd00::1]:{}", server.local_addr().port())
    );
    server.shutdown().await;
}

fn tls_server_config() -> Arc<rustls::ServerConfig> {
    let certs = rustls_pemfile::certs(&mut tls_fixtures::SERVER_CERT_PEM.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = rustls_pemfile::private_key(&mut tls_fixtures::SERVER_KEY_PEM.as_bytes())
        .unwrap()
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    Arc::new(config)
}

#[tokio::test]
async fn tls_serves_the_same_routes() {
    let server = Server::builder()
        .tls(tls_server_config())
        .advertised_host("localhost")
        .artifact(Artifact::from_bytes("tool.bin", CONTENT).unwrap())
        .start()
        .await
        .unwrap();
    assert!(server.base_url().starts_with("https://localhost:"));
    let client =
        mesos_sdk::client::tls_client_config(&[tls_fixtures::CA_PEM.as_bytes().to_vec()]).unwrap();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let tcp = TcpStream::connect(server.local_addr()).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = connector.connect(name, tcp).await.unwrap();
    let r = exchange(
        tls,
        &request_text("GET", "/artifacts/tool.bin", &["Range: bytes=0-1"]),
    )
    .await;
    assert_eq!(r.status_line, "HTTP/1.1 206 Partial Content");
    assert_eq!(r.body, b"01");
    // A plain-HTTP request on the TLS port does not get an answer.
    let mut plain = TcpStream::connect(server.local_addr()).await.unwrap();
    plain
        .write_all(request_text("GET", "/health", &[]).as_bytes())
        .await
        .unwrap();
    let mut bytes = Vec::new();
    let _ = plain.read_to_end(&mut bytes).await;
    assert!(!bytes.starts_with(b"HTTP/1.1 200"));
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_the_listener() {
    let server = server().await;
    let addr = server.local_addr();
    let r = send(addr, "GET", "/health", &[]).await;
    assert_eq!(r.status_line, "HTTP/1.1 200 OK");
    server.shutdown().await;
    assert!(TcpStream::connect(addr).await.is_err());
}

/// A user route that tells the test when a request is inside it, and waits for the test's go.
fn gated_route() -> (
    axum::Router,
    tokio::sync::mpsc::Receiver<()>,
    Arc<tokio::sync::Notify>,
) {
    let (entered_tx, entered_rx) = tokio::sync::mpsc::channel(1);
    let go = Arc::new(tokio::sync::Notify::new());
    let gate = go.clone();
    let router = axum::Router::new().route(
        "/slow",
        axum::routing::get(move || {
            let entered = entered_tx.clone();
            let gate = gate.clone();
            async move {
                let _ = entered.send(()).await;
                gate.notified().await;
                "done\n"
            }
        }),
    );
    (router, entered_rx, go)
}

#[tokio::test]
async fn shutdown_lets_a_request_in_flight_finish() {
    let (router, mut entered, go) = gated_route();
    let server = Server::builder().routes(router).start().await.unwrap();
    let addr = server.local_addr();
    let request = tokio::spawn(async move { send(addr, "GET", "/slow", &[]).await });
    entered.recv().await.unwrap();
    let shutdown = tokio::spawn(server.shutdown());
    go.notify_one();
    let r = request.await.unwrap();
    assert_eq!(r.status_line, "HTTP/1.1 200 OK");
    assert_eq!(r.body, b"done\n");
    shutdown.await.unwrap();
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn shutdown_drops_what_is_left_after_the_grace_period() {
    let (router, mut entered, _go) = gated_route();
    let server = Server::builder()
        .routes(router)
        .shutdown_grace(std::time::Duration::from_millis(50))
        .start()
        .await
        .unwrap();
    let addr = server.local_addr();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(request_text("GET", "/slow", &[]).as_bytes())
        .await
        .unwrap();
    entered.recv().await.unwrap();
    // The handler never finishes: shutdown returns after the grace period and the connection
    // is closed without an answer.
    server.shutdown().await;
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes).await;
    assert!(bytes.is_empty(), "{}", String::from_utf8_lossy(&bytes));
}

/// A port still held when the server starts: with the default `bind_wait` the server takes it
/// once it is given up; with no wait it fails at once with the typed bind error.
#[tokio::test]
async fn a_port_in_use_is_tried_again_for_bind_wait() {
    use std::time::{Duration, Instant};

    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = holder.local_addr().unwrap();

    let started = Instant::now();
    let refused = Server::builder()
        .bind(addr)
        .bind_wait(Duration::ZERO)
        .start()
        .await
        .expect_err("the port is taken");
    assert!(
        matches!(&refused, mesos_sdk::server::ServerError::Bind { addr: a, source }
            if *a == addr && source.kind() == std::io::ErrorKind::AddrInUse),
        "{refused}"
    );
    assert!(started.elapsed() < Duration::from_secs(1));

    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        drop(holder);
    });
    let server = Server::builder()
        .bind(addr)
        .start()
        .await
        .expect("bound once the holder let go");
    assert_eq!(server.local_addr(), addr);
    release.await.unwrap();
    server.shutdown().await;
}
