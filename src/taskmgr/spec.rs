//! Task specs: what to run, how many, with what, and what to do when it stops. The data model and
//! its builders live here; the JSON reader ([`TaskSpecs::from_json`]) in [`json`], validation
//! in [`validate`], placement constraints in [`constraint`] and the conversion to a `TaskInfo`
//! in [`convert`].
//!
//! The same structure is written in code and in JSON (serde, `snake_case` keys):
//!
//! ```
//! use mesos_sdk::taskmgr::spec::{Command, Operator, RestartPolicy, TaskSpec, TaskSpecs};
//! use std::time::Duration;
//!
//! let in_code = TaskSpec::new("web")
//!     .instances(2)
//!     .shell("python3 -m http.server $PORT0")
//!     .cpus(0.5)
//!     .mem(128.0)
//!     .ports(1)
//!     .env("MODE", "prod")
//!     .restart(RestartPolicy::on_failure().max_retries(5))
//!     .constraint("hostname", Operator::Unique, None);
//!
//! let in_json = TaskSpecs::from_json(r#"{"tasks": [{
//!     "name": "web",
//!     "instances": 2,
//!     "command": {"shell": "python3 -m http.server $PORT0"},
//!     "resources": {"cpus": 0.5, "mem": 128, "ports": 1},
//!     "env": {"MODE": "prod"},
//!     "restart": {"policy": "on_failure", "max_retries": 5},
//!     "constraints": [{"field": "hostname", "operator": "UNIQUE"}]
//! }]}"#)?;
//! assert_eq!(in_json.tasks, vec![in_code]);
//! # Ok::<(), mesos_sdk::taskmgr::spec::SpecErrors>(())
//! ```
//!
//! What runs is one of: a `command` (a shell string or an argv), a `docker` image (optionally
//! with a `command` run in it), or a custom `executor` whose binary is an artifact of the
//! framework's artifact server, referenced by name. Durations are Mesos duration strings
//! (`"10secs"`, `"500ms"`), opaque `data` is base64.
//!
//! Defaults where Mesos or Marathon have one: 1 instance; URIs extracted, not executable, not
//! cached; volumes read-write; health checks with Mesos' timings (15 s delay, 10 s interval, 20 s
//! timeout, 10 s grace, 3 consecutive failures); restart `on_failure` with unlimited retries and a
//! backoff from 1 s to 5 min, not sticky; Docker on the `host` network, not privileged.

mod builders;
pub mod constraint;
pub mod convert;
pub mod json;
mod serde_helpers;
pub mod validate;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use builders::CheckPort;
pub use constraint::{Constraint, Operator};
pub use convert::{ArtifactUrls, ConvertError, NoArtifacts};
pub use validate::{JsonPath, SpecError, SpecErrorKind, SpecErrors};

/// A document of task specs: `{"tasks": [...]}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskSpecs {
    /// The specs, each with a unique name.
    #[serde(default)]
    pub tasks: Vec<TaskSpec>,
}

/// One task spec: `instances` copies of the same task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskSpec {
    /// The spec's name: 1 to 64 of `A-Z a-z 0-9 . _ -`, starting with a letter or digit. Task
    /// names and ids are made from it.
    #[serde(default)]
    pub name: String,
    /// How many copies run (0 keeps the spec with nothing running).
    #[serde(default = "one")]
    pub instances: u32,
    /// The command to run (alone, or inside the `docker` image).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Command>,
    /// A Docker image to run (with the Docker containerizer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker: Option<DockerSpec>,
    /// A custom executor to run the task (excludes `command` and `docker`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor: Option<ExecutorSpec>,
    /// The resources of each instance.
    #[serde(default)]
    pub resources: ResourceSpec,
    /// Environment variables of the command (or executor).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Task labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Files the Mesos fetcher puts into the sandbox first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uris: Vec<UriSpec>,
    /// Host paths mounted into the task's container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<VolumeSpec>,
    /// The health check Mesos runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheckSpec>,
    /// How the task is killed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill_policy: Option<KillPolicySpec>,
    /// What happens when an instance stops.
    #[serde(default)]
    pub restart: RestartPolicy,
    /// Placement constraints (Marathon's operators), applied by the resource manager.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<Constraint>,
    /// Opaque data handed to the executor (`TaskInfo.data`); base64 in JSON.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "serde_helpers::base64_bytes"
    )]
    pub data: Option<Vec<u8>>,
}

fn one() -> u32 {
    1
}

/// A command: `{"shell": "echo hi"}` runs with `/bin/sh -c`; `{"argv": ["/bin/echo", "hi"]}`
/// executes `argv[0]` directly with the whole argv.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Command {
    /// A shell command line.
    Shell(String),
    /// A program and its arguments, `argv[0]` first.
    Argv(Vec<String>),
}

/// A Docker container (`ContainerInfo` of type `DOCKER`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerSpec {
    /// The image, e.g. `nginx:1.27`.
    #[serde(default)]
    pub image: String,
    /// The network mode.
    #[serde(default)]
    pub network: DockerNetwork,
    /// The network's name, for `network: user` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_name: Option<String>,
    /// Ports published from the container (`bridge` and `user` networks).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub port_mappings: Vec<PortMapping>,
    /// Runs the container privileged (off by default).
    #[serde(default, skip_serializing_if = "is_false")]
    pub privileged: bool,
    /// Pulls the image even when the agent has it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub force_pull: bool,
    /// Extra `docker run` parameters (`--key=value`), in order; a key may repeat.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<Parameter>,
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// A Docker network mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DockerNetwork {
    /// The agent's network (the default).
    #[default]
    Host,
    /// Docker's bridge, with port mappings.
    Bridge,
    /// No network.
    None,
    /// A user-defined network (`network_name`).
    User,
}

/// A port published from a Docker container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortMapping {
    /// The port inside the container.
    #[serde(default)]
    pub container_port: u32,
    /// A fixed host port; absent, the next of the task's offered ports (`resources.ports`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_port: Option<u32>,
    /// The protocol (default tcp).
    #[serde(default)]
    pub protocol: Protocol,
}

/// A port mapping's protocol.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// TCP (the default).
    #[default]
    Tcp,
    /// UDP.
    Udp,
}

/// A `docker run` parameter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Parameter {
    /// The option name without dashes (`label`, `ulimit`).
    #[serde(default)]
    pub key: String,
    /// Its value.
    #[serde(default)]
    pub value: String,
}

/// A custom executor served by the framework's artifact server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutorSpec {
    /// The registered artifact that is the executor's binary (fetched executable, run as
    /// `./<artifact>`).
    #[serde(default)]
    pub artifact: String,
    /// Arguments after the program name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arguments: Vec<String>,
    /// The executor's own resources, on top of the task's (default: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceSpec>,
}

/// The resources of one instance: scalars and a number of ports taken from the offer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceSpec {
    /// CPUs (> 0).
    #[serde(default)]
    pub cpus: f64,
    /// Memory in MB (> 0).
    #[serde(default)]
    pub mem: f64,
    /// Disk in MB.
    #[serde(default, skip_serializing_if = "is_zero_f64")]
    pub disk: f64,
    /// Whole GPUs.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub gpus: u32,
    /// How many ports to take from the offer (exported as `PORT0`, `PORT1`, ... and `PORTS`).
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub ports: u32,
}

fn is_zero_f64(value: &f64) -> bool {
    *value == 0.0
}

fn is_zero_u32(value: &u32) -> bool {
    *value == 0
}

/// A file for the Mesos fetcher: a URL, or a registered artifact of the framework's server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UriSpec {
    /// A URL (`http`, `https`, `file`, or whatever the agents' fetcher supports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The name of a registered artifact, instead of `value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<String>,
    /// Makes the file executable (and not extracted).
    #[serde(default, skip_serializing_if = "is_false")]
    pub executable: bool,
    /// Extracts an archive into the sandbox (default true).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub extract: bool,
    /// Keeps the download in the agent's fetcher cache.
    #[serde(default, skip_serializing_if = "is_false")]
    pub cache: bool,
    /// The file name in the sandbox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_file: Option<String>,
}

fn yes() -> bool {
    true
}

fn is_true(value: &bool) -> bool {
    *value
}

/// A host path mounted into the task's container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeSpec {
    /// The absolute path on the agent.
    #[serde(default)]
    pub host_path: String,
    /// Where it appears in the container (relative paths are under the sandbox).
    #[serde(default)]
    pub container_path: String,
    /// Read-write (default) or read-only.
    #[serde(default)]
    pub mode: VolumeMode,
}

/// A volume's access mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VolumeMode {
    /// Read-write.
    #[default]
    Rw,
    /// Read-only.
    Ro,
}

/// A health check: exactly one of `command`, `http` and `tcp`, with Mesos' timings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckSpec {
    /// A command that exits 0 when healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Command>,
    /// An HTTP GET that answers 2xx or 3xx when healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpCheck>,
    /// A TCP port that accepts connections when healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpCheck>,
    /// Wait before the first check (default 15 s).
    #[serde(default = "health_delay", with = "serde_helpers::duration")]
    pub delay: Duration,
    /// Time between checks (default 10 s).
    #[serde(default = "health_interval", with = "serde_helpers::duration")]
    pub interval: Duration,
    /// Time a check may take (default 20 s).
    #[serde(default = "health_timeout", with = "serde_helpers::duration")]
    pub timeout: Duration,
    /// Failures ignored after the task starts (default 10 s).
    #[serde(default = "health_grace", with = "serde_helpers::duration")]
    pub grace_period: Duration,
    /// Failures in a row that make the task unhealthy (default 3).
    #[serde(default = "health_failures")]
    pub consecutive_failures: u32,
}

pub(super) fn health_delay() -> Duration {
    Duration::from_secs(15)
}
pub(super) fn health_interval() -> Duration {
    Duration::from_secs(10)
}
pub(super) fn health_timeout() -> Duration {
    Duration::from_secs(20)
}
pub(super) fn health_grace() -> Duration {
    Duration::from_secs(10)
}
pub(super) fn health_failures() -> u32 {
    3
}

/// An HTTP health check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpCheck {
    /// A fixed port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    /// An index into the task's offered ports, instead of `port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_index: Option<u32>,
    /// The path (default `/`).
    #[serde(default = "root_path")]
    pub path: String,
    /// `http` (default) or `https`.
    #[serde(default)]
    pub scheme: Scheme,
}

fn root_path() -> String {
    "/".into()
}

/// An HTTP health check's scheme.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scheme {
    /// Plain HTTP.
    #[default]
    Http,
    /// HTTPS (certificates are not checked by Mesos).
    Https,
}

/// A TCP health check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpCheck {
    /// A fixed port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    /// An index into the task's offered ports, instead of `port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_index: Option<u32>,
}

/// How a task is killed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KillPolicySpec {
    /// Time between the polite signal (SIGTERM) and SIGKILL.
    #[serde(with = "serde_helpers::duration")]
    pub grace_period: Duration,
}

/// When an instance is restarted after it stops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RestartMode {
    /// Never: a stopped instance stays stopped.
    Never,
    /// After it failed, was lost or killed by someone else; not after it finished (the default).
    #[default]
    OnFailure,
    /// Whenever it stops, even after finishing successfully.
    Always,
}

/// The restart policy: when, how often, how fast, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestartPolicy {
    /// When to restart.
    #[serde(default)]
    pub policy: RestartMode,
    /// Restarts before the instance is given up (absent: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
    /// The first backoff delay, doubled after each failure (default 1 s).
    #[serde(default = "backoff_min", with = "serde_helpers::duration")]
    pub backoff_min: Duration,
    /// The longest backoff delay (default 5 min).
    #[serde(default = "backoff_max", with = "serde_helpers::duration")]
    pub backoff_max: Duration,
    /// Prefers the agent the instance last ran on (for local state).
    #[serde(default, skip_serializing_if = "is_false")]
    pub sticky: bool,
}

pub(super) fn backoff_min() -> Duration {
    Duration::from_secs(1)
}

pub(super) fn backoff_max() -> Duration {
    Duration::from_secs(300)
}

impl Default for RestartPolicy {
    fn default() -> Self {
        Self::on_failure()
    }
}
