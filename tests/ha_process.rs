//! HA with real processes: three instances of `examples/ha.rs` (separate processes) against
//! the embedded Mesos cluster (in this process, over real HTTP on loopback) and a real etcd.
//! The leader is SIGKILLed, SIGSTOPped past its TTL, or loses etcd; the tests read the
//! instances' stdout lines and the store's history.
#![cfg(feature = "etcd")]

#[path = "common/etcd.rs"]
mod etcd_support;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use etcd_support::EtcdCluster;
use mesos_local::cluster::LocalCluster;
use mesos_sdk::storage::{EventKind, Namespace, Store};

const TTL_MS: u64 = 2000;
const WAIT: Duration = Duration::from_secs(40);

/// The example binary, built (once per test run, a no-op when up to date) with the same
/// cargo: `cargo test --test ha_process` alone does not build examples.
fn example_binary() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let mut cargo = Command::new(env!("CARGO"));
            cargo
                .args(["build", "--example", "ha", "--features", "etcd"])
                .current_dir(env!("CARGO_MANIFEST_DIR"));
            // The variables cargo sets for this test (CARGO_PKG_NAME, ...) would look like a
            // changed environment to build scripts (ring's) and rebuild half the tree.
            for (name, _) in std::env::vars_os() {
                let name = name.to_string_lossy().into_owned();
                let keep = matches!(name.as_str(), "CARGO_HOME" | "CARGO_TARGET_DIR");
                if (name.starts_with("CARGO_") && !keep) || name == "OUT_DIR" {
                    cargo.env_remove(&name);
                }
            }
            let status = cargo.status().expect("cargo build --example ha");
            assert!(status.success(), "building the ha example failed");
            let exe = std::env::current_exe().expect("test binary path");
            exe.parent()
                .and_then(|deps| deps.parent())
                .expect("target directory")
                .join("examples")
                .join("ha")
        })
        .clone()
}

/// One instance process and its stdout lines.
struct Instance {
    id: String,
    child: Option<Child>,
}

impl Instance {
    fn signal(&self, signal: &str) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .args([format!("-{signal}"), child.id().to_string()])
                .status();
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.signal("CONT");
        self.kill();
    }
}

/// Everything a test needs, stopped on drop.
struct Setup {
    etcd: EtcdCluster,
    cluster: LocalCluster,
    instances: Vec<Instance>,
    lines: tokio::sync::mpsc::UnboundedReceiver<(String, String)>,
    /// Every line seen so far, by instance.
    seen: Vec<(String, String)>,
    framework: String,
}

impl Setup {
    async fn start(framework: &str, tasks: usize) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let etcd = EtcdCluster::single().await;
        let cluster = LocalCluster::builder()
            .heartbeat_interval(Duration::from_millis(300))
            .allocation_interval(Duration::from_millis(50))
            .status_update_retry(Duration::from_millis(200), Duration::from_secs(1))
            .start()
            .await
            .expect("local cluster starts");
        let binary = example_binary();
        let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
        let instances = ["i1", "i2", "i3"]
            .iter()
            .map(|id| {
                let mut child = Command::new(&binary)
                    .args(["--master", &cluster.master_url()])
                    .args(["--etcd", &etcd.endpoint()])
                    .args(["--id", id, "--name", framework])
                    .args(["--tasks", &tasks.to_string()])
                    .args(["--ttl-ms", &TTL_MS.to_string()])
                    .args(["--keepalive-ms", "300", "--margin-ms", "500"])
                    .env(
                        "RUST_LOG",
                        std::env::var("HA_CHILD_LOG").unwrap_or_else(|_| "warn".into()),
                    )
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .spawn()
                    .expect("start an ha instance");
                let stdout = child.stdout.take().expect("stdout");
                let tx = tx.clone();
                let who = id.to_string();
                std::thread::spawn(move || {
                    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                        if tx.send((who.clone(), line)).is_err() {
                            break;
                        }
                    }
                });
                Instance {
                    id: id.to_string(),
                    child: Some(child),
                }
            })
            .collect();
        Self {
            etcd,
            cluster,
            instances,
            lines,
            seen: Vec::new(),
            framework: framework.to_string(),
        }
    }

    /// Waits for a line starting with `prefix` from an instance accepted by `from`.
    async fn wait_line(&mut self, from: impl Fn(&str) -> bool, prefix: &str) -> (String, String) {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(Some((who, line))) = tokio::time::timeout(left, self.lines.recv()).await else {
                panic!("no `{prefix}` line; seen: {:#?}", self.seen)
            };
            self.seen.push((who.clone(), line.clone()));
            if from(&who) && line.starts_with(prefix) {
                return (who, line);
            }
        }
    }

    /// Drains the lines that arrived so far.
    fn drain(&mut self) {
        while let Ok(item) = self.lines.try_recv() {
            self.seen.push(item);
        }
    }

    fn instance(&mut self, id: &str) -> &mut Instance {
        self.instances
            .iter_mut()
            .find(|i| i.id == id)
            .expect("instance")
    }

    /// Waits for a leader with `tasks` running tasks; answers (leader, framework id).
    async fn wait_steady(&mut self, tasks: usize) -> (String, String) {
        let (leader, _) = self.wait_line(|_| true, "LEADING").await;
        let (_, subscribed) = self.wait_line(|w| w == leader, "SUBSCRIBED ").await;
        let framework_id = subscribed["SUBSCRIBED ".len()..].to_string();
        let mut running = BTreeSet::new();
        while running.len() < tasks {
            let (_, line) = self.wait_line(|w| w == leader, "TASK ").await;
            let parts: Vec<&str> = line.split_whitespace().collect();
            if parts.get(2) == Some(&"TaskRunning") {
                running.insert(parts[1].to_string());
            }
        }
        (leader, framework_id)
    }

    fn task_launches(&self, who: &str) -> usize {
        self.seen
            .iter()
            .filter(|(w, l)| w == who && l.starts_with("LAUNCH "))
            .count()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_leader_standby_resumes_same_framework_without_relaunching() {
    let mut setup = Setup::start("ha-kill", 2).await;
    let (leader, framework_id) = setup.wait_steady(2).await;
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
    println!(
        "failover: {failover:?} from SIGKILL to the new leader's SUBSCRIBED (TTL {TTL_MS} ms)"
    );
    setup.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigstopped_leader_is_fenced_when_it_wakes_up() {
    let mut setup = Setup::start("ha-stop", 2).await;
    let (old, framework_id) = setup.wait_steady(2).await;
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
    setup.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_that_loses_etcd_steps_down_and_nobody_leads_meanwhile() {
    let mut setup = Setup::start("ha-etcd-loss", 1).await;
    let (leader, framework_id) = setup.wait_steady(1).await;
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
    setup.cluster.shutdown().await;
}
