//! The `Framework` builder with the SDK's HTTP server (feature `server`) on mesos-local:
//! `/state` shows the connection, the leadership, running instances with their states and a
//! pending instance with its placement's reason; `/metrics` carries the framework's metrics
//! (calls by type and outcome, events, offers, placement failures, launches, status updates,
//! reconciliation rounds, subscription state); `/health` answers.
#![cfg(feature = "server")]

use std::time::Duration;

use mesos_local::cluster::LocalCluster;
use mesos_sdk::framework::{DefaultController, Framework, FrameworkHandle};
use mesos_sdk::resourcemgr::etiquette::EtiquetteConfig;
use mesos_sdk::server::Server;
use mesos_sdk::taskmgr::ReconcileConfig;
use mesos_sdk::taskmgr::spec::TaskSpec;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(60);

async fn cluster() -> LocalCluster {
    LocalCluster::builder()
        .agents(2)
        .resources("cpus:4;mem:2048;disk:1024;ports:[31000-31100]")
        .heartbeat_interval(Duration::from_millis(300))
        .allocation_interval(Duration::from_millis(20))
        .status_update_retry(Duration::from_millis(100), Duration::from_millis(400))
        .executor_shutdown_grace_period(Duration::from_millis(500))
        .start()
        .await
        .expect("local cluster starts")
}

/// `GET path` on the framework's server: status code and body.
async fn get(framework: &FrameworkHandle, path: &str) -> (u16, String) {
    let addr = framework.server().expect("a server").local_addr();
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
        .await
        .expect("request");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("response");
    let text = String::from_utf8_lossy(&response).into_owned();
    let code = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
    (code, body)
}

async fn until_state(
    framework: &FrameworkHandle,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let wait = async {
        loop {
            let (code, body) = get(framework, "/state").await;
            if code == 200
                && let Ok(state) = serde_json::from_str::<Value>(&body)
                && done(&state)
            {
                return state;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    match timeout(WAIT, wait).await {
        Ok(state) => state,
        Err(_) => panic!(
            "timed out waiting for {what}: {}",
            get(framework, "/state").await.1
        ),
    }
}

/// The value of the sample line starting with `prefix` (name and labels).
fn sample(metrics: &str, prefix: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_and_metrics_describe_the_framework() {
    let cluster = cluster().await;
    let framework = Framework::builder(cluster.master_url(), "served")
        .tick(Duration::from_millis(50))
        .reconcile(ReconcileConfig {
            retry_min: Duration::from_millis(200),
            retry_max: Duration::from_secs(1),
            implicit_interval: Duration::from_secs(60),
            launch_timeout: Duration::from_secs(10),
        })
        .etiquette(EtiquetteConfig {
            revive_burst: 100,
            revive_interval: Duration::from_millis(10),
            refuse: Duration::from_millis(200),
            ..EtiquetteConfig::default()
        })
        .server(Server::builder())
        .task(
            TaskSpec::new("web")
                .instances(3)
                .shell("sleep 1000")
                .cpus(0.1)
                .mem(16.0),
        )
        .task(
            TaskSpec::new("huge")
                .shell("sleep 1000")
                .cpus(64.0)
                .mem(16.0),
        )
        .start(DefaultController)
        .await
        .expect("framework starts");

    let (code, body) = get(&framework, "/health").await;
    assert_eq!((code, body.trim()), (200, "ok"));

    let state = until_state(
        &framework,
        "three running and one pending with a reason",
        |s| {
            s["tasks"].as_array().is_some_and(|t| {
                t.iter()
                    .filter(|t| t["state"] == "TASK_RUNNING" && t["spec"] == "web")
                    .count()
                    == 3
            }) && s["pending"].as_array().is_some_and(|p| {
                p.iter().any(|p| {
                    p["spec"] == "huge" && p["reason"].as_str().is_some_and(|r| r.contains("cpus"))
                })
            })
        },
    )
    .await;
    assert_eq!(state["connection"], "subscribed", "{state:#}");
    assert_eq!(state["leadership"], "leader");
    assert!(
        state["framework_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );
    let tasks = state["tasks"].as_array().expect("tasks");
    assert_eq!(tasks.len(), 4);
    assert_eq!(
        tasks
            .iter()
            .filter(|t| t["state"] == "TASK_RUNNING" && t["spec"] == "web")
            .count(),
        3,
        "{state:#}"
    );

    let (code, metrics) = get(&framework, "/metrics").await;
    assert_eq!(code, 200);
    let expect = |prefix: &str, at_least: f64| {
        let value = sample(&metrics, prefix).unwrap_or_else(|| panic!("no {prefix} in\n{metrics}"));
        assert!(
            value >= at_least,
            "{prefix} = {value}, want >= {at_least}\n{metrics}"
        );
    };
    expect("mesos_sdk_launches_total ", 3.0);
    expect("mesos_sdk_calls_total{type=\"accept\",outcome=\"ok\"}", 1.0);
    expect(
        "mesos_sdk_calls_total{type=\"acknowledge\",outcome=\"ok\"}",
        3.0,
    );
    expect("mesos_sdk_events_total{type=\"offers\"}", 1.0);
    expect("mesos_sdk_events_total{type=\"connected\"}", 1.0);
    expect("mesos_sdk_offers_total{outcome=\"received\"}", 1.0);
    expect("mesos_sdk_offers_total{outcome=\"used\"}", 1.0);
    expect(
        "mesos_sdk_placement_failures_total{reason=\"cpus short\"}",
        1.0,
    );
    expect("mesos_sdk_status_updates_total{state=\"TASK_RUNNING\"", 3.0);
    expect("mesos_sdk_reconciliation_rounds_total ", 1.0);
    expect("mesos_sdk_subscribed ", 1.0);
    assert_eq!(sample(&metrics, "mesos_sdk_reconnects_total "), Some(0.0));

    framework.teardown().await.expect("teardown");
    cluster.shutdown().await;
}
