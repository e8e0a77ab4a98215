//! A framework in 30 lines: N `echo` command tasks through the task manager and the default
//! controller, on an embedded mesos-local cluster (or `--master URL`); exits 0 when all
//! finished and prints a one-line summary. Run with `cargo run --example hello [-- --master URL]`.

use mesos_local::cluster::LocalCluster;
use mesos_sdk::framework::{DefaultController, Framework};
use mesos_sdk::taskmgr::spec::TaskSpec;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let master = args
        .iter()
        .position(|a| a == "--master")
        .and_then(|i| args.get(i + 1));
    let cluster = match master {
        Some(_) => None,
        None => Some(LocalCluster::builder().agents(2).start().await?),
    };
    let url = master
        .cloned()
        .or(cluster.as_ref().map(|c| c.master_url()))
        .unwrap_or_default();
    let hello = TaskSpec::new("hello")
        .instances(5)
        .shell("echo hello from $MESOS_TASK_ID");
    let framework = Framework::builder(url, "hello")
        .task(hello.cpus(0.1).mem(32.0))
        .start(DefaultController)
        .await?;
    let summary = framework.settled().await;
    framework.teardown().await?;
    let finished = framework.tasks().by_state("TASK_FINISHED").await.len();
    println!(
        "hello: {finished} of 5 tasks finished, {} given up",
        summary.given_up
    );
    if let Some(cluster) = cluster {
        cluster.shutdown().await;
    }
    if finished == 5 {
        Ok(())
    } else {
        Err("not every task finished".into())
    }
}
