//! Throughput and latency of the per-message and warm pipelines, beside two limits measured on
//! the same broker in the same run: a raw consume-transform-produce loop with rdkafka (no
//! processing), and a process loop that does the work warm mode does without Mesos (consume, run
//! the processor command once per message with the message on stdin, produce its stdout), with
//! as many runs at once as the warm workers have.
//!
//! ```sh
//! cargo run -p brigade --release --example throughput -- [MESSAGES] [BROKERS]
//! ```
//!
//! Without BROKERS it runs librdkafka's mock cluster in-process. mesos-local runs in-process;
//! the processor is `cat` (no-op). Brigade runs three ways: per-message mode, warm mode with a
//! process per message, and warm mode with a streaming processor (`"stream": "lines"`: one `cat`
//! per worker slot). Each warm run has [`WARM_WORKERS`] workers of [`WARM_CONCURRENCY`] slots.
//! Prints messages/s end to end for each, the ratios to both baselines, and the p50/p99 latency
//! from produce to output record.
//!
//! Knobs (environment): `PROCESS_LOOP=0` (skips that baseline, for profiling), `MODES` (comma-separated subset of `per-message,warm,stream`),
//! `COLLECT_AFTER=1` or `0` (reads the output after the run instead of during it; the default
//! on a real broker, not on the mock cluster, which drops old records), `MAX_IN_FLIGHT` (per-message mode's `max_in_flight`, default 500), `STREAM_IN_FLIGHT` (the
//! streaming processor's, default 5,000), `FETCH_WAIT_MS` (librdkafka's `fetch.wait.max.ms`), `TIMELINE=1` (prints each Brigade run's
//! output records per 50 ms from the processor's start), `KEEP_WORK=1` (keeps
//! mesos-local's work directory, with the executors' logs).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use brigade::kafka::KafkaConfig;
use brigade::pipeline::{Brigade, BrigadeConfig, SchedulerConfig};
use brigade::processor::Processor;
use futures::{FutureExt, StreamExt};
use mesos_local::cluster::LocalCluster;
use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Message, Timestamp};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};

/// The same allocator as the `brigade` binary (jemalloc, also behind librdkafka's `malloc`), so
/// that what is measured is what runs; the raw loop in this process uses it too.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Warm workers (min = max) in the warm section.
const WARM_WORKERS: usize = 2;
/// Items each warm worker runs at once (`SchedulerConfig::warm_concurrency`).
const WARM_CONCURRENCY: usize = 4;
/// Partitions of the output topics: librdkafka's mock cluster keeps only the newest 5 MB of a
/// partition, so a fast run's records (with Brigade's headers, about 150 bytes each) must be
/// spread to stay readable until the reader gets to them.
const OUTPUT_PARTITIONS: i32 = 4;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn consumer(brokers: &str, topic: &str) -> StreamConsumer {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set(
            "group.id",
            format!("measure-{}", uuid::Uuid::new_v4().simple()),
        )
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    consumer
}

fn producer(brokers: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "2")
        .create()
        .expect("producer")
}

/// Produces `n` messages whose payload is the produce time in milliseconds.
async fn produce(brokers: &str, topic: &str, n: usize) {
    let producer = producer(brokers);
    let sends = (0..n).map(|_| {
        let producer = producer.clone();
        let topic = topic.to_string();
        async move {
            let payload = now_ms().to_string();
            producer
                .send(
                    FutureRecord::<(), _>::to(&topic).payload(&payload),
                    Duration::from_secs(30),
                )
                .await
                .expect("produced");
        }
    });
    futures::stream::iter(sends)
        .buffer_unordered(64)
        .collect::<Vec<()>>()
        .await;
}

/// The records of an output topic as [`collect`] read them.
struct Collected {
    /// Each record's timestamp (when Brigade produced it, ms since the epoch).
    stamps: Vec<i64>,
    /// Each record's latency: its timestamp minus the produce time in its payload.
    latencies: Vec<i64>,
}

impl Collected {
    /// The earliest and latest record timestamps.
    fn span(&self) -> (i64, i64) {
        let first = self.stamps.iter().copied().min().unwrap_or(0);
        let last = self.stamps.iter().copied().max().unwrap_or(0);
        (first, last)
    }
}

/// Reads `n` records of `topic`: their timestamps and latencies.
///
/// The reader is assigned every partition from its start (no group join to wait for), and
/// callers start it before the processor: librdkafka's mock cluster keeps only the newest
/// records of a partition, so a reader that starts late can find the first ones gone.
async fn collect(brokers: &str, topic: &str, n: usize) -> Collected {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "measure-collect")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut assignment = rdkafka::TopicPartitionList::new();
    for partition in 0..OUTPUT_PARTITIONS {
        assignment
            .add_partition_offset(topic, partition, rdkafka::Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&assignment).expect("assign");
    let mut latencies = Vec::with_capacity(n);
    let mut stamps = Vec::with_capacity(n);
    while latencies.len() < n {
        let Ok(message) = tokio::time::timeout(Duration::from_secs(120), consumer.recv()).await
        else {
            eprintln!(
                "no record of {topic} for 120 s after {} of {n}; watermarks {:?}, position {:?}",
                latencies.len(),
                consumer.fetch_watermarks(topic, 0, Duration::from_secs(5)),
                consumer.position()
            );
            break;
        };
        let message = message.expect("record");
        let sent: i64 = message
            .payload()
            .and_then(|p| std::str::from_utf8(p).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        let at = match message.timestamp() {
            Timestamp::CreateTime(t) | Timestamp::LogAppendTime(t) => t,
            Timestamp::NotAvailable => now_ms(),
        };
        latencies.push(at - sent);
        stamps.push(at);
    }
    Collected { stamps, latencies }
}

/// [`collect`] for a spawned task.
async fn collect_owned(brokers: String, topic: String, n: usize) -> Collected {
    collect(&brokers, &topic, n).await
}

/// Messages/s over `from_ms..to_ms`.
fn rate_between(n: usize, from_ms: i64, to_ms: i64) -> f64 {
    n as f64 * 1000.0 / ((to_ms - from_ms).max(1) as f64)
}

/// Runs `cat` through the shell once with `payload` on stdin, as the executor does.
async fn run_cat(payload: Vec<u8>) -> Vec<u8> {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new("sh")
        .args(["-c", "cat"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("sh runs");
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(&payload).await.expect("stdin");
    }
    let out = child.wait_with_output().await.expect("cat ends");
    out.stdout
}

/// The process loop: consume `input`, run `cat` per message (at most `concurrency` at once),
/// produce its stdout to `output`. Answers messages/s from the first message consumed.
async fn process_loop(
    brokers: &str,
    input: &str,
    output: &str,
    n: usize,
    concurrency: usize,
) -> f64 {
    let consumer = consumer(brokers, input);
    let producer = producer(brokers);
    let mut start = Instant::now();
    let mut running = futures::stream::FuturesUnordered::new();
    let mut consumed = 0;
    let mut done = 0;
    while done < n {
        if consumed < n && running.len() < concurrency {
            let message = consumer.recv().await.expect("input");
            if consumed == 0 {
                start = Instant::now();
            }
            consumed += 1;
            let payload = message.payload().map(<[u8]>::to_vec).unwrap_or_default();
            let (producer, output) = (producer.clone(), output.to_string());
            running.push(async move {
                let out = run_cat(payload).await;
                producer
                    .send(
                        FutureRecord::<(), _>::to(&output).payload(&out),
                        Duration::from_secs(30),
                    )
                    .await
                    .expect("process-loop produce");
            });
        } else if running.next().await.is_some() {
            done += 1;
        }
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// `TIMELINE=1`: output records per 50 ms from the processor's start (where a run stalls).
fn print_timeline(name: &str, start: i64, stamps: &[i64]) {
    let mut buckets = std::collections::BTreeMap::<i64, usize>::new();
    for at in stamps {
        *buckets.entry((at - start) / 50).or_default() += 1;
    }
    let line: Vec<String> = buckets
        .iter()
        .map(|(bucket, count)| format!("{}ms:{count}", bucket * 50))
        .collect();
    println!("timeline {name}: {}", line.join(" "));
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// Whether Brigade's output is read after each run rather than during it: `COLLECT_AFTER=1`
/// or `0`; by default after on a real broker (a reader during the run loads the broker, and
/// the raw loop has none: on tansu it took about half of two cores) and during on the mock
/// cluster, which keeps only the newest 5 MB of a partition and could drop records before a
/// late reader gets to them.
fn collect_after(mock: bool) -> bool {
    match std::env::var("COLLECT_AFTER").as_deref() {
        Ok("0") => false,
        Ok(_) => true,
        Err(_) => !mock,
    }
}

/// One Brigade run's figures.
struct Run {
    /// Messages/s from the processor's start to its last output.
    rate: f64,
    /// Messages/s from its first output record to its last (without the subscription and
    /// the workers' start).
    steady: f64,
    /// Messages/s from the first message the process scheduler consumed to the last output
    /// (the raw loop's own timing: from its first message); `None` when the first poll of the
    /// counters already found messages consumed (the start is then not known to 1 ms).
    from_consumed: Option<f64>,
    latencies: Vec<i64>,
}

/// Runs the `n` messages already in `input` through a `cat` processor `name` (outputs to
/// `{name}-out`) with the extra fields `extra`; the processor is removed afterwards, so that
/// each mode is measured alone.
async fn brigade_run(
    brigade: &Brigade,
    brokers: &str,
    name: &str,
    input: &str,
    n: usize,
    extra: serde_json::Value,
    after: bool,
) -> Run {
    let mut doc = serde_json::json!({
        "name": name, "input": input, "output": format!("{name}-out"),
        "error": format!("{name}-err"), "command": "cat", "cpus": 0.01, "mem": 8,
    });
    if let (Some(doc), Some(extra)) = (doc.as_object_mut(), extra.as_object()) {
        doc.extend(extra.clone());
    }
    let processor = Processor::from_value(doc).expect("processor");
    // `after`: the output is read once Brigade counts every output acknowledged (the record
    // timestamps still time the run), so the reader does not load the broker during the run,
    // as the raw loop has no reader (see `collect_after`).
    let output = format!("{name}-out");
    let collector =
        (!after).then(|| tokio::spawn(collect_owned(brokers.to_string(), output.clone(), n)));
    let start = now_ms();
    brigade.add(processor).await.expect("processor starts");
    // When the first message is consumed, polled every millisecond (the counters are the
    // process scheduler's own).
    let consumed = || async { brigade.counters().await.get(name).map_or(0, |c| c.consumed) };
    let first_consumed = if consumed().await > 0 {
        None
    } else {
        loop {
            tokio::time::sleep(Duration::from_millis(1)).await;
            if consumed().await > 0 {
                break Some(now_ms());
            }
        }
    };
    let collected = match collector {
        Some(collector) => collector.await.expect("collector"),
        None => {
            while brigade
                .counters()
                .await
                .get(name)
                .is_none_or(|c| (c.outputs as usize) < n)
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            collect(brokers, &output, n).await
        }
    };
    assert_eq!(
        collected.latencies.len(),
        n,
        "counters: {:?}",
        brigade.counters().await.get(name)
    );
    if std::env::var_os("TIMELINE").is_some() {
        print_timeline(name, start, &collected.stamps);
    }
    let (first, last) = collected.span();
    let mut latencies = collected.latencies;
    latencies.sort_unstable();
    brigade.remove(name).await.expect("remove the processor");
    Run {
        rate: rate_between(n, start, last),
        steady: rate_between(n - 1, first, last),
        from_consumed: first_consumed.map(|t| rate_between(n, t, last)),
        latencies,
    }
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "error".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|v| v.parse().ok()).unwrap_or(500);
    let mock = if args.get(2).is_none() {
        Some(MockCluster::new(1).expect("mock cluster"))
    } else {
        None
    };
    let brokers = args
        .get(2)
        .cloned()
        .or_else(|| mock.as_ref().map(|m| m.bootstrap_servers()))
        .expect("brokers");
    // On a real broker, every run has topics of its own (the names carry a run tag): a broker
    // keeps its log between runs, and a reader of a reused output topic would count the records
    // of an earlier run (COLLECT_AFTER reads each output topic from its start).
    let tag = if mock.is_some() {
        String::new()
    } else {
        uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
    };
    let (tp, tpw, tps) = (format!("tp{tag}"), format!("tpw{tag}"), format!("tps{tag}"));
    let (tp_in, raw_out, proc_out) = (
        format!("{tp}-in"),
        format!("raw{tag}-out"),
        format!("proc{tag}-out"),
    );
    let topics: Vec<String> = [&tp, &tpw, &tps]
        .iter()
        .flat_map(|name| [format!("{name}-in"), format!("{name}-err")])
        .collect();
    let outputs: Vec<String> = [&tp, &tpw, &tps]
        .iter()
        .map(|name| format!("{name}-out"))
        .chain([raw_out.clone(), proc_out.clone()])
        .collect();
    let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
    let outputs: Vec<&str> = outputs.iter().map(String::as_str).collect();
    let after = collect_after(mock.is_some());
    // MODES=per-message,warm,stream runs only those Brigade sections (all by default).
    let modes = std::env::var("MODES").unwrap_or_else(|_| "per-message,warm,stream".into());
    let runs = |mode: &str| modes.split(',').any(|m| m.trim() == mode);
    if let Some(mock) = &mock {
        for topic in &topics {
            mock.create_topic(topic, 1, 1).expect("topic");
        }
        for topic in &outputs {
            mock.create_topic(topic, OUTPUT_PARTITIONS, 1)
                .expect("topic");
        }
    } else {
        let config = KafkaConfig::new(&brokers);
        brigade::kafka::create_topics(&config, &topics, 1)
            .await
            .expect("topics");
        brigade::kafka::create_topics(&config, &outputs, OUTPUT_PARTITIONS)
            .await
            .expect("topics");
    }

    // The limit: consume, transform, produce with rdkafka alone. Each record is handed to the
    // producer as soon as its message is consumed (as a consume-transform-produce loop does);
    // the acknowledgements are collected as they come, and all of them by the end.
    produce(&brokers, &tp_in, n).await;
    let mut raw_start = Instant::now();
    {
        let input = consumer(&brokers, &tp_in);
        let output = producer(&brokers);
        let mut pending = futures::stream::FuturesUnordered::new();
        for i in 0..n {
            let message = input.recv().await.expect("input");
            if i == 0 {
                // From the first message on: the consumer group's join is not the loop's cost.
                raw_start = Instant::now();
            }
            let mut record =
                FutureRecord::<(), _>::to(&raw_out).payload(message.payload().unwrap_or_default());
            loop {
                match output.send_result(record) {
                    Ok(delivery) => {
                        pending.push(delivery);
                        break;
                    }
                    Err((_, back)) => {
                        // The producer's queue is full: wait for an acknowledgement.
                        record = back;
                        match pending.next().await {
                            Some(ack) => {
                                let _ = ack.expect("raw delivery").expect("raw produce");
                            }
                            None => tokio::time::sleep(Duration::from_millis(1)).await,
                        }
                    }
                }
            }
            while let Some(Some(ack)) = pending.next().now_or_never() {
                let _ = ack.expect("raw delivery").expect("raw produce");
            }
        }
        while let Some(ack) = pending.next().await {
            let _ = ack.expect("raw delivery").expect("raw produce");
        }
    }
    let raw_rate = n as f64 / raw_start.elapsed().as_secs_f64();

    // The fair limit of warm mode: the same work (one `cat` per message) without Mesos, with
    // the concurrency of the warm workers.
    let concurrency = WARM_WORKERS * WARM_CONCURRENCY;
    // PROCESS_LOOP=0 skips it (for profiling Brigade alone; its ratios then print as inf).
    let proc_rate = if std::env::var("PROCESS_LOOP").as_deref() == Ok("0") {
        0.0
    } else {
        process_loop(&brokers, &tp_in, &proc_out, n, concurrency).await
    };

    // Brigade: the same messages through a `cat` processor, one Mesos task each.
    let work = std::env::temp_dir().join(format!("brigade-tp-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&work).expect("work dir");
    let cluster = LocalCluster::builder()
        .agents(1)
        .resources("cpus:16;mem:65536;disk:20000;ports:[31000-32000]")
        .work_dir(&work)
        .allocation_interval(Duration::from_millis(20))
        .start()
        .await
        .expect("mesos-local");
    let mut kafka = KafkaConfig::new(&brokers);
    if let Ok(wait) = std::env::var("FETCH_WAIT_MS") {
        kafka.extra.insert("fetch.wait.max.ms".into(), wait);
    }
    let mut config = SchedulerConfig::new(
        cluster.master_url(),
        kafka,
        Arc::new(brigade::pipeline::record::memory_store()),
        Default::default(),
    );
    config.revive_interval = Duration::from_millis(50);
    config.warm_concurrency = WARM_CONCURRENCY;
    let executor = std::env::current_exe()
        .ok()
        .and_then(|p| {
            p.parent()
                .and_then(|d| d.parent())
                .map(|d| d.join("brigade-executor"))
        })
        .filter(|p| p.is_file());
    let brigade = Brigade::start(BrigadeConfig {
        scheduler: config,
        executor_path: executor,
        bind: "127.0.0.1:0".parse().expect("address"),
        advertised_host: None,
    })
    .await
    .expect("brigade (build the executor first: cargo build -p brigade --release)");
    let max_in_flight: u32 = std::env::var("MAX_IN_FLIGHT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    // A streaming processor's `max_in_flight`: its pipeline depth (a line costs a few bytes in
    // a pipe, so it is set far higher than for processes).
    let stream_in_flight: u32 = std::env::var("STREAM_IN_FLIGHT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let per_message = if runs("per-message") {
        // The raw loop's input again, under another consumer group.
        let extra = serde_json::json!({ "max_in_flight": max_in_flight });
        Some(brigade_run(&brigade, &brokers, &tp, &tp_in, n, extra, after).await)
    } else {
        None
    };
    // Warm mode, on fresh topics: the same `cat` once per message on long-lived workers, then
    // a streaming processor (one `cat` per worker slot, a line per message).
    let workers = serde_json::json!({"min": WARM_WORKERS, "max": WARM_WORKERS});
    let warm_modes = [
        (
            "warm",
            tpw.as_str(),
            format!(
                "warm mode, a process per message ({WARM_WORKERS} workers x {WARM_CONCURRENCY})"
            ),
            serde_json::json!({"mode": "warm", "workers": workers,
                "max_in_flight": WARM_WORKERS * WARM_CONCURRENCY * 8}),
        ),
        (
            "stream",
            tps.as_str(),
            format!(
                "warm mode, streaming processor ({WARM_WORKERS} workers x {WARM_CONCURRENCY} processes)"
            ),
            serde_json::json!({"mode": "warm", "workers": workers,
                "stream": "lines", "max_in_flight": stream_in_flight}),
        ),
    ];
    let mut warm_runs = Vec::new();
    for (mode, name, label, extra) in warm_modes {
        if !runs(mode) {
            continue;
        }
        let input = format!("{name}-in");
        produce(&brokers, &input, n).await;
        warm_runs.push((
            label,
            brigade_run(&brigade, &brokers, name, &input, n, extra, after).await,
        ));
    }

    println!("messages: {n}");
    println!("raw consume-transform-produce: {raw_rate:.0} messages/s (baseline 1: no processing)");
    println!(
        "process loop (sh -c cat, {concurrency} at once): {proc_rate:.0} messages/s = {:.3} x raw \
         (baseline 2: the same work without Mesos)",
        proc_rate / raw_rate
    );
    if let Some(r) = &per_message {
        println!(
            "brigade per-message mode ({max_in_flight} in flight): {:.0} messages/s = {:.3} x raw \
             = {:.3} x process loop (target: 300 messages/s); latency p50 {} ms, p99 {} ms",
            r.rate,
            r.rate / raw_rate,
            r.rate / proc_rate,
            percentile(&r.latencies, 0.50),
            percentile(&r.latencies, 0.99),
        );
    }
    for (label, r) in &warm_runs {
        println!(
            "brigade {label}: {:.0} messages/s = {:.3} x raw = {:.3} x process loop \
             (target: 0.5 x raw); first output to last {:.0} messages/s = {:.3} x raw; \
             first message consumed to last output (timed like the raw loop, from its first \
             message) {}; latency p50 {} ms, p99 {} ms",
            r.rate,
            r.rate / raw_rate,
            r.rate / proc_rate,
            r.steady,
            r.steady / raw_rate,
            r.from_consumed.map_or_else(
                || "not known (consumed before the first poll)".to_string(),
                |rate| format!("{rate:.0} messages/s = {:.3} x raw", rate / raw_rate)
            ),
            percentile(&r.latencies, 0.50),
            percentile(&r.latencies, 0.99),
        );
    }
    println!(
        "(latencies include the backlog: all {n} messages were queued before each processor \
         started, and for warm mode the workers' start)"
    );
    brigade.shutdown().await;
    cluster.shutdown().await;
    if std::env::var_os("KEEP_WORK").is_some() {
        println!("work directory kept: {}", work.display());
    } else {
        let _ = std::fs::remove_dir_all(&work);
    }
}
