//! When the fetch of a custom executor's URIs stops early: the executor run is shut down (a
//! SHUTDOWN or TEARDOWN while it is being fetched) or gone, or the agent stops. Command and
//! default executor tasks stop on their own kill channel instead (see `process.rs`).
//!
//! The run's state is looked at every [`POLL`]: a shutdown during a fetch is rare and this
//! keeps the executor bookkeeping free of fetch-specific wake-ups.

use std::time::Duration;

use super::Agent;

/// How often the executor run's state is looked at during a fetch.
const POLL: Duration = Duration::from_millis(50);

impl Agent {
    /// Completes when the fetch for executor run `run_id` should stop.
    pub(super) async fn custom_fetch_stop(
        &self,
        framework_id: &str,
        executor_id: &str,
        run_id: &str,
    ) {
        loop {
            tokio::select! {
                () = self.cancel.cancelled() => return,
                () = tokio::time::sleep(POLL) => {}
            }
            if self.run_terminating(framework_id, executor_id, run_id) {
                return;
            }
        }
    }

    /// Whether the executor run is being shut down or no longer exists.
    fn run_terminating(&self, framework_id: &str, executor_id: &str, run_id: &str) -> bool {
        self.lock()
            .run(framework_id, executor_id, run_id)
            .is_none_or(|e| e.terminating)
    }
}
