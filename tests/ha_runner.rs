//! `HaRunner` in one process against the embedded cluster (`mesos_local::cluster::LocalCluster`
//! over real HTTP on loopback) and a `MemoryStore` on a manual clock: a standby takes over
//! from a leader whose term ended, with the same framework id (crashes are covered by the
//! process tests in `ha_process.rs`); `Framework failed over` ends a term without
//! resubscribing; `Framework has been removed` clears the stored id and is reported.

use std::time::Duration;

use futures::StreamExt;
use mesos_local::cluster::LocalCluster;
use mesos_sdk::client::Client;
use mesos_sdk::ha::{AfterTerm, ElectionConfig, HaConfig, HaError, HaRunner, Term, TermEnd};
use mesos_sdk::scheduler::{FrameworkInfoBuilder, Scheduler, SchedulerEvent};
use mesos_sdk::storage::{MemoryStore, Namespace, Store, StoreExt};
use mesos_sdk::v1::FrameworkId;

const WAIT: Duration = Duration::from_secs(20);

fn user() -> String {
    std::env::var("USER").unwrap_or_else(|_| "root".to_string())
}

async fn cluster() -> LocalCluster {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    LocalCluster::builder()
        .heartbeat_interval(Duration::from_millis(300))
        .allocation_interval(Duration::from_millis(50))
        .start()
        .await
        .expect("local cluster starts")
}

fn client(cluster: &LocalCluster) -> Client {
    Client::builder()
        .endpoint(cluster.master_url())
        .call_timeout(Duration::from_secs(5))
        .build()
        .expect("client")
}

fn runner(cluster: &LocalCluster, store: &MemoryStore, id: &str) -> HaRunner<MemoryStore> {
    let ns = Namespace::new("ha-runner-test").unwrap();
    let mut election = ElectionConfig::with_ttl(
        ns.key("leader"),
        id,
        format!("http://{id}"),
        Duration::from_secs(2),
    );
    election.keep_alive_interval = Duration::from_millis(300);
    election.safety_margin = Duration::from_millis(500);
    election.retry_interval = Duration::from_millis(50);
    let mut config = HaConfig::new(election, &ns);
    config.after_term = AfterTerm::Exit;
    let framework = FrameworkInfoBuilder::new(user(), "ha-runner-test")
        .failover_timeout(Duration::from_secs(3600))
        .build();
    HaRunner::new(store.clone(), config, client(cluster), framework)
        .unwrap()
        .configure_scheduler(|b| {
            b.reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200))
        })
}

async fn connected<S: Store + Clone + 'static>(term: &mut Term<S>) -> FrameworkId {
    loop {
        match tokio::time::timeout(WAIT, term.next()).await {
            Ok(Some(SchedulerEvent::Connected { framework_id, .. })) => return framework_id,
            Ok(Some(_)) => {}
            other => panic!(
                "expected SUBSCRIBED, got {other:?}; term end {:?}",
                term.end()
            ),
        }
    }
}

async fn stored_id(store: &MemoryStore) -> Option<FrameworkId> {
    store
        .get_proto(
            &Namespace::new("ha-runner-test")
                .unwrap()
                .key("framework-id"),
        )
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standby_takes_over_a_finished_term_with_the_same_framework_id() {
    let cluster = cluster().await;
    let (store, _clock) = MemoryStore::with_manual_clock();
    let a = runner(&cluster, &store, "a");
    let b = runner(&cluster, &store, "b");

    let mut term_a = tokio::time::timeout(WAIT, a.lead()).await.unwrap().unwrap();
    assert!(
        term_a.framework_id.is_none(),
        "first leader subscribes as new"
    );
    let id = connected(&mut term_a).await;
    // Persisted through the fenced view as soon as connected.
    for _ in 0..100 {
        if stored_id(&store).await.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(stored_id(&store).await, Some(id.clone()));
    assert_eq!(
        b.leader().await.unwrap().unwrap().id,
        "a",
        "standbys know who leads"
    );

    let b_lead = tokio::spawn(async move {
        let term = b.lead().await;
        (b, term)
    });
    // a's term ends (its handler returned): it stops its scheduler and resigns.
    drop(term_a);
    let (b, term_b) = tokio::time::timeout(WAIT, b_lead).await.unwrap().unwrap();
    let mut term_b = term_b.unwrap();
    assert_eq!(
        term_b.framework_id.as_ref(),
        Some(&id),
        "loaded from the store"
    );
    assert_eq!(
        connected(&mut term_b).await,
        id,
        "resumed the same framework"
    );
    assert_eq!(term_b.end(), None);
    assert_eq!(b.leader().await.unwrap().unwrap().id, "b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_over_ends_the_term_and_removal_clears_the_id() {
    let cluster = cluster().await;
    let (store, _clock) = MemoryStore::with_manual_clock();
    let a = runner(&cluster, &store, "a");
    let mut term = tokio::time::timeout(WAIT, a.lead()).await.unwrap().unwrap();
    let id = connected(&mut term).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(stored_id(&store).await, Some(id.clone()));

    // An outsider subscribes with the same id: the master fails the leader's subscription over.
    let framework = FrameworkInfoBuilder::new(user(), "ha-runner-test")
        .id(id.value.clone())
        .failover_timeout(Duration::from_secs(3600))
        .build();
    let (outsider, mut outsider_events) = Scheduler::builder(client(&cluster), framework).start();
    loop {
        match tokio::time::timeout(WAIT, outsider_events.next())
            .await
            .unwrap()
        {
            Some(SchedulerEvent::Connected { .. }) => break,
            Some(_) => {}
            None => panic!("outsider stopped"),
        }
    }
    let end = tokio::time::timeout(WAIT, term.ended()).await.unwrap();
    assert!(matches!(end, TermEnd::FailedOver(_)), "{end:?}");
    assert!(
        !term.scheduler.is_connected(),
        "no resubscription after failover"
    );
    drop(term);

    // The outsider tears the framework down; the next leader learns it is removed.
    outsider.teardown().await.unwrap();
    let mut term = tokio::time::timeout(WAIT, a.lead()).await.unwrap().unwrap();
    assert_eq!(term.framework_id.as_ref(), Some(&id));
    let end = tokio::time::timeout(WAIT, term.ended()).await.unwrap();
    assert!(matches!(end, TermEnd::FrameworkRemoved(_)), "{end:?}");
    while term.next().await.is_some() {}
    drop(term);
    assert_eq!(stored_id(&store).await, None, "the stored id is cleared");
    assert_eq!(a.frameworks_removed(), 1);
    match tokio::time::timeout(WAIT, a.lead()).await.unwrap() {
        Err(HaError::FrameworkRemoved { message }) => {
            assert!(message.contains("removed"), "{message}")
        }
        other => panic!("expected FrameworkRemoved, got {other:?}"),
    }
}
