//! Throughput of the framework layer (task manager, placer, write-ahead store, default
//! controller) against the raw scheduler path of `local_throughput`, in the same run on the
//! same embedded cluster, and the memory and reload time of many tracked tasks.
//!
//! 1. `--tasks` (default 10,000) `true` tasks through the raw `Scheduler` (the baseline).
//! 2. The same number through `Framework` + `DefaultController` with the memory store: tasks/s
//!    and the ratio to the baseline (target >= 0.8).
//! 3. The same with etcd as the store (an `etcd` binary on the PATH is started on free
//!    loopback ports with a temporary data directory; skipped with a reason otherwise): ratio.
//! 4. `--track` (default 100,000) instances tracked by a `TaskManager` over the memory store:
//!    the process RSS they add (target < 200 MB); then the same records written to etcd and
//!    the time a restarted scheduler takes to load them.
//!
//! ```text
//! cargo run --release --features etcd --example controller_throughput -- --tasks 10000
//! ```

#[allow(dead_code)]
#[path = "local_throughput.rs"]
mod raw;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mesos_local::cluster::LocalCluster;
use mesos_local::master::MasterConfig;
use mesos_sdk::client::Client;
use mesos_sdk::framework::{DefaultController, Framework};
use mesos_sdk::resourcemgr::etiquette::EtiquetteConfig;
use mesos_sdk::scheduler::{FrameworkInfoBuilder, Scheduler};
use mesos_sdk::storage::{EtcdStore, MemoryStore, Namespace, Store};
use mesos_sdk::taskmgr::spec::{RestartPolicy, TaskSpec};
use mesos_sdk::taskmgr::{ReconcileConfig, TaskManager};

struct Args {
    tasks: usize,
    track: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        tasks: 10_000,
        track: 100_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number: usize = value
            .parse()
            .map_err(|_| format!("{flag}: not a number: {value}"))?;
        match flag.as_str() {
            "--tasks" => args.tasks = number,
            "--track" => args.track = number,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(args)
}

/// `count` `true` tasks through the framework layer over `store`; answers the wall time.
async fn through_controller(
    cluster: &LocalCluster,
    name: &str,
    store: Arc<dyn Store>,
    count: usize,
) -> Result<Duration, Box<dyn std::error::Error>> {
    let spec = TaskSpec::new("true")
        .instances(u32::try_from(count)?)
        .argv(["true"])
        .cpus(0.01)
        .mem(1.0)
        .restart(RestartPolicy::never());
    let start = Instant::now();
    let framework = Framework::builder(cluster.master_url(), name)
        .store(store)
        .tick(Duration::from_millis(20))
        .reconcile(ReconcileConfig {
            launch_timeout: Duration::from_secs(120),
            ..ReconcileConfig::default()
        })
        .etiquette(EtiquetteConfig {
            revive_burst: 100,
            revive_interval: Duration::from_millis(10),
            refuse: Duration::from_millis(50),
            ..EtiquetteConfig::default()
        })
        .task(spec)
        .start(DefaultController)
        .await?;
    let summary = framework.settled().await;
    let wall = start.elapsed();
    framework.teardown().await?;
    if summary.done != count {
        return Err(format!("{name}: {summary:?}").into());
    }
    Ok(wall)
}

/// An `etcd` on free loopback ports with a temporary data directory (killed on drop).
struct Etcd {
    child: Child,
    endpoint: String,
    _dir: tempfile::TempDir,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn start_etcd() -> Result<(Etcd, EtcdStore), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let (client, peer) = (free_port()?, free_port()?);
    let endpoint = format!("http://127.0.0.1:{client}");
    let child = Command::new(std::env::var("ETCD_BIN").unwrap_or_else(|_| "etcd".into()))
        .args(["--data-dir", &dir.path().to_string_lossy()])
        .args(["--listen-client-urls", &endpoint])
        .args(["--advertise-client-urls", &endpoint])
        .args(["--listen-peer-urls", &format!("http://127.0.0.1:{peer}")])
        .args([
            "--initial-advertise-peer-urls",
            &format!("http://127.0.0.1:{peer}"),
        ])
        .args([
            "--initial-cluster",
            &format!("default=http://127.0.0.1:{peer}"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let etcd = Etcd {
        child,
        endpoint,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(store) = EtcdStore::builder(vec![etcd.endpoint.clone()])
            .connect_timeout(Duration::from_millis(500))
            .request_timeout(Duration::from_secs(30))
            .connect()
            .await
            && store.get("/ready").await.is_ok()
        {
            return Ok((etcd, store));
        }
        if Instant::now() > deadline {
            return Err("etcd did not become ready".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn resident_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let master = MasterConfig {
        allocation_interval: Duration::from_millis(5),
        max_completed_tasks_per_framework: args.tasks + 1,
        ..MasterConfig::default()
    };
    let cluster = LocalCluster::builder()
        .master_config(master)
        .agents(2)
        .resources("cpus:8;mem:16384;disk:10000;ports:[31000-32000]")
        .start()
        .await?;

    // 1. The baseline: the raw scheduler path.
    let client = Client::builder().endpoint(cluster.master_url()).build()?;
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let info = FrameworkInfoBuilder::new(user, "raw-throughput").build();
    let (scheduler, mut events) = Scheduler::builder(client, info).start();
    let (_, raw_wall) = raw::run_tasks(&scheduler, &mut events, "raw", args.tasks).await?;
    scheduler.teardown().await?;
    scheduler.stop();
    let raw_rate = args.tasks as f64 / raw_wall.as_secs_f64();
    println!(
        "{} `true` tasks, raw Scheduler path (baseline): {raw_rate:.0} tasks/s in {:.2} s",
        args.tasks,
        raw_wall.as_secs_f64()
    );

    // 2. The framework layer over the memory store.
    let wall = through_controller(
        &cluster,
        "ctl-memory",
        Arc::new(MemoryStore::new()),
        args.tasks,
    )
    .await?;
    let rate = args.tasks as f64 / wall.as_secs_f64();
    println!(
        "  Framework + DefaultController, memory store: {rate:.0} tasks/s in {:.2} s; ratio {:.2} (target >= 0.8: {})",
        wall.as_secs_f64(),
        rate / raw_rate,
        if rate / raw_rate >= 0.8 {
            "met"
        } else {
            "MISSED"
        }
    );

    // 3. With etcd.
    let etcd = match start_etcd().await {
        Ok(etcd) => Some(etcd),
        Err(error) => {
            println!("  etcd: skipped ({error})");
            None
        }
    };
    if let Some((_, store)) = &etcd {
        let wall =
            through_controller(&cluster, "ctl-etcd", Arc::new(store.clone()), args.tasks).await?;
        let rate = args.tasks as f64 / wall.as_secs_f64();
        println!(
            "  Framework + DefaultController, etcd store: {rate:.0} tasks/s in {:.2} s; ratio {:.2}",
            wall.as_secs_f64(),
            rate / raw_rate
        );
    }
    cluster.shutdown().await;

    // 4. Many tracked tasks.
    if args.track > 0 {
        let before = resident_mib();
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let namespace = Namespace::new("tracked")?;
        let tasks = TaskManager::load(store, namespace.clone()).await?;
        tasks
            .add(
                TaskSpec::new("tracked")
                    .instances(u32::try_from(args.track)?)
                    .shell("true")
                    .cpus(0.01)
                    .mem(1.0),
            )
            .await?;
        let after = resident_mib();
        if let (Some(before), Some(after)) = (before, after) {
            println!(
                "{} tracked instances (records in the manager and the memory store): RSS +{:.1} MiB ({before:.1} -> {after:.1}; target < 200 MB)",
                args.track,
                after - before
            );
        }
        drop(tasks);
        if let Some((_, store)) = &etcd {
            let store: Arc<dyn Store> = Arc::new(store.clone());
            let start = Instant::now();
            let tasks = TaskManager::load(store.clone(), namespace.clone()).await?;
            tasks
                .add(
                    TaskSpec::new("tracked")
                        .instances(u32::try_from(args.track)?)
                        .shell("true")
                        .cpus(0.01)
                        .mem(1.0),
                )
                .await?;
            let written = start.elapsed();
            drop(tasks);
            let start = Instant::now();
            let reloaded = TaskManager::load(store, namespace).await?;
            let loaded = reloaded.tasks().await.len();
            println!(
                "  the same {} records written to etcd in {:.2} s; reloaded by a restarted scheduler in {:.2} s ({loaded} records)",
                args.track,
                written.as_secs_f64(),
                start.elapsed().as_secs_f64()
            );
        }
    }
    drop(etcd);
    Ok(())
}
