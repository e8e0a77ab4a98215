//! The resource manager: Mesos resource arithmetic and the helpers that size tasks on offers.
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

pub mod algebra;
pub mod offer;
pub mod task;

pub use algebra::*;
pub use offer::{
    Missing, OfferResources, ResourcesBuilder, Shortfall, offer_role, offered_for_role,
};
pub use task::CommandTask;
