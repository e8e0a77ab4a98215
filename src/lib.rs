//! # mesos-sdk
//!
//! A Rust SDK for writing Apache Mesos frameworks on the Mesos V1 HTTP API.
//!
//! Layers, bottom up:
//! - [`v1`]: prost types generated from the complete `mesos.v1` schema under `proto/`.
//! - [`codec`]: the two wire formats, protobuf (`application/x-protobuf`, the default) and Mesos'
//!   own JSON mapping (`application/json`).
//! - [`recordio`]: the RecordIO framing of event streams.
//! - [`duration`]: Mesos duration strings (`15mins`, `1.5secs`).
//! - [`client`]: the HTTP transport to masters and agents (stream ids, redirects, auth, TLS, typed errors).
//! - [`scheduler`] and [`executor`]: the V1 scheduler and executor runtimes.
//! - [`resourcemgr`]: the resource algebra (fixed-point scalars, ranges, sets, roles and
//!   reservations) and the helpers that size tasks on offers.
//! - [`taskmgr`]: task specs, defined in code or JSON, validated and turned into `TaskInfo`s.
//! - `server` (cargo feature `server`): the framework's HTTP server, which serves artifacts
//!   (executor binaries, archives) to the Mesos fetcher, `/health`, `/metrics`, the framework's
//!   state and the framework's own routes.
//!
//! The embedded Mesos-compatible master and agents live in the separate crate `mesos-local`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod backoff;
pub mod client;
pub mod codec;
pub mod duration;
pub mod executor;
pub mod framework;
pub mod ha;
pub mod recordio;
pub mod resourcemgr;
pub mod scheduler;
#[cfg(feature = "server")]
pub mod server;
pub mod storage;
pub mod taskmgr;
pub mod v1;

/// The README's Rust examples, compiled as doctests so that they keep up with the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
