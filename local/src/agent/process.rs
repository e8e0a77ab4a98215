//! The lifecycles of executor and task processes: the built-in command executor's task loop
//! (fetch, spawn, updates, kill with grace period, health checks, exit status) and the life of
//! custom executor processes (fetch, spawn, registration timeout, exit). Their command lines and
//! environment are built by `command`; a task or executor with a DOCKER `ContainerInfo` runs in a
//! container instead (`docker_run`), watched through its `docker wait` process.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::command::{CommandError, build_command, command_env, spawn};
use super::docker::DockerError;
use super::docker_run::{self, Launch, docker_container};
use super::fetcher::FetchError;
use super::{Agent, KillRequest, Termination, health, signal_group, wants_killing_state};
use mesos_sdk::v1::{
    ExecutorId, ExecutorInfo, FrameworkId, FrameworkInfo, TaskInfo, TaskState, task_status,
};

/// Why an executor or a built-in executor's task could not be started; the text follows
/// `Failed to launch container: ` in the TASK_FAILED message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum LaunchError {
    /// A command task without `command`, or a custom executor without one.
    #[error("the {0} has no command")]
    NoCommand(&'static str),
    /// The sandbox directory could not be created.
    #[error("cannot create the sandbox: {0}")]
    Sandbox(#[source] std::io::Error),
    /// A URI could not be fetched.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The process could not be built or started.
    #[error(transparent)]
    Command(#[from] CommandError),
    /// The Docker container could not be created or started.
    #[error(transparent)]
    Docker(#[from] DockerError),
}

/// Everything a built-in executor needs to run one task.
#[derive(Debug)]
pub(crate) struct TaskRun {
    pub(crate) framework_id: FrameworkId,
    pub(crate) framework_info: FrameworkInfo,
    pub(crate) executor_id: ExecutorId,
    pub(crate) run_id: String,
    /// Where the task runs (its executor's sandbox, or `tasks/<id>` below it in a group).
    pub(crate) sandbox: PathBuf,
    pub(crate) executor_sandbox: PathBuf,
    pub(crate) task: TaskInfo,
    pub(crate) checkpoint: bool,
}

/// Everything needed to start a custom executor process.
#[derive(Debug)]
pub(crate) struct ExecutorLaunch {
    pub(crate) framework_id: String,
    pub(crate) framework_info: FrameworkInfo,
    pub(crate) info: ExecutorInfo,
    pub(crate) run_id: String,
    pub(crate) sandbox: PathBuf,
    pub(crate) checkpoint: bool,
    /// What a container of the executor is limited to: the executor's resources and those of
    /// the tasks launched with it (as Mesos sizes executor containers).
    pub(crate) resources: Vec<mesos_sdk::v1::Resource>,
}

/// Raw wait status reported when an executor could not be started at all (as `exit 1`).
const LAUNCH_FAILED_WAIT_STATUS: i32 = 1 << 8;

/// Mesos' text for a signal (as `strsignal` gives it).
fn signal_text(signal: i32) -> String {
    use nix::sys::signal::Signal;
    match Signal::try_from(signal) {
        Ok(Signal::SIGTERM) => "Terminated".to_string(),
        Ok(Signal::SIGKILL) => "Killed".to_string(),
        Ok(Signal::SIGINT) => "Interrupt".to_string(),
        Ok(Signal::SIGHUP) => "Hangup".to_string(),
        Ok(Signal::SIGABRT) => "Aborted".to_string(),
        Ok(Signal::SIGSEGV) => "Segmentation fault".to_string(),
        Ok(Signal::SIGQUIT) => "Quit".to_string(),
        Ok(Signal::SIGPIPE) => "Broken pipe".to_string(),
        Ok(other) => other.as_str().to_string(),
        Err(_) => format!("Unknown signal {signal}"),
    }
}

/// Runs one task the way Mesos' command executor does: fetch, launch, TASK_STARTING,
/// TASK_RUNNING, then TASK_FINISHED / TASK_FAILED / TASK_KILLED, with health checks and kills.
pub(crate) async fn run_task_command(
    agent: Arc<Agent>,
    run: TaskRun,
    mut kill_rx: mpsc::UnboundedReceiver<KillRequest>,
) {
    let framework_id = run.framework_id.value.clone();
    let executor_id = run.executor_id.clone();
    let task_id = run.task.task_id.clone();
    // Set once a Docker container runs: its updates carry it.
    let container_status = std::sync::OnceLock::new();
    let update = |state: TaskState,
                  source: task_status::Source,
                  reason: Option<task_status::Reason>,
                  message: Option<String>,
                  healthy: Option<bool>| {
        let mut status =
            agent.new_status(&task_id, state, source, reason, message, Some(&executor_id));
        status.healthy = healthy;
        status.container_status = container_status.get().cloned();
        agent.record_update(&framework_id, status, None);
    };
    let finish = |state: TaskState| {
        agent.builtin_task_done(&framework_id, &executor_id.value, &task_id.value, state);
    };
    let launch_failed = |error: LaunchError| {
        update(
            TaskState::TaskFailed,
            task_status::Source::Agent,
            Some(task_status::Reason::ContainerLaunchFailed),
            Some(format!("Failed to launch container: {error}")),
            None,
        );
        finish(TaskState::TaskFailed);
    };
    let Some(command) = run.task.command.clone() else {
        launch_failed(LaunchError::NoCommand("task"));
        return;
    };
    if let Err(err) = tokio::fs::create_dir_all(&run.sandbox).await {
        launch_failed(LaunchError::Sandbox(err));
        return;
    }
    if let Err(err) =
        super::volumes::link_persistent_volumes(&agent.work_dir, &run.sandbox, &run.task.resources)
    {
        launch_failed(LaunchError::Sandbox(err));
        return;
    }
    // A KILL (or TEARDOWN, or the agent stopping) during the fetch cancels it.
    let stop = async {
        tokio::select! {
            Some(_) = kill_rx.recv() => {}
            () = agent.cancel.cancelled() => {}
        }
    };
    let killed_while_fetching = match agent
        .fetcher
        .fetch_all_as(command.user.as_deref(), &command.uris, &run.sandbox, stop)
        .await
    {
        Ok(()) => false,
        Err(super::fetcher::FetchError::Cancelled) => true,
        Err(err) => {
            launch_failed(err.into());
            return;
        }
    };
    if killed_while_fetching || kill_rx.try_recv().is_ok() {
        update(
            TaskState::TaskKilled,
            task_status::Source::Agent,
            Some(task_status::Reason::TaskKilledDuringLaunch),
            Some("Task killed before it was launched".to_string()),
            None,
        );
        finish(TaskState::TaskKilled);
        return;
    }
    let grace = agent.executor_grace_for(&framework_id, &executor_id.value);
    let mut env = agent.executor_env(
        &framework_id,
        &executor_id.value,
        &run.sandbox,
        run.checkpoint,
        grace,
    );
    env.push(("MESOS_TASK_ID".to_string(), task_id.value.clone()));
    env.extend(command_env(&command));
    // In a Docker container the watched process is the container's `docker wait`.
    let mut running = None;
    let mut child = match docker_container(run.task.container.as_deref()) {
        Some(_) if run.sandbox != run.executor_sandbox => {
            launch_failed(LaunchError::Docker(DockerError::Invalid(
                "tasks of a task group cannot run in DOCKER containers".to_string(),
            )));
            return;
        }
        Some(container) => {
            let launch = Launch {
                container_id: &run.run_id,
                container,
                command: &command,
                env: &env,
                sandbox: &run.sandbox,
                resources: &run.task.resources,
            };
            match agent.docker_start(&launch).await {
                Ok((watcher, started)) => {
                    let _ = container_status.set(started.status.clone());
                    running = Some(started);
                    watcher
                }
                Err(err) => {
                    launch_failed(err.into());
                    return;
                }
            }
        }
        None => {
            match build_command(&command, &run.sandbox, &env).and_then(|c| spawn(c, &command)) {
                Ok(child) => child,
                Err(err) => {
                    launch_failed(err.into());
                    return;
                }
            }
        }
    };
    let pid = child.id().and_then(|p| i32::try_from(p).ok()).unwrap_or(0);
    agent.set_task_pgid(&framework_id, &executor_id.value, &task_id.value, pid);
    if agent.lock().stopped {
        // The agent stopped while the task was being fetched and launched.
        signal_group(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = child.wait().await;
        if let Some(running) = &mut running {
            agent.docker_finish(running).await;
        }
        return;
    }
    // A graceful stop and a kill: signals to the process group, or Docker's stop and kill.
    let terminate = |grace| match &running {
        Some(running) => agent.docker_stop(&running.name, grace),
        None => signal_group(pid, nix::sys::signal::Signal::SIGTERM),
    };
    let kill_now = || match &running {
        Some(running) => agent.docker_kill(&running.name),
        None => signal_group(pid, nix::sys::signal::Signal::SIGKILL),
    };
    if run.checkpoint {
        let (framework_id, executor_id, run_id, task_id) = (
            framework_id.clone(),
            executor_id.value.clone(),
            run.run_id.clone(),
            task_id.value.clone(),
        );
        agent.checkpoint("task pid", move |meta, agent| {
            meta.write_task_pid(agent, &framework_id, &executor_id, &run_id, &task_id, pid)
        });
    }
    let _ = &run.executor_sandbox;
    update(
        TaskState::TaskStarting,
        task_status::Source::Executor,
        None,
        None,
        None,
    );
    update(
        TaskState::TaskRunning,
        task_status::Source::Executor,
        None,
        None,
        None,
    );
    let (health_tx, mut health_rx) = mpsc::unbounded_channel();
    let health_task = run.task.health_check.as_deref().cloned().map(|check| {
        let check = match (&running, docker_container(run.task.container.as_deref())) {
            (Some(running), Some(container)) => {
                docker_run::health_check_in(check, &running.name, container, agent.docker.config())
            }
            _ => check,
        };
        tokio::spawn(health::run(
            check,
            run.sandbox.clone(),
            env.clone(),
            health_tx,
        ))
    });
    let mut killing: Option<tokio::time::Instant> = None;
    let mut escalated = false;
    let mut kill_open = true;
    let mut healthy: Option<bool> = None;
    let mut killed_by_health = false;
    let wants_killing = wants_killing_state(&run.framework_info);
    let exit = loop {
        let escalate_at = killing.filter(|_| !escalated);
        tokio::select! {
            status = child.wait() => break status,
            request = kill_rx.recv(), if kill_open => {
                match request {
                    Some(request) if killing.is_none() => {
                        if wants_killing {
                            update(TaskState::TaskKilling, task_status::Source::Executor, None, None, healthy);
                        }
                        terminate(request.grace);
                        killing = Some(tokio::time::Instant::now() + request.grace);
                    }
                    Some(_) => {}
                    None => kill_open = false,
                }
            }
            _ = async { tokio::time::sleep_until(escalate_at.unwrap_or_else(tokio::time::Instant::now)).await }, if escalate_at.is_some() => {
                kill_now();
                escalated = true;
            }
            event = health_rx.recv() => {
                let Some(event) = event else { continue };
                if killing.is_some() {
                    continue;
                }
                healthy = Some(event.healthy);
                if event.kill {
                    killed_by_health = true;
                    if wants_killing {
                        update(TaskState::TaskKilling, task_status::Source::Executor, None, None, healthy);
                    }
                    terminate(grace);
                    killing = Some(tokio::time::Instant::now() + grace);
                } else {
                    update(
                        TaskState::TaskRunning,
                        task_status::Source::Executor,
                        Some(task_status::Reason::TaskHealthCheckStatusUpdated),
                        None,
                        healthy,
                    );
                }
            }
        }
    };
    if let Some(task) = health_task {
        task.abort();
    }
    // Stray children of the task die with it.
    signal_group(pid, nix::sys::signal::Signal::SIGKILL);
    let container_end = match &mut running {
        Some(running) => Some(agent.docker_finish(running).await),
        None => None,
    };
    let (state, message, reason) = match exit {
        // A container's end is its exit code (its `docker wait` may have been killed instead).
        _ if container_end.is_some() => {
            let end = container_end.flatten();
            let text = docker_run::exit_text(end.as_ref());
            if killing.is_some() {
                let reason =
                    killed_by_health.then_some(task_status::Reason::TaskHealthCheckStatusUpdated);
                (TaskState::TaskKilled, text, reason)
            } else {
                match end {
                    Some(end) if end.exit_code == 0 && !end.oom_killed => {
                        (TaskState::TaskFinished, text, None)
                    }
                    Some(end) if end.oom_killed => (
                        TaskState::TaskFailed,
                        text,
                        Some(task_status::Reason::ContainerLimitationMemory),
                    ),
                    _ => (TaskState::TaskFailed, text, None),
                }
            }
        }
        Err(err) => (
            TaskState::TaskFailed,
            format!("Failed to wait for the command: {err}"),
            None,
        ),
        Ok(status) => {
            use std::os::unix::process::ExitStatusExt;
            let text = match (status.code(), status.signal()) {
                (Some(code), _) => format!("Command exited with status {code}"),
                (None, Some(signal)) => {
                    format!("Command terminated with signal {}", signal_text(signal))
                }
                _ => "Command terminated".to_string(),
            };
            if killing.is_some() {
                let reason =
                    killed_by_health.then_some(task_status::Reason::TaskHealthCheckStatusUpdated);
                (TaskState::TaskKilled, text, reason)
            } else if status.success() {
                (TaskState::TaskFinished, text, None)
            } else {
                (TaskState::TaskFailed, text, None)
            }
        }
    };
    update(
        state,
        task_status::Source::Executor,
        reason,
        Some(message),
        healthy,
    );
    finish(state);
}

/// Starts a custom executor and watches it until it exits.
pub(crate) async fn launch_custom_executor(agent: Arc<Agent>, launch: ExecutorLaunch) {
    let framework_id = launch.framework_id.clone();
    let executor_id = launch.info.executor_id.value.clone();
    let run_id = launch.run_id.clone();
    let failed = |error: LaunchError| {
        tracing::warn!(executor_id = %executor_id, %error, "executor launch failed");
        agent.executor_terminated(
            &framework_id,
            &executor_id,
            &run_id,
            LAUNCH_FAILED_WAIT_STATUS,
            Termination {
                state: TaskState::TaskFailed,
                reason: task_status::Reason::ContainerLaunchFailed,
                message: format!("Failed to launch container: {error}"),
            },
        );
    };
    let Some(command) = launch.info.command.clone() else {
        failed(LaunchError::NoCommand("executor"));
        return;
    };
    if let Err(err) = tokio::fs::create_dir_all(&launch.sandbox).await {
        failed(LaunchError::Sandbox(err));
        return;
    }
    if let Err(err) = agent
        .fetcher
        .fetch_all_as(
            command.user.as_deref(),
            &command.uris,
            &launch.sandbox,
            agent.custom_fetch_stop(&framework_id, &executor_id, &run_id),
        )
        .await
    {
        failed(err.into());
        return;
    }
    let grace = agent.executor_grace(&launch.info);
    let mut env = agent.executor_env(
        &framework_id,
        &executor_id,
        &launch.sandbox,
        launch.checkpoint,
        grace,
    );
    env.extend(command_env(&command));
    let _ = &launch.framework_info;
    // In a Docker container the watched process is the container's `docker wait`.
    let (mut child, mut running) = match docker_container(launch.info.container.as_deref()) {
        Some(container) => {
            let docker_launch = Launch {
                container_id: &run_id,
                container,
                command: &command,
                env: &env,
                sandbox: &launch.sandbox,
                resources: &launch.resources,
            };
            match agent.docker_start(&docker_launch).await {
                Ok((watcher, running)) => (watcher, Some(running)),
                Err(err) => {
                    failed(err.into());
                    return;
                }
            }
        }
        None => {
            let spawned =
                build_command(&command, &launch.sandbox, &env).and_then(|c| spawn(c, &command));
            match spawned {
                Ok(child) => (child, None),
                Err(err) => {
                    failed(err.into());
                    return;
                }
            }
        }
    };
    let pid = child.id().and_then(|p| i32::try_from(p).ok()).unwrap_or(0);
    agent.custom_executor_started(&framework_id, &executor_id, &run_id, pid);
    tracing::info!(executor_id = %executor_id, pid, "executor started");
    let timeout = agent.config.executor_registration_timeout;
    let watchdog = {
        let agent = Arc::downgrade(&agent);
        let (framework_id, executor_id, run_id) =
            (framework_id.clone(), executor_id.clone(), run_id.clone());
        tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            if let Some(agent) = agent.upgrade() {
                agent.registration_timeout(&framework_id, &executor_id, &run_id);
            }
        })
    };
    let cancel = agent.cancel.clone();
    let status = tokio::select! {
        status = child.wait() => status,
        _ = cancel.cancelled() => {
            watchdog.abort();
            if let Some(running) = &mut running {
                agent.docker_finish(running).await;
            }
            return;
        }
    };
    watchdog.abort();
    use std::os::unix::process::ExitStatusExt;
    let raw = match &mut running {
        Some(running) => docker_run::wait_status(agent.docker_finish(running).await.as_ref()),
        None => status.map(|s| s.into_raw()).unwrap_or(-1),
    };
    let timed_out = agent.registration_timed_out(&framework_id, &executor_id, &run_id);
    let (reason, message) = if timed_out {
        (
            task_status::Reason::ExecutorRegistrationTimeout,
            "Executor did not register within the registration timeout".to_string(),
        )
    } else {
        (
            task_status::Reason::ExecutorTerminated,
            "Executor terminated".to_string(),
        )
    };
    agent.executor_terminated(
        &framework_id,
        &executor_id,
        &run_id,
        raw,
        Termination {
            state: TaskState::TaskFailed,
            reason,
            message,
        },
    );
}
