//! A scripted agent for the executor tests: serves `/api/v1/executor` on 127.0.0.1:0, decodes
//! every call, hands each one (with the SUBSCRIBE stream's handle) to the test, and answers as the
//! test scripted (202, 401, 503, ...). Used where a real agent will not misbehave on demand.

#![allow(dead_code)]

#[path = "../common/scripted.rs"]
mod scripted;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use mesos_sdk::codec::Format;
use mesos_sdk::executor::ExecutorConfig;
use mesos_sdk::v1::executor::{Call, Event, call, event};
use mesos_sdk::v1::{
    AgentId, AgentInfo, CommandInfo, ExecutorId, ExecutorInfo, FrameworkId, FrameworkInfo,
    KillPolicy, TaskId, TaskInfo, TaskStatus,
};
pub use scripted::{Recorded, StreamHandle};
use scripted::{Reply, ScriptedServer};
use tokio::sync::mpsc;

/// Generous bound on any single wait in these tests.
pub const WAIT: Duration = Duration::from_secs(10);

pub const FRAMEWORK: &str = "framework-1";
pub const EXECUTOR: &str = "executor-1";
pub const AGENT: &str = "agent-1";

/// A scripted answer for one call.
#[derive(Debug, Clone)]
pub enum Answer {
    /// An error status with a text body.
    Status(u16, &'static str),
}

/// One call the agent received.
pub struct AgentCall {
    pub call: Call,
    pub request: Recorded,
    /// The event stream of an accepted SUBSCRIBE.
    pub stream: Option<StreamHandle>,
}

impl AgentCall {
    pub fn kind(&self) -> call::Type {
        self.call.r#type()
    }

    pub fn status(&self) -> &TaskStatus {
        &self.call.update.as_ref().expect("an UPDATE call").status
    }

    pub fn stream(&self) -> &StreamHandle {
        self.stream.as_ref().expect("an accepted SUBSCRIBE")
    }
}

#[derive(Default)]
struct Script {
    subscribe_answers: VecDeque<Answer>,
    call_answers: VecDeque<Answer>,
    always_reject_subscribe: Option<Answer>,
    token: Option<String>,
}

pub struct ScriptedAgent {
    server: ScriptedServer,
    calls: mpsc::UnboundedReceiver<AgentCall>,
    script: Arc<Mutex<Script>>,
}

impl ScriptedAgent {
    pub async fn start() -> Self {
        Self::start_with_token(None).await
    }

    /// An agent that answers 401 unless `Authorization: Bearer <token>` is sent.
    pub async fn start_with_token(token: Option<&str>) -> Self {
        let (sender, calls) = mpsc::unbounded_channel();
        let script = Arc::new(Mutex::new(Script {
            token: token.map(str::to_owned),
            ..Script::default()
        }));
        let shared = script.clone();
        let server = ScriptedServer::start(move |request: Recorded| {
            let sender = sender.clone();
            let script = shared.clone();
            async move { answer(request, &sender, &script) }
        })
        .await;
        Self {
            server,
            calls,
            script,
        }
    }

    /// `ip:port`, as in `MESOS_AGENT_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        self.server.authority()
    }

    /// The next SUBSCRIBE answer is `answer` instead of a stream.
    pub fn reject_next_subscribe(&self, answer: Answer) {
        self.script
            .lock()
            .unwrap()
            .subscribe_answers
            .push_back(answer);
    }

    /// Every SUBSCRIBE from now on gets `answer`.
    pub fn reject_all_subscribes(&self, answer: Answer) {
        self.script.lock().unwrap().always_reject_subscribe = Some(answer);
    }

    /// The next non-SUBSCRIBE call gets `answer` instead of 202.
    pub fn reject_next_call(&self, answer: Answer) {
        self.script.lock().unwrap().call_answers.push_back(answer);
    }

    /// The next call, whatever it is.
    pub async fn next_call(&mut self) -> AgentCall {
        tokio::time::timeout(WAIT, self.calls.recv())
            .await
            .expect("the executor sent no call in time")
            .expect("the agent stopped")
    }

    /// The next call, which must be of `kind`.
    pub async fn expect(&mut self, kind: call::Type) -> AgentCall {
        let call = self.next_call().await;
        assert_eq!(call.kind(), kind, "unexpected call {:?}", call.call);
        call
    }

    /// Waits for SUBSCRIBE and answers SUBSCRIBED; returns the call (with its stream).
    pub async fn accept_subscription(&mut self) -> AgentCall {
        let call = self.expect(call::Type::Subscribe).await;
        send(call.stream(), &subscribed_event());
        call
    }

    /// Whether any call arrives within `quiet`.
    pub async fn no_call_within(&mut self, quiet: Duration) -> bool {
        tokio::time::timeout(quiet, self.calls.recv())
            .await
            .is_err()
    }
}

fn answer(
    request: Recorded,
    sender: &mpsc::UnboundedSender<AgentCall>,
    script: &Mutex<Script>,
) -> Reply {
    if request.method != http::Method::POST || request.path != "/api/v1/executor" {
        return Reply::text(404, "no such endpoint");
    }
    let mut script = script.lock().unwrap();
    if let Some(token) = &script.token {
        if request.header("authorization") != Some(format!("Bearer {token}")) {
            return Reply::text(401, "JWT authentication failed");
        }
    }
    let content_type = request.header("content-type").unwrap_or_default();
    let Some(format) = Format::from_content_type(&content_type) else {
        return Reply::text(
            415,
            "Expecting 'Content-Type' of application/json or application/x-protobuf",
        );
    };
    let call: Call = match format.decode(&request.body) {
        Ok(call) => call,
        Err(err) => return Reply::text(400, &format!("Failed to parse body: {err}")),
    };
    if call.r#type() == call::Type::Subscribe {
        let rejection = script
            .subscribe_answers
            .pop_front()
            .or_else(|| script.always_reject_subscribe.clone());
        if let Some(Answer::Status(status, text)) = rejection {
            let _ = sender.send(AgentCall {
                call,
                request,
                stream: None,
            });
            return Reply::text(status, text);
        }
        let (reply, stream) = Reply::stream(format.content_type(), None);
        let _ = sender.send(AgentCall {
            call,
            request,
            stream: Some(stream),
        });
        return reply;
    }
    let reply = match script.call_answers.pop_front() {
        Some(Answer::Status(status, text)) => Reply::text(status, text),
        None => Reply::empty(202),
    };
    let _ = sender.send(AgentCall {
        call,
        request,
        stream: None,
    });
    reply
}

/// Sends one event on a subscription stream (protobuf, the executor's default format).
pub fn send(stream: &StreamHandle, event: &Event) {
    let body = Format::Protobuf.encode(event).unwrap();
    assert!(stream.record(body), "the executor closed the stream");
}

/// Sends one event in Mesos' JSON mapping.
pub fn send_json(stream: &StreamHandle, event: &Event) {
    let body = Format::Json.encode(event).unwrap();
    assert!(stream.record(body), "the executor closed the stream");
}

fn typed(kind: event::Type) -> Event {
    let mut event = Event::default();
    event.set_type(kind);
    event
}

pub fn subscribed_event() -> Event {
    let mut event = typed(event::Type::Subscribed);
    event.subscribed = Some(event::Subscribed {
        executor_info: ExecutorInfo {
            executor_id: ExecutorId {
                value: EXECUTOR.into(),
            },
            framework_id: Some(FrameworkId {
                value: FRAMEWORK.into(),
            }),
            ..ExecutorInfo::default()
        },
        framework_info: FrameworkInfo {
            user: "tester".into(),
            name: "executor-tests".into(),
            id: Some(FrameworkId {
                value: FRAMEWORK.into(),
            }),
            ..FrameworkInfo::default()
        },
        agent_info: AgentInfo {
            hostname: "127.0.0.1".into(),
            id: Some(AgentId {
                value: AGENT.into(),
            }),
            ..AgentInfo::default()
        },
        container_id: None,
    });
    event
}

pub fn task(id: &str, shell_command: Option<&str>) -> TaskInfo {
    TaskInfo {
        name: id.into(),
        task_id: TaskId { value: id.into() },
        agent_id: AgentId {
            value: AGENT.into(),
        },
        command: shell_command.map(|value| CommandInfo {
            value: Some(value.into()),
            ..CommandInfo::default()
        }),
        ..TaskInfo::default()
    }
}

pub fn launch_event(task: TaskInfo) -> Event {
    let mut event = typed(event::Type::Launch);
    event.launch = Some(event::Launch { task });
    event
}

pub fn launch_group_event(tasks: Vec<TaskInfo>) -> Event {
    let mut event = typed(event::Type::LaunchGroup);
    event.launch_group = Some(event::LaunchGroup {
        task_group: mesos_sdk::v1::TaskGroupInfo { tasks },
    });
    event
}

pub fn kill_event(task_id: &str, kill_policy: Option<KillPolicy>) -> Event {
    let mut event = typed(event::Type::Kill);
    event.kill = Some(event::Kill {
        task_id: TaskId {
            value: task_id.into(),
        },
        kill_policy,
    });
    event
}

pub fn acknowledged_event(status: &TaskStatus) -> Event {
    let mut event = typed(event::Type::Acknowledged);
    event.acknowledged = Some(event::Acknowledged {
        task_id: status.task_id.clone(),
        uuid: status.uuid.clone().expect("an update with a uuid"),
    });
    event
}

pub fn message_event(data: &'static [u8]) -> Event {
    let mut event = typed(event::Type::Message);
    event.message = Some(event::Message {
        data: Bytes::from_static(data),
    });
    event
}

pub fn error_event(message: &str) -> Event {
    let mut event = typed(event::Type::Error);
    event.error = Some(event::Error {
        message: message.into(),
    });
    event
}

pub fn shutdown_event() -> Event {
    typed(event::Type::Shutdown)
}

pub fn heartbeat_event() -> Event {
    typed(event::Type::Heartbeat)
}

/// The `MESOS_*` environment an agent at `endpoint` would give the executor.
pub fn environment(endpoint: &str, checkpoint: bool) -> Vec<(String, String)> {
    let mut vars = vec![
        ("MESOS_FRAMEWORK_ID", FRAMEWORK.to_owned()),
        ("MESOS_EXECUTOR_ID", EXECUTOR.to_owned()),
        ("MESOS_AGENT_ENDPOINT", endpoint.to_owned()),
        (
            "MESOS_DIRECTORY",
            std::env::temp_dir().display().to_string(),
        ),
        (
            "MESOS_CHECKPOINT",
            if checkpoint { "1" } else { "0" }.to_owned(),
        ),
        ("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD", "2secs".to_owned()),
        ("MESOS_SLAVE_ID", AGENT.to_owned()),
        ("MESOS_HTTP_COMMAND_EXECUTOR", "0".to_owned()),
    ];
    if checkpoint {
        vars.push(("MESOS_RECOVERY_TIMEOUT", "15mins".to_owned()));
        vars.push(("MESOS_SUBSCRIPTION_BACKOFF_MAX", "50ms".to_owned()));
    }
    vars.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// A configuration for an executor talking to `agent`, with short test intervals.
pub fn config(agent: &ScriptedAgent, checkpoint: bool) -> ExecutorConfig {
    let mut config = ExecutorConfig::from_vars(environment(&agent.endpoint(), checkpoint))
        .expect("a valid test environment");
    config.registration_timeout = Duration::from_secs(5);
    config.update_retry_interval = Duration::from_millis(100);
    config.call_timeout = Some(Duration::from_secs(5));
    config
}
