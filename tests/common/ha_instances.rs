//! Support for the HA process tests and the failover-time example: three (or more) instances
//! of `examples/ha.rs` as child processes against mesos-local (in the calling process) and a
//! real etcd; their stdout lines arrive on one channel, tagged with the instance's id.
//! Included with `#[path]` by `tests/ha_process.rs` and `examples/ha_failover_time.rs`, next
//! to `etcd.rs` (as `etcd_support`).
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::etcd_support::EtcdCluster;
use mesos_local::cluster::LocalCluster;

/// The leader lease's TTL the instances are started with.
pub const TTL_MS: u64 = 3000;
/// How long a wait for an instance's line lasts.
pub const WAIT: Duration = Duration::from_secs(40);

/// The `ha` example binary. From a test it is built (once per test run, a no-op when up to
/// date) with the same cargo, since `cargo test --test ha_process` alone does not build
/// examples; from an example program it is the `ha` built beside it (`cargo build --examples`).
pub fn example_binary() -> PathBuf {
    if !cfg!(test) {
        let exe = std::env::current_exe().expect("program path");
        return exe.parent().expect("examples directory").join("ha");
    }
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| build_example("ha")).clone()
}

/// Builds example `name` (feature `etcd`) with the cargo that runs this test, and answers its
/// path in the test's target directory.
pub fn build_example(name: &str) -> PathBuf {
    let mut cargo = Command::new(env!("CARGO"));
    cargo
        .args(["build", "--example", name, "--features", "etcd"])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    // The variables cargo sets for this test (CARGO_PKG_NAME, ...) would look like a changed
    // environment to build scripts (ring's) and rebuild half the tree.
    for (var, _) in std::env::vars_os() {
        let var = var.to_string_lossy().into_owned();
        let keep = matches!(var.as_str(), "CARGO_HOME" | "CARGO_TARGET_DIR");
        if (var.starts_with("CARGO_") && !keep) || var == "OUT_DIR" {
            cargo.env_remove(&var);
        }
    }
    let status = cargo.status().expect("cargo build --example");
    assert!(status.success(), "building the {name} example failed");
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("target directory")
        .join("examples")
        .join(name)
}

/// mesos-local with the quick heartbeats, allocations and update retries the HA process tests
/// use (so that a failover is not measured against Mesos' default intervals).
pub fn quick_cluster() -> mesos_local::cluster::LocalClusterBuilder {
    LocalCluster::builder()
        .heartbeat_interval(Duration::from_millis(300))
        .allocation_interval(Duration::from_millis(50))
        .status_update_retry(Duration::from_millis(200), Duration::from_secs(1))
}

/// Starts `command` (an instance `id`, its log level from `HA_CHILD_LOG`, default `warn`);
/// its stdout lines go to `tx` as `(id, line)`, read by a thread of their own.
pub fn spawn_tagged(
    mut command: Command,
    id: &str,
    tx: &tokio::sync::mpsc::UnboundedSender<(String, String)>,
) -> Child {
    let mut child = command
        .env(
            "RUST_LOG",
            std::env::var("HA_CHILD_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start an instance");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, who) = (tx.clone(), id.to_string());
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send((who.clone(), line)).is_err() {
                break;
            }
        }
    });
    child
}

/// One instance process and its stdout lines.
pub struct Instance {
    /// The instance's id (`--id`).
    pub id: String,
    child: Option<Child>,
}

impl Instance {
    /// Sends `signal` (a name, as `kill -NAME`).
    pub fn signal(&self, signal: &str) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .args([format!("-{signal}"), child.id().to_string()])
                .status();
        }
    }

    /// SIGKILLs the instance and reaps it.
    pub fn kill(&mut self) {
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
pub struct Setup {
    pub etcd: EtcdCluster,
    pub cluster: LocalCluster,
    pub instances: Vec<Instance>,
    lines: tokio::sync::mpsc::UnboundedReceiver<(String, String)>,
    tx: tokio::sync::mpsc::UnboundedSender<(String, String)>,
    pub tasks: usize,
    /// Every line seen so far, by instance.
    pub seen: Vec<(String, String)>,
    pub framework: String,
    /// More arguments for every instance.
    pub extra: Vec<String>,
}

impl Setup {
    pub async fn start(framework: &str, tasks: usize) -> Self {
        Self::start_with(framework, tasks, &[]).await
    }

    pub async fn start_with(framework: &str, tasks: usize, extra: &[&str]) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let etcd = EtcdCluster::single().await;
        let cluster = quick_cluster().start().await.expect("local cluster starts");
        let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
        let mut setup = Self {
            etcd,
            cluster,
            instances: Vec::new(),
            lines,
            tx,
            seen: Vec::new(),
            framework: framework.to_string(),
            tasks,
            extra: extra.iter().map(|a| a.to_string()).collect(),
        };
        for id in ["i1", "i2", "i3"] {
            setup.spawn(id);
        }
        setup
    }

    /// Starts one more instance.
    pub fn spawn(&mut self, id: &str) {
        let mut command = Command::new(example_binary());
        command
            .args(["--master", &self.cluster.master_url()])
            .args(["--etcd", &self.etcd.endpoint()])
            .args(["--id", id, "--name", &self.framework])
            .args(["--tasks", &self.tasks.to_string()])
            .args(["--ttl-ms", &TTL_MS.to_string()])
            .args(["--keepalive-ms", "300", "--margin-ms", "500"])
            .args(&self.extra);
        let child = spawn_tagged(command, id, &self.tx);
        self.instances.push(Instance {
            id: id.to_string(),
            child: Some(child),
        });
    }

    /// Waits for a line starting with `prefix` from an instance accepted by `from`.
    pub async fn wait_line(
        &mut self,
        from: impl Fn(&str) -> bool,
        prefix: &str,
    ) -> (String, String) {
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
    pub fn drain(&mut self) {
        while let Ok(item) = self.lines.try_recv() {
            self.seen.push(item);
        }
    }

    pub fn instance(&mut self, id: &str) -> &mut Instance {
        self.instances
            .iter_mut()
            .find(|i| i.id == id)
            .expect("instance")
    }

    /// Waits for a leader with `tasks` running tasks; answers (leader, framework id).
    pub async fn wait_steady(&mut self, tasks: usize) -> (String, String) {
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

    pub fn task_launches(&self, who: &str) -> usize {
        self.seen
            .iter()
            .filter(|(w, l)| w == who && l.starts_with("LAUNCH "))
            .count()
    }
}
