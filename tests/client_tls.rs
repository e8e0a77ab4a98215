//! `https` endpoints: the client trusts a custom CA given as PEM, refuses an unknown one, and
//! both calls and subscriptions run over TLS.
//!
//! The certificates below were generated for these tests only (a throwaway CA and a `localhost` /
//! `127.0.0.1` server certificate valid for 100 years).

#[path = "common/scripted.rs"]
mod scripted;

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use mesos_sdk::client::{CallRequest, Client, ErrorKind};
use scripted::{Reply, ScriptedServer};

const CA_PEM: &str = "\
-----BEGIN CERTIFICATE-----\n\
MIIBnzCCAUWgAwIBAgIUcitTWhUS0VCOwedpOYS1G3kaw5YwCgYIKoZIzj0EAwIw\n\
HDEaMBgGA1UEAwwRbWVzb3Mtc2RrIHRlc3QgQ0EwIBcNMjYxMTIyMDQxMDE3WhgP\n\
MjEyNjEwMjkwNDEwMTdaMBwxGjAYBgNVBAMMEW1lc29zLXNkayB0ZXN0IENBMFkw\n\
EwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEm9E4dAKCtbYr3AsTLkm4fooG0KBDA2KZ\n\
/mCv6bJPToasbIS8KYK9Oa2Ee8ec2WdwUZobkGk/95M7ZmBznrumGaNjMGEwHQYD\n\
VR0OBBYEFOt4e2Pl9BPwvZqmt83DKQJw+dIdMB8GA1UdIwQYMBaAFOt4e2Pl9BPw\n\
vZqmt83DKQJw+dIdMA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQDAgEGMAoG\n\
CCqGSM49BAMCA0gAMEUCIH1br2/Zwr9lhduH5WoamRKpP1YaKja45Jb5E1K0vIJ/\n\
AiEAiS/+NwwTHlfh0CTtpXSBTDidnBXtbi9iJziyJsK/fU4=\n\
-----END CERTIFICATE-----\n\
";

const SERVER_CERT_PEM: &str = "\
-----BEGIN CERTIFICATE-----\n\
MIIByDCCAW2gAwIBAgIUFN8VaAyrud+RYNZcppiEUVokiAswCgYIKoZIzj0EAwIw\n\
HDEaMBgGA1UEAwwRbWVzb3Mtc2RrIHRlc3QgQ0EwIBcNMjYxMTIyMDQxMDE3WhgP\n\
MjEyNjEwMjkwNDEwMTdaMBQxEjAQBgNVBAMMCWxvY2FsaG9zdDBZMBMGByqGSM49\n\
AgEGCCqGSM49AwEHA0IABFGCeJQsB7zqaZo4yp5SCW5EPhIqou+pjPdZF4jW08rz\n\
otyHfolHg/IH70TEpmdv2hIC89Y8F+8hJW4sy6oAvp+jgZIwgY8wGgYDVR0RBBMw\n\
EYIJbG9jYWxob3N0hwR/AAABMAwGA1UdEwEB/wQCMAAwDgYDVR0PAQH/BAQDAgeA\n\
MBMGA1UdJQQMMAoGCCsGAQUFBwMBMB0GA1UdDgQWBBSBE15AhpNt9xjWF54bpUdD\n\
MqLOoDAfBgNVHSMEGDAWgBTreHtj5fQT8L2aprfNwykCcPnSHTAKBggqhkjOPQQD\n\
AgNJADBGAiEAp8d5NxKCQcltnKw9g/dNvgzwi0f2oS69b/oElgKxcYQCIQCFREqg\n\
A5gg39xTTP20pi2B9j8XzmSNiuUsz1q20rtjcQ==\n\
-----END CERTIFICATE-----\n\
";

const SERVER_KEY_PEM: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgoV3+4iS084+9irAC\n\
RW5Z21RoaCQlHN9S36SAegvno7yhRANCAARRgniULAe86mmaOMqeUgluRD4SKqLv\n\
qYz3WReI1tPK86Lch36JR4PyB+9ExKZnb9oSAvPWPBfvISVuLMuqAL6f\n\
-----END PRIVATE KEY-----\n\
";

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
        let mut sub = client.subscribe(request(None)).await.unwrap();
        assert_eq!(sub.stream_id.as_deref(), Some("tls-stream"));
        assert_eq!(sub.endpoint.scheme_str(), Some("https"));
        assert_eq!(&sub.records.next().await.unwrap().unwrap()[..], b"over tls");
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
