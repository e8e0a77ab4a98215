//! Fuzzing entry points over arbitrary bytes, shared by the cargo-fuzz targets
//! (`fuzz/fuzz_targets/`, run on nightly) and the proptest byte fuzzers of the root crate
//! (`tests/fuzz_inputs.rs`, run on stable, which includes this file as a module).
//!
//! Each entry point must never panic on any input; where a property holds it is asserted:
//! - [`recordio`]: framing and typed decoding give the same records whatever the chunking;
//! - [`json_decode`]: whatever Mesos JSON decodes, the SDK encodes and decodes again to the
//!   same JSON (it never refuses its own output);
//! - [`json_round_trip`]: any typed message (from protobuf bytes) that the JSON codec decodes
//!   back re-encodes to the same JSON;
//! - [`text_parsers`]: a parsed duration formats and parses back to itself; the resource and
//!   attribute parsers return errors, not panics;
//! - [`master_http`] / [`agent_http`]: a request (method, path, headers, body) sent to a real
//!   embedded master or agent over loopback gets an HTTP answer, and the server still answers
//!   `/health` afterwards. mesos-local has no public in-process router, so these go through a
//!   real loopback connection to servers started once per process.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use mesos_sdk::codec::{Format, json};
use mesos_sdk::recordio::{MessageDecoder, RecordIoCodec};
use mesos_sdk::v1::{executor, scheduler};
use prost::{Message, Name};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::codec::Decoder;

/// Cuts `payload` into chunks whose sizes cycle through `sizes` (each 1 to 256 bytes).
fn chunked(sizes: &[u8], payload: &[u8]) -> Vec<Bytes> {
    if sizes.is_empty() {
        return vec![Bytes::copy_from_slice(payload)];
    }
    let mut chunks = Vec::new();
    let mut rest = payload;
    let mut index = 0;
    while !rest.is_empty() {
        let size = (usize::from(sizes[index % sizes.len()]) + 1).min(rest.len());
        chunks.push(Bytes::copy_from_slice(&rest[..size]));
        rest = &rest[size..];
        index += 1;
    }
    chunks
}

/// Records framed from `chunks`, and whether framing failed.
fn frames(max: usize, chunks: &[Bytes]) -> (Vec<Bytes>, bool) {
    let mut codec = RecordIoCodec::new(max);
    let mut buffer = BytesMut::new();
    let mut records = Vec::new();
    for chunk in chunks {
        buffer.extend_from_slice(chunk);
        loop {
            match codec.decode(&mut buffer) {
                Ok(Some(record)) => records.push(record),
                Ok(None) => break,
                Err(_) => return (records, true),
            }
        }
    }
    (records, false)
}

/// Messages (as protobuf bytes, so that NaN compares equal) decoded from `chunks`, and whether
/// decoding failed.
fn messages<M: Message + Name + Default>(
    format: Format,
    max: usize,
    chunks: &[Bytes],
) -> (Vec<Vec<u8>>, bool) {
    let mut decoder = MessageDecoder::<M>::new(format, max);
    let mut decoded = Vec::new();
    for chunk in chunks {
        let mut chunk = chunk.clone();
        loop {
            match decoder.decode_chunk(&mut chunk) {
                Ok(Some(message)) => decoded.push(message.encode_to_vec()),
                Ok(None) => break,
                Err(_) => return (decoded, true),
            }
        }
    }
    (decoded, false)
}

/// RecordIO framing and typed decoding (protobuf and JSON scheduler events, JSON executor
/// calls) over arbitrary bytes: the first byte picks the record cap, the second how many of the
/// next bytes give chunk sizes, the rest is the stream. Decoding it whole and in chunks must
/// agree.
pub fn recordio(data: &[u8]) {
    let [cap, count, rest @ ..] = data else {
        return;
    };
    let max = [8, 64, 1024, 1 << 20][usize::from(*cap % 4)];
    let count = usize::from(*count % 16).min(rest.len());
    let (sizes, payload) = rest.split_at(count);
    let whole = [Bytes::copy_from_slice(payload)];
    let pieces = chunked(sizes, payload);
    assert_eq!(frames(max, &whole), frames(max, &pieces), "framing");
    assert_eq!(
        messages::<scheduler::Event>(Format::Protobuf, max, &whole),
        messages::<scheduler::Event>(Format::Protobuf, max, &pieces),
        "protobuf events"
    );
    assert_eq!(
        messages::<scheduler::Event>(Format::Json, max, &whole),
        messages::<scheduler::Event>(Format::Json, max, &pieces),
        "JSON events"
    );
    assert_eq!(
        messages::<executor::Call>(Format::Json, max, &whole),
        messages::<executor::Call>(Format::Json, max, &pieces),
        "JSON executor calls"
    );
}

/// Decodes `data` as Mesos JSON of `M`; what decodes must encode, decode again and re-encode
/// to the same JSON.
fn json_fixpoint<M: Message + Name + Default>(data: &[u8]) {
    let Ok(message) = json::from_slice::<M>(data) else {
        return;
    };
    let text = json::to_vec(&message).expect("a decoded message encodes");
    let again: M = json::from_slice(&text).unwrap_or_else(|err| {
        panic!(
            "{}: own output refused: {err}: {}",
            M::full_name(),
            String::from_utf8_lossy(&text)
        )
    });
    let text_again = json::to_vec(&again).expect("encodes");
    assert_eq!(
        String::from_utf8_lossy(&text),
        String::from_utf8_lossy(&text_again),
        "{}",
        M::full_name()
    );
}

/// The Mesos JSON decoder on arbitrary bytes, as the four scheduler and executor Call and Event
/// types.
pub fn json_decode(data: &[u8]) {
    json_fixpoint::<scheduler::Call>(data);
    json_fixpoint::<scheduler::Event>(data);
    json_fixpoint::<executor::Call>(data);
    json_fixpoint::<executor::Event>(data);
}

/// A typed message from protobuf bytes through the JSON codec and back.
fn protobuf_then_json<M: Message + Name + Default>(data: &[u8]) {
    let Ok(message) = M::decode(data) else {
        return;
    };
    let text = json::to_vec(&message).expect("a typed message encodes as JSON");
    // A required enum holding a number the schema does not know is not written, so the
    // message can come back incomplete; anything that decodes must be stable.
    if let Ok(back) = json::from_slice::<M>(&text) {
        let text_again = json::to_vec(&back).expect("encodes");
        assert_eq!(
            String::from_utf8_lossy(&text),
            String::from_utf8_lossy(&text_again),
            "{}",
            M::full_name()
        );
    }
}

/// JSON encode / decode of any scheduler or executor Call or Event built from protobuf bytes
/// (the first byte picks the type).
pub fn json_round_trip(data: &[u8]) {
    let [kind, rest @ ..] = data else {
        return;
    };
    match kind % 4 {
        0 => protobuf_then_json::<scheduler::Call>(rest),
        1 => protobuf_then_json::<scheduler::Event>(rest),
        2 => protobuf_then_json::<executor::Call>(rest),
        _ => protobuf_then_json::<executor::Event>(rest),
    }
}

/// The duration, resource and attribute parsers on arbitrary text.
pub fn text_parsers(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(duration) = mesos_sdk::duration::parse_duration(&text) {
        let formatted = mesos_sdk::duration::format_duration(duration);
        assert_eq!(
            mesos_sdk::duration::parse_duration(&formatted),
            Ok(duration),
            "{text:?} -> {formatted:?}"
        );
    }
    let _ = mesos_sdk::resourcemgr::parse_resources(&text);
    let _ = mesos_sdk::resourcemgr::parse_attributes(&text);
}

/// A master and an agent on loopback, started once per process, with the runtime they run on.
struct Servers {
    runtime: tokio::runtime::Runtime,
    master: SocketAddr,
    agent: SocketAddr,
}

fn servers() -> &'static Servers {
    static SERVERS: OnceLock<Servers> = OnceLock::new();
    SERVERS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let (master, agent) = runtime.block_on(async {
            let config = mesos_local::master::MasterConfig {
                port: 0,
                ..Default::default()
            };
            let master = mesos_local::master::Master::start(config)
                .await
                .expect("the master starts");
            let agent = mesos_local::agent::start(Default::default(), master.link())
                .await
                .expect("the agent starts");
            let addresses = (master.addr(), agent.endpoint());
            // Both run for the rest of the process.
            std::mem::forget(master);
            std::mem::forget(agent);
            addresses
        });
        Servers {
            runtime,
            master,
            agent,
        }
    })
}

const MASTER_PATHS: &[&str] = &[
    "/api/v1/scheduler",
    "/api/v1",
    "/master/api/v1/scheduler",
    "/state",
    "/master/state.json",
    "/health",
    "/redirect",
    "/nope",
];
const AGENT_PATHS: &[&str] = &["/api/v1/executor", "/api/v1", "/state", "/health", "/x"];
const METHODS: &[&str] = &["POST", "GET", "PUT", "DELETE", "OPTIONS"];
const MEDIA: &[&str] = &[
    "",
    "application/json",
    "application/x-protobuf",
    "application/recordio",
    "text/plain",
    "*/*",
    "application/json;q=0.5, application/x-protobuf",
];

/// Sends one request built from `data` to `addr` and reads the answer's head; `None` when no
/// well-formed answer came within the wait.
async fn exchange(addr: SocketAddr, paths: &[&str], data: &[u8]) -> Option<u16> {
    let [path, method, content_type, accept, extra, body @ ..] = data else {
        return Some(0);
    };
    let path = paths[usize::from(*path) % paths.len()];
    let method = METHODS[usize::from(*method) % METHODS.len()];
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    let content_type = MEDIA[usize::from(*content_type) % MEDIA.len()];
    if !content_type.is_empty() {
        request.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    let accept = MEDIA[usize::from(*accept) % MEDIA.len()];
    if !accept.is_empty() {
        request.push_str(&format!("Accept: {accept}\r\n"));
    }
    if extra & 1 == 1 {
        request.push_str("Mesos-Stream-Id: 00000000-0000-0000-0000-000000000000\r\n");
    }
    if extra & 2 == 2 {
        request.push_str("Authorization: Basic dTpw\r\n");
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let exchange = async {
        let mut tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
        tcp.write_all(request.as_bytes()).await.ok()?;
        tcp.write_all(body).await.ok()?;
        // Only the head: a successful SUBSCRIBE answers with a stream that does not end.
        let mut head = Vec::new();
        let mut buffer = [0u8; 4096];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let read = tcp.read(&mut buffer).await.ok()?;
            if read == 0 {
                break;
            }
            head.extend_from_slice(&buffer[..read]);
        }
        let status = std::str::from_utf8(head.get(9..12)?).ok()?.parse().ok()?;
        head.starts_with(b"HTTP/1.1 ").then_some(status)
    };
    tokio::time::timeout(Duration::from_secs(20), exchange)
        .await
        .ok()
        .flatten()
}

fn http(data: &[u8], pick: impl Fn(&Servers) -> (SocketAddr, &'static [&'static str])) {
    let servers = servers();
    let (addr, paths) = pick(servers);
    servers.runtime.block_on(async {
        let status = exchange(addr, paths, data).await;
        assert!(status.is_some(), "no HTTP answer to {data:?}");
        let health = exchange(addr, &["/health"], &[0, 1, 0, 0, 0]).await;
        assert_eq!(health, Some(200), "/health after {data:?}");
    });
}

/// A request to the embedded master's HTTP server (the first five bytes pick the path, method,
/// `Content-Type`, `Accept` and extra headers; the rest is the body).
pub fn master_http(data: &[u8]) {
    http(data, |servers| (servers.master, MASTER_PATHS));
}

/// A request to an embedded agent's HTTP server (as [`master_http`]).
pub fn agent_http(data: &[u8]) {
    http(data, |servers| (servers.agent, AGENT_PATHS));
}
