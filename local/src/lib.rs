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
//!
//! Resources and attributes are parsed and counted with the SDK's [`mesos_sdk::resourcemgr`].

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod agent;
pub mod cluster;
pub mod ids;
pub mod link;
pub mod master;
pub mod status_message;

/// The `Accept` header of a request as one value (repeated headers joined with commas), as
/// [`mesos_sdk::codec::Format::from_accept`] reads it; `None` when there is none.
pub(crate) fn accept_header(headers: &http::HeaderMap) -> Option<String> {
    let values: Vec<&str> = headers
        .get_all(http::header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .collect();
    (!values.is_empty()).then(|| values.join(","))
}
