//! Test support for the embedded master: a raw HTTP/1.1 client over `TcpStream` (exact status
//! lines, headers and bodies, chunked decoding, RecordIO records) and an agent that speaks to the
//! master over the real in-process link.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use mesos_local::link::{AgentMessage, FromAgent, MasterLink, ToAgent};
use mesos_local::master::{Master, MasterConfig, MasterHandle};
use mesos_sdk::resourcemgr::{parse_attributes, parse_resources};
use mesos_sdk::v1::{AgentId, AgentInfo, FrameworkId, TaskStatus, task_status};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// Generous bound on any wait.
pub const WAIT: Duration = Duration::from_secs(10);

/// A master with short intervals for tests.
pub async fn start_master(tweak: impl FnOnce(&mut MasterConfig)) -> MasterHandle {
    let mut config = MasterConfig {
        heartbeat_interval: Duration::from_secs(30),
        allocation_interval: Duration::from_millis(50),
        ..Default::default()
    };
    tweak(&mut config);
    Master::start(config).await.unwrap()
}

/// A whole HTTP response.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

fn request_bytes(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Reads the status line and headers; returns them and what was read past them.
async fn read_head(stream: &mut TcpStream) -> (u16, Vec<(String, String)>, BytesMut) {
    let mut buf = BytesMut::new();
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8(buf[..end].to_vec()).unwrap();
            buf.advance(end + 4);
            let mut lines = head.split("\r\n");
            let status_line = lines.next().unwrap();
            let status: u16 = status_line.split(' ').nth(1).unwrap().parse().unwrap();
            let headers = lines
                .map(|l| {
                    let (n, v) = l.split_once(':').unwrap();
                    (n.trim().to_ascii_lowercase(), v.trim().to_string())
                })
                .collect();
            return (status, headers, buf);
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(WAIT, stream.read(&mut chunk))
            .await
            .expect("response head in time")
            .unwrap();
        assert!(n > 0, "connection closed before the response head");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// One request on a fresh connection (`Connection: close`), whole response read.
pub async fn raw(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> RawResponse {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut all_headers = headers.to_vec();
    all_headers.push(("Connection", "close"));
    stream
        .write_all(&request_bytes(method, path, &all_headers, body))
        .await
        .unwrap();
    let (status, headers, mut rest) = read_head(&mut stream).await;
    let mut tail = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut tail))
        .await
        .expect("response body in time")
        .unwrap();
    rest.extend_from_slice(&tail);
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        let mut decoder = Dechunker::default();
        decoder.feed(&rest);
        decoder.out.freeze()
    } else {
        rest.freeze()
    };
    RawResponse {
        status,
        headers,
        body,
    }
}

/// POSTs `body` to the scheduler endpoint with the given content type and stream id.
pub async fn post_scheduler(
    addr: SocketAddr,
    content_type: &str,
    stream_id: Option<&str>,
    body: &[u8],
) -> RawResponse {
    let mut headers = vec![("Content-Type", content_type)];
    if let Some(id) = stream_id {
        headers.push(("Mesos-Stream-Id", id));
    }
    raw(addr, "POST", "/api/v1/scheduler", &headers, body).await
}

/// POSTs a JSON call with the stream id.
pub async fn call(addr: SocketAddr, stream_id: &str, body: Value) -> RawResponse {
    post_scheduler(
        addr,
        "application/json",
        Some(stream_id),
        body.to_string().as_bytes(),
    )
    .await
}

/// Incremental chunked-transfer decoder.
#[derive(Default)]
struct Dechunker {
    buf: BytesMut,
    remaining: Option<usize>,
    out: BytesMut,
    done: bool,
}

impl Dechunker {
    fn feed(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
        loop {
            match self.remaining {
                None => {
                    let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") else {
                        return;
                    };
                    let line = String::from_utf8(self.buf[..end].to_vec()).unwrap();
                    let size =
                        usize::from_str_radix(line.split(';').next().unwrap().trim(), 16).unwrap();
                    self.buf.advance(end + 2);
                    if size == 0 {
                        self.done = true;
                        return;
                    }
                    self.remaining = Some(size);
                }
                Some(size) => {
                    if self.buf.len() < size + 2 {
                        return;
                    }
                    self.out.extend_from_slice(&self.buf[..size]);
                    self.buf.advance(size + 2);
                    self.remaining = None;
                }
            }
        }
    }
}

/// An open streaming response (SUBSCRIBE), read record by record.
pub struct Stream {
    stream: TcpStream,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    chunks: Dechunker,
    records: BytesMut,
    backlog: std::collections::VecDeque<Value>,
}

impl Stream {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn stream_id(&self) -> String {
        self.header("mesos-stream-id").unwrap().to_string()
    }

    /// Every raw byte of the body decoded so far (records not yet taken).
    pub fn pending(&self) -> &[u8] {
        &self.records
    }

    fn take_record(&mut self) -> Option<Bytes> {
        let nl = self.records.iter().position(|b| *b == b'\n')?;
        let len: usize = std::str::from_utf8(&self.records[..nl])
            .unwrap()
            .parse()
            .unwrap();
        if self.records.len() < nl + 1 + len {
            return None;
        }
        self.records.advance(nl + 1);
        Some(self.records.split_to(len).freeze())
    }

    /// The next RecordIO record, or `None` when the stream ended.
    pub async fn next_record(&mut self) -> Option<Bytes> {
        self.next_record_within(WAIT)
            .await
            .expect("a record or the end of the stream in time")
    }

    /// `Err(())` on timeout, `Ok(None)` on end of stream.
    pub async fn next_record_within(&mut self, wait: Duration) -> Result<Option<Bytes>, ()> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(record) = self.take_record() {
                return Ok(Some(record));
            }
            if self.chunks.done {
                return Ok(None);
            }
            let mut chunk = [0u8; 16384];
            let n = match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Err(_) => return Err(()),
                Ok(Ok(n)) => n,
                Ok(Err(_)) => 0,
            };
            if n == 0 {
                return Ok(self.take_record());
            }
            self.chunks.feed(&chunk[..n]);
            let out = self.chunks.out.split();
            self.records.extend_from_slice(&out);
        }
    }

    /// The next JSON event (events skipped by [`Stream::next_of`] first).
    pub async fn next_json(&mut self) -> Value {
        if let Some(event) = self.backlog.pop_front() {
            return event;
        }
        let record = self.next_record().await.expect("an event, not the end");
        serde_json::from_slice(&record).unwrap()
    }

    /// The next JSON event whose type is not HEARTBEAT.
    pub async fn next_non_heartbeat(&mut self) -> Value {
        loop {
            let event = self.next_json().await;
            if event["type"] != "HEARTBEAT" {
                return event;
            }
        }
    }

    /// The next event of type `kind`; other events except HEARTBEAT are kept for later.
    pub async fn next_of(&mut self, kind: &str) -> Value {
        if let Some(pos) = self.backlog.iter().position(|e| e["type"] == kind) {
            return self.backlog.remove(pos).unwrap();
        }
        loop {
            let record = self.next_record().await.expect("an event, not the end");
            let event: Value = serde_json::from_slice(&record).unwrap();
            if event["type"] == kind {
                return event;
            }
            if event["type"] != "HEARTBEAT" {
                self.backlog.push_back(event);
            }
        }
    }

    /// Asserts that no event other than HEARTBEAT arrives within `wait`.
    pub async fn expect_quiet(&mut self, wait: Duration) {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_record_within(left).await {
                Err(()) => return,
                Ok(None) => panic!("stream ended"),
                Ok(Some(record)) => {
                    let event: Value = serde_json::from_slice(&record).unwrap();
                    assert_eq!(event["type"], "HEARTBEAT", "unexpected event {event}");
                }
            }
        }
    }
}

/// Opens a streaming POST (SUBSCRIBE) and reads its head.
pub async fn open_stream(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Stream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(&request_bytes("POST", path, headers, body))
        .await
        .unwrap();
    let (status, headers, rest) = read_head(&mut stream).await;
    let mut chunks = Dechunker::default();
    chunks.feed(&rest);
    let records = chunks.out.split();
    Stream {
        stream,
        status,
        headers,
        chunks,
        records,
        backlog: Default::default(),
    }
}

/// A minimal FrameworkInfo as JSON.
pub fn framework_info(name: &str) -> Value {
    json!({"user": "tester", "name": name})
}

/// SUBSCRIBEs with JSON and returns the stream after its SUBSCRIBED event.
pub async fn subscribe(addr: SocketAddr, framework_info: Value) -> (Stream, String) {
    let id = framework_info.get("id").cloned();
    let mut body = json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": framework_info}});
    if let Some(id) = id {
        body["framework_id"] = id;
    }
    let mut stream = open_stream(
        addr,
        "/api/v1/scheduler",
        &[
            ("Content-Type", "application/json"),
            ("Accept", "application/json"),
        ],
        body.to_string().as_bytes(),
    )
    .await;
    assert_eq!(stream.status, 200);
    let subscribed = stream.next_json().await;
    assert_eq!(subscribed["type"], "SUBSCRIBED", "{subscribed}");
    let framework_id = subscribed["subscribed"]["framework_id"]["value"]
        .as_str()
        .unwrap()
        .to_string();
    (stream, framework_id)
}

/// An agent played by the test over the real link.
pub struct LinkAgent {
    pub id: String,
    pub master: MasterLink,
    pub inbox: mpsc::UnboundedReceiver<ToAgent>,
}

impl LinkAgent {
    /// Registers an agent with `resources` (Mesos text) and `attributes`.
    pub fn register(master: &MasterHandle, id: &str, resources: &str, attributes: &str) -> Self {
        Self::register_recovered(master, id, resources, attributes, Vec::new(), Vec::new())
    }

    /// Registers an agent that recovered `frameworks` and `tasks` from its checkpoints.
    pub fn register_recovered(
        master: &MasterHandle,
        id: &str,
        resources: &str,
        attributes: &str,
        frameworks: Vec<mesos_sdk::v1::FrameworkInfo>,
        tasks: Vec<mesos_sdk::v1::Task>,
    ) -> Self {
        let (link, inbox) = mpsc::unbounded_channel();
        let info = AgentInfo {
            hostname: format!("{id}.local"),
            port: Some(5051),
            resources: parse_resources(resources).unwrap(),
            attributes: parse_attributes(attributes).unwrap(),
            id: Some(AgentId { value: id.into() }),
            domain: None,
        };
        let master_link = master.link();
        master_link
            .send(AgentMessage {
                agent_id: AgentId { value: id.into() },
                message: FromAgent::Register {
                    info,
                    link,
                    url: "http://127.0.0.1:5051".into(),
                    frameworks,
                    executors: Vec::new(),
                    tasks,
                },
            })
            .unwrap();
        Self {
            id: id.into(),
            master: master_link,
            inbox,
        }
    }

    /// The next command from the master.
    pub async fn next(&mut self) -> ToAgent {
        tokio::time::timeout(WAIT, self.inbox.recv())
            .await
            .expect("a command from the master in time")
            .expect("link open")
    }

    /// Sends a status update for `task_id` with a fresh uuid; returns the uuid.
    pub fn update(
        &self,
        framework_id: &str,
        task_id: &str,
        state: mesos_sdk::v1::TaskState,
    ) -> Bytes {
        let uuid = Bytes::copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        let status = TaskStatus {
            task_id: mesos_sdk::v1::TaskId {
                value: task_id.into(),
            },
            state: state as i32,
            source: Some(task_status::Source::Executor as i32),
            agent_id: Some(AgentId {
                value: self.id.clone(),
            }),
            uuid: Some(uuid.clone()),
            timestamp: Some(1.0),
            ..Default::default()
        };
        self.master
            .send(AgentMessage {
                agent_id: AgentId {
                    value: self.id.clone(),
                },
                message: FromAgent::StatusUpdate {
                    framework_id: FrameworkId {
                        value: framework_id.into(),
                    },
                    status,
                },
            })
            .unwrap();
        uuid
    }
}

/// Base64 of raw bytes (standard, padded), as Mesos JSON writes bytes.
pub fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Map of resource name to scalar value in an offer's JSON resources.
pub fn scalars(resources: &Value) -> HashMap<String, f64> {
    resources
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["type"] == "SCALAR")
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_string(),
                r["scalar"]["value"].as_f64().unwrap(),
            )
        })
        .collect()
}
