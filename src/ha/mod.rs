//! High availability for frameworks: leader election with fencing over any
//! [`Store`](crate::storage::Store).
//!
//! Run two or three instances of a framework; each campaigns with a [`LeaderElection`]. The
//! winner gets a [`Leadership`]: its [`Fence`] (leader key and create revision), a lease kept
//! alive in the background, and [`Leadership::lost`], which resolves when leadership ends
//! (deadline passed, lease gone, key changed). All state writes a leader makes go through
//! [`Leadership::fenced`] (a [`FencedStore`]), so that a deposed leader that still believes it
//! leads (paused, partitioned) cannot change anything: its writes fail with
//! [`Error::NotLeader`](crate::storage::Error::NotLeader). Standbys learn who leads, with the
//! leader's advertised address, from [`LeaderElection::observe`].
//!
//! ```no_run
//! use mesos_sdk::ha::{ElectionConfig, LeaderElection};
//! use mesos_sdk::storage::{MemoryStore, Namespace, StoreExt};
//!
//! # async fn demo() -> Result<(), mesos_sdk::storage::Error> {
//! let store = MemoryStore::new(); // EtcdStore in production
//! let ns = Namespace::new("my-framework")?;
//! let config = ElectionConfig::new(ns.key("leader"), "instance-1", "http://10.0.0.1:8080");
//! let election = LeaderElection::new(store.clone(), config)?;
//! let leadership = election.campaign().await?;
//! let state = leadership.fenced(store.clone());
//! state.put_json(&ns.key("intent/task-1"), &"launch", None).await?;
//! let reason = leadership.lost().await; // stop acting now
//! # let _ = reason;
//! # Ok(())
//! # }
//! ```

mod election;
mod fence;
mod runner;

pub use election::{
    DEFAULT_TTL, ElectionConfig, LeaderElection, LeaderInfo, Leadership, LossReason,
};
pub use fence::{Fence, FencedStore};
pub use runner::{AfterTerm, ConfigureScheduler, HaConfig, HaError, HaRunner, Term, TermEnd};
