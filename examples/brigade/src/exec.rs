//! What `brigade-executor` does with a task: [`run`] runs a processor once (command or Docker
//! image, stdin, bounded stdout, stderr tail, timeout, kill) and [`executor`] is the
//! [`mesos_sdk::executor::Executor`] that turns tasks and warm-mode messages into runs and
//! status updates; [`stream`] keeps a streaming processor (`"stream": "lines"`) up in a warm
//! worker. [`executor_binary`] finds the binary a scheduler serves to the fetcher.

pub mod executor;
pub mod run;
pub mod stream;

use std::path::PathBuf;

pub use executor::BrigadeExecutor;
pub use run::{RunConfig, RunOutcome};

/// The `brigade-executor` binary to serve to the Mesos fetcher: `$BRIGADE_EXECUTOR` when set,
/// else `brigade-executor` next to the running program (where cargo and packages put it).
/// `None` when neither exists.
pub fn executor_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("BRIGADE_EXECUTOR") {
        let path = PathBuf::from(path);
        return path.is_file().then_some(path);
    }
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    [
        dir.join("brigade-executor"),
        dir.join("../brigade-executor"),
    ]
    .into_iter()
    .find(|p| p.is_file())
}
