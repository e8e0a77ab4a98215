//! The meta scheduler against mesos-local, a real Kafka-protocol broker (tansu) and the real
//! `brigade-executor`, with processors in a watched directory: a processor file added starts,
//! a changed one drains and restarts with its new configuration while messages flow (every
//! input gets its record: nothing is lost across the change), an invalid file is reported and
//! ignored while the others run, a stopped one stops and starts again, a removed one stops.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use brigade::general::{FileSource, General, GeneralConfig, ProcessorStatus, Shared, State};
use brigade::kafka::{KafkaConfig, create_topics};
use brigade::pipeline::BrigadeConfig;
use support::kafka::{by_offset, produce, read};

const WAIT: Duration = Duration::from_secs(90);

fn write(dir: &Path, file: &str, json: serde_json::Value) {
    let tmp = dir.join(format!(".{file}.tmp"));
    std::fs::write(&tmp, json.to_string()).unwrap();
    std::fs::rename(&tmp, dir.join(file)).unwrap();
}

async fn status(shared: &Shared, name: &str) -> Option<ProcessorStatus> {
    shared.statuses().await.remove(name)
}

async fn wait_for_state(
    shared: &Shared,
    name: &str,
    state: Option<State>,
) -> Option<ProcessorStatus> {
    let deadline = Instant::now() + WAIT;
    loop {
        let now = status(shared, name).await;
        if now.as_ref().map(|s| s.state) == state {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "{name} never reached {state:?}: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn payloads(from: usize, n: usize) -> Vec<Vec<u8>> {
    (from..from + n)
        .map(|i| format!("message {i}").into_bytes())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processor_files_are_reconciled_live_without_losing_messages() {
    support::init_logs();
    let Some(broker) = support::tansu::tansu_or_skip("processor_files_are_reconciled_live") else {
        return;
    };
    let brokers = broker.brokers();
    create_topics(
        &KafkaConfig::new(&brokers),
        &["gen-in", "gen-out", "gen-err"],
        1,
    )
    .await
    .expect("topics");
    let work = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cluster = support::local_cluster(work.path()).await;
    let upper = serde_json::json!({
        "name": "gen", "input": "gen-in", "output": "gen-out", "error": "gen-err",
        "command": "tr a-z A-Z", "cpus": 0.1, "mem": 32, "max_in_flight": 4
    });
    write(dir.path(), "gen.json", upper.clone());
    write(
        dir.path(),
        "broken.json",
        serde_json::json!({"name": "broken", "input": "x", "cpus": "lots", "colour": 1}),
    );
    std::fs::write(dir.path().join("garbage.json"), "{ not json").unwrap();

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
    // Long poll: the file watcher must be what notices changes.
    config.poll_interval = Duration::from_secs(30);
    config.drain_timeout = Duration::from_secs(60);
    let general = General::start(config, |_| None)
        .await
        .expect("meta scheduler starts");
    let shared = general.shared().clone();

    // The valid processor runs; the invalid files are reported with their problems.
    wait_for_state(&shared, "gen", Some(State::Running)).await;
    let broken = wait_for_state(&shared, "broken", Some(State::Invalid))
        .await
        .unwrap();
    let fields: BTreeSet<&str> = broken
        .validation_errors
        .iter()
        .map(|e| e.field.as_str())
        .collect();
    assert!(
        fields.contains("cpus") && fields.contains("colour"),
        "problems: {:?}",
        broken.validation_errors
    );
    assert!(
        !broken.recent_errors.is_empty(),
        "invalid file logged as a recent error"
    );
    let statuses = shared.statuses().await;
    assert!(
        statuses
            .values()
            .any(|s| s.state == State::Invalid && s.origin.ends_with("garbage.json")),
        "garbage reported: {statuses:?}"
    );

    // Messages flow; the configuration changes in the middle of them.
    let first = produce(&brokers, "gen-in", &payloads(0, 10)).await;
    let early = read(&brokers, "gen-out", 3, WAIT).await;
    assert!(!early.is_empty());
    let mut changed = upper.clone();
    changed["command"] = serde_json::json!("sed s/^/v2:/");
    write(dir.path(), "gen.json", changed);
    let second = produce(&brokers, "gen-in", &payloads(10, 10)).await;
    let total = first.len() + second.len();
    let records = read(&brokers, "gen-out", total, WAIT).await;
    let map = by_offset(&records);
    for offset in first.iter().chain(&second) {
        assert!(
            map.contains_key(offset),
            "offset {offset} has no output: {records:?}"
        );
    }
    let last = &map[second.last().unwrap()][0];
    assert_eq!(
        last.payload,
        b"v2:message 19".to_vec(),
        "the new configuration runs"
    );
    assert!(
        read(&brokers, "gen-err", 1, Duration::from_millis(300))
            .await
            .is_empty()
    );
    let gen_status = wait_for_state(&shared, "gen", Some(State::Running))
        .await
        .unwrap();
    assert_eq!(
        gen_status
            .config
            .as_ref()
            .and_then(|c| c["command"].as_str()),
        Some("sed s/^/v2:/")
    );
    assert!(gen_status.framework_id.is_some(), "framework id reported");
    let duplicates = records.len() - map.len();
    println!(
        "change: {} inputs, {} outputs, {duplicates} duplicates",
        total,
        records.len()
    );
    assert!(
        gen_status.counters.produced as usize >= total,
        "counters: {:?}",
        gen_status.counters
    );

    // Stopped: no new message is processed; started again: they are.
    let mut stopped =
        serde_json::from_value::<serde_json::Value>(gen_status.config.clone().unwrap()).unwrap();
    stopped["stopped"] = serde_json::json!(true);
    write(dir.path(), "gen.json", stopped.clone());
    wait_for_state(&shared, "gen", Some(State::Stopped)).await;
    let third = produce(&brokers, "gen-in", &payloads(20, 3)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let during_stop = read(&brokers, "gen-out", total + 3, Duration::from_secs(2)).await;
    assert_eq!(
        by_offset(&during_stop).len(),
        total,
        "nothing processed while stopped"
    );
    stopped["stopped"] = serde_json::json!(false);
    write(dir.path(), "gen.json", stopped);
    wait_for_state(&shared, "gen", Some(State::Running)).await;
    let after = read(&brokers, "gen-out", total + 3, WAIT).await;
    let map = by_offset(&after);
    for offset in &third {
        assert!(
            map.contains_key(offset),
            "offset {offset} processed after the start"
        );
    }

    // Removed: it drains and disappears; the invalid ones stay reported.
    std::fs::remove_file(dir.path().join("gen.json")).unwrap();
    wait_for_state(&shared, "gen", None).await;
    assert!(general.brigade().processors().await.is_empty());
    assert_eq!(
        status(&shared, "broken").await.map(|s| s.state),
        Some(State::Invalid)
    );

    general.shutdown().await;
    cluster.shutdown().await;
}
