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

pub mod constraint;
pub mod convert;
pub mod json;
mod serde_helpers;
pub mod validate;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use constraint::{Constraint, Operator};
pub use convert::{ArtifactUrls, ConvertError, NoArtifacts};
pub use validate::{SpecError, SpecErrorKind, SpecErrors};

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

impl UriSpec {
    /// A URL, extracted if it is an archive.
    pub fn url(value: impl Into<String>) -> Self {
        Self {
            value: Some(value.into()),
            artifact: None,
            executable: false,
            extract: true,
            cache: false,
            output_file: None,
        }
    }

    /// A registered artifact of the framework's server.
    pub fn artifact(name: impl Into<String>) -> Self {
        Self {
            value: None,
            artifact: Some(name.into()),
            ..Self::url("")
        }
    }

    /// Makes the file executable (which also turns extraction off).
    pub fn executable(mut self) -> Self {
        self.executable = true;
        self.extract = false;
        self
    }

    /// Sets whether an archive is extracted.
    pub fn extract(mut self, extract: bool) -> Self {
        self.extract = extract;
        self
    }

    /// Keeps the download in the fetcher cache.
    pub fn cache(mut self) -> Self {
        self.cache = true;
        self
    }

    /// Sets the file name in the sandbox.
    pub fn output_file(mut self, name: impl Into<String>) -> Self {
        self.output_file = Some(name.into());
        self
    }
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

fn health_delay() -> Duration {
    Duration::from_secs(15)
}
fn health_interval() -> Duration {
    Duration::from_secs(10)
}
fn health_timeout() -> Duration {
    Duration::from_secs(20)
}
fn health_grace() -> Duration {
    Duration::from_secs(10)
}
fn health_failures() -> u32 {
    3
}

/// The port a network health check probes: a fixed `port`, or the `port_index`-th of the ports
/// the task takes from its offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckPort {
    /// A fixed port number.
    Port(u32),
    /// An index into the task's offered ports.
    PortIndex(u32),
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

impl HealthCheckSpec {
    fn with(command: Option<Command>, http: Option<HttpCheck>, tcp: Option<TcpCheck>) -> Self {
        Self {
            command,
            http,
            tcp,
            delay: health_delay(),
            interval: health_interval(),
            timeout: health_timeout(),
            grace_period: health_grace(),
            consecutive_failures: health_failures(),
        }
    }

    /// A command check.
    pub fn command(command: Command) -> Self {
        Self::with(Some(command), None, None)
    }

    /// An HTTP check of `path` on `port`.
    pub fn http(port: CheckPort, path: impl Into<String>) -> Self {
        let (port, port_index) = port.split();
        Self::with(
            None,
            Some(HttpCheck {
                port,
                port_index,
                path: path.into(),
                scheme: Scheme::Http,
            }),
            None,
        )
    }

    /// A TCP check of `port`.
    pub fn tcp(port: CheckPort) -> Self {
        let (port, port_index) = port.split();
        Self::with(None, None, Some(TcpCheck { port, port_index }))
    }

    /// Sets the time between checks.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Sets the wait before the first check.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Sets the time a check may take.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the grace period after the task starts.
    pub fn grace_period(mut self, grace: Duration) -> Self {
        self.grace_period = grace;
        self
    }

    /// Sets the failures in a row that make the task unhealthy.
    pub fn consecutive_failures(mut self, failures: u32) -> Self {
        self.consecutive_failures = failures;
        self
    }
}

impl CheckPort {
    fn split(self) -> (Option<u32>, Option<u32>) {
        match self {
            CheckPort::Port(port) => (Some(port), None),
            CheckPort::PortIndex(index) => (None, Some(index)),
        }
    }
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

fn backoff_min() -> Duration {
    Duration::from_secs(1)
}

fn backoff_max() -> Duration {
    Duration::from_secs(300)
}

impl Default for RestartPolicy {
    fn default() -> Self {
        Self::on_failure()
    }
}

impl RestartPolicy {
    fn mode(policy: RestartMode) -> Self {
        Self {
            policy,
            max_retries: None,
            backoff_min: backoff_min(),
            backoff_max: backoff_max(),
            sticky: false,
        }
    }

    /// Never restart.
    pub fn never() -> Self {
        Self::mode(RestartMode::Never)
    }

    /// Restart after failures (the default).
    pub fn on_failure() -> Self {
        Self::mode(RestartMode::OnFailure)
    }

    /// Restart whenever the instance stops.
    pub fn always() -> Self {
        Self::mode(RestartMode::Always)
    }

    /// Gives up after `retries` restarts.
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = Some(retries);
        self
    }

    /// Sets the backoff bounds.
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.backoff_min = min;
        self.backoff_max = max;
        self
    }

    /// Prefers the last agent.
    pub fn sticky(mut self) -> Self {
        self.sticky = true;
        self
    }
}

impl TaskSpec {
    /// A spec named `name` with one instance and nothing to run yet (set a command, a Docker
    /// image or an executor).
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            instances: 1,
            command: None,
            docker: None,
            executor: None,
            resources: ResourceSpec::default(),
            env: BTreeMap::new(),
            labels: BTreeMap::new(),
            uris: Vec::new(),
            volumes: Vec::new(),
            health_check: None,
            kill_policy: None,
            restart: RestartPolicy::default(),
            constraints: Vec::new(),
            data: None,
        }
    }

    /// Sets the number of instances.
    pub fn instances(mut self, instances: u32) -> Self {
        self.instances = instances;
        self
    }

    /// Runs `command` with `/bin/sh -c`.
    pub fn shell(mut self, command: impl Into<String>) -> Self {
        self.command = Some(Command::Shell(command.into()));
        self
    }

    /// Executes `argv[0]` with `argv`.
    pub fn argv<I, S>(mut self, argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.command = Some(Command::Argv(argv.into_iter().map(Into::into).collect()));
        self
    }

    /// Runs in this Docker container.
    pub fn docker(mut self, docker: DockerSpec) -> Self {
        self.docker = Some(docker);
        self
    }

    /// Runs through this custom executor.
    pub fn executor(mut self, executor: ExecutorSpec) -> Self {
        self.executor = Some(executor);
        self
    }

    /// Sets the CPUs.
    pub fn cpus(mut self, cpus: f64) -> Self {
        self.resources.cpus = cpus;
        self
    }

    /// Sets the memory in MB.
    pub fn mem(mut self, mem: f64) -> Self {
        self.resources.mem = mem;
        self
    }

    /// Sets the disk in MB.
    pub fn disk(mut self, disk: f64) -> Self {
        self.resources.disk = disk;
        self
    }

    /// Sets the GPUs.
    pub fn gpus(mut self, gpus: u32) -> Self {
        self.resources.gpus = gpus;
        self
    }

    /// Sets the number of ports taken from the offer.
    pub fn ports(mut self, ports: u32) -> Self {
        self.resources.ports = ports;
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(name.into(), value.into());
        self
    }

    /// Sets a label.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Adds a fetcher URI.
    pub fn uri(mut self, uri: UriSpec) -> Self {
        self.uris.push(uri);
        self
    }

    /// Mounts `host_path` at `container_path`.
    pub fn volume(
        mut self,
        host_path: impl Into<String>,
        container_path: impl Into<String>,
        mode: VolumeMode,
    ) -> Self {
        self.volumes.push(VolumeSpec {
            host_path: host_path.into(),
            container_path: container_path.into(),
            mode,
        });
        self
    }

    /// Sets the health check.
    pub fn health_check(mut self, check: HealthCheckSpec) -> Self {
        self.health_check = Some(check);
        self
    }

    /// Sets the kill grace period.
    pub fn kill_grace_period(mut self, grace_period: Duration) -> Self {
        self.kill_policy = Some(KillPolicySpec { grace_period });
        self
    }

    /// Sets the restart policy.
    pub fn restart(mut self, restart: RestartPolicy) -> Self {
        self.restart = restart;
        self
    }

    /// Adds a placement constraint.
    pub fn constraint(
        mut self,
        field: impl Into<String>,
        operator: Operator,
        value: Option<&str>,
    ) -> Self {
        self.constraints.push(Constraint {
            field: field.into(),
            operator,
            value: value.map(str::to_string),
        });
        self
    }

    /// Sets the opaque data.
    pub fn data(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.data = Some(data.into());
        self
    }
}

impl DockerSpec {
    /// The image on the host network, not privileged.
    pub fn image(image: impl Into<String>) -> Self {
        Self {
            image: image.into(),
            network: DockerNetwork::Host,
            network_name: None,
            port_mappings: Vec::new(),
            privileged: false,
            force_pull: false,
            parameters: Vec::new(),
        }
    }

    /// Sets the network mode.
    pub fn network(mut self, network: DockerNetwork) -> Self {
        self.network = network;
        self
    }

    /// Uses the user-defined network `name`.
    pub fn user_network(mut self, name: impl Into<String>) -> Self {
        self.network = DockerNetwork::User;
        self.network_name = Some(name.into());
        self
    }

    /// Publishes `container_port` on a port taken from the offer (or `host_port`).
    pub fn port(mut self, container_port: u32, host_port: Option<u32>, protocol: Protocol) -> Self {
        self.port_mappings.push(PortMapping {
            container_port,
            host_port,
            protocol,
        });
        self
    }

    /// Runs privileged.
    pub fn privileged(mut self) -> Self {
        self.privileged = true;
        self
    }

    /// Always pulls the image.
    pub fn force_pull(mut self) -> Self {
        self.force_pull = true;
        self
    }

    /// Adds a `docker run --key=value` parameter.
    pub fn parameter(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.parameters.push(Parameter {
            key: key.into(),
            value: value.into(),
        });
        self
    }
}

impl ExecutorSpec {
    /// The executor whose binary is the registered artifact `name`.
    pub fn artifact(name: impl Into<String>) -> Self {
        Self {
            artifact: name.into(),
            arguments: Vec::new(),
            resources: None,
        }
    }

    /// Adds an argument.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.arguments.push(arg.into());
        self
    }

    /// Sets the executor's own resources.
    pub fn resources(mut self, resources: ResourceSpec) -> Self {
        self.resources = Some(resources);
        self
    }
}
