//! The framework under leader election: [`Framework::run_ha`] campaigns with an
//! [`HaRunner`], runs a fresh [`FrameworkBuilder`] and controller for every leadership term
//! ([`FrameworkBuilder::run_term`]: the term's scheduler, every write through its fenced
//! store), and after the term campaigns again or returns, as [`HaConfig::after_term`] says.
//!
//! A new leader loads the task records its predecessors wrote (intents included) and
//! reconciles them before it launches anything, so a takeover launches no duplicate. The
//! per-term state (task manager, placement, the HTTP server of [`FrameworkBuilder::server`])
//! lives only as long as the term; a standby holds none of it. The term's server is shut down
//! (its port free again) before the next campaign.
//!
//! [`HaConfig::after_term`]: crate::ha::HaConfig::after_term

use super::{Controller, Framework, FrameworkBuilder, FrameworkError};
use crate::ha::{AfterTerm, HaRunner, TermEnd};
use crate::scheduler::Scheduler;
use crate::storage::Store;

/// Stops a term's scheduler when dropped, so that dropping the [`Framework::run_ha`] future
/// (a shutdown, an aborted task) ends the term and hands leadership over at once instead of
/// leaving the term's event loop running unattended.
struct StopOnDrop(Scheduler);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stop();
    }
}

impl Framework {
    /// Runs a framework under leader election, term after term: campaigns with `runner`;
    /// once leading, asks `term` for this term's builder and controller and runs them with
    /// [`FrameworkBuilder::run_term`] until the term ends (leadership lost, `Framework failed
    /// over`, removed, or the scheduler stopped); then campaigns again, or returns the term's
    /// end when the runner's [`HaConfig::after_term`](crate::ha::HaConfig::after_term) is
    /// [`AfterTerm::Exit`].
    ///
    /// Configure the runner as [`FrameworkBuilder::run_term`] asks: its scheduler with
    /// [`AckMode::Explicit`](crate::scheduler::AckMode::Explicit), its
    /// [`HaConfig`](crate::ha::HaConfig) with the namespace of the framework's name. The
    /// builder's own store, client, framework id and scheduler settings are not used (the
    /// term brings its own); its specs, reconciliation, etiquette, timers and server are.
    ///
    /// Errors: campaigning or reading the framework state failed ([`FrameworkError::Ha`]), or
    /// a term could not start (a spec refused, the store failing, the server's port taken);
    /// leadership is handed over before the error is returned. Dropping the future stops the
    /// current term's scheduler (without TEARDOWN) and resigns.
    pub async fn run_ha<S, C, F>(
        runner: &HaRunner<S>,
        mut term: F,
    ) -> Result<TermEnd, FrameworkError>
    where
        S: Store + Clone + 'static,
        C: Controller,
        F: FnMut() -> (FrameworkBuilder, C),
    {
        loop {
            let lead = runner.lead().await?;
            let mut end = lead.end_watch();
            let _stop = StopOnDrop(lead.scheduler.clone());
            let (builder, controller) = term();
            tracing::info!(
                revision = lead.fence().revision,
                "leading: running the framework for this term"
            );
            #[allow(unused_mut)]
            let mut handle = match builder.run_term(lead, controller).await {
                Ok(handle) => handle,
                Err(error) => {
                    tracing::error!(%error, "the term could not start; handing leadership over");
                    return Err(error);
                }
            };
            let termination = handle.wait().await;
            // The event loop ends with the term's events; should it end first (it owned the
            // term, which stops the scheduler when dropped), the term ends right after.
            let end = match end.wait_for(Option::is_some).await {
                Ok(end) => end.clone(),
                Err(_) => None,
            }
            .unwrap_or(TermEnd::Stopped(termination));
            // The next term may bind the same port: wait until this term's server is gone.
            #[cfg(feature = "server")]
            if let Some(server) = handle.take_server() {
                server.shutdown().await;
            }
            drop(handle);
            tracing::info!(?end, "framework term ended");
            if runner.config().after_term == AfterTerm::Exit {
                return Ok(end);
            }
        }
    }
}
