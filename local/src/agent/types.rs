//! The agent's bookkeeping types: its [`State`] of frameworks, executor runs, tasks and
//! subscribers, what a launch, kill or termination carries, and the helpers that build executor
//! events and timestamps from them.

use super::*;

/// How an executor run ended, for its tasks' terminal updates.
pub(crate) struct Termination {
    /// State of its non-terminal tasks.
    pub(crate) state: TaskState,
    /// Reason of those updates.
    pub(crate) reason: task_status::Reason,
    /// Message of those updates.
    pub(crate) message: String,
}

/// Which executor runs an executor entry's tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExecutorKind {
    /// A process the framework provided, speaking the executor HTTP API.
    Custom,
    /// The built-in command executor (one task; executor id = task id).
    Command,
    /// The built-in default executor (task groups).
    Default,
}

impl ExecutorKind {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            ExecutorKind::Custom => "custom",
            ExecutorKind::Command => "command",
            ExecutorKind::Default => "default",
        }
    }
    pub(super) fn parse(text: &str) -> Option<Self> {
        match text.trim() {
            "custom" => Some(ExecutorKind::Custom),
            "command" => Some(ExecutorKind::Command),
            "default" => Some(ExecutorKind::Default),
            _ => None,
        }
    }
}

/// A task or task group waiting for its custom executor to subscribe.
#[derive(Debug, Clone)]
pub(super) enum QueuedLaunch {
    Task(Box<TaskInfo>),
    Group(TaskGroupInfo),
}

/// A request to kill a task run by a built-in executor.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KillRequest {
    /// How long to wait between SIGTERM and SIGKILL.
    pub grace: Duration,
}

/// One task known to an executor entry.
#[derive(Debug)]
pub(super) struct TaskEntry {
    pub(super) info: TaskInfo,
    pub(super) state: TaskState,
    /// Kill switch of a task run by a built-in executor.
    pub(super) kill: Option<mpsc::UnboundedSender<KillRequest>>,
    /// Process group of a task run by a built-in executor.
    pub(super) pgid: Option<i32>,
    /// Index of the task group (default executor).
    pub(super) group: usize,
}

/// A subscribed executor's event stream.
#[derive(Debug)]
pub(super) struct Subscriber {
    pub(super) connection: u64,
    pub(super) format: Format,
    pub(super) events: futures::channel::mpsc::UnboundedSender<Bytes>,
}

/// One executor (run) on this agent.
#[derive(Debug)]
pub(super) struct Executor {
    pub(super) info: ExecutorInfo,
    pub(super) kind: ExecutorKind,
    pub(super) run_id: String,
    pub(super) sandbox: PathBuf,
    pub(super) checkpoint: bool,
    /// Process group of a custom executor.
    pub(super) pgid: Option<i32>,
    pub(super) subscriber: Option<Subscriber>,
    /// Has subscribed at least once in this run (or was recovered alive).
    pub(super) subscribed_once: bool,
    pub(super) queued: Vec<QueuedLaunch>,
    /// Events (kills) for an executor that is not subscribed right now, sent after SUBSCRIBED.
    pub(super) pending_events: Vec<mesos_sdk::v1::executor::Event>,
    pub(super) tasks: HashMap<String, TaskEntry>,
    pub(super) terminating: bool,
    /// Killed for not subscribing within the registration timeout.
    pub(super) timed_out: bool,
    pub(super) groups: usize,
}

/// One framework with work on this agent.
#[derive(Debug)]
pub(super) struct Framework {
    pub(super) info: FrameworkInfo,
    pub(super) executors: HashMap<String, Executor>,
    pub(super) removing: bool,
}

/// Everything the agent knows, behind one mutex that is never held across an await.
#[derive(Debug, Default)]
pub(super) struct State {
    pub(super) frameworks: HashMap<String, Framework>,
    /// Status update streams keyed by (framework id, task id).
    pub(super) streams: HashMap<(String, String), UpdateStream>,
    /// Sandboxes of executors that are gone, for [`AgentHandle::executor_sandbox`].
    pub(super) finished_sandboxes: HashMap<(String, String), PathBuf>,
    /// Insertion order of `finished_sandboxes`, oldest first (the map is bounded).
    pub(super) finished_order: std::collections::VecDeque<(String, String)>,
    pub(super) next_connection: u64,
    pub(super) stopped: bool,
}

/// How many sandboxes of finished executors [`AgentHandle::executor_sandbox`] remembers.
pub(super) const REMEMBERED_SANDBOXES: usize = 10_000;

impl State {
    /// The executor `executor_id` of `framework_id`, if its current run is `run_id`.
    pub(super) fn run(
        &self,
        framework_id: &str,
        executor_id: &str,
        run_id: &str,
    ) -> Option<&Executor> {
        self.frameworks
            .get(framework_id)
            .and_then(|f| f.executors.get(executor_id))
            .filter(|e| e.run_id == run_id)
    }

    /// Like [`State::run`], for changing it.
    pub(super) fn run_mut(
        &mut self,
        framework_id: &str,
        executor_id: &str,
        run_id: &str,
    ) -> Option<&mut Executor> {
        self.frameworks
            .get_mut(framework_id)
            .and_then(|f| f.executors.get_mut(executor_id))
            .filter(|e| e.run_id == run_id)
    }

    /// Remembers the sandbox of an executor that is gone, forgetting the oldest beyond
    /// [`REMEMBERED_SANDBOXES`].
    pub(super) fn remember_sandbox(
        &mut self,
        framework_id: &str,
        executor_id: &str,
        sandbox: &Path,
    ) {
        let key = (framework_id.to_string(), executor_id.to_string());
        if self
            .finished_sandboxes
            .insert(key.clone(), sandbox.to_path_buf())
            .is_none()
        {
            self.finished_order.push_back(key);
        }
        while self.finished_order.len() > REMEMBERED_SANDBOXES {
            if let Some(oldest) = self.finished_order.pop_front() {
                self.finished_sandboxes.remove(&oldest);
            }
        }
    }
}

/// Seconds since the Unix epoch, as Mesos timestamps are.
pub(super) fn now_seconds() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// A `DurationInfo` as a non-negative `Duration`.
pub(crate) fn duration_of(info: &mesos_sdk::v1::DurationInfo) -> Duration {
    Duration::from_nanos(u64::try_from(info.nanoseconds).unwrap_or(0))
}

pub(super) fn launch_has_task(launch: &QueuedLaunch, task_id: &TaskId) -> bool {
    match launch {
        QueuedLaunch::Task(task) => task.task_id.value == task_id.value,
        QueuedLaunch::Group(group) => group.tasks.iter().any(|t| t.task_id.value == task_id.value),
    }
}

pub(super) fn launch_event(launch: &QueuedLaunch) -> mesos_sdk::v1::executor::Event {
    match launch {
        QueuedLaunch::Task(task) => mesos_sdk::v1::executor::Event {
            r#type: Some(exec_event::Type::Launch as i32),
            launch: Some(exec_event::Launch {
                task: (**task).clone(),
            }),
            ..Default::default()
        },
        QueuedLaunch::Group(group) => mesos_sdk::v1::executor::Event {
            r#type: Some(exec_event::Type::LaunchGroup as i32),
            launch_group: Some(exec_event::LaunchGroup {
                task_group: group.clone(),
            }),
            ..Default::default()
        },
    }
}

/// Sends one event as a RecordIO record on a subscriber's stream.
pub(super) fn send_event(subscriber: &Subscriber, event: &mesos_sdk::v1::executor::Event) {
    match subscriber.format.encode(event) {
        Ok(data) => {
            let mut record = BytesMut::new();
            mesos_sdk::recordio::encode_record(&mut record, &data);
            let _ = subscriber.events.unbounded_send(record.freeze());
        }
        Err(err) => tracing::warn!(%err, "could not encode an executor event"),
    }
}

/// Whether `info` asks for TASK_KILLING updates.
pub(super) fn wants_killing_state(info: &FrameworkInfo) -> bool {
    info.capabilities
        .iter()
        .any(|c| c.r#type() == framework_info::capability::Type::TaskKillingState)
}
