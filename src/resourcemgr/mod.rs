//! The resource manager: Mesos resource arithmetic, the live offers, the placement of tasks on
//! them and the offer etiquette a well-behaved framework follows.
//!
//! - [`algebra`]: [`Resources`], a collection with Mesos' arithmetic (add, subtract, contains) over
//!   fixed-point scalars (three decimals), ranges and sets, kept apart per name, role,
//!   reservation, disk and the other metadata that make two resources distinct; the
//!   `cpus:4;mem:2048;ports:[31000-32000]` and `rack:r1;zone:a` text parsers.
//! - [`offer`]: [`OfferResources`], what is left of an offer while tasks are sized onto it, and
//!   [`Resources::builder`] / [`Resources::parse`] for requests. Resources taken from an offer
//!   keep its `allocation_info` and reservations, so a plain request launches as it is on a
//!   MULTI_ROLE framework's offers.
//! - [`task`]: [`CommandTask`], a `TaskInfo` builder for command tasks.
//! - [`kinds`]: reservation refinement stacks, `allocation_info`, revocable and shared resources,
//!   GPUs, disk sources and persistent volumes; flatten / unflatten / by-role views.
//! - [`mod@validate`]: Mesos' rules on resources from outside, as a typed [`ResourceError`].
//! - [`pool`]: the [`pool::OfferPool`] of live offers, per agent, never handing one out twice.
//! - [`placement`]: batch placement of task requests onto the pool with bin-packing fitness,
//!   Marathon-style constraints, reservations and persistent volumes, ports, and readable
//!   reasons for what stays unplaced; the result is ACCEPT and DECLINE calls.
//! - [`etiquette`]: DECLINE with long filters, SUPPRESS / REVIVE with a token bucket, inverse
//!   offers; a small state machine whose output is scheduler `Call`s.

pub mod algebra;
pub mod etiquette;
pub mod kinds;
#[cfg(test)]
mod laws;
pub mod offer;
pub mod placement;
pub mod pool;
pub mod task;
pub mod validate;

pub use algebra::*;
pub use kinds::*;
pub use offer::{
    Missing, OfferResources, ResourcesBuilder, Shortfall, offer_role, offered_for_role,
};
pub use task::CommandTask;

/// The resource manager's hash maps and sets: foldhash (randomly seeded per map) instead of
/// SipHash, which was ~9% of a placement round's instructions on request ids and attribute
/// values, and most of the offer pool's cost per taken offer. Keys here are ids and attribute
/// values from the master, not from untrusted clients, so flooding resistance is not needed.
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
/// See [`FastMap`].
pub(crate) type FastSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;
pub use validate::{ResourceError, validate, validate_all};
