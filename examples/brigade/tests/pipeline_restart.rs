//! At-least-once across a crash: `brigade run` (a child process, state in a real etcd) is
//! killed with SIGKILL in the middle of the stream and started again; every input message ends
//! with an output record, and duplicates are counted and printed, not hidden. Once with a
//! per-message processor, once with a warm streaming one (the new incarnation kills the old
//! workers and re-runs what they had in flight).
//!
//! The message count is `BRIGADE_RESTART_MESSAGES` (default 300; the figure is 10,000).

mod support;

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::kafka::{by_offset, processor_topics, produce, read};

struct Scheduler {
    child: Child,
}

impl Scheduler {
    fn start(
        master: &str,
        brokers: &str,
        etcd: &str,
        processor: &std::path::Path,
        log: &std::path::Path,
    ) -> Self {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_brigade"))
            .arg("run")
            .args(["--processor", &processor.to_string_lossy()])
            .args(["--master", master, "--brokers", brokers, "--etcd", etcd])
            .args(["--bind", "127.0.0.1:0", "--heartbeat-ms", "500"])
            .args(["--executor", env!("CARGO_BIN_EXE_brigade-executor")])
            .args([
                "--executor-on-agent",
                env!("CARGO_BIN_EXE_brigade-executor"),
            ])
            .args(
                std::env::var("BRIGADE_TEST_KAFKA_DEBUG")
                    .map(|v| vec!["--kafka-option".to_string(), format!("debug={v}")])
                    .unwrap_or_default(),
            )
            .env(
                "RUST_LOG",
                std::env::var("BRIGADE_TEST_CHILD_LOG")
                    .unwrap_or_else(|_| "warn,brigade=info".into()),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("brigade run starts");
        Self { child }
    }

    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.kill9();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_scheduler_loses_no_message() {
    restart_loses_no_message("kill_9_of_the_scheduler", "crash", serde_json::json!({})).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_a_warm_streaming_scheduler_loses_no_message() {
    restart_loses_no_message(
        "kill_9_of_a_warm_scheduler",
        "crashw",
        // Slow enough (10 lines/s per process) that the kill lands mid-stream.
        serde_json::json!({
            "command": "while read -r l; do sleep 0.1; echo \"$l\"; done",
            "mode": "warm", "stream": "lines", "workers": {"min": 1, "max": 2},
            "max_in_flight": 64
        }),
    )
    .await;
}

/// Runs processor `name` (a `cat`, with the `extra` fields) through a kill -9 of its scheduler.
async fn restart_loses_no_message(test: &str, name: &str, extra: serde_json::Value) {
    support::init_logs();
    let Some(broker) = support::tansu::tansu_or_skip(test) else {
        return;
    };
    let etcd = match support::etcd::Etcd::start().await {
        Ok(etcd) => etcd,
        Err(reason) => {
            eprintln!("SKIPPED {test}: {reason}");
            return;
        }
    };
    let n: usize = std::env::var("BRIGADE_RESTART_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let brokers = broker.brokers();
    let (input, output, error) = processor_topics(&brokers, name).await;
    let work = tempfile::tempdir().unwrap();
    let cluster = support::local_cluster(work.path()).await;
    let processor = work.path().join("processor.json");
    let mut doc = serde_json::json!({
        "name": name, "input": input, "output": output, "error": error,
        "command": "cat", "cpus": 0.05, "mem": 16, "max_in_flight": 16
    });
    if let (Some(doc), Some(extra)) = (doc.as_object_mut(), extra.as_object()) {
        doc.extend(extra.clone());
    }
    std::fs::write(&processor, doc.to_string()).unwrap();
    let log = work.path().join("brigade.log");
    let master = cluster.master_url();
    let mut scheduler = Scheduler::start(&master, &brokers, &etcd.endpoint(), &processor, &log);
    let payloads: Vec<Vec<u8>> = (0..n).map(|i| format!("m{i}").into_bytes()).collect();
    let offsets = produce(&brokers, &input, &payloads).await;

    // Kill it once a third of the outputs are in.
    // Deadlines grow with the message count (a few messages per second on a loaded machine).
    let per_message = Duration::from_millis(250);
    let deadline = Instant::now() + Duration::from_secs(120) + per_message * (n as u32 / 3);
    loop {
        let seen = read(&brokers, &output, n / 3, Duration::from_secs(2))
            .await
            .len();
        if seen >= n / 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no progress before the kill:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }
    scheduler.kill9();
    eprintln!("killed the scheduler with SIGKILL; restarting it");
    let _restarted = Scheduler::start(&master, &brokers, &etcd.endpoint(), &processor, &log);

    let deadline = Instant::now() + Duration::from_secs(240) + per_message * n as u32;
    let mut outputs;
    loop {
        outputs = read(&brokers, &output, usize::MAX, Duration::from_secs(3)).await;
        let errors = read(&brokers, &error, usize::MAX, Duration::from_millis(500)).await;
        let covered: BTreeSet<i64> = outputs
            .iter()
            .chain(errors.iter())
            .filter_map(|r| r.source_offset)
            .collect();
        if offsets.iter().all(|o| covered.contains(o)) {
            let reasons: Vec<(Option<i64>, Option<String>)> = errors
                .iter()
                .map(|r| (r.source_offset, r.reason.clone()))
                .collect();
            assert!(errors.is_empty(), "unexpected errors: {reasons:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {n} messages have a record after the restart:\n{}",
            covered.len(),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let map = by_offset(&outputs);
    let duplicates: usize = map.values().map(|v| v.len() - 1).sum();
    for (offset, records) in &map {
        for record in records {
            assert_eq!(
                record.payload, payloads[*offset as usize],
                "offset {offset}"
            );
        }
    }
    println!(
        "kill -9 restart ({name}): {n} messages, {} output records, {duplicates} duplicates",
        outputs.len()
    );
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    let reported = log_text.matches("(duplicate)").count();
    println!("duplicates reported by the scheduler: {reported}");
    let duplicated: Vec<i64> = map
        .iter()
        .filter(|(_, records)| records.len() > 1)
        .map(|(offset, _)| *offset)
        .collect();
    println!("duplicated source offsets: {duplicated:?}");
    if let Ok(path) = std::env::var("BRIGADE_TEST_KEEP_LOG") {
        let _ = std::fs::write(path, &log_text);
    }
    assert!(
        duplicates <= reported,
        "duplicates not accounted for: {duplicates} found, {reported} reported"
    );
}
