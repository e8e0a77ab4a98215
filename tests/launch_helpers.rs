//! The resource helpers on a real (embedded) master: a framework built with the default
//! `FrameworkInfoBuilder` (MULTI_ROLE on, so every offered resource carries `allocation_info`)
//! launches tasks sized with the string helper and the builder, and a task that does not fit is
//! refused with a readable shortfall instead of being declined in silence.

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use mesos_local::cluster::LocalCluster;
use mesos_sdk::client::Client;
use mesos_sdk::resourcemgr::{CommandTask, OfferResources, Resources, offered_for_role};
use mesos_sdk::scheduler::{FrameworkInfoBuilder, Scheduler, SchedulerEvent, SchedulerEvents};
use mesos_sdk::v1::{Offer, TaskState};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(30);

fn user() -> String {
    std::env::var("USER").unwrap_or_else(|_| "root".to_string())
}

async fn next_offers(events: &mut SchedulerEvents) -> Vec<Offer> {
    loop {
        let event = timeout(WAIT, events.next())
            .await
            .expect("an event in time");
        match event.expect("the stream is open") {
            SchedulerEvent::Offers(offers) => return offers,
            SchedulerEvent::Terminated(why) => panic!("terminated: {why}"),
            _ => {}
        }
    }
}

/// Waits until every task in `ids` has reached a terminal state and returns those states in
/// the order of `ids` (updates may arrive in any order).
async fn final_states(events: &mut SchedulerEvents, ids: &[&str]) -> Vec<TaskState> {
    let mut states: HashMap<String, TaskState> = HashMap::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while states.len() < ids.len() {
        let event = tokio::time::timeout_at(deadline, events.next())
            .await
            .expect("every task ends in time");
        match event.expect("the stream is open") {
            SchedulerEvent::Update { status, .. }
                if ids.contains(&status.task_id.value.as_str()) && status.state().is_terminal() =>
            {
                states.insert(status.task_id.value.clone(), status.state());
            }
            SchedulerEvent::Terminated(why) => panic!("terminated: {why}"),
            _ => {}
        }
    }
    ids.iter().map(|id| states[*id]).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_default_framework_launches_tasks_sized_with_the_helpers() {
    let cluster = LocalCluster::builder()
        .agents(1)
        .resources("cpus:2;mem:256;ports:[31000-31009]")
        .allocation_interval(Duration::from_millis(20))
        .start()
        .await
        .unwrap();
    let client = Client::builder()
        .endpoint(cluster.master_url())
        .build()
        .unwrap();
    let framework = FrameworkInfoBuilder::new(user(), "helpers")
        .roles(["web"])
        .build();
    let (scheduler, mut events) = Scheduler::builder(client, framework).start();

    let offers = next_offers(&mut events).await;
    let offer = &offers[0];
    assert!(
        offer.resources.iter().all(|r| r.allocation_info.is_some()),
        "a MULTI_ROLE framework's offers carry allocation_info"
    );
    assert_eq!(
        offered_for_role(offer, "web").to_string(),
        "cpus:2;mem:256;ports:[31000-31009]"
    );

    // A request too big for the offer is refused with what is missing, before any call.
    let mut room = OfferResources::new(offer);
    let too_big = CommandTask::shell("big", "true")
        .resources_text("cpus:4;mem:32")
        .unwrap()
        .launch_on(&mut room)
        .unwrap_err();
    assert_eq!(
        too_big.to_string(),
        "cpus: wants 4, offer has 2 for role 'web'"
    );

    // Two tasks from one offer: one sized from text, one from builder calls plus two ports.
    let from_text = CommandTask::shell("text", "echo text")
        .resources_text("cpus:0.1;mem:32")
        .unwrap()
        .launch_on(&mut room)
        .unwrap();
    let from_builder = CommandTask::argv(
        "built",
        "/bin/sh",
        [
            "sh",
            "-c",
            "test \"$PORTS\" = 31000,31001 && test \"$PORT1\" = 31001",
        ],
    )
    .resources(Resources::builder().cpus(0.2).mem(16.0))
    .ports(2)
    .launch_on(&mut room)
    .unwrap();
    assert_eq!(room.summary().ranges("ports"), vec![(31002, 31009)]);
    assert!(
        from_text
            .resources
            .iter()
            .chain(&from_builder.resources)
            .all(|r| r.allocation_info.as_ref().and_then(|a| a.role.as_deref()) == Some("web"))
    );
    let text_id = from_text.task_id.value.clone();
    let built_id = from_builder.task_id.value.clone();
    scheduler
        .launch(vec![offer.id.clone()], vec![from_text, from_builder])
        .await
        .unwrap();
    assert_eq!(
        final_states(&mut events, &[&text_id, &built_id]).await,
        vec![TaskState::TaskFinished, TaskState::TaskFinished]
    );
    scheduler.teardown().await.unwrap();
    cluster.shutdown().await;
}
