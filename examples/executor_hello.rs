//! A minimal custom executor: every task says hello and finishes.
//!
//! An agent starts it with the `MESOS_*` environment; to try it by hand against an agent at
//! 127.0.0.1:5051:
//!
//! ```text
//! MESOS_FRAMEWORK_ID=fw MESOS_EXECUTOR_ID=hello MESOS_AGENT_ENDPOINT=127.0.0.1:5051 \
//!     MESOS_DIRECTORY=/tmp cargo run --example executor_hello
//! ```
//!
//! Each LAUNCH gets TASK_RUNNING and then TASK_FINISHED with a greeting (the task's `data`, when
//! it is UTF-8 text, names whom to greet). KILL has nothing left to stop, and scheduler messages are
//! logged. The example exits when the agent shuts it down or the connection is lost.

use bytes::Bytes;
use mesos_sdk::executor::{self, Executor, ExecutorConfig, ExecutorHandle, StatusUpdate};
use mesos_sdk::v1::{KillPolicy, TaskId, TaskInfo, TaskState};

struct Hello;

impl Executor for Hello {
    async fn launch(&mut self, handle: &ExecutorHandle, task: TaskInfo) {
        let whom = task
            .data
            .as_deref()
            .and_then(|data| std::str::from_utf8(data).ok())
            .filter(|name| !name.is_empty())
            .unwrap_or("world")
            .to_owned();
        let id = task.task_id;
        let running = handle.send_status(id.clone(), TaskState::TaskRunning, "greeting");
        let finished = handle.update(
            StatusUpdate::new(id, TaskState::TaskFinished)
                .message(format!("hello, {whom}"))
                .data(Bytes::from(format!("hello, {whom}"))),
        );
        if let Err(err) = running.and(finished) {
            tracing::warn!(error = %err, "cannot report the task");
        }
    }

    async fn kill(&mut self, _: &ExecutorHandle, task_id: TaskId, _: Option<KillPolicy>) {
        // Tasks finish as soon as they launch and already have their terminal update: a second
        // one would be a protocol error, so there is nothing to do.
        tracing::info!(task = %task_id.value, "KILL for a task that has already finished");
    }

    async fn message(&mut self, _: &ExecutorHandle, data: Bytes) {
        tracing::info!(message = %String::from_utf8_lossy(&data), "message from the scheduler");
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let config = ExecutorConfig::from_env()?;
    let outcome = executor::run(Hello, config).await?;
    tracing::info!(?outcome, "done");
    Ok(())
}
