//! The executor runtime: everything between an executor author's code and the agent's
//! `/api/v1/executor` endpoint.
//!
//! It owns the executor side of the Mesos V1 executor API: reading the `MESOS_*` environment
//! ([`ExecutorConfig`]), subscribing with the unacknowledged tasks and updates, dispatching events
//! to an [`Executor`] implementation, stamping and reliably delivering status updates through an
//! [`ExecutorHandle`], reconnecting after a broken stream when the framework checkpoints, and the
//! SHUTDOWN sequence.
//!
//! # Writing an executor
//!
//! Implement [`Executor`] (only `launch` and `kill` are required) and hand it to [`run`]. Event
//! methods are called one at a time, in event order, and should return quickly: start the work
//! (for example with `tokio::spawn`) and report progress through the handle.
//!
//! ```no_run
//! use mesos_sdk::executor::{self, Executor, ExecutorConfig, ExecutorHandle, Outcome};
//! use mesos_sdk::v1::{KillPolicy, TaskId, TaskInfo, TaskState};
//!
//! struct Hello;
//!
//! impl Executor for Hello {
//!     async fn launch(&mut self, handle: &ExecutorHandle, task: TaskInfo) {
//!         let id = task.task_id.clone();
//!         let _ = handle.send_status(id.clone(), TaskState::TaskRunning, "saying hello");
//!         let _ = handle.send_status(id, TaskState::TaskFinished, "hello, world");
//!     }
//!
//!     async fn kill(&mut self, handle: &ExecutorHandle, task_id: TaskId, _: Option<KillPolicy>) {
//!         let _ = handle.send_status(task_id, TaskState::TaskKilled, "killed");
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let config = ExecutorConfig::from_env()?;
//!     let outcome: Outcome = executor::run(Hello, config).await?;
//!     println!("executor done: {outcome:?}");
//!     Ok(())
//! }
//! ```
//!
//! # Reconnection
//!
//! When the event stream breaks and `MESOS_CHECKPOINT` is on, the driver resubscribes, waiting a
//! uniformly random time in `[0, MESOS_SUBSCRIPTION_BACKOFF_MAX]` before each attempt, and gives
//! up `MESOS_RECOVERY_TIMEOUT` after the first failure ([`Error::RecoveryTimedOut`]). Without
//! checkpointing it returns [`Outcome::Disconnected`]. An `ERROR` event aborts the subscription
//! and resubscribes. Unix domain sockets (`MESOS_DOMAIN_SOCKET`) are not supported: the runtime
//! always connects to `MESOS_AGENT_ENDPOINT` over TCP.

mod bookkeeping;
mod config;
mod driver;
mod handle;

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use uuid::Uuid;

pub use config::*;
pub use driver::{Runtime, run};
pub use handle::{ExecutorHandle, HandleError, StatusUpdate};

use crate::v1::executor::event::Subscribed;
use crate::v1::{KillPolicy, TaskGroupInfo, TaskId, TaskInfo};

/// The executor author's code: one method per executor event.
///
/// Methods run one at a time on the driver's task, in event order; while one runs, no other
/// event is handled, so long work belongs in spawned tasks that report through the
/// [`ExecutorHandle`]. Implement them with `async fn`.
pub trait Executor: Send + 'static {
    /// `SUBSCRIBED`: the agent accepted the subscription (also after every reconnection).
    fn subscribed(
        &mut self,
        handle: &ExecutorHandle,
        subscribed: &Subscribed,
    ) -> impl Future<Output = ()> + Send {
        let _ = (handle, subscribed);
        async {}
    }

    /// `LAUNCH`: start `task`. Send `TASK_STARTING` (optional) and `TASK_RUNNING`, and a terminal
    /// update once it ends. Never send `TASK_STAGING`.
    fn launch(
        &mut self,
        handle: &ExecutorHandle,
        task: TaskInfo,
    ) -> impl Future<Output = ()> + Send;

    /// `LAUNCH_GROUP`: start every task of `group`. By default calls
    /// [`launch`](Self::launch) for each task in order.
    fn launch_group(
        &mut self,
        handle: &ExecutorHandle,
        group: TaskGroupInfo,
    ) -> impl Future<Output = ()> + Send {
        async move {
            for task in group.tasks {
                self.launch(handle, task).await;
            }
        }
    }

    /// `KILL`: stop `task_id` and send a terminal update (usually `TASK_KILLED`). The policy's
    /// grace period, when given, is the time between the polite and the forced kill.
    fn kill(
        &mut self,
        handle: &ExecutorHandle,
        task_id: TaskId,
        kill_policy: Option<KillPolicy>,
    ) -> impl Future<Output = ()> + Send;

    /// `ACKNOWLEDGED`: the agent checkpointed update `uuid` of `task_id`. The driver has already
    /// dropped it from its bookkeeping.
    fn acknowledged(
        &mut self,
        handle: &ExecutorHandle,
        task_id: &TaskId,
        uuid: Uuid,
    ) -> impl Future<Output = ()> + Send {
        let _ = (handle, task_id, uuid);
        async {}
    }

    /// `MESSAGE`: opaque bytes from the scheduler.
    fn message(&mut self, handle: &ExecutorHandle, data: Bytes) -> impl Future<Output = ()> + Send {
        let _ = (handle, data);
        async {}
    }

    /// `SHUTDOWN`: the agent wants the executor gone. After this returns the driver calls
    /// [`kill`](Self::kill) for every task without a terminal update, with a kill policy of half
    /// the shutdown grace period; tasks still not terminal after three quarters of the grace
    /// period get a `TASK_KILLED` from the driver.
    fn shutdown(&mut self, handle: &ExecutorHandle) -> impl Future<Output = ()> + Send {
        let _ = handle;
        async {}
    }

    /// `ERROR`: the agent reported an error; the driver drops the subscription and resubscribes
    /// after this returns.
    fn error(&mut self, handle: &ExecutorHandle, message: &str) -> impl Future<Output = ()> + Send {
        let _ = (handle, message);
        async {}
    }

    /// The event stream broke (called before any reconnection attempt, or before `run` returns
    /// [`Outcome::Disconnected`]).
    fn disconnected(&mut self, handle: &ExecutorHandle) -> impl Future<Output = ()> + Send {
        let _ = handle;
        async {}
    }
}

/// How [`run`] ended without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The agent sent SHUTDOWN and the shutdown sequence finished.
    Shutdown,
    /// The stream broke and the framework does not checkpoint: the executor should exit.
    Disconnected,
    /// [`ExecutorHandle::stop`] was called.
    Stopped,
}

/// Why [`run`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The HTTP transport could not be set up.
    #[error("cannot build the transport to the agent: {0}")]
    Transport(#[source] crate::client::Error),
    /// `LIBPROCESS_SSL_CA_FILE` could not be read.
    #[error("cannot read the CA file {}: {source}", path.display())]
    CaFile {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The agent answered 401: the bearer token is missing or wrong.
    #[error("the agent refused our credentials: {0}")]
    Unauthorized(#[source] crate::client::Error),
    /// The agent rejected the subscription for good (400, 403, 405, 406, 415, 501).
    #[error("the agent rejected the subscription: {0}")]
    Rejected(#[source] crate::client::Error),
    /// No subscription succeeded within `registration_timeout`.
    #[error("could not subscribe within {timeout:?}: {last_error}")]
    RegistrationTimedOut {
        /// The configured limit.
        timeout: Duration,
        /// The last failure seen.
        last_error: String,
    },
    /// A call could not be encoded.
    #[error("cannot encode a call: {0}")]
    Encode(#[from] crate::codec::CodecError),
    /// Reconnection did not succeed within `MESOS_RECOVERY_TIMEOUT` of the first failure.
    #[error("could not reconnect to the agent within {timeout:?}: {last_error}")]
    RecoveryTimedOut {
        /// The configured limit.
        timeout: Duration,
        /// The last failure seen.
        last_error: String,
    },
}
