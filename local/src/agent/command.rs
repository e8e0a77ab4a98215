//! Building executor, task and health-check processes: the `MESOS_*` environment an executor
//! gets, the `VALUE` variables of a `CommandInfo`, and the `tokio::process::Command` for a
//! command (shell or argv, own process group, sandbox as working directory, `stdout`/`stderr`
//! files, user switch when the agent runs as root). Spawning and watching the processes is
//! `process`'s concern; this file only builds them.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use super::Agent;
use mesos_sdk::v1::{CommandInfo, environment};

/// Why a process could not be built or started. The texts end up in TASK_FAILED messages
/// (after `Failed to launch container: `).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum CommandError {
    /// The `CommandInfo` has no `value` to run.
    #[error("{what} has no 'value'")]
    NoValue {
        /// Which command (`the command`, `the check command`).
        what: &'static str,
    },
    /// The sandbox's `stdout` or `stderr` file could not be opened.
    #[error("cannot create the sandbox's {name}: {source}")]
    OutputFile {
        /// `stdout` or `stderr`.
        name: &'static str,
        /// Where.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The program could not be started.
    #[error("cannot start '{program}': {source}")]
    Spawn {
        /// The command's `value`.
        program: String,
        /// What went wrong.
        source: std::io::Error,
    },
}

impl Agent {
    /// The `MESOS_*` environment of an executor (section 1.11 of the protocol notes).
    pub(crate) fn executor_env(
        &self,
        framework_id: &str,
        executor_id: &str,
        sandbox: &Path,
        checkpoint: bool,
        grace: Duration,
    ) -> Vec<(String, String)> {
        let endpoint = self.endpoint.to_string();
        let sandbox = sandbox.to_string_lossy().into_owned();
        let mut env = vec![
            ("MESOS_FRAMEWORK_ID".to_string(), framework_id.to_string()),
            ("MESOS_EXECUTOR_ID".to_string(), executor_id.to_string()),
            ("MESOS_AGENT_ENDPOINT".to_string(), endpoint.clone()),
            ("MESOS_DIRECTORY".to_string(), sandbox.clone()),
            ("MESOS_SANDBOX".to_string(), sandbox),
            (
                "MESOS_CHECKPOINT".to_string(),
                if checkpoint { "1" } else { "0" }.to_string(),
            ),
            (
                "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD".to_string(),
                mesos_sdk::duration::format_duration(grace),
            ),
            ("MESOS_HTTP_COMMAND_EXECUTOR".to_string(), "0".to_string()),
            ("MESOS_SLAVE_ID".to_string(), self.id.value.clone()),
            (
                "MESOS_SLAVE_PID".to_string(),
                format!("slave(1)@{endpoint}"),
            ),
        ];
        if checkpoint {
            env.push((
                "MESOS_RECOVERY_TIMEOUT".to_string(),
                mesos_sdk::duration::format_duration(self.config.recovery_timeout),
            ));
            env.push((
                "MESOS_SUBSCRIPTION_BACKOFF_MAX".to_string(),
                mesos_sdk::duration::format_duration(self.config.executor_reregistration_timeout),
            ));
        }
        env
    }
}

/// The `VALUE` variables of a command's environment (secrets are not supported and skipped).
pub(crate) fn command_env(command: &CommandInfo) -> Vec<(String, String)> {
    let Some(environment) = &command.environment else {
        return Vec::new();
    };
    environment
        .variables
        .iter()
        .filter_map(|variable| {
            if variable.r#type() == environment::variable::Type::Secret {
                tracing::warn!(name = %variable.name, "secret environment variables are not supported");
                return None;
            }
            Some((variable.name.clone(), variable.value.clone().unwrap_or_default()))
        })
        .collect()
}

/// uid and gid of a local user, from `/etc/passwd`.
fn lookup_user(name: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        if fields.next()? != name {
            return None;
        }
        let _password = fields.next()?;
        let uid = fields.next()?.parse().ok()?;
        let gid = fields.next()?.parse().ok()?;
        Some((uid, gid))
    })
}

fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// The program of `command`: `sh -c value` when `shell` (the default), else `value` executed
/// with `arguments` as its argv. `what` names the command in the error when `value` is missing.
fn program(
    command: &CommandInfo,
    what: &'static str,
) -> Result<tokio::process::Command, CommandError> {
    let value = command
        .value
        .as_deref()
        .ok_or(CommandError::NoValue { what })?;
    Ok(if command.shell() {
        let mut process = tokio::process::Command::new("sh");
        process.arg("-c").arg(value);
        process
    } else {
        let mut process = tokio::process::Command::new(value);
        if let Some((argv0, rest)) = command.arguments.split_first() {
            process.arg0(argv0).args(rest);
        }
        process
    })
}

/// A process for `command` in `sandbox`: `sh -c value` when `shell` (the default), else
/// `value` executed with `arguments` as its argv. It gets its own process group, `stdout` and
/// `stderr` files in the sandbox, the given environment on top of the agent's, and runs as
/// `command.user` when the agent runs as root and that user exists (otherwise the user is
/// ignored).
pub(crate) fn build_command(
    command: &CommandInfo,
    sandbox: &Path,
    env: &[(String, String)],
) -> Result<tokio::process::Command, CommandError> {
    let mut process = program(command, "the command")?;
    let stdout = output_file(sandbox, "stdout")?;
    let stderr = output_file(sandbox, "stderr")?;
    process
        .current_dir(sandbox)
        .stdin(Stdio::null())
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr))
        .process_group(0)
        .kill_on_drop(false)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    if let Some(user) = command.user.as_deref() {
        if running_as_root() {
            match lookup_user(user) {
                Some((uid, gid)) => {
                    process.uid(uid).gid(gid);
                }
                None => tracing::warn!(
                    user,
                    "unknown user; running the command as the agent's user"
                ),
            }
        } else {
            tracing::debug!(user, "not root; running the command as the agent's user");
        }
    }
    Ok(process)
}

/// Opens (appending) one of the sandbox's output files.
fn output_file(sandbox: &Path, name: &'static str) -> Result<std::fs::File, CommandError> {
    let path = sandbox.join(name);
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|source| CommandError::OutputFile { name, path, source })
}

/// Starts a built process, naming the command's `value` in the error.
pub(crate) fn spawn(
    mut process: tokio::process::Command,
    command: &CommandInfo,
) -> Result<tokio::process::Child, CommandError> {
    process.spawn().map_err(|source| CommandError::Spawn {
        program: command.value().to_string(),
        source,
    })
}

/// A process for a COMMAND health check: like [`build_command`], with its output discarded.
pub(crate) fn build_command_for_check(
    command: &CommandInfo,
    sandbox: &Path,
    env: &[(String, String)],
) -> Result<tokio::process::Command, CommandError> {
    let mut process = program(command, "the check command")?;
    process
        .current_dir(sandbox)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .envs(command_env(command));
    Ok(process)
}
