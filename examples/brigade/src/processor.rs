//! The processor configuration: the original Brigade's JSON schema (`name`, `input`, `output`,
//! `error`, `docker` or `command`, `cpus`, `mem`, `volumes`, `env`) plus the fields operators
//! need (`timeout`, `max_in_flight`, `retries`/`backoff`/`max_backoff`, `constraints`,
//! `docker_options`, `mode`, `workers`, `stream`, `max_output`), with accessors for the scheduler and the
//! executor. Parsing and validation (every problem with its field) live in [`validate`].
//!
//! JSON written by [`Processor::to_json`] parses back to an equal processor.
//!
//! ```
//! use brigade::processor::{Mode, Processor};
//!
//! let p = Processor::from_json(r#"{
//!     "name": "upper", "input": "in", "output": "out", "error": "err",
//!     "command": "tr a-z A-Z", "cpus": "0.1", "mem": "32"
//! }"#).unwrap();
//! assert_eq!(p.cpus(), 0.1);
//! assert_eq!(p.mode(), Mode::PerMessage);
//! let again = Processor::from_json(&p.to_json()).unwrap();
//! assert_eq!(p, again);
//! ```

pub mod validate;

use std::time::Duration;

use mesos_sdk::resourcemgr::placement::{Constraint, Preference};
use serde::{Deserialize, Serialize};

pub use validate::{FieldError, ValidationErrors};

/// Default `cpus` when the JSON leaves it out.
pub const DEFAULT_CPUS: f64 = 0.1;
/// Default `mem` (MB) when the JSON leaves it out.
pub const DEFAULT_MEM: f64 = 64.0;
/// Default `timeout` when the JSON leaves it out.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Default `max_in_flight`.
pub const DEFAULT_MAX_IN_FLIGHT: u32 = 16;
/// Default `backoff` (the first retry's delay; each further retry doubles it).
pub const DEFAULT_BACKOFF: Duration = Duration::from_secs(1);
/// Default `max_backoff`.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Default `max_output`: the bound on a processor's stdout, in bytes (1 MiB).
pub const DEFAULT_MAX_OUTPUT: u64 = 1 << 20;

/// One processor: what runs for every message of its input topic, and where results go.
///
/// Build one with [`Processor::from_json`] (or serde, which runs the same validation); the
/// fields are read through the accessors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "serde_json::Value")]
pub struct Processor {
    pub(crate) name: String,
    pub(crate) input: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) output: Option<String>,
    pub(crate) error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) docker: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) command: Option<String>,
    pub(crate) cpus: f64,
    pub(crate) mem: f64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) volumes: Vec<Volume>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) env: Vec<String>,
    #[serde(serialize_with = "duration_text::serialize")]
    pub(crate) timeout: Duration,
    pub(crate) max_in_flight: u32,
    pub(crate) retries: u32,
    #[serde(serialize_with = "duration_text::serialize")]
    pub(crate) backoff: Duration,
    #[serde(serialize_with = "duration_text::serialize")]
    pub(crate) max_backoff: Duration,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) constraints: Vec<ConstraintSpec>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) docker_options: Option<DockerOptions>,
    pub(crate) mode: Mode,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) workers: Option<Workers>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) stream: Option<Stream>,
    pub(crate) max_output: u64,
}

/// How a warm worker talks to its processor (`"stream"`, warm mode only). Without it, the
/// processor runs once per message (the message on stdin, its stdout the result).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stream {
    /// The processor starts once per worker slot and stays up: each message is one line on its
    /// stdin (without the newline, which a message must not contain), each result one line on
    /// its stdout, in order. Exiting, a timeout or an over-long line fails what it had in
    /// flight and the process is started again.
    Lines,
}

/// How a processor's tasks run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// One Mesos task (and executor) per message (the original's model).
    #[default]
    PerMessage,
    /// Long-lived worker tasks that each take many messages.
    Warm,
}

/// What a processor runs: a Docker image or a shell command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runner<'a> {
    /// A Docker image, run with `docker run --rm -i`.
    Docker(&'a str),
    /// A command, run with `sh -c` (directly when it has no shell syntax, e.g. `cat`).
    Command(&'a str),
}

/// A volume mounted into a Docker processor's container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    /// The path on the agent.
    #[serde(rename = "host-path")]
    pub host_path: String,
    /// The path in the container.
    #[serde(rename = "container-path")]
    pub container_path: String,
    /// Read-only or read-write.
    pub mode: VolumeMode,
}

/// A volume's access mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum VolumeMode {
    /// Read-only.
    #[serde(rename = "RO")]
    ReadOnly,
    /// Read-write.
    #[serde(rename = "RW")]
    ReadWrite,
}

/// A placement constraint as written in the JSON: Marathon's triple `[field, OPERATOR, value]`
/// for the hard operators (`UNIQUE`, `CLUSTER`, `GROUP_BY`, `LIKE`, `UNLIKE`, `MAX_PER`, `IS`,
/// `IN`), or `[field, "PREFER", value]` for a soft preference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "Vec<String>", try_from = "Vec<String>")]
pub struct ConstraintSpec {
    /// `hostname` or an agent attribute.
    pub field: String,
    /// The operator, upper case.
    pub operator: String,
    /// The operator's parameter.
    pub value: Option<String>,
}

/// Options for Docker processors beyond the image.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DockerOptions {
    /// `--network`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// `--user`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Further `docker run` arguments, placed before the image.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub args: Vec<String>,
}

/// Warm mode's worker pool size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workers {
    /// Workers kept while idle.
    pub min: u32,
    /// Workers at most.
    pub max: u32,
}

impl Processor {
    /// Parses and validates a processor. The error lists every problem with its field
    /// (unknown keys included).
    pub fn from_json(text: &str) -> Result<Processor, ValidationErrors> {
        validate::from_json(text)
    }

    /// Validates an already-parsed JSON value.
    pub fn from_value(value: serde_json::Value) -> Result<Processor, ValidationErrors> {
        validate::from_value(value)
    }

    /// The JSON form (compact). It parses back to an equal processor.
    pub fn to_json(&self) -> String {
        // Serializing plain strings, numbers and vectors cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The processor's name (letters, digits, `.`, `_`, `-`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The Mesos framework name of its process scheduler: `brigade-<name>`.
    pub fn framework_name(&self) -> String {
        format!("brigade-{}", self.name)
    }

    /// The input topic.
    pub fn input(&self) -> &str {
        &self.input
    }

    /// The output topic, if any.
    pub fn output(&self) -> Option<&str> {
        self.output.as_deref()
    }

    /// The error topic.
    pub fn error(&self) -> &str {
        &self.error
    }

    /// The image or the command.
    pub fn runner(&self) -> Runner<'_> {
        match (&self.docker, &self.command) {
            (Some(image), _) => Runner::Docker(image),
            (None, Some(command)) => Runner::Command(command),
            // Validation guarantees exactly one; an empty command is the harmless fallback.
            (None, None) => Runner::Command(""),
        }
    }

    /// The Docker image, for a Docker processor.
    pub fn docker(&self) -> Option<&str> {
        self.docker.as_deref()
    }

    /// The command, for a command processor.
    pub fn command(&self) -> Option<&str> {
        self.command.as_deref()
    }

    /// CPUs per task.
    pub fn cpus(&self) -> f64 {
        self.cpus
    }

    /// Memory per task, MB.
    pub fn mem(&self) -> f64 {
        self.mem
    }

    /// Volumes (Docker processors).
    pub fn volumes(&self) -> &[Volume] {
        &self.volumes
    }

    /// Environment entries as written (`K=V`).
    pub fn env(&self) -> &[String] {
        &self.env
    }

    /// Environment entries split into name and value.
    pub fn env_pairs(&self) -> Vec<(&str, &str)> {
        self.env
            .iter()
            .filter_map(|entry| entry.split_once('='))
            .collect()
    }

    /// How long one message may take before its task fails.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Tasks pending or running at most (consumption pauses above it).
    pub fn max_in_flight(&self) -> u32 {
        self.max_in_flight
    }

    /// How many times a failed message is re-run before its error record is written.
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// The first retry's delay.
    pub fn backoff(&self) -> Duration {
        self.backoff
    }

    /// The longest retry delay.
    pub fn max_backoff(&self) -> Duration {
        self.max_backoff
    }

    /// The delay before retry number `attempt` (1 for the first retry): `backoff` doubled for
    /// each further attempt, capped at `max_backoff`.
    pub fn backoff_for(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(32);
        self.backoff
            .saturating_mul(1u32 << doublings.min(31))
            .min(self.max_backoff)
    }

    /// The constraints as written.
    pub fn constraint_specs(&self) -> &[ConstraintSpec] {
        &self.constraints
    }

    /// The hard constraints, for the resource manager's placer.
    pub fn hard_constraints(&self) -> Vec<Constraint> {
        self.constraints
            .iter()
            .filter(|c| !c.is_soft())
            .filter_map(|c| Constraint::parse(&c.field, &c.operator, c.value.as_deref()).ok())
            .collect()
    }

    /// The soft preferences (`PREFER`), for the resource manager's placer.
    pub fn preferences(&self) -> Vec<Preference> {
        self.constraints
            .iter()
            .filter(|c| c.is_soft())
            .map(|c| Preference {
                field: c.field.clone(),
                value: c.value.clone().unwrap_or_default(),
            })
            .collect()
    }

    /// Docker options (Docker processors only).
    pub fn docker_options(&self) -> Option<&DockerOptions> {
        self.docker_options.as_ref()
    }

    /// Per-message or warm.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Warm mode's worker pool size (min 1, max 2 when not given).
    pub fn workers(&self) -> Workers {
        self.workers.unwrap_or(Workers { min: 1, max: 2 })
    }

    /// Warm mode's streaming protocol, if the processor stays up between messages.
    pub fn stream(&self) -> Option<Stream> {
        self.stream
    }

    /// The bound on a task's stdout, bytes; more fails the task.
    pub fn max_output(&self) -> u64 {
        self.max_output
    }
}

impl ConstraintSpec {
    /// The soft operator's name.
    pub const PREFER: &'static str = "PREFER";

    /// Whether this is a soft preference.
    pub fn is_soft(&self) -> bool {
        self.operator == Self::PREFER
    }
}

impl From<ConstraintSpec> for Vec<String> {
    fn from(c: ConstraintSpec) -> Self {
        let mut v = vec![c.field, c.operator];
        v.extend(c.value);
        v
    }
}

impl TryFrom<Vec<String>> for ConstraintSpec {
    type Error = String;

    fn try_from(v: Vec<String>) -> Result<Self, Self::Error> {
        validate::constraint_from_parts(&v)
    }
}

impl TryFrom<serde_json::Value> for Processor {
    type Error = ValidationErrors;

    fn try_from(value: serde_json::Value) -> Result<Self, Self::Error> {
        validate::from_value(value)
    }
}

/// Durations as Mesos duration text (`30secs`) in JSON (parsing is in [`validate`]).
mod duration_text {
    use std::time::Duration;

    use mesos_sdk::duration::format_duration;
    use serde::Serializer;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*d))
    }
}
