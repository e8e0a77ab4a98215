//! The contract between a process scheduler and `brigade-executor`: how a Kafka message and its
//! processor travel in a `TaskInfo`, how the executor is described (`ExecutorInfo`), how task ids
//! name the message they carry, and how the result comes back in a `TaskStatus`.
//!
//! A task carries (the original Brigade's contract, extended):
//! - label `processor-configuration`: the processor's JSON;
//! - label `input-message`: the message, when it is valid UTF-8 and at most
//!   [`LABEL_MESSAGE_LIMIT`] bytes; otherwise `TaskInfo.data` carries the raw bytes and label
//!   `input-message-location` says `data`;
//! - labels `input-topic`, `input-partition`, `input-offset` and, when the message has a key,
//!   `input-key` (base64), so a task is traceable and a restarted scheduler can tell which
//!   message it carries;
//! - label `brigade-protocol`: [`PROTOCOL_VERSION`].
//!
//! Task ids are `brigade-<processor>-<partition>-<offset>-<8 hex digits>` ([`task_id`],
//! [`message_ref`]); the executor id of a per-message task is its task id.
//!
//! The result: `TASK_FINISHED` with the processor's stdout in `TaskStatus.data`; `TASK_FAILED`
//! (non-zero exit, timeout, stdout over the bound, a processor that cannot start) or
//! `TASK_KILLED` with the reason and the tail of stderr in `TaskStatus.message`, and status label
//! `brigade-failure` naming the cause ([`FailureCause`]).
//!
//! Warm mode's scheduler↔executor messages are in [`warm`].

pub mod warm;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use mesos_sdk::v1;

use crate::processor::{Processor, ValidationErrors};

/// Label: the processor's JSON.
pub const LABEL_PROCESSOR: &str = "processor-configuration";
/// Label: the message, when it fits.
pub const LABEL_MESSAGE: &str = "input-message";
/// Label: where the message is, `label` or `data`.
pub const LABEL_MESSAGE_LOCATION: &str = "input-message-location";
/// Label: the source topic.
pub const LABEL_TOPIC: &str = "input-topic";
/// Label: the source partition.
pub const LABEL_PARTITION: &str = "input-partition";
/// Label: the source offset.
pub const LABEL_OFFSET: &str = "input-offset";
/// Label: the message key, base64.
pub const LABEL_KEY: &str = "input-key";
/// Label: the protocol version.
pub const LABEL_PROTOCOL: &str = "brigade-protocol";
/// Status label: why a task failed (a [`FailureCause`] name).
pub const LABEL_FAILURE: &str = "brigade-failure";
/// This protocol's version.
pub const PROTOCOL_VERSION: &str = "1";
/// Messages up to this many bytes (and valid UTF-8) travel in the `input-message` label.
pub const LABEL_MESSAGE_LIMIT: usize = 16 * 1024;
/// The largest message a task can carry.
pub const MAX_MESSAGE: usize = 16 * 1024 * 1024;
/// CPUs to give a per-message executor (beside its task's), as the tests do.
pub const EXECUTOR_CPUS: f64 = 0.05;
/// Memory (MB) to give a per-message executor (beside its task's).
pub const EXECUTOR_MEM: f64 = 32.0;
/// Where the fetcher puts the executor binary in the sandbox.
pub const EXECUTOR_FILE: &str = "brigade-executor";

/// A Kafka message to process.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InputMessage {
    /// Source topic.
    pub topic: String,
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
    /// The message key.
    pub key: Option<Vec<u8>>,
    /// The message value.
    pub payload: Vec<u8>,
}

/// What a terminal task status says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The processor's stdout (`TASK_FINISHED`).
    Output(Vec<u8>),
    /// The task failed; the reason carries the tail of stderr when the processor ran.
    Failed {
        /// Why.
        reason: String,
    },
}

/// Why a task failed, as far as the executor knows (status label [`LABEL_FAILURE`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureCause {
    /// The processor exited non-zero (or was killed by a signal).
    Exit,
    /// The processor ran past its timeout.
    Timeout,
    /// The processor wrote more than `max_output` bytes.
    OutputTooLarge,
    /// The processor could not be started (no `sh`, no `docker`, ...).
    Start,
    /// The task did not carry a valid processor or message.
    BadTask,
    /// The task was killed.
    Killed,
    /// Mesos lost, dropped or gave up the task (no executor verdict): worth re-running.
    Infrastructure,
}

impl FailureCause {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureCause::Exit => "exit",
            FailureCause::Timeout => "timeout",
            FailureCause::OutputTooLarge => "output-too-large",
            FailureCause::Start => "start",
            FailureCause::BadTask => "bad-task",
            FailureCause::Killed => "killed",
            FailureCause::Infrastructure => "infrastructure",
        }
    }

    /// From a label value.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "exit" => FailureCause::Exit,
            "timeout" => FailureCause::Timeout,
            "output-too-large" => FailureCause::OutputTooLarge,
            "start" => FailureCause::Start,
            "bad-task" => FailureCause::BadTask,
            "killed" => FailureCause::Killed,
            "infrastructure" => FailureCause::Infrastructure,
            _ => return None,
        })
    }
}

/// Which message a task id names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TaskRef {
    /// The processor's name.
    pub processor: String,
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
}

/// A task that does not follow the protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A label the protocol needs is missing.
    #[error("task has no label {0:?}")]
    MissingLabel(&'static str),
    /// A label's value does not parse.
    #[error("task label {label:?}: {reason}")]
    BadLabel {
        /// The label.
        label: &'static str,
        /// Why.
        reason: String,
    },
    /// The processor configuration does not validate.
    #[error("task's processor configuration: {0}")]
    InvalidProcessor(ValidationErrors),
    /// The message should be in `TaskInfo.data` but is not.
    #[error("task's message should be in TaskInfo.data, which is empty")]
    MissingData,
    /// The message is too large to send.
    #[error("message of {size} bytes is over the limit of {limit} bytes")]
    TooLarge {
        /// The message's size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A warm-mode MESSAGE that does not parse.
    #[error("bad warm-mode message: {0}")]
    BadMessage(String),
    /// A task id not of the form `brigade-<processor>-<partition>-<offset>-<suffix>`.
    #[error("task id {0:?} is not a brigade task id")]
    BadTaskId(String),
}

/// A new task id for a message: `brigade-<processor>-<partition>-<offset>-<8 hex digits>`.
pub fn task_id(processor: &str, partition: i32, offset: i64) -> String {
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!("brigade-{processor}-{partition}-{offset}-{}", &suffix[..8])
}

/// The message a task id names (the topic is the processor's input topic).
pub fn message_ref(task_id: &str) -> Result<TaskRef, ProtocolError> {
    let bad = || ProtocolError::BadTaskId(task_id.to_string());
    let rest = task_id.strip_prefix("brigade-").ok_or_else(bad)?;
    let mut parts = rest.rsplitn(4, '-');
    let suffix = parts.next().ok_or_else(bad)?;
    let offset = parts.next().ok_or_else(bad)?;
    let partition = parts.next().ok_or_else(bad)?;
    let processor = parts.next().ok_or_else(bad)?;
    if suffix.is_empty() || processor.is_empty() {
        return Err(bad());
    }
    let partition: i32 = partition.parse().map_err(|_| bad())?;
    let offset: i64 = offset.parse().map_err(|_| bad())?;
    if partition < 0 || offset < 0 {
        return Err(bad());
    }
    Ok(TaskRef {
        processor: processor.to_string(),
        partition,
        offset,
    })
}

/// Puts the processor and the message into `task` (labels, and `data` for a large or binary
/// message). Other labels of the task are kept; the protocol's own are replaced.
pub fn encode_task(
    task: &mut v1::TaskInfo,
    processor: &Processor,
    msg: &InputMessage,
) -> Result<(), ProtocolError> {
    if msg.payload.len() > MAX_MESSAGE {
        return Err(ProtocolError::TooLarge {
            size: msg.payload.len(),
            limit: MAX_MESSAGE,
        });
    }
    let mut labels: Vec<v1::Label> = task
        .labels
        .take()
        .map(|l| l.labels)
        .unwrap_or_default()
        .into_iter()
        .filter(|l| !is_protocol_label(&l.key))
        .collect();
    let mut add = |key: &str, value: String| {
        labels.push(v1::Label {
            key: key.to_string(),
            value: Some(value),
        })
    };
    add(LABEL_PROTOCOL, PROTOCOL_VERSION.to_string());
    add(LABEL_PROCESSOR, processor.to_json());
    add(LABEL_TOPIC, msg.topic.clone());
    add(LABEL_PARTITION, msg.partition.to_string());
    add(LABEL_OFFSET, msg.offset.to_string());
    if let Some(key) = &msg.key {
        add(LABEL_KEY, BASE64.encode(key));
    }
    match std::str::from_utf8(&msg.payload) {
        Ok(text) if text.len() <= LABEL_MESSAGE_LIMIT => {
            add(LABEL_MESSAGE_LOCATION, "label".into());
            add(LABEL_MESSAGE, text.to_string());
            task.data = None;
        }
        _ => {
            add(LABEL_MESSAGE_LOCATION, "data".into());
            task.data = Some(Bytes::from(msg.payload.clone()));
        }
    }
    task.labels = Some(v1::Labels { labels });
    Ok(())
}

fn is_protocol_label(key: &str) -> bool {
    [
        LABEL_PROCESSOR,
        LABEL_MESSAGE,
        LABEL_MESSAGE_LOCATION,
        LABEL_TOPIC,
        LABEL_PARTITION,
        LABEL_OFFSET,
        LABEL_KEY,
        LABEL_PROTOCOL,
    ]
    .contains(&key)
}

/// A label's value.
pub fn label<'a>(labels: Option<&'a v1::Labels>, key: &str) -> Option<&'a str> {
    labels?
        .labels
        .iter()
        .find(|l| l.key == key)
        .and_then(|l| l.value.as_deref())
}

fn need<'a>(labels: Option<&'a v1::Labels>, key: &'static str) -> Result<&'a str, ProtocolError> {
    label(labels, key).ok_or(ProtocolError::MissingLabel(key))
}

/// Reads the processor and the message back from a task.
pub fn decode_task(task: &v1::TaskInfo) -> Result<(Processor, InputMessage), ProtocolError> {
    let labels = task.labels.as_ref();
    let processor = Processor::from_json(need(labels, LABEL_PROCESSOR)?)
        .map_err(ProtocolError::InvalidProcessor)?;
    let (topic, partition, offset) = task_source(task)?;
    let key = match label(labels, LABEL_KEY) {
        None => None,
        Some(k) => Some(BASE64.decode(k).map_err(|e| ProtocolError::BadLabel {
            label: LABEL_KEY,
            reason: e.to_string(),
        })?),
    };
    let payload = match label(labels, LABEL_MESSAGE_LOCATION).unwrap_or("label") {
        "label" => need(labels, LABEL_MESSAGE)?.as_bytes().to_vec(),
        "data" => task
            .data
            .as_ref()
            .ok_or(ProtocolError::MissingData)?
            .to_vec(),
        other => {
            return Err(ProtocolError::BadLabel {
                label: LABEL_MESSAGE_LOCATION,
                reason: format!("{other:?} is neither \"label\" nor \"data\""),
            });
        }
    };
    Ok((
        processor,
        InputMessage {
            topic,
            partition,
            offset,
            key,
            payload,
        },
    ))
}

/// The source topic, partition and offset a task's labels name (without decoding its
/// processor or message).
pub fn task_source(task: &v1::TaskInfo) -> Result<(String, i32, i64), ProtocolError> {
    let labels = task.labels.as_ref();
    let topic = need(labels, LABEL_TOPIC)?.to_string();
    let partition =
        need(labels, LABEL_PARTITION)?
            .parse()
            .map_err(|e| ProtocolError::BadLabel {
                label: LABEL_PARTITION,
                reason: format!("{e}"),
            })?;
    let offset = need(labels, LABEL_OFFSET)?
        .parse()
        .map_err(|e| ProtocolError::BadLabel {
            label: LABEL_OFFSET,
            reason: format!("{e}"),
        })?;
    Ok((topic, partition, offset))
}

/// Whether `state` says the master cannot reach the task now (TASK_UNREACHABLE: its agent is
/// partitioned; TASK_UNKNOWN: the master does not know its agent). Neither is terminal: the
/// task may come back; the scheduler decides how long to wait (see
/// [`crate::pipeline::SchedulerConfig::unreachable_grace`]).
pub fn unreachable(state: v1::TaskState) -> bool {
    matches!(
        state,
        v1::TaskState::TaskUnreachable | v1::TaskState::TaskUnknown
    )
}

/// The TASK_LOST status the scheduler gives itself for a task it stops waiting for (its agent
/// unreachable too long): a failure of the infrastructure with `message` as its reason, as if
/// from the master.
pub fn lost_status(
    task_id: v1::TaskId,
    agent_id: Option<v1::AgentId>,
    message: String,
) -> v1::TaskStatus {
    v1::TaskStatus {
        task_id,
        agent_id,
        state: v1::TaskState::TaskLost as i32,
        message: Some(message),
        source: Some(v1::task_status::Source::Master as i32),
        ..Default::default()
    }
}

/// The outcome of a terminal status; `None` while the task is not terminal (or only
/// unreachable, which may come back).
pub fn outcome(status: &v1::TaskStatus) -> Option<Outcome> {
    use v1::TaskState as S;
    let state = S::try_from(status.state).ok()?;
    match state {
        S::TaskFinished => Some(Outcome::Output(
            status.data.as_ref().map(|d| d.to_vec()).unwrap_or_default(),
        )),
        S::TaskFailed
        | S::TaskKilled
        | S::TaskLost
        | S::TaskError
        | S::TaskDropped
        | S::TaskGone
        | S::TaskGoneByOperator => Some(Outcome::Failed {
            reason: failure_reason(status, state),
        }),
        _ => None,
    }
}

/// Why a terminal status failed: the executor's [`FailureCause`] label, else inferred from the
/// state (`TASK_KILLED` → killed, `TASK_LOST`/`DROPPED`/`GONE`/`ERROR` or a status the executor
/// did not send → infrastructure). `None` for non-failures.
pub fn failure_cause(status: &v1::TaskStatus) -> Option<FailureCause> {
    use v1::TaskState as S;
    let state = S::try_from(status.state).ok()?;
    if let Some(cause) = label(status.labels.as_ref(), LABEL_FAILURE).and_then(FailureCause::parse)
    {
        return Some(cause);
    }
    match state {
        S::TaskKilled => Some(FailureCause::Killed),
        S::TaskFailed
        | S::TaskLost
        | S::TaskError
        | S::TaskDropped
        | S::TaskGone
        | S::TaskGoneByOperator => Some(FailureCause::Infrastructure),
        _ => None,
    }
}

fn failure_reason(status: &v1::TaskStatus, state: v1::TaskState) -> String {
    let state_name = state.as_str_name();
    let reason = status
        .reason
        .and_then(|r| v1::task_status::Reason::try_from(r).ok())
        .map(|r| r.as_str_name());
    match (status.message.as_deref().filter(|m| !m.is_empty()), reason) {
        (Some(m), _) => m.to_string(),
        (None, Some(r)) => format!("{state_name}: {r}"),
        (None, None) => state_name.to_string(),
    }
}

/// The `ExecutorInfo` of a per-message task: `brigade-executor` fetched from `uri` (made
/// executable, saved as [`EXECUTOR_FILE`]) and run from the sandbox; its id is `executor_id`
/// (the task id in per-message mode). Resources are left to the caller (the placer); see
/// [`EXECUTOR_CPUS`] and [`EXECUTOR_MEM`].
pub fn executor_info(
    framework_id: &v1::FrameworkId,
    executor_id: &str,
    mut uri: v1::command_info::Uri,
    processor: &Processor,
) -> v1::ExecutorInfo {
    uri.executable = Some(true);
    uri.extract = Some(false);
    uri.output_file = Some(EXECUTOR_FILE.to_string());
    v1::ExecutorInfo {
        r#type: Some(v1::executor_info::Type::Custom as i32),
        executor_id: v1::ExecutorId {
            value: executor_id.to_string(),
        },
        framework_id: Some(framework_id.clone()),
        command: Some(v1::CommandInfo {
            uris: vec![uri],
            shell: Some(true),
            value: Some(executor_command()),
            ..Default::default()
        }),
        name: Some(format!("brigade-executor for {}", processor.name())),
        ..Default::default()
    }
}

/// The shell command that starts the fetched executor. It retries a start that failed with
/// status 126: on Linux, `exec` of a file fails with ETXTBSY ("Text file busy") while any
/// process still holds it open for writing, which happens when the agent forks another process
/// just as the fetcher finishes writing this one (seen with mesos-local under load). The
/// executor itself never exits 126.
pub fn executor_command() -> String {
    format!(
        "for attempt in 1 2 3 4 5; do ./{EXECUTOR_FILE}; status=$?; \
         if [ $status -ne 126 ]; then exit $status; fi; sleep 1; done; exit 126"
    )
}

/// A per-message task for `msg`: a fresh [`task_id`] (also its name, and the id of the
/// executor from [`executor_info`] it carries), and the processor and message from
/// [`encode_task`]. The caller (the placer) fills in `agent_id` and the resources; Brigade's
/// scheduler replaces the executor by the agent's shared one.
pub fn message_task(
    framework_id: &v1::FrameworkId,
    uri: v1::command_info::Uri,
    processor: &Processor,
    msg: &InputMessage,
) -> Result<v1::TaskInfo, ProtocolError> {
    let id = task_id(processor.name(), msg.partition, msg.offset);
    let mut task = v1::TaskInfo {
        name: id.clone(),
        task_id: v1::TaskId { value: id.clone() },
        executor: Some(Box::new(executor_info(framework_id, &id, uri, processor))),
        ..Default::default()
    };
    encode_task(&mut task, processor, msg)?;
    Ok(task)
}

#[cfg(test)]
mod tests;
