//! A highly available framework on the controller: [`Framework::run_ha`] runs the task
//! manager and the default controller for every leadership term, so a standby that takes over
//! reconciles the tasks its predecessor launched instead of launching them again.
//!
//! With no arguments it runs on an embedded mesos-local cluster with a memory store and two
//! instances in this process: `a` leads and starts `--tasks` long-running tasks, then stops
//! (as a process shutting down); `b` takes over. It prints how long the takeover took and
//! whether the task ids are unchanged, and exits 1 if any task was launched again.
//!
//! With `--etcd URL` (feature `etcd`) it is one instance of a real deployment: run two or
//! three of these against one master and one etcd; the leader keeps the tasks alive:
//!
//! ```text
//! cargo run --example ha_controller --features etcd -- --master http://127.0.0.1:5050 \
//!     --etcd http://127.0.0.1:2379 --id a
//! ```
//!
//! Options (all `--name value`): `master`, `etcd` (comma-separated), `id` (default `a`),
//! `tasks` (default 3), `ttl-ms` (the election's TTL; default the SDK's). Each term prints
//! `LEADING <id>` on stdout (the process test reads it).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mesos_local::cluster::LocalCluster;
use mesos_sdk::client::Client;
use mesos_sdk::framework::{DefaultController, Framework, FrameworkBuilder};
use mesos_sdk::ha::{AfterTerm, ElectionConfig, HaConfig, HaRunner};
use mesos_sdk::scheduler::{AckMode, FrameworkInfoBuilder};
use mesos_sdk::storage::{MemoryStore, Namespace, Store};
use mesos_sdk::taskmgr::TaskRecord;
use mesos_sdk::taskmgr::spec::TaskSpec;

/// The framework's name (and store namespace).
const NAME: &str = "ha-controller";

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The value of `--name`, if given.
fn option(name: &str) -> Option<String> {
    let flag = format!("--{name}");
    std::env::args().skip_while(|a| *a != flag).nth(1)
}

/// A runner for instance `id` on `store` (ack mode explicit, as the framework needs).
fn runner<S: Store + Clone + 'static>(
    store: S,
    master: &str,
    id: &str,
    ttl: Duration,
) -> Result<HaRunner<S>, BoxError> {
    let ns = Namespace::new(NAME)?;
    let election = ElectionConfig::with_ttl(ns.key("leader"), id, format!("http://{id}"), ttl);
    let mut config = HaConfig::new(election, &ns);
    config.after_term = AfterTerm::Campaign;
    let client = Client::builder().endpoint(master).build()?;
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let framework = FrameworkInfoBuilder::new(user, NAME)
        .failover_timeout(Duration::from_secs(7 * 24 * 3600))
        .build();
    Ok(HaRunner::new(store, config, client, framework)?
        .configure_scheduler(|s| s.ack_mode(AckMode::Explicit)))
}

/// One term's framework: `tasks` long-running `sleep` instances.
fn term(master: &str, tasks: u32) -> (FrameworkBuilder, DefaultController) {
    let spec = TaskSpec::new("sleeper")
        .instances(tasks)
        .shell("sleep 3600")
        .cpus(0.1)
        .mem(32.0);
    let builder = Framework::builder(master, NAME)
        .task(spec)
        .tick(Duration::from_millis(100));
    (builder, DefaultController)
}

/// The running task ids the store's records name.
async fn running_ids(store: &impl Store) -> Result<BTreeSet<String>, BoxError> {
    let ns = Namespace::new(NAME)?;
    let page = store.range(&ns.key("tasks/"), Default::default()).await?;
    let mut ids = BTreeSet::new();
    for kv in page.kvs {
        let record: TaskRecord = serde_json::from_slice(&kv.value)?;
        if record.state.as_deref() == Some("TASK_RUNNING") {
            ids.extend(record.task_id);
        }
    }
    Ok(ids)
}

/// Polls `running_ids` until `n` tasks run (for at most a minute).
async fn until_running(store: &impl Store, n: usize) -> Result<BTreeSet<String>, BoxError> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ids = running_ids(store).await?;
        if ids.len() == n {
            return Ok(ids);
        }
        if Instant::now() > deadline {
            return Err(format!("{} of {n} tasks running after a minute", ids.len()).into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let tasks: u32 = option("tasks").map(|t| t.parse()).transpose()?.unwrap_or(3);
    if let Some(etcd) = option("etcd") {
        return deployed(&etcd, tasks).await;
    }
    let cluster = match option("master") {
        Some(_) => None,
        None => Some(LocalCluster::builder().agents(2).start().await?),
    };
    let master = option("master")
        .or(cluster.as_ref().map(LocalCluster::master_url))
        .unwrap_or_default();
    let store = MemoryStore::new();
    let ttl = Duration::from_secs(2);

    let a = runner(store.clone(), &master, "a", ttl)?;
    let url = master.clone();
    let leader = tokio::spawn(async move { Framework::run_ha(&a, || term(&url, tasks)).await });
    let before = until_running(&store, tasks as usize).await?;
    println!("ha_controller: a leads, {} tasks running", before.len());

    let b = Arc::new(runner(store.clone(), &master, "b", ttl)?);
    let standby = {
        let (b, url) = (b.clone(), master.clone());
        tokio::spawn(async move { Framework::run_ha(&b, || term(&url, tasks)).await })
    };
    let stopped = Instant::now();
    leader.abort();
    while b.leader().await?.map(|l| l.id).as_deref() != Some("b") {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took_over = stopped.elapsed();
    // Give b's term time to subscribe, reconcile and see offers.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = until_running(&store, tasks as usize).await?;
    println!(
        "ha_controller: b leads {} ms after a stopped; task ids {}",
        took_over.as_millis(),
        if after == before {
            "unchanged"
        } else {
            "CHANGED"
        }
    );
    standby.abort();
    if let Some(cluster) = cluster {
        cluster.shutdown().await;
    }
    (after == before)
        .then_some(())
        .ok_or_else(|| "the standby launched tasks again".into())
}

/// One instance of a deployment on etcd; runs until killed.
#[cfg(feature = "etcd")]
async fn deployed(etcd: &str, tasks: u32) -> Result<(), BoxError> {
    let master = option("master").ok_or("--master URL is needed with --etcd")?;
    let id = option("id").unwrap_or_else(|| "a".into());
    let store = mesos_sdk::storage::EtcdStore::builder(etcd.split(','))
        .connect()
        .await?;
    let ttl = match option("ttl-ms") {
        Some(ms) => Duration::from_millis(ms.parse()?),
        None => mesos_sdk::ha::DEFAULT_TTL,
    };
    let runner = runner(store, &master, &id, ttl)?;
    let end = Framework::run_ha(&runner, || {
        println!("LEADING {id}");
        term(&master, tasks)
    })
    .await?;
    println!("ha_controller: {end:?}");
    Ok(())
}

/// Without the feature `etcd` there is no etcd store.
#[cfg(not(feature = "etcd"))]
async fn deployed(_etcd: &str, _tasks: u32) -> Result<(), BoxError> {
    Err("--etcd needs the feature `etcd`".into())
}
