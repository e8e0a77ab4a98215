//! A framework that serves its own executor: this one binary is both. Run as the framework
//! (`cargo run --features server --example custom_executor [-- --master URL --advertise HOST]`),
//! it registers its own executable with the SDK's artifact server and runs N tasks whose
//! executor is that artifact; the agent's fetcher downloads it and starts it (the agent sets
//! `MESOS_EXECUTOR_ID`, so the binary runs as the executor). Each task does a message round
//! trip: the executor reports RUNNING and sends `ready <task>` to the framework; the
//! framework's controller answers `finish`; the executor then finishes the task. Exits 0 when
//! every task finished after its round trip, with a one-line summary.
//!
//! Without `--master` it starts an embedded mesos-local cluster. Against a real cluster, agents
//! must reach the artifact server: give `--advertise HOST` (the server then listens on all
//! interfaces).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use mesos_local::cluster::LocalCluster;
use mesos_sdk::executor::{self, Executor, ExecutorConfig, ExecutorHandle};
use mesos_sdk::framework::{Context, Controller, Framework};
use mesos_sdk::server::{Artifact, Server};
use mesos_sdk::taskmgr::spec::{ExecutorSpec, TaskSpec};
use mesos_sdk::v1::{AgentId, ExecutorId, KillPolicy, TaskId, TaskInfo, TaskState};

const TASKS: u32 = 3;
const ARTIFACT: &str = "custom-executor";

/// The executor side: RUNNING, `ready <task>` to the framework, FINISHED on `finish`.
#[derive(Default)]
struct RoundTrip {
    tasks: Vec<TaskId>,
}

impl Executor for RoundTrip {
    async fn launch(&mut self, handle: &ExecutorHandle, task: TaskInfo) {
        let id = task.task_id;
        let sent = handle
            .send_status(
                id.clone(),
                TaskState::TaskRunning,
                "waiting for the framework",
            )
            .and_then(|_| handle.send_message(format!("ready {}", id.value)));
        if let Err(error) = sent {
            tracing::warn!(%error, "cannot report the task");
        }
        self.tasks.push(id);
    }

    async fn message(&mut self, handle: &ExecutorHandle, data: Bytes) {
        if data.as_ref() != b"finish" {
            return;
        }
        for id in self.tasks.drain(..) {
            let message = "finished after a message round trip";
            if let Err(error) = handle.send_status(id, TaskState::TaskFinished, message) {
                tracing::warn!(%error, "cannot report the task");
            }
        }
    }

    async fn kill(&mut self, handle: &ExecutorHandle, task_id: TaskId, _: Option<KillPolicy>) {
        self.tasks.retain(|t| *t != task_id);
        if let Err(error) = handle.send_status(task_id, TaskState::TaskKilled, "killed") {
            tracing::warn!(%error, "cannot report the kill");
        }
    }
}

/// The framework side: every default, plus the answer to the executors' messages.
#[derive(Default)]
struct Relay {
    round_trips: AtomicUsize,
}

#[async_trait::async_trait]
impl Controller for Relay {
    async fn message(&self, ctx: &Context, agent: &AgentId, executor: &ExecutorId, data: &Bytes) {
        if !data.starts_with(b"ready ") {
            return;
        }
        self.round_trips.fetch_add(1, Ordering::SeqCst);
        let reply = Bytes::from_static(b"finish");
        if let Err(error) = ctx
            .scheduler()
            .message(agent.clone(), executor.clone(), reply)
            .await
        {
            tracing::warn!(%error, "cannot answer the executor");
        }
    }
}

fn arg(name: &str) -> Option<String> {
    std::env::args().skip_while(|a| a != name).nth(1)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    if std::env::var_os("MESOS_EXECUTOR_ID").is_some() {
        executor::run(RoundTrip::default(), ExecutorConfig::from_env()?).await?;
        return Ok(());
    }

    let master = arg("--master");
    let cluster = match master {
        Some(_) => None,
        None => Some(LocalCluster::builder().agents(2).start().await?),
    };
    let url = master.or(cluster.as_ref().map(LocalCluster::master_url));
    let mut server =
        Server::builder().artifact(Artifact::from_file(ARTIFACT, std::env::current_exe()?).await?);
    if let Some(host) = arg("--advertise") {
        server = server.bind("0.0.0.0:0".parse()?).advertised_host(host);
    }
    let relay = Arc::new(Relay::default());
    let spec = TaskSpec::new("served")
        .instances(TASKS)
        .executor(ExecutorSpec::artifact(ARTIFACT))
        .cpus(0.1)
        .mem(32.0);
    let framework = Framework::builder(url.unwrap_or_default(), "custom-executor")
        .server(server)
        .task(spec)
        .start(relay.clone())
        .await?;
    let summary = framework.settled().await;
    framework.teardown().await?;
    let finished = framework.tasks().by_state("TASK_FINISHED").await.len();
    let trips = relay.round_trips.load(Ordering::SeqCst);
    println!(
        "custom_executor: {finished} of {TASKS} tasks finished through the served executor, \
         {trips} message round trips, {} given up",
        summary.given_up
    );
    (finished == TASKS as usize && trips >= TASKS as usize)
        .then_some(())
        .ok_or_else(|| "not every task finished after a round trip".into())
}
