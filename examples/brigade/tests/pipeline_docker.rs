//! A Docker processor end to end through the pipeline: an image built here (`FROM scratch`
//! with Debian's static busybox, a fixed tag, built once) that upper-cases stdin; N messages
//! in, N upper-cased outputs matched by source offset. Skipped with a printed reason when no
//! Docker engine answers (or busybox-static is missing).

mod support;

use std::path::Path;
use std::time::Duration;

use brigade::kafka::{KafkaConfig, create_topics};
use brigade::processor::Processor;
use support::kafka::{by_offset, produce, read};

const WAIT: Duration = Duration::from_secs(120);

/// The image's tag (fixed: built once per machine).
const IMAGE: &str = "brigade-test-pipeline-upper:1";

/// Whether a Docker engine answers (through the CLI the executor uses).
fn docker_engine() -> Result<(), String> {
    let out = std::process::Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .map_err(|e| format!("no docker CLI: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "no Docker engine answers: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Builds the image unless it exists: `FROM scratch`, the static busybox, `tr a-z A-Z`.
fn build_image() -> Result<(), String> {
    let inspect = std::process::Command::new("docker")
        .args(["image", "inspect", IMAGE])
        .output()
        .map_err(|e| e.to_string())?;
    if inspect.status.success() {
        return Ok(());
    }
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .ok_or("busybox-static is not installed (apt-get install -y busybox-static)")?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).map_err(|e| e.to_string())?;
    std::fs::copy(busybox, bin.join("busybox")).map_err(|e| e.to_string())?;
    for tool in ["sh", "tr"] {
        std::os::unix::fs::symlink("busybox", bin.join(tool)).map_err(|e| e.to_string())?;
    }
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\nCOPY bin /bin\nCMD [\"/bin/tr\", \"a-z\", \"A-Z\"]\n",
    )
    .map_err(|e| e.to_string())?;
    let out = std::process::Command::new("docker")
        .args(["build", "-q", "-t", IMAGE])
        .arg(dir.path())
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "docker build failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_docker_processor_upper_cases_every_message() {
    support::init_logs();
    if let Err(why) = docker_engine() {
        eprintln!("SKIPPED a_docker_processor_upper_cases_every_message: {why}");
        return;
    }
    if let Err(why) = build_image() {
        eprintln!("SKIPPED a_docker_processor_upper_cases_every_message: {why}");
        return;
    }
    let Some(broker) = support::tansu::tansu_or_skip("a_docker_processor_upper_cases") else {
        return;
    };
    let brokers = broker.brokers();
    create_topics(
        &KafkaConfig::new(&brokers),
        &["dock-in", "dock-out", "dock-err"],
        1,
    )
    .await
    .expect("topics created");
    let work = tempfile::tempdir().unwrap();
    let cluster = support::local_cluster(work.path()).await;
    let brigade = support::brigade(support::scheduler_config(
        &cluster.master_url(),
        &brokers,
        None,
    ))
    .await;
    brigade
        .add(
            Processor::from_json(
                &serde_json::json!({
                    "name": "dock", "input": "dock-in", "output": "dock-out",
                    "error": "dock-err", "docker": IMAGE, "cpus": 0.2, "mem": 64,
                    "max_in_flight": 4, "timeout": "60secs",
                    "docker_options": {"network": "none"}
                })
                .to_string(),
            )
            .expect("valid processor"),
        )
        .await
        .unwrap();
    let n = 8;
    let payloads: Vec<Vec<u8>> = (0..n)
        .map(|i| format!("docker message {i}").into_bytes())
        .collect();
    let offsets = produce(&brokers, "dock-in", &payloads).await;
    let records = read(&brokers, "dock-out", n, WAIT).await;
    let errors = read(&brokers, "dock-err", 1, Duration::from_millis(500)).await;
    assert_eq!(records.len(), n, "outputs: {records:?}; errors: {errors:?}");
    assert!(errors.is_empty(), "errors: {errors:?}");
    let map = by_offset(&records);
    for (i, offset) in offsets.iter().enumerate() {
        let got = &map[offset];
        assert_eq!(got.len(), 1, "one output for offset {offset}");
        assert_eq!(got[0].payload, format!("DOCKER MESSAGE {i}").into_bytes());
    }
    brigade.shutdown().await;
    cluster.shutdown().await;
}
