//! Shared helpers of the embedded agent tests: the test plays the master over the in-process
//! link, serves files over loopback HTTP, and speaks raw HTTP to the agent's executor API.

#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use mesos_local::agent::{self, AgentConfig, AgentHandle};
use mesos_local::link::{AgentLink, AgentMessage, FromAgent, ToAgent};
use mesos_sdk::recordio::RecordIoCodec;
use mesos_sdk::v1::{
    AgentInfo, CommandInfo, ExecutorId, ExecutorInfo, FrameworkId, FrameworkInfo, Task, TaskId,
    TaskInfo, TaskState, TaskStatus, executor_info,
};
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::codec::Decoder;

/// Generous bound on any single wait in these tests.
pub const WAIT: Duration = Duration::from_secs(20);

pub const FRAMEWORK: &str = "fw-test";

/// An agent configuration with short intervals for tests.
pub fn config(work_dir: Option<PathBuf>) -> AgentConfig {
    AgentConfig {
        work_dir,
        status_update_retry_min: Duration::from_millis(200),
        status_update_retry_max: Duration::from_millis(400),
        executor_registration_timeout: Duration::from_secs(10),
        executor_shutdown_grace_period: Duration::from_millis(500),
        executor_reregistration_timeout: Duration::from_millis(2000),
        ..AgentConfig::default()
    }
}

pub fn framework(checkpoint: bool) -> FrameworkInfo {
    FrameworkInfo {
        user: "test".into(),
        name: "agent-test".into(),
        id: Some(FrameworkId {
            value: FRAMEWORK.into(),
        }),
        checkpoint: Some(checkpoint),
        ..Default::default()
    }
}

pub fn framework_id() -> FrameworkId {
    FrameworkId {
        value: FRAMEWORK.into(),
    }
}

pub fn shell(value: &str) -> CommandInfo {
    CommandInfo {
        value: Some(value.into()),
        ..Default::default()
    }
}

pub fn task(id: &str, command: Option<CommandInfo>) -> TaskInfo {
    TaskInfo {
        name: id.into(),
        task_id: TaskId { value: id.into() },
        command,
        ..Default::default()
    }
}

pub fn custom_executor(id: &str, command: CommandInfo) -> ExecutorInfo {
    ExecutorInfo {
        r#type: Some(executor_info::Type::Custom as i32),
        executor_id: ExecutorId { value: id.into() },
        framework_id: Some(framework_id()),
        command: Some(command),
        ..Default::default()
    }
}

pub fn state_of(status: &TaskStatus) -> TaskState {
    TaskState::try_from(status.state).unwrap_or(TaskState::TaskStaging)
}

pub fn is_terminal(state: TaskState) -> bool {
    state.is_terminal()
}

/// What the agent reported in `Register`.
#[derive(Debug)]
pub struct Registration {
    pub info: AgentInfo,
    pub url: String,
    pub frameworks: Vec<FrameworkInfo>,
    pub executors: Vec<ExecutorInfo>,
    pub tasks: Vec<Task>,
}

/// The test's side of the master link.
pub struct TestMaster {
    messages: mpsc::UnboundedReceiver<AgentMessage>,
    pub link: AgentLink,
    pub registration: Registration,
    /// Messages other than status updates, in arrival order, not yet taken.
    others: Vec<FromAgent>,
    /// Uuids of updates already returned (resends are skipped).
    seen: HashSet<Bytes>,
    /// Acknowledged updates collected while waiting for another task, by task id.
    other_updates: HashMap<String, Vec<TaskStatus>>,
}

/// Starts an agent and takes its registration.
pub async fn start(config: AgentConfig) -> (AgentHandle, TestMaster) {
    let (tx, mut messages) = mpsc::unbounded_channel();
    let handle = agent::start(config, tx).await.expect("agent starts");
    let message = tokio::time::timeout(WAIT, messages.recv())
        .await
        .expect("registration in time")
        .expect("registration");
    let FromAgent::Register {
        info,
        link,
        url,
        frameworks,
        executors,
        tasks,
    } = message.message
    else {
        panic!("first message is not Register: {:?}", message.message);
    };
    assert_eq!(message.agent_id, *handle.id());
    (
        handle,
        TestMaster {
            messages,
            link,
            registration: Registration {
                info,
                url,
                frameworks,
                executors,
                tasks,
            },
            others: Vec::new(),
            seen: HashSet::new(),
            other_updates: HashMap::new(),
        },
    )
}

impl TestMaster {
    pub fn send(&self, command: ToAgent) {
        self.link.send(command).expect("agent link open");
    }

    pub fn run_task(
        &self,
        framework: FrameworkInfo,
        executor: Option<ExecutorInfo>,
        task: TaskInfo,
    ) {
        self.send(ToAgent::RunTask {
            framework_info: framework,
            executor,
            task,
        });
    }

    pub fn kill(&self, task_id: &str, grace: Option<Duration>) {
        self.send(ToAgent::KillTask {
            framework_id: framework_id(),
            task_id: TaskId {
                value: task_id.into(),
            },
            kill_policy: grace.map(|g| mesos_sdk::v1::KillPolicy {
                grace_period: Some(mesos_sdk::v1::DurationInfo {
                    nanoseconds: g.as_nanos() as i64,
                }),
            }),
        });
    }

    pub fn ack(&self, status: &TaskStatus) {
        self.send(ToAgent::Acknowledge {
            framework_id: framework_id(),
            task_id: status.task_id.clone(),
            uuid: status.uuid.clone().expect("uuid"),
        });
    }

    /// The next message of any kind, raw (resends included).
    pub async fn next_raw(&mut self) -> FromAgent {
        tokio::time::timeout(WAIT, self.messages.recv())
            .await
            .expect("a message from the agent in time")
            .expect("agent link open")
            .message
    }

    /// The next status update not seen before (resends skipped), not acknowledged.
    pub async fn next_update(&mut self) -> TaskStatus {
        loop {
            match self.next_raw().await {
                FromAgent::StatusUpdate {
                    framework_id,
                    status,
                } => {
                    assert_eq!(framework_id.value, FRAMEWORK);
                    let uuid = status.uuid.clone().expect("agent updates carry a uuid");
                    if self.seen.insert(uuid) {
                        return status;
                    }
                }
                other => self.others.push(other),
            }
        }
    }

    /// Acknowledges updates of `task_id` as they come until a terminal one; returns them all.
    /// Updates of other tasks met on the way are kept for their own call.
    pub async fn updates_until_terminal(&mut self, task_id: &str) -> Vec<TaskStatus> {
        let mut collected = self.other_updates.remove(task_id).unwrap_or_default();
        if collected.last().is_some_and(|s| is_terminal(state_of(s))) {
            return collected;
        }
        loop {
            let status = self.next_update().await;
            self.ack(&status);
            let terminal = is_terminal(state_of(&status));
            if status.task_id.value == task_id {
                collected.push(status);
                if terminal {
                    return collected;
                }
            } else {
                self.other_updates
                    .entry(status.task_id.value.clone())
                    .or_default()
                    .push(status);
            }
        }
    }

    /// Waits for a message other than a status update matching `pick` (acknowledging updates
    /// met on the way).
    pub async fn next_other<T>(&mut self, mut pick: impl FnMut(&FromAgent) -> Option<T>) -> T {
        if let Some(position) = self.others.iter().position(|m| pick(m).is_some()) {
            let message = self.others.remove(position);
            return pick(&message).expect("picked");
        }
        loop {
            match self.next_raw().await {
                FromAgent::StatusUpdate { status, .. } => {
                    let uuid = status.uuid.clone().expect("uuid");
                    if self.seen.insert(uuid) {
                        self.ack(&status);
                    }
                }
                other => {
                    if let Some(found) = pick(&other) {
                        return found;
                    }
                    self.others.push(other);
                }
            }
        }
    }
}

pub fn states(updates: &[TaskStatus]) -> Vec<TaskState> {
    updates.iter().map(state_of).collect()
}

/// A loopback HTTP server serving fixed files, counting requests per path.
pub struct FileServer {
    pub addr: SocketAddr,
    pub hits: Arc<Mutex<HashMap<String, usize>>>,
    task: tokio::task::JoinHandle<()>,
}

impl FileServer {
    pub async fn start(files: HashMap<String, Vec<u8>>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let files = Arc::new(files);
        let hits: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let counter = hits.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let files = files.clone();
                let counter = counter.clone();
                tokio::spawn(async move {
                    let service =
                        hyper::service::service_fn(move |request: http::Request<Incoming>| {
                            let files = files.clone();
                            let counter = counter.clone();
                            async move {
                                let path = request.uri().path().to_string();
                                *counter.lock().unwrap().entry(path.clone()).or_default() += 1;
                                let response = match files.get(&path) {
                                    // A file whose content is `REDIRECT <location>` answers 302.
                                    Some(data) if data.starts_with(b"REDIRECT ") => {
                                        let location =
                                            String::from_utf8_lossy(&data[9..]).to_string();
                                        http::Response::builder()
                                            .status(302)
                                            .header("Location", location)
                                            .body(Full::new(Bytes::new()))
                                            .unwrap()
                                    }
                                    Some(data) => {
                                        http::Response::new(Full::new(Bytes::from(data.clone())))
                                    }
                                    None => http::Response::builder()
                                        .status(404)
                                        .body(Full::new(Bytes::new()))
                                        .unwrap(),
                                };
                                Ok::<_, Infallible>(response)
                            }
                        });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service)
                        .await;
                });
            }
        });
        Self { addr, hits, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A raw HTTP/1.1 exchange with `Connection: close`: status, headers (lower-case names), body.
pub async fn raw_http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    tcp.write_all(request.as_bytes()).await.unwrap();
    tcp.write_all(body).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(WAIT, tcp.read_to_end(&mut response))
        .await
        .expect("response in time")
        .unwrap();
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end");
    let head = String::from_utf8_lossy(&response[..split]).to_string();
    let body = response[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, body)
}

pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// An executor event stream opened by the test on behalf of an executor.
pub struct EventStream {
    pub status: u16,
    pub headers: http::HeaderMap,
    body: Incoming,
    buffer: BytesMut,
    codec: RecordIoCodec,
    _sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

/// POSTs a protobuf executor SUBSCRIBE accepting protobuf; the answer is a stream.
pub async fn subscribe(addr: SocketAddr, call: &mesos_sdk::v1::executor::Call) -> EventStream {
    subscribe_with(
        addr,
        "application/x-protobuf",
        Some("application/x-protobuf"),
        Bytes::from(call.encode_to_vec()),
    )
    .await
}

/// POSTs a SUBSCRIBE body with the given headers; the answer is a stream.
pub async fn subscribe_with(
    addr: SocketAddr,
    content_type: &str,
    accept: Option<&str>,
    body: Bytes,
) -> EventStream {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(connection);
    let mut request = http::Request::post("/api/v1/executor")
        .header("Host", addr.to_string())
        .header("Content-Type", content_type);
    if let Some(accept) = accept {
        request = request.header("Accept", accept);
    }
    let response = sender
        .send_request(request.body(Full::new(body)).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    EventStream {
        status,
        headers,
        body: response.into_body(),
        buffer: BytesMut::new(),
        codec: RecordIoCodec::default(),
        _sender: sender,
    }
}

impl EventStream {
    /// The next protobuf event, or `None` when the stream ended.
    pub async fn next(&mut self) -> Option<mesos_sdk::v1::executor::Event> {
        let record = self.next_record().await?;
        Some(mesos_sdk::v1::executor::Event::decode(record).unwrap())
    }

    /// The next raw record, or `None` when the stream ended.
    pub async fn next_record(&mut self) -> Option<Bytes> {
        loop {
            if let Some(record) = self.codec.decode(&mut self.buffer).unwrap() {
                return Some(record);
            }
            let frame = tokio::time::timeout(WAIT, self.body.frame())
                .await
                .expect("an event in time")?;
            let frame = frame.ok()?;
            if let Some(data) = frame.data_ref() {
                self.buffer.extend_from_slice(data);
            }
        }
    }
}

/// Polls `check` every 20 ms until it holds (at most [`WAIT`]).
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
