//! Task latency through the REST API and `/metrics`: after N messages through a processor of
//! a real meta scheduler (mesos-local, tansu), its status shows the latency's p50 and p99 over
//! N tasks and the histogram `brigade_task_latency_seconds` has counted N.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use brigade::general::{FileSource, General, GeneralConfig};
use brigade::pipeline::BrigadeConfig;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_metrics_show_task_latency_after_n_messages() {
    support::init_logs();
    let Some(broker) = support::tansu::tansu_or_skip("status_and_metrics_show_task_latency") else {
        return;
    };
    let brokers = broker.brokers();
    brigade::kafka::create_topics(
        &brigade::kafka::KafkaConfig::new(&brokers),
        &["lat-in", "lat-out", "lat-err"],
        1,
    )
    .await
    .expect("topics");
    let work = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cluster = support::local_cluster(work.path()).await;
    let mut config = GeneralConfig::new(
        BrigadeConfig {
            scheduler: support::scheduler_config(&cluster.master_url(), &brokers, None),
            executor_path: Some(support::executor_binary()),
            bind: "127.0.0.1:0".parse().unwrap(),
            advertised_host: None,
        },
        Arc::new(FileSource::new(dir.path())),
    );
    config.watch_path = Some(dir.path().to_path_buf());
    config.poll_interval = Duration::from_millis(200);
    config.drain_timeout = Duration::from_secs(5);
    let general = General::start(config, |shared| Some(brigade::cli::routes(shared)))
        .await
        .expect("meta scheduler starts");
    let base = general.url().to_string();
    let http = reqwest::Client::new();
    let response = http
        .post(format!("{base}/api/processors"))
        .json(&json!({
            "name": "lat", "input": "lat-in", "output": "lat-out", "error": "lat-err",
            "command": "tr a-z A-Z", "cpus": 0.1, "mem": 32, "max_in_flight": 4
        }))
        .send()
        .await
        .expect("API answers");
    assert_eq!(response.status(), reqwest::StatusCode::CREATED);

    let n = 10u64;
    let payloads: Vec<Vec<u8>> = (0..n).map(|i| format!("lat {i}").into_bytes()).collect();
    support::kafka::produce(&brokers, "lat-in", &payloads).await;

    // The status: N produced, latency over N tasks with p50 <= p99.
    let deadline = Instant::now() + WAIT;
    let status = loop {
        let status: Value = http
            .get(format!("{base}/api/processors/lat/status"))
            .send()
            .await
            .expect("API answers")
            .json()
            .await
            .expect("JSON status");
        if status["counters"]["produced"] == n && status["latency"]["count"] == n {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "status never showed {n}: {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let p50 = status["latency"]["p50_seconds"].as_f64().expect("p50");
    let p99 = status["latency"]["p99_seconds"].as_f64().expect("p99");
    assert!(0.0 < p50 && p50 <= p99, "p50 {p50} p99 {p99}");

    // The histogram: N observations.
    let want = format!("brigade_task_latency_seconds_count{{processor=\"lat\"}} {n}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = http
            .get(format!("{base}/metrics"))
            .send()
            .await
            .expect("metrics answer")
            .text()
            .await
            .unwrap();
        if text.contains(&want) {
            assert!(
                text.contains(
                    "brigade_task_latency_seconds_bucket{le=\"0.005\",processor=\"lat\"}"
                ) || text.contains("brigade_task_latency_seconds_bucket{processor=\"lat\",le="),
                "buckets in {text}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "no `{want}` in {text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    general.shutdown().await;
    cluster.shutdown().await;
}
