//! What `brigade-executor` does with a task: [`run`] runs a processor once (command or Docker
//! image, stdin, bounded stdout, stderr tail, timeout, kill) and [`executor`] is the
//! [`mesos_sdk::executor::Executor`] that turns tasks and warm-mode messages into runs and
//! status updates.

pub mod executor;
pub mod run;

pub use executor::BrigadeExecutor;
pub use run::{RunConfig, RunOutcome};
