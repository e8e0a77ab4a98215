//! `mesos-example-executor`: a custom Mesos executor that runs each task's command.
//!
//! Built on [`mesos_sdk::executor`]. For every LAUNCH (and every task of a LAUNCH_GROUP) it runs
//! the task's `command` (`sh -c <value>` when `shell` is true, the argv `arguments` with program
//! `value` otherwise; a task without a command has its `data` run as a shell command), reporting
//! TASK_STARTING, TASK_RUNNING and then TASK_FINISHED, TASK_FAILED (with the exit status in the
//! message) or, after a KILL, TASK_KILLED. A kill sends SIGTERM to the task's process group and
//! SIGKILL once the kill policy's grace period (default 3 s) has passed. Every MESSAGE from the
//! scheduler is echoed back prefixed with `echo:`. On SHUTDOWN every task is killed and the
//! process exits 0; it also exits 0 when the agent connection is lost and the framework does
//! not checkpoint, and non-zero on configuration or fatal protocol errors.
//!
//! Tasks run in the sandbox (`MESOS_SANDBOX`, else `MESOS_DIRECTORY`) with the command's
//! environment variables added, and inherit the executor's stdout and stderr. `CommandInfo.user`
//! is ignored: tasks run as the executor's user. Logs go to stderr (`RUST_LOG` filters them).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{ExitCode, ExitStatus};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use mesos_sdk::executor::{self, Executor, ExecutorConfig, ExecutorHandle, Outcome};
use mesos_sdk::v1::environment::variable::Type as VariableType;
use mesos_sdk::v1::{KillPolicy, TaskId, TaskInfo, TaskState};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::process::Command;
use tokio::sync::oneshot;
use tracing::{error, info, warn};

/// Grace period between SIGTERM and SIGKILL when neither the KILL event nor the task has a kill
/// policy.
const DEFAULT_KILL_GRACE_PERIOD: Duration = Duration::from_secs(3);

/// A running task, as the executor sees it.
struct RunningTask {
    /// Wakes the supervisor to kill the task with this grace period.
    kill: Option<oneshot::Sender<Duration>>,
    /// The task's process group, once it started.
    process_group: Option<Pid>,
    /// The task's own kill policy grace period.
    grace_period: Duration,
}

type TaskTable = Arc<Mutex<HashMap<String, RunningTask>>>;

fn lock(tasks: &TaskTable) -> MutexGuard<'_, HashMap<String, RunningTask>> {
    tasks
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

struct CommandExecutor {
    sandbox: PathBuf,
    tasks: TaskTable,
}

impl Executor for CommandExecutor {
    async fn launch(&mut self, handle: &ExecutorHandle, task: TaskInfo) {
        let task_id = task.task_id.value.clone();
        if lock(&self.tasks).contains_key(&task_id) {
            warn!(task = %task_id, "duplicate LAUNCH ignored");
            return;
        }
        let (kill_sender, kill_receiver) = oneshot::channel();
        let grace_period = task
            .kill_policy
            .as_ref()
            .and_then(grace_period_of)
            .unwrap_or(DEFAULT_KILL_GRACE_PERIOD);
        lock(&self.tasks).insert(
            task_id,
            RunningTask {
                kill: Some(kill_sender),
                process_group: None,
                grace_period,
            },
        );
        tokio::spawn(supervise(
            handle.clone(),
            task,
            self.sandbox.clone(),
            self.tasks.clone(),
            kill_receiver,
        ));
    }

    async fn kill(
        &mut self,
        _handle: &ExecutorHandle,
        task_id: TaskId,
        policy: Option<KillPolicy>,
    ) {
        let mut tasks = lock(&self.tasks);
        let Some(task) = tasks.get_mut(&task_id.value) else {
            warn!(task = %task_id.value, "KILL for a task that is not running");
            return;
        };
        let grace = policy
            .as_ref()
            .and_then(grace_period_of)
            .unwrap_or(task.grace_period);
        if let Some(kill) = task.kill.take() {
            info!(task = %task_id.value, ?grace, "killing task");
            let _ = kill.send(grace);
        }
    }

    async fn message(&mut self, handle: &ExecutorHandle, data: Bytes) {
        let mut echo = BytesMut::with_capacity(5 + data.len());
        echo.put_slice(b"echo:");
        echo.put_slice(&data);
        if let Err(err) = handle.send_message(echo.freeze()) {
            warn!(error = %err, "cannot echo a message");
        }
    }

    async fn error(&mut self, _handle: &ExecutorHandle, message: &str) {
        warn!(%message, "agent reported an error");
    }
}

fn grace_period_of(policy: &KillPolicy) -> Option<Duration> {
    let nanos = policy.grace_period.as_ref()?.nanoseconds;
    Some(Duration::from_nanos(u64::try_from(nanos).unwrap_or(0)))
}

/// Builds the process for `task`, or says why the task is invalid.
fn command_for(task: &TaskInfo, sandbox: &PathBuf) -> Result<Command, String> {
    let mut command = match &task.command {
        Some(info) => {
            let value = info
                .value
                .as_deref()
                .ok_or("the task's command has no value")?;
            if info.shell() {
                let mut command = Command::new("/bin/sh");
                command.arg("-c").arg(value);
                command
            } else {
                let mut command = Command::new(value);
                if let Some((argv0, rest)) = info.arguments.split_first() {
                    command.arg0(argv0).args(rest);
                }
                command
            }
        }
        None => {
            let data = task
                .data
                .as_deref()
                .filter(|data| !data.is_empty())
                .ok_or("the task has neither a command nor data to run")?;
            let script =
                std::str::from_utf8(data).map_err(|_| "the task's data is not UTF-8 text")?;
            let mut command = Command::new("/bin/sh");
            command.arg("-c").arg(script);
            command
        }
    };
    if let Some(environment) = task.command.as_ref().and_then(|c| c.environment.as_ref()) {
        for variable in &environment.variables {
            match (variable.r#type(), &variable.value) {
                (VariableType::Value | VariableType::Unknown, Some(value)) => {
                    command.env(&variable.name, value);
                }
                _ => {
                    warn!(name = %variable.name, "skipping an environment variable without a plain value")
                }
            }
        }
    }
    if sandbox.is_dir() {
        command.current_dir(sandbox);
    }
    command.process_group(0).kill_on_drop(true);
    Ok(command)
}

fn describe_exit(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("Command exited with status {code}"),
        (None, Some(signal)) => match Signal::try_from(signal) {
            Ok(signal) => format!("Command terminated by signal {signal}"),
            Err(_) => format!("Command terminated by signal {signal}"),
        },
        (None, None) => "Command ended for an unknown reason".to_owned(),
    }
}

/// Runs one task to its end and reports its states.
async fn supervise(
    handle: ExecutorHandle,
    task: TaskInfo,
    sandbox: PathBuf,
    tasks: TaskTable,
    kill: oneshot::Receiver<Duration>,
) {
    let task_id = task.task_id.clone();
    let report = |state: TaskState, message: String| {
        if let Err(err) = handle.send_status(task_id.clone(), state, message) {
            warn!(task = %task_id.value, error = %err, "cannot send a status update");
        }
    };
    let finish = || {
        lock(&tasks).remove(&task_id.value);
    };

    let mut command = match command_for(&task, &sandbox) {
        Ok(command) => command,
        Err(reason) => {
            report(TaskState::TaskError, reason.to_owned());
            finish();
            return;
        }
    };
    report(TaskState::TaskStarting, "Starting the command".to_owned());
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(err) => {
            report(
                TaskState::TaskFailed,
                format!("Cannot start the command: {err}"),
            );
            finish();
            return;
        }
    };
    let process_group = child
        .id()
        .and_then(|pid| i32::try_from(pid).ok())
        .map(Pid::from_raw);
    if let Some(entry) = lock(&tasks).get_mut(&task_id.value) {
        entry.process_group = process_group;
    }
    report(TaskState::TaskRunning, "Command running".to_owned());
    info!(task = %task_id.value, pid = ?process_group, "task running");

    tokio::select! {
        status = child.wait() => {
            match status {
                Ok(status) if status.success() => {
                    report(TaskState::TaskFinished, describe_exit(status));
                }
                Ok(status) => report(TaskState::TaskFailed, describe_exit(status)),
                Err(err) => report(TaskState::TaskFailed, format!("Cannot wait for the command: {err}")),
            }
        }
        Ok(grace) = kill => {
            if let Some(group) = process_group {
                let _ = killpg(group, Signal::SIGTERM);
            }
            let status = match tokio::time::timeout(grace, child.wait()).await {
                Ok(status) => status,
                Err(_) => {
                    if let Some(group) = process_group {
                        let _ = killpg(group, Signal::SIGKILL);
                    }
                    child.wait().await
                }
            };
            let message = match status {
                Ok(status) => format!("Command killed: {}", describe_exit(status)),
                Err(err) => format!("Command killed: {err}"),
            };
            report(TaskState::TaskKilled, message);
        }
    }
    // Anything the command left behind in its process group goes with it.
    if let Some(group) = process_group {
        let _ = killpg(group, Signal::SIGKILL);
    }
    finish();
}

/// SIGKILLs the process group of every task still running.
fn kill_everything(tasks: &TaskTable) {
    for (task_id, task) in lock(tasks).iter() {
        if let Some(group) = task.process_group {
            warn!(task = %task_id, "killing a task left running at exit");
            let _ = killpg(group, Signal::SIGKILL);
        }
    }
}

async fn run(config: ExecutorConfig) -> Result<Outcome, executor::Error> {
    let tasks: TaskTable = Arc::default();
    let executor = CommandExecutor {
        sandbox: config.sandbox_dir().to_path_buf(),
        tasks: tasks.clone(),
    };
    let runtime = executor::Runtime::new(config)?;
    let handle = runtime.handle();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut terminate) => {
            tokio::spawn(async move {
                if terminate.recv().await.is_some() {
                    info!("SIGTERM: stopping");
                    let _ = handle.stop();
                }
            });
        }
        Err(err) => warn!(error = %err, "cannot watch SIGTERM"),
    }
    let result = runtime.run(executor).await;
    kill_everything(&tasks);
    result
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let config = match ExecutorConfig::from_env() {
        Ok(config) => config,
        Err(err) => {
            error!(error = %err, "invalid executor environment");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            error!(error = %err, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(outcome) => {
            info!(?outcome, "executor done");
            ExitCode::SUCCESS
        }
        Err(err) => {
            error!(error = %err, "executor failed");
            ExitCode::FAILURE
        }
    }
}
