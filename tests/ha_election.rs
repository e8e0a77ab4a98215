//! Leader election and fencing, the same cases on `MemoryStore` (manual clock) and, with the
//! feature `etcd`, on a real etcd; plus the etcd-only case of a leader losing etcd.

#[cfg(feature = "etcd")]
#[path = "common/etcd.rs"]
mod etcd_support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use mesos_sdk::ha::{ElectionConfig, LeaderElection, LeaderInfo, LossReason};
use mesos_sdk::storage::{Compare, Error, ManualClock, MemoryStore, Op, Store, StoreExt, Txn};

type DynStore = Arc<dyn Store>;

struct Backend {
    store: DynStore,
    clock: Option<ManualClock>,
}

impl Backend {
    async fn elapse(&self, by: Duration) {
        match &self.clock {
            Some(clock) => clock.advance(by),
            None => tokio::time::sleep(by).await,
        }
    }
}

const TTL: Duration = Duration::from_secs(3);

fn config(key: &str, id: &str) -> ElectionConfig {
    let mut config = ElectionConfig::with_ttl(key, id, format!("http://{id}:8080"), TTL);
    config.keep_alive_interval = Duration::from_millis(400);
    config.safety_margin = Duration::from_millis(500);
    config.retry_interval = Duration::from_millis(100);
    config
}

fn election(b: &Backend, key: &str, id: &str) -> LeaderElection<DynStore> {
    LeaderElection::new(b.store.clone(), config(key, id)).expect("valid config")
}

async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .unwrap_or_else(|_| panic!("{what} did not happen"))
}

async fn next_leader(
    stream: &mut (impl futures::Stream<Item = Option<LeaderInfo>> + Unpin),
) -> Option<LeaderInfo> {
    within("a leadership change", stream.next())
        .await
        .expect("observe stream ended")
}

/// Two contenders: one leads, the other waits; resigning hands over; observers see both.
async fn resign_hands_over(b: &Backend) {
    let key = "/ha/resign/leader";
    let a = election(b, key, "a");
    let bee = election(b, key, "b");
    let mut observed = a.observe();
    assert_eq!(next_leader(&mut observed).await, None);

    let la = within("a wins", a.campaign()).await.unwrap();
    assert!(la.is_leader());
    let seen = next_leader(&mut observed).await.expect("a leads");
    assert_eq!(
        (seen.id.as_str(), seen.address.as_str()),
        ("a", "http://a:8080")
    );
    assert_eq!(seen.revision, la.fence().revision);
    assert_eq!(bee.leader().await.unwrap().unwrap().id, "a");

    let b_campaign = tokio::spawn(async move { bee.campaign().await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!b_campaign.is_finished(), "b must wait while a leads");

    let a_fence = la.fence().clone();
    la.resign().await.unwrap();
    let lb = within("b wins", b_campaign).await.unwrap().unwrap();
    assert!(lb.fence().revision > a_fence.revision);
    // Observers see the hand-over (possibly through "nobody leads").
    let mut seen = next_leader(&mut observed).await;
    if seen.is_none() {
        seen = next_leader(&mut observed).await;
    }
    assert_eq!(seen.unwrap().id, "b");
    lb.resign().await.unwrap();
}

/// A leader that stops refreshing (crash, pause) is replaced after its TTL, and its fenced
/// writes fail with NotLeader and change nothing.
async fn deposed_leader_cannot_write(b: &Backend) {
    let key = "/ha/fence/leader";
    let state_key = "/ha/fence/state";
    let a = election(b, key, "a");
    let la = within("a wins", a.campaign()).await.unwrap();
    let a_state = la.fenced(b.store.clone());
    a_state
        .put(state_key, Bytes::from("from a"), None)
        .await
        .unwrap();

    let bee = election(b, key, "b");
    let b_campaign = tokio::spawn(async move { bee.campaign().await });
    // a "crashes": its keep-alive stops, its fenced view lives on (a paused process).
    drop(la);
    b.elapse(TTL + Duration::from_secs(1)).await;
    let lb = within("b wins after a's lease expired", b_campaign)
        .await
        .unwrap()
        .unwrap();
    let b_state = lb.fenced(b.store.clone());

    let before = b.store.current_revision().await.unwrap();
    let put = a_state.put(state_key, Bytes::from("stale a"), None).await;
    assert!(matches!(put, Err(Error::NotLeader { .. })), "{put:?}");
    let delete = a_state.delete(state_key).await;
    assert!(matches!(delete, Err(Error::NotLeader { .. })), "{delete:?}");
    let txn = Txn::new()
        .when(Compare::absent("/ha/fence/other"))
        .and_then(Op::put("/ha/fence/other", "stale"))
        .or_else(Op::put("/ha/fence/else", "stale"));
    assert!(matches!(
        a_state.txn(txn).await,
        Err(Error::NotLeader { .. })
    ));
    assert_eq!(a_state.rejected_writes(), 3);
    assert_eq!(
        b.store.current_revision().await.unwrap(),
        before,
        "nothing changed"
    );
    assert_eq!(
        b.store
            .get(state_key)
            .await
            .unwrap()
            .unwrap()
            .value
            .as_ref(),
        b"from a"
    );
    assert!(b.store.get("/ha/fence/else").await.unwrap().is_none());

    // The new leader writes, also through transactions (their own branches keep meaning).
    b_state.put_json(state_key, &"from b", None).await.unwrap();
    let txn = Txn::new()
        .when(Compare::absent(state_key))
        .and_then(Op::put("/ha/fence/then", "x"))
        .or_else(Op::get(state_key));
    let answer = b_state.txn(txn).await.unwrap();
    assert!(
        !answer.succeeded,
        "the caller's compare still decides the branch"
    );
    assert_eq!(b_state.rejected_writes(), 0);
    lb.resign().await.unwrap();
}

/// Someone deletes the leader key: the leader notices.
async fn key_deleted_ends_leadership(b: &Backend) {
    let key = "/ha/deleted/leader";
    let la = within("a wins", election(b, key, "a").campaign())
        .await
        .unwrap();
    b.store.delete(key).await.unwrap();
    assert_eq!(within("loss", la.lost()).await, LossReason::KeyChanged);
    assert!(!la.is_leader());
}

async fn suite(b: Backend) {
    resign_hands_over(&b).await;
    deposed_leader_cannot_write(&b).await;
    key_deleted_ends_leadership(&b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn election_on_memory() {
    let (store, clock) = MemoryStore::with_manual_clock();
    suite(Backend {
        store: Arc::new(store),
        clock: Some(clock),
    })
    .await;
}

#[test]
fn election_config_is_checked() {
    let mut config = config("/k", "a");
    config.keep_alive_interval = TTL;
    assert!(matches!(
        LeaderElection::new(MemoryStore::new(), config),
        Err(Error::Config { .. })
    ));
}

#[cfg(feature = "etcd")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn election_on_etcd() {
    let etcd = etcd_support::EtcdCluster::single().await;
    suite(Backend {
        store: Arc::new(etcd.store().await),
        clock: None,
    })
    .await;
}

/// The leader loses etcd: it steps down on its local deadline, before its TTL since the
/// outage began has run out (so before any other candidate can win).
#[cfg(feature = "etcd")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_that_loses_etcd_steps_down_before_its_ttl() {
    let etcd = etcd_support::EtcdCluster::single().await;
    let store: DynStore = Arc::new(
        mesos_sdk::storage::EtcdStore::builder(etcd.endpoints())
            .request_timeout(Duration::from_millis(300))
            .connect()
            .await
            .unwrap(),
    );
    let b = Backend { store, clock: None };
    let la = within("a wins", election(&b, "/ha/outage/leader", "a").campaign())
        .await
        .unwrap();
    // Let a few refreshes succeed, then cut etcd off.
    tokio::time::sleep(Duration::from_millis(900)).await;
    let cut = tokio::time::Instant::now();
    etcd.members[0].signal("STOP");
    let reason = within("step-down", la.lost()).await;
    let after = cut.elapsed();
    etcd.members[0].signal("CONT");
    assert_eq!(reason, LossReason::Deadline);
    // The last confirmed refresh was sent before the cut, so the server-side lease lives at
    // least until cut + TTL: stepping down before that is the safety property.
    assert!(
        after < TTL,
        "stepped down {after:?} after the cut, TTL {TTL:?}"
    );
}
