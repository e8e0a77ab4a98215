//! Fenced writes of Brigade General on a real etcd: two instances campaign
//! (`general::ha::run_election`), each writing through its [`TermStore`]. The leader's writes
//! (a task-record-like key, and a processor document through the store source the REST API
//! writes to) succeed; a standby's are refused. Then the leader freezes (its election tasks
//! are stopped, so it never learns that it lost, as a SIGSTOPped process would not) and its
//! lease is revoked: the other instance leads, and every write of the frozen one, still
//! holding its old term, fails with `NotLeader` and changes nothing.

mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use brigade::general::store_source::DEFAULT_PREFIX;
use brigade::general::{ProcessorSource, Shared, SourceError, StoreSource, TermStore};
use brigade::processor::Processor;
use mesos_sdk::storage::{Error, Store};

const KEY: &str = "/brigade-test/leader";
const RECORD: &str = "/brigade-test/records/task-1";
const WAIT: Duration = Duration::from_secs(30);

struct Instance {
    writes: TermStore,
    shared: Arc<Shared>,
    source: StoreSource,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

fn instance(store: Arc<dyn Store>, address: &str) -> Instance {
    let writes = TermStore::new(store, KEY);
    let source = StoreSource::new(Arc::new(writes.clone()), DEFAULT_PREFIX);
    let shared = Arc::new(Shared::new(
        Arc::new(source.clone()),
        "http://127.0.0.1:1".into(),
        "127.0.0.1:1".into(),
    ));
    shared.leader.store(false, Ordering::SeqCst);
    let tasks = brigade::general::ha::run_election(
        writes.clone(),
        shared.clone(),
        KEY,
        address,
        Duration::from_secs(2),
    )
    .expect("election starts");
    Instance {
        writes,
        shared,
        source,
        tasks,
    }
}

async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn processor(command: &str) -> Processor {
    Processor::from_json(
        &serde_json::json!({"name": "fenced", "input": "in", "error": "err", "command": command})
            .to_string(),
    )
    .expect("valid processor")
}

fn not_leader<T: std::fmt::Debug>(result: Result<T, Error>) {
    assert!(
        matches!(result, Err(Error::NotLeader { .. })),
        "refused as not the leader: {result:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_deposed_leader_cannot_write() {
    support::init_logs();
    let etcd = match support::etcd::Etcd::start().await {
        Ok(etcd) => etcd,
        Err(reason) => {
            eprintln!("SKIPPED a_frozen_deposed_leader_cannot_write: {reason}");
            return;
        }
    };
    let raw: Arc<dyn Store> = Arc::new(etcd.store().await);

    // A leads: its writes hold.
    let a = instance(Arc::new(etcd.store().await), "http://a.invalid");
    until("a leads", || a.shared.leader.load(Ordering::SeqCst)).await;
    let a_fence = a.writes.fence().expect("a term while leading");
    a.writes
        .put(RECORD, "by a".into(), None)
        .await
        .expect("leader writes");
    a.source
        .put(&processor("cat"), false, true)
        .await
        .expect("leader writes a processor document");

    // B is a standby: it knows the leader, and every write of it is refused.
    let b = instance(Arc::new(etcd.store().await), "http://b.invalid");
    until("b sees a", || {
        b.shared.leader_url.lock().unwrap().as_deref() == Some("http://a.invalid")
    })
    .await;
    assert!(!b.shared.leader.load(Ordering::SeqCst));
    not_leader(b.writes.put(RECORD, "by b".into(), None).await);
    assert!(b.writes.fence().is_none());

    // A freezes (never learns it lost) and its lease goes: B leads.
    let leader_key = raw.get(KEY).await.unwrap().expect("leader key");
    assert_eq!(leader_key.create_revision, a_fence.revision);
    for task in &a.tasks {
        task.abort();
    }
    raw.revoke_lease(leader_key.lease.expect("leader key on a lease"))
        .await
        .expect("revoke a's lease");
    until("b leads", || b.shared.leader.load(Ordering::SeqCst)).await;
    let b_fence = b.writes.fence().expect("b's term");
    assert!(
        b_fence.revision > a_fence.revision,
        "{b_fence:?} after {a_fence:?}"
    );

    // A still holds its old term and believes it leads; etcd refuses every write of it.
    assert!(a.shared.leader.load(Ordering::SeqCst), "a never learned");
    assert_eq!(a.writes.fence(), Some(a_fence));
    let refused = a.writes.refused_writes();
    not_leader(a.writes.put(RECORD, "by a, deposed".into(), None).await);
    not_leader(a.writes.delete(RECORD).await);
    match a.source.put(&processor("rev"), false, false).await {
        Err(SourceError::Store(Error::NotLeader { .. })) => {}
        other => panic!("processor write of a deposed leader: {other:?}"),
    }
    match a.source.remove("fenced").await {
        Err(SourceError::Store(Error::NotLeader { .. })) => {}
        other => panic!("processor removal by a deposed leader: {other:?}"),
    }
    assert_eq!(a.writes.refused_writes(), refused + 4);
    // Nothing changed; B writes.
    assert_eq!(&raw.get(RECORD).await.unwrap().unwrap().value[..], b"by a");
    let doc = b.source.list().await.unwrap();
    assert_eq!(
        doc["fenced"].processor.as_ref().unwrap().command(),
        Some("cat")
    );
    b.writes
        .put(RECORD, "by b".into(), None)
        .await
        .expect("new leader writes");
    assert_eq!(&raw.get(RECORD).await.unwrap().unwrap().value[..], b"by b");
    for task in &b.tasks {
        task.abort();
    }
}
