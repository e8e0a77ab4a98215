//! The framework's use of its store, on mesos-local: status updates that arrive together are
//! stored in fewer transactions than there are updates (batched, acknowledged after the
//! store); a scheduler that lost its store adopts its own running tasks (reported by
//! reconciliation) under [`UnknownTaskPolicy::Adopt`] instead of launching them again.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use mesos_local::cluster::LocalCluster;
use mesos_sdk::framework::{
    Context, Controller, ControllerError, DefaultController, Framework, FrameworkBuilder,
    FrameworkHandle, UnknownTaskPolicy,
};
use mesos_sdk::resourcemgr::etiquette::EtiquetteConfig;
use mesos_sdk::scheduler::AckToken;
use mesos_sdk::storage::{
    KeyValue, Lease, LeaseId, MemoryStore, RangePage, RangeRequest, Result as StoreResult, Store,
    Txn, TxnResponse, WatchStream,
};
use mesos_sdk::taskmgr::spec::TaskSpec;
use mesos_sdk::taskmgr::{Phase, ReconcileConfig, TaskRecord};
use mesos_sdk::v1::TaskStatus;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(60);

async fn cluster(resources: &str) -> LocalCluster {
    LocalCluster::builder()
        .agents(2)
        .resources(resources)
        .heartbeat_interval(Duration::from_millis(300))
        .allocation_interval(Duration::from_millis(20))
        .status_update_retry(Duration::from_millis(100), Duration::from_millis(400))
        .executor_shutdown_grace_period(Duration::from_millis(300))
        .start()
        .await
        .expect("local cluster starts")
}

fn builder(cluster: &LocalCluster, name: &str) -> FrameworkBuilder {
    Framework::builder(cluster.master_url(), name)
        .tick(Duration::from_millis(50))
        .reconcile(ReconcileConfig {
            retry_min: Duration::from_millis(200),
            retry_max: Duration::from_secs(1),
            implicit_interval: Duration::from_secs(60),
            launch_timeout: Duration::from_secs(10),
        })
        .etiquette(EtiquetteConfig {
            revive_burst: 100,
            revive_interval: Duration::from_millis(10),
            refuse: Duration::from_millis(200),
            ..EtiquetteConfig::default()
        })
        .scheduler(|s| s.reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200)))
}

async fn until(framework: &FrameworkHandle, what: &str, done: impl Fn(&[TaskRecord]) -> bool) {
    let wait = async {
        loop {
            if done(&framework.tasks().tasks().await) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    if timeout(WAIT, wait).await.is_err() {
        panic!(
            "timed out waiting for {what}: {:#?}",
            framework.tasks().tasks().await
        );
    }
}

/// A memory store that counts transactions.
#[derive(Debug, Default)]
struct Counting {
    inner: MemoryStore,
    txns: AtomicUsize,
}

#[async_trait::async_trait]
impl Store for Counting {
    async fn get(&self, key: &str) -> StoreResult<Option<KeyValue>> {
        self.inner.get(key).await
    }
    async fn put(&self, key: &str, value: Bytes, lease: Option<LeaseId>) -> StoreResult<i64> {
        self.txns.fetch_add(1, Ordering::SeqCst);
        self.inner.put(key, value, lease).await
    }
    async fn delete(&self, key: &str) -> StoreResult<bool> {
        self.inner.delete(key).await
    }
    async fn range(&self, prefix: &str, request: RangeRequest) -> StoreResult<RangePage> {
        self.inner.range(prefix, request).await
    }
    async fn txn(&self, txn: Txn) -> StoreResult<TxnResponse> {
        self.txns.fetch_add(1, Ordering::SeqCst);
        self.inner.txn(txn).await
    }
    async fn watch(&self, prefix: &str, from_revision: i64) -> StoreResult<WatchStream> {
        self.inner.watch(prefix, from_revision).await
    }
    async fn grant_lease(&self, ttl: Duration) -> StoreResult<Lease> {
        self.inner.grant_lease(ttl).await
    }
    async fn keep_alive(&self, lease: LeaseId) -> StoreResult<Duration> {
        self.inner.keep_alive(lease).await
    }
    async fn revoke_lease(&self, lease: LeaseId) -> StoreResult<()> {
        self.inner.revoke_lease(lease).await
    }
    async fn compact(&self, revision: i64) -> StoreResult<()> {
        self.inner.compact(revision).await
    }
    async fn current_revision(&self) -> StoreResult<i64> {
        self.inner.current_revision().await
    }
}

/// Counts the updates, then the default handling.
#[derive(Default)]
struct CountUpdates(AtomicUsize);

#[async_trait::async_trait]
impl Controller for CountUpdates {
    async fn update(
        &self,
        ctx: &Context,
        status: TaskStatus,
        ack: Option<AckToken>,
    ) -> Result<(), ControllerError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        ctx.record_update(self, status, ack).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_that_arrive_together_are_stored_in_one_transaction() {
    let cluster = cluster("cpus:8;mem:4096;disk:1024;ports:[31000-31100]").await;
    let store = Arc::new(Counting::default());
    let updates = Arc::new(CountUpdates::default());
    let framework = builder(&cluster, "batched")
        .store(store.clone())
        .task(
            TaskSpec::new("true")
                .instances(100)
                .shell("true")
                .cpus(0.01)
                .mem(4.0),
        )
        .start(updates.clone())
        .await
        .expect("framework starts");
    let summary = timeout(WAIT, framework.settled()).await.expect("settles");
    assert_eq!(summary.done, 100, "{summary:?}");
    let updates = updates.0.load(Ordering::SeqCst);
    let txns = store.txns.load(Ordering::SeqCst);
    println!("{updates} updates stored in {txns} transactions (launches and specs included)");
    // One transaction per update (and more for launches and restarts) without batching.
    assert!(updates >= 200, "{updates} updates");
    assert!(txns < updates, "{txns} transactions for {updates} updates");
    framework.teardown().await.expect("teardown");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduler_that_lost_its_store_adopts_its_running_tasks() {
    // Each instance fills an agent, so the second scheduler can launch nothing before
    // reconciliation reports the running tasks.
    let cluster = cluster("cpus:2;mem:1024;disk:1024;ports:[31000-31100]").await;
    let spec = || {
        TaskSpec::new("big")
            .instances(2)
            .shell("sleep 1000")
            .cpus(1.5)
            .mem(64.0)
    };
    let first = builder(&cluster, "adopting")
        .task(spec())
        .start(DefaultController)
        .await
        .expect("first framework starts");
    until(&first, "both running", |r| {
        r.len() == 2 && r.iter().all(|r| r.state.as_deref() == Some("TASK_RUNNING"))
    })
    .await;
    let ids: Vec<String> = first
        .tasks()
        .tasks()
        .await
        .into_iter()
        .filter_map(|r| r.task_id)
        .collect();
    let framework_id = first.scheduler().framework_id().expect("an id").value;
    first.stop().await;
    drop(first);

    let second = builder(&cluster, "adopting")
        .store(Arc::new(MemoryStore::new()))
        .framework_id(framework_id)
        .unknown_tasks(UnknownTaskPolicy::Adopt)
        .task(spec())
        .start(DefaultController)
        .await
        .expect("second framework starts");
    until(&second, "both adopted", |r| {
        r.len() == 2
            && r.iter().all(|r| {
                r.phase == Phase::Active
                    && r.reason.as_deref() == Some("adopted")
                    && ids.contains(r.task_id.as_ref().expect("an id"))
            })
    })
    .await;
    // Nothing else was launched.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let records = second.tasks().tasks().await;
    assert!(
        records
            .iter()
            .all(|r| ids.contains(r.task_id.as_ref().expect("an id")) && r.restarts == 0),
        "{records:#?}"
    );
    second.teardown().await.expect("teardown");
    cluster.shutdown().await;
}
