//! Faults under the pipeline: the agent running the tasks crashes mid-stream and comes back
//! (mesos-local's agent restart: executors keep running and are recovered). Every input message
//! still ends with an output record; duplicates, if any, are printed.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use brigade::kafka::{KafkaConfig, create_topics};
use brigade::processor::Processor;
use support::kafka::{by_offset, produce, read};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_crash_mid_stream_loses_no_message() {
    support::init_logs();
    let Some(broker) = support::tansu::tansu_or_skip("an_agent_crash_mid_stream") else {
        return;
    };
    let brokers = broker.brokers();
    create_topics(
        &KafkaConfig::new(&brokers),
        &["ag-in", "ag-out", "ag-err"],
        1,
    )
    .await
    .unwrap();
    let work = tempfile::tempdir().unwrap();
    let mut cluster = support::local_cluster(work.path()).await;
    let brigade = support::brigade(support::scheduler_config(
        &cluster.master_url(),
        &brokers,
        None,
    ))
    .await;
    let processor = Processor::from_json(
        &serde_json::json!({
            "name": "ag", "input": "ag-in", "output": "ag-out", "error": "ag-err",
            "command": "sleep 0.5; cat", "cpus": 0.1, "mem": 32, "max_in_flight": 4,
            "timeout": 20
        })
        .to_string(),
    )
    .unwrap();
    brigade.add(processor).await.unwrap();
    let n = 12;
    let payloads: Vec<Vec<u8>> = (0..n).map(|i| format!("a{i}").into_bytes()).collect();
    let offsets = produce(&brokers, "ag-in", &payloads).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while read(&brokers, "ag-out", 3, Duration::from_secs(1))
        .await
        .len()
        < 3
    {
        assert!(Instant::now() < deadline, "no progress before the crash");
    }
    cluster.restart_agent(0).await.expect("agent restarts");
    eprintln!("agent crashed and restarted");

    let deadline = Instant::now() + Duration::from_secs(120);
    let outputs = loop {
        let outputs = read(&brokers, "ag-out", usize::MAX, Duration::from_secs(2)).await;
        let errors = read(&brokers, "ag-err", usize::MAX, Duration::from_millis(300)).await;
        let covered: BTreeSet<i64> = outputs
            .iter()
            .chain(errors.iter())
            .filter_map(|r| r.source_offset)
            .collect();
        if offsets.iter().all(|o| covered.contains(o)) {
            let reasons: Vec<Option<String>> = errors.iter().map(|r| r.reason.clone()).collect();
            assert!(errors.is_empty(), "unexpected errors: {reasons:?}");
            break outputs;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {n} messages have a record after the agent crash; counters {:?}",
            covered.len(),
            brigade.counters().await
        );
    };
    let map = by_offset(&outputs);
    let duplicates: usize = map.values().map(|v| v.len() - 1).sum();
    let counters = brigade.counters().await["ag"];
    println!(
        "agent crash: {n} messages, {} outputs, {duplicates} duplicates; counters {counters:?}",
        outputs.len()
    );
    for (offset, records) in &map {
        for record in records {
            assert_eq!(record.payload, payloads[*offset as usize]);
        }
    }
    brigade.shutdown().await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_executor_killed_mid_message_gets_its_message_rerun() {
    support::init_logs();
    let Some(broker) = support::tansu::tansu_or_skip("an_executor_killed_mid_message") else {
        return;
    };
    let brokers = broker.brokers();
    create_topics(
        &KafkaConfig::new(&brokers),
        &["ex-in", "ex-out", "ex-err"],
        1,
    )
    .await
    .unwrap();
    let work = tempfile::tempdir().unwrap();
    let cluster = support::local_cluster(work.path()).await;
    let brigade = support::brigade(support::scheduler_config(
        &cluster.master_url(),
        &brokers,
        None,
    ))
    .await;
    let processor = Processor::from_json(
        &serde_json::json!({
            "name": "ex", "input": "ex-in", "output": "ex-out", "error": "ex-err",
            "command": "sleep 2; cat", "cpus": 0.1, "mem": 32, "max_in_flight": 2,
            "timeout": 30
        })
        .to_string(),
    )
    .unwrap();
    brigade.add(processor).await.unwrap();
    let n = 4;
    let payloads: Vec<Vec<u8>> = (0..n).map(|i| format!("e{i}").into_bytes()).collect();
    let offsets = produce(&brokers, "ex-in", &payloads).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let victim = loop {
        if let Some(pid) = support::procs::executors_of("ex").first().copied() {
            break pid;
        }
        assert!(Instant::now() < deadline, "no executor process appeared");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let status = std::process::Command::new("kill")
        .args(["-9", &victim.to_string()])
        .status()
        .expect("kill runs");
    eprintln!("killed executor pid {victim}: {status}");

    let outputs = read(&brokers, "ex-out", n, Duration::from_secs(120)).await;
    let covered: BTreeSet<i64> = outputs.iter().filter_map(|r| r.source_offset).collect();
    let counters = brigade.counters().await["ex"];
    assert!(
        offsets.iter().all(|o| covered.contains(o)),
        "outputs {outputs:?}; counters {counters:?}"
    );
    assert!(
        counters.retries >= 1,
        "the killed message ran again: {counters:?}"
    );
    println!(
        "executor killed: {n} messages, {} outputs; counters {counters:?}",
        outputs.len()
    );
    brigade.shutdown().await;
    cluster.shutdown().await;
}
