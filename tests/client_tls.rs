//! `https` endpoints: the client trusts a custom CA given as PEM, refuses an unknown one, and
//! both calls and subscriptions run over TLS.
//!
//! The certificates below were generated for these tests only (a throwaway CA and a `localhost` /
//! `127.0.0.1` server certificate valid for 100 years).

#[path = "common/scripted.rs"]
mod scripted;
#[path = "common/tls_fixtures.rs"]
mod tls_fixtures;

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use mesos_sdk::client::{CallRequest, Client, ErrorKind};
use scripted::{Reply, ScriptedServer};
use tls_fixtures::{CA_PEM, SERVER_CERT_PEM, SERVER_KEY_PEM};

fn request(stream_id: Option<&str>) -> CallRequest {
    CallRequest {
        path: "/api/v1/scheduler".into(),
        body: Bytes::from_static(b"body"),
        stream_id: stream_id.map(str::to_owned),
    }
}

async fn tls_server() -> ScriptedServer {
    ScriptedServer::start_tls(SERVER_CERT_PEM, SERVER_KEY_PEM, |req| async move {
        if req.header("mesos-stream-id").is_some() {
            Reply::empty(202)
        } else {
            let (reply, handle) = Reply::stream("application/x-protobuf", Some("tls-stream"));
            handle.record(b"over tls");
            std::mem::forget(handle);
            reply
        }
    })
    .await
}

#[tokio::test]
async fn custom_ca_is_trusted_for_calls_and_subscriptions() {
    let server = tls_server().await;
    for url in [
        server.https_url(),
        format!("https://{}", server.authority()),
    ] {
        let client = Client::builder()
            .endpoint(&url)
            .add_ca_pem(CA_PEM)
            .webpki_roots(false)
            .call_timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let response = client.call(request(Some("s"))).await.unwrap();
        assert_eq!(response.status.as_u16(), 202, "{url}");
        let sub = client.subscribe(request(None)).await.unwrap();
        assert_eq!(sub.stream_id.as_deref(), Some("tls-stream"));
        assert_eq!(sub.endpoint.scheme_str(), Some("https"));
        let mut records = sub.into_records();
        assert_eq!(&records.next().await.unwrap().unwrap()[..], b"over tls");
    }
}

#[tokio::test]
async fn unknown_ca_is_refused() {
    let server = tls_server().await;
    let client = Client::builder()
        .endpoint(server.https_url())
        .retry_backoff(Duration::from_millis(1), Duration::from_millis(5))
        .max_attempts(1)
        .build()
        .unwrap();
    let err = client.subscribe(request(None)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    let err = client.call(request(Some("s"))).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    assert!(server.requests().is_empty());
}
