//! The life of a command task or custom executor in a DOCKER container: create and start the
//! container, copy its output into the sandbox, watch it, stop it with a grace period, read its
//! exit code and remove it.
//!
//! The process the agent watches for a container is a `docker wait` in a process group of its
//! own; it stands in for the task's or executor's process in every path that signals process
//! groups (kill escalation, registration timeout, agent shutdown). Whatever ends that process,
//! the container is removed afterwards (`docker rm -f`, the `--rm` of Mesos' docker executor),
//! and the agent's list of live containers lets shutdown remove any container left over. A
//! graceful stop goes through `docker stop -t <grace>` instead of a signal.
//!
//! A custom executor in a container reaches the agent at `MESOS_AGENT_ENDPOINT`, the agent's
//! loopback address here: that works on the HOST network (Mesos' usual choice for executors),
//! not from a BRIDGE network.
//!
//! Health checks of a task in a container: a COMMAND check runs inside the container (`docker
//! exec <name> /bin/sh -c <value>`, or the argv without `shell`), as Mesos' docker executor runs
//! it in the container's namespaces; HTTP and TCP checks of a BRIDGE or USER container probe the
//! host port its port mappings publish for the checked container port.
//!
//! Not imitated: docker containers do not survive an agent crash (a recovering agent does not
//! reattach them), and task groups cannot use DOCKER containers (Mesos refuses them too).

use std::sync::Arc;
use std::time::Duration;

use super::Agent;
use super::docker::{ContainerState, DockerError};
use super::docker_args::{ContainerSpec, container_name, create_args};
use mesos_sdk::v1::container_info::docker_info::Network;
use mesos_sdk::v1::{
    CommandInfo, ContainerId, ContainerInfo, ContainerStatus, HealthCheck, NetworkInfo, Resource,
    container_info, health_check, network_info,
};

/// How long the output copier may keep running after its container stopped.
const LOGS_DRAIN: Duration = Duration::from_secs(5);

/// The `ContainerInfo` when it asks for a Docker container.
pub(crate) fn docker_container(container: Option<&ContainerInfo>) -> Option<&ContainerInfo> {
    container.filter(|c| c.r#type() == container_info::Type::Docker)
}

/// What is being launched into a container.
#[derive(Debug)]
pub(crate) struct Launch<'a> {
    /// The executor run's id, which is the container id.
    pub(crate) container_id: &'a str,
    /// The `ContainerInfo` (type DOCKER).
    pub(crate) container: &'a ContainerInfo,
    /// What runs in it.
    pub(crate) command: &'a CommandInfo,
    /// Its environment.
    pub(crate) env: &'a [(String, String)],
    /// The host sandbox (mounted at `/mnt/mesos/sandbox`).
    pub(crate) sandbox: &'a std::path::Path,
    /// The resources its limits come from.
    pub(crate) resources: &'a [Resource],
}

/// A started container: its name and its output copier. (The `docker wait` the agent watches is
/// returned next to it by [`Agent::docker_start`].)
#[derive(Debug)]
pub(crate) struct Running {
    /// The Docker name (`mes-<container id>`).
    pub(crate) name: String,
    logs: Option<tokio::process::Child>,
    /// The `container_status` of the task's status updates.
    pub(crate) status: ContainerStatus,
}

impl Agent {
    /// Creates and starts the container of `launch`; returns the `docker wait` process (in a
    /// process group of its own) to watch, and the container. On failure nothing is left behind.
    pub(crate) async fn docker_start(
        &self,
        launch: &Launch<'_>,
    ) -> Result<(tokio::process::Child, Running), DockerError> {
        let name = container_name(launch.container_id);
        let args = create_args(&ContainerSpec {
            name: &name,
            container: launch.container,
            command: launch.command,
            env: launch.env,
            sandbox: launch.sandbox,
            resources: launch.resources,
            pull_missing: self.docker.config().pull_missing_images,
            agent_id: &self.id.value,
        })?;
        self.docker.create(&name, args).await?;
        let started = async {
            self.docker.start(&name).await?;
            let logs = self.docker.follow_logs(&name, launch.sandbox)?;
            let watcher = match self.docker.wait(&name) {
                Ok(watcher) => watcher,
                Err(err) => {
                    drop(logs);
                    return Err(err);
                }
            };
            Ok((logs, watcher))
        };
        let (logs, watcher) = match started.await {
            Ok(started) => started,
            Err(err) => {
                self.docker.remove(&name).await;
                return Err(err);
            }
        };
        let state = match self.docker.inspect(&name).await {
            Ok(state) => state,
            Err(err) => {
                tracing::warn!(container = %name, %err, "cannot inspect the started container");
                ContainerState::default()
            }
        };
        let status = self.container_status(launch.container_id, &state);
        tracing::info!(container = %name, pid = state.pid, "docker container started");
        Ok((
            watcher,
            Running {
                name,
                logs: Some(logs),
                status,
            },
        ))
    }

    /// `container_status` of a container: its id, its first process's pid and its IP (the
    /// container's own on a bridge network, else the agent's).
    fn container_status(&self, container_id: &str, state: &ContainerState) -> ContainerStatus {
        let ip = state
            .ip
            .clone()
            .unwrap_or_else(|| self.endpoint.ip().to_string());
        let protocol = if ip.contains(':') {
            network_info::Protocol::IPv6
        } else {
            network_info::Protocol::IPv4
        };
        ContainerStatus {
            container_id: Some(ContainerId {
                value: container_id.to_string(),
                parent: None,
            }),
            executor_pid: (state.pid > 0).then_some(state.pid),
            network_infos: vec![NetworkInfo {
                ip_addresses: vec![network_info::IpAddress {
                    protocol: Some(protocol as i32),
                    ip_address: Some(ip),
                }],
                ..Default::default()
            }],
            cgroup_info: None,
        }
    }

    /// After the watcher ended: the container's final state (stopped first if it still runs,
    /// e.g. when the watcher was killed), its output copied, and the container removed.
    pub(crate) async fn docker_finish(&self, running: &mut Running) -> Option<ContainerState> {
        let mut state = self.docker.inspect(&running.name).await.ok();
        if state.as_ref().is_some_and(|s| s.running) {
            self.docker.kill(&running.name).await;
            state = self.docker.inspect(&running.name).await.ok();
        }
        if let Some(mut logs) = running.logs.take() {
            if tokio::time::timeout(LOGS_DRAIN, logs.wait()).await.is_err() {
                let _ = logs.start_kill();
                let _ = logs.wait().await;
            }
        }
        self.docker.remove(&running.name).await;
        state
    }

    /// Stops a container gracefully in the background: `docker stop -t <grace>` (SIGTERM,
    /// SIGKILL after the grace period); `docker kill` if that fails.
    pub(crate) fn docker_stop(self: &Arc<Self>, name: &str, grace: Duration) {
        let (agent, name) = (Arc::clone(self), name.to_string());
        self.tasks.spawn(async move {
            if let Err(err) = agent.docker.stop(&name, grace).await {
                tracing::warn!(container = %name, %err, "docker stop failed; killing");
                agent.docker.kill(&name).await;
            }
        });
    }

    /// Kills a container now, in the background.
    pub(crate) fn docker_kill(self: &Arc<Self>, name: &str) {
        let (agent, name) = (Arc::clone(self), name.to_string());
        self.tasks
            .spawn(async move { agent.docker.kill(&name).await });
    }
}

/// `check` as it applies to the task in container `name` (see the file's notes): a COMMAND
/// check becomes a `docker exec` of `docker` (the configured program and endpoint); the port of
/// an HTTP or TCP check on a BRIDGE or USER network becomes the mapped host port.
pub(crate) fn health_check_in(
    mut check: HealthCheck,
    name: &str,
    container: &ContainerInfo,
    docker: &super::DockerConfig,
) -> HealthCheck {
    if let Some(command) = check.command.as_mut() {
        let mut arguments = vec!["docker".to_string()];
        if let Some(host) = &docker.host {
            arguments.extend(["-H".to_string(), host.clone()]);
        }
        arguments.extend(["exec".to_string()]);
        for (key, value) in super::command::command_env(command) {
            arguments.extend(["-e".to_string(), format!("{key}={value}")]);
        }
        arguments.push(name.to_string());
        if command.shell() {
            arguments.extend([
                "/bin/sh".to_string(),
                "-c".to_string(),
                command.value().to_string(),
            ]);
        } else {
            arguments.extend(command.value.clone());
            arguments.extend(command.arguments.iter().cloned());
        }
        *command = CommandInfo {
            shell: Some(false),
            value: Some(docker.binary.display().to_string()),
            arguments,
            ..Default::default()
        };
    }
    let Some(info) = container.docker.as_ref() else {
        return check;
    };
    if matches!(info.network(), Network::Bridge | Network::User) {
        let published = |port: u32| {
            info.port_mappings
                .iter()
                .find(|m| m.container_port == port)
                .map_or(port, |m| m.host_port)
        };
        match check.r#type() {
            health_check::Type::Http => {
                if let Some(http) = check.http.as_mut() {
                    http.port = published(http.port);
                }
            }
            health_check::Type::Tcp => {
                if let Some(tcp) = check.tcp.as_mut() {
                    tcp.port = published(tcp.port);
                }
            }
            _ => {}
        }
    }
    check
}

/// The text of a container's end, as Mesos' docker executor writes it (`"Container " +
/// WSTRINGIFY(status)`; an out-of-memory kill is told by the update's reason only).
pub(crate) fn exit_text(state: Option<&ContainerState>) -> String {
    match state {
        Some(state) => format!("Container exited with status {}", state.exit_code),
        None => "Container terminated".to_string(),
    }
}

/// The wait status an exited container stands for (its exit code, as `exit(code)`).
pub(crate) fn wait_status(state: Option<&ContainerState>) -> i32 {
    state.map_or(-1, |s| (s.exit_code & 0xff) << 8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesos_sdk::v1::container_info::DockerInfo;
    use mesos_sdk::v1::container_info::docker_info::PortMapping;

    fn bridge() -> ContainerInfo {
        ContainerInfo {
            r#type: container_info::Type::Docker as i32,
            docker: Some(DockerInfo {
                image: "img".into(),
                network: Some(Network::Bridge as i32),
                port_mappings: vec![PortMapping {
                    host_port: 31005,
                    container_port: 80,
                    protocol: None,
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn command_checks_run_through_docker_exec() {
        let check = HealthCheck {
            r#type: Some(health_check::Type::Command as i32),
            command: Some(CommandInfo {
                value: Some("test -f /x".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let config = super::super::DockerConfig {
            host: Some("unix:///d.sock".into()),
            ..Default::default()
        };
        let check = health_check_in(check, "mes-1", &bridge(), &config);
        let command = check.command.unwrap();
        assert!(!command.shell());
        assert_eq!(command.value(), "docker");
        assert_eq!(
            command.arguments,
            [
                "docker",
                "-H",
                "unix:///d.sock",
                "exec",
                "mes-1",
                "/bin/sh",
                "-c",
                "test -f /x"
            ]
        );
    }

    #[test]
    fn http_checks_on_a_bridge_probe_the_published_port() {
        let check = HealthCheck {
            r#type: Some(health_check::Type::Http as i32),
            http: Some(health_check::HttpCheckInfo {
                port: 80,
                ..Default::default()
            }),
            ..Default::default()
        };
        let checked = health_check_in(check.clone(), "mes-1", &bridge(), &Default::default());
        assert_eq!(checked.http.unwrap().port, 31005);
        let mut host = bridge();
        host.docker.as_mut().unwrap().network = Some(Network::Host as i32);
        let unchanged = health_check_in(check, "mes-1", &host, &Default::default());
        assert_eq!(unchanged.http.unwrap().port, 80);
    }
}
