//! Acknowledgement modes of the scheduler runtime against mesos-local (a real master and agent
//! over HTTP on loopback, real task processes): in explicit mode an update left unacknowledged
//! is resent by the agent and acknowledging its token stops the resends; in automatic mode
//! updates carry no token and tasks run to completion without resends.

use std::time::Duration;

use futures::StreamExt;
use mesos_local::cluster::LocalCluster;
use mesos_sdk::client::Client;
use mesos_sdk::scheduler::calls::operations;
use mesos_sdk::scheduler::{
    AckMode, AckToken, FrameworkInfoBuilder, Scheduler, SchedulerEvent, SchedulerEvents,
};
use mesos_sdk::v1::{CommandInfo, Offer, Resource, TaskId, TaskInfo, TaskState, TaskStatus, value};
use tokio::time::timeout;

/// How long a test waits for any one event.
const WAIT: Duration = Duration::from_secs(30);
/// The agent's retry interval for unacknowledged updates (first, and longest).
const RETRY: (Duration, Duration) = (Duration::from_millis(100), Duration::from_millis(200));

async fn cluster() -> LocalCluster {
    LocalCluster::builder()
        .agents(1)
        .resources("cpus:2;mem:1024;disk:1024")
        .heartbeat_interval(Duration::from_millis(300))
        .allocation_interval(Duration::from_millis(20))
        .status_update_retry(RETRY.0, RETRY.1)
        .executor_shutdown_grace_period(Duration::from_millis(500))
        .start()
        .await
        .expect("local cluster starts")
}

fn start_scheduler(cluster: &LocalCluster, mode: AckMode) -> (Scheduler, SchedulerEvents) {
    let client = Client::builder()
        .endpoint(cluster.master_url())
        .build()
        .expect("client builds");
    let user = std::env::var("USER").unwrap_or_else(|_| "root".to_string());
    let framework = FrameworkInfoBuilder::new(user, "acks").build();
    Scheduler::builder(client, framework)
        .ack_mode(mode)
        .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200))
        .start()
}

async fn next_event(events: &mut SchedulerEvents) -> SchedulerEvent {
    timeout(WAIT, events.next())
        .await
        .expect("an event arrives in time")
        .expect("the event stream is open")
}

async fn next_offer(events: &mut SchedulerEvents) -> Offer {
    loop {
        if let SchedulerEvent::Offers(offers) = next_event(events).await
            && let Some(offer) = offers.into_iter().next()
        {
            return offer;
        }
    }
}

async fn next_update(events: &mut SchedulerEvents) -> (TaskStatus, Option<AckToken>) {
    loop {
        if let SchedulerEvent::Update { status, ack } = next_event(events).await {
            return (*status, ack);
        }
    }
}

/// A scalar resource taken from `offer` (carrying its allocation).
fn scalar(offer: &Offer, name: &str, amount: f64) -> Resource {
    Resource {
        name: name.to_string(),
        r#type: value::Type::Scalar as i32,
        scalar: Some(value::Scalar { value: amount }),
        allocation_info: offer.allocation_info.clone(),
        ..Default::default()
    }
}

async fn launch(scheduler: &Scheduler, offer: &Offer, id: &str, command: &str) {
    let task = TaskInfo {
        name: id.to_string(),
        task_id: TaskId {
            value: id.to_string(),
        },
        agent_id: offer.agent_id.clone(),
        resources: vec![scalar(offer, "cpus", 0.1), scalar(offer, "mem", 32.0)],
        command: Some(CommandInfo {
            value: Some(command.to_string()),
            ..Default::default()
        }),
        ..Default::default()
    };
    scheduler
        .accept(
            vec![offer.id.clone()],
            vec![operations::launch(vec![task])],
            None,
        )
        .await
        .expect("accept is taken");
}

/// Updates that arrive within many retry intervals; none is expected.
async fn resent_within_quiet_period(events: &mut SchedulerEvents) -> Vec<TaskStatus> {
    let mut resent = Vec::new();
    let _ = timeout(RETRY.1 * 8, async {
        loop {
            resent.push(next_update(events).await.0);
        }
    })
    .await;
    resent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explicit_mode_updates_are_resent_until_their_token_is_acknowledged() {
    let cluster = cluster().await;
    let (scheduler, mut events) = start_scheduler(&cluster, AckMode::Explicit);
    let offer = next_offer(&mut events).await;
    launch(&scheduler, &offer, "sleeper", "sleep 60").await;

    // The first update, left unacknowledged (as if persisting it had failed): the agent sends
    // it again, with the same uuid and a token of its own.
    let (first, token) = next_update(&mut events).await;
    assert_eq!(first.task_id.value, "sleeper");
    let first_token = token.expect("an agent's update carries a token in explicit mode");
    assert_eq!(Some(first_token.uuid()), first.uuid.as_ref());
    drop(first_token);
    let (again, token) = next_update(&mut events).await;
    assert_eq!(again.task_id.value, "sleeper");
    assert_eq!(again.state(), first.state());
    assert_eq!(
        again.uuid, first.uuid,
        "the unacknowledged update is resent"
    );

    // Acknowledged at last: the agent moves on to the task's next update.
    scheduler
        .acknowledge(token.expect("the resent update carries a token"))
        .await
        .expect("ACKNOWLEDGE is taken");
    let mut latest = again;
    while latest.state() != TaskState::TaskRunning {
        let (status, token) = next_update(&mut events).await;
        if status.uuid == latest.uuid {
            continue; // a resend that crossed the acknowledgement
        }
        scheduler
            .acknowledge(token.expect("a token"))
            .await
            .expect("ACKNOWLEDGE is taken");
        latest = status;
    }
    let resent = resent_within_quiet_period(&mut events).await;
    assert!(
        resent.is_empty(),
        "acknowledged updates were resent: {resent:?}"
    );

    scheduler
        .kill(latest.task_id.clone(), latest.agent_id.clone(), None)
        .await
        .expect("KILL is taken");
    loop {
        let (status, token) = next_update(&mut events).await;
        if let Some(token) = token {
            scheduler.acknowledge(token).await.expect("ACKNOWLEDGE");
        }
        if status.state() == TaskState::TaskKilled {
            break;
        }
    }
    scheduler.stop();
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn automatic_mode_acknowledges_every_update_itself() {
    let cluster = cluster().await;
    let (scheduler, mut events) = start_scheduler(&cluster, AckMode::Automatic);
    let offer = next_offer(&mut events).await;
    launch(&scheduler, &offer, "quick", "true").await;
    // The agent forwards a task's next update only after the previous one was acknowledged:
    // reaching TASK_FINISHED shows every earlier update was.
    let mut seen = Vec::new();
    loop {
        let (status, token) = next_update(&mut events).await;
        assert!(token.is_none(), "no token in automatic mode");
        assert!(status.uuid.is_some(), "an agent's update carries a uuid");
        let finished = status.state() == TaskState::TaskFinished;
        seen.push(status);
        if finished {
            break;
        }
    }
    let resent = resent_within_quiet_period(&mut events).await;
    assert!(
        resent.is_empty(),
        "acknowledged updates were resent: {resent:?} after {seen:?}"
    );
    scheduler.stop();
    cluster.shutdown().await;
}
