//! Three `brigade scheduler --ha` processes against real etcd (processors and leader key),
//! mesos-local and tansu: one leads and runs the processor, the standbys proxy the API to it
//! (or answer 307 when asked); the leader is SIGKILLed mid-stream; a standby leads within the lease TTL, resumes
//! the processor's framework, and every input message gets its output (duplicates printed).

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use brigade::general::{ProcessorSource, StoreSource};
use brigade::kafka::{KafkaConfig, create_topics};
use brigade::processor::Processor;
use support::kafka::{by_offset, produce, read};

const BIN: &str = env!("CARGO_BIN_EXE_brigade");
const TTL_SECS: u64 = 2;
const WAIT: Duration = Duration::from_secs(120);

struct Instance {
    child: Child,
    url: String,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(etcd: &str, master: &str, brokers: &str) -> Instance {
    let mut child = Command::new(BIN)
        .args([
            "scheduler",
            "--ha",
            "--etcd",
            etcd,
            "--master",
            master,
            "--brokers",
            brokers,
        ])
        .args([
            "--bind",
            "127.0.0.1:0",
            "--heartbeat-ms",
            "500",
            "--poll-ms",
            "200",
        ])
        .args([
            "--leader-ttl-secs",
            &TTL_SECS.to_string(),
            "--drain-timeout-secs",
            "5",
        ])
        .arg("--executor")
        .arg(support::executor_binary())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("brigade scheduler starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().rsplit(' ').next().unwrap().to_string();
    assert!(url.starts_with("http"), "{line}");
    Instance { child, url }
}

async fn leaders(http: &reqwest::Client, instances: &[&Instance]) -> Vec<usize> {
    let mut out = Vec::new();
    for (i, instance) in instances.iter().enumerate() {
        if let Ok(r) = http.get(format!("{}/ready", instance.url)).send().await {
            if let Ok(v) = r.json::<serde_json::Value>().await {
                if v["leader"] == true {
                    out.push(i);
                }
            }
        }
    }
    out
}

async fn one_leader(http: &reqwest::Client, instances: &[&Instance]) -> usize {
    let deadline = Instant::now() + WAIT;
    loop {
        let l = leaders(http, instances).await;
        if l.len() == 1 {
            return l[0];
        }
        assert!(Instant::now() < deadline, "no single leader: {l:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_takes_over_when_the_leader_is_killed() {
    support::init_logs();
    let Some(broker) = support::tansu::tansu_or_skip("a_standby_takes_over") else {
        return;
    };
    let etcd = match support::etcd::Etcd::start().await {
        Ok(etcd) => etcd,
        Err(reason) => {
            eprintln!("SKIPPED a_standby_takes_over: {reason}");
            return;
        }
    };
    let brokers = broker.brokers();
    create_topics(
        &KafkaConfig::new(&brokers),
        &["ha-in", "ha-out", "ha-err"],
        1,
    )
    .await
    .expect("topics");
    let source = StoreSource::new(
        Arc::new(etcd.store().await),
        brigade::general::store_source::DEFAULT_PREFIX,
    );
    let processor = Processor::from_json(
        &serde_json::json!({"name": "ha", "input": "ha-in", "output": "ha-out", "error": "ha-err",
                            "command": "tr a-z A-Z", "cpus": 0.1, "mem": 32, "max_in_flight": 4})
        .to_string(),
    )
    .unwrap();
    source.put(&processor, false, true).await.unwrap();
    let work = tempfile::tempdir().unwrap();
    let cluster = support::local_cluster(work.path()).await;
    let (master, endpoint) = (cluster.master_url(), etcd.endpoint());
    let mut instances: Vec<Option<Instance>> = tokio::task::spawn_blocking(move || {
        (0..3)
            .map(|_| Some(start(&endpoint, &master, &brokers)))
            .collect()
    })
    .await
    .unwrap();
    let brokers = broker.brokers();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let all: Vec<&Instance> = instances.iter().flatten().collect();
    let leader = one_leader(&http, &all).await;
    let leader_url = all[leader].url.clone();
    // A standby proxies the API to the leader; asked to, it redirects instead.
    let standby = all[(leader + 1) % 3];
    let r = http
        .get(format!("{}/api/processors/ha", standby.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    assert_eq!(
        r.headers()["x-brigade-leader"].to_str().unwrap(),
        leader_url
    );
    let proxied: serde_json::Value = r.json().await.unwrap();
    assert_eq!(proxied["name"], "ha", "{proxied}");
    assert_ne!(proxied["state"], "standby", "the leader's view: {proxied}");
    let r = http
        .get(format!("{}/api/processors", standby.url))
        .header("x-brigade-redirect", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(
        r.headers()["location"].to_str().unwrap(),
        format!("{leader_url}/api/processors")
    );

    // Messages flow through the leader.
    let first = produce(
        &brokers,
        "ha-in",
        &(0..20)
            .map(|i| format!("m{i}").into_bytes())
            .collect::<Vec<_>>(),
    )
    .await;
    assert!(!read(&brokers, "ha-out", 5, WAIT).await.is_empty());

    // SIGKILL the leader; a standby leads within the TTL (plus the poll) and resumes.
    let killed_at = Instant::now();
    instances[leader] = None;
    let rest: Vec<&Instance> = instances.iter().flatten().collect();
    let new_leader = one_leader(&http, &rest).await;
    let takeover = killed_at.elapsed();
    println!("takeover after {takeover:?} (TTL {TTL_SECS} s)");
    assert!(
        takeover < Duration::from_secs(TTL_SECS * 3 + 5),
        "takeover took {takeover:?}"
    );
    let second = produce(
        &brokers,
        "ha-in",
        &(20..40)
            .map(|i| format!("m{i}").into_bytes())
            .collect::<Vec<_>>(),
    )
    .await;
    // Read until every offset has its output (duplicates make the count alone misleading).
    let deadline = Instant::now() + WAIT;
    let (records, map) = loop {
        let records = read(&brokers, "ha-out", 40, WAIT).await;
        let records = if records.len() >= 40 {
            // Everything produced so far, duplicates included.
            read(&brokers, "ha-out", 1000, Duration::from_secs(2)).await
        } else {
            records
        };
        let map = by_offset(&records);
        if first.iter().chain(&second).all(|o| map.contains_key(o)) || Instant::now() > deadline {
            break (records, map);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    for offset in first.iter().chain(&second) {
        assert!(
            map.contains_key(offset),
            "offset {offset} lost: {} records",
            records.len()
        );
    }
    let duplicates = records.len() - map.len();
    println!(
        "40 inputs, {} outputs, {duplicates} duplicates",
        records.len()
    );
    let status: serde_json::Value = http
        .get(format!("{}/api/processors/ha", rest[new_leader].url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["state"], "running", "{status}");
    drop(instances);
    cluster.shutdown().await;
}
