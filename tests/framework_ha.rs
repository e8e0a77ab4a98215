//! `Framework::run_ha` (the framework under leader election, term after term) against
//! mesos-local over real HTTP with real task processes and one shared `MemoryStore`: a leader
//! whose term ends (its leader key deleted) campaigns again and runs a second term that finds
//! its tasks instead of launching them again; a standby takes over when the leader's
//! `run_ha` is dropped, with the same framework id and the same tasks, launching none;
//! with `AfterTerm::Exit`, `run_ha` returns the term's end.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use mesos_local::cluster::LocalCluster;
use mesos_sdk::client::Client;
use mesos_sdk::framework::{
    Context, Controller, ControllerError, DefaultController, Framework, FrameworkBuilder,
};
use mesos_sdk::ha::{AfterTerm, ElectionConfig, HaConfig, HaRunner, LossReason, TermEnd};
use mesos_sdk::resourcemgr::etiquette::EtiquetteConfig;
use mesos_sdk::scheduler::{AckMode, FrameworkInfoBuilder};
use mesos_sdk::storage::{MemoryStore, Namespace, Store, StoreExt};
use mesos_sdk::taskmgr::ReconcileConfig;
use mesos_sdk::taskmgr::spec::TaskSpec;
use mesos_sdk::v1::FrameworkId;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

/// How long a test waits for any one outcome.
const WAIT: Duration = Duration::from_secs(60);
/// The framework's name (and store namespace).
const NAME: &str = "ha-controller";

async fn cluster() -> LocalCluster {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    LocalCluster::builder()
        .agents(2)
        .resources("cpus:4;mem:2048;disk:1024;ports:[31000-31100]")
        .heartbeat_interval(Duration::from_millis(300))
        .allocation_interval(Duration::from_millis(20))
        .status_update_retry(Duration::from_millis(100), Duration::from_millis(400))
        .executor_shutdown_grace_period(Duration::from_millis(500))
        .start()
        .await
        .expect("local cluster starts")
}

fn namespace() -> Namespace {
    Namespace::new(NAME).expect("namespace")
}

fn runner(
    cluster: &LocalCluster,
    store: &MemoryStore,
    id: &str,
    after_term: AfterTerm,
) -> HaRunner<MemoryStore> {
    let mut election = ElectionConfig::with_ttl(
        namespace().key("leader"),
        id,
        format!("http://{id}"),
        Duration::from_secs(2),
    );
    election.keep_alive_interval = Duration::from_millis(300);
    election.safety_margin = Duration::from_millis(500);
    election.retry_interval = Duration::from_millis(50);
    let mut config = HaConfig::new(election, &namespace());
    config.after_term = after_term;
    let client = Client::builder()
        .endpoint(cluster.master_url())
        .call_timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let framework = FrameworkInfoBuilder::new(user, NAME)
        .failover_timeout(Duration::from_secs(3600))
        .build();
    HaRunner::new(store.clone(), config, client, framework)
        .expect("runner")
        .configure_scheduler(|s| {
            s.ack_mode(AckMode::Explicit)
                .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200))
        })
}

/// The default controller, counting its subscriptions (one per term).
struct Counting(Arc<AtomicU32>);

#[async_trait]
impl Controller for Counting {
    async fn connected(
        &self,
        ctx: &Context,
        framework_id: &FrameworkId,
    ) -> Result<(), ControllerError> {
        let result = DefaultController.connected(ctx, framework_id).await;
        self.0.fetch_add(1, Ordering::SeqCst);
        result
    }
}

/// The master's `/master/state` document.
async fn master_state(cluster: &LocalCluster) -> Value {
    let addr = cluster.master().addr();
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"GET /master/state HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await
        .expect("request");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("response");
    let text = String::from_utf8_lossy(&response);
    let body = text.split("\r\n\r\n").nth(1).expect("a body");
    serde_json::from_str(body).expect("JSON state")
}

/// Every task of the framework `id` the master knows, with its state.
async fn master_tasks(cluster: &LocalCluster, id: &str) -> Vec<(String, String)> {
    let doc = master_state(cluster).await;
    let mut out = Vec::new();
    for framework in doc["frameworks"].as_array().into_iter().flatten() {
        if framework["id"] != id {
            continue;
        }
        for list in ["tasks", "completed_tasks"] {
            for task in framework[list].as_array().into_iter().flatten() {
                out.push((
                    task["id"].as_str().unwrap_or_default().to_owned(),
                    task["state"].as_str().unwrap_or_default().to_owned(),
                ));
            }
        }
    }
    out
}

async fn stored_id(store: &MemoryStore) -> Option<String> {
    let id: Option<FrameworkId> = store
        .get_proto(&namespace().key("framework-id"))
        .await
        .expect("read the framework id");
    id.map(|id| id.value)
}

/// Polls until `done` answers something.
async fn until<T, F, Fut>(what: &str, mut done: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let wait = async {
        loop {
            if let Some(value) = done().await {
                return value;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    timeout(WAIT, wait)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// Waits until the master shows exactly three tasks of `id`, all running; answers their ids.
async fn three_running(cluster: &LocalCluster, id: &str) -> BTreeSet<String> {
    until("three running tasks", || async {
        let tasks = master_tasks(cluster, id).await;
        (tasks.len() == 3 && tasks.iter().all(|(_, state)| state == "TASK_RUNNING"))
            .then(|| tasks.into_iter().map(|(id, _)| id).collect())
    })
    .await
}

/// After a new term subscribed: for a while (reconciliation rounds and many offer cycles),
/// the master keeps exactly the tasks `before`, all running: nothing was launched again.
async fn nothing_launched_again(cluster: &LocalCluster, id: &str, before: &BTreeSet<String>) {
    for _ in 0..20 {
        let tasks = master_tasks(cluster, id).await;
        let ids: BTreeSet<String> = tasks.iter().map(|(id, _)| id.clone()).collect();
        assert_eq!(&ids, before, "the tasks changed: {tasks:?}");
        assert!(
            tasks.iter().all(|(_, state)| state == "TASK_RUNNING"),
            "{tasks:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terms_follow_each_other_and_a_standby_takes_over_without_launching_again() {
    let cluster = cluster().await;
    let store = MemoryStore::new();

    // Instance a leads and launches the three instances.
    let a = Arc::new(runner(&cluster, &store, "a", AfterTerm::Campaign));
    let a_terms = Arc::new(AtomicU32::new(0));
    let a_task = {
        let (a, terms, url) = (a.clone(), a_terms.clone(), cluster.master_url());
        tokio::spawn(async move {
            Framework::run_ha(&a, move || (term_builder(&url), Counting(terms.clone()))).await
        })
    };
    let id = until("a's framework id stored", || async {
        stored_id(&store).await
    })
    .await;
    let first = three_running(&cluster, &id).await;

    // Its leader key vanishes: the term ends, a campaigns again and runs a second term,
    // which reconciles the three tasks and launches none.
    assert!(
        store
            .delete(&namespace().key("leader"))
            .await
            .expect("delete the leader key")
    );
    until("a's second term subscribed", || async {
        (a_terms.load(Ordering::SeqCst) >= 2).then_some(())
    })
    .await;
    nothing_launched_again(&cluster, &id, &first).await;
    assert_eq!(stored_id(&store).await.as_deref(), Some(id.as_str()));

    // A standby b; a's run_ha is dropped (its process shutting down): b leads, resumes the
    // same framework and launches nothing.
    let b = Arc::new(runner(&cluster, &store, "b", AfterTerm::Campaign));
    let b_terms = Arc::new(AtomicU32::new(0));
    let b_task = {
        let (b, terms, url) = (b.clone(), b_terms.clone(), cluster.master_url());
        tokio::spawn(async move {
            Framework::run_ha(&b, move || (term_builder(&url), Counting(terms.clone()))).await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(b_terms.load(Ordering::SeqCst), 0, "b leads while a does");
    a_task.abort();
    until("b leads and subscribed", || async {
        (b_terms.load(Ordering::SeqCst) >= 1).then_some(())
    })
    .await;
    let leader = b.leader().await.expect("leader").expect("someone leads");
    assert_eq!(leader.id, "b");
    nothing_launched_again(&cluster, &id, &first).await;
    assert_eq!(stored_id(&store).await.as_deref(), Some(id.as_str()));
    assert_eq!(a_terms.load(Ordering::SeqCst), 2);

    b_task.abort();
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_after_term_exit_run_ha_returns_the_end_of_the_term() {
    let cluster = cluster().await;
    let store = MemoryStore::new();
    let a = runner(&cluster, &store, "a", AfterTerm::Exit);
    let terms = Arc::new(AtomicU32::new(0));
    let url = cluster.master_url();
    let run = {
        let terms = terms.clone();
        async move { Framework::run_ha(&a, move || (term_builder(&url), Counting(terms.clone()))).await }
    };
    let run = tokio::spawn(run);
    let id = until("the framework id stored", || async {
        stored_id(&store).await
    })
    .await;
    three_running(&cluster, &id).await;
    store
        .delete(&namespace().key("leader"))
        .await
        .expect("delete the leader key");
    let end = timeout(WAIT, run)
        .await
        .expect("run_ha returns")
        .expect("joins")
        .expect("no error");
    assert_eq!(end, TermEnd::LeadershipLost(LossReason::KeyChanged));
    assert_eq!(terms.load(Ordering::SeqCst), 1);
    cluster.shutdown().await;
}

/// One term's builder: three long-running instances, quick timers (from the master's URL, so
/// the per-term closures borrow no cluster).
fn term_builder(url: &str) -> FrameworkBuilder {
    let spec = TaskSpec::new("sleeper")
        .instances(3)
        .shell("sleep 1000")
        .cpus(0.1)
        .mem(16.0);
    Framework::builder(url, NAME)
        .task(spec)
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
            ..EtiquetteConfig::default()
        })
}

/// The framework's server on a fixed port across terms: the first term's server is shut down
/// before the second term starts its own on the same port.
#[cfg(feature = "server")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_of_each_term_listens_on_the_same_port() {
    use mesos_sdk::server::Server;

    let cluster = cluster().await;
    let store = MemoryStore::new();
    // A fixed port as deployments use, below Linux's ephemeral range (32768-60999): a port
    // from that range, once free, may become the local port of an outgoing connection (the
    // next term's SUBSCRIBE) and then cannot be bound again.
    let start = 20_000 + (std::process::id() % 5_000) as u16;
    let port = (start..30_000)
        .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .expect("a free port below the ephemeral range");
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let a = runner(&cluster, &store, "a", AfterTerm::Campaign);
    let terms = Arc::new(AtomicU32::new(0));
    let url = cluster.master_url();
    let run = {
        let terms = terms.clone();
        tokio::spawn(async move {
            Framework::run_ha(&a, move || {
                let builder = term_builder(&url).server(Server::builder().bind(addr));
                (builder, Counting(terms.clone()))
            })
            .await
        })
    };
    let health = || async move {
        let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        stream
            .write_all(b"GET /health HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .await
            .ok()?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.ok()?;
        String::from_utf8_lossy(&response)
            .starts_with("HTTP/1.0 200")
            .then_some(())
    };
    until("the first term subscribed and serves", || async {
        if terms.load(Ordering::SeqCst) >= 1 {
            health().await
        } else {
            None
        }
    })
    .await;
    store
        .delete(&namespace().key("leader"))
        .await
        .expect("delete the leader key");
    until("the second term subscribed and serves", || async {
        if terms.load(Ordering::SeqCst) >= 2 {
            health().await
        } else {
            None
        }
    })
    .await;
    assert!(!run.is_finished(), "run_ha ended: {:?}", run.await);
    run.abort();
    cluster.shutdown().await;
}
