//! The shortest honest Mesos framework: starts a local cluster (one master, two agents), runs one
//! `echo hello` command task through the SDK's scheduler runtime, waits for TASK_FINISHED and
//! stops.
//!
//! Run with `cargo run --example local_hello`.

use std::time::Duration;

use futures::StreamExt;
use mesos_local::cluster::LocalCluster;
use mesos_sdk::client::Client;
use mesos_sdk::resourcemgr::{CommandTask, OfferResources};
use mesos_sdk::scheduler::{FrameworkInfoBuilder, Scheduler, SchedulerEvent};
use mesos_sdk::v1::TaskState;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cluster = LocalCluster::builder().agents(2).start().await?;
    let client = Client::builder().endpoint(cluster.master_url()).build()?;
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let framework = FrameworkInfoBuilder::new(user, "hello").build();
    let (scheduler, mut events) = Scheduler::builder(client, framework).start();

    let mut task =
        Some(CommandTask::shell("hello", "echo hello").resources_text("cpus:0.1;mem:32")?);
    let mut outcome = None;
    while let Some(event) = events.next().await {
        match event {
            SchedulerEvent::Offers(offers) => {
                let mut unused = Vec::new();
                for offer in offers {
                    match task.take() {
                        Some(hello) => {
                            let info = hello.launch_on(&mut OfferResources::new(&offer))?;
                            scheduler.launch(vec![offer.id], vec![info]).await?;
                        }
                        None => unused.push(offer.id),
                    }
                }
                if !unused.is_empty() {
                    scheduler
                        .decline(unused, Some(Duration::from_secs(60)))
                        .await?;
                }
            }
            SchedulerEvent::Update { status, .. } => {
                println!("task {} is {:?}", status.task_id.value, status.state());
                if status.state().is_terminal() {
                    outcome = Some(status.state());
                    break;
                }
            }
            SchedulerEvent::Terminated(why) => return Err(why.into()),
            _ => {}
        }
    }
    scheduler.teardown().await?;
    cluster.shutdown().await;
    match outcome {
        Some(TaskState::TaskFinished) => Ok(()),
        other => Err(format!("the task ended as {other:?}").into()),
    }
}
