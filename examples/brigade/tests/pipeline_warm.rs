//! Warm mode end to end against mesos-local, a real Kafka-protocol broker (tansu) and the real
//! `brigade-executor`: N messages in, N records out matched by source offset; a failing
//! processor fills the error topic; a worker whose executor is killed with SIGKILL mid-stream
//! loses no message (its items run again); a backlog grows the pool beyond `workers.min`, and
//! the idle workers above it go again; a streaming processor (`"stream": "lines"`) serves many
//! messages per process, and a poison message that kills it fails alone.
//!
//! Without tansu they skip, as the other pipeline tests do; `BRIGADE_TEST_MOCK_KAFKA=1` runs them
//! against librdkafka's in-process mock cluster instead (a development aid, not the contract).

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use brigade::kafka::{KafkaConfig, create_topics};
use brigade::pipeline::SchedulerConfig;
use brigade::processor::Processor;
use support::kafka::{by_offset, produce, read};

const WAIT: Duration = Duration::from_secs(90);

fn processor(json: serde_json::Value) -> Processor {
    Processor::from_json(&json.to_string()).expect("valid processor")
}

/// The broker of one test: tansu, or the mock cluster when asked for.
enum Broker {
    Tansu(support::tansu::Tansu),
    Mock(rdkafka::mocking::MockCluster<'static, rdkafka::producer::DefaultProducerContext>),
}

impl Broker {
    fn start(test: &str) -> Option<Broker> {
        if std::env::var_os("BRIGADE_TEST_MOCK_KAFKA").is_some() {
            return Some(Broker::Mock(
                rdkafka::mocking::MockCluster::new(1).expect("mock cluster"),
            ));
        }
        support::tansu::tansu_or_skip(test).map(Broker::Tansu)
    }

    fn brokers(&self) -> String {
        match self {
            Broker::Tansu(t) => t.brokers(),
            Broker::Mock(m) => m.bootstrap_servers(),
        }
    }

    async fn topics(&self, names: &[&str]) {
        match self {
            Broker::Tansu(t) => create_topics(&KafkaConfig::new(t.brokers()), names, 1)
                .await
                .expect("topics created"),
            Broker::Mock(m) => {
                for name in names {
                    m.create_topic(name, 1, 1).expect("mock topic");
                }
            }
        }
    }
}

/// What one test runs against: a broker with topics `<prefix>-in`, `-out` and `-err`, and
/// mesos-local in a temporary work directory (both live as long as this).
struct Setup {
    _broker: Broker,
    brokers: String,
    _work: tempfile::TempDir,
    cluster: mesos_local::cluster::LocalCluster,
}

/// Starts a test's broker and cluster; `None` (the test skips) without a broker.
async fn setup(test: &str, prefix: &str) -> Option<Setup> {
    support::init_logs();
    let broker = Broker::start(test)?;
    let brokers = broker.brokers();
    let topics = ["in", "out", "err"].map(|t| format!("{prefix}-{t}"));
    broker.topics(&topics.each_ref().map(String::as_str)).await;
    let work = tempfile::tempdir().unwrap();
    let cluster = support::local_cluster(work.path()).await;
    Some(Setup {
        _broker: broker,
        brokers,
        _work: work,
        cluster,
    })
}

fn payloads(prefix: &str, n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| format!("{prefix} {i}").into_bytes())
        .collect()
}

fn config(master: &str, brokers: &str) -> SchedulerConfig {
    let mut config = support::scheduler_config(master, brokers, None);
    config.warm_concurrency = 2;
    config.warm_idle = Duration::from_secs(1);
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_every_message_gets_exactly_one_output_matched_by_offset() {
    let Some(Setup {
        _broker,
        brokers,
        _work,
        cluster,
    }) = setup("warm_every_message_gets_one_output", "wf").await
    else {
        return;
    };
    let config = config(&cluster.master_url(), &brokers);
    let store = config.store.clone();
    let brigade = support::brigade(config).await;
    brigade
        .add(processor(serde_json::json!({
            "name": "wf", "input": "wf-in", "output": "wf-out", "error": "wf-err",
            "command": "tr a-z A-Z", "cpus": 0.1, "mem": 32, "max_in_flight": 16,
            "mode": "warm", "workers": {"min": 1, "max": 2}
        })))
        .await
        .unwrap();
    let n = 40;
    let offsets = produce(&brokers, "wf-in", &payloads("message", n)).await;
    let records = read(&brokers, "wf-out", n, WAIT).await;
    let counters = brigade.counters().await["wf"];
    assert_eq!(
        records.len(),
        n,
        "outputs {records:?}; counters {counters:?}"
    );
    let map = by_offset(&records);
    for (i, offset) in offsets.iter().enumerate() {
        let got = &map[offset];
        assert_eq!(got.len(), 1, "one output for offset {offset}");
        assert_eq!(got[0].payload, format!("MESSAGE {i}").into_bytes());
        assert_eq!(got[0].key.as_deref(), Some(format!("key-{i}").as_bytes()));
    }
    assert!(
        read(&brokers, "wf-err", 1, Duration::from_millis(500))
            .await
            .is_empty()
    );
    assert!(
        counters.launched <= 2,
        "workers, not tasks per message: {counters:?}"
    );
    // Once every offset is committed, the store holds no record of these messages.
    support::wait_for_no_records(&store, "wf", WAIT).await;
    println!("warm flow: {n} messages, counters {counters:?}");
    brigade.shutdown().await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_failing_processor_fills_the_error_topic_with_reasons() {
    let Some(Setup {
        _broker,
        brokers,
        _work,
        cluster,
    }) = setup("warm_failing_processor", "wx").await
    else {
        return;
    };
    let brigade = support::brigade(config(&cluster.master_url(), &brokers)).await;
    brigade
        .add(processor(serde_json::json!({
            "name": "wx", "input": "wx-in", "output": "wx-out", "error": "wx-err",
            "command": "cat >/dev/null; echo broken pipe dream >&2; exit 3",
            "cpus": 0.1, "mem": 32, "retries": 1, "backoff": 0.1,
            "mode": "warm", "workers": {"min": 1, "max": 1}
        })))
        .await
        .unwrap();
    let n = 6;
    let offsets = produce(&brokers, "wx-in", &payloads("bad", n)).await;
    let errors = read(&brokers, "wx-err", n, WAIT).await;
    let counters = brigade.counters().await["wx"];
    assert_eq!(errors.len(), n, "errors {errors:?}; counters {counters:?}");
    let covered: BTreeSet<i64> = errors.iter().filter_map(|r| r.source_offset).collect();
    assert!(offsets.iter().all(|o| covered.contains(o)));
    for record in &errors {
        let reason = record.reason.as_deref().unwrap_or_default();
        assert!(reason.contains("broken pipe dream"), "reason {reason:?}");
    }
    assert_eq!(counters.retries, n as u64, "one retry each: {counters:?}");
    assert!(
        read(&brokers, "wx-out", 1, Duration::from_millis(500))
            .await
            .is_empty()
    );
    brigade.shutdown().await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_worker_killed_mid_stream_gets_its_messages_rerun() {
    let Some(Setup {
        _broker,
        brokers,
        _work,
        cluster,
    }) = setup("warm_worker_killed_mid_stream", "wk").await
    else {
        return;
    };
    let brigade = support::brigade(config(&cluster.master_url(), &brokers)).await;
    brigade
        .add(processor(serde_json::json!({
            "name": "wk", "input": "wk-in", "output": "wk-out", "error": "wk-err",
            "command": "sleep 0.3; cat", "cpus": 0.1, "mem": 32, "timeout": 20,
            "mode": "warm", "workers": {"min": 1, "max": 1}
        })))
        .await
        .unwrap();
    let n = 30;
    let payloads = payloads("w", n);
    let offsets = produce(&brokers, "wk-in", &payloads).await;
    // Kill the worker once it has answered a few messages (others are in flight then).
    let deadline = Instant::now() + WAIT;
    while brigade.counters().await["wk"].outputs < 2 {
        assert!(Instant::now() < deadline, "no progress before the kill");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let victims = support::procs::executors_of("wk");
    assert_eq!(victims.len(), 1, "one worker executor: {victims:?}");
    let status = std::process::Command::new("kill")
        .args(["-9", &victims[0].to_string()])
        .status()
        .expect("kill runs");
    eprintln!("killed warm worker executor pid {}: {status}", victims[0]);

    let deadline = Instant::now() + WAIT;
    while brigade.counters().await["wk"].outputs < n as u64 {
        assert!(
            Instant::now() < deadline,
            "{:?}",
            brigade.counters().await["wk"]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut outputs = read(&brokers, "wk-out", usize::MAX, Duration::from_secs(10)).await;
    loop {
        let covered: BTreeSet<i64> = outputs.iter().filter_map(|r| r.source_offset).collect();
        if offsets.iter().all(|o| covered.contains(o)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {n} offsets have an output; counters {:?}",
            covered.len(),
            brigade.counters().await["wk"]
        );
        outputs = read(&brokers, "wk-out", usize::MAX, Duration::from_secs(2)).await;
    }
    let counters = brigade.counters().await["wk"];
    assert!(
        counters.retries >= 1,
        "the lost items ran again: {counters:?}"
    );
    assert!(
        counters.launched >= 2,
        "a new worker was launched: {counters:?}"
    );
    let map = by_offset(&outputs);
    for (offset, records) in &map {
        for record in records {
            assert_eq!(record.payload, payloads[*offset as usize]);
        }
    }
    assert!(
        read(&brokers, "wk-err", 1, Duration::from_millis(500))
            .await
            .is_empty()
    );
    let duplicates: usize = map.values().map(|v| v.len() - 1).sum();
    println!(
        "warm worker killed: {n} messages, {} outputs, {duplicates} duplicates; counters {counters:?}",
        outputs.len()
    );
    brigade.shutdown().await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_pool_grows_with_the_backlog_and_shrinks_when_idle() {
    let Some(Setup {
        _broker,
        brokers,
        _work,
        cluster,
    }) = setup("warm_pool_grows", "ws").await
    else {
        return;
    };
    let mut config = config(&cluster.master_url(), &brokers);
    config.warm_concurrency = 1;
    let brigade = support::brigade(config).await;
    brigade
        .add(processor(serde_json::json!({
            "name": "ws", "input": "ws-in", "output": "ws-out", "error": "ws-err",
            "command": "sleep 0.5; cat", "cpus": 0.1, "mem": 32, "max_in_flight": 24,
            "mode": "warm", "workers": {"min": 1, "max": 3}
        })))
        .await
        .unwrap();
    let n = 24;
    let offsets = produce(&brokers, "ws-in", &payloads("s", n)).await;
    let mut most = 0;
    let deadline = Instant::now() + WAIT;
    loop {
        most = most.max(support::procs::executors_of("ws").len());
        let counters = brigade.counters().await["ws"];
        if counters.outputs >= n as u64 {
            break;
        }
        assert!(Instant::now() < deadline, "{counters:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let outputs = read(&brokers, "ws-out", n, WAIT).await;
    let covered: BTreeSet<i64> = outputs.iter().filter_map(|r| r.source_offset).collect();
    assert!(offsets.iter().all(|o| covered.contains(o)));
    let counters = brigade.counters().await["ws"];
    assert!(
        counters.launched >= 2 && counters.launched <= 3,
        "more than min workers, at most max: {counters:?}"
    );
    assert!(most >= 2, "at most {most} worker executors seen at once");
    // Idle for warm_idle (1 s): back to workers.min.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let live = support::procs::executors_of("ws").len();
        if live == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "{live} workers stay while idle");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "warm pool: {n} messages, {} workers launched, {most} at once, back to 1 when idle",
        counters.launched
    );
    brigade.shutdown().await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_streaming_processor_serves_many_messages_per_process() {
    let Some(Setup {
        _broker,
        brokers,
        _work,
        cluster,
    }) = setup("warm_streaming_processor", "wl").await
    else {
        return;
    };
    let brigade = support::brigade(config(&cluster.master_url(), &brokers)).await;
    // Each result carries the id of the shell that answered; "die" makes it exit (a poison
    // message: its error is reported, the messages the process held are re-run).
    brigade
        .add(processor(serde_json::json!({
            "name": "wl", "input": "wl-in", "output": "wl-out", "error": "wl-err",
            "command": "while read -r l; do if [ \"$l\" = die ]; then echo poisoned >&2; exit 5; fi; echo \"$l $$\"; done",
            "cpus": 0.1, "mem": 32, "retries": 0, "max_in_flight": 64,
            "mode": "warm", "workers": {"min": 2, "max": 2}, "stream": "lines"
        })))
        .await
        .unwrap();
    let n = 80;
    let mut inputs = payloads("line", n);
    inputs[30] = b"die".to_vec();
    inputs[50] = b"two\nlines".to_vec();
    let offsets = produce(&brokers, "wl-in", &inputs).await;
    let outputs = read(&brokers, "wl-out", n - 2, WAIT).await;
    let errors = read(&brokers, "wl-err", 2, WAIT).await;
    let counters = brigade.counters().await["wl"];
    assert_eq!(outputs.len(), n - 2, "outputs; counters {counters:?}");
    assert_eq!(errors.len(), 2, "errors {errors:?}; counters {counters:?}");
    let mut shells = BTreeSet::new();
    let map = by_offset(&outputs);
    for (i, offset) in offsets.iter().enumerate() {
        if i == 30 || i == 50 {
            assert!(!map.contains_key(offset), "no output for offset {offset}");
            continue;
        }
        let got = &map[offset];
        assert_eq!(got.len(), 1, "one output for offset {offset}");
        let text = String::from_utf8(got[0].payload.clone()).unwrap();
        let (line, shell) = text.rsplit_once(' ').expect("line and shell id");
        assert_eq!(line.as_bytes(), &inputs[i][..]);
        shells.insert(shell.to_string());
    }
    // Two workers of two slots, plus the one restarted after the poison message.
    assert!(
        shells.len() <= 5,
        "{} processes served {} messages: {shells:?}",
        shells.len(),
        n - 2
    );
    let reasons: Vec<(i64, String)> = errors
        .iter()
        .map(|r| {
            (
                r.source_offset.unwrap_or(-1),
                r.reason.clone().unwrap_or_default(),
            )
        })
        .collect();
    for (offset, reason) in &reasons {
        if *offset == offsets[30] {
            assert!(
                reason.contains("status 5") && reason.contains("poisoned"),
                "{reason}"
            );
        } else {
            assert_eq!(*offset, offsets[50], "{reasons:?}");
            assert!(reason.contains("newline"), "{reason}");
        }
    }
    assert!(counters.launched <= 2, "workers: {counters:?}");
    println!(
        "warm streaming: {n} messages served by {} processes; counters {counters:?}",
        shells.len()
    );
    brigade.shutdown().await;
    cluster.shutdown().await;
}
