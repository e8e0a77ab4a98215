//! The builders of task specs: chainable calls that fill the same structs the JSON reader fills
//! (`TaskSpec::new("web").shell("...").cpus(0.5)`).

use std::collections::BTreeMap;
use std::time::Duration;

use super::{
    Command, Constraint, DockerNetwork, DockerSpec, ExecutorSpec, HealthCheckSpec, HttpCheck,
    KillPolicySpec, Operator, Parameter, PortMapping, Protocol, ResourceSpec, RestartMode,
    RestartPolicy, Scheme, TaskSpec, TcpCheck, UriSpec, VolumeMode, VolumeSpec, backoff_max,
    backoff_min, health_delay, health_failures, health_grace, health_interval, health_timeout,
};

/// The port a network health check probes: a fixed `port`, or the `port_index`-th of the ports
/// the task takes from its offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckPort {
    /// A fixed port number.
    Port(u32),
    /// An index into the task's offered ports.
    PortIndex(u32),
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
