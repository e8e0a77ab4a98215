//! The `mesos-local` binary: prints the master URL, serves a cluster with the requested agents,
//! and stops cleanly on SIGTERM.

mod local_master_support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use local_master_support::raw;

#[tokio::test]
async fn mesos_local_serves_and_stops_on_sigterm() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mesos-local"))
        .args([
            "--port",
            "0",
            "--agents",
            "2",
            "--resources",
            "cpus:2;mem:512",
            "--attributes",
            "rack:r1",
            "--heartbeat_interval",
            "2secs",
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let url = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        line.trim().to_string()
    })
    .await
    .unwrap();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let addr: std::net::SocketAddr = url.trim_start_matches("http://").parse().unwrap();

    let state = raw(addr, "GET", "/master/state", &[], b"").await.json();
    assert_eq!(state["slaves"].as_array().unwrap().len(), 2);
    assert_eq!(state["slaves"][0]["attributes"]["rack"], "r1");
    assert_eq!(state["slaves"][0]["resources"]["cpus"], 2.0);

    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "mesos-local did not stop");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "{status:?}");
}

#[test]
fn mesos_local_rejects_bad_resources() {
    let output = Command::new(env!("CARGO_BIN_EXE_mesos-local"))
        .args(["--port", "0", "--resources", "cpus:lots"])
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("invalid resources"), "{stderr}");
}
