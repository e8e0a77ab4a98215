//! Maintenance seen by the framework layer, end to end on mesos-local: an operator schedules a
//! maintenance window for the machine that runs one of our tasks; the master sends an inverse
//! offer; the default controller declines it (a task of ours runs there), and the master's
//! maintenance status records that answer.

use std::time::Duration;

use mesos_local::cluster::LocalCluster;
use mesos_sdk::framework::{DefaultController, Framework};
use mesos_sdk::taskmgr::spec::TaskSpec;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WAIT: Duration = Duration::from_secs(60);

/// One operator API call (JSON) to the master; the answer's status and JSON body.
async fn operator(cluster: &LocalCluster, body: Value) -> (u16, Value) {
    let body = body.to_string();
    let mut stream = tokio::net::TcpStream::connect(cluster.master().addr())
        .await
        .expect("connect");
    let request = format!(
        "POST /api/v1 HTTP/1.0\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Accept: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("request");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("response");
    let text = String::from_utf8_lossy(&response);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_controller_declines_maintenance_on_an_agent_running_our_task() {
    let cluster = LocalCluster::builder()
        .agents(1)
        .resources("cpus:2;mem:1024;disk:1000;ports:[31000-31099]")
        .heartbeat_interval(Duration::from_millis(300))
        .allocation_interval(Duration::from_millis(20))
        .start()
        .await
        .expect("local cluster starts");
    let ip = cluster.agents()[0].endpoint().ip().to_string();
    let framework = Framework::builder(cluster.master_url(), "maintained")
        .tick(Duration::from_millis(50))
        .task(
            TaskSpec::new("sleeper")
                .instances(1)
                .shell("sleep 1000")
                .cpus(0.1)
                .mem(16.0),
        )
        .start(DefaultController)
        .await
        .expect("framework starts");
    let running = async {
        while framework.tasks().by_state("TASK_RUNNING").await.len() != 1 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(WAIT, running)
        .await
        .expect("the task runs");

    let machine = json!({"hostname": ip, "ip": ip});
    let schedule = json!({"type": "UPDATE_MAINTENANCE_SCHEDULE", "update_maintenance_schedule": {
        "schedule": {"windows": [{"machine_ids": [machine],
            "unavailability": {"start": {"nanoseconds": 2_000_000_000_000_000_000i64},
                               "duration": {"nanoseconds": 3_600_000_000_000i64}}}]}}});
    let (status, answer) = operator(&cluster, schedule).await;
    assert_eq!(status, 200, "{answer}");

    // The answer reaches the master's maintenance status.
    let answered = async {
        loop {
            let (_, status) = operator(&cluster, json!({"type": "GET_MAINTENANCE_STATUS"})).await;
            let statuses =
                status["get_maintenance_status"]["status"]["draining_machines"][0]["statuses"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
            if let Some(answer) = statuses.first() {
                return answer.clone();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let answer = tokio::time::timeout(WAIT, answered)
        .await
        .expect("the framework answers the inverse offer");
    assert_eq!(answer["status"], "DECLINE", "{answer}");
    let id = framework
        .scheduler()
        .framework_id()
        .expect("subscribed")
        .value;
    assert_eq!(answer["framework_id"]["value"], id.as_str(), "{answer}");
    // Declining leaves the task running.
    assert_eq!(framework.tasks().by_state("TASK_RUNNING").await.len(), 1);
    framework.teardown().await.expect("teardown");
    cluster.shutdown().await;
}
