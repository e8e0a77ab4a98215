//! The `Store` conformance suite: the same cases run against `MemoryStore` (on a manual clock)
//! and, with the feature `etcd`, against a real etcd started by the test. Each case works under
//! its own key prefix, so the cases share one store.

#[cfg(feature = "etcd")]
#[path = "common/etcd.rs"]
mod etcd_support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use mesos_sdk::storage::{
    Compare, CompareOp, Error, EventKind, LeaseId, ManualClock, MemoryStore, Namespace, Namespaced,
    Op, OpResult, RangeRequest, Store, StoreExt, Txn, WatchEvent, WatchStream,
    types::MAX_VALUE_BYTES,
};

/// A store under test and the way time passes for its leases.
struct Backend {
    name: &'static str,
    store: Arc<dyn Store>,
    clock: Option<ManualClock>,
}

impl Backend {
    /// Lets `by` pass for lease expiry (manual clock, or real time for etcd).
    async fn elapse(&self, by: Duration) {
        match &self.clock {
            Some(clock) => clock.advance(by),
            None => tokio::time::sleep(by).await,
        }
    }
}

/// The next event, or a panic after 10 s.
async fn next_event(stream: &mut WatchStream) -> WatchEvent {
    match tokio::time::timeout(Duration::from_secs(10), stream.next()).await {
        Ok(Some(Ok(event))) => event,
        other => panic!("expected a watch event, got {other:?}"),
    }
}

/// Polls until `key` is gone (lease expiry on etcd runs on the server's own schedule).
async fn eventually_gone(b: &Backend, key: &str) {
    for _ in 0..100 {
        if b.store.get(key).await.expect("get").is_none() {
            return;
        }
        b.elapse(Duration::from_millis(100)).await;
    }
    panic!("{}: key {key} still there", b.name);
}

async fn put_get_delete(b: &Backend, p: &str) {
    let s = &b.store;
    let key = format!("{p}k");
    let before = s.current_revision().await.unwrap();
    let r1 = s.put(&key, Bytes::from("v1"), None).await.unwrap();
    assert!(r1 > before);
    let kv = s.get(&key).await.unwrap().unwrap();
    assert_eq!(
        (
            kv.value.as_ref(),
            kv.version,
            kv.create_revision,
            kv.mod_revision
        ),
        (&b"v1"[..], 1, r1, r1)
    );
    let r2 = s.put(&key, Bytes::from("v2"), None).await.unwrap();
    assert_eq!(r2, r1 + 1, "one write, one revision");
    let kv = s.get(&key).await.unwrap().unwrap();
    assert_eq!(
        (kv.version, kv.create_revision, kv.mod_revision),
        (2, r1, r2)
    );
    assert!(s.delete(&key).await.unwrap());
    let after_delete = s.current_revision().await.unwrap();
    assert!(
        !s.delete(&key).await.unwrap(),
        "second delete finds nothing"
    );
    assert_eq!(
        s.current_revision().await.unwrap(),
        after_delete,
        "no-op delete bumps nothing"
    );
    assert!(s.get(&key).await.unwrap().is_none());
    let r3 = s.put(&key, Bytes::from("again"), None).await.unwrap();
    let kv = s.get(&key).await.unwrap().unwrap();
    assert_eq!(
        (kv.version, kv.create_revision),
        (1, r3),
        "recreated key starts afresh"
    );
}

async fn invalid_input(b: &Backend, p: &str) {
    let s = &b.store;
    assert!(matches!(
        s.put("", Bytes::new(), None).await,
        Err(Error::InvalidKey { .. })
    ));
    assert!(matches!(s.get("").await, Err(Error::InvalidKey { .. })));
    let big = Bytes::from(vec![0u8; MAX_VALUE_BYTES + 1]);
    match s.put(&format!("{p}big"), big, None).await {
        Err(Error::InvalidValue { key, .. }) => assert_eq!(key, format!("{p}big")),
        other => panic!("{}: expected InvalidValue, got {other:?}", b.name),
    }
    let twice = Txn::new()
        .and_then(Op::put(format!("{p}a"), "1"))
        .and_then(Op::delete(format!("{p}a")));
    assert!(matches!(s.txn(twice).await, Err(Error::InvalidKey { .. })));
    assert!(
        s.get(&format!("{p}a")).await.unwrap().is_none(),
        "refused txn changed nothing"
    );
}

async fn range_pages(b: &Backend, p: &str) {
    let s = &b.store;
    for i in 0..5 {
        s.put(&format!("{p}r/{i}"), Bytes::from(format!("v{i}")), None)
            .await
            .unwrap();
    }
    s.put(&format!("{p}r0"), Bytes::from("outside"), None)
        .await
        .unwrap();
    let all = s
        .range(&format!("{p}r/"), RangeRequest::all())
        .await
        .unwrap();
    let keys: Vec<_> = all.kvs.iter().map(|kv| kv.key.clone()).collect();
    assert_eq!(
        keys,
        (0..5).map(|i| format!("{p}r/{i}")).collect::<Vec<_>>()
    );
    assert!(all.next.is_none());

    let first = s
        .range(&format!("{p}r/"), RangeRequest::limit(2))
        .await
        .unwrap();
    assert_eq!(first.kvs.len(), 2);
    // A write between pages is not seen: the pages are one snapshot.
    s.put(&format!("{p}r/3"), Bytes::from("changed"), None)
        .await
        .unwrap();
    s.put(&format!("{p}r/9"), Bytes::from("new"), None)
        .await
        .unwrap();
    let mut seen = first.kvs.clone();
    let mut next = first.next.clone();
    while let Some(c) = next {
        let page = s
            .range(
                &format!("{p}r/"),
                RangeRequest {
                    limit: Some(2),
                    continuation: Some(c),
                },
            )
            .await
            .unwrap();
        assert!(page.kvs.len() <= 2);
        assert_eq!(page.revision, first.revision);
        seen.extend(page.kvs);
        next = page.next;
    }
    let values: Vec<_> = seen
        .iter()
        .map(|kv| String::from_utf8_lossy(&kv.value).into_owned())
        .collect();
    assert_eq!(values, ["v0", "v1", "v2", "v3", "v4"]);
}

async fn transactions(b: &Backend, p: &str) {
    let s = &b.store;
    let k = format!("{p}t");
    let created = s.create(&k, Bytes::from("a"), None).await.unwrap();
    assert!(matches!(
        s.create(&k, Bytes::from("b"), None).await,
        Err(Error::CompareFailed { key }) if key == k
    ));
    let holds = [
        Compare::value(&k, CompareOp::Equal, "a"),
        Compare::value(&k, CompareOp::Greater, "0"),
        Compare::version(&k, CompareOp::Equal, 1),
        Compare::create_revision(&k, CompareOp::Equal, created),
        Compare::mod_revision(&k, CompareOp::Less, created + 1),
        Compare::lease(&k, CompareOp::Equal, 0),
        Compare::absent(format!("{p}missing")),
        Compare::version(format!("{p}missing"), CompareOp::Equal, 0),
    ];
    for c in holds {
        let r = s
            .txn(
                Txn::new()
                    .when(c.clone())
                    .and_then(Op::get(&k))
                    .or_else(Op::get(format!("{p}missing"))),
            )
            .await
            .unwrap();
        assert!(r.succeeded, "{}: {c:?} should hold", b.name);
        assert!(matches!(&r.results[..], [OpResult::Get(Some(kv))] if kv.key == k));
    }
    let fails = [
        Compare::value(&k, CompareOp::NotEqual, "a"),
        Compare::value(format!("{p}missing"), CompareOp::NotEqual, "x"),
        Compare::version(&k, CompareOp::Greater, 1),
        Compare::mod_revision(&k, CompareOp::Greater, created),
    ];
    for c in fails {
        let before = s.current_revision().await.unwrap();
        let r = s
            .txn(
                Txn::new()
                    .when(c.clone())
                    .and_then(Op::put(format!("{p}then"), "x"))
                    .or_else(Op::get(&k)),
            )
            .await
            .unwrap();
        assert!(!r.succeeded, "{}: {c:?} should fail", b.name);
        assert!(matches!(&r.results[..], [OpResult::Get(Some(_))]));
        assert_eq!(r.revision, before, "a read-only branch bumps nothing");
    }
    assert!(s.get(&format!("{p}then")).await.unwrap().is_none());

    // Several writes: one revision, results in order.
    let r = s
        .txn(
            Txn::new()
                .when(Compare::value(&k, CompareOp::Equal, "a"))
                .and_then(Op::put(format!("{p}x"), "1"))
                .and_then(Op::put(format!("{p}y"), "2"))
                .and_then(Op::delete(&k)),
        )
        .await
        .unwrap();
    assert!(r.succeeded);
    assert_eq!(
        r.results,
        [
            OpResult::Put,
            OpResult::Put,
            OpResult::Delete { deleted: 1 }
        ]
    );
    let x = s.get(&format!("{p}x")).await.unwrap().unwrap();
    let y = s.get(&format!("{p}y")).await.unwrap().unwrap();
    assert_eq!((x.mod_revision, y.mod_revision), (r.revision, r.revision));

    // A nested transaction: the outer compare guards the inner one.
    let inner = Txn::new()
        .when(Compare::value(format!("{p}x"), CompareOp::Equal, "1"))
        .and_then(Op::put(format!("{p}x"), "inner"));
    let r = s
        .txn(
            Txn::new()
                .when(Compare::absent(&k))
                .and_then(Op::Txn(Box::new(inner))),
        )
        .await
        .unwrap();
    assert!(r.succeeded);
    assert!(
        matches!(&r.results[..], [OpResult::Txn(t)] if t.succeeded && t.results == [OpResult::Put])
    );
    assert_eq!(
        s.get(&format!("{p}x"))
            .await
            .unwrap()
            .unwrap()
            .value
            .as_ref(),
        b"inner"
    );
}

async fn watches(b: &Backend, p: &str) {
    let s = &b.store;
    let r1 = s
        .put(&format!("{p}w/a"), Bytes::from("1"), None)
        .await
        .unwrap();
    s.put(&format!("{p}w/b"), Bytes::from("2"), None)
        .await
        .unwrap();
    s.put(&format!("{p}other"), Bytes::from("-"), None)
        .await
        .unwrap();
    let mut w = s.watch(&format!("{p}w/"), r1).await.unwrap();
    // History first.
    let e = next_event(&mut w).await;
    assert_eq!(
        (e.kind, e.kv.key.as_str(), e.revision()),
        (EventKind::Put, &*format!("{p}w/a"), r1)
    );
    assert_eq!(next_event(&mut w).await.kv.key, format!("{p}w/b"));
    // Then live changes, in order, with a transaction's events at one revision.
    let t = s
        .txn(
            Txn::new()
                .and_then(Op::put(format!("{p}w/c"), "3"))
                .and_then(Op::delete(format!("{p}w/a"))),
        )
        .await
        .unwrap();
    let c = next_event(&mut w).await;
    let a = next_event(&mut w).await;
    assert_eq!((c.kind, c.revision()), (EventKind::Put, t.revision));
    assert_eq!(
        (a.kind, a.kv.key.as_str(), a.revision()),
        (EventKind::Delete, &*format!("{p}w/a"), t.revision)
    );
    assert!(a.kv.value.is_empty() && a.kv.version == 0);
    let r = s
        .put(&format!("{p}w/b"), Bytes::from("3"), None)
        .await
        .unwrap();
    let e = next_event(&mut w).await;
    assert_eq!((e.kv.version, e.revision()), (2, r));
    // Nothing else arrived (the key outside the prefix was never sent).
    assert!(
        tokio::time::timeout(Duration::from_millis(200), w.next())
            .await
            .is_err()
    );
}

async fn leases(b: &Backend, p: &str) {
    let s = &b.store;
    let lease = s.grant_lease(Duration::from_secs(30)).await.unwrap();
    assert!(lease.ttl >= Duration::from_secs(30));
    let k = format!("{p}l");
    s.put(&k, Bytes::from("x"), Some(lease.id)).await.unwrap();
    assert_eq!(s.get(&k).await.unwrap().unwrap().lease, Some(lease.id));
    assert!(s.keep_alive(lease.id).await.unwrap() >= Duration::from_secs(29));
    let txn = Txn::new()
        .when(Compare::lease(&k, CompareOp::Equal, lease.id.0))
        .and_then(Op::get(&k));
    assert!(s.txn(txn).await.unwrap().succeeded);
    let from = s.current_revision().await.unwrap() + 1;
    let mut w = s.watch(&k, from).await.unwrap();
    s.revoke_lease(lease.id).await.unwrap();
    assert!(
        s.get(&k).await.unwrap().is_none(),
        "revoke deletes the lease's keys"
    );
    assert_eq!(next_event(&mut w).await.kind, EventKind::Delete);
    assert!(matches!(
        s.keep_alive(lease.id).await,
        Err(Error::LeaseNotFound { .. })
    ));
    assert!(matches!(
        s.revoke_lease(lease.id).await,
        Err(Error::LeaseNotFound { .. })
    ));
    assert!(matches!(
        s.put(&k, Bytes::from("y"), Some(lease.id)).await,
        Err(Error::LeaseNotFound { .. })
    ));

    // Expiry: a short lease not kept alive takes its keys with it.
    let short = s.grant_lease(Duration::from_secs(1)).await.unwrap();
    let kept = s.grant_lease(Duration::from_secs(30)).await.unwrap();
    s.put(&format!("{p}e1"), Bytes::from("1"), Some(short.id))
        .await
        .unwrap();
    s.put(&format!("{p}e2"), Bytes::from("2"), Some(kept.id))
        .await
        .unwrap();
    b.elapse(short.ttl + Duration::from_millis(500)).await;
    eventually_gone(b, &format!("{p}e1")).await;
    assert!(s.get(&format!("{p}e2")).await.unwrap().is_some());
    // A keep-alive on a lease whose TTL ran out says so; revoked or unknown leases are
    // "not found".
    let expired = s.keep_alive(short.id).await;
    assert!(
        matches!(expired, Err(Error::LeaseExpired { lease }) if lease == short.id.0),
        "{expired:?}"
    );
    assert!(matches!(
        s.revoke_lease(short.id).await,
        Err(Error::LeaseNotFound { .. })
    ));
    assert!(matches!(
        s.keep_alive(LeaseId(0x7fff_0000_0001)).await,
        Err(Error::LeaseNotFound { .. })
    ));
    s.revoke_lease(kept.id).await.unwrap();
}

async fn typed_values(b: &Backend, p: &str) {
    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Intent {
        task: String,
        cpus: f64,
    }
    let s = &b.store;
    let intent = Intent {
        task: "t1".into(),
        cpus: 0.5,
    };
    s.put_json(&format!("{p}json"), &intent, None)
        .await
        .unwrap();
    assert_eq!(
        s.get_json::<Intent>(&format!("{p}json")).await.unwrap(),
        Some(intent)
    );
    assert_eq!(
        s.get_json::<Intent>(&format!("{p}none")).await.unwrap(),
        None
    );
    s.put(
        &format!("{p}bad"),
        Bytes::from_static(b"\xff{not json"),
        None,
    )
    .await
    .unwrap();
    match s.get_json::<Intent>(&format!("{p}bad")).await {
        Err(Error::Decode { key, .. }) => assert_eq!(key, format!("{p}bad")),
        other => panic!("expected Decode, got {other:?}"),
    }
    let id = mesos_sdk::v1::FrameworkId {
        value: "fw-1".into(),
    };
    s.put_proto(&format!("{p}proto"), &id, None).await.unwrap();
    assert_eq!(
        s.get_proto::<mesos_sdk::v1::FrameworkId>(&format!("{p}proto"))
            .await
            .unwrap(),
        Some(id)
    );
    assert!(matches!(
        s.get_proto::<mesos_sdk::v1::FrameworkInfo>(&format!("{p}bad"))
            .await,
        Err(Error::Decode { .. })
    ));
}

async fn namespaces(b: &Backend, _p: &str) {
    assert!(matches!(
        Namespace::new("a/b"),
        Err(Error::InvalidKey { .. })
    ));
    assert!(matches!(Namespace::new(""), Err(Error::InvalidKey { .. })));
    let ns = Namespace::new(&format!("conformance-{}", b.name)).unwrap();
    let view = Namespaced::new(b.store.clone(), ns.clone());
    let key = view.key("framework-id");
    assert_eq!(
        key,
        format!("/mesos-sdk/conformance-{}/framework-id", b.name)
    );
    view.put(&key, Bytes::from("id"), None).await.unwrap();
    assert_eq!(view.get(&key).await.unwrap().unwrap().value.as_ref(), b"id");
    for outside in [
        "/mesos-sdk/other/framework-id",
        "/elsewhere",
        "framework-id",
    ] {
        assert!(matches!(
            view.get(outside).await,
            Err(Error::InvalidKey { .. })
        ));
        assert!(matches!(
            view.put(outside, Bytes::new(), None).await,
            Err(Error::InvalidKey { .. })
        ));
        assert!(matches!(
            view.watch(outside, 1).await,
            Err(Error::InvalidKey { .. })
        ));
        let txn = Txn::new()
            .when(Compare::absent(&key))
            .or_else(Op::delete(outside));
        assert!(matches!(view.txn(txn).await, Err(Error::InvalidKey { .. })));
    }
    assert_eq!(
        view.range(ns.prefix(), RangeRequest::all())
            .await
            .unwrap()
            .kvs
            .len(),
        1
    );
}

/// Runs last: compaction affects the whole store.
async fn compaction(b: &Backend, p: &str) {
    let s = &b.store;
    let k = format!("{p}c");
    let old = s.put(&k, Bytes::from("1"), None).await.unwrap();
    s.put(&k, Bytes::from("2"), None).await.unwrap();
    let at = s.put(&k, Bytes::from("3"), None).await.unwrap();
    let page = s.range(p, RangeRequest::limit(1)).await.unwrap();
    s.compact(at).await.unwrap();
    let mut w = s.watch(p, old).await.unwrap();
    match tokio::time::timeout(Duration::from_secs(10), w.next()).await {
        Ok(Some(Err(Error::Compacted { requested, .. }))) => assert_eq!(requested, old),
        other => panic!("{}: expected Compacted, got {other:?}", b.name),
    }
    assert!(w.next().await.is_none(), "a compacted watch ends");
    if let Some(c) = page.next {
        let r = s
            .range(
                p,
                RangeRequest {
                    limit: Some(1),
                    continuation: Some(c),
                },
            )
            .await;
        assert!(
            matches!(r, Err(Error::Compacted { .. })),
            "{}: {r:?}",
            b.name
        );
    }
    assert!(matches!(s.compact(old).await, Err(Error::Compacted { .. })));
    // The documented resynchronization: read everything, watch from the next revision.
    let all = s.range(p, RangeRequest::all()).await.unwrap();
    assert_eq!(
        all.kvs
            .iter()
            .find(|kv| kv.key == k)
            .unwrap()
            .value
            .as_ref(),
        b"3"
    );
    let mut w = s.watch(p, all.revision + 1).await.unwrap();
    let r = s.put(&k, Bytes::from("4"), None).await.unwrap();
    assert_eq!(next_event(&mut w).await.revision(), r);
}

/// Runs every case against `b`, each under its own prefix.
async fn suite(b: Backend) {
    macro_rules! run {
        ($($case:ident),*) => {$(
            tracing::info!(backend = b.name, case = stringify!($case), "conformance case");
            $case(&b, concat!("/conformance/", stringify!($case), "/")).await;
        )*};
    }
    run!(
        put_get_delete,
        invalid_input,
        range_pages,
        transactions,
        watches,
        leases,
        typed_values,
        namespaces,
        compaction
    );
}

#[tokio::test]
async fn memory_store_conforms() {
    let (store, clock) = MemoryStore::with_manual_clock();
    suite(Backend {
        name: "memory",
        store: Arc::new(store),
        clock: Some(clock),
    })
    .await;
}

#[tokio::test]
async fn memory_store_expires_leases_on_the_system_clock() {
    let store = MemoryStore::new();
    let lease = store.grant_lease(Duration::from_secs(1)).await.unwrap();
    store
        .put("/k", Bytes::from("v"), Some(lease.id))
        .await
        .unwrap();
    let mut w = store.watch("/k", 1).await.unwrap();
    assert_eq!(next_event(&mut w).await.kind, EventKind::Put);
    // The background task expires the lease without any further operation.
    assert_eq!(next_event(&mut w).await.kind, EventKind::Delete);
}

#[cfg(feature = "etcd")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_store_conforms() {
    let etcd = etcd_support::EtcdCluster::single().await;
    let store = etcd.store().await;
    suite(Backend {
        name: "etcd",
        store: Arc::new(store),
        clock: None,
    })
    .await;
}
