//! Starts a local cluster (one master, two agents), subscribes a framework with the SDK's HTTP
//! client in protobuf, runs one `echo hello` command task to completion (acknowledging each
//! update), tears the framework down and stops the cluster.
//!
//! Run with `cargo run --example local_hello`.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use mesos_local::cluster::LocalCluster;
use mesos_sdk::client::{CallRequest, Client};
use mesos_sdk::codec::Format;
use mesos_sdk::v1::scheduler::{Call, Event, call, event};
use mesos_sdk::v1::{
    CommandInfo, FrameworkId, FrameworkInfo, Offer, TaskId, TaskInfo, TaskState, offer,
};
use prost::Message;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn request(call: &Call, stream_id: Option<&str>) -> CallRequest {
    CallRequest {
        path: "/api/v1/scheduler".into(),
        body: Bytes::from(call.encode_to_vec()),
        stream_id: stream_id.map(str::to_string),
    }
}

fn launch(framework_id: &FrameworkId, offer: &Offer) -> Call {
    let task = TaskInfo {
        name: "hello".into(),
        task_id: TaskId {
            value: "hello-1".into(),
        },
        agent_id: offer.agent_id.clone(),
        resources: mesos_sdk::resourcemgr::parse_resources("cpus:0.1;mem:32").unwrap_or_default(),
        command: Some(CommandInfo {
            value: Some("echo hello".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    Call {
        framework_id: Some(framework_id.clone()),
        r#type: Some(call::Type::Accept as i32),
        accept: Some(call::Accept {
            offer_ids: vec![offer.id.clone()],
            operations: vec![offer::Operation {
                r#type: Some(offer::operation::Type::Launch as i32),
                launch: Some(offer::operation::Launch {
                    task_infos: vec![task],
                }),
                ..Default::default()
            }],
            filters: None,
        }),
        ..Default::default()
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let cluster = LocalCluster::builder()
        .agents(2)
        .heartbeat_interval(Duration::from_secs(5))
        .allocation_interval(Duration::from_millis(100))
        .start()
        .await?;
    println!("master at {}", cluster.master_url());
    for agent in cluster.agents() {
        println!("agent {} at {}", agent.id().value, agent.url());
    }

    let client = Client::builder()
        .endpoint(cluster.master_url())
        .format(Format::Protobuf)
        .build()?;
    let subscribe = Call {
        r#type: Some(call::Type::Subscribe as i32),
        subscribe: Some(call::Subscribe {
            framework_info: FrameworkInfo {
                user: "nobody".into(),
                name: "local-hello".into(),
                ..Default::default()
            },
            ..Default::default()
        }),
        ..Default::default()
    };
    let subscription = client.subscribe(request(&subscribe, None)).await?;
    let stream_id = subscription.stream_id.clone();
    let mut events = subscription.into_events::<Event>();
    let mut framework_id = None;
    let mut launched = false;
    while let Some(event) = events.next().await {
        let event = event?;
        match event.r#type.and_then(|t| event::Type::try_from(t).ok()) {
            Some(event::Type::Subscribed) => {
                let id = event.subscribed.map(|s| s.framework_id).unwrap_or_default();
                println!("subscribed as {}", id.value);
                framework_id = Some(id);
            }
            Some(event::Type::Offers) if !launched => {
                let (Some(id), Some(offer)) = (
                    framework_id.as_ref(),
                    event.offers.and_then(|o| o.offers.into_iter().next()),
                ) else {
                    continue;
                };
                println!("launching on agent {}", offer.agent_id.value);
                client
                    .call(request(&launch(id, &offer), stream_id.as_deref()))
                    .await?;
                launched = true;
            }
            Some(event::Type::Update) => {
                let Some(status) = event.update.map(|u| u.status) else {
                    continue;
                };
                let state = TaskState::try_from(status.state).unwrap_or(TaskState::TaskUnknown);
                println!("task {} is {}", status.task_id.value, state.as_str_name());
                if let (Some(uuid), Some(agent_id), Some(id)) = (
                    status.uuid.clone(),
                    status.agent_id.clone(),
                    framework_id.as_ref(),
                ) {
                    let ack = Call {
                        framework_id: Some(id.clone()),
                        r#type: Some(call::Type::Acknowledge as i32),
                        acknowledge: Some(call::Acknowledge {
                            agent_id,
                            task_id: status.task_id.clone(),
                            uuid,
                        }),
                        ..Default::default()
                    };
                    client.call(request(&ack, stream_id.as_deref())).await?;
                }
                if !matches!(
                    state,
                    TaskState::TaskStaging | TaskState::TaskStarting | TaskState::TaskRunning
                ) {
                    break;
                }
            }
            _ => {}
        }
    }
    if let Some(id) = framework_id {
        let teardown = Call {
            framework_id: Some(id),
            r#type: Some(call::Type::Teardown as i32),
            ..Default::default()
        };
        client
            .call(request(&teardown, stream_id.as_deref()))
            .await?;
    }
    cluster.shutdown().await;
    Ok(())
}
