//! `brigade --log-format json scheduler ...` writes its logs as JSON lines on stderr (one
//! object per event, fields flattened), for FluentD or Vector.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn json_logs_are_one_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_brigade"))
        .args(["--log-format", "json", "scheduler", "--processors"])
        .arg(dir.path())
        .args(["--master", "http://127.0.0.1:9", "--brokers", "127.0.0.1:9"])
        .args([
            "--bind",
            "127.0.0.1:0",
            "--executor",
            env!("CARGO_BIN_EXE_brigade-executor"),
        ])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("brigade starts");
    let stderr = child.stderr.take().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut found = None;
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap();
        let value: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            value["level"].is_string() && value["timestamp"].is_string(),
            "{value}"
        );
        if value["message"] == "brigade scheduler up" {
            found = Some(value);
            break;
        }
        assert!(Instant::now() < deadline, "no start-up line");
    }
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    let _ = child.wait();
    let found = found.expect("the start-up line");
    assert!(
        found["url"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:"),
        "{found}"
    );
}
