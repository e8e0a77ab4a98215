//! The `brigade demo` smoke run: the real binary, everything in-process (mesos-local, the
//! librdkafka mock cluster, the memory store), three messages, exit when done.

use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn demo_prints_every_result_with_its_offset_and_exits() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_brigade"))
        .args(["demo", "--messages", "3", "--exit-when-done"])
        .args(["--executor", env!("CARGO_BIN_EXE_brigade-executor")])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("brigade demo starts");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().expect("output");
            panic!(
                "demo did not finish:\n{}\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = child.wait_with_output().expect("output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "demo failed:\n{stdout}\n{stderr}");
    for i in 0..3 {
        let line = format!("HELLO BRIGADE, MESSAGE NUMBER {i}");
        assert!(
            stdout.contains(&line),
            "missing {line:?} in:\n{stdout}\n{stderr}"
        );
    }
    assert!(stdout.contains("offset 0:"), "{stdout}");
}
