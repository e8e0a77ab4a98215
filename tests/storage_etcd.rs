//! `EtcdStore` against real etcd processes misbehaving: a restart in the middle of a stream
//! of writes (with a watch running), a three-member cluster losing a member, an unreachable
//! cluster at startup, refused credentials.
#![cfg(feature = "etcd")]

#[path = "common/etcd.rs"]
mod etcd_support;

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use etcd_support::{EtcdCluster, free_port};
use futures::StreamExt;
use mesos_sdk::storage::{Error, EtcdStore, EventKind, Store};

const REQUEST_TIMEOUT: Duration = Duration::from_millis(800);

async fn short_timeout_store(endpoints: Vec<String>) -> EtcdStore {
    EtcdStore::builder(endpoints)
        .connect_timeout(Duration::from_secs(2))
        .request_timeout(REQUEST_TIMEOUT)
        .connect()
        .await
        .expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_during_writes_loses_no_acknowledged_write_and_the_watch_resumes() {
    let mut etcd = EtcdCluster::single().await;
    let store = short_timeout_store(etcd.endpoints()).await;
    let from = store.current_revision().await.unwrap() + 1;
    let mut watch = store.watch("/restart/", from).await.unwrap();

    let mut acknowledged = Vec::new();
    let mut failed = 0;
    let mut i = 0;
    let mut restarted = false;
    let mut after_restart = 0;
    while after_restart < 20 {
        let key = format!("/restart/{i:05}");
        // A hang guard only: every write must come back on its own within its timeout.
        let result = tokio::time::timeout(
            REQUEST_TIMEOUT * 3,
            store.put(&key, Bytes::from(format!("{i}")), None),
        )
        .await
        .unwrap_or_else(|_| panic!("write {i} hung past its request timeout"));
        match result {
            Ok(_) => {
                acknowledged.push(key);
                if restarted {
                    after_restart += 1;
                }
            }
            Err(e @ (Error::Unavailable { .. } | Error::Timeout { .. })) => {
                assert!(
                    restarted || i >= 30,
                    "write {i} failed before the outage: {e}"
                );
                failed += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(other) => panic!("write {i}: unexpected error {other}"),
        }
        i += 1;
        if i == 30 {
            etcd.members[0].kill();
            // Writes during the outage.
            for j in 0..3 {
                let outage = store.put("/restart/outage", Bytes::from(format!("{j}")), None);
                let r = tokio::time::timeout(REQUEST_TIMEOUT * 3, outage)
                    .await
                    .expect("a write during the outage hung");
                assert!(
                    matches!(r, Err(Error::Unavailable { .. })),
                    "write during the outage: {r:?}"
                );
            }
            etcd.members[0].restart();
            restarted = true;
        }
    }
    tracing::info!(acknowledged = acknowledged.len(), failed, "writes done");

    // Every acknowledged write is there.
    for key in &acknowledged {
        assert!(
            store.get(key).await.unwrap().is_some(),
            "acknowledged {key} lost"
        );
    }
    // The watch saw every acknowledged write exactly once, in revision order.
    let wanted: BTreeSet<&String> = acknowledged.iter().collect();
    let mut seen = BTreeSet::new();
    let mut last_revision = 0;
    while !wanted.iter().all(|k| seen.contains(*k)) {
        let event = tokio::time::timeout(Duration::from_secs(10), watch.next())
            .await
            .expect("watch stalled after the restart")
            .expect("watch ended")
            .expect("watch error");
        assert!(
            event.revision() > last_revision,
            "event repeated or out of order"
        );
        last_revision = event.revision();
        assert_eq!(event.kind, EventKind::Put);
        assert!(
            seen.insert(event.kv.key.clone()),
            "{} seen twice",
            event.kv.key
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_member_cluster_survives_losing_a_member() {
    let mut etcd = EtcdCluster::start(3).await;
    let store = etcd.store().await;
    let from = store.current_revision().await.unwrap() + 1;
    let mut watch = store.watch("/cluster/", from).await.unwrap();
    for i in 0..10 {
        store
            .put(&format!("/cluster/{i:03}"), Bytes::from("before"), None)
            .await
            .unwrap();
    }
    etcd.members[0].kill();
    // Reads and writes go on; a request caught on the dying member may fail once, transiently.
    let mut transient = 0;
    for i in 10..40 {
        let key = format!("/cluster/{i:03}");
        let mut attempts = 0;
        loop {
            attempts += 1;
            match store.put(&key, Bytes::from("after"), None).await {
                Ok(_) => break,
                Err(e) if e.is_transient() && attempts < 5 => transient += 1,
                Err(e) => panic!("write {i} after losing a member: {e}"),
            }
        }
        assert_eq!(
            store.get(&key).await.unwrap().unwrap().value.as_ref(),
            b"after"
        );
    }
    tracing::info!(
        transient,
        "transient failures while the client moved to live members"
    );
    let page = store.range("/cluster/", Default::default()).await.unwrap();
    assert_eq!(page.kvs.len(), 40);
    let mut seen = 0;
    while seen < 40 {
        let event = tokio::time::timeout(Duration::from_secs(10), watch.next())
            .await
            .expect("watch stalled")
            .expect("watch ended")
            .expect("watch error");
        assert_eq!(event.kv.key, format!("/cluster/{seen:03}"));
        seen += 1;
    }
}

#[tokio::test]
async fn unreachable_etcd_at_startup_names_the_endpoints() {
    let endpoints = vec![
        format!("http://127.0.0.1:{}", free_port()),
        format!("http://127.0.0.1:{}", free_port()),
    ];
    let result = EtcdStore::builder(endpoints.clone())
        .connect_timeout(Duration::from_millis(500))
        .connect()
        .await;
    match result {
        Err(e @ Error::Unavailable { .. }) => {
            let text = e.to_string();
            for endpoint in &endpoints {
                assert!(text.contains(endpoint), "{text} does not name {endpoint}");
            }
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(matches!(
        EtcdStore::builder(Vec::<String>::new()).connect().await,
        Err(Error::Config { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_are_a_clear_error() {
    let etcd = EtcdCluster::single().await;
    let store = etcd.store().await;
    let mut admin = store.client().clone();
    admin
        .user_add("root", "right-password", None)
        .await
        .unwrap();
    admin.user_grant_role("root", "root").await.unwrap();
    admin.auth_enable().await.unwrap();

    let wrong = EtcdStore::builder(etcd.endpoints())
        .user("root", "wrong-password")
        .connect()
        .await;
    match wrong {
        Err(e @ Error::Unauthenticated { .. }) => {
            assert!(e.to_string().contains(&etcd.endpoint()), "{e}");
        }
        other => panic!("expected Unauthenticated, got {other:?}"),
    }
    let right = EtcdStore::builder(etcd.endpoints())
        .user("root", "right-password")
        .connect()
        .await
        .unwrap();
    right.put("/auth/k", Bytes::from("v"), None).await.unwrap();
    // The unauthenticated store is refused now.
    let refused = store.get("/auth/k").await;
    assert!(
        matches!(refused, Err(Error::Unauthenticated { .. })),
        "{refused:?}"
    );
}

#[path = "common/tls_fixtures.rs"]
mod tls_fixtures;

/// etcd serving clients over TLS (the test CA's `localhost` / `127.0.0.1` certificate): a
/// store trusting that CA reads, writes, watches and keeps a lease; a store trusting another
/// certificate fails at connect with `Unavailable` naming the endpoint, at once, not after a
/// request timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_the_right_ca_works_and_a_wrong_ca_is_a_clear_error() {
    let etcd = EtcdCluster::single_tls(
        tls_fixtures::SERVER_CERT_PEM,
        tls_fixtures::SERVER_KEY_PEM,
        tls_fixtures::CA_PEM,
    )
    .await;
    let endpoint = etcd.endpoint();
    assert!(endpoint.starts_with("https://"), "{endpoint}");

    let store = etcd.store().await;
    let from = store.current_revision().await.unwrap() + 1;
    let mut watch = store.watch("/tls/", from).await.unwrap();
    let lease = store.grant_lease(Duration::from_secs(30)).await.unwrap();
    store
        .put("/tls/k", Bytes::from("over tls"), Some(lease.id))
        .await
        .unwrap();
    assert_eq!(
        store.get("/tls/k").await.unwrap().unwrap().value,
        Bytes::from("over tls")
    );
    let event = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .expect("watch event in time")
        .expect("watch open")
        .expect("watch event");
    assert_eq!(event.kind, EventKind::Put);
    assert!(store.keep_alive(lease.id).await.unwrap() >= Duration::from_secs(29));
    store.revoke_lease(lease.id).await.unwrap();

    // The server certificate itself as the only trusted certificate: it did not sign itself.
    let started = std::time::Instant::now();
    let wrong = EtcdStore::builder(etcd.endpoints())
        .tls_ca_pem(tls_fixtures::SERVER_CERT_PEM)
        .connect_timeout(Duration::from_secs(3))
        .connect()
        .await;
    match wrong {
        Err(e @ Error::Unavailable { .. }) => {
            assert!(e.to_string().contains(&endpoint), "{e}");
            println!("wrong CA after {:?}: {e}", started.elapsed());
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    // No CA at all for an https endpoint: the system roots do not know the test CA.
    let plain = EtcdStore::builder(etcd.endpoints())
        .connect_timeout(Duration::from_secs(3))
        .connect()
        .await;
    assert!(matches!(plain, Err(Error::Unavailable { .. })), "{plain:?}");
}
