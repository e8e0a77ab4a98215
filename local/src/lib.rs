//! # mesos-local
//!
//! An embedded Mesos-compatible cluster: one master and any number of agents in one process,
//! speaking the real V1 HTTP APIs over loopback.
//!
//! - [`master`]: the master (`/api/v1/scheduler`, `/api/v1` operator API, `/state`, `/health`).
//! - [`agent`]: the agents (`/api/v1/executor`, fetcher, sandboxes, executors, command executor).
//! - [`link`]: the in-process messages between the master and its agents.
//! - [`ids`]: Mesos' rules for the ids that name directories (task, executor, framework, container).
//! - [`status_message`]: the bound on the message of task status updates.
//! - [`cluster`]: starts a master and its agents together; what the `mesos-local` binary runs.
//! - [`server`]: the HTTP server stack both use (limits against slow and hostile clients) and
//!   their shared V1 request checks.
//!
//! Resources and attributes are parsed and counted with the SDK's [`mesos_sdk::resourcemgr`].

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod agent;
pub mod cluster;
pub mod ids;
pub mod link;
pub mod master;
pub mod server;
pub mod status_message;
