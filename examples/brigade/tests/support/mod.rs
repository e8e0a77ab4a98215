//! Test support for the pipeline tests: a real broker (`tansu`), mesos-local, real etcd, and
//! helpers to produce input and read back output and error records.
#![allow(dead_code)]

pub mod etcd;
pub mod kafka;
pub mod procs;
pub mod tansu;

use std::sync::Arc;
use std::time::Duration;

use brigade::kafka::KafkaConfig;
use brigade::pipeline::record::Records;
use brigade::pipeline::{Brigade, BrigadeConfig, SchedulerConfig};
use mesos_local::cluster::LocalCluster;
use mesos_sdk::storage::{MemoryStore, Store};

/// The executor binary cargo built for this package.
pub fn executor_binary() -> std::path::PathBuf {
    env!("CARGO_BIN_EXE_brigade-executor").into()
}

/// A mesos-local cluster tuned for tests (fast allocation, heartbeats, update retries).
pub async fn local_cluster(work_dir: &std::path::Path) -> LocalCluster {
    LocalCluster::builder()
        .agents(1)
        .resources("cpus:8;mem:16384;disk:20000;ports:[31000-32000]")
        .work_dir(work_dir)
        .allocation_interval(Duration::from_millis(50))
        .heartbeat_interval(Duration::from_millis(500))
        .status_update_retry(Duration::from_millis(500), Duration::from_secs(2))
        .start()
        .await
        .expect("mesos-local starts")
}

/// Scheduler settings for tests against `master` and `brokers`, with `store`.
pub fn scheduler_config(
    master: &str,
    brokers: &str,
    store: Option<Arc<dyn Store>>,
) -> SchedulerConfig {
    let store = store.unwrap_or_else(|| Arc::new(MemoryStore::new()));
    let mut config =
        SchedulerConfig::new(master, KafkaConfig::new(brokers), store, Default::default());
    config.heartbeat_interval = Some(Duration::from_millis(500));
    config.revive_interval = Duration::from_millis(100);
    config.decline_refuse = Duration::from_secs(5);
    config.kill_grace = Duration::from_secs(5);
    config
}

/// A Brigade with the test executor and `config`.
pub async fn brigade(config: SchedulerConfig) -> Brigade {
    Brigade::start(BrigadeConfig {
        scheduler: config,
        executor_path: Some(executor_binary()),
        bind: "127.0.0.1:0".parse().expect("address"),
        advertised_host: None,
    })
    .await
    .expect("brigade starts")
}

/// Logs to the test output when RUST_LOG is set.
pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// Waits until `store` holds no task record or result batch of `processor` (once every offset
/// is committed, both are deleted), as a restarted scheduler would read them
/// ([`Records::load`]); panics with what is left after `within`.
pub async fn wait_for_no_records(store: &Arc<dyn Store>, processor: &str, within: Duration) {
    let records = Records::new(store.clone(), processor);
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let left = records.load().await.expect("store readable");
        if left.tasks.is_empty() && left.batches.is_empty() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "records left after every offset was committed: tasks {:?}, batches {:?}",
            left.tasks.iter().map(|t| &t.task_id).collect::<Vec<_>>(),
            left.batches.iter().map(|(id, _)| id).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
