//! A framework built with the SDK against DOCKER containers of a `LocalCluster`: a `TaskSpec`
//! with a Docker image on the bridge network and a port mapping whose host port comes from the
//! offer, reached from the host, then killed. Skipped with a printed reason where no Docker
//! Engine answers.

mod local_agent_support;
mod local_docker_support;

use std::time::{Duration, Instant};

use local_agent_support::{WAIT, raw_http};
use local_docker_support::{IMAGE, leftovers, ready};
use mesos_local::agent::DockerConfig;
use mesos_sdk::v1::TaskState;

/// The next scheduler event, in time.
async fn next_event(
    events: &mut mesos_sdk::scheduler::SchedulerEvents,
) -> mesos_sdk::scheduler::SchedulerEvent {
    tokio::time::timeout(WAIT, futures::StreamExt::next(events))
        .await
        .expect("an event in time")
        .expect("the event stream is open")
}

/// A framework built with the SDK: a `TaskSpec` with a Docker image on the bridge network and a
/// port mapping whose host port comes from the offer, launched on a `LocalCluster`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sdk_task_spec_runs_in_a_container_on_an_offered_port() {
    use mesos_sdk::resourcemgr::OfferResources;
    use mesos_sdk::scheduler::calls::operations;
    use mesos_sdk::scheduler::{FrameworkInfoBuilder, Scheduler, SchedulerEvent};
    use mesos_sdk::taskmgr::spec::{DockerNetwork, DockerSpec, NoArtifacts, Protocol, TaskSpec};

    if !ready() {
        return;
    }
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let cluster = mesos_local::cluster::LocalCluster::builder()
        .agents(1)
        .resources(format!("cpus:2;mem:1024;disk:1024;ports:[{port}-{port}]"))
        .heartbeat_interval(Duration::from_millis(300))
        .allocation_interval(Duration::from_millis(20))
        .executor_shutdown_grace_period(Duration::from_millis(500))
        .docker(DockerConfig {
            command_timeout: Duration::from_secs(30),
            ..DockerConfig::default()
        })
        .start()
        .await
        .unwrap();
    let client = mesos_sdk::client::Client::builder()
        .endpoint(cluster.master_url())
        .call_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let user = std::env::var("USER").unwrap_or_else(|_| "root".to_string());
    let framework = FrameworkInfoBuilder::new(user, "docker-e2e").roles(["docker"]);
    let (scheduler, mut events) = Scheduler::builder(client, framework.build()).start();
    let offer = loop {
        if let SchedulerEvent::Offers(offers) = next_event(&mut events).await
            && let Some(offer) = offers.into_iter().next()
        {
            break offer;
        }
    };
    let spec = TaskSpec::new("web")
        .cpus(0.1)
        .mem(32.0)
        .ports(1)
        .docker(
            DockerSpec::image(IMAGE)
                .network(DockerNetwork::Bridge)
                .port(8080, None, Protocol::Tcp),
        )
        .shell(
            "echo hello-spec $MESOS_ALLOCATION_ROLE > $MESOS_SANDBOX/index.html; \
             exec httpd -f -p 8080 -h /mnt/mesos/sandbox",
        );
    let mut pool = OfferResources::new(&offer);
    let task = spec.task_info("web-1", &mut pool, &NoArtifacts).unwrap();
    scheduler
        .accept(
            vec![offer.id.clone()],
            vec![operations::launch(vec![task])],
            None,
        )
        .await
        .unwrap();
    loop {
        if let SchedulerEvent::Update { status, .. } = next_event(&mut events).await {
            assert!(!status.state().is_terminal(), "{status:?}");
            if status.state() == TaskState::TaskRunning {
                break;
            }
        }
    }
    let deadline = Instant::now() + WAIT;
    loop {
        let answer = tokio::spawn(async move {
            raw_http(
                std::net::SocketAddr::from(([127, 0, 0, 1], port)),
                "GET",
                "/index.html",
                &[],
                b"",
            )
            .await
        });
        if let Ok(Ok((200, _, body))) = tokio::time::timeout(Duration::from_secs(2), answer).await {
            assert_eq!(String::from_utf8_lossy(&body), "hello-spec docker\n");
            break;
        }
        assert!(Instant::now() < deadline, "the offered port never answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    scheduler
        .kill(
            mesos_sdk::v1::TaskId {
                value: "web-1".into(),
            },
            Some(offer.agent_id.clone()),
            None,
        )
        .await
        .unwrap();
    loop {
        if let SchedulerEvent::Update { status, .. } = next_event(&mut events).await
            && status.state().is_terminal()
        {
            assert_eq!(status.state(), TaskState::TaskKilled, "{status:?}");
            break;
        }
    }
    drop(scheduler);
    cluster.shutdown().await;
    assert_eq!(leftovers(&offer.agent_id.value), "");
}
