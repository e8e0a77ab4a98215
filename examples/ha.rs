//! A highly available scheduler: run two or three of these against one Mesos master and one
//! etcd; the leader keeps `--tasks` long-running `sleep` tasks alive, the others wait.
//!
//! ```text
//! cargo run --example ha --features etcd -- --master http://127.0.0.1:5050 \
//!     --etcd http://127.0.0.1:2379 --id a --tasks 3
//! ```
//!
//! Write-ahead: the intent to launch a task is stored (fenced) before the ACCEPT, so a new
//! leader finds every task that may exist and reconciles it instead of launching it again.
//! Each stored task record names the instance that wrote it.
//!
//! Options (all `--name value`): `master`, `etcd` (comma-separated), `id`, `name` (framework,
//! default `ha-example`), `tasks` (default 3), `ttl-ms` (default 10000), `keepalive-ms`,
//! `margin-ms`, `command` (default `sleep 3600`), `resources` (default `cpus:0.1;mem:32`),
//! `status-every-ms` (the leader writes a status record, fenced, this often; default off),
//! `unsafe-step-down-ms` (replaces the local step-down deadline; longer than the TTL is
//! unsafe: for the fencing tests only), `heartbeat-misses` (master heartbeats missed before
//! the scheduler calls its connection dead; default the SDK's).
//!
//! It prints one line per notable step on stdout (`LEADING`, `SUBSCRIBED`, `LAUNCH`,
//! `RECONCILE`, `TERM_END`, `SCHEDULER_TERMINATION`, `REJECTED_WRITES`, `STANDBY`), which the
//! process tests read.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use futures::StreamExt;
use mesos_sdk::client::Client;
use mesos_sdk::ha::{AfterTerm, ElectionConfig, HaConfig, HaRunner, Term};
use mesos_sdk::resourcemgr::{CommandTask, OfferResources};
use mesos_sdk::scheduler::calls::operations;
use mesos_sdk::scheduler::{FrameworkInfoBuilder, SchedulerEvent};
use mesos_sdk::storage::{
    Error as StoreError, EtcdStore, Namespace, RangeRequest, Store, StoreExt, decode_json,
};
use mesos_sdk::v1::{AgentId, TaskId};
use serde::{Deserialize, Serialize};

/// What the store knows about a task.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TaskRecord {
    agent_id: String,
    state: String,
    writer: String,
}

struct Options {
    master: String,
    etcd: Vec<String>,
    id: String,
    name: String,
    tasks: usize,
    ttl: Duration,
    keep_alive: Option<Duration>,
    margin: Option<Duration>,
    command: String,
    resources: String,
    status_every: Option<Duration>,
    unsafe_step_down: Option<Duration>,
    heartbeat_misses: Option<u32>,
}

fn options() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let mut map = BTreeMap::new();
    while let Some(flag) = args.next() {
        let name = flag
            .strip_prefix("--")
            .ok_or_else(|| format!("unexpected argument {flag}"))?;
        let value = args
            .next()
            .ok_or_else(|| format!("--{name} needs a value"))?;
        map.insert(name.to_owned(), value);
    }
    let ms = |name: &str| -> Result<Option<Duration>, String> {
        map.get(name)
            .map(|v| v.parse::<u64>().map(Duration::from_millis))
            .transpose()
            .map_err(|e| format!("--{name}: {e}"))
    };
    Ok(Options {
        master: map.get("master").cloned().ok_or("--master is required")?,
        etcd: map
            .get("etcd")
            .ok_or("--etcd is required")?
            .split(',')
            .map(str::to_owned)
            .collect(),
        id: map
            .get("id")
            .cloned()
            .unwrap_or_else(|| format!("instance-{}", std::process::id())),
        name: map
            .get("name")
            .cloned()
            .unwrap_or_else(|| "ha-example".into()),
        tasks: map
            .get("tasks")
            .map(|v| v.parse())
            .transpose()
            .map_err(|e| format!("--tasks: {e}"))?
            .unwrap_or(3),
        ttl: ms("ttl-ms")?.unwrap_or(Duration::from_secs(10)),
        keep_alive: ms("keepalive-ms")?,
        margin: ms("margin-ms")?,
        status_every: ms("status-every-ms")?,
        unsafe_step_down: ms("unsafe-step-down-ms")?,
        heartbeat_misses: map
            .get("heartbeat-misses")
            .map(|v| v.parse())
            .transpose()
            .map_err(|e| format!("--heartbeat-misses: {e}"))?,
        command: map
            .get("command")
            .cloned()
            .unwrap_or_else(|| "sleep 3600".into()),
        resources: map
            .get("resources")
            .cloned()
            .unwrap_or_else(|| "cpus:0.1;mem:32".into()),
    })
}

fn say(line: String) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let options = options()?;
    let store = EtcdStore::builder(options.etcd.clone())
        .request_timeout(Duration::from_secs(1))
        .connect()
        .await?;
    let ns = Namespace::new(&options.name)?;
    let mut election = ElectionConfig::with_ttl(
        ns.key("leader"),
        &options.id,
        format!("instance://{}", options.id),
        options.ttl,
    );
    if let Some(interval) = options.keep_alive {
        election.keep_alive_interval = interval;
    }
    if let Some(margin) = options.margin {
        election.safety_margin = margin;
    }
    election.unsafe_step_down_after = options.unsafe_step_down;
    let heartbeat_misses = options.heartbeat_misses;
    let mut config = HaConfig::new(election, &ns);
    config.after_term = AfterTerm::Campaign;
    let client = Client::builder()
        .endpoint(options.master.clone())
        .call_timeout(Duration::from_secs(5))
        .build()?;
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let framework = FrameworkInfoBuilder::new(user, options.name.clone())
        .failover_timeout(Duration::from_secs(7 * 24 * 3600))
        .build();
    let runner = HaRunner::new(store.clone(), config, client, framework)?.configure_scheduler(
        move |builder| {
            let builder =
                builder.reconnect_backoff(Duration::from_millis(50), Duration::from_secs(1));
            match heartbeat_misses {
                Some(misses) => builder.heartbeat_misses(misses),
                None => builder,
            }
        },
    );

    let mut observed = runner.observe();
    let id = options.id.clone();
    tokio::spawn(async move {
        while let Some(leader) = observed.next().await {
            let who = leader.map(|l| l.id).unwrap_or_else(|| "-".into());
            if who != id {
                say(format!("STANDBY leader={who}"));
            }
        }
    });

    let end = runner.run(|term| lead(term, &ns, &options)).await?;
    say(format!("EXIT {end:?}"));
    Ok(())
}

/// One leadership term: keep `options.tasks` tasks alive.
async fn lead(mut term: Term<EtcdStore>, ns: &Namespace, options: &Options) {
    say(format!(
        "LEADING revision={} framework_id={}",
        term.fence().revision,
        term.framework_id
            .as_ref()
            .map_or("-", |id| id.value.as_str())
    ));
    let prefix = ns.key("tasks/");
    let status_key = ns.key("status");
    let mut tasks: BTreeMap<String, TaskRecord> = BTreeMap::new();
    // The status record's timer; never fires without `--status-every-ms`.
    let mut status = options.status_every.map(tokio::time::interval);
    loop {
        let tick = async {
            match status.as_mut() {
                Some(interval) => interval.tick().await,
                None => std::future::pending().await,
            }
        };
        let event = tokio::select! {
            // First: a leader that wakes from a pause writes its status before anything else.
            biased;
            _ = tick => {
                let record = TaskRecord {
                    agent_id: String::new(),
                    state: "LEADING".into(),
                    writer: options.id.clone(),
                };
                match term.store.put_json(&status_key, &record, None).await {
                    Err(StoreError::NotLeader { .. }) => {
                        say("NOT_LEADER stopping".into());
                        term.scheduler.stop();
                        break;
                    }
                    Err(e) => tracing::warn!(error = %e, "writing the status failed"),
                    Ok(_) => {}
                }
                continue;
            }
            event = term.next() => match event {
                Some(event) => event,
                None => break,
            },
        };
        tracing::debug!(?event, "scheduler event");
        let outcome = match event {
            SchedulerEvent::Connected { framework_id, .. } => {
                say(format!("SUBSCRIBED {}", framework_id.value));
                tasks = load_tasks(&term, &prefix).await;
                reconcile(&term, &tasks).await;
                Ok(())
            }
            SchedulerEvent::Update { status, .. } => {
                record_status(&term, &prefix, options, &mut tasks, &status).await
            }
            SchedulerEvent::Offers(offers) => {
                launch(&term, &prefix, options, &mut tasks, offers).await
            }
            _ => Ok(()),
        };
        if let Err(StoreError::NotLeader { .. }) = outcome {
            say("NOT_LEADER stopping".into());
            term.scheduler.stop();
            break;
        }
    }
    let end = term.ended().await;
    say(format!("TERM_END {end:?}"));
    say(format!(
        "SCHEDULER_TERMINATION {:?}",
        term.scheduler.termination()
    ));
    say(format!("REJECTED_WRITES {}", term.store.rejected_writes()));
}

async fn load_tasks(term: &Term<EtcdStore>, prefix: &str) -> BTreeMap<String, TaskRecord> {
    let mut tasks = BTreeMap::new();
    if let Ok(page) = term.store.range(prefix, RangeRequest::all()).await {
        for kv in page.kvs {
            match decode_json::<TaskRecord>(&kv) {
                Ok(record) => {
                    tasks.insert(kv.key.trim_start_matches(prefix).to_owned(), record);
                }
                Err(e) => tracing::error!(error = %e, "skipping an undecodable task record"),
            }
        }
    }
    tasks
}

async fn reconcile(term: &Term<EtcdStore>, tasks: &BTreeMap<String, TaskRecord>) {
    say(format!("RECONCILE {}", tasks.len()));
    if tasks.is_empty() {
        return;
    }
    let list = tasks
        .iter()
        .map(|(id, record)| {
            (
                TaskId { value: id.clone() },
                (!record.agent_id.is_empty()).then(|| AgentId {
                    value: record.agent_id.clone(),
                }),
            )
        })
        .collect();
    match term.scheduler.reconcile(list).await {
        Ok(_) => tracing::info!("reconciliation requested"),
        Err(e) => tracing::warn!(error = %e, "reconciliation failed"),
    }
}

async fn record_status(
    term: &Term<EtcdStore>,
    prefix: &str,
    options: &Options,
    tasks: &mut BTreeMap<String, TaskRecord>,
    status: &mesos_sdk::v1::TaskStatus,
) -> Result<(), StoreError> {
    let id = status.task_id.value.clone();
    let key = format!("{prefix}{id}");
    if status.state().is_terminal() {
        tasks.remove(&id);
        term.store.delete(&key).await?;
        say(format!("TASK_ENDED {id} {:?}", status.state()));
        return Ok(());
    }
    let record = TaskRecord {
        agent_id: status
            .agent_id
            .as_ref()
            .map(|a| a.value.clone())
            .unwrap_or_default(),
        state: format!("{:?}", status.state()),
        writer: options.id.clone(),
    };
    let changed = tasks.get(&id).is_none_or(|r| r.state != record.state);
    if changed {
        term.store.put_json(&key, &record, None).await?;
    }
    say(format!("TASK {id} {}", record.state));
    tasks.insert(id, record);
    Ok(())
}

async fn launch(
    term: &Term<EtcdStore>,
    prefix: &str,
    options: &Options,
    tasks: &mut BTreeMap<String, TaskRecord>,
    offers: Vec<mesos_sdk::v1::Offer>,
) -> Result<(), StoreError> {
    for offer in offers {
        let mut resources = OfferResources::new(&offer);
        let mut launches = Vec::new();
        while tasks.len() + launches.len() < options.tasks {
            let task = match CommandTask::shell("sleep", options.command.clone())
                .resources_text(&options.resources)
            {
                Ok(task) => task,
                Err(e) => {
                    tracing::error!(error = %e, "bad --resources");
                    break;
                }
            };
            match task.launch_on(&mut resources) {
                Ok(info) => launches.push(info),
                Err(_) => break,
            }
        }
        let mut operations_list = Vec::new();
        for info in launches {
            let id = info.task_id.value.clone();
            let record = TaskRecord {
                agent_id: info.agent_id.value.clone(),
                state: "LAUNCHING".into(),
                writer: options.id.clone(),
            };
            // Write-ahead: the intent is durable before the ACCEPT.
            term.store
                .put_json(&format!("{prefix}{id}"), &record, None)
                .await?;
            say(format!("LAUNCH {id}"));
            tasks.insert(id, record);
            operations_list.push(info);
        }
        let result = if operations_list.is_empty() {
            term.scheduler
                .decline(vec![offer.id.clone()], Some(Duration::from_secs(1)))
                .await
        } else {
            term.scheduler
                .accept(
                    vec![offer.id.clone()],
                    vec![operations::launch(operations_list)],
                    Some(Duration::from_secs(1)),
                )
                .await
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "answering an offer failed");
        }
    }
    Ok(())
}
