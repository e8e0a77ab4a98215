//! The `mesos-local` binary's Docker, fetcher cache and work directory flags: listed by
//! `--help`, and given to the agents (a `--docker` program that does not exist fails a DOCKER
//! task's launch with REASON_CONTAINER_LAUNCH_FAILED, whether or not a Docker Engine runs here).

mod local_master_support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use local_master_support::*;
use serde_json::json;

#[test]
fn help_lists_the_docker_fetcher_cache_and_work_dir_flags() {
    let output = Command::new(env!("CARGO_BIN_EXE_mesos-local"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--docker <DOCKER>",
        "--docker-host <DOCKER_HOST>",
        "--docker-pull",
        "--fetcher-cache-dir <FETCHER_CACHE_DIR>",
        "--fetcher-cache-size <FETCHER_CACHE_SIZE>",
        "--work_dir <WORK_DIR>",
        "--work-dir",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}

#[test]
fn a_bad_fetcher_cache_size_is_refused() {
    let output = Command::new(env!("CARGO_BIN_EXE_mesos-local"))
        .args(["--port", "0", "--fetcher-cache-size", "2XB"])
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown size unit"), "{stderr}");
}

/// Kills the binary when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn a_docker_task_fails_to_launch_with_a_missing_docker_program() {
    let work_dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mesos-local"))
        .args(["--port", "0", "--allocation_interval", "50ms"])
        .args(["--docker", "/nonexistent/docker"])
        .args(["--docker-host", "unix:///nonexistent.sock", "--docker-pull"])
        .arg("--work-dir")
        .arg(work_dir.path())
        .arg("--fetcher-cache-dir")
        .arg(work_dir.path().join("cache"))
        .args(["--fetcher-cache-size", "64MB"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _running = Running(child);
    let url = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        line.trim().to_string()
    })
    .await
    .unwrap();
    let addr: std::net::SocketAddr = url.trim_start_matches("http://").parse().unwrap();
    assert!(
        work_dir.path().join("agents/0").is_dir(),
        "--work-dir is used"
    );

    let (mut stream, id) = subscribe(addr, framework_info("docker-flags")).await;
    let sid = stream.stream_id();
    let event = stream.next_of("OFFERS").await;
    let offer = event["offers"]["offers"][0].clone();
    let task = json!({
        "name": "in-docker", "task_id": {"value": "t-docker"}, "agent_id": offer["agent_id"],
        "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                      {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}}],
        "command": {"value": "true"},
        "container": {"type": "DOCKER", "docker": {"image": "busybox:latest"}}
    });
    let r = call(
        addr,
        &sid,
        json!({"type": "ACCEPT", "framework_id": {"value": id},
               "accept": {"offer_ids": [offer["id"]],
                          "operations": [{"type": "LAUNCH", "launch": {"task_infos": [task]}}]}}),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let status = loop {
        let update = stream.next_of("UPDATE").await;
        let status = update["update"]["status"].clone();
        let state = status["state"].as_str().unwrap().to_string();
        if state != "TASK_STARTING" && state != "TASK_RUNNING" {
            break status;
        }
        let r = call(
            addr,
            &sid,
            json!({"type": "ACKNOWLEDGE", "framework_id": {"value": id},
                   "acknowledge": {"agent_id": status["agent_id"], "task_id": status["task_id"],
                                   "uuid": status["uuid"]}}),
        )
        .await;
        assert_eq!(r.status, 202);
    };
    assert_eq!(status["state"], "TASK_FAILED", "{status}");
    assert_eq!(
        status["reason"], "REASON_CONTAINER_LAUNCH_FAILED",
        "{status}"
    );
    let message = status["message"].as_str().unwrap_or_default();
    assert!(message.contains("/nonexistent/docker"), "{message}");
}
