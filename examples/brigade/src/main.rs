//! The `brigade` command line: `brigade demo` (everything in-process on embedded defaults) and
//! `brigade run` (one processor against a real Mesos master, Kafka and optionally etcd),
//! `brigade scheduler` (the meta scheduler with its REST API and UI) and `brigade processor
//! ...` (the REST API's client; exit codes in [`brigade::cli`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use brigade::demo::{self, DemoOptions};
use brigade::kafka::KafkaConfig;
use brigade::pipeline::{Brigade, BrigadeConfig, SchedulerConfig};
use brigade::processor::Processor;
use clap::{Parser, Subcommand};
use mesos_sdk::storage::{EtcdStore, Store};

/// The process's allocator: jemalloc, for Rust and (the crate's unprefixed `malloc`) for
/// librdkafka's C code alike. A process scheduler allocates for every message it moves, and
/// glibc's malloc was about a sixth of all CPU time in a warm pipeline's busy phase; with
/// jemalloc a twentieth, and warm streaming ran about 10% faster and far steadier (the README's
/// Measure section has the runs).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Brigade: one Mesos task per Kafka message.
#[derive(Debug, Parser)]
#[command(name = "brigade", version)]
struct Cli {
    /// Log format on stderr: `text`, or `json` (one JSON object per line, for FluentD/Vector).
    #[arg(long, global = true, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    #[command(subcommand)]
    command: Command,
}

// Parsed once per run: the size difference between the variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the meta scheduler: processors from a file, a directory or etcd, reconciled live,
    /// with the REST API, the web UI and /metrics on one server.
    Scheduler(brigade::cli::SchedulerArgs),
    /// Manages processors through a running scheduler's REST API (`--api`, env BRIGADE_API).
    #[command(after_help = brigade::cli::EXIT_CODES)]
    Processor(brigade::cli::ProcessorArgs),
    /// Runs everything in this process (mesos-local, a mock Kafka cluster, the memory store)
    /// with a sample upper-casing processor, and prints each result.
    Demo {
        /// Sample messages to produce.
        #[arg(long, default_value_t = 10)]
        messages: usize,
        /// Exit once every sample message has its result.
        #[arg(long)]
        exit_when_done: bool,
        /// The brigade-executor binary (default: next to this one).
        #[arg(long)]
        executor: Option<PathBuf>,
    },
    /// Runs one processor against a Mesos master and Kafka brokers.
    Run {
        /// The processor's JSON file.
        #[arg(long)]
        processor: PathBuf,
        /// The Mesos master, e.g. http://127.0.0.1:5050.
        #[arg(long, env = "BRIGADE_MASTER")]
        master: String,
        /// Kafka bootstrap servers.
        #[arg(long, env = "BRIGADE_BROKERS")]
        brokers: String,
        /// etcd endpoints (comma separated); without it the state is kept in memory.
        #[arg(long, env = "BRIGADE_ETCD")]
        etcd: Option<String>,
        /// Where the executor artifact server listens.
        #[arg(long, default_value = "0.0.0.0:0")]
        bind: SocketAddr,
        /// The host name agents reach this process at.
        #[arg(long)]
        advertised_host: Option<String>,
        /// The brigade-executor binary (default: next to this one).
        #[arg(long)]
        executor: Option<PathBuf>,
        /// Runs brigade-executor from this path on the agents instead of serving it to the
        /// fetcher (agents on this host, or with the binary installed).
        #[arg(long)]
        executor_on_agent: Option<PathBuf>,
        /// Overrides the master's heartbeat interval, in milliseconds (tests).
        #[arg(long)]
        heartbeat_ms: Option<u64>,
        /// Creates the processor's topics when missing, with this many partitions.
        #[arg(long)]
        create_topics: Option<i32>,
        /// A librdkafka property for both clients, `key=value` (repeatable).
        #[arg(long = "kafka-option", value_name = "KEY=VALUE")]
        kafka_options: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_filter = if matches!(cli.command, Command::Processor(_)) {
        "warn"
    } else {
        "warn,brigade=info"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| default_filter.into());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if cli.log_format == "json" {
        logs.json()
            .flatten_event(true)
            .with_current_span(true)
            .init();
    } else {
        // No colour codes where stderr is a file or a pipe.
        logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("brigade: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Command::Processor(args) = cli.command {
        return ExitCode::from(runtime.block_on(brigade::cli::run_processor(args)));
    }
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Scheduler(args) => brigade::cli::scheduler::run(args).await,
            Command::Processor(_) => Ok(()),
            Command::Demo {
                messages,
                exit_when_done,
                executor,
            } => demo::run(DemoOptions {
                messages,
                exit_when_done,
                executor,
            })
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
            Command::Run {
                processor,
                master,
                brokers,
                etcd,
                bind,
                advertised_host,
                executor,
                executor_on_agent,
                heartbeat_ms,
                create_topics,
                kafka_options,
            } => {
                run(RunOptions {
                    processor,
                    master,
                    brokers,
                    etcd,
                    bind,
                    advertised_host,
                    executor,
                    executor_on_agent,
                    heartbeat: heartbeat_ms.map(Duration::from_millis),
                    create_topics,
                    kafka_options,
                })
                .await
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("brigade: {e}");
            ExitCode::FAILURE
        }
    }
}

struct RunOptions {
    processor: PathBuf,
    master: String,
    brokers: String,
    etcd: Option<String>,
    bind: SocketAddr,
    advertised_host: Option<String>,
    executor: Option<PathBuf>,
    executor_on_agent: Option<PathBuf>,
    heartbeat: Option<Duration>,
    create_topics: Option<i32>,
    kafka_options: Vec<String>,
}

async fn run(options: RunOptions) -> Result<(), String> {
    let text = std::fs::read_to_string(&options.processor)
        .map_err(|e| format!("{}: {e}", options.processor.display()))?;
    let processor = Processor::from_json(&text)
        .map_err(|e| format!("{}: {e:?}", options.processor.display()))?;
    let store: Arc<dyn Store> = match &options.etcd {
        Some(endpoints) => Arc::new(
            EtcdStore::builder(endpoints.split(',').map(str::trim))
                .connect()
                .await
                .map_err(|e| format!("etcd {endpoints}: {e}"))?,
        ),
        None => Arc::new(brigade::pipeline::record::memory_store()),
    };
    let mut kafka = KafkaConfig::new(options.brokers);
    for option in &options.kafka_options {
        let (key, value) = option
            .split_once('=')
            .ok_or_else(|| format!("--kafka-option {option:?} is not KEY=VALUE"))?;
        kafka.extra.insert(key.to_string(), value.to_string());
    }
    if let Some(partitions) = options.create_topics {
        let mut topics = vec![processor.input(), processor.error()];
        if let Some(output) = processor.output() {
            topics.push(output);
        }
        brigade::kafka::create_topics(&kafka, &topics, partitions)
            .await
            .map_err(|e| e.to_string())?;
    }
    let mut scheduler = SchedulerConfig::new(options.master, kafka, store, Default::default());
    scheduler.heartbeat_interval = options.heartbeat;
    scheduler.executor_on_agent = options.executor_on_agent;
    let brigade = Brigade::start(BrigadeConfig {
        scheduler,
        executor_path: options.executor,
        bind: options.bind,
        advertised_host: options.advertised_host,
    })
    .await
    .map_err(|e| e.to_string())?;
    brigade.add(processor).await.map_err(|e| e.to_string())?;
    let _ = tokio::signal::ctrl_c().await;
    eprintln!("brigade: stopping");
    brigade.shutdown().await;
    Ok(())
}
