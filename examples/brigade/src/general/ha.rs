//! Leader election for `brigade scheduler` run as two or three instances (the SDK's
//! [`mesos_sdk::ha`] over etcd): every instance serves the REST API and the UI; only the
//! leader runs process schedulers (the reconcile loop of a standby starts nothing and drains
//! what runs); standbys proxy API requests to the leader (see [`crate::api::standby`]). Every
//! write the leader makes goes through the fenced view of its term ([`super::fenced`]), so a
//! deposed leader that wakes cannot write. A new leader resumes each processor's framework
//! with its framework id persisted in the same store.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::StreamExt;
use mesos_sdk::ha::{ElectionConfig, LeaderElection};
use tokio::task::JoinHandle;

use super::Shared;
use super::fenced::TermStore;

/// The default key of Brigade's leader.
pub const DEFAULT_LEADER_KEY: &str = "/brigade/leader";

/// Campaigns for leadership on `writes`' store until aborted: while this instance leads,
/// `writes` holds the term's fenced view and `shared.leader` is set; `shared.leader_url`
/// follows the current leader's address; the reconcile loop is woken on every change.
/// Returns the tasks (abort them to stop).
pub fn run_election(
    writes: TermStore,
    shared: Arc<Shared>,
    key: &str,
    address: &str,
    ttl: Duration,
) -> Result<Vec<JoinHandle<()>>, mesos_sdk::storage::Error> {
    let id = format!("brigade-{}", uuid::Uuid::new_v4().simple());
    let store = writes.unfenced().clone();
    let election = Arc::new(LeaderElection::new(
        store.clone(),
        ElectionConfig::with_ttl(key, id.clone(), address, ttl),
    )?);
    let observer = {
        let shared = shared.clone();
        let mut changes = election.observe();
        tokio::spawn(async move {
            while let Some(leader) = changes.next().await {
                tracing::info!(leader = ?leader.as_ref().map(|l| &l.address), "leader changed");
                if let Ok(mut url) = shared.leader_url.lock() {
                    *url = leader.map(|l| l.address);
                }
            }
        })
    };
    let campaign = tokio::spawn(async move {
        loop {
            match election.campaign().await {
                Ok(leadership) => {
                    tracing::info!(%id, revision = leadership.fence().revision, "leading: starting the process schedulers");
                    // Fenced before anything runs; unfenced only after the drain was asked.
                    writes.begin(leadership.fenced(store.clone()));
                    shared.leader.store(true, Ordering::SeqCst);
                    shared.wake.notify_one();
                    let reason = leadership.lost().await;
                    tracing::warn!(?reason, "leadership lost: draining the process schedulers");
                    writes.end();
                    shared.leader.store(false, Ordering::SeqCst);
                    shared.wake.notify_one();
                }
                Err(e) => {
                    tracing::warn!(error = %e, "campaign failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    });
    Ok(vec![observer, campaign])
}
