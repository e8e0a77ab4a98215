//! Throughput and latency of the per-message pipeline, beside the limit of the same broker: a
//! raw consume-transform-produce loop with rdkafka, measured in the same run.
//!
//! ```sh
//! cargo run -p brigade --release --example throughput -- [MESSAGES] [BROKERS]
//! ```
//!
//! Without BROKERS it runs librdkafka's mock cluster in-process. mesos-local runs in-process;
//! the processor is `cat` (no-op). Prints messages/s end to end for both, their ratio, and the
//! p50/p99 latency from produce to output record.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use brigade::kafka::KafkaConfig;
use brigade::pipeline::{Brigade, BrigadeConfig, SchedulerConfig};
use brigade::processor::Processor;
use futures::StreamExt;
use mesos_local::cluster::LocalCluster;
use mesos_sdk::storage::MemoryStore;
use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Message, Timestamp};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};

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

/// Reads `n` records of `topic`; answers when the last arrived and the latencies (record
/// timestamp minus the produce time in the payload).
async fn collect(brokers: &str, topic: &str, n: usize) -> (Instant, Vec<i64>) {
    let consumer = consumer(brokers, topic);
    let mut latencies = Vec::with_capacity(n);
    while latencies.len() < n {
        let message = tokio::time::timeout(Duration::from_secs(120), consumer.recv())
            .await
            .expect("records keep arriving")
            .expect("record");
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
    }
    (Instant::now(), latencies)
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
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
    for topic in ["tp-in", "tp-out", "tp-err", "raw-out"] {
        if let Some(mock) = &mock {
            mock.create_topic(topic, 1, 1).expect("topic");
        }
    }
    if mock.is_none() {
        brigade::kafka::create_topics(
            &KafkaConfig::new(&brokers),
            &["tp-in", "tp-out", "tp-err", "raw-out"],
            1,
        )
        .await
        .expect("topics");
    }

    // The limit: consume, transform, produce with rdkafka alone.
    produce(&brokers, "tp-in", n).await;
    let mut raw_start = Instant::now();
    {
        let input = consumer(&brokers, "tp-in");
        let output = producer(&brokers);
        let mut pending = futures::stream::FuturesUnordered::new();
        for i in 0..n {
            let message = input.recv().await.expect("input");
            if i == 0 {
                // From the first message on: the consumer group's join is not the loop's cost.
                raw_start = Instant::now();
            }
            let payload = message.payload().map(<[u8]>::to_vec).unwrap_or_default();
            let output = output.clone();
            pending.push(async move {
                output
                    .send(
                        FutureRecord::<(), _>::to("raw-out").payload(&payload),
                        Duration::from_secs(30),
                    )
                    .await
                    .expect("raw produce");
            });
        }
        while pending.next().await.is_some() {}
    }
    let raw_rate = n as f64 / raw_start.elapsed().as_secs_f64();

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
        Arc::new(MemoryStore::new()),
        Default::default(),
    );
    config.revive_interval = Duration::from_millis(50);
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
        .unwrap_or(64);
    let processor = Processor::from_json(&format!(
        r#"{{"name":"tp","input":"tp-in","output":"tp-out","error":"tp-err",
            "command":"cat","cpus":0.01,"mem":8,"max_in_flight":{max_in_flight}}}"#
    ))
    .expect("processor");
    let start = Instant::now();
    brigade.add(processor).await.expect("processor starts");
    let (end, mut latencies) = collect(&brokers, "tp-out", n).await;
    let rate = n as f64 / end.duration_since(start).as_secs_f64();
    latencies.sort_unstable();
    println!("messages: {n}");
    println!("raw consume-transform-produce: {raw_rate:.0} messages/s (baseline)");
    println!(
        "brigade per-message mode:      {rate:.0} messages/s = {:.3} x baseline",
        rate / raw_rate
    );
    println!(
        "brigade latency produce->output: p50 {} ms, p99 {} ms (includes the backlog: all {n} \
         messages were queued before the processor started)",
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99)
    );
    brigade.shutdown().await;
    cluster.shutdown().await;
    if std::env::var_os("KEEP_WORK").is_some() {
        println!("work directory kept: {}", work.display());
    } else {
        let _ = std::fs::remove_dir_all(&work);
    }
}
