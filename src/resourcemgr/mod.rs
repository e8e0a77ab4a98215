//! The resource manager: Mesos resource arithmetic and the helpers that size tasks on offers.
//!
//! - [`algebra`]: [`Resources`], a collection with Mesos' arithmetic (add, subtract, contains) over
//!   fixed-point scalars (three decimals), ranges and sets, kept apart per name, role,
//!   reservation, disk and the other metadata that make two resources distinct; the
//!   `cpus:4;mem:2048;ports:[31000-32000]` and `rack:r1;zone:a` text parsers.

pub mod algebra;

pub use algebra::*;
