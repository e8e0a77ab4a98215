//! The agent's Docker Engine client: the `docker` command line run through `tokio::process`,
//! its configuration ([`DockerConfig`]), its errors, and the agent's list of live containers
//! that agent shutdown removes.
//!
//! Why the CLI and not a Docker API crate (bollard): the CLI negotiates the API version with
//! whatever engine answers (the client here is newer than the engine), honours the usual
//! `DOCKER_HOST`-style endpoints given with `-H`, adds no dependency tree to the crate's build,
//! and every operation the agent performs is a command an operator can replay by hand. The
//! cost, a process per operation (tens of milliseconds), is small next to a container's start.
//! The CLI must be 20.10 or newer (`docker create --pull`).
//!
//! What each container is (arguments, environment, volumes, limits, network) is built by
//! `docker_args`; a task's or executor's life in a container is `docker_run`.

use std::collections::HashSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

/// How an agent reaches the Docker Engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerConfig {
    /// The `docker` command line program (a name looked up in `PATH`, or a path).
    pub binary: PathBuf,
    /// The engine's endpoint, given to the CLI as `-H` (e.g. `unix:///var/run/docker.sock`);
    /// `None` leaves the CLI's own default (`DOCKER_HOST`, then the default socket).
    pub host: Option<String>,
    /// Pull an image that is not present on the engine (Mesos does). Off by default: the
    /// embedded cluster is for tests, where images are built locally and a pull attempt would
    /// only wait for an unreachable registry; a missing image then fails the launch at once.
    /// `DockerInfo.force_pull_image` always pulls.
    pub pull_missing_images: bool,
    /// Longest wait for one CLI operation (create, start, inspect, stop beyond its grace
    /// period, remove) before it counts as failed.
    pub command_timeout: Duration,
}

impl Default for DockerConfig {
    /// `docker` from `PATH`, its default endpoint, no pulls, 60 s per operation.
    fn default() -> Self {
        Self {
            binary: PathBuf::from("docker"),
            host: None,
            pull_missing_images: false,
            command_timeout: Duration::from_secs(60),
        }
    }
}

/// A Docker operation that failed; the text follows `Failed to launch container: ` in a
/// TASK_FAILED message when it happens at launch.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum DockerError {
    /// The `docker` program could not be started (not installed, or a wrong path).
    #[error("cannot run the docker command line '{binary}': {source}")]
    Spawn {
        /// The program.
        binary: String,
        /// Why.
        source: std::io::Error,
    },
    /// The CLI ran and failed; `message` is what it wrote on stderr.
    #[error("'docker {operation}' failed: {message}")]
    Failed {
        /// The operation (`create`, `start`, ...).
        operation: &'static str,
        /// Its error output (or exit status when it wrote nothing).
        message: String,
    },
    /// The CLI did not finish in time.
    #[error("'docker {operation}' did not finish within {}", mesos_sdk::duration::format_duration(*after))]
    Timeout {
        /// The operation.
        operation: &'static str,
        /// The limit ([`DockerConfig::command_timeout`]).
        after: Duration,
    },
    /// `docker inspect` answered something that is not the expected JSON.
    #[error("unexpected 'docker inspect' output: {0}")]
    Inspect(String),
    /// The `ContainerInfo` cannot be run as asked.
    #[error("{0}")]
    Invalid(String),
    /// A sandbox output file could not be opened.
    #[error("cannot open the sandbox's {name}: {source}")]
    Output {
        /// `stdout` or `stderr`.
        name: &'static str,
        /// Why.
        source: std::io::Error,
    },
}

/// What the agent reads back from `docker inspect` of a container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ContainerState {
    /// Still running.
    pub(crate) running: bool,
    /// Pid of the container's first process on the host (0 when not running).
    pub(crate) pid: u32,
    /// Exit code once it stopped.
    pub(crate) exit_code: i32,
    /// Killed by the kernel for exceeding its memory limit.
    pub(crate) oom_killed: bool,
    /// The engine's error starting it, if any.
    pub(crate) error: String,
    /// The container's IP address on its (bridge) network, if it has one.
    pub(crate) ip: Option<String>,
}

/// The `docker` CLI of one agent, and the names of the containers it created that are not yet
/// removed.
#[derive(Debug)]
pub(crate) struct Docker {
    config: DockerConfig,
    live: Mutex<HashSet<String>>,
}

/// Error output of a CLI run, trimmed to one readable message.
fn stderr_text(stderr: &[u8], status: std::process::ExitStatus) -> String {
    let text = String::from_utf8_lossy(stderr);
    let text = text.trim();
    if text.is_empty() {
        format!("exited with {status}")
    } else {
        text.lines().collect::<Vec<_>>().join("; ")
    }
}

impl Docker {
    /// A client with `config`.
    pub(crate) fn new(config: DockerConfig) -> Self {
        Self {
            config,
            live: Mutex::new(HashSet::new()),
        }
    }

    /// The configuration.
    pub(crate) fn config(&self) -> &DockerConfig {
        &self.config
    }

    fn live(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A `docker` command with the configured endpoint, no stdin, killed if dropped.
    fn command(&self) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(&self.config.binary);
        if let Some(host) = &self.config.host {
            command.arg("-H").arg(host);
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    fn spawn_error(&self, source: std::io::Error) -> DockerError {
        DockerError::Spawn {
            binary: self.config.binary.display().to_string(),
            source,
        }
    }

    /// Runs `docker <args>` to its end within `limit`; its stdout on success.
    async fn run(
        &self,
        operation: &'static str,
        args: &[OsString],
        limit: Duration,
    ) -> Result<String, DockerError> {
        let mut command = self.command();
        command.args(args);
        let child = command.spawn().map_err(|e| self.spawn_error(e))?;
        let output = tokio::time::timeout(limit, child.wait_with_output())
            .await
            .map_err(|_| DockerError::Timeout {
                operation,
                after: limit,
            })?
            .map_err(|e| self.spawn_error(e))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
        } else {
            Err(DockerError::Failed {
                operation,
                message: stderr_text(&output.stderr, output.status),
            })
        }
    }

    /// `docker create` with `args` (built by `docker_args`, starting with the options and
    /// ending with image and command); the container `name` is remembered for removal.
    pub(crate) async fn create(&self, name: &str, args: Vec<OsString>) -> Result<(), DockerError> {
        let mut full: Vec<OsString> = vec!["create".into()];
        full.extend(args);
        self.live().insert(name.to_string());
        match self.run("create", &full, self.config.command_timeout).await {
            Ok(_) => Ok(()),
            Err(err @ DockerError::Spawn { .. }) => {
                self.live().remove(name);
                Err(err)
            }
            Err(err) => {
                // Nothing to keep; a half-made container (there should be none) goes too.
                self.remove(name).await;
                Err(err)
            }
        }
    }

    /// `docker start` (detached).
    pub(crate) async fn start(&self, name: &str) -> Result<(), DockerError> {
        self.run(
            "start",
            &["start".into(), name.into()],
            self.config.command_timeout,
        )
        .await
        .map(|_| ())
    }

    /// `docker logs --follow`, appending the container's stdout and stderr to the sandbox's
    /// files; the process ends when the container stops.
    pub(crate) fn follow_logs(
        &self,
        name: &str,
        sandbox: &Path,
    ) -> Result<tokio::process::Child, DockerError> {
        let open = |name: &'static str| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(sandbox.join(name))
                .map_err(|source| DockerError::Output { name, source })
        };
        let (stdout, stderr) = (open("stdout")?, open("stderr")?);
        let mut command = self.command();
        command
            .args(["logs", "--follow", name])
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::from(stderr));
        command.spawn().map_err(|e| self.spawn_error(e))
    }

    /// `docker wait` in a process group of its own: the process the agent watches (and
    /// signals) for the container. It ends when the container stops, or when it is killed, after
    /// which the agent removes the container either way.
    pub(crate) fn wait(&self, name: &str) -> Result<tokio::process::Child, DockerError> {
        let mut command = self.command();
        command
            .args(["wait", name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(false);
        command.spawn().map_err(|e| self.spawn_error(e))
    }

    /// `docker inspect` of the container's state and address.
    pub(crate) async fn inspect(&self, name: &str) -> Result<ContainerState, DockerError> {
        let args: Vec<OsString> = vec![
            "inspect".into(),
            "--type".into(),
            "container".into(),
            "--format".into(),
            "{{json .State}}\t{{json .NetworkSettings.IPAddress}}".into(),
            name.into(),
        ];
        let out = self
            .run("inspect", &args, self.config.command_timeout)
            .await?;
        parse_inspect(&out)
    }

    /// `docker stop -t <grace>`: SIGTERM (or the image's stop signal), SIGKILL after `grace`.
    pub(crate) async fn stop(&self, name: &str, grace: Duration) -> Result<(), DockerError> {
        // Docker counts whole seconds; a shorter grace is rounded up rather than to zero.
        let seconds = grace.as_secs() + u64::from(grace.subsec_nanos() > 0);
        let args: Vec<OsString> = vec![
            "stop".into(),
            "-t".into(),
            seconds.to_string().into(),
            name.into(),
        ];
        let limit = self.config.command_timeout + Duration::from_secs(seconds);
        self.run("stop", &args, limit).await.map(|_| ())
    }

    /// `docker kill` (SIGKILL now).
    pub(crate) async fn kill(&self, name: &str) {
        let args: Vec<OsString> = vec!["kill".into(), name.into()];
        if let Err(err) = self.run("kill", &args, self.config.command_timeout).await {
            tracing::debug!(container = name, %err, "docker kill");
        }
    }

    /// `docker rm -f -v`: the container (running or not) and its anonymous volumes go; it is
    /// forgotten either way.
    pub(crate) async fn remove(&self, name: &str) {
        let args: Vec<OsString> = vec!["rm".into(), "-f".into(), "-v".into(), name.into()];
        match self.run("rm", &args, self.config.command_timeout).await {
            Ok(_) => {}
            Err(DockerError::Failed { message, .. }) if message.contains("No such container") => {}
            Err(err) => tracing::warn!(container = name, %err, "cannot remove container"),
        }
        self.live().remove(name);
    }

    /// Removes every container this agent created that is still there (agent shutdown).
    pub(crate) async fn remove_all(&self) {
        let names: Vec<String> = self.live().iter().cloned().collect();
        for name in names {
            self.remove(&name).await;
        }
    }

    /// Starts `docker rm -f -v` for every live container without waiting for it (dropping an
    /// agent handle cannot wait); the CLI finishes on its own even if this process exits.
    pub(crate) fn remove_all_detached(&self) {
        let names: Vec<String> = self.live().drain().collect();
        if names.is_empty() {
            return;
        }
        let mut command = std::process::Command::new(&self.config.binary);
        if let Some(host) = &self.config.host {
            command.arg("-H").arg(host);
        }
        command
            .args(["rm", "-f", "-v"])
            .args(&names)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        match command.spawn() {
            // Reaped by a thread so that it does not linger as a zombie.
            Ok(mut child) => {
                let _ = std::thread::Builder::new()
                    .name("docker-rm".to_string())
                    .spawn(move || child.wait());
            }
            Err(err) => tracing::warn!(%err, "cannot remove the agent's containers"),
        }
    }
}

/// Reads `{{json .State}}<TAB>{{json .NetworkSettings.IPAddress}}`.
fn parse_inspect(out: &str) -> Result<ContainerState, DockerError> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct State {
        #[serde(default)]
        running: bool,
        #[serde(default)]
        pid: u32,
        #[serde(default)]
        exit_code: i32,
        #[serde(default, rename = "OOMKilled")]
        oom_killed: bool,
        #[serde(default)]
        error: String,
    }
    let line = out.lines().next().unwrap_or_default();
    let (state, ip) = line.split_once('\t').unwrap_or((line, "\"\""));
    let state: State =
        serde_json::from_str(state).map_err(|e| DockerError::Inspect(format!("{e}: {out}")))?;
    let ip: Option<String> = serde_json::from_str(ip).unwrap_or(None);
    Ok(ContainerState {
        running: state.running,
        pid: state.pid,
        exit_code: state.exit_code,
        oom_killed: state.oom_killed,
        error: state.error,
        ip: ip.filter(|ip| !ip.is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inspect_output_is_read() {
        let out = "{\"Status\":\"exited\",\"Running\":false,\"OOMKilled\":true,\"Pid\":0,\"ExitCode\":137,\"Error\":\"\"}\t\"172.17.0.2\"\n";
        let state = parse_inspect(out).unwrap();
        assert_eq!(
            state,
            ContainerState {
                running: false,
                pid: 0,
                exit_code: 137,
                oom_killed: true,
                error: String::new(),
                ip: Some("172.17.0.2".to_string()),
            }
        );
        let host = "{\"Running\":true,\"Pid\":42,\"ExitCode\":0}\t\"\"";
        assert_eq!(parse_inspect(host).unwrap().ip, None);
        assert!(parse_inspect("garbage").is_err());
    }

    #[test]
    fn error_output_becomes_one_line() {
        use std::os::unix::process::ExitStatusExt;
        let status = std::process::ExitStatus::from_raw(1 << 8);
        assert_eq!(stderr_text(b"a\nb\n", status), "a; b");
        assert_eq!(stderr_text(b"", status), "exited with exit status: 1");
    }
}
