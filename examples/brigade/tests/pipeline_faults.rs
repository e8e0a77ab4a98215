//! Faults under the pipeline, each while a stream of messages runs: the executors killed with
//! SIGKILL (three times), the agent running the tasks crashed and restarted (mesos-local's
//! agent restart: executors keep running and are recovered), and that agent lost for good
//! (killed and never back until the end, per-message and warm). Every input message still ends
//! with exactly its output record; duplicates, if any, are printed.
//!
//! The message count is `BRIGADE_FAULT_MESSAGES` (default 200; the figure is 10,000).
//! Every 50th message is slow (one second), so that a fault always finds messages in flight.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use brigade::pipeline::{Brigade, SchedulerConfig};
use brigade::processor::Processor;
use mesos_local::cluster::LocalCluster;
use support::kafka::{Record, by_offset, processor_topics, produce, read};

/// The processor's command: `cat`, after a second's sleep for messages starting with `s`.
const COMMAND: &str = "x=$(cat); case \"$x\" in s*) sleep 1;; esac; printf %s \"$x\"";

fn message_count() -> usize {
    std::env::var("BRIGADE_FAULT_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

/// `n` payloads, every 50th a slow one.
fn payloads(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let slow = if i % 50 == 25 { "s" } else { "m" };
            format!("{slow}{i}").into_bytes()
        })
        .collect()
}

/// One fault scenario: a broker, a cluster of `agents`, a Brigade with one processor `name`
/// (per-message unless `extra` says otherwise), and its input produced.
struct Scenario {
    _broker: support::tansu::Tansu,
    brokers: String,
    cluster: LocalCluster,
    brigade: Brigade,
    name: String,
    payloads: Vec<Vec<u8>>,
    offsets: Vec<i64>,
    _work: tempfile::TempDir,
}

impl Scenario {
    async fn start(
        test: &str,
        name: &str,
        agents: usize,
        extra: serde_json::Value,
        tune: impl FnOnce(&mut SchedulerConfig),
    ) -> Option<Self> {
        support::init_logs();
        let broker = support::tansu::tansu_or_skip(test)?;
        let brokers = broker.brokers();
        let (input, output, error) = processor_topics(&brokers, name).await;
        let work = tempfile::tempdir().unwrap();
        let cluster = LocalCluster::builder()
            .agents(agents)
            .resources("cpus:8;mem:16384;disk:20000;ports:[31000-32000]")
            .work_dir(work.path())
            .allocation_interval(Duration::from_millis(50))
            .heartbeat_interval(Duration::from_millis(500))
            .status_update_retry(Duration::from_millis(500), Duration::from_secs(2))
            .agent_ping_interval(Duration::from_millis(100))
            .agent_removal_timeout(Duration::from_secs(1))
            .start()
            .await
            .expect("mesos-local starts");
        let mut config = support::scheduler_config(&cluster.master_url(), &brokers, None);
        tune(&mut config);
        let brigade = support::brigade(config).await;
        let mut doc = serde_json::json!({
            "name": name, "input": input, "output": output, "error": error,
            "command": COMMAND, "cpus": 0.05, "mem": 16, "max_in_flight": 16, "timeout": 30
        });
        if let (Some(doc), Some(extra)) = (doc.as_object_mut(), extra.as_object()) {
            doc.extend(extra.clone());
        }
        brigade
            .add(Processor::from_json(&doc.to_string()).unwrap())
            .await
            .unwrap();
        let payloads = payloads(message_count());
        let offsets = produce(&brokers, &input, &payloads).await;
        Some(Self {
            _broker: broker,
            brokers,
            cluster,
            brigade,
            name: name.to_string(),
            payloads,
            offsets,
            _work: work,
        })
    }

    /// Waits until `fraction` of the messages have an output.
    async fn until_done(&self, fraction: f64) {
        let want = (self.payloads.len() as f64 * fraction).ceil() as u64;
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let counters = self.brigade.counters().await[self.name.as_str()];
            if counters.outputs >= want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{want} outputs never came; counters {counters:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until every input message has an output or error record; fails on error records
    /// (none of these faults is the processor's) and on payloads that do not match. Answers the
    /// outputs by source offset.
    async fn every_message_covered(&self) -> BTreeMap<i64, Vec<Record>> {
        let deadline = Instant::now() + Duration::from_secs(300);
        let out = format!("{}-out", self.name);
        let err = format!("{}-err", self.name);
        loop {
            let outputs = read(&self.brokers, &out, usize::MAX, Duration::from_secs(2)).await;
            let errors = read(&self.brokers, &err, usize::MAX, Duration::from_millis(300)).await;
            let covered: BTreeSet<i64> = outputs
                .iter()
                .chain(errors.iter())
                .filter_map(|r| r.source_offset)
                .collect();
            if self.offsets.iter().all(|o| covered.contains(o)) {
                let reasons: Vec<Option<String>> =
                    errors.iter().map(|r| r.reason.clone()).collect();
                assert!(errors.is_empty(), "unexpected errors: {reasons:?}");
                let map = by_offset(&outputs);
                for (offset, records) in &map {
                    for record in records {
                        assert_eq!(record.payload, self.payloads[*offset as usize]);
                    }
                }
                return map;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {} messages have a record; counters {:?}",
                covered.len(),
                self.offsets.len(),
                self.brigade.counters().await[self.name.as_str()]
            );
        }
    }

    /// Prints what happened and answers the number of duplicate outputs.
    async fn report(&self, fault: &str, map: &BTreeMap<i64, Vec<Record>>) -> usize {
        let duplicates: usize = map.values().map(|v| v.len() - 1).sum();
        let counters = self.brigade.counters().await[self.name.as_str()];
        println!(
            "{fault}: {} messages, {} outputs, {duplicates} duplicates; counters {counters:?}",
            self.payloads.len(),
            map.values().map(Vec::len).sum::<usize>(),
        );
        duplicates
    }

    async fn stop(self) {
        self.brigade.shutdown().await;
        self.cluster.shutdown().await;
    }
}

/// The executor processes of `processor` with the index of the agent whose sandbox they run
/// in (`<work>/agents/<index>/...`; an agent keeps its directory when it is killed and revived).
fn executors_by_agent(processor: &str) -> Vec<(usize, u32)> {
    support::procs::executors_of(processor)
        .into_iter()
        .filter_map(|pid| {
            let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).ok()?;
            let cwd = cwd.to_string_lossy();
            let (_, rest) = cwd.split_once("/agents/")?;
            let index = rest.split('/').next()?.parse().ok()?;
            Some((index, pid))
        })
        .collect()
}

/// The index (in [`LocalCluster::agents`], as long as no agent was removed) of the agent
/// running the most executors of `processor`.
fn busiest_agent(processor: &str) -> Option<usize> {
    let mut per_agent: BTreeMap<usize, usize> = BTreeMap::new();
    for (index, _) in executors_by_agent(processor) {
        *per_agent.entry(index).or_default() += 1;
    }
    per_agent
        .into_iter()
        .max_by_key(|(index, count)| (*count, std::cmp::Reverse(*index)))
        .map(|(index, _)| index)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executors_killed_mid_stream_lose_no_message() {
    let Some(s) = Scenario::start(
        "executors_killed_mid_stream",
        "ex",
        1,
        serde_json::json!({}),
        |_| {},
    )
    .await
    else {
        return;
    };
    let mut killed = 0;
    for fraction in [0.25, 0.5, 0.75] {
        s.until_done(fraction).await;
        for pid in support::procs::executors_of("ex") {
            let status = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status()
                .expect("kill runs");
            if status.success() {
                killed += 1;
            }
        }
        eprintln!("killed the executors at {fraction} of the stream ({killed} so far)");
    }
    assert!(killed >= 3, "an executor was killed each time: {killed}");
    let map = s.every_message_covered().await;
    s.report("executors killed", &map).await;
    let counters = s.brigade.counters().await["ex"];
    assert!(
        counters.retries >= 1,
        "the killed messages ran again: {counters:?}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_crash_mid_stream_loses_no_message() {
    let Some(mut s) = Scenario::start(
        "an_agent_crash_mid_stream",
        "ag",
        1,
        serde_json::json!({}),
        |_| {},
    )
    .await
    else {
        return;
    };
    s.until_done(0.3).await;
    s.cluster.restart_agent(0).await.expect("agent restarts");
    eprintln!("agent crashed and restarted");
    let map = s.every_message_covered().await;
    s.report("agent crash", &map).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_lost_mid_stream_loses_no_message() {
    agent_lost("an_agent_lost_mid_stream", "al", serde_json::json!({})).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_lost_under_warm_workers_loses_no_message() {
    agent_lost(
        "an_agent_lost_under_warm_workers",
        "alw",
        serde_json::json!({"mode": "warm", "workers": {"min": 2, "max": 3}, "max_in_flight": 32}),
    )
    .await;
}

/// The agent running most of processor `name`'s executors is killed a third of the way in and
/// stays away: the master marks it unreachable after a second, Brigade gives its tasks up
/// after half a second more and runs their messages on the other agent. After every message
/// has its record the agent comes back: the old tasks' late results are dropped (each message
/// still has exactly one output), and its executors of the processor end (per-message ones once
/// their late updates are acknowledged, old warm workers killed when a reconciliation shows
/// them running).
async fn agent_lost(test: &str, name: &str, extra: serde_json::Value) {
    let Some(mut s) = Scenario::start(test, name, 2, extra, |config| {
        config.unreachable_grace = Duration::from_millis(500);
        config.reconcile_interval = Duration::from_secs(1);
    })
    .await
    else {
        return;
    };
    s.until_done(1.0 / 3.0).await;
    let index = busiest_agent(name).expect("an agent runs executors of the processor");
    let lost = s.cluster.kill_agent(index).await.expect("agent killed");
    eprintln!("agent {index} ({}) killed; it stays away", lost.value);
    let map = s.every_message_covered().await;
    let counters = s.brigade.counters().await[name];
    assert!(
        counters.retries >= 1,
        "messages of the lost agent ran again: {counters:?}"
    );
    let stranded = executors_by_agent(name)
        .iter()
        .filter(|(i, _)| *i == index)
        .count();
    s.cluster.revive_agent(&lost).await.expect("agent back");
    // Its recovered executors report what they finished meanwhile; the scheduler drops it.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left: Vec<u32> = executors_by_agent(name)
            .into_iter()
            .filter(|(i, _)| *i == index)
            .map(|(_, pid)| pid)
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "executors of the returned agent still run: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("the returned agent's {stranded} stranded executors ended");
    // Late updates had time to arrive (status update retries are at most 2 s here).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let map_after = s.every_message_covered().await;
    let duplicates = s.report("agent lost", &map_after).await;
    assert_eq!(
        map_after.values().map(Vec::len).sum::<usize>(),
        map.values().map(Vec::len).sum::<usize>(),
        "the agent's return added records"
    );
    assert_eq!(duplicates, 0, "one output per message");
    s.stop().await;
}
