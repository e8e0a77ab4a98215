//! A framework in 30 lines: N `echo` command tasks through the task manager and the default
//! controller, on an embedded mesos-local cluster (or `--master URL`); exits 0 when all
//! finished and prints a one-line summary. Run with `cargo run --example hello [-- --master URL]`.

use mesos_local::cluster::LocalCluster;
use mesos_sdk::framework::{DefaultController, Framework};
use mesos_sdk::taskmgr::spec::TaskSpec;

const TASKS: u32 = 5;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let master = std::env::args().skip_while(|a| a != "--master").nth(1);
    let cluster = match master {
        Some(_) => None,
        None => Some(LocalCluster::builder().agents(2).start().await?),
    };
    let url = master.or(cluster.as_ref().map(LocalCluster::master_url));
    let hello = TaskSpec::new("hello").instances(TASKS).shell("echo hi");
    let framework = Framework::builder(url.unwrap_or_default(), "hello")
        .task(hello.cpus(0.1).mem(32.0))
        .start(DefaultController)
        .await?;
    let summary = framework.settled().await;
    framework.teardown().await?;
    let finished = framework.tasks().by_state("TASK_FINISHED").await.len();
    println!(
        "hello: {finished} of {TASKS} finished, {} given up",
        summary.given_up
    );
    let all = finished == TASKS as usize;
    all.then_some(())
        .ok_or_else(|| "not every task finished".into())
}
