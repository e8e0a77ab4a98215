//! Throughput and memory of the embedded cluster, driven through the SDK scheduler.
//!
//! Launches `--tasks` (default 1,000) `true` command tasks through [`mesos_sdk::scheduler`] on a
//! `mesos_local` cluster and prints tasks/s and the p50/p99 launch-to-finish latency,
//! beside the bare fork+exec+wait rate of `true` measured in the same run (sequentially and with
//! one spawner per core), which is the ceiling. Then it runs `--history` (default 10,000) more
//! tasks and prints the resident memory the process gained while the master holds them all in its
//! completed-task history.
//!
//! ```text
//! cargo run --release --example local_throughput -- --tasks 1000 --history 10000
//! ```
//!
//! Target (issue #3): at least 500 tasks/s on 2 cores.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use mesos_local::cluster::LocalCluster;
use mesos_local::master::MasterConfig;
use mesos_sdk::client::Client;
use mesos_sdk::resourcemgr::{CommandTask, OfferResources, Resources};
use mesos_sdk::scheduler::{FrameworkInfoBuilder, Scheduler, SchedulerEvent, SchedulerEvents};
use mesos_sdk::v1::TaskState;

const TASK_CPUS: f64 = 0.01;
const TASK_MEM: f64 = 1.0;

struct Args {
    tasks: usize,
    history: usize,
    agents: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        tasks: 1000,
        history: 10_000,
        agents: 2,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number: usize = value
            .parse()
            .map_err(|_| format!("{flag}: not a number: {value}"))?;
        match flag.as_str() {
            "--tasks" => args.tasks = number,
            "--history" => args.history = number,
            "--agents" => args.agents = number.max(1),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(args)
}

/// Runs `count` `true` tasks and returns each task's launch-to-finish latency and the wall time.
pub async fn run_tasks(
    scheduler: &Scheduler,
    events: &mut SchedulerEvents,
    prefix: &str,
    count: usize,
) -> Result<(Vec<Duration>, Duration), String> {
    let start = Instant::now();
    let mut next = 0usize;
    let mut launched: HashMap<String, Instant> = HashMap::new();
    let mut latencies = Vec::with_capacity(count);
    let request = Resources::builder().cpus(TASK_CPUS).mem(TASK_MEM).build();
    while latencies.len() < count {
        let event = tokio::time::timeout(Duration::from_secs(60), events.next())
            .await
            .map_err(|_| format!("no event for 60 s ({} of {count} done)", latencies.len()))?
            .ok_or("the scheduler stopped")?;
        match event {
            SchedulerEvent::Offers(offers) => {
                for offer in offers {
                    // Size as many tasks as the offer has room for, with the SDK's helpers: the
                    // resources keep the offer's allocation_info (MULTI_ROLE) by construction.
                    let mut room = OfferResources::new(&offer);
                    let mut tasks = Vec::new();
                    while next + tasks.len() < count {
                        let i = next + tasks.len();
                        let task = CommandTask::argv(format!("{prefix}-{i}"), "true", ["true"])
                            .id(format!("{prefix}-{i}"))
                            .resources(request.clone());
                        match task.launch_on(&mut room) {
                            Ok(info) => tasks.push(info),
                            Err(_) => break,
                        }
                    }
                    if tasks.is_empty() {
                        scheduler
                            .decline(vec![offer.id.clone()], Some(Duration::from_millis(50)))
                            .await
                            .map_err(|e| e.to_string())?;
                        continue;
                    }
                    let now = Instant::now();
                    for task in &tasks {
                        launched.insert(task.task_id.value.clone(), now);
                    }
                    next += tasks.len();
                    scheduler
                        .launch(vec![offer.id.clone()], tasks)
                        .await
                        .map_err(|e| e.to_string())?;
                }
            }
            SchedulerEvent::Update { status, .. } => match status.state() {
                TaskState::TaskFinished => {
                    if let Some(at) = launched.remove(&status.task_id.value) {
                        latencies.push(at.elapsed());
                    }
                }
                TaskState::TaskFailed
                | TaskState::TaskError
                | TaskState::TaskLost
                | TaskState::TaskDropped => {
                    return Err(format!(
                        "task {} ended {:?}: {}",
                        status.task_id.value,
                        status.state(),
                        status.message()
                    ));
                }
                _ => {}
            },
            _ => {}
        }
    }
    Ok((latencies, start.elapsed()))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// Sequential fork+exec+wait of `true`, then one spawner per core: the ceiling for command tasks.
async fn bare_spawn_rate(count: usize) -> Result<(f64, f64), String> {
    let start = Instant::now();
    for _ in 0..count {
        std::process::Command::new("true")
            .status()
            .map_err(|e| format!("spawning true: {e}"))?;
    }
    let sequential = count as f64 / start.elapsed().as_secs_f64();

    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let start = Instant::now();
    let mut workers = Vec::new();
    for w in 0..cores {
        let share = count / cores + usize::from(w < count % cores);
        workers.push(tokio::spawn(async move {
            for _ in 0..share {
                tokio::process::Command::new("true").status().await?;
            }
            Ok::<(), std::io::Error>(())
        }));
    }
    for worker in workers {
        worker
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("spawning true: {e}"))?;
    }
    let parallel = count as f64 / start.elapsed().as_secs_f64();
    Ok((sequential, parallel))
}

fn resident_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let (sequential, parallel) = bare_spawn_rate(args.tasks).await?;
    let ceiling = sequential.max(parallel);

    let master = MasterConfig {
        allocation_interval: Duration::from_millis(5),
        max_completed_tasks_per_framework: args.tasks + args.history + 1,
        ..MasterConfig::default()
    };
    let cluster = LocalCluster::builder()
        .master_config(master)
        .agents(args.agents)
        .resources("cpus:8;mem:16384;disk:10000;ports:[31000-32000]")
        .start()
        .await?;
    let client = Client::builder().endpoint(cluster.master_url()).build()?;
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let framework = FrameworkInfoBuilder::new(user, "local-throughput")
        .roles(["bench"])
        .build();
    let (scheduler, mut events) = Scheduler::builder(client, framework).start();

    let (mut latencies, wall) = run_tasks(&scheduler, &mut events, "t", args.tasks).await?;
    latencies.sort();
    let rate = args.tasks as f64 / wall.as_secs_f64();
    println!(
        "bare fork+exec+wait of `true`: {sequential:.0}/s sequential, {parallel:.0}/s with one spawner per core"
    );
    println!(
        "{} `true` tasks through the SDK scheduler on mesos-local ({} agents): {:.0} tasks/s in {:.2} s",
        args.tasks,
        args.agents,
        rate,
        wall.as_secs_f64()
    );
    println!(
        "  ratio to the bare spawn ceiling: {:.2}; target >= 500 tasks/s: {}",
        rate / ceiling,
        if rate >= 500.0 { "met" } else { "MISSED" }
    );
    println!(
        "  launch-to-finish latency: p50 {:.1} ms, p99 {:.1} ms",
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3
    );

    if args.history > 0 {
        let before = resident_kib();
        let (_, wall) = run_tasks(&scheduler, &mut events, "h", args.history).await?;
        let after = resident_kib();
        println!(
            "{} more tasks in {:.1} s; the master now keeps {} finished tasks in its history",
            args.history,
            wall.as_secs_f64(),
            args.tasks + args.history
        );
        if let (Some(before), Some(after)) = (before, after) {
            let grown = after.saturating_sub(before);
            println!(
                "  process RSS: {:.1} MiB before, {:.1} MiB after ({:.0} bytes per finished task)",
                before as f64 / 1024.0,
                after as f64 / 1024.0,
                grown as f64 * 1024.0 / args.history as f64
            );
        }
    }
    scheduler.stop();
    cluster.shutdown().await;
    Ok(())
}
