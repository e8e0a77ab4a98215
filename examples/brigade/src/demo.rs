//! `brigade demo`: everything in this process on embedded defaults: a mesos-local cluster, a
//! librdkafka mock Kafka cluster, the memory store and the artifact server; a sample
//! upper-casing command processor; sample messages; each result printed as it arrives with its
//! source offset. Stops on Ctrl-C, or after `messages` results with `exit_when_done`.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mesos_local::cluster::LocalCluster;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::kafka::KafkaConfig;
use crate::pipeline::{Brigade, BrigadeConfig, ResultKind, SchedulerConfig};
use crate::processor::Processor;

/// The demo's processor: upper-cases every message with `tr`.
pub const SAMPLE_PROCESSOR: &str = r#"{
    "name": "upper",
    "input": "demo-input",
    "output": "demo-output",
    "error": "demo-errors",
    "command": "tr a-z A-Z",
    "cpus": "0.1",
    "mem": "32",
    "max_in_flight": 8
}"#;

/// Options of the demo.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Sample messages to produce.
    pub messages: usize,
    /// Stop once every sample message has its result.
    pub exit_when_done: bool,
    /// The `brigade-executor` binary (default: next to this executable).
    pub executor: Option<PathBuf>,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            messages: 10,
            exit_when_done: false,
            executor: None,
        }
    }
}

/// Errors of the demo.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DemoError {
    /// A part of the demo did not start.
    #[error("{what}: {reason}")]
    Start {
        /// Which part.
        what: &'static str,
        /// Why.
        reason: String,
    },
}

fn start_err(what: &'static str) -> impl FnOnce(String) -> DemoError {
    move |reason| DemoError::Start { what, reason }
}

/// Runs the demo until Ctrl-C (or until done with `exit_when_done`); answers how many results
/// were printed.
pub async fn run(options: DemoOptions) -> Result<usize, DemoError> {
    let processor = Processor::from_json(SAMPLE_PROCESSOR)
        .map_err(|e| start_err("sample processor")(format!("{e:?}")))?;
    let mock = MockCluster::new(1).map_err(|e| start_err("mock Kafka cluster")(e.to_string()))?;
    let kafka = KafkaConfig::new(mock.bootstrap_servers());
    let topics = [
        processor.input(),
        processor.output().unwrap_or("demo-output"),
        processor.error(),
    ];
    for topic in topics {
        mock.create_topic(topic, 1, 1)
            .map_err(|e| start_err("mock Kafka topics")(e.to_string()))?;
    }
    let work_dir = tempfile_dir().map_err(start_err("work directory"))?;
    let cluster = LocalCluster::builder()
        .agents(1)
        .work_dir(work_dir.clone())
        .allocation_interval(Duration::from_millis(100))
        .start()
        .await
        .map_err(|e| start_err("mesos-local")(e.to_string()))?;
    println!("mesos-local master at {}", cluster.master_url());
    println!("mock Kafka at {}", kafka.brokers);

    let (results_tx, mut results) = tokio::sync::mpsc::unbounded_channel();
    let store = Arc::new(crate::pipeline::record::memory_store());
    let mut scheduler = SchedulerConfig::new(
        cluster.master_url(),
        kafka.clone(),
        store,
        Default::default(),
    );
    scheduler.results = Some(results_tx);
    scheduler.revive_interval = Duration::from_millis(200);
    let brigade = Brigade::start(BrigadeConfig {
        scheduler,
        executor_path: options.executor.clone(),
        bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        advertised_host: None,
    })
    .await
    .map_err(|e| start_err("brigade")(e.to_string()))?;
    brigade
        .add(processor.clone())
        .await
        .map_err(|e| start_err("process scheduler")(e.to_string()))?;
    println!(
        "processor {} running: {} -> {} (errors: {})",
        processor.name(),
        processor.input(),
        processor.output().unwrap_or("-"),
        processor.error()
    );

    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &kafka.brokers)
        .create()
        .map_err(|e| start_err("sample producer")(e.to_string()))?;
    for i in 0..options.messages {
        let payload = format!("hello brigade, message number {i}");
        let key = format!("key-{i}");
        producer
            .send(
                FutureRecord::to(processor.input())
                    .key(&key)
                    .payload(&payload),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| start_err("sample messages")(e.to_string()))?;
    }
    println!("produced {} sample messages; results:", options.messages);

    let mut printed = 0usize;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            _ = &mut ctrl_c => {
                println!("interrupted; stopping");
                break;
            }
            result = results.recv() => {
                let Some(result) = result else { break };
                printed += 1;
                match result.kind {
                    ResultKind::Output(output) => println!(
                        "{}/{} offset {}: {}",
                        result.topic,
                        result.partition,
                        result.offset,
                        String::from_utf8_lossy(&output).trim_end()
                    ),
                    ResultKind::Error(reason) => println!(
                        "{}/{} offset {}: ERROR {reason}",
                        result.topic, result.partition, result.offset
                    ),
                }
                if options.exit_when_done && printed >= options.messages {
                    break;
                }
            }
        }
    }
    for (name, counters) in brigade.counters().await {
        println!(
            "{name}: consumed {} launched {} outputs {} errors {} retries {} duplicates {}",
            counters.consumed,
            counters.launched,
            counters.outputs,
            counters.errors,
            counters.retries,
            counters.duplicates
        );
    }
    drop(producer);
    brigade.shutdown().await;
    cluster.shutdown().await;
    drop(mock);
    let _ = std::fs::remove_dir_all(&work_dir);
    Ok(printed)
}

fn tempfile_dir() -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("brigade-demo-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir)
}
