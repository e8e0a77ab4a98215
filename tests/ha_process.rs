//! HA with real processes: three instances of `examples/ha.rs` (separate processes) against
//! the embedded Mesos cluster (in this process, over real HTTP on loopback) and a real etcd.
//! The leader is SIGKILLed, SIGSTOPped past its TTL, or loses etcd; the tests read the
//! instances' stdout lines and the store's history.
#![cfg(feature = "etcd")]

#[path = "common/etcd.rs"]
mod etcd_support;
#[path = "common/ha_instances.rs"]
mod ha_instances;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use ha_instances::{Setup, TTL_MS};
use mesos_sdk::storage::{EventKind, Namespace, Store};

/// Samples the master's `/state` every 25 ms while a test runs: the frameworks named like
/// ours, and how many of them are connected. "Never two leaders at once", as the master sees
/// it: at every sample at most one framework of that name is connected, and there is only
/// ever one framework id (a standby never registered a second framework).
struct MasterSampler {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<MasterSamples>,
}

#[derive(Debug, Default)]
struct MasterSamples {
    samples: usize,
    /// Samples with more than one connected framework of the name.
    two_connected: Vec<serde_json::Value>,
    /// Every framework id of the name seen.
    ids: BTreeSet<String>,
    /// Samples where one framework of the name was connected.
    connected: usize,
}

impl MasterSampler {
    fn start(master_url: String, name: String) -> Self {
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            let client =
                hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                    .build_http::<http_body_util::Empty<bytes::Bytes>>();
            let uri: http::Uri = format!("{}/state", master_url.trim_end_matches('/'))
                .parse()
                .expect("state uri");
            let mut out = MasterSamples::default();
            loop {
                if let Ok(response) = client.get(uri.clone()).await {
                    use http_body_util::BodyExt;
                    if let Ok(body) = response.into_body().collect().await {
                        let state: serde_json::Value =
                            serde_json::from_slice(&body.to_bytes()).unwrap_or_default();
                        let ours: Vec<&serde_json::Value> = state["frameworks"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter(|f| f["name"] == name.as_str())
                            .collect();
                        let connected = ours.iter().filter(|f| f["connected"] == true).count();
                        out.samples += 1;
                        if connected == 1 {
                            out.connected += 1;
                        }
                        if connected > 1 {
                            out.two_connected.push(state["frameworks"].clone());
                        }
                        for f in ours {
                            if let Some(id) = f["id"].as_str() {
                                out.ids.insert(id.to_string());
                            }
                        }
                    }
                }
                tokio::select! {
                    _ = stopped.changed() => return out,
                    () = tokio::time::sleep(Duration::from_millis(25)) => {}
                }
            }
        });
        Self { stop, task }
    }

    /// Stops sampling and checks the samples: never two connected, one framework id (the
    /// given one), and some samples with the framework connected.
    async fn check(self, framework_id: &str) -> MasterSamples {
        let _ = self.stop.send(true);
        let samples = self.task.await.expect("sampler");
        assert!(
            samples.two_connected.is_empty(),
            "two subscriptions of the framework at once: {:#?}",
            samples.two_connected
        );
        assert_eq!(
            samples.ids,
            BTreeSet::from([framework_id.to_string()]),
            "the framework id never changed"
        );
        assert!(samples.connected > 0, "{samples:?}");
        println!(
            "master samples: {} ({} with the framework connected, never two)",
            samples.samples, samples.connected
        );
        samples
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_leader_standby_resumes_same_framework_without_relaunching() {
    let mut setup = Setup::start("ha-kill", 2).await;
    let (leader, framework_id) = setup.wait_steady(2).await;
    let master = MasterSampler::start(setup.cluster.master_url(), setup.framework.clone());
    let killed_at = Instant::now();
    setup.instance(&leader).kill();

    let (new_leader, _) = setup.wait_line(|w| w != leader, "LEADING").await;
    let (_, subscribed) = setup.wait_line(|w| w == new_leader, "SUBSCRIBED ").await;
    let failover = killed_at.elapsed();
    assert_eq!(
        subscribed,
        format!("SUBSCRIBED {framework_id}"),
        "same framework id"
    );
    let (_, reconcile) = setup.wait_line(|w| w == new_leader, "RECONCILE ").await;
    assert_eq!(
        reconcile, "RECONCILE 2",
        "the new leader found both tasks in the store"
    );
    // Reconciliation reports both running; nothing is launched again.
    let mut running = BTreeSet::new();
    while running.len() < 2 {
        let (_, line) = setup.wait_line(|w| w == new_leader, "TASK").await;
        let parts: Vec<&str> = line.split_whitespace().collect();
        assert_ne!(parts[0], "TASK_ENDED", "a task ended: {line}");
        running.insert(parts[1].to_string());
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    setup.drain();
    assert_eq!(setup.task_launches(&new_leader), 0, "{:#?}", setup.seen);
    master.check(&framework_id).await;
    println!(
        "failover: {failover:?} from SIGKILL to the new leader's SUBSCRIBED (TTL {TTL_MS} ms)"
    );
    setup.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigstopped_leader_is_fenced_when_it_wakes_up() {
    let mut setup = Setup::start("ha-stop", 2).await;
    let (old, framework_id) = setup.wait_steady(2).await;
    let master = MasterSampler::start(setup.cluster.master_url(), setup.framework.clone());
    setup.instance(&old).signal("STOP");

    let (new_leader, leading) = setup.wait_line(|w| w != old, "LEADING").await;
    let (_, subscribed) = setup.wait_line(|w| w == new_leader, "SUBSCRIBED ").await;
    assert_eq!(subscribed, format!("SUBSCRIBED {framework_id}"));
    let takeover: i64 = leading
        .split_whitespace()
        .find_map(|p| p.strip_prefix("revision="))
        .and_then(|r| r.parse().ok())
        .expect("revision in LEADING line");

    setup.instance(&old).signal("CONT");
    let (_, end) = setup.wait_line(|w| w == old, "TERM_END ").await;
    assert!(
        end.contains("LeadershipLost") || end.contains("FailedOver"),
        "the woken leader stops by itself: {end}"
    );
    let (_, rejected) = setup.wait_line(|w| w == old, "REJECTED_WRITES ").await;
    println!("old leader after SIGCONT: {end}; {rejected}");
    // It campaigns again as a standby and sees the new leader (maybe printed before TERM_END).
    let standby = format!("STANDBY leader={new_leader}");
    setup.drain();
    if !setup.seen.iter().any(|(w, l)| *w == old && *l == standby) {
        loop {
            let (_, line) = setup.wait_line(|w| w == old, "STANDBY ").await;
            if line == standby {
                break;
            }
        }
    }

    // The store's history since the take-over holds no write by the old leader.
    let store = setup.etcd.store().await;
    let prefix = Namespace::new(&setup.framework).unwrap().key("tasks/");
    let now = store.current_revision().await.unwrap();
    let mut history = store.watch(&prefix, takeover).await.unwrap();
    let mut revision = takeover;
    while revision < now {
        use futures::StreamExt;
        let Ok(Some(Ok(event))) =
            tokio::time::timeout(Duration::from_millis(500), history.next()).await
        else {
            break;
        };
        revision = event.revision();
        if event.kind == EventKind::Put {
            let value = String::from_utf8_lossy(&event.kv.value);
            assert!(
                !value.contains(&format!("\"writer\":\"{old}\"")),
                "a write by the deposed leader succeeded: {value}"
            );
        }
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    setup.drain();
    assert_eq!(setup.task_launches(&new_leader), 0, "{:#?}", setup.seen);
    // The woken leader did not resubscribe: the new leader's subscription was never failed
    // over, its term goes on.
    assert!(
        !setup
            .seen
            .iter()
            .any(|(w, l)| *w == new_leader && l.starts_with("TERM_END")),
        "{:#?}",
        setup.seen
    );
    master.check(&framework_id).await;
    setup.cluster.shutdown().await;
}

/// The failover case the local deadline normally prevents: every instance runs with an
/// intentionally unsafe step-down deadline (60 s, far beyond the TTL), writes a status record
/// every 100 ms, and tolerates 100 missed master heartbeats. The leader is SIGSTOPped past its
/// TTL; a standby takes over the framework, and the master fails the old subscription over.
/// On SIGCONT the old leader still believes it leads: it writes at once, and every such write
/// is rejected by the fence (none lands in the store); its term ends, by its scheduler reading
/// `Framework failed over` or by its election finding the lease gone, whichever comes first. The master never has two subscriptions of the framework, nor a
/// second framework id. (With the default heartbeat watchdog, a long-paused scheduler may call
/// its connection dead on waking before it reads the buffered error, and resubscribe, failing
/// the new leader over in turn: the safe deadline is what prevents that.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn woken_leader_past_an_unsafe_deadline_is_fenced_and_failed_over() {
    let mut setup = Setup::start_with(
        "ha-unsafe",
        1,
        &[
            "--unsafe-step-down-ms",
            "60000",
            "--status-every-ms",
            "100",
            // On waking, read what the master sent during the pause (`Framework failed
            // over`) instead of calling the connection dead first.
            "--heartbeat-misses",
            "100",
        ],
    )
    .await;
    let (old, framework_id) = setup.wait_steady(1).await;
    let master = MasterSampler::start(setup.cluster.master_url(), setup.framework.clone());
    setup.instance(&old).signal("STOP");
    let (new_leader, leading) = setup.wait_line(|w| w != old, "LEADING").await;
    let (_, subscribed) = setup.wait_line(|w| w == new_leader, "SUBSCRIBED ").await;
    assert_eq!(subscribed, format!("SUBSCRIBED {framework_id}"));
    let takeover: i64 = leading
        .split_whitespace()
        .find_map(|p| p.strip_prefix("revision="))
        .and_then(|r| r.parse().ok())
        .expect("revision in LEADING line");
    // Let the new leader write its status a few times.
    tokio::time::sleep(Duration::from_millis(300)).await;

    setup.instance(&old).signal("CONT");
    let (_, end) = setup.wait_line(|w| w == old, "TERM_END ").await;
    let (_, termination) = setup
        .wait_line(|w| w == old, "SCHEDULER_TERMINATION ")
        .await;
    let (_, rejected) = setup.wait_line(|w| w == old, "REJECTED_WRITES ").await;
    println!("old leader after SIGCONT: {end}; {termination}; {rejected}");
    assert!(
        !end.contains("Deadline"),
        "the unsafe deadline did not fire: {end}"
    );
    let rejected: u64 = rejected["REJECTED_WRITES ".len()..].parse().unwrap();
    assert!(rejected > 0, "the woken leader attempted no write");
    // Mesos-side fencing: the master failed the old subscription over (checked on the master
    // by the sampler below: never two subscriptions). What the woken process notices first is
    // a race between its scheduler reading the buffered `Framework failed over` and its
    // election finding the lease gone (then it stops its scheduler before reading the error);
    // both end the term, and both were seen in full runs.
    assert!(
        end.contains("FailedOver")
            || termination.contains("Some(FailedOver")
            || (end.contains("LeaseGone") && termination.contains("Some(Stopped)")),
        "{end}; {termination}"
    );

    // No write by the old leader landed after the take-over, anywhere in the namespace.
    let store = setup.etcd.store().await;
    let prefix = Namespace::new(&setup.framework).unwrap().key("");
    let now = store.current_revision().await.unwrap();
    let mut history = store.watch(&prefix, takeover).await.unwrap();
    let mut revision = takeover;
    let mut new_leader_writes = 0;
    while revision < now {
        use futures::StreamExt;
        let Ok(Some(Ok(event))) =
            tokio::time::timeout(Duration::from_millis(500), history.next()).await
        else {
            break;
        };
        revision = event.revision();
        if event.kind == EventKind::Put {
            let value = String::from_utf8_lossy(&event.kv.value);
            assert!(
                !value.contains(&format!("\"writer\":\"{old}\"")),
                "a write by the deposed leader succeeded: {value}"
            );
            if value.contains(&format!("\"writer\":\"{new_leader}\"")) {
                new_leader_writes += 1;
            }
        }
    }
    assert!(new_leader_writes > 0, "the new leader wrote its status");
    tokio::time::sleep(Duration::from_millis(500)).await;
    setup.drain();
    assert!(
        !setup
            .seen
            .iter()
            .any(|(w, l)| *w == new_leader && l.starts_with("TERM_END")),
        "the new leader's term goes on: {:#?}",
        setup.seen
    );
    master.check(&framework_id).await;
    setup.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_that_loses_etcd_steps_down_and_nobody_leads_meanwhile() {
    let mut setup = Setup::start("ha-etcd-loss", 1).await;
    let (leader, framework_id) = setup.wait_steady(1).await;
    let master = MasterSampler::start(setup.cluster.master_url(), setup.framework.clone());
    setup.drain();
    let seen_before = setup.seen.len();
    setup.etcd.members[0].kill();
    let (_, end) = setup.wait_line(|w| w == leader, "TERM_END ").await;
    assert!(end.contains("LeadershipLost(Deadline)"), "{end}");
    // Nobody else led while etcd was down.
    assert!(
        setup.seen[seen_before..]
            .iter()
            .all(|(_, line)| !line.starts_with("LEADING")),
        "{:#?}",
        setup.seen
    );
    setup.etcd.members[0].restart();
    let (_, _) = setup.wait_line(|_| true, "LEADING").await;
    let (_, subscribed) = setup.wait_line(|_| true, "SUBSCRIBED ").await;
    assert_eq!(subscribed, format!("SUBSCRIBED {framework_id}"));
    master.check(&framework_id).await;
    setup.cluster.shutdown().await;
}
