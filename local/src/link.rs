//! The in-process link between the embedded master and its agents.
//!
//! Real Mesos sends these as libprocess messages; here they travel over tokio channels. Each
//! agent holds a [`MasterLink`] (a sender shared by all agents) and gives the master its own
//! [`AgentLink`] when it registers. The agent owns reliable delivery of task status updates: it
//! records each update, forwards it with [`FromAgent::StatusUpdate`], and forwards it again with
//! backoff until the master relays the framework's acknowledgement with
//! [`ToAgent::Acknowledge`]; one update per task is outstanding at a time, in order.

use bytes::Bytes;
use tokio::sync::mpsc;

use mesos_sdk::v1::{
    AgentId, AgentInfo, ExecutorId, ExecutorInfo, FrameworkId, FrameworkInfo, KillPolicy, Resource,
    Task, TaskGroupInfo, TaskId, TaskInfo, TaskStatus,
};

/// Sender the agents use to reach the master.
pub type MasterLink = mpsc::UnboundedSender<AgentMessage>;
/// Sender the master uses to reach one agent.
pub type AgentLink = mpsc::UnboundedSender<ToAgent>;

/// A message from one agent to the master.
#[derive(Debug)]
pub struct AgentMessage {
    /// The sending agent.
    pub agent_id: AgentId,
    /// What it says.
    pub message: FromAgent,
}

/// What an agent tells the master.
#[derive(Debug)]
pub enum FromAgent {
    /// The agent is up (first start or recovery) and offers `info.resources`.
    ///
    /// `info` carries the agent's id, hostname, port, total resources and attributes. After a
    /// restart with a work directory, `frameworks`, `executors` and `tasks` hold what the agent
    /// recovered from its checkpoints; on a fresh start they are empty.
    Register {
        /// Id, hostname, port, total resources and attributes.
        info: AgentInfo,
        /// Where the master sends commands for this agent.
        link: AgentLink,
        /// Base URL of the agent's HTTP server (`http://127.0.0.1:PORT`).
        url: String,
        /// Frameworks with checkpointed executors or tasks on this agent.
        frameworks: Vec<FrameworkInfo>,
        /// Recovered executors.
        executors: Vec<ExecutorInfo>,
        /// Recovered, non-terminal tasks, with their latest known state.
        tasks: Vec<Task>,
    },
    /// A task status update that must reach the framework reliably. `status.uuid` is set.
    /// The agent sends it again (same uuid) until it receives [`ToAgent::Acknowledge`].
    StatusUpdate {
        /// The task's framework.
        framework_id: FrameworkId,
        /// The update; `agent_id`, `executor_id` (if any), `uuid`, `source` and `timestamp` set.
        status: TaskStatus,
    },
    /// An executor sent a MESSAGE for its framework (unreliable).
    ExecutorMessage {
        /// The executor's framework.
        framework_id: FrameworkId,
        /// The sending executor.
        executor_id: ExecutorId,
        /// Opaque bytes.
        data: Bytes,
    },
    /// A custom executor exited (or was destroyed). The master sends a FAILURE event to the
    /// framework and frees the executor's resources. Terminal updates for its tasks come as
    /// ordinary [`FromAgent::StatusUpdate`]s.
    ExecutorExited {
        /// The executor's framework.
        framework_id: FrameworkId,
        /// The executor.
        executor_id: ExecutorId,
        /// Raw wait status, as in the FAILURE event.
        status: i32,
        /// Resources the executor itself held (not its tasks'), now free.
        resources: Vec<Resource>,
    },
    /// The answer to [`ToAgent::Ping`]: the agent is alive and reachable.
    Pong,
}

/// What the master tells one agent.
// Commands are moved once from the master to an agent; boxing the launch payloads would only
// add allocations.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum ToAgent {
    /// Launch `task`. With `executor` set, on that custom executor (started first if it is not
    /// running); without, on the built-in command executor (`task.command` is set).
    RunTask {
        /// The framework, `id` set.
        framework_info: FrameworkInfo,
        /// Custom executor, if any.
        executor: Option<ExecutorInfo>,
        /// The task, `agent_id` set.
        task: TaskInfo,
    },
    /// Launch a task group on `executor` (a default-executor equivalent when the executor's type
    /// is DEFAULT).
    RunTaskGroup {
        /// The framework, `id` set.
        framework_info: FrameworkInfo,
        /// The group's executor.
        executor: ExecutorInfo,
        /// The tasks.
        task_group: TaskGroupInfo,
    },
    /// Kill a task (KILL event to a custom executor; SIGTERM, grace, SIGKILL for commands).
    KillTask {
        /// The task's framework.
        framework_id: FrameworkId,
        /// The task.
        task_id: TaskId,
        /// Grace period override, if the scheduler gave one.
        kill_policy: Option<KillPolicy>,
    },
    /// Shut an executor down (SHUTDOWN event, then grace period, then kill).
    ShutdownExecutor {
        /// The executor's framework.
        framework_id: FrameworkId,
        /// The executor.
        executor_id: ExecutorId,
    },
    /// The framework is gone (TEARDOWN or failover timeout): kill all its executors and tasks.
    ShutdownFramework {
        /// The framework.
        framework_id: FrameworkId,
    },
    /// A scheduler MESSAGE for an executor.
    FrameworkMessage {
        /// The framework.
        framework_id: FrameworkId,
        /// The target executor.
        executor_id: ExecutorId,
        /// Opaque bytes.
        data: Bytes,
    },
    /// The framework acknowledged the status update `uuid` of `task_id`: stop resending it and
    /// forward the task's next queued update.
    Acknowledge {
        /// The framework.
        framework_id: FrameworkId,
        /// The task.
        task_id: TaskId,
        /// Raw 16 bytes of the acknowledged update's uuid.
        uuid: Bytes,
    },
    /// The framework's info changed (UPDATE_FRAMEWORK or re-subscription).
    UpdateFramework {
        /// The new info, `id` set.
        framework_info: FrameworkInfo,
    },
    /// The master is going away; the agent should stop its HTTP server and executors.
    Shutdown,
    /// A health check: the agent answers [`FromAgent::Pong`]. An agent that leaves pings
    /// unanswered past the master's timeout is marked unreachable (Mesos' agent pings).
    Ping,
    /// Register again with what the agent runs now (a [`FromAgent::Register`] with its current
    /// frameworks, executors and tasks, then its unacknowledged status updates), as a Mesos agent
    /// does when it finds a (new) leading master or its partition heals.
    Reregister,
    /// Fault injection: kill the processes of one executor at once (SIGKILL), as if it crashed;
    /// the agent reports the exit as for any executor that dies.
    KillExecutor {
        /// The executor's framework.
        framework_id: FrameworkId,
        /// The executor (for command tasks, the task id).
        executor_id: ExecutorId,
    },
    /// Fault injection: stop as if the agent process were killed (executors keep running,
    /// nothing more reaches the master).
    Crash,
}
