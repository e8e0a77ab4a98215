//! `brigade scheduler`: the meta scheduler with its REST API and web UI on one server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mesos_sdk::storage::{EtcdStore, Store};

use crate::general::{FileSource, General, GeneralConfig, ProcessorSource, StoreSource, TermStore};
use crate::kafka::KafkaConfig;
use crate::pipeline::{BrigadeConfig, SchedulerConfig};

/// The options of `brigade scheduler`.
#[derive(Debug, Clone, clap::Args)]
pub struct SchedulerArgs {
    /// A processor file or directory (the original's PROCESSOR_DIR), watched for changes.
    #[arg(long, env = "BRIGADE_PROCESSORS")]
    pub processors: Option<PathBuf>,
    /// The Mesos master, e.g. http://127.0.0.1:5050.
    #[arg(long, env = "BRIGADE_MASTER")]
    pub master: String,
    /// Kafka bootstrap servers.
    #[arg(long, env = "BRIGADE_BROKERS")]
    pub brokers: String,
    /// etcd endpoints (comma separated): framework ids and task records live there, and so do
    /// the processors when no --processors is given.
    #[arg(long, env = "BRIGADE_ETCD")]
    pub etcd: Option<String>,
    /// The etcd key prefix of processors.
    #[arg(long, default_value = crate::general::store_source::DEFAULT_PREFIX)]
    pub etcd_prefix: String,
    /// Where the server (REST API, UI, metrics, executor artifact) listens.
    #[arg(long, default_value = "127.0.0.1:7000", env = "BRIGADE_BIND")]
    pub bind: SocketAddr,
    /// The host name agents reach this process at.
    #[arg(long)]
    pub advertised_host: Option<String>,
    /// The brigade-executor binary (default: next to this one).
    #[arg(long)]
    pub executor: Option<PathBuf>,
    /// Overrides the master's heartbeat interval, in milliseconds (tests).
    #[arg(long)]
    pub heartbeat_ms: Option<u64>,
    /// How often the processor source is read without a reported change, in milliseconds.
    #[arg(long, default_value_t = 5000)]
    pub poll_ms: u64,
    /// How long a changed, stopped or removed processor may take to drain, in seconds.
    #[arg(long, default_value_t = 60)]
    pub drain_timeout_secs: u64,
    /// Run as one of several instances with leader election in etcd (needs --etcd): only the
    /// leader runs process schedulers and writes, fenced by its term; standbys proxy the API
    /// to it.
    #[arg(long, requires = "etcd")]
    pub ha: bool,
    /// The leader key in etcd.
    #[arg(long, default_value = crate::general::ha::DEFAULT_LEADER_KEY)]
    pub leader_key: String,
    /// The leader's lease TTL, in seconds (a standby takes over within it).
    #[arg(long, default_value_t = 10)]
    pub leader_ttl_secs: u64,
}

/// Runs the meta scheduler until Ctrl-C or SIGTERM.
pub async fn run(args: SchedulerArgs) -> Result<(), String> {
    let etcd_store: Option<EtcdStore> = match &args.etcd {
        Some(endpoints) => Some(
            EtcdStore::builder(endpoints.split(',').map(str::trim))
                .connect()
                .await
                .map_err(|e| format!("etcd {endpoints}: {e}"))?,
        ),
        None => None,
    };
    // With leader election every write (task records, framework ids, positions, processor
    // documents) goes through the fenced view of the current term.
    let fenced = match (&etcd_store, args.ha) {
        (Some(store), true) => Some(TermStore::new(
            Arc::new(store.clone()) as Arc<dyn Store>,
            args.leader_key.clone(),
        )),
        _ => None,
    };
    let etcd: Option<Arc<dyn Store>> = match (&fenced, &etcd_store) {
        (Some(fenced), _) => Some(Arc::new(fenced.clone()) as Arc<dyn Store>),
        (None, Some(store)) => Some(Arc::new(store.clone()) as Arc<dyn Store>),
        (None, None) => None,
    };
    let store: Arc<dyn Store> = etcd
        .clone()
        .unwrap_or_else(|| Arc::new(crate::pipeline::record::memory_store()));
    let (source, watch_path, watch_store): (Arc<dyn ProcessorSource>, _, _) =
        match (&args.processors, &etcd) {
            (Some(path), _) => (Arc::new(FileSource::new(path)), Some(path.clone()), None),
            (None, Some(etcd)) => {
                let source = StoreSource::new(etcd.clone(), args.etcd_prefix.clone());
                (Arc::new(source.clone()), None, Some(source))
            }
            (None, None) => return Err("give --processors PATH or --etcd".into()),
        };
    let mut scheduler = SchedulerConfig::new(
        args.master,
        KafkaConfig::new(args.brokers),
        store,
        Default::default(),
    );
    scheduler.heartbeat_interval = args.heartbeat_ms.map(Duration::from_millis);
    let mut config = GeneralConfig::new(
        BrigadeConfig {
            scheduler,
            executor_path: args.executor,
            bind: args.bind,
            advertised_host: args.advertised_host,
        },
        source,
    );
    config.watch_path = watch_path;
    config.watch_store = watch_store;
    config.poll_interval = Duration::from_millis(args.poll_ms.max(10));
    config.drain_timeout = Duration::from_secs(args.drain_timeout_secs);
    config.standby = args.ha;
    let general = General::start(config, |shared| Some(super::routes(shared)))
        .await
        .map_err(|e| e.to_string())?;
    let election = match fenced {
        Some(writes) => crate::general::ha::run_election(
            writes,
            general.shared().clone(),
            &args.leader_key,
            general.url(),
            Duration::from_secs(args.leader_ttl_secs.max(1)),
        )
        .map_err(|e| format!("leader election: {e}"))?,
        _ => Vec::new(),
    };
    // The first line on stdout names the server, for scripts and tests.
    println!("brigade scheduler listening on {}", general.url());
    tracing::info!(url = %general.url(), "brigade scheduler up");
    wait_for_signal().await;
    eprintln!("brigade: stopping");
    for task in election {
        task.abort();
    }
    general.shutdown().await;
    Ok(())
}

async fn wait_for_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
