//! The pipeline end to end against mesos-local, a real Kafka-protocol broker (tansu) and the
//! real `brigade-executor`: N messages in, N records out matched by source offset; a failing
//! processor fills the error topic with reasons; a hanging processor hits its timeout;
//! `max_in_flight` bounds the tasks pending or running.

mod support;

use std::time::{Duration, Instant};

use brigade::kafka::{KafkaConfig, create_topics};
use brigade::processor::Processor;
use support::kafka::{by_offset, produce, read};

const WAIT: Duration = Duration::from_secs(90);

fn processor(json: serde_json::Value) -> Processor {
    Processor::from_json(&json.to_string()).expect("valid processor")
}

async fn topics(brokers: &str, names: &[&str]) {
    create_topics(&KafkaConfig::new(brokers), names, 1)
        .await
        .expect("topics created");
}

fn payloads(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| format!("message {i}").into_bytes())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_gets_exactly_one_output_matched_by_offset() {
    support::init_logs();
    let Some(broker) = support::tansu::tansu_or_skip("every_message_gets_exactly_one_output")
    else {
        return;
    };
    let brokers = broker.brokers();
    topics(&brokers, &["flow-in", "flow-out", "flow-err"]).await;
    let work = tempfile::tempdir().unwrap();
    let cluster = support::local_cluster(work.path()).await;
    let config = support::scheduler_config(&cluster.master_url(), &brokers, None);
    let store = config.store.clone();
    let brigade = support::brigade(config).await;
    brigade
        .add(processor(serde_json::json!({
            "name": "flow", "input": "flow-in", "output": "flow-out", "error": "flow-err",
            "command": "tr a-z A-Z", "cpus": "0.1", "mem": "32", "max_in_flight": 8
        })))
        .await
        .unwrap();
    let n = 20;
    let offsets = produce(&brokers, "flow-in", &payloads(n)).await;
    let records = read(&brokers, "flow-out", n, WAIT).await;
    let counters = brigade.counters().await;
    assert_eq!(
        records.len(),
        n,
        "outputs: {records:?}; counters {counters:?}"
    );
    let map = by_offset(&records);
    for (i, offset) in offsets.iter().enumerate() {
        let got = &map[offset];
        assert_eq!(got.len(), 1, "one output for offset {offset}");
        assert_eq!(got[0].payload, format!("MESSAGE {i}").into_bytes());
        assert_eq!(got[0].key.as_deref(), Some(format!("key-{i}").as_bytes()));
    }
    assert!(
        read(&brokers, "flow-err", 1, Duration::from_millis(500))
            .await
            .is_empty()
    );
    // Task records and result batches are deleted once every offset is committed.
    support::wait_for_no_records(&store, "flow", WAIT).await;
    brigade.shutdown().await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_processor_fills_the_error_topic_with_reasons() {
    support::init_logs();
    let Some(broker) = support::tansu::tansu_or_skip("a_failing_processor") else {
        return;
    };
    let brokers = broker.brokers();
    topics(&brokers, &["fail-in", "fail-out", "fail-err"]).await;
    let work = tempfile::tempdir().unwrap();
    let cluster = support::local_cluster(work.path()).await;
    let brigade = support::brigade(support::scheduler_config(
        &cluster.master_url(),
        &brokers,
        None,
    ))
    .await;
    brigade
        .add(processor(serde_json::json!({
            "name": "fail", "input": "fail-in", "output": "fail-out", "error": "fail-err",
            "command": "cat >/dev/null; echo broken-processor >&2; exit 3",
            "cpus": 0.1, "mem": 32, "retries": 1, "backoff": 0.1
        })))
        .await
        .unwrap();
    let n = 5;
    let offsets = produce(&brokers, "fail-in", &payloads(n)).await;
    let records = read(&brokers, "fail-err", n, WAIT).await;
    assert_eq!(records.len(), n, "errors: {records:?}");
    let map = by_offset(&records);
    for offset in &offsets {
        let reason = map[offset][0].reason.clone().unwrap_or_default();
        assert!(reason.contains("broken-processor"), "reason: {reason}");
    }
    let counters = brigade.counters().await["fail"];
    assert_eq!(
        counters.retries, n as u64,
        "one retry per message: {counters:?}"
    );
    assert!(
        read(&brokers, "fail-out", 1, Duration::from_millis(500))
            .await
            .is_empty()
    );
    brigade.shutdown().await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_processor_hits_its_timeout() {
    support::init_logs();
    let Some(broker) = support::tansu::tansu_or_skip("a_hanging_processor") else {
        return;
    };
    let brokers = broker.brokers();
    topics(&brokers, &["hang-in", "hang-out", "hang-err"]).await;
    let work = tempfile::tempdir().unwrap();
    let cluster = support::local_cluster(work.path()).await;
    let brigade = support::brigade(support::scheduler_config(
        &cluster.master_url(),
        &brokers,
        None,
    ))
    .await;
    brigade
        .add(processor(serde_json::json!({
            "name": "hang", "input": "hang-in", "output": "hang-out", "error": "hang-err",
            "command": "sleep 600", "cpus": 0.1, "mem": 32, "timeout": 1
        })))
        .await
        .unwrap();
    let started = Instant::now();
    let offsets = produce(&brokers, "hang-in", &payloads(2)).await;
    let records = read(&brokers, "hang-err", 2, WAIT).await;
    assert_eq!(records.len(), 2, "errors: {records:?}");
    assert!(started.elapsed() < Duration::from_secs(60));
    for record in &records {
        assert!(offsets.contains(&record.source_offset.unwrap()));
        let reason = record.reason.clone().unwrap_or_default().to_lowercase();
        assert!(
            reason.contains("timeout") || reason.contains("timed out"),
            "reason: {reason}"
        );
    }
    brigade.shutdown().await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_in_flight_bounds_the_tasks_at_once() {
    support::init_logs();
    let Some(broker) = support::tansu::tansu_or_skip("max_in_flight_bounds_the_tasks") else {
        return;
    };
    let brokers = broker.brokers();
    topics(&brokers, &["bp-in", "bp-out", "bp-err"]).await;
    let work = tempfile::tempdir().unwrap();
    let cluster = support::local_cluster(work.path()).await;
    let brigade = support::brigade(support::scheduler_config(
        &cluster.master_url(),
        &brokers,
        None,
    ))
    .await;
    brigade
        .add(processor(serde_json::json!({
            "name": "bp", "input": "bp-in", "output": "bp-out", "error": "bp-err",
            "command": "sleep 0.2; cat", "cpus": 0.1, "mem": 32, "max_in_flight": 2
        })))
        .await
        .unwrap();
    let n = 8;
    produce(&brokers, "bp-in", &payloads(n)).await;
    let records = read(&brokers, "bp-out", n, WAIT).await;
    assert_eq!(records.len(), n);
    let counters = brigade.counters().await["bp"];
    assert!(counters.max_in_flight_seen <= 2, "{counters:?}");
    assert!(counters.max_in_flight_seen >= 1, "{counters:?}");
    brigade.shutdown().await;
    cluster.shutdown().await;
}
