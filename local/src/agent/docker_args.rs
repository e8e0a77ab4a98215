//! What a DOCKER container of a task or executor is: the `docker create` arguments built from
//! its `ContainerInfo`, `CommandInfo`, environment, sandbox and resources, following what Mesos'
//! docker containerizer passes to `docker run` (src/docker/docker.cpp):
//!
//! - name `mes-<container id>` (the container id is the executor run's id);
//! - the sandbox bind-mounted read-write at `/mnt/mesos/sandbox`, `MESOS_SANDBOX` set to that
//!   path, `MESOS_CONTAINER_NAME` to the name and `MESOS_ALLOCATION_ROLE` to the role the
//!   resources are allocated to (when they say); the other variables are the task's `MESOS_*`
//!   environment (`MESOS_DIRECTORY` stays the host path, as in Mesos) and the command's;
//! - command: with `shell` (the default) the image's entrypoint is replaced by `/bin/sh` and the
//!   container runs `/bin/sh -c <value>`; without it the image's entrypoint is kept and `value`
//!   (when set) followed by every `arguments` entry is its command (unlike the Mesos
//!   containerizer, the docker one does not treat `arguments[0]` as argv0);
//! - `--cpu-shares` = 1024 per cpu (at least 2) and `--cpus` = the cpus (a CFS quota, what Mesos
//!   adds with `--cgroups_enable_cfs`), `--memory` = the mem in MiB (at least 32 MiB), from the
//!   task's (and executor's) resources;
//! - network `HOST` (the default), `BRIDGE` with `-p host:container/protocol` per port mapping,
//!   `NONE`, or `USER` with the network named by the first `network_infos` entry; each mapped
//!   host port must lie in the `ports` resources given to the task (Mesos' texts `Port mappings
//!   require port resources` and `Port [<port>] not included in resources`);
//! - volumes with a `host_path` (or a `HOST_PATH` / `SANDBOX_PATH` source) as `-v host:container:ro|rw`;
//!   a relative host path is below the sandbox, a relative container path below
//!   `/mnt/mesos/sandbox`;
//! - `--privileged`, `--hostname`, and each `parameters` entry as `--<key>=<value>`.
//!
//! Not supported (refused with a clear message): image and Docker volume-driver volumes, secret
//! volumes and secret environment variables (skipped).

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

use super::docker::DockerError;
use mesos_sdk::v1::container_info::docker_info::Network;
use mesos_sdk::v1::{CommandInfo, ContainerInfo, Resource, Volume, volume};

/// Where the sandbox is mounted inside the container.
pub(crate) const SANDBOX_IN_CONTAINER: &str = "/mnt/mesos/sandbox";

/// Mesos' lower bounds for containers (src/slave/constants.hpp).
const MIN_CPU_SHARES: u64 = 2;
const CPU_SHARES_PER_CPU: f64 = 1024.0;
const MIN_MEMORY_MIB: f64 = 32.0;

/// The Docker name of a container: `mes-<container id>`.
pub(crate) fn container_name(container_id: &str) -> String {
    format!("mes-{container_id}")
}

/// Everything one container is made from.
#[derive(Debug)]
pub(crate) struct ContainerSpec<'a> {
    /// Its name (see [`container_name`]).
    pub(crate) name: &'a str,
    /// The task's or executor's `ContainerInfo` (type DOCKER).
    pub(crate) container: &'a ContainerInfo,
    /// What runs in it.
    pub(crate) command: &'a CommandInfo,
    /// Its environment (`MESOS_SANDBOX` and `MESOS_CONTAINER_NAME` are set here on top).
    pub(crate) env: &'a [(String, String)],
    /// The host sandbox.
    pub(crate) sandbox: &'a Path,
    /// The resources its limits come from.
    pub(crate) resources: &'a [Resource],
    /// Pull the image when it is not present (else `--pull never`).
    pub(crate) pull_missing: bool,
    /// The agent's id, written as the label `mesos-local.agent` (for finding leftovers).
    pub(crate) agent_id: &'a str,
}

fn invalid(text: impl Into<String>) -> DockerError {
    DockerError::Invalid(text.into())
}

/// The sum of the scalar resource `name`.
fn scalar(resources: &[Resource], name: &str) -> f64 {
    resources
        .iter()
        .filter(|r| r.name == name)
        .filter_map(|r| r.scalar.as_ref())
        .map(|s| s.value)
        .sum()
}

/// A path for `-v`; an empty one, or one holding `:` (the separator of `-v`), is refused.
fn volume_path(path: &Path, what: &str) -> Result<String, DockerError> {
    let text = path.to_string_lossy().into_owned();
    if text.is_empty() || text.contains(':') {
        return Err(invalid(format!(
            "the volume's {what} '{text}' cannot be mounted (empty, or contains ':')"
        )));
    }
    Ok(text)
}

/// A relative path that stays below its base (no `..`, not absolute).
fn below(base: &Path, relative: &str, what: &str) -> Result<PathBuf, DockerError> {
    let path = Path::new(relative);
    if path.components().any(|c| {
        matches!(
            c,
            Component::ParentDir | Component::RootDir | Component::Prefix(_)
        )
    }) {
        return Err(invalid(format!(
            "the volume's {what} '{relative}' leaves the sandbox"
        )));
    }
    Ok(base.join(path))
}

/// `host:container:mode` of one volume.
fn volume_arg(volume: &Volume, sandbox: &Path) -> Result<String, DockerError> {
    use volume::source::Type as SourceType;
    let host = match (&volume.host_path, &volume.source) {
        (Some(host), _) => host.clone(),
        (None, Some(source)) => match source.r#type() {
            SourceType::HostPath => source
                .host_path
                .as_ref()
                .map(|h| h.path.clone())
                .ok_or_else(|| invalid("a HOST_PATH volume source has no 'host_path'"))?,
            SourceType::SandboxPath => {
                let path = source
                    .sandbox_path
                    .as_ref()
                    .map(|s| s.path.clone())
                    .ok_or_else(|| invalid("a SANDBOX_PATH volume source has no 'sandbox_path'"))?;
                below(sandbox, &path, "sandbox path")?
                    .to_string_lossy()
                    .into_owned()
            }
            other => {
                return Err(invalid(format!(
                    "volumes of source type {} are not supported by mesos-local's docker containers",
                    other.as_str_name()
                )));
            }
        },
        (None, None) => {
            return Err(invalid(format!(
                "the volume at '{}' has no host path (image volumes are not supported)",
                volume.container_path
            )));
        }
    };
    let host = if host.starts_with('/') {
        PathBuf::from(host)
    } else {
        below(sandbox, &host, "host path")?
    };
    let container = if volume.container_path.starts_with('/') {
        PathBuf::from(&volume.container_path)
    } else {
        below(
            Path::new(SANDBOX_IN_CONTAINER),
            &volume.container_path,
            "container path",
        )?
    };
    let mode = match volume.mode() {
        volume::Mode::Ro => "ro",
        volume::Mode::Rw => "rw",
    };
    Ok(format!(
        "{}:{}:{mode}",
        volume_path(&host, "host path")?,
        volume_path(&container, "container path")?
    ))
}

/// The `docker create` arguments (without `create`) of `spec`.
pub(crate) fn create_args(spec: &ContainerSpec<'_>) -> Result<Vec<OsString>, DockerError> {
    let docker = spec
        .container
        .docker
        .as_ref()
        .ok_or_else(|| invalid("a DOCKER ContainerInfo needs 'docker' with the image"))?;
    if docker.image.trim().is_empty() {
        return Err(invalid("the DOCKER ContainerInfo has an empty 'image'"));
    }
    let mut args: Vec<OsString> = Vec::new();
    let mut push = |a: &str, b: String| {
        args.push(a.into());
        args.push(b.into());
    };
    push("--name", spec.name.to_string());
    push("--label", format!("mesos-local.agent={}", spec.agent_id));
    let pull = if docker.force_pull_image() {
        "always"
    } else if spec.pull_missing {
        "missing"
    } else {
        "never"
    };
    push("--pull", pull.to_string());
    push(
        "-v",
        format!(
            "{}:{SANDBOX_IN_CONTAINER}:rw",
            volume_path(spec.sandbox, "sandbox")?
        ),
    );
    for volume in &spec.container.volumes {
        push("-v", volume_arg(volume, spec.sandbox)?);
    }
    for (name, value) in spec.env {
        if matches!(name.as_str(), "MESOS_SANDBOX" | "MESOS_CONTAINER_NAME") {
            continue;
        }
        if name.is_empty() || name.contains('=') {
            return Err(invalid(format!(
                "environment variable name '{name}' is not valid"
            )));
        }
        push("-e", format!("{name}={value}"));
    }
    push("-e", format!("MESOS_SANDBOX={SANDBOX_IN_CONTAINER}"));
    push("-e", format!("MESOS_CONTAINER_NAME={}", spec.name));
    let role = spec
        .resources
        .iter()
        .find_map(|r| r.allocation_info.as_ref().and_then(|a| a.role.clone()));
    if let Some(role) = role {
        push("-e", format!("MESOS_ALLOCATION_ROLE={role}"));
    }
    let cpus = scalar(spec.resources, "cpus");
    if cpus > 0.0 {
        // Truncation is intended: shares are whole numbers.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let shares = ((cpus * CPU_SHARES_PER_CPU) as u64).max(MIN_CPU_SHARES);
        push("--cpu-shares", shares.to_string());
        push("--cpus", format!("{:.3}", cpus.max(0.01)));
    }
    let mem = scalar(spec.resources, "mem");
    if mem > 0.0 {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let bytes = (mem.max(MIN_MEMORY_MIB) * 1024.0 * 1024.0) as u64;
        push("--memory", bytes.to_string());
    }
    let network = docker.network();
    let network_name = match network {
        Network::Host => "host".to_string(),
        Network::Bridge => "bridge".to_string(),
        Network::None => "none".to_string(),
        Network::User => spec
            .container
            .network_infos
            .first()
            .and_then(|n| n.name.clone())
            .filter(|n| !n.is_empty())
            .ok_or_else(|| invalid("a USER network needs the network's name in 'network_infos'"))?,
    };
    push("--network", network_name);
    if !docker.port_mappings.is_empty() {
        if matches!(network, Network::Host | Network::None) {
            return Err(invalid(format!(
                "port mappings need a BRIDGE or USER network, not {}",
                network.as_str_name()
            )));
        }
        let ports: Vec<(u64, u64)> = spec
            .resources
            .iter()
            .filter(|r| r.name == "ports")
            .filter_map(|r| r.ranges.as_ref())
            .flat_map(|r| r.range.iter().map(|range| (range.begin, range.end)))
            .collect();
        if ports.is_empty() {
            return Err(invalid("Port mappings require port resources"));
        }
        for mapping in &docker.port_mappings {
            let host = u64::from(mapping.host_port);
            if !ports
                .iter()
                .any(|(begin, end)| (*begin..=*end).contains(&host))
            {
                return Err(invalid(format!(
                    "Port [{}] not included in resources",
                    mapping.host_port
                )));
            }
            let protocol = mapping.protocol.as_deref().unwrap_or("tcp").to_lowercase();
            push(
                "-p",
                format!(
                    "{}:{}/{protocol}",
                    mapping.host_port, mapping.container_port
                ),
            );
        }
    }
    if let Some(hostname) = spec.container.hostname.as_deref().filter(|h| !h.is_empty()) {
        if network == Network::Host {
            return Err(invalid("a hostname cannot be set on the HOST network"));
        }
        push("--hostname", hostname.to_string());
    }
    if docker.privileged() {
        args.push("--privileged".into());
    }
    for parameter in &docker.parameters {
        args.push(format!("--{}={}", parameter.key, parameter.value).into());
    }
    if spec.command.shell() {
        let value = spec
            .command
            .value
            .as_deref()
            .ok_or_else(|| invalid("the command has no 'value' (shell is set)"))?;
        args.push("--entrypoint".into());
        args.push("/bin/sh".into());
        args.push(docker.image.clone().into());
        args.push("-c".into());
        args.push(value.into());
    } else {
        args.push(docker.image.clone().into());
        if let Some(value) = spec.command.value.as_deref() {
            args.push(value.into());
        }
        args.extend(spec.command.arguments.iter().map(OsString::from));
    }
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesos_sdk::v1::container_info::{self, DockerInfo, docker_info::PortMapping};

    fn docker(network: Network) -> ContainerInfo {
        ContainerInfo {
            r#type: container_info::Type::Docker as i32,
            docker: Some(DockerInfo {
                image: "img:1".into(),
                network: Some(network as i32),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn args_of(container: &ContainerInfo, command: &CommandInfo) -> Result<Vec<String>, String> {
        let resources =
            mesos_sdk::resourcemgr::parse_resources("cpus:0.5;mem:64;ports:[31000-31005]").unwrap();
        let env = vec![("A".to_string(), "b c".to_string())];
        create_args(&ContainerSpec {
            name: "mes-x",
            container,
            command,
            env: &env,
            sandbox: Path::new("/sb"),
            resources: &resources,
            pull_missing: false,
            agent_id: "ag",
        })
        .map(|a| a.into_iter().map(|s| s.into_string().unwrap()).collect())
        .map_err(|e| e.to_string())
    }

    #[test]
    fn a_shell_command_overrides_the_entrypoint() {
        let command = CommandInfo {
            value: Some("echo hi".into()),
            ..Default::default()
        };
        let args = args_of(&docker(Network::Host), &command).unwrap().join(" ");
        assert_eq!(
            args,
            "--name mes-x --label mesos-local.agent=ag --pull never \
             -v /sb:/mnt/mesos/sandbox:rw -e A=b c -e MESOS_SANDBOX=/mnt/mesos/sandbox \
             -e MESOS_CONTAINER_NAME=mes-x --cpu-shares 512 --cpus 0.500 --memory 67108864 \
             --network host --entrypoint /bin/sh img:1 -c echo hi"
        );
    }

    #[test]
    fn without_shell_value_and_arguments_are_the_command() {
        let command = CommandInfo {
            shell: Some(false),
            value: Some("/bin/echo".into()),
            arguments: vec!["a".into(), "b".into()],
            ..Default::default()
        };
        let args = args_of(&docker(Network::Host), &command).unwrap();
        assert_eq!(args[args.len() - 4..], ["img:1", "/bin/echo", "a", "b"]);
        assert!(!args.contains(&"--entrypoint".to_string()));
    }

    #[test]
    fn volumes_ports_and_parameters() {
        let mut container = docker(Network::Bridge);
        container.volumes = vec![
            Volume {
                mode: volume::Mode::Ro as i32,
                container_path: "/data".into(),
                host_path: Some("/srv/data".into()),
                ..Default::default()
            },
            Volume {
                mode: volume::Mode::Rw as i32,
                container_path: "out".into(),
                host_path: Some("work".into()),
                ..Default::default()
            },
        ];
        let info = container.docker.as_mut().unwrap();
        info.port_mappings = vec![PortMapping {
            host_port: 31001,
            container_port: 80,
            protocol: None,
        }];
        info.parameters = vec![mesos_sdk::v1::Parameter {
            key: "init".into(),
            value: "true".into(),
        }];
        let command = CommandInfo {
            value: Some("true".into()),
            ..Default::default()
        };
        let args = args_of(&container, &command).unwrap().join(" ");
        assert!(args.contains("-v /srv/data:/data:ro"), "{args}");
        assert!(
            args.contains("-v /sb/work:/mnt/mesos/sandbox/out:rw"),
            "{args}"
        );
        assert!(args.contains("--network bridge -p 31001:80/tcp"), "{args}");
        assert!(args.contains("--init=true"), "{args}");
    }

    #[test]
    fn bad_containers_are_refused_with_a_reason() {
        let command = CommandInfo {
            value: Some("true".into()),
            ..Default::default()
        };
        let mut escaping = docker(Network::Host);
        escaping.volumes = vec![Volume {
            mode: volume::Mode::Rw as i32,
            container_path: "/x".into(),
            host_path: Some("../../etc".into()),
            ..Default::default()
        }];
        assert!(
            args_of(&escaping, &command)
                .unwrap_err()
                .contains("leaves the sandbox")
        );
        let mut ports_on_host = docker(Network::Host);
        ports_on_host.docker.as_mut().unwrap().port_mappings = vec![PortMapping {
            host_port: 1,
            container_port: 1,
            protocol: None,
        }];
        assert!(
            args_of(&ports_on_host, &command)
                .unwrap_err()
                .contains("BRIDGE")
        );
        let mut unoffered = docker(Network::Bridge);
        unoffered.docker.as_mut().unwrap().port_mappings = vec![PortMapping {
            host_port: 80,
            container_port: 80,
            protocol: None,
        }];
        assert_eq!(
            args_of(&unoffered, &command).unwrap_err(),
            "Port [80] not included in resources"
        );
        let mut no_image = docker(Network::Host);
        no_image.docker = None;
        assert!(args_of(&no_image, &command).is_err());
    }
}
