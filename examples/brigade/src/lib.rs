//! Brigade: a Mesos framework built on `mesos-sdk` that watches Kafka topics and, for every
//! message, runs a processor (a Docker image or a command) as a Mesos task that reads the
//! message on stdin and writes its result on stdout. Results go to the processor's output
//! topic, failures to its error topic; nothing is lost (at-least-once).
//!
//! Layers, bottom up:
//! - [`processor`]: the processor configuration (the original Brigade's JSON schema plus the
//!   operator fields) and its validation.
//! - [`protocol`]: the contract between the scheduler and `brigade-executor`: how a message
//!   and its processor travel in a TaskInfo and how the result comes back in a TaskStatus.
//! - [`exec`]: what `brigade-executor` does with a task: run the command or the Docker image,
//!   feed stdin, capture stdout (bounded) and the tail of stderr, enforce the timeout.
//! - [`kafka`]: consumer, producer and the offset tracker that commits an input offset only
//!   when every message up to it has its output or error record acknowledged.
//! - [`pipeline`]: the process scheduler, one Mesos framework per processor.
//! - [`demo`]: `brigade demo`, everything in-process on embedded defaults.
//! - [`general`]: the meta scheduler (processors from files or etcd, reconciled live).
//! - [`api`]: the REST API over the meta scheduler, with its OpenAPI document.
//! - [`cli`]: `brigade scheduler` and the `brigade processor ...` client commands.
//! - [`ui`]: the web UI (embedded HTML, JavaScript and CSS).

pub mod api;
pub mod cli;
pub mod demo;
pub mod exec;
pub mod general;
pub mod kafka;
pub mod pipeline;
pub mod processor;
pub mod protocol;
pub mod ui;
