//! `brigade-executor`: the custom Mesos executor of Brigade's processor tasks, started by the
//! agent (after the fetcher downloaded it from the scheduler's artifact server) with the
//! `MESOS_*` environment. It runs each task's processor on its message and reports the result
//! (see `brigade::protocol`), then exits once idle (see `brigade::exec`).
//!
//! Settings from the environment: `BRIGADE_DOCKER` (docker CLI), `BRIGADE_SHELL`,
//! `BRIGADE_STDERR_TAIL` (bytes of stderr in a failure message), `BRIGADE_EXECUTOR_IDLE_MS`
//! (how long to wait idle for another task before stopping), `BRIGADE_RUNNING_AFTER_MS` (how long
//! a processor runs before its task is reported TASK_RUNNING, default 200); logs go to stderr,
//! filtered by `RUST_LOG` (default `info`).

use std::process::ExitCode;

use brigade::exec::{BrigadeExecutor, RunConfig};
use mesos_sdk::executor::{self, ExecutorConfig};

/// The executor's allocator: jemalloc, as in the `brigade` binary (a warm worker decodes, runs
/// and answers every message it is sent).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let config = match ExecutorConfig::from_env() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "brigade-executor must be started by a Mesos agent");
            return ExitCode::from(2);
        }
    };
    // How long to wait idle for the scheduler's SHUTDOWN (set by the scheduler on the shared
    // executor of per-message mode; unset: stop as soon as the last task is done).
    let idle_stop = std::env::var(brigade::pipeline::runner::EXECUTOR_IDLE_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map(std::time::Duration::from_millis)
        .unwrap_or_default();
    let mut brigade = BrigadeExecutor::new(RunConfig::from_env()).idle_stop(idle_stop);
    if let Some(wait) = std::env::var("BRIGADE_RUNNING_AFTER_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        brigade = brigade.running_after(std::time::Duration::from_millis(wait));
    }
    match executor::run(brigade, config).await {
        Ok(outcome) => {
            tracing::info!(?outcome, "brigade-executor done");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %e, "brigade-executor failed");
            ExitCode::FAILURE
        }
    }
}
