//! The executor author's side of the runtime: [`ExecutorHandle`] to send status updates and
//! messages, and the [`StatusUpdate`] builder.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::v1::task_status::{Reason, Source};
use crate::v1::{ContainerStatus, ExecutorId, Labels, TaskId, TaskState, TaskStatus};

/// A status update that [`ExecutorHandle::update`] cannot send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandleError {
    /// The driver has returned; nothing more can be sent.
    #[error("the executor driver has stopped")]
    DriverStopped,
    /// Executors must never send `TASK_STAGING` (the agent rejects it).
    #[error("executors may not send TASK_STAGING")]
    StagingNotAllowed,
    /// The update names another executor than this one.
    #[error("update names executor '{found}', but this executor is '{expected}'")]
    ExecutorIdMismatch {
        /// This executor's id.
        expected: String,
        /// The id in the update.
        found: String,
    },
}

/// What the handle asks of the driver.
#[derive(Debug)]
pub(crate) enum Command {
    /// A fully stamped status (uuid, source, executor id, timestamp set).
    Update(Box<TaskStatus>),
    /// Opaque bytes for the scheduler.
    Message(Bytes),
    /// Stop the driver.
    Stop,
}

/// A cheap-to-clone handle to a running executor driver.
///
/// Every method is synchronous and never blocks: calls are queued to the driver, which sends
/// them in order. Status updates are reliable: the driver keeps each one until the agent
/// acknowledges it and resends it after a reconnection. Messages are not.
#[derive(Debug, Clone)]
pub struct ExecutorHandle {
    inner: Arc<HandleInner>,
}

#[derive(Debug)]
struct HandleInner {
    executor_id: ExecutorId,
    commands: mpsc::UnboundedSender<Command>,
}

impl ExecutorHandle {
    pub(crate) fn new(executor_id: ExecutorId, commands: mpsc::UnboundedSender<Command>) -> Self {
        Self {
            inner: Arc::new(HandleInner {
                executor_id,
                commands,
            }),
        }
    }

    /// This executor's id.
    pub fn executor_id(&self) -> &ExecutorId {
        &self.inner.executor_id
    }

    /// Sends a status update reliably and returns the UUID it was given.
    ///
    /// The driver stamps the update with a fresh version 4 UUID, `source = SOURCE_EXECUTOR`,
    /// this executor's id, the current time and (once known) the agent id, then keeps it until
    /// the agent acknowledges it.
    pub fn update(&self, update: impl Into<StatusUpdate>) -> Result<Uuid, HandleError> {
        let mut status = update.into().status;
        if status.state() == TaskState::TaskStaging {
            return Err(HandleError::StagingNotAllowed);
        }
        if let Some(found) = &status.executor_id {
            if found != &self.inner.executor_id {
                return Err(HandleError::ExecutorIdMismatch {
                    expected: self.inner.executor_id.value.clone(),
                    found: found.value.clone(),
                });
            }
        }
        let uuid = Uuid::new_v4();
        status.uuid = Some(Bytes::copy_from_slice(uuid.as_bytes()));
        status.set_source(Source::Executor);
        status.executor_id = Some(self.inner.executor_id.clone());
        status.timestamp = Some(now_seconds());
        self.send(Command::Update(Box::new(status)))?;
        Ok(uuid)
    }

    /// Shorthand for `update(StatusUpdate::new(task_id, state).message(message))`.
    pub fn send_status(
        &self,
        task_id: TaskId,
        state: TaskState,
        message: impl Into<String>,
    ) -> Result<Uuid, HandleError> {
        self.update(StatusUpdate::new(task_id, state).message(message))
    }

    /// Sends opaque bytes to the scheduler (a MESSAGE call). Delivery is not guaranteed: a
    /// message queued while the executor is disconnected is dropped.
    pub fn send_message(&self, data: impl Into<Bytes>) -> Result<(), HandleError> {
        self.send(Command::Message(data.into()))
    }

    /// Asks the driver to stop: it sends what is queued, then `run` returns
    /// [`Outcome::Stopped`](super::Outcome::Stopped).
    pub fn stop(&self) -> Result<(), HandleError> {
        self.send(Command::Stop)
    }

    fn send(&self, command: Command) -> Result<(), HandleError> {
        self.inner
            .commands
            .send(command)
            .map_err(|_| HandleError::DriverStopped)
    }
}

fn now_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs_f64())
        .unwrap_or(0.0)
}

/// A task status to send, built from a task id and a state.
///
/// ```
/// use mesos_sdk::executor::StatusUpdate;
/// use mesos_sdk::v1::{TaskId, TaskState};
///
/// let update = StatusUpdate::new(TaskId { value: "t1".into() }, TaskState::TaskFailed)
///     .message("exited with status 3")
///     .data(&b"details"[..]);
/// assert_eq!(update.status().state(), TaskState::TaskFailed);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct StatusUpdate {
    status: TaskStatus,
}

impl StatusUpdate {
    /// An update of `task_id` to `state`.
    pub fn new(task_id: TaskId, state: TaskState) -> Self {
        let mut status = TaskStatus {
            task_id,
            ..TaskStatus::default()
        };
        status.set_state(state);
        Self { status }
    }

    /// A human-readable message.
    pub fn message(mut self, message: impl Into<String>) -> Self {
        self.status.message = Some(message.into());
        self
    }

    /// A machine-readable reason.
    pub fn reason(mut self, reason: Reason) -> Self {
        self.status.set_reason(reason);
        self
    }

    /// Opaque data for the scheduler.
    pub fn data(mut self, data: impl Into<Bytes>) -> Self {
        self.status.data = Some(data.into());
        self
    }

    /// The task's health, for tasks with a health check.
    pub fn healthy(mut self, healthy: bool) -> Self {
        self.status.healthy = Some(healthy);
        self
    }

    /// Labels.
    pub fn labels(mut self, labels: Labels) -> Self {
        self.status.labels = Some(labels);
        self
    }

    /// The container's status.
    pub fn container_status(mut self, container_status: ContainerStatus) -> Self {
        self.status.container_status = Some(container_status);
        self
    }

    /// The status as built so far.
    pub fn status(&self) -> &TaskStatus {
        &self.status
    }

    /// The status.
    pub fn into_status(self) -> TaskStatus {
        self.status
    }
}

impl From<TaskStatus> for StatusUpdate {
    /// Any `TaskStatus`; the driver overwrites `uuid`, `source`, `executor_id` and `timestamp`.
    fn from(status: TaskStatus) -> Self {
        Self { status }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handle() -> (ExecutorHandle, mpsc::UnboundedReceiver<Command>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            ExecutorHandle::new(
                ExecutorId {
                    value: "exec".into(),
                },
                tx,
            ),
            rx,
        )
    }

    fn task(id: &str) -> TaskId {
        TaskId { value: id.into() }
    }

    #[test]
    fn updates_are_stamped_with_a_fresh_v4_uuid_and_executor_source() {
        let (handle, mut rx) = handle();
        let first = handle
            .send_status(task("t"), TaskState::TaskRunning, "up")
            .unwrap();
        let second = handle
            .send_status(task("t"), TaskState::TaskFinished, "done")
            .unwrap();
        assert_ne!(first, second);
        let Some(Command::Update(status)) = rx.try_recv().ok() else {
            panic!("expected an update");
        };
        let uuid = Uuid::from_slice(status.uuid.as_deref().unwrap()).unwrap();
        assert_eq!(uuid, first);
        assert_eq!(uuid.get_version_num(), 4);
        assert_eq!(status.source(), Source::Executor);
        assert_eq!(status.executor_id.as_ref().unwrap().value, "exec");
        assert_eq!(status.state(), TaskState::TaskRunning);
        assert_eq!(status.message.as_deref(), Some("up"));
        assert!(status.timestamp.unwrap() > 1.0e9);
    }

    #[test]
    fn staging_and_foreign_executor_ids_are_refused() {
        let (handle, mut rx) = handle();
        assert_eq!(
            handle.send_status(task("t"), TaskState::TaskStaging, ""),
            Err(HandleError::StagingNotAllowed)
        );
        let mut status = StatusUpdate::new(task("t"), TaskState::TaskRunning).into_status();
        status.executor_id = Some(ExecutorId {
            value: "other".into(),
        });
        assert!(matches!(
            handle.update(status),
            Err(HandleError::ExecutorIdMismatch { .. })
        ));
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn a_stopped_driver_is_reported() {
        let (handle, rx) = handle();
        drop(rx);
        assert_eq!(
            handle.send_message(Bytes::from_static(b"x")),
            Err(HandleError::DriverStopped)
        );
        assert_eq!(handle.stop(), Err(HandleError::DriverStopped));
    }
}
