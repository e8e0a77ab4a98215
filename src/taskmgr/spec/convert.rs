//! From a validated spec to the `TaskInfo` of one instance, with resources taken out of an offer
//! ([`OfferResources`]): the command (through [`CommandTask`] for plain command tasks), Docker
//! container, custom executor, fetcher URIs (artifacts resolved through [`ArtifactUrls`]),
//! volumes, health check, kill policy, labels and data.
//!
//! Choices:
//! - Offered ports: fixed Docker host ports are taken first, then `resources.ports` more of the
//!   lowest free ones; the latter are exported as `PORT0`, `PORT1`, ... and `PORTS`
//!   (comma-separated), are the host side of Docker mappings without a `host_port`, in order,
//!   and are what health-check `port_index` values point at.
//! - A custom executor gets the id `<task id>.executor`, its artifact fetched executable and run
//!   as `./<artifact>`, the spec's environment, URIs and volumes, and the executor's own
//!   resources; its `framework_id` is left for the master to fill in, as Mesos does.
//! - A spec with volumes but no Docker image gets a `MESOS` container for them.
//! - When anything is missing from the offer, the offer is left as it was.

use bytes::Bytes;

use crate::resourcemgr::offer::{OfferResources, Shortfall};
use crate::resourcemgr::task::CommandTask;
use crate::resourcemgr::{Resources, ranges};
use crate::v1::command_info::Uri;
use crate::v1::container_info::{self, DockerInfo, docker_info};
use crate::v1::environment::Variable;
use crate::v1::{
    self, CommandInfo, ContainerInfo, DurationInfo, Environment, ExecutorId, ExecutorInfo,
    HealthCheck, KillPolicy, Label, Labels, NetworkInfo, Resource, TaskId, TaskInfo, Volume,
    health_check,
};

use super::validate::{JsonPath, SpecErrorKind, SpecErrors};
use super::{
    Command, DockerNetwork, DockerSpec, HealthCheckSpec, Protocol, ResourceSpec, Scheme, TaskSpec,
    UriSpec, VolumeMode,
};

/// Resolves artifact names of a spec (`executor.artifact`, `uris[].artifact`) to URLs the agents
/// can fetch. The artifact server's handle implements it (feature `server`); so does any
/// `Fn(&str) -> Option<String>`.
pub trait ArtifactUrls {
    /// The URL of the artifact `name`, if it is registered.
    fn artifact_url(&self, name: &str) -> Option<String>;
}

impl<F> ArtifactUrls for F
where
    F: Fn(&str) -> Option<String>,
{
    fn artifact_url(&self, name: &str) -> Option<String> {
        self(name)
    }
}

/// For specs that reference no artifact: every name is unknown.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoArtifacts;

impl ArtifactUrls for NoArtifacts {
    fn artifact_url(&self, _name: &str) -> Option<String> {
        None
    }
}

/// Why a spec instance could not be turned into a `TaskInfo`.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// The spec does not validate.
    #[error("invalid task spec:\n{0}")]
    Invalid(#[from] SpecErrors),
    /// The spec names an artifact that is not registered.
    #[error("artifact {name:?} is not registered")]
    UnknownArtifact {
        /// The name.
        name: String,
    },
    /// The offer lacks resources the instance needs (the offer is left as it was).
    #[error("the offer is too small: {0}")]
    Shortfall(#[from] Shortfall),
}

impl TaskSpec {
    /// The `TaskInfo` of one instance with id `task_id`, its resources taken out of `offer`.
    pub fn task_info(
        &self,
        task_id: impl Into<String>,
        offer: &mut OfferResources,
        artifacts: &dyn ArtifactUrls,
    ) -> Result<TaskInfo, ConvertError> {
        self.validate()?;
        let task_id = task_id.into();
        let mut uris = self
            .uris
            .iter()
            .map(|uri| fetch_uri(uri, artifacts))
            .collect::<Result<Vec<_>, _>>()?;
        let executor_uri = match &self.executor {
            Some(executor) => Some(fetch_uri(
                &UriSpec::artifact(&executor.artifact).executable(),
                artifacts,
            )?),
            None => None,
        };

        let before = offer.clone();
        let taken = self.take_resources(offer);
        let Taken {
            resources,
            executor_resources,
            ports,
        } = match taken {
            Ok(taken) => taken,
            Err(shortfall) => {
                *offer = before;
                return Err(shortfall.into());
            }
        };

        let mut env: Vec<(String, String)> = self
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (i, port) in ports.iter().enumerate() {
            env.push((format!("PORT{i}"), port.to_string()));
        }
        if !ports.is_empty() {
            let list: Vec<String> = ports.iter().map(u64::to_string).collect();
            env.push(("PORTS".into(), list.join(",")));
        }
        let agent_id = offer.agent_id().clone();
        let mut task = match (&self.command, &self.docker, &self.executor) {
            (Some(command), None, None) => {
                let mut builder = match command {
                    Command::Shell(line) => CommandTask::shell(&self.name, line),
                    Command::Argv(argv) => CommandTask::argv(
                        &self.name,
                        argv.first().cloned().unwrap_or_default(),
                        argv.iter().cloned(),
                    ),
                }
                .id(&task_id);
                for (name, value) in &env {
                    builder = builder.env(name, value);
                }
                for uri in uris {
                    builder = builder.fetch(uri);
                }
                builder.build(agent_id, resources)
            }
            (_, Some(docker), None) => {
                let mut command =
                    self.command
                        .as_ref()
                        .map(command_info)
                        .unwrap_or_else(|| CommandInfo {
                            shell: Some(false),
                            ..Default::default()
                        });
                command.uris = uris;
                command.environment = environment(&env);
                TaskInfo {
                    name: self.name.clone(),
                    task_id: TaskId {
                        value: task_id.clone(),
                    },
                    agent_id,
                    resources,
                    command: Some(command),
                    container: Some(Box::new(self.docker_container(docker, &ports))),
                    ..Default::default()
                }
            }
            (None, None, Some(executor)) => {
                let program = format!("./{}", executor.artifact);
                if let Some(uri) = executor_uri {
                    uris.insert(0, uri);
                }
                let mut arguments = vec![program.clone()];
                arguments.extend(executor.arguments.iter().cloned());
                let executor = ExecutorInfo {
                    executor_id: ExecutorId {
                        value: format!("{task_id}.executor"),
                    },
                    name: Some(self.name.clone()),
                    command: Some(CommandInfo {
                        shell: Some(false),
                        value: Some(program),
                        arguments,
                        uris,
                        environment: environment(&env),
                        ..Default::default()
                    }),
                    container: self.mesos_container().map(Box::new),
                    resources: executor_resources,
                    ..Default::default()
                };
                TaskInfo {
                    name: self.name.clone(),
                    task_id: TaskId {
                        value: task_id.clone(),
                    },
                    agent_id,
                    resources,
                    executor: Some(Box::new(executor)),
                    ..Default::default()
                }
            }
            // Ruled out by validation; kept as an error rather than a panic.
            _ => {
                *offer = before;
                return Err(ConvertError::Invalid(SpecErrors::single(
                    JsonPath::root(),
                    SpecErrorKind::Invalid,
                    "needs one of command, docker (with or without a command) or executor",
                )));
            }
        };
        if self.command.is_some() && self.docker.is_none() {
            task.container = self.mesos_container().map(Box::new);
        }
        task.labels = (!self.labels.is_empty()).then(|| Labels {
            labels: self
                .labels
                .iter()
                .map(|(key, value)| Label {
                    key: key.clone(),
                    value: Some(value.clone()),
                })
                .collect(),
        });
        task.health_check = self
            .health_check
            .as_ref()
            .map(|check| Box::new(health_check_info(check, &ports)));
        task.kill_policy = self.kill_policy.as_ref().map(|policy| KillPolicy {
            grace_period: Some(duration_info(policy.grace_period)),
        });
        task.data = self.data.clone().map(Bytes::from);
        Ok(task)
    }

    fn take_resources(&self, offer: &mut OfferResources) -> Result<Taken, Shortfall> {
        let resources = offer.take(request(&self.resources).as_slice())?;
        let mut resources = resources;
        let fixed: Vec<(u64, u64)> = self
            .docker
            .iter()
            .flat_map(|d| &d.port_mappings)
            .filter_map(|m| m.host_port)
            .map(|p| (u64::from(p), u64::from(p)))
            .collect();
        if !fixed.is_empty() {
            resources.extend(offer.take(&[ranges("ports", &fixed)])?);
        }
        let mut ports = Vec::new();
        if self.resources.ports > 0 {
            let (numbers, taken) = offer.take_ports(self.resources.ports as usize)?;
            ports = numbers;
            resources.extend(taken);
        }
        let executor_resources = match self.executor.as_ref().and_then(|e| e.resources.as_ref()) {
            Some(spec) => {
                let mut taken = offer.take(request(spec).as_slice())?;
                if spec.ports > 0 {
                    taken.extend(offer.take_ports(spec.ports as usize)?.1);
                }
                taken
            }
            None => Vec::new(),
        };
        Ok(Taken {
            resources,
            executor_resources,
            ports,
        })
    }

    fn mesos_container(&self) -> Option<ContainerInfo> {
        (!self.volumes.is_empty()).then(|| ContainerInfo {
            r#type: container_info::Type::Mesos as i32,
            volumes: self.volume_infos(),
            ..Default::default()
        })
    }

    fn volume_infos(&self) -> Vec<Volume> {
        self.volumes
            .iter()
            .map(|volume| Volume {
                mode: match volume.mode {
                    VolumeMode::Rw => v1::volume::Mode::Rw as i32,
                    VolumeMode::Ro => v1::volume::Mode::Ro as i32,
                },
                container_path: volume.container_path.clone(),
                host_path: Some(volume.host_path.clone()),
                ..Default::default()
            })
            .collect()
    }

    fn docker_container(&self, docker: &DockerSpec, ports: &[u64]) -> ContainerInfo {
        let mut offered = ports.iter();
        let port_mappings = docker
            .port_mappings
            .iter()
            .map(|mapping| docker_info::PortMapping {
                host_port: mapping.host_port.unwrap_or_else(|| {
                    offered
                        .next()
                        .and_then(|p| u32::try_from(*p).ok())
                        .unwrap_or_default()
                }),
                container_port: mapping.container_port,
                protocol: Some(
                    match mapping.protocol {
                        Protocol::Tcp => "tcp",
                        Protocol::Udp => "udp",
                    }
                    .into(),
                ),
            })
            .collect();
        let network = match docker.network {
            DockerNetwork::Host => docker_info::Network::Host,
            DockerNetwork::Bridge => docker_info::Network::Bridge,
            DockerNetwork::None => docker_info::Network::None,
            DockerNetwork::User => docker_info::Network::User,
        };
        ContainerInfo {
            r#type: container_info::Type::Docker as i32,
            volumes: self.volume_infos(),
            docker: Some(DockerInfo {
                image: docker.image.clone(),
                network: Some(network as i32),
                port_mappings,
                privileged: Some(docker.privileged),
                parameters: docker
                    .parameters
                    .iter()
                    .map(|p| v1::Parameter {
                        key: p.key.clone(),
                        value: p.value.clone(),
                    })
                    .collect(),
                force_pull_image: Some(docker.force_pull),
                ..Default::default()
            }),
            network_infos: docker
                .network_name
                .iter()
                .map(|name| NetworkInfo {
                    name: Some(name.clone()),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }
}

struct Taken {
    resources: Vec<Resource>,
    executor_resources: Vec<Resource>,
    ports: Vec<u64>,
}

/// The scalar part of a resource spec as a request.
fn request(spec: &ResourceSpec) -> Resources {
    let mut builder = Resources::builder();
    if spec.cpus > 0.0 {
        builder = builder.cpus(spec.cpus);
    }
    if spec.mem > 0.0 {
        builder = builder.mem(spec.mem);
    }
    if spec.disk > 0.0 {
        builder = builder.disk(spec.disk);
    }
    if spec.gpus > 0 {
        builder = builder.gpus(spec.gpus);
    }
    builder.build()
}

fn fetch_uri(uri: &UriSpec, artifacts: &dyn ArtifactUrls) -> Result<Uri, ConvertError> {
    let (value, output_file) = match (&uri.value, &uri.artifact) {
        (Some(value), _) => (value.clone(), uri.output_file.clone()),
        (None, Some(name)) => {
            let url = artifacts
                .artifact_url(name)
                .ok_or_else(|| ConvertError::UnknownArtifact { name: name.clone() })?;
            // The sandbox file is named after the artifact, whatever the URL's query says.
            (
                url,
                Some(uri.output_file.clone().unwrap_or_else(|| name.clone())),
            )
        }
        (None, None) => (String::new(), uri.output_file.clone()),
    };
    Ok(Uri {
        value,
        executable: Some(uri.executable),
        extract: Some(uri.extract),
        cache: Some(uri.cache),
        output_file,
    })
}

fn command_info(command: &Command) -> CommandInfo {
    match command {
        Command::Shell(line) => CommandInfo {
            shell: Some(true),
            value: Some(line.clone()),
            ..Default::default()
        },
        Command::Argv(argv) => CommandInfo {
            shell: Some(false),
            value: argv.first().cloned(),
            arguments: argv.clone(),
            ..Default::default()
        },
    }
}

fn environment(env: &[(String, String)]) -> Option<Environment> {
    (!env.is_empty()).then(|| Environment {
        variables: env
            .iter()
            .map(|(name, value)| Variable {
                name: name.clone(),
                value: Some(value.clone()),
                ..Default::default()
            })
            .collect(),
    })
}

fn duration_info(duration: std::time::Duration) -> DurationInfo {
    DurationInfo {
        nanoseconds: i64::try_from(duration.as_nanos()).unwrap_or(i64::MAX),
    }
}

fn health_check_info(check: &HealthCheckSpec, ports: &[u64]) -> HealthCheck {
    let port = |port: Option<u32>, index: Option<u32>| -> u32 {
        port.or_else(|| {
            index
                .and_then(|i| ports.get(i as usize))
                .and_then(|p| u32::try_from(*p).ok())
        })
        .unwrap_or_default()
    };
    let mut info = HealthCheck {
        delay_seconds: Some(check.delay.as_secs_f64()),
        interval_seconds: Some(check.interval.as_secs_f64()),
        timeout_seconds: Some(check.timeout.as_secs_f64()),
        consecutive_failures: Some(check.consecutive_failures),
        grace_period_seconds: Some(check.grace_period.as_secs_f64()),
        ..Default::default()
    };
    if let Some(command) = &check.command {
        info.r#type = Some(health_check::Type::Command as i32);
        info.command = Some(command_info(command));
    } else if let Some(http) = &check.http {
        info.r#type = Some(health_check::Type::Http as i32);
        info.http = Some(health_check::HttpCheckInfo {
            scheme: Some(
                match http.scheme {
                    Scheme::Http => "http",
                    Scheme::Https => "https",
                }
                .into(),
            ),
            port: port(http.port, http.port_index),
            path: Some(http.path.clone()),
            ..Default::default()
        });
    } else if let Some(tcp) = &check.tcp {
        info.r#type = Some(health_check::Type::Tcp as i32);
        info.tcp = Some(health_check::TcpCheckInfo {
            port: port(tcp.port, tcp.port_index),
            ..Default::default()
        });
    }
    info
}
